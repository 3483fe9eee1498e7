/**
 * Sweeps: search stages trained as populations of models in lockstep, results appended per
 * finished trial, resumable, shardable across machines, and an optional final training with the
 * best trial's values. A stage's trials differ in λ (and seed) and in any other dimension its
 * space searches (η, σ, dropout); those that share everything but λ and seed train together
 * (`groupPopulations` in `hyper.ts`).
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { type Config, dropoutLayers, parseConfig } from "../config.ts";
import { envInfo } from "../env.ts";
import { clip, UserError } from "../errors.ts";
import { canonicalJson, readJsonIfExists } from "../io/json.ts";
import { parseRecord, RUN_FORMAT, SWEEP_FORMAT } from "../io/records.ts";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { acquireLock, liveOwner, type Lock } from "../io/lock.ts";
import {
  entryKind,
  markOwned,
  ownedKind,
  removeOwned,
  removeTemporaries,
  replaceProblem,
} from "../io/owned.ts";
import { checkOutDir, preflight } from "../train/preflight.ts";
import {
  checkSnapshotData,
  readSnapshot,
  type StoredSnapshot,
  writeSnapshot,
} from "../train/snapshot.ts";
import { getGpu } from "../gpu/device.ts";
import { encodeCheckpoint } from "../model/checkpoint.ts";
import { writeReport } from "../report/mod.ts";
import type { RunMetrics } from "../train/metrics.ts";
import { formatDuration, formatPopulation } from "../train/progress.ts";
import type { ExploitEvent, PopulationSpec, Progress, RungEvent } from "../train/trainer.ts";
import { halvingSpec } from "../train/halving.ts";
import { pbtSpec, pbtSummary } from "./pbt.ts";
import {
  configHash,
  configSizes,
  populationSpec,
  prepareData,
  type PreparedData,
  runExperiment,
} from "../train/run.ts";
import {
  type ModelResult,
  trainDataOf,
  trainPopulation,
  type TrainResult,
} from "../train/trainer.ts";
import { appendTrials, formatRungs, formatTop, readTrials, topK } from "./results.ts";
import { ownsTrial, type Shard, trialsFile } from "./shard.ts";
import { POPULATION_FORMAT, populationFileName, type PopulationProgress } from "./population.ts";
import { writeSweepLogs } from "../io/logs.ts";
import {
  checkTrialConfig,
  describeSpace,
  dimProblem,
  samplePoints,
  spaceDims,
  spaceProblem,
} from "./space.ts";
import {
  configValue,
  dimsOf,
  formatHyper,
  groupPopulations,
  type Hyper,
  sharedHyper,
  type SpaceDim,
  stageConfig,
  withHyper,
} from "./hyper.ts";
import type { StageSummary, SweepSummary, TopEntry, TrialRecord } from "./types.ts";

/** The config file a sweep directory is tied to (resume and merge check it). */
export const SWEEP_CONFIG = "sweep.config.json";

/**
 * The config a sweep directory belongs to, validated by the config schema itself (null when the
 * directory has no sweep.config.json).
 */
function readSweepConfig(dir: string): Config | null {
  return readJsonIfExists(join(dir, SWEEP_CONFIG), (value, source) => {
    const cfg = parseConfig(value, source, {}, basename(dir));
    if (!cfg.search) {
      throw new UserError(`${source} has no "search" block: it is not the config of a sweep`);
    }
    return cfg;
  });
}

/** The final training's metrics.json in a sweep directory, validated (null when absent). */
function readFinalMetrics(dir: string): RunMetrics | null {
  return readJsonIfExists(
    join(dir, "final", "metrics.json"),
    (value, source) => parseRecord(RUN_FORMAT, value, source),
  );
}

/** Options of {@link runSweep}. */
export interface SweepOptions {
  /** The share of the trials this process trains (null or absent: all). */
  shard?: Shard | null;
  /** Start afresh, discarding an existing sweep directory (only one the tool wrote). */
  overwrite?: boolean;
  /** Discard the snapshot of an interrupted population (and of the final training). */
  restart?: boolean;
  /** Seconds of training between timed snapshots (default 30). */
  snapshotSeconds?: number;
  /** Write report.html at the end (default true). */
  report?: boolean;
  /** Where progress lines go (default: console.log). */
  log?: (line: string) => void;
  /**
   * Stop at the end of the chunk of steps in flight: finished trials are kept, and the
   * population in flight is kept as a snapshot; the same command resumes it.
   */
  signal?: AbortSignal;
}

/** A planned trial. */
export interface TrialPlan {
  /** `<stage>/<index>`. */
  id: string;
  /** Its stage's name. */
  stage: string;
  /** Its index in the stage. */
  index: number;
  /** Its λ (the stage's when its space does not search λ). */
  lambda: number;
  /** Its initialisation seed. */
  seed: number;
  /** Its value in every dimension its stage's space searches (absent: λ alone). */
  hyper?: Hyper;
}

type Search = NonNullable<Config["search"]>;
type Stage = Search["stages"][number];

export { stageConfig };

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** What must match between a sweep and one it builds on: network, data, training. */
function lineage(cfg: Config) {
  return { sizes: configSizes(cfg), data: { train: cfg.data.train, val: cfg.data.val } };
}

/**
 * Where an `around` space's `sweep` lives: a bare name is a sweep under the config's `out`
 * directory (`"coarse"` → `runs/coarse`); anything with a path separator is a path.
 */
export function sweepPath(cfg: Config, sweep: string): string {
  return sweep.includes("/") || sweep.includes("\\") ? sweep : join(cfg.out, sweep);
}

/** A stage of a previous sweep an around space builds on: its sweep's config and the stage. */
interface ExternalStage {
  /** The previous sweep's directory. */
  dir: string;
  /** Its config. */
  cfg: Config;
  /** The stage. */
  stage: Stage;
}

