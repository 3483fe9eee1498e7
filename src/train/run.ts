/**
 * A single training run from a config: load and normalise the data, put it on the GPU, train,
 * evaluate on the test set, and write `runs/<name>/` (metrics.json, weights.safetensors)
 * atomically.
 *
 * @module
 */

import { join } from "node:path";
import { bnLayers, type Config, dropoutLayers } from "../config.ts";
import { UserError } from "../errors.ts";
import { envInfo } from "../env.ts";
import { getGpu, type Gpu } from "../gpu/device.ts";
import {
  type Cifar10,
  loadCifar10,
  normalisationStats,
  type NormStats,
  resolveDataDir,
} from "../data/cifar10.ts";
import { type DatasetPart, type ResidentDataset, uploadDataset } from "../data/resident.ts";
import { encodeCheckpoint } from "../model/checkpoint.ts";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import type { RunMetrics } from "./metrics.ts";
import { defaultEvalEvery, sampleSchedule } from "./schedule.ts";
import {
  type PopulationSpec,
  type Progress,
  trainPopulation,
  type TrainResult,
} from "./trainer.ts";
import { formatDuration, formatProgress } from "./progress.ts";
import { writeReport } from "../report/mod.ts";

/** Options of {@link runExperiment}. */
export interface RunOptions {
  /** Replace an existing run directory. */
  overwrite?: boolean;
  /** Write report.html into the run directory (default true). */
  report?: boolean;
  /** Where progress lines go (default: console.log). */
  log?: (line: string) => void;
  /** Abort to stop training early: the run is still written, status `interrupted`, no test. */
  signal?: AbortSignal;
}

/** Data of a config, loaded, normalised and resident on the GPU. */
export interface PreparedData {
  /** The shared process-wide GPU ({@link getGpu}). */
  gpu: Gpu;
  /** The splits as loaded on the CPU (raw bytes), with the class names. */
  cifar: Cifar10;
  /** Normalisation statistics of the training split. */
  stats: NormStats;
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
  const dataset = uploadDataset(gpu.device, parts, stats);
  return { gpu, cifar, stats, dataset, dataDir, setupSeconds: (performance.now() - t0) / 1000 };
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

/** Refuse to clobber an existing run directory unless asked to. */
export async function checkRunDir(dir: string, overwrite: boolean): Promise<void> {
  try {
    await Deno.stat(dir);
  } catch {
    return;
  }
  if (!overwrite) {
    throw new UserError(
      `run directory ${dir} already exists: pass --overwrite to replace it, or --name NEW`,
    );
  }
}

/** Replace `dir` by the finished temporary directory `tmp` (as atomically as the OS allows). */
export async function commitDir(tmp: string, dir: string): Promise<void> {
  const old = `${dir}.old-${Deno.pid}`;
  let moved = false;
  try {
    await Deno.rename(dir, old);
    moved = true;
  } catch {
    // no previous run
  }
  await Deno.rename(tmp, dir);
  if (moved) await Deno.remove(old, { recursive: true });
}

/** Train one model as the config says and write its run directory. */
export async function runExperiment(
  cfg: Config,
  options: RunOptions = {},
): Promise<{ dir: string; metrics: RunMetrics }> {
  const log = options.log ?? ((line: string) => console.log(line));
  const dir = join(cfg.out, cfg.name);
  await checkRunDir(dir, !!options.overwrite);
  const startedAt = new Date();
  const t0 = performance.now();
  const data = await prepareData(cfg);
  const { gpu, cifar } = data;
  const spec = populationSpec(cfg, cifar.train.n, [cfg.train.lambda], [cfg.seed]);
  log(
    `${cfg.name}: ${spec.sizes.join("-")} on ${cifar.train.n} train / ${cifar.val?.n ?? 0} val / ` +
      `${
        cifar.test?.n ?? 0
      } test, batch ${spec.batchSize}, λ ${cfg.train.lambda} — ${gpu.adapter.description}`,
  );
  const result = await trainPopulation(
    gpu,
    {
      dataset: data.dataset,
      train: data.dataset.splits.train,
      val: data.dataset.splits.val ?? null,
      test: data.dataset.splits.test ?? null,
    },
    spec,
    { onEval: (p: Progress) => log(formatProgress(p)), signal: options.signal },
  );
  data.dataset.destroy();
  const metrics = runMetrics(cfg, data, spec, result, startedAt, t0);
  await writeRunDir(dir, metrics, result, data.stats, cfg);
  if (options.report !== false) await writeReport([dir]);
  const m = result.models[0];
  if (m.diverged) log(`${cfg.name}: diverged at step ${m.diverged.step} (${m.diverged.reason})`);
  else {
    log(
      `${cfg.name}: done in ${formatDuration(metrics.timings.wallSeconds)} ` +
        `(${metrics.timings.stepsPerSecond.toFixed(0)} steps/s)` +
        (m.test ? `, test accuracy ${(100 * m.test.accuracy).toFixed(2)}%` : "") + ` → ${dir}`,
    );
  }
  return { dir, metrics };
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

/** Write metrics.json (and the checkpoint of a healthy model) into `dir` through a temp dir. */
export async function writeRunDir(
  dir: string,
  metrics: RunMetrics,
  result: TrainResult,
  stats: NormStats,
  cfg: Config,
  z = 0,
): Promise<void> {
  const tmp = `${dir}.tmp-${Deno.pid}`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(tmp, { recursive: true });
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
    await commitDir(tmp, dir);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}
