/**
 * A single training run from a config: load and normalise the data, put it on the GPU, train,
 * evaluate on the test set, and write `runs/<name>/` (metrics.json, weights.safetensors)
 * atomically.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { bnLayers, type Config, dropoutLayers } from "../config.ts";
import { UserError } from "../errors.ts";
import { envInfo } from "../env.ts";
import { getGpu, type Gpu } from "../gpu/device.ts";
import { resolveDataDir } from "../data/data_dir.ts";
import { normalisationStats, type NormStats } from "../data/normalise.ts";
import { type Cifar10, loadCifar10 } from "../data/cifar10.ts";
import { type DatasetPart, type ResidentDataset, uploadDataset } from "../data/resident.ts";
import { encodeCheckpoint } from "../model/checkpoint.ts";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { writeRunLogs } from "../io/logs.ts";
import { acquireLock } from "../io/lock.ts";
import {
  entryKind,
  markOwned,
  readMarker,
  removeOwned,
  removeTemporaries,
  replaceProblem,
} from "../io/owned.ts";
import {
  checkSnapshotData,
  hashOf,
  readSnapshot,
  sha256Hex,
  type Snapshot,
  SNAPSHOT_FORMAT,
  writeSnapshot,
} from "./snapshot.ts";
import { checkOutDir, preflight } from "./preflight.ts";
import type { RunMetrics } from "./metrics.ts";
import { defaultEvalEvery, sampleSchedule, totalSteps } from "./schedule.ts";
import { PROGRESS_FORMAT, type ProgressHeader, ProgressLog } from "./live.ts";
import {
  type PopulationSpec,
  type Progress,
  trainDataOf,
  trainPopulation,
  type TrainResult,
} from "./trainer.ts";
import { formatDuration, formatProgress } from "./progress.ts";
import { writeReport } from "../report/mod.ts";

/** Options of {@link runExperiment}. */
export interface RunOptions {
  /** Replace an existing run directory (only one the tool wrote). */
  overwrite?: boolean;
  /** Discard the resumable state of an interrupted run and start afresh. */
  restart?: boolean;
  /** Write report.html into the run directory (default true). */
  report?: boolean;
  /** Where progress lines go (default: console.log). */
  log?: (line: string) => void;
  /**
   * Abort to stop training at the end of the chunk of steps in flight: the run is evaluated at
   * the step reached, recorded `interrupted` in its in-progress directory with a snapshot, and
   * the same command resumes it.
   */
  signal?: AbortSignal;
  /** Seconds of training between timed snapshots (default 30; evaluation points always take one). */
  snapshotSeconds?: number;
}

/** Suffix of a run's in-progress directory, beside where the run will be committed. */
export const PARTIAL_SUFFIX = ".partial";
/** The snapshot file in an in-progress directory. */
export const SNAPSHOT_FILE = "snapshot.safetensors";

/** The hash a run's snapshot and directories are tagged with: its resolved config, less paths. */
export function configHash(cfg: Config, extra: unknown = null): Promise<string> {
  return hashOf({
    ...cfg,
    out: undefined,
    data: { ...cfg.data, dir: undefined },
    extra,
    state: SNAPSHOT_FORMAT,
  });
}

/** Data of a config, loaded, normalised and resident on the GPU. */
export interface PreparedData {
  /** The shared process-wide GPU ({@link getGpu}). */
  gpu: Gpu;
  /** The splits as loaded on the CPU (raw bytes), with the class names. */
  cifar: Cifar10;
  /** Normalisation statistics of the training split. */
  stats: NormStats;
  /** {@link dataFingerprint} of the splits: what a snapshot's resume must find again. */
  fingerprint: string;
  /** Every split on the GPU, as parts `train`, `val` and `test` (those present). */
  dataset: ResidentDataset;
  /** Absolute path of the CIFAR-10 directory used. */
  dataDir: string;
  /** Seconds spent loading, computing statistics and uploading. */
  setupSeconds: number;
}