/** Read the config of a previous sweep and find `stage` in it, checking it searched the same network and data. */
function externalStage(cfg: Config, sweep: string, stage: string): ExternalStage {
  const sweepDir = sweepPath(cfg, sweep);
  const other = readSweepConfig(sweepDir);
  if (!other) {
    throw new UserError(
      `${sweepDir} is not a sweep directory (no ${SWEEP_CONFIG}): run that sweep first, or fix "sweep"`,
    );
  }
  const a = JSON.stringify(lineage(other)), b = JSON.stringify(lineage(cfg));
  if (a !== b) {
    throw new UserError(
      `${sweepDir} searched a different setting (${configSizes(other).join("-")}, data ${
        JSON.stringify(other.data.train)
      }) ` +
        `than this config (${configSizes(cfg).join("-")}, data ${
          JSON.stringify(cfg.data.train)
        }): point "sweep" at a matching sweep`,
    );
  }
  const stageCfg = other.search?.stages.find((s) => s.name === stage);
  if (!stageCfg) {
    throw new UserError(
      `${sweepDir} has no stage "${stage}" (stages: ${
        other.search?.stages.map((s) => s.name).join(", ") ?? "none"
      })`,
    );
  }
  return { dir: sweepDir, cfg: other, stage: stageCfg };
}

/** Read a previous sweep's top trials of `stage`, checking it searched the same network and data. */
export function externalTop(
  cfg: Config,
  sweep: string,
  stage: string,
  top: number,
  rankBy: "final" | "best",
): TopEntry[] {
  const { dir: sweepDir, cfg: other } = externalStage(cfg, sweep, stage);
  const summary = readJsonIfExists(
    join(sweepDir, "sweep.json"),
    (value, source) => parseRecord(SWEEP_FORMAT, value, source),
  );
  if (!summary?.stages.some((s) => s.name === stage)) {
    throw new UserError(
      `${sweepDir} has not finished stage "${stage}" (no complete stage in its sweep.json): finish or merge that sweep first`,
    );
  }
  const trials = [...readTrials(sweepDir, other).values()].filter((t) => t.stage === stage);
  const best = topK(trials, top, rankBy);
  if (best.length === 0) {
    throw new UserError(`${sweepDir} stage "${stage}" has no completed trial (all diverged)`);
  }
  return best;
}

/** Read a previous sweep's top λs of `stage`, checking it searched the same network and data. */
export function externalCentres(
  cfg: Config,
  sweep: string,
  stage: string,
  top: number,
  rankBy: "final" | "best",
): number[] {
  return externalTop(cfg, sweep, stage, top, rankBy).map((t) => t.lambda);
}

/**
 * The dimensions a stage searches: its space's, or for an around space without `dims` those of
 * the stage it searches around (in this config, or read from the previous sweep).
 */
export function stageDims(cfg: Config, stage: Stage): SpaceDim[] {
  const own = spaceDims(stage.space);
  if (own) return own;
  const sp = stage.space as Extract<Stage["space"], { kind: "around" }>;
  if (sp.sweep) {
    const ext = externalStage(cfg, sp.sweep, sp.stage);
    return stageDims(ext.cfg, ext.stage);
  }
  return stageDims(cfg, cfg.search!.stages.find((s) => s.name === sp.stage)!);
}

/** The config and stage an around stage searches around (of this sweep or of a previous one). */
function aroundSource(cfg: Config, stage: Stage): { cfg: Config; stage: Stage } {
  const sp = stage.space as Extract<Stage["space"], { kind: "around" }>;
  if (sp.sweep) return externalStage(cfg, sp.sweep, sp.stage);
  return { cfg, stage: cfg.search!.stages.find((s) => s.name === sp.stage)! };
}

/**
 * The centres of an around stage: each top trial of the stage it searches around as a point in
 * every dimension the around stage searches — the trial's own value where its stage searched
 * that dimension, else what its stage trained with.
 */
export function centrePoints(cfg: Config, stage: Stage, top: TopEntry[]): Hyper[] {
  const dims = stageDims(cfg, stage);
  const src = aroundSource(cfg, stage);
  const srcCfg = stageConfig(src.cfg, src.stage);
  return top.map((t) => {
    const p: Hyper = {};
    for (const d of dims) {
      const v = d === "lambda" ? t.lambda : t.hyper?.[d] ?? configValue(srcCfg, d);
      if (v === undefined) {
        throw new UserError(
          `stage ${stage.name} searches around stage ${src.stage.name} in ${d}, which that stage ` +
            `neither searched nor trained with (its schedule is ${srcCfg.train.schedule.kind}): ` +
            `give the around space "dims" without ${d}`,
        );
      }
      p[d] = v;
    }
    return p;
  });
}

/** Turn a trained model's result into a trial record. */
export function trialRecord(
  plan: TrialPlan,
  m: ModelResult,
  shard: Shard | null,
  population: TrialPlan[] = [plan],
  pbt?: { checkpoint?: string },
): TrialRecord {
  let best = { accuracy: -1, step: 0 };
  for (const p of m.curves) {
    if (p.val && p.val.accuracy > best.accuracy) best = { accuracy: p.val.accuracy, step: p.step };
  }
  const rec: TrialRecord = {
    format: "webgpu-mlp.trial/1",
    id: plan.id,
    stage: plan.stage,
    index: plan.index,
    lambda: plan.lambda,
    ...(plan.hyper ? { hyper: plan.hyper } : {}),
    seed: plan.seed,
    status: m.diverged ? "diverged" : m.stopped ? "stopped" : "completed",
    bestVal: best.accuracy < 0 ? { accuracy: 0, step: 0 } : best,
    curves: m.curves,
  };
  if (!m.diverged && m.final?.val) rec.final = { train: m.final.train, val: m.final.val };
  if (m.diverged) rec.diverged = m.diverged;
  else if (m.stopped) rec.stopped = { ...m.stopped };
  if (m.lineage || pbt) {
    const lineage = (m.lineage ?? []).map((e) => ({
      ...structuredClone(e),
      from: population[e.from].id,
    }));
    rec.pbt = {
      lineage,
      end: pbtEndValues(plan, m),
      ...(pbt?.checkpoint ? { checkpoint: pbt.checkpoint } : {}),
    };
  }
  if (shard) rec.shard = shard.label;
  return rec;
}

/** The values a PBT trial ended with: those it was planned with, then its last exploit's. */
function pbtEndValues(plan: TrialPlan, m: ModelResult): Hyper {
  return { ...(plan.hyper ?? { lambda: plan.lambda }), ...(m.lineage?.at(-1)?.values ?? {}) };
}

