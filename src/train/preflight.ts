/**
 * Preflight: everything that can be known before training is checked before training, so a bad
 * setting costs a second and one line, not a finished run. {@link preflight} checks that the
 * output directory can be written, the data directory resolves, the number of steps and
 * evaluation points is bounded, and that every buffer the training graph and the evaluator will
 * bind fits the adapter's limits — first by the layout's arithmetic (which names the limit and the
 * largest size or population that fits), then by building the graph's dispatches for real on a
 * placeholder dataset inside a GPU error scope.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { bnLayers, type Config } from "../config.ts";
import { UserError } from "../errors.ts";
import { getGpu, type Gpu } from "../gpu/device.ts";
import { pad4 } from "../gpu/buffers.ts";
import { IMAGE_BYTES, RECORD_BYTES, RECORDS_PER_BATCH } from "../data/format.ts";
import { resolveDataDir } from "../data/data_dir.ts";
import { uploadDataset } from "../data/resident.ts";
import { GpuParams, layerLayouts } from "../model/gpu_params.ts";
import { defaultEvalEvery, totalSteps } from "./schedule.ts";
import { EVAL_ROWS, Evaluator } from "./evaluate.ts";
import { METRIC_FLOATS } from "../kernels/reduce.ts";
import { trainingStep } from "./trainer.ts";
import { configSizes, populationSpec } from "./run.ts";

/** Most update steps one run may ask for. */
export const MAX_STEPS = 100_000_000;
/** Most evaluation points one run may ask for. */
export const MAX_EVAL_POINTS = 100_000;

/** Sample counts of a config's splits, known from the config alone. */
export function splitSizes(cfg: Config): { train: number; val: number; test: number } {
  const all = RECORDS_PER_BATCH * cfg.data.train.length;
  const holdout = cfg.data.val?.holdout ?? 0;
  return {
    train: all - holdout,
    val: cfg.data.val?.batch !== undefined ? RECORDS_PER_BATCH : holdout,
    test: cfg.data.test ? RECORDS_PER_BATCH : 0,
  };
}

/** Update steps and evaluation points of a config's schedule. */
function schedulePoints(cfg: Config): { total: number; points: number; every: number } {
  const perEpoch = Math.max(1, Math.floor(splitSizes(cfg).train / cfg.train.batchSize));
  const total = totalSteps(cfg.train.schedule, perEpoch);
  const every = cfg.train.evalEvery ?? defaultEvalEvery(cfg.train.schedule, perEpoch);
  return { total, every, points: Math.ceil(total / every) + 1 };
}

/** Metric slots the trainer's evaluator holds for a config: two per point, one stop, one test. */
function evalSlots(cfg: Config): number {
  return 2 * schedulePoints(cfg).points + 3;
}

/** Refuse a config whose schedule asks for too many steps or evaluation points. */
export function checkSteps(cfg: Config, where = "train"): void {
  const n = splitSizes(cfg);
  if (n.train < 1) {
    throw new UserError(
      `data.val.holdout ${cfg.data.val?.holdout} leaves no training samples (the training batches hold ${
        RECORDS_PER_BATCH * cfg.data.train.length
      }): hold out fewer`,
    );
  }
  if (cfg.train.batchSize > n.train) {
    throw new UserError(
      `train.batchSize ${cfg.train.batchSize} is larger than the training set (${n.train} samples): use at most ${n.train}`,
    );
  }
  const perEpoch = Math.floor(n.train / cfg.train.batchSize);
  const { total, every, points } = schedulePoints(cfg);
  if (total > MAX_STEPS) {
    throw new UserError(
      `${where}.schedule asks for ${total.toExponential(2)} update steps; at most ${
        MAX_STEPS.toExponential(0)
      } are allowed ` +
        `(${perEpoch} steps make an epoch): train fewer epochs or cycles`,
    );
  }
  if (points > MAX_EVAL_POINTS) {
    throw new UserError(
      `${where}.evalEvery ${every} gives ${points} evaluation points over ${total} steps; at most ${MAX_EVAL_POINTS} are allowed: evaluate less often`,
    );
  }
}

/**
 * The output directory can be written: it is a directory, or it can be created under its nearest
 * existing ancestor, which is probed with a file written and removed (nothing is created).
 */