/** Load the config's splits, compute normalisation statistics and upload everything once. */
export async function prepareData(cfg: Config): Promise<PreparedData> {
  const t0 = performance.now();
  const dataDir = resolveDataDir(cfg.data.dir);
  const cifar = await loadCifar10(dataDir, {
    train: cfg.data.train,
    val: cfg.data.val?.batch !== undefined
      ? { batch: cfg.data.val.batch }
      : cfg.data.val?.holdout !== undefined
      ? { holdout: cfg.data.val.holdout }
      : { none: true },
    test: cfg.data.test,
  });
  if (cfg.train.batchSize > cifar.train.n) {
    throw new UserError(
      `train.batchSize ${cfg.train.batchSize} is larger than the training set (${cifar.train.n} samples): use at most ${cifar.train.n}`,
    );
  }
  const stats = normalisationStats(cifar.train);
  const gpu = await getGpu();
  const parts: DatasetPart[] = [{
    name: "train",
    images: cifar.train.images,
    labels: cifar.train.labels,
  }];
  if (cifar.val) parts.push({ name: "val", images: cifar.val.images, labels: cifar.val.labels });
  if (cifar.test) {
    parts.push({ name: "test", images: cifar.test.images, labels: cifar.test.labels });
  }
  const fingerprint = dataFingerprint(parts);
  const dataset = uploadDataset(gpu.device, parts, stats);
  return {
    gpu,
    cifar,
    stats,
    dataset,
    dataDir,
    fingerprint: await fingerprint,
    setupSeconds: (performance.now() - t0) / 1000,
  };
}

/**
 * SHA-256 (hex) of what a run trains and evaluates on: each split's name, images and labels. A
 * snapshot keeps it, and a resume on other data (another --data, a changed file) is refused.
 * About 0.3 s for the whole of CIFAR-10 here, hashed while the data goes to the GPU.
 */
export async function dataFingerprint(parts: DatasetPart[]): Promise<string> {
  const digests: string[] = [];
  for (const p of parts) {
    for (const bytes of [p.images, p.labels]) digests.push(`${p.name}:${await sha256Hex(bytes)}`);
  }
  return hashOf(digests);
}

/** The network's layer sizes for a config: 3072, hidden…, 10. */
export function configSizes(cfg: Config, classes = 10): number[] {
  return [3072, ...cfg.model.hidden, classes];
}

/** The population spec of a config for the given λs and seeds. */
export function populationSpec(
  cfg: Config,
  trainN: number,
  lambdas: number[],
  seeds: number[],
): PopulationSpec {
  const stepsPerEpoch = Math.floor(trainN / cfg.train.batchSize);
  const augment = cfg.data.augment;
  return {
    sizes: configSizes(cfg),
    init: cfg.model.init,
    sigma: cfg.model.sigma,
    lambdas,
    seeds,
    batchSize: cfg.train.batchSize,
    schedule: cfg.train.schedule,
    evalEvery: cfg.train.evalEvery ?? defaultEvalEvery(cfg.train.schedule, stepsPerEpoch),
    shuffleSeed: cfg.seed,
    bn: bnLayers(cfg),
    net: {
      dropout: dropoutLayers(cfg),
      seed: cfg.seed,
      bnAlpha: cfg.model.bnAlpha,
      bnL2: cfg.model.bnL2,
    },
    optimizer: cfg.train.optimizer,
    augment: augment && (augment.flip || augment.translate > 0) ? augment : undefined,
  };
}

/**
 * Refuse to clobber an existing run directory unless asked to, and refuse to replace one the
 * tool did not write (or a symbolic link) even when asked.
 */
export function checkRunDir(dir: string, overwrite: boolean): void {
  const kind = entryKind(dir);
  if (kind === "none") return;
  if (!overwrite) {
    throw new UserError(
      `run directory ${dir} already exists: pass --overwrite to replace it, or --name NEW`,
    );
  }
  const problem = replaceProblem(dir, "run");
  if (problem) throw new UserError(`${problem}: use --name NEW or another --out`);
}