/**
 * Plan a stage's trials, given the points of the stage it searches around (if any): each
 * trial's values in every dimension of the space, its λ and its seed.
 */
export function planStage(cfg: Config, stage: Stage, centres: Hyper[] | number[]): TrialPlan[] {
  const points = samplePoints(
    stage.space,
    centres.map((c) => typeof c === "number" ? { lambda: c } : c),
  );
  const scfg = stageConfig(cfg, stage);
  const lambdaOnly = isLambdaForm(cfg, stage);
  return points.map((hyper, index) => {
    const id = `${stage.name}/${index}`;
    checkTrialConfig(withHyper(scfg, hyper), id, hyper);
    return {
      id,
      stage: stage.name,
      index,
      lambda: hyper.lambda ?? scfg.train.lambda,
      seed: cfg.search!.seeds === "vary" ? (cfg.seed + index) >>> 0 : cfg.seed,
      ...(lambdaOnly ? {} : { hyper }),
    };
  });
}

/**
 * Whether a stage's space is written in one of the forms of λ alone (`logUniform`, `list`, a
 * `grid` without `dims`, or an `around` without `dims` of such a stage): its trials are
 * recorded exactly as before spaces had dimensions, without `hyper`.
 */
export function isLambdaForm(cfg: Config, stage: Stage): boolean {
  const sp = stage.space;
  if (sp.kind === "logUniform" || sp.kind === "list") return true;
  if (sp.kind === "grid") return !sp.dims;
  if (sp.kind === "random" || sp.dims) return false;
  const src = aroundSource(cfg, stage);
  return isLambdaForm(src.cfg, src.stage);
}

/** Whether a recorded trial is the planned one: the same λ, seed and values in every dimension. */
function samePlan(t: TrialRecord, p: TrialPlan): boolean {
  if (t.lambda !== p.lambda || t.seed !== p.seed) return false;
  const recorded = t.hyper ?? { lambda: t.lambda };
  const planned = p.hyper ?? { lambda: p.lambda };
  const dims = dimsOf(planned);
  return JSON.stringify(dimsOf(recorded)) === JSON.stringify(dims) &&
    dims.every((d) => recorded[d] === planned[d]);
}

/**
 * The recorded trials of a plan, by id; a recorded trial whose values are not the planned ones
 * (the space changed, or the sweep it searches around did) is a one-line error.
 */
function recordedTrials(
  plan: TrialPlan[],
  done: Map<string, TrialRecord>,
  dir: string,
): TrialRecord[] {
  const out: TrialRecord[] = [];
  for (const p of plan) {
    const t = done.get(p.id);
    if (!t) continue;
    if (!samePlan(t, p)) {
      throw new UserError(
        `trial ${p.id} of ${dir} was trained with ${
          formatHyper(t.hyper ?? { lambda: t.lambda })
        } ` +
          `(seed ${t.seed}), but the search space now gives ${
            formatHyper(p.hyper ?? { lambda: p.lambda })
          } (seed ${p.seed}): the space changed (or the sweep it searches around did); ` +
          `pass --overwrite to start afresh, or --name NEW`,
      );
    }
    out.push(t);
  }
  return out;
}

/**
 * Check a sweep directory against this config before any work: true when it must be created (or
 * replaced, with `overwrite`); a directory of a different config, or one the tool did not write,
 * is a one-line error.
 */
function checkSweepDir(cfg: Config, dir: string, overwrite: boolean): boolean {
  const kind = entryKind(dir);
  if (kind === "none") return true;
  if (kind !== "dir") {
    throw new UserError(`${dir} is not a directory the tool wrote (${kind}): use --name NEW`);
  }
  const existing = overwrite ? null : readSweepConfig(dir);
  if (existing && !overwrite) {
    if (
      canonicalJson({ ...existing, out: undefined }) !== canonicalJson({ ...cfg, out: undefined })
    ) {
      throw new UserError(
        `${dir} holds a sweep of a different config: pass --overwrite to start afresh, or --name NEW`,
      );
    }
    return false;
  }
  if (!existing && [...Deno.readDirSync(dir)].length === 0) return true;
  if (ownedKind(dir) !== "sweep") {
    throw new UserError(
      `${dir} exists and is not a sweep directory of this tool, so it is left alone: use --name NEW`,
    );
  }
  const problem = replaceProblem(dir, "sweep");
  if (problem) throw new UserError(`${problem}: move it away, or use --name NEW`);
  return true;
}

/**
 * Refuse to start while other processes work on the same sweep where that would harm them: an
 * unsharded run (it would train their trials too) or `--overwrite` (it would delete their
 * results) while a shard, another run or a merge holds one of the sweep's locks.
 */
function checkOtherProcesses(dir: string, shard: Shard | null, overwrite: boolean): void {
  if (shard !== null && !overwrite) return;
  const parent = dirname(dir), name = basename(dir);
  let entries: string[] = [];
  try {
    entries = [...Deno.readDirSync(parent)].map((e) => e.name);
  } catch {
    return;
  }
  const mine = shard ? `${name}.shard-${shard.index + 1}-of-${shard.count}.lock` : `${name}.lock`;
  const sweepLock = (e: string) =>
    e.startsWith(`${name}.`) && /^\.(shard-\d+-of-\d+\.)?lock$/.test(e.slice(name.length));
  for (const e of entries) {
    if (e === mine || !sweepLock(e)) continue;
    const owner = liveOwner(join(parent, e));
    if (owner) {
      throw new UserError(
        `process ${owner.pid} on ${owner.host} is ${owner.what}: ` +
          (overwrite
            ? "--overwrite would delete its results"
            : "an unsharded run would train its trials too") +
          `; wait for it to finish` + (overwrite ? "" : ", or run this one as a shard too"),
      );
    }
  }
}