export async function checkOutDir(out: string): Promise<void> {
  let at = resolve(out);
  for (;;) {
    let st: Deno.FileInfo | null = null;
    try {
      st = Deno.statSync(at);
    } catch (e) {
      const dangling = e instanceof Deno.errors.NotFound && linkTarget(at);
      if (dangling) {
        throw new UserError(
          `--out ${out}: ${at} is a symbolic link to ${dangling}, which does not exist: create ` +
            "its target, or point --out elsewhere",
        );
      }
      if (!(e instanceof Deno.errors.NotFound) && !(e instanceof Deno.errors.NotADirectory)) {
        throw new UserError(
          `--out ${out} cannot be used (${at}: ${firstLine(e)}): choose another --out`,
        );
      }
    }
    if (st) {
      if (!st.isDirectory) {
        throw new UserError(
          `--out ${out}: ${at} is not a directory: point --out (or "out") at a directory`,
        );
      }
      break;
    }
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  const probe = join(at, `.write-probe-${Deno.pid}`);
  try {
    await Deno.writeTextFile(probe, "", { createNew: true });
    await Deno.remove(probe);
  } catch (e) {
    throw new UserError(
      `--out ${out} cannot be written (${at}: ${firstLine(e)}): choose another --out`,
    );
  }
}

/** Where the symbolic link at `path` points, or null when it is not one. */
function linkTarget(path: string): string | null {
  try {
    return Deno.lstatSync(path).isSymlink ? Deno.readLinkSync(path) : null;
  } catch {
    return null;
  }
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/** One buffer the graph binds, for the arithmetic check. */
interface Need {
  what: string;
  bytes: number;
}

/** The largest buffers a population of P models of `cfg` binds (weights, activations, inputs). */
function needs(cfg: Config, P: number): Need[] {
  const n = splitSizes(cfg);
  const rows = [cfg.train.batchSize, Math.min(EVAL_ROWS, Math.max(n.train, n.val, n.test))];
  const out = layerNeeds(configSizes(cfg), P, rows);
  const slots = evalSlots(cfg);
  out.push({
    what: `the evaluation sums (${slots} slots${P > 1 ? ` for ${P} models` : ""})`,
    bytes: 4 * slots * P * METRIC_FLOATS,
  });
  return out;
}

/** The weights, activations and inputs of P models of `sizes` run on batches of each of `rows`. */
function layerNeeds(sizes: number[], P: number, rows: number[]): Need[] {
  const layers = layerLayouts(sizes, P);
  const out: Need[] = [];
  const models = P > 1 ? ` for ${P} models` : "";
  layers.forEach((L, l) => {
    out.push({ what: `W${l + 1} (${L.nIn}×${L.nOut}${models})`, bytes: 4 * L.pin * L.ld });
    for (const R of rows) {
      out.push({
        what: `layer ${l + 1}'s activations (${R} rows × ${L.nOut}${models})`,
        bytes: 4 * R * L.ld,
      });
    }
  });
  for (const R of rows) {
    out.push({ what: `the inputs (${R} rows × ${sizes[0]})`, bytes: 4 * R * pad4(sizes[0]) });
  }
  return out;
}

/**
 * The one-line problem when one model of `sizes`, evaluated in chunks of `rows` rows (`deno task
 * eval`), needs a buffer larger than this adapter binds, else null: found before any upload.
 */
export function evalFitProblem(gpu: Gpu, sizes: number[], rows: number): string | null {
  const limit = bindingLimit(gpu);
  const over = layerNeeds(sizes, 1, [rows]).filter((x) => x.bytes > limit.bytes);
  if (over.length === 0) return null;
  const worst = over.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  return `${worst.what} needs ${mib(worst.bytes)}, more than this adapter's ${limit.name} of ${
    mib(limit.bytes)
  }: evaluate it on an adapter that binds more`;
}

/** The binding limit that counts: the smaller of the storage binding and buffer size limits. */
function bindingLimit(gpu: Gpu): { bytes: number; name: string } {
  const a = gpu.limits.maxStorageBufferBindingSize, b = gpu.limits.maxBufferSize;
  return a <= b
    ? { bytes: a, name: "maxStorageBufferBindingSize" }
    : { bytes: b, name: "maxBufferSize" };
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(b < 2 ** 24 ? 1 : 0)} MiB`;

/**
 * The most models of `cfg` one population may hold on this adapter (≥ 1), or a {@link UserError}
 * naming the limit and what fits when not even one model does.
 */
export function maxPopulation(gpu: Gpu, cfg: Config): number {
  const limit = bindingLimit(gpu);
  const over = needs(cfg, 1).filter((x) => x.bytes > limit.bytes);
  if (over.length > 0) {
    const worst = over.reduce((a, b) => (b.bytes > a.bytes ? b : a));
    throw new UserError(
      `${worst.what} needs ${mib(worst.bytes)}, more than this adapter's ${limit.name} of ${
        mib(limit.bytes)
      }: ${fitHint(cfg, limit.bytes)}`,
    );
  }
  let lo = 1, hi = 4096;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (needs(cfg, mid).every((x) => x.bytes <= limit.bytes)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** What to change so that one model fits: the widest layer or the largest batch that would. */
function fitHint(cfg: Config, limit: number): string {
  const hidden = cfg.model.hidden;
  const hints: string[] = [];
  const fitsWith = (c: Config) => needs(c, 1).every((x) => x.bytes <= limit);
  for (let l = 0; l < hidden.length; l++) {
    if (
      fitsWith({
        ...cfg,
        model: { ...cfg.model, hidden: hidden.map((h, i) => i === l ? 1 : h) },
      })
    ) {
      let lo = 1, hi = hidden[l];
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        const c = {
          ...cfg,
          model: { ...cfg.model, hidden: hidden.map((h, i) => i === l ? mid : h) },
        };
        if (fitsWith(c)) lo = mid;
        else hi = mid - 1;
      }
      if (lo < hidden[l]) hints.push(`model.hidden[${l}] of at most ${lo} units fits`);
    }
  }
  const B = cfg.train.batchSize;
  if (fitsWith({ ...cfg, train: { ...cfg.train, batchSize: 1 } })) {
    let lo = 1, hi = B;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (fitsWith({ ...cfg, train: { ...cfg.train, batchSize: mid } })) lo = mid;
      else hi = mid - 1;
    }
    if (lo < B) hints.push(`train.batchSize of at most ${lo} fits`);
  }
  return hints.length ? hints.join("; ") : "use smaller hidden layers";
}

/**
 * Build a population's training step and evaluator for real, on a one-image placeholder dataset,
 * inside GPU error scopes: whatever the arithmetic missed (a workgroup count, a texture size, a
 * binding the adapter refuses) becomes a {@link UserError} before any data is loaded.
 */
export async function dryBuild(gpu: Gpu, cfg: Config, P: number): Promise<void> {
  const device = gpu.device;
  const n = splitSizes(cfg);
  const dataset = uploadDataset(device, [{
    name: "train",
    images: new Uint8Array(IMAGE_BYTES),
    labels: new Uint8Array(1),
  }], { mean: new Float32Array(IMAGE_BYTES), std: new Float32Array(IMAGE_BYTES).fill(1) });
  const train = { base: 0, n: n.train };
  const lambdas = Array.from({ length: P }, () => 0);
  const spec = populationSpec(cfg, n.train, lambdas, lambdas);
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  let problem: string | null = null;
  const made: { destroy(): void }[] = [dataset];
  try {
    const params = new GpuParams(device, spec.sizes, lambdas, bnLayers(cfg));
    made.push(params);
    made.push(
      trainingStep(params, { dataset, train, val: null, test: null }, spec, {
        textures: gpu.prefersTextures,
        profile: gpu.kernelProfile,
        tail: gpu.fuseTail,
        gather: gpu.fuseGather,
        images: gpu.fuseImages,
      }),
    );
    const splits: Record<string, { base: number; n: number }> = { train };
    if (n.val) splits.val = { base: 0, n: n.val };
    if (n.test) splits.test = { base: 0, n: n.test };
    made.push(
      new Evaluator(params, dataset, splits, evalSlots(cfg), {
        textures: gpu.prefersTextures,
        profile: gpu.kernelProfile,
      }),
    );
  } catch (e) {
    problem = firstLine(e);
  }
  const validation = await device.popErrorScope();
  const memory = await device.popErrorScope();
  for (const m of made.reverse()) m.destroy();
  problem ??= validation?.message.split("\n").find((l) => l.trim()) ?? null;
  if (memory) problem ??= `out of GPU memory (${memory.message.split("\n")[0]})`;
  if (problem) {
    throw new UserError(
      `${cfg.name}: the training graph for ${spec.sizes.join("-")}` +
        (P > 1 ? ` × ${P} models` : "") +
        `, batch ${cfg.train.batchSize}, does not fit this adapter: ${problem}`,
    );
  }
}

/** What {@link preflight} found. */
export interface Preflight {
  /** The process-wide GPU. */
  gpu: Gpu;
  /** The resolved CIFAR-10 directory. */
  dataDir: string;
  /** Most models one population of this config may hold on this adapter. */
  maxModels: number;
}

/**
 * Check a run's config against the machine before any work: `configs` are the configs that will
 * train (a sweep's stages and final training, a config's variants), `models` the largest
 * population planned (1 for a single run).
 */
export async function preflight(
  cfg: Config,
  configs: Config[],
  models: number,
): Promise<Preflight> {
  await checkOutDir(cfg.out);
  const dataDir = resolveDataDir(cfg.data.dir);
  for (const c of [cfg, ...configs]) checkDataFiles(dataDir, c);
  for (const c of configs) checkSteps(c);
  const gpu = await getGpu();
  let maxModels = models;
  for (const c of configs) maxModels = Math.min(maxModels, maxPopulation(gpu, c));
  for (const c of configs) await dryBuild(gpu, c, Math.min(models, maxModels));
  return { gpu, dataDir, maxModels };
}

/** The batch files a config reads exist and have the size of whole records. */
function checkDataFiles(dir: string, cfg: Config): void {
  const batches = [...cfg.data.train, ...(cfg.data.val?.batch ? [cfg.data.val.batch] : [])];
  const files = batches.map((b) => `data_batch_${b}.bin`);
  if (cfg.data.test) files.push("test_batch.bin");
  for (const f of files) {
    const path = join(dir, f);
    let size: number;
    try {
      const st = Deno.statSync(path);
      if (!st.isFile) throw new Error("not a regular file");
      size = st.size;
    } catch (e) {
      throw new UserError(
        `${path} cannot be read (${
          firstLine(e)
        }): run \`deno task data\` for a fresh copy, or pass --data DIR`,
      );
    }
    if (size === 0 || size % RECORD_BYTES !== 0) {
      throw new UserError(
        `${path} has ${size} bytes, not a whole number of ${RECORD_BYTES}-byte records: the file is damaged; run \`deno task data\``,
      );
    }
  }
}