/** A fresh sibling name of `dir` for a temporary or outgoing copy. */
function sibling(dir: string, what: "tmp" | "old"): string {
  return `${dir}.${what}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Replace `dir` by the finished temporary directory `tmp` (as atomically as the OS allows); a
 * previous `dir` must be the tool's (see {@link checkRunDir}).
 */
export async function commitDir(tmp: string, dir: string): Promise<void> {
  const old = sibling(dir, "old");
  let moved = false;
  if (entryKind(dir) !== "none") {
    const problem = replaceProblem(dir, "run");
    if (problem) throw new UserError(`${problem} (it changed while the run trained)`);
    await Deno.rename(dir, old);
    moved = true;
  }
  await Deno.rename(tmp, dir);
  if (moved) await Deno.remove(old, { recursive: true });
}

/**
 * Remove what an earlier process killed while committing `dir` left beside it: its
 * `.tmp-PID-XXXXXXXX` and `.old-PID-XXXXXXXX` copies (the names {@link sibling} gives), when they
 * are the tool's own run directories, and the in-progress directory of
 * the very run it committed (same config, created before the commit). Call it holding the lock.
 */
export async function removeLeftovers(dir: string, hash: string): Promise<void> {
  const partial = dir + PARTIAL_SUFFIX;
  const done = readMarker(dir), open = readMarker(partial);
  if (
    done?.config === hash && open?.config === hash && done.created > open.created &&
    replaceProblem(partial, "partial") === null
  ) {
    await removeOwned(partial, "partial", "remove it by hand");
  }
  const parent = dirname(dir), name = basename(dir);
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(parent)];
  } catch {
    return;
  }
  for (const e of entries) {
    if (
      !e.name.startsWith(`${name}.`) ||
      // exactly the names `sibling` gives (pid and random suffix): a user's `run.old-1` or
      // `run.old-2` copy of a run is theirs, however much it looks like a run of the tool's
      !/^\.(tmp|old)-\d+-[0-9a-f]{8}$/.test(e.name.slice(name.length))
    ) continue;
    const path = join(parent, e.name);
    if (replaceProblem(path, "run") === null) await Deno.remove(path, { recursive: true });
  }
}

/** A run's in-progress directory, opened for training: where it is and what it resumes from. */
export interface Partial {
  /** `<dir>.partial`. */
  dir: string;
  /** The snapshot to continue from, if any. */
  resume?: Snapshot;
  /** Made by this process just now (nothing in it yet): a failed start removes it again. */
  fresh: boolean;
  /** Write a snapshot of this run. */
  save(s: Snapshot): Promise<void>;
}

/**
 * Open (or create) the in-progress directory of the run that will be committed to `dir`: an
 * existing one of the same config is resumed; one of another config is refused unless
 * `restart`, which discards it.
 */
export async function openPartial(
  dir: string,
  hash: string,
  restart: boolean,
  log: (line: string) => void,
): Promise<Partial> {
  const partial = dir + PARTIAL_SUFFIX;
  const file = join(partial, SNAPSHOT_FILE);
  const hint = `pass --restart to discard it and start afresh`;
  const kind = entryKind(partial);
  if (kind !== "none") {
    if (replaceProblem(partial, "partial") !== null) {
      throw new UserError(
        `${partial} is in the way of the run's in-progress directory and was not written by this tool: move it away`,
      );
    }
    const same = readMarker(partial)?.config === hash;
    if (restart) {
      await removeOwned(partial, "partial", "move it away");
      log(`${partial}: discarded the interrupted run (--restart)`);
    } else if (!same) {
      throw new UserError(`${partial} holds an interrupted run of a different config: ${hint}`);
    }
  }
  let resume: Snapshot | undefined;
  let fresh = false;
  if (entryKind(partial) === "none") {
    await markOwned(partial, "partial", hash);
    fresh = true;
  } else {
    await removeTemporaries(partial, null);
    const stored = await readSnapshot(file, hint);
    if (stored && stored.hash !== hash) {
      throw new UserError(`${file} holds a snapshot of a different config: ${hint}`);
    }
    resume = stored?.snapshot;
  }
  return { dir: partial, resume, fresh, save: (s) => writeSnapshot(file, hash, s) };
}

/** The outcome of {@link runExperiment}. */
export interface RunOutcome {
  /** The committed run directory, or the in-progress one of an interrupted run. */
  dir: string;
  /** Its metrics.json. */
  metrics: RunMetrics;
  /** True when the signal stopped it: the same command resumes it. */
  interrupted: boolean;
}

/**
 * Train one model as the config says and write its run directory.
 *
 * @example Train a preset and print its test accuracy
 * ```ts
 * import { loadConfig, runExperiment } from "@webgpu-mlp/core";
 *
 * const cfg = await loadConfig("experiments/cyclic-1.json");
 * const { dir, metrics, interrupted } = await runExperiment(cfg, { overwrite: true });
 * if (!interrupted) console.log(dir, metrics.final.test?.accuracy);
 * ```
 */