/** Create (or, with `overwrite`, replace) the sweep directory and its config file. */
async function openSweepDir(cfg: Config, dir: string, overwrite: boolean): Promise<void> {
  if (!checkSweepDir(cfg, dir, overwrite)) return;
  if (entryKind(dir) === "dir" && [...Deno.readDirSync(dir)].length > 0) {
    await removeOwned(dir, "sweep", "use --name NEW");
  }
  await markOwned(dir, "sweep", await configHash(cfg));
  await writeJsonAtomic(join(dir, SWEEP_CONFIG), cfg);
}

/** Summaries of the stages whose trials are all finished; `null` from the first incomplete one. */
function summarise(
  cfg: Config,
  done: Map<string, TrialRecord>,
): (StageSummary | null)[] {
  const search = cfg.search!;
  const out: (StageSummary | null)[] = [];
  const tops = new Map<string, TopEntry[]>();
  for (const stage of search.stages) {
    const centres = centresFor(cfg, stage, tops);
    if (centres === null) {
      out.push(null);
      continue;
    }
    const plan = planStage(cfg, stage, centres);
    const trials = recordedTrials(plan, done, join(cfg.out, cfg.name));
    if (trials.length < plan.length) {
      out.push(null);
      continue;
    }
    const top = topK(trials, stage.top, search.rankBy);
    const sp = stage.space;
    const need = sp.kind === "around" ? sp.top : 0;
    tops.set(stage.name, topK(trials, Math.max(stage.top, need, 1), search.rankBy));
    out.push({
      name: stage.name,
      space: { ...sp, description: describeSpace(sp) },
      trials: trials.length,
      completed: trials.filter((t) => t.status === "completed").length,
      diverged: trials.filter((t) => t.status === "diverged").length,
      ...(stage.halving
        ? {
          stopped: trials.filter((t) => t.status === "stopped").length,
          halving: halvingSpec(stage.halving, stageConfig(cfg, stage)),
        }
        : {}),
      ...(stage.pbt ? { pbt: pbtSummary(stage, cfg) } : {}),
      top,
    });
  }
  return out;
}

/**
 * The centres of an around stage, as points in the dimensions it searches (null while
 * unavailable); [] for other spaces.
 */
function centresFor(cfg: Config, stage: Stage, tops: Map<string, TopEntry[]>): Hyper[] | null {
  const sp = stage.space;
  if (sp.kind !== "around") return [];
  if (sp.sweep) {
    return centrePoints(
      cfg,
      stage,
      externalTop(cfg, sp.sweep, sp.stage, sp.top, cfg.search!.rankBy),
    );
  }
  const t = tops.get(sp.stage);
  return t ? centrePoints(cfg, stage, t.slice(0, sp.top)) : null;
}

/** What one sweep process works on, settled by {@link checkSweep} before it takes its lock. */
interface SweepRun {
  cfg: Config;
  search: Search;
  /** The sweep directory. */
  dir: string;
  /** This process's share of the trials (null: all of them). */
  shard: Shard | null;
  /** Models trained at once: `search.population`, or fewer where the adapter fits fewer. */
  population: number;
  options: SweepOptions;
  log: (line: string) => void;
}

/** A sweep process at work, under its lock (see {@link openSweep}). */
interface SweepState extends SweepRun {
  startedAt: Date;
  /** `performance.now()` at the start. */
  t0: number;
  /** The snapshot of this process's population in flight. */
  snapshotFile: string;
  /** The trials file this process appends to. */
  trialsFile: string;
  /** Where this process shows the population it is training (for `deno task serve`). */
  populationFile: string;
  /** The data on the GPU, prepared when the first population trains. */
  data: PreparedData | null;
  /** The top trials of each stage ranked so far: the centres of the stages that search around it. */
  tops: Map<string, TopEntry[]>;
}

/**
 * Run (or resume) a sweep; returns its summary once every stage and the final training are done.
 *
 * @example Run a λ sweep and print the best trial of each stage
 * ```ts
 * import { loadConfig, runSweep } from "@webgpu-mlp/core";
 *
 * const cfg = await loadConfig("experiments/coarse.json");
 * const summary = await runSweep(cfg, { log: (line) => console.error(line) });
 * for (const stage of summary?.stages ?? []) console.log(stage.name, stage.top[0]?.lambda);
 * ```
 */
export async function runSweep(
  cfg: Config,
  options: SweepOptions = {},
): Promise<SweepSummary | null> {
  const run = await checkSweep(cfg, options);
  const lock = await lockSweep(run);
  try {
    const s = await openSweep(run);
    for (const stage of run.search.stages) {
      const plan = await stagePlan(s, stage);
      if (!plan) return null;
      const done = resumeStage(s);
      const todo = shardStage(s, stage, plan, done);
      if (!(await trainStage(s, stage, todo, done))) return null;
      if (!(await rankStage(s, stage, plan))) return null;
    }
    await endStages(s);
    const summary = await trainFinal(s, await writeSummary(s, null));
    if (summary) await finishSweep(s);
    return summary;
  } finally {
    await lock.release();
  }
}

/**
 * Everything checked before anything is written: the config is a sweep's with a validation
 * split, the earlier sweeps it builds on exist and match, the output and sweep directories may
 * be used, no other process would be harmed, and how many models fit the adapter at once.
 */
async function checkSweep(cfg: Config, options: SweepOptions): Promise<SweepRun> {
  const log = options.log ?? ((l: string) => console.log(l));
  const search = cfg.search;
  if (!search) throw new Error("runSweep needs a config with a search block");
  if (!cfg.data.val) {
    throw new UserError(
      `a sweep ranks trials by validation accuracy: give data.val ({"batch": N} or {"holdout": N})`,
    );
  }
  const shard = options.shard ?? null;
  const dir = join(cfg.out, cfg.name);
  // earlier sweeps this one builds on must exist and match before anything is written, and the
  // dimensions of their stages must be ones this config can search
  search.stages.forEach((stage, i) => {
    const sp = stage.space;
    if (sp.kind !== "around") return;
    const top = sp.sweep ? externalTop(cfg, sp.sweep, sp.stage, sp.top, search.rankBy) : null;
    // the dimensions of a stage of another sweep are known only now (also through a stage of
    // this config that searches around one)
    const problem = spaceProblem(sp, stageConfig(cfg, stage), stageDims(cfg, stage));
    if (problem) throw new UserError(`search.stages.${i}.${problem}`);
    if (top) centrePoints(cfg, stage, top);
  });
  if (search.final) {
    const last = search.stages.at(-1)!;
    for (const d of stageDims(cfg, last)) {
      const problem = dimProblem(d, finalConfig(cfg, 0));
      if (problem) {
        throw new UserError(
          `search.final: the last stage searches ${d}, so the final training takes its best value, but ${problem}`,
        );
      }
    }
  }
  await checkOutDir(cfg.out);
  checkSweepDir(cfg, dir, !!options.overwrite);
  checkOtherProcesses(dir, shard, !!options.overwrite);
  const stageConfigs = search.stages.flatMap((st) => preflightConfigs(cfg, st));
  const trainsFinal = search.final && shard === null ? [finalConfig(cfg, 0)] : [];
  const { maxModels } = await preflight(cfg, [...stageConfigs, ...trainsFinal], search.population);
  const population = Math.min(search.population, maxModels);
  if (population < search.population) {
    log(
      `search.population ${search.population} does not fit this adapter (at most ${maxModels} models of ` +
        `${
          configSizes(cfg).join("-")
        } at batch ${cfg.train.batchSize}): training populations of ${population}`,
    );
  }
  return { cfg, search, dir, shard, population, options, log };
}

/**
 * The configs a stage's populations train with, as far as the preflight is concerned: the
 * stage's, and with dropout when its space searches dropout and the stage has none (dropout
 * changes the training graph; η and σ do not).
 */
function preflightConfigs(cfg: Config, stage: Stage): Config[] {
  const scfg = stageConfig(cfg, stage);
  const dims = stageDims(cfg, stage);
  return dims.includes("dropout") && !configValue(scfg, "dropout")
    ? [scfg, withHyper(scfg, { dropout: 0.5 })]
    : [scfg];
}

/** Take this process's lock: the sweep's, or its shard's. */
function lockSweep({ dir, shard }: SweepRun): Promise<Lock> {
  const lockFile = shard ? `${dir}.shard-${shard.index + 1}-of-${shard.count}.lock` : `${dir}.lock`;
  return acquireLock(
    lockFile,
    `sweeping ${dir}` + (shard ? ` (shard ${shard.label})` : ""),
  );
}

/**
 * Under the lock: check the other processes again, create (or replace) the sweep directory,
 * validate every trials file before anything trains or is written, and remove the temporaries of
 * atomic writes a kill left.
 */
async function openSweep(run: SweepRun): Promise<SweepState> {
  const { cfg, dir, shard, options } = run;
  checkOtherProcesses(dir, shard, !!options.overwrite);
  await openSweepDir(cfg, dir, !!options.overwrite);
  // every trials file is valid and belongs to this config before anything trains or is written
  readTrials(dir, cfg);
  const startedAt = new Date(), t0 = performance.now();
  const snapshotFile = join(
    dir,
    shard
      ? `.snapshot.shard-${shard.index + 1}-of-${shard.count}.safetensors`
      : ".snapshot.safetensors",
  );
  const populationFile = join(dir, populationFileName(shard));
  await removeTemporaries(dir, [
    trialsFile(shard),
    basename(snapshotFile),
    basename(populationFile),
  ]);
  return {
    ...run,
    startedAt,
    t0,
    snapshotFile,
    trialsFile: join(dir, trialsFile(shard)),
    populationFile,
    data: null,
    tops: new Map(),
  };
}

/**
 * Remove this process's population snapshot. Every exit of a sweep but an interruption comes when
 * this process has no population in flight (all of its trials so far are recorded): a snapshot
 * left then is of a population recorded just before a kill, and goes.
 */
async function dropSnapshot(s: SweepState): Promise<void> {
  await Deno.remove(s.snapshotFile).catch(() => {});
}

/**
 * Plan a stage's trials. A stage that searches around one whose trials other shards have not all
 * recorded cannot be planned yet: the sweep stops there (null) and says to merge.
 */
async function stagePlan(s: SweepState, stage: Stage): Promise<TrialPlan[] | null> {
  const centres = centresFor(s.cfg, stage, s.tops);
  if (centres === null) {
    s.log(
      `stage ${stage.name} searches around stage ${
        (stage.space as { stage: string }).stage
      }, which other shards ` +
        `have not finished: run \`deno task sweep --merge ${s.dir}\` when all shards are done, then run the shards again`,
    );
    await dropSnapshot(s);
    return null;
  }
  return planStage(s.cfg, stage, centres);
}

/** Resume: the trials that earlier runs and the other shards recorded, by id. */
function resumeStage(s: SweepState): Map<string, TrialRecord> {
  return readTrials(s.dir, s.cfg);
}

/** Shard: the planned trials this process trains and that are not recorded yet (logged). */
function shardStage(
  s: SweepState,
  stage: Stage,
  plan: TrialPlan[],
  done: Map<string, TrialRecord>,
): TrialPlan[] {
  const { shard } = s;
  recordedTrials(plan, done, s.dir);
  const todo = plan.filter((p) => ownsTrial(shard, p.index) && !done.has(p.id));
  const mine = plan.filter((p) => ownsTrial(shard, p.index)).length;
  s.log(
    `stage ${stage.name}: ${describeSpace(stage.space)}; ${plan.length} trials` +
      (shard ? `, ${mine} on shard ${shard.label}` : "") + `, ${mine - todo.length} already done`,
  );
  return todo;
}

/**
 * Train a stage's trials to do in populations of at most `population` models, each recorded as
 * it finishes. False when interrupted: the population in flight is kept as a snapshot.
 */