export async function runExperiment(cfg: Config, options: RunOptions = {}): Promise<RunOutcome> {
  const log = options.log ?? ((line: string) => console.log(line));
  const dir = join(cfg.out, cfg.name);
  await checkOutDir(cfg.out);
  const hash = await configHash(cfg);
  if (!options.overwrite && entryKind(dir) !== "none" && entryKind(`${dir}.lock`) === "none") {
    // a finished run: tidy what a kill during its commit left, then refuse to replace it
    const lock = await acquireLock(`${dir}.lock`, `checking ${dir}`);
    await removeLeftovers(dir, hash).finally(() => lock.release());
  }
  checkRunDir(dir, !!options.overwrite);
  await preflight(cfg, [cfg], 1);
  const lock = await acquireLock(`${dir}.lock`, `training ${dir}`);
  try {
    await removeLeftovers(dir, hash);
    checkRunDir(dir, !!options.overwrite);
    return await trainRun(cfg, dir, hash, options, log);
  } finally {
    await lock.release();
  }
}

async function trainRun(
  cfg: Config,
  dir: string,
  hash: string,
  options: RunOptions,
  log: (line: string) => void,
): Promise<RunOutcome> {
  const partial = await openPartial(dir, hash, !!options.restart, log);
  const startedAt = new Date();
  const t0 = performance.now();
  let data: PreparedData;
  try {
    data = await prepareData(cfg);
  } catch (e) {
    // bad data found while loading (a label out of range, a damaged class-name file): the
    // in-progress directory made for this start holds nothing, so it goes again
    if (partial.fresh) await removeOwned(partial.dir, "partial", "remove it by hand");
    throw e;
  }
  const { gpu, cifar } = data;
  const spec = populationSpec(cfg, cifar.train.n, [cfg.train.lambda], [cfg.seed]);
  log(
    `${cfg.name}: ${spec.sizes.join("-")} on ${cifar.train.n} train / ${cifar.val?.n ?? 0} val / ` +
      `${
        cifar.test?.n ?? 0
      } test, batch ${spec.batchSize}, λ ${cfg.train.lambda} — ${gpu.adapter.description}`,
  );
  checkSnapshotData(join(partial.dir, SNAPSHOT_FILE), partial.resume, data.fingerprint);
  if (partial.resume) {
    log(`${cfg.name}: resuming at step ${partial.resume.step} from ${partial.dir}`);
  }
  const progress = await ProgressLog.open(
    partial.dir,
    progressHeader(cfg, data, spec, 0, startedAt),
    partial.resume?.models[0].curves,
  );
  const onEval = (p: Progress) => {
    log(formatProgress(p));
    appendPoint(progress, p, 0);
  };
  const result = await trainPopulation(
    gpu,
    trainDataOf(data.dataset),
    spec,
    {
      onEval,
      signal: options.signal,
      resume: partial.resume,
      onSnapshot: (snap) => partial.save({ ...snap, data: data.fingerprint }),
      snapshotSeconds: options.snapshotSeconds,
    },
  ).finally(() => progress.close());
  data.dataset.destroy();
  const metrics = runMetrics(cfg, data, spec, result, startedAt, t0);
  if (result.interrupted) {
    await writeJsonAtomic(join(partial.dir, "metrics.json"), metrics);
    await writeRunLogs(partial.dir, metrics);
    log(
      `${cfg.name}: interrupted at step ${result.steps}/${result.totalSteps}; its state is in ` +
        `${partial.dir}: run the same command to resume (--restart to start afresh)`,
    );
    return { dir: partial.dir, metrics, interrupted: true };
  }
  await writeRunDir(dir, metrics, result, data.stats, cfg, { report: options.report !== false });
  await removeOwned(partial.dir, "partial", "remove it by hand");
  const m = result.models[0];
  if (m.diverged) log(`${cfg.name}: diverged at step ${m.diverged.step} (${m.diverged.reason})`);
  else {
    log(
      `${cfg.name}: done in ${formatDuration(metrics.timings.wallSeconds)} ` +
        `(${metrics.timings.stepsPerSecond.toFixed(0)} steps/s)` +
        (m.test ? `, test accuracy ${(100 * m.test.accuracy).toFixed(2)}%` : "") + ` → ${dir}`,
    );
  }
  return { dir, metrics, interrupted: false };
}