async function trainStage(
  s: SweepState,
  stage: Stage,
  todo: TrialPlan[],
  done: Map<string, TrialRecord>,
): Promise<boolean> {
  if (todo.length === 0) return true;
  const data = s.data ??= await prepareData(s.cfg);
  const scfg = stageConfig(s.cfg, stage);
  let at = 0;
  const chunks = groupPopulations(todo, s.population);
  if ((stage.halving || stage.pbt) && chunks.length > 1) {
    s.log(
      `stage ${stage.name}: ${
        stage.halving ? "successive halving" : "population-based training"
      } ranks each population on its own: ` +
        `${todo.length} trials train in ${chunks.length} populations (search.population ` +
        `${s.population}, grouped by shared values)`,
    );
  }
  for (const chunk of chunks) {
    // what the population shares (η, σ, dropout) is in its config; λ and seed are per model
    const pcfg = withHyper(scfg, sharedHyper(chunk[0].hyper ?? {}));
    const result = await trainChunk(s, data, stage, pcfg, chunk, done);
    if (result.interrupted) {
      s.log(
        `interrupted at step ${result.steps}/${result.totalSteps} of a population of stage ${stage.name} ` +
          `(${at} of its ${todo.length} trials to train were saved before); run the same command to resume`,
      );
      data.dataset.destroy();
      return false;
    }
    at += chunk.length;
  }
  return true;
}

/**
 * The per-model values of a population's trials beyond λ and seed: each trial's own schedule
 * when the trials search a learning rate, its own σ when they search σ, its own dropout when
 * they search dropout (nothing otherwise, so that a λ search trains exactly as before).
 */
function perModelValues(
  scfg: Config,
  chunk: TrialPlan[],
): Pick<PopulationSpec, "schedules" | "sigmas" | "dropouts"> {
  const searched = (d: string) => chunk.some((c) => c.hyper && d in c.hyper);
  const own = chunk.map((c) => withHyper(scfg, c.hyper ?? {}));
  return {
    ...(["etaMax", "etaMin", "eta"].some(searched)
      ? { schedules: own.map((c) => c.train.schedule) }
      : {}),
    ...(searched("sigma") ? { sigmas: own.map((c) => c.model.sigma) } : {}),
    ...(searched("dropout") ? { dropouts: own.map((c) => dropoutLayers(c)) } : {}),
  };
}

/**
 * Train one population (resuming its snapshot, if any) and, unless interrupted, append its trials
 * to this process's trials file and remove the snapshot.
 */
async function trainChunk(
  s: SweepState,
  data: PreparedData,
  stage: Stage,
  scfg: Config,
  chunk: TrialPlan[],
  done: Map<string, TrialRecord>,
): Promise<TrainResult> {
  const { snapshotFile, options, log } = s;
  const lambdas = chunk.map((c) => c.lambda);
  const spec: PopulationSpec = {
    ...populationSpec(scfg, data.cifar.train.n, lambdas, chunk.map((c) => c.seed)),
    ...perModelValues(scfg, chunk),
  };
  if (stage.halving) spec.halving = halvingSpec(stage.halving, scfg);
  if (stage.pbt) spec.pbt = pbtSpec(stage, scfg);
  const snapHash = await configHash(scfg, {
    stage: stage.name,
    trials: chunk.map((c) =>
      c.hyper ? [c.id, c.lambda, c.seed, c.hyper] : [c.id, c.lambda, c.seed]
    ),
  });
  const stored = await resumeSnapshot(s, snapHash, done);
  checkSnapshotData(s.snapshotFile, stored?.snapshot, data.fingerprint);
  const shared = formatHyper(sharedHyper(chunk[0].hyper ?? {}));
  log(
    `${stage.name}: training ${chunk.length} models at once (trials ${
      chunk.map((c) => c.index).join(", ")
    })` + (shared ? ` with ${shared}` : "") +
      (stored ? `, resuming at step ${stored.snapshot.step}` : ""),
  );
  // the population in flight, rewritten at each evaluation point, for the dashboard
  let shown = Promise.resolve();
  const show = (p: Progress) => {
    const population: PopulationProgress = {
      format: POPULATION_FORMAT,
      stage: stage.name,
      trials: chunk.map((c) => c.id),
      lambdas: p.lambdas ?? lambdas, // with PBT, their values now
      step: p.step,
      totalSteps: p.total,
      stepsPerSecond: p.stepsPerSecond,
      remainingSeconds: p.remainingSeconds,
      val: p.points.map((pt) => pt?.val?.accuracy ?? null),
      updatedAt: new Date().toISOString(),
    };
    shown = shown.then(() => writeJsonAtomic(s.populationFile, population)).catch(() => {});
  };
  const result = await trainPopulation(
    data.gpu,
    { ...trainDataOf(data.dataset), test: null },
    spec,
    {
      onEval: (p) => {
        log(formatPopulation(stage.name, p, lambdas));
        show(p);
      },
      signal: options.signal,
      resume: stored?.snapshot,
      onSnapshot: (snap) =>
        writeSnapshot(
          snapshotFile,
          snapHash,
          { ...snap, data: data.fingerprint },
          chunk.map((c) => c.id),
        ),
      snapshotSeconds: options.snapshotSeconds,
      onRung: (r) => log(formatRung(stage.name, r, chunk)),
      onExploit: (e) => log(formatExploit(stage.name, e, chunk)),
    },
  );
  await shown;
  if (result.interrupted) return result;
  // PBT's result is its best member as trained: its weights, written before its trials are
  // recorded (a kill in between retrains the population from its snapshot and writes them again)
  const best = stage.pbt ? await saveBestMember(s, data, scfg, chunk, result) : null;
  await appendTrials(
    s.trialsFile,
    chunk.map((c, z) =>
      trialRecord(
        c,
        result.models[z],
        s.shard,
        chunk,
        stage.pbt ? (z === best?.z ? { checkpoint: best.file } : {}) : undefined,
      )
    ),
  );
  if (best) {
    log(
      `${stage.name}: its best member, trial ${chunk[best.z].id} (val acc ${
        (100 * best.accuracy).toFixed(2)
      }%), as trained → ${join(s.dir, best.file)} (deno task eval --checkpoint ${
        join(s.dir, best.file)
      })`,
    );
  }
  await Deno.remove(snapshotFile).catch(() => {});
  await Deno.remove(s.populationFile).catch(() => {});
  const diverged = result.models.filter((m) => m.diverged).length;
  const stopped = result.models.filter((m) => m.stopped).length;
  const notes = [
    ...(diverged ? [`${diverged} diverged`] : []),
    ...(stopped ? [`${stopped} stopped at rungs`] : []),
  ];
  log(
    `${stage.name}: ${chunk.length} trials done in ${formatDuration(result.trainSeconds)}` +
      (notes.length ? ` (${notes.join(", ")})` : "") + ` → ${s.trialsFile}`,
  );
  return result;
}

/**
 * The weights of a PBT population's best member by final validation accuracy (diverged members
 * aside), as trained, in the sweep directory as `<stage>-<index>.weights.safetensors` with the
 * values it ended with; null when every member diverged.
 */
async function saveBestMember(
  s: SweepState,
  data: PreparedData,
  scfg: Config,
  chunk: TrialPlan[],
  result: TrainResult,
): Promise<{ z: number; file: string; accuracy: number } | null> {
  let z = -1, accuracy = -Infinity;
  result.models.forEach((m, i) => {
    const acc = m.diverged ? -Infinity : (m.final?.val ?? m.final?.train)?.accuracy ?? -Infinity;
    if (acc > accuracy) [z, accuracy] = [i, acc];
  });
  const j = result.members.indexOf(z);
  if (z < 0 || j < 0) return null;
  const plan = chunk[z];
  const end = pbtEndValues(plan, result.models[z]);
  const lambda = end.lambda ?? plan.lambda;
  const file = `${plan.id.replace("/", "-")}.weights.safetensors`;
  await writeFileAtomic(
    join(s.dir, file),
    encodeCheckpoint(result.params[j], data.stats, {
      config: JSON.stringify(withHyper(scfg, { ...end, lambda })),
      classNames: JSON.stringify(data.cifar.classNames),
      lambda: String(lambda),
      trial: plan.id,
    }),
  );
  return { z, file, accuracy };
}

/**
 * An exploit of PBT as a log line: each trial that copied another (trial indices), and the
 * values it goes on with.
 */
export function formatExploit(stage: string, e: ExploitEvent, chunk: TrialPlan[]): string {
  const moves = e.moves.map(({ model, event }) =>
    `${chunk[model].index} ← ${chunk[event.from].index} (${formatHyper(event.values)})`
  );
  return `${stage}: exploit at step ${e.step}: ` +
    (moves.length
      ? `${moves.length} trials copy: ${clip(moves.join(", "), 600)}`
      : "nobody copies");
}

/** A rung as a log line: where it was, who goes on and who stopped (trial indices). */
export function formatRung(stage: string, r: RungEvent, chunk: TrialPlan[]): string {
  const ids = (zs: number[]) => clip(zs.map((z) => chunk[z].index).join(", "), 400);
  const n = r.kept.length + r.stopped.length;
  return `${stage}: rung ${r.rung} at step ${r.step}: ${r.kept.length} of ${n} go on ` +
    `(trials ${ids(r.kept)}), ${r.stopped.length} stopped` +
    (r.stopped.length ? ` (trials ${ids(r.stopped)})` : "");
}

/**
 * Resume: the snapshot of the population whose config and trials hash to `snapHash` (null when
 * there is none, or with `restart`). A snapshot of other trials is refused, unless they are all
 * recorded already (the process ended between recording them and removing their snapshot).
 */
async function resumeSnapshot(
  s: SweepState,
  snapHash: string,
  done: Map<string, TrialRecord>,
): Promise<StoredSnapshot | null> {
  const hint = `pass --restart to train this population afresh`;
  const stored = s.options.restart ? null : await readSnapshot(s.snapshotFile, hint);
  if (stored && stored.hash !== snapHash) {
    const of = Array.isArray(stored.about) ? stored.about.map(String) : [];
    if (of.length === 0 || of.some((id) => !done.has(id))) {
      throw new UserError(
        `${s.snapshotFile} holds a population of other trials (${of.join(", ") || "unknown"}; ` +
          `planned differently, e.g. on an adapter that fits fewer models): ${hint}`,
      );
    }
    return null; // its trials were recorded just before the process ended
  }
  return stored;
}

/**
 * Rank a stage once all of its trials are recorded: log its top table and keep its top λs for
 * the stages that search around it. While other shards' trials are missing, the sweep stops
 * here (false) and says to merge.
 */
async function rankStage(s: SweepState, stage: Stage, plan: TrialPlan[]): Promise<boolean> {
  const { search, log } = s;
  const trials = recordedTrials(plan, readTrials(s.dir, s.cfg), s.dir);
  if (trials.length < plan.length) {
    log(
      `stage ${stage.name}: this shard's trials are done; ${
        plan.length - trials.length
      } trials of other shards ` +
        `are missing. When every shard has finished: deno task sweep --merge ${s.dir}`,
    );
    s.data?.dataset.destroy();
    await dropSnapshot(s);
    return false;
  }
  const sp = stage.space;
  s.tops.set(
    stage.name,
    topK(trials, Math.max(stage.top, sp.kind === "around" ? sp.top : 1, 3), search.rankBy),
  );
  if (stage.halving) {
    log(
      formatRungs(stage.name, halvingSpec(stage.halving, stageConfig(s.cfg, stage)).rungs, trials),
    );
  }
  log(formatTop(stage.name, topK(trials, stage.top, search.rankBy)));
  return true;
}

/** Every stage ranked: free the data on the GPU and remove a snapshot left by a kill. */
async function endStages(s: SweepState): Promise<void> {
  s.data?.dataset.destroy();
  await dropSnapshot(s);
}

/**
 * Final training: an unsharded sweep with a `final` block trains the final model with the best
 * trial of the last stage — its λ and its value in every other dimension — and records it in the
 * summary (null when interrupted); a shard only says that the final training runs unsharded.
 */
async function trainFinal(s: SweepState, summary: SweepSummary): Promise<SweepSummary | null> {
  const { search, shard, log } = s;
  const last = summary.stages.at(-1)!;
  if (search.final && shard === null) {
    if (last.top.length === 0) {
      throw new UserError(
        `every trial of stage ${last.name} diverged: no λ to train the final model with`,
      );
    }
    const best = last.top[0];
    const final = await finalTraining(s.cfg, s.dir, best.lambda, best.hyper, s.options, log);
    if (!final) return null;
    return await writeSummary(s, final);
  } else if (search.final) {
    log(
      `shard ${
        shard!.label
      }: stages done; the final training runs unsharded (deno task sweep --config … without --shard)`,
    );
  }
  return summary;
}