/** The header of the progress log of model `z` of a population (see src/train/live.ts). */
export function progressHeader(
  cfg: Config,
  data: PreparedData,
  spec: PopulationSpec,
  z: number,
  startedAt: Date,
): ProgressHeader {
  const { cifar } = data;
  const stepsPerEpoch = Math.floor(data.dataset.splits.train.n / spec.batchSize);
  const total = totalSteps(spec.schedule, stepsPerEpoch);
  return {
    format: PROGRESS_FORMAT,
    name: cfg.name,
    config: cfg,
    seed: spec.seeds[z],
    layerSizes: spec.sizes,
    lambda: spec.lambdas[z],
    env: envInfo(data.gpu),
    startedAt: startedAt.toISOString(),
    totalSteps: total,
    stepsPerEpoch,
    lrSchedule: sampleSchedule(spec.schedule, total, stepsPerEpoch),
    classNames: cifar.classNames,
    dataSizes: { train: cifar.train.n, val: cifar.val?.n ?? 0, test: cifar.test?.n ?? 0 },
  };
}

/** Append model `z`'s point of an evaluation to its progress log (nothing once it diverged). */
export function appendPoint(log: ProgressLog, p: Progress, z: number): void {
  const point = p.points[z];
  if (!point) return;
  log.append({
    point,
    elapsedSeconds: p.elapsedSeconds,
    stepsPerSecond: p.stepsPerSecond,
    remainingSeconds: p.remainingSeconds,
  });
}

/** Assemble metrics.json for model `z` of a training result. */
export function runMetrics(
  cfg: Config,
  data: PreparedData,
  spec: PopulationSpec,
  result: TrainResult,
  startedAt: Date,
  t0: number,
  z = 0,
): RunMetrics {
  const m = result.models[z];
  const wall = (performance.now() - t0) / 1000;
  const metrics: RunMetrics = {
    format: "webgpu-mlp.run/1",
    name: cfg.name,
    status: m.diverged ? "diverged" : result.interrupted ? "interrupted" : "completed",
    config: cfg,
    seed: spec.seeds[z],
    layerSizes: spec.sizes,
    lambda: spec.lambdas[z],
    env: envInfo(data.gpu),
    timings: {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      wallSeconds: wall,
      setupSeconds: data.setupSeconds,
      trainSeconds: result.trainSeconds,
      steps: result.steps,
      stepsPerSecond: result.steps / Math.max(result.trainSeconds, 1e-9),
      snapshots: result.snapshots,
    },
    lrSchedule: sampleSchedule(spec.schedule, result.totalSteps, result.stepsPerEpoch),
    curves: m.curves,
    final: m.final
      ? {
        train: m.final.train,
        ...(m.final.val ? { val: m.final.val } : {}),
        ...(m.test ? { test: m.test } : {}),
      }
      : { train: { loss: NaN, cost: NaN, accuracy: NaN } },
    classNames: data.cifar.classNames,
    dataSizes: {
      train: data.cifar.train.n,
      val: data.cifar.val?.n ?? 0,
      test: data.cifar.test?.n ?? 0,
    },
  };
  if (m.diverged) metrics.diverged = m.diverged;
  return metrics;
}

/** Options of {@link writeRunDir}. */
export interface WriteRunOptions {
  /** Model of the result to write (default 0). */
  z?: number;
  /** Write report.html too, before the directory is committed (default false). */
  report?: boolean;
}

/**
 * Write metrics.json, the checkpoint of a healthy model, the TensorBoard event file and
 * curves.csv (src/io/logs.ts) and (when asked) report.html into a temporary directory beside
 * `dir`, then commit it to `dir`: a committed run is always complete.
 */
export async function writeRunDir(
  dir: string,
  metrics: RunMetrics,
  result: TrainResult,
  stats: NormStats,
  cfg: Config,
  options: WriteRunOptions = {},
): Promise<void> {
  const z = options.z ?? 0;
  const tmp = sibling(dir, "tmp");
  await markOwned(tmp, "run", await configHash(cfg));
  try {
    if (cfg.train.checkpoint && !metrics.diverged) {
      metrics.checkpoint = "weights.safetensors";
      await writeFileAtomic(
        join(tmp, metrics.checkpoint),
        encodeCheckpoint(result.params[z], stats, {
          config: JSON.stringify(cfg),
          classNames: JSON.stringify(metrics.classNames),
          lambda: String(metrics.lambda),
        }),
      );
    }
    await writeJsonAtomic(join(tmp, "metrics.json"), metrics);
    await writeRunLogs(tmp, metrics);
    if (options.report) {
      await writeReport([tmp], { out: join(tmp, "report.html"), shownAs: dir });
    }
    await commitDir(tmp, dir);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}