/** Write report.html (unless `report: false`) and log where the summary is. */
async function finishSweep(s: SweepState): Promise<void> {
  if (s.options.report !== false) await writeReport([s.dir]);
  s.log(
    `sweep ${s.cfg.name}: done in ${formatDuration((performance.now() - s.t0) / 1000)} → ${
      join(s.dir, "sweep.json")
    }`,
  );
}

/**
 * Train (or find, when resuming) the final model with the best trial's λ and values, inside the
 * sweep directory.
 */
async function finalTraining(
  cfg: Config,
  dir: string,
  lambda: number,
  hyper: Hyper | undefined,
  options: SweepOptions,
  log: (l: string) => void,
): Promise<RunMetrics | null> {
  const existing = readFinalMetrics(dir);
  const finalCfg = finalConfig(cfg, lambda, dir, hyper);
  const values = formatHyper({ ...hyper, lambda });
  if (
    existing?.status === "completed" && existing.lambda === lambda &&
    sameValues(existing.config, finalCfg, hyper)
  ) {
    log(`final training with ${values} already done`);
    return existing;
  }
  checkTrialConfig(finalCfg, "final", { ...hyper, lambda });
  log(`final training with the best ${values}`);
  const { metrics, interrupted } = await runExperiment(finalCfg, {
    overwrite: true,
    restart: options.restart,
    report: options.report,
    log,
    signal: options.signal,
    snapshotSeconds: options.snapshotSeconds,
  });
  return interrupted ? null : metrics;
}

/** Whether a final run's recorded config has the values of `hyper` that `cfg` has. */
function sameValues(recorded: unknown, cfg: Config, hyper: Hyper | undefined): boolean {
  if (!hyper) return true;
  try {
    return dimsOf(hyper).every((d) => configValue(recorded as Config, d) === configValue(cfg, d));
  } catch {
    return false;
  }
}

/**
 * The config of a sweep's final training with λ (and the best trial's other values, `hyper`),
 * into `<dir>/final/`.
 */
export function finalConfig(
  cfg: Config,
  lambda: number,
  dir: string = join(cfg.out, cfg.name),
  hyper: Hyper = {},
): Config {
  const f = cfg.search!.final!;
  const base: Config = {
    ...cfg,
    name: "final",
    out: dir,
    data: { ...cfg.data, ...stripUndefined(f.data ?? {}), test: true },
    train: { ...cfg.train, ...stripUndefined(f.train ?? {}), lambda },
    search: undefined,
  };
  return withHyper(base, { ...hyper, lambda });
}

/** Summary: write sweep.json from the trials on disk (and the final run, when there is one). */
async function writeSummary(s: SweepState, final: RunMetrics | null): Promise<SweepSummary> {
  const { cfg, dir } = s;
  const summary = await buildSummary(cfg, readTrials(dir, cfg), s.startedAt, s.t0, final);
  await writeJsonAtomic(join(dir, "sweep.json"), summary);
  await writeSweepLogs(dir);
  await Deno.remove(s.populationFile).catch(() => {});
  return summary;
}

/** The summary of a sweep's finished trials (and of the final run, when there is one). */
async function buildSummary(
  cfg: Config,
  done: Map<string, TrialRecord>,
  startedAt: Date,
  t0: number,
  final: RunMetrics | null,
): Promise<SweepSummary> {
  const stages = summarise(cfg, done).filter((s): s is StageSummary => s !== null);
  const gpu = await getGpu();
  const wall = (performance.now() - t0) / 1000;
  const trialsDone = [...done.values()];
  const steps = trialsDone.reduce((n, t) => n + (t.curves.at(-1)?.step ?? 0), 0);
  const summary: SweepSummary = {
    format: "webgpu-mlp.sweep/1",
    name: cfg.name,
    config: cfg,
    env: envInfo(gpu),
    timings: {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      wallSeconds: wall,
      setupSeconds: 0,
      trainSeconds: wall,
      steps,
      stepsPerSecond: steps / Math.max(wall, 1e-9),
    },
    stages,
  };
  if (final?.final.test) {
    const best = stages.at(-1)?.top[0];
    summary.final = {
      lambda: final.lambda,
      ...(best?.hyper && best.lambda === final.lambda ? { hyper: best.hyper } : {}),
      run: "final",
      testAccuracy: final.final.test.accuracy,
    };
  }
  return summary;
}

/**
 * Merge the shards' trials files into trials.jsonl and write sweep.json. Everything is read and
 * validated first: a bad line anywhere refuses the merge and leaves every file as it was.
 */
export async function mergeSweep(
  dir: string,
  log: (l: string) => void = console.log,
): Promise<SweepSummary> {
  const cfg = readSweepConfig(dir);
  if (!cfg) throw new UserError(`${dir} is not a sweep directory (no ${SWEEP_CONFIG})`);
  const lock = await acquireLock(`${resolve(dir)}.lock`, `merging ${dir}`);
  try {
    return await mergeLocked(cfg, dir, log);
  } finally {
    await lock.release();
  }
}

async function mergeLocked(
  cfg: Config,
  dir: string,
  log: (l: string) => void,
): Promise<SweepSummary> {
  const done = readTrials(dir, cfg);
  const final = readFinalMetrics(dir);
  const summary = await buildSummary(cfg, done, new Date(), performance.now(), final);
  const order = new Map(cfg.search!.stages.map((s, i) => [s.name, i]));
  const all = [...done.values()].sort((a, b) =>
    (order.get(a.stage) ?? 99) - (order.get(b.stage) ?? 99) || a.index - b.index
  );
  await writeFileAtomic(
    join(dir, "trials.jsonl"),
    all.map((t) => JSON.stringify(t)).join("\n") + (all.length ? "\n" : ""),
  );
  await writeJsonAtomic(join(dir, "sweep.json"), summary);
  await writeSweepLogs(dir);
  log(
    `merged ${all.length} trials of ${dir}; complete stages: ${
      summary.stages.map((s) => s.name).join(", ") || "none"
    }`,
  );
  for (const s of summary.stages) log(formatTop(s.name, s.top));
  return summary;
}
