/**
 * The training loop: a population of P networks (P = 1 for a single run) trained in lockstep on
 * the same shuffled mini-batches, entirely on the GPU.
 *
 * Each submission encodes up to {@link STEP_CHUNK} whole steps (gather, forward, loss, backward,
 * update) in one compute pass, reading per-step values (η, epoch, batch position) from a step
 * table by dynamic offset. At evaluation points the same pass ends with full-split evaluations
 * whose sums are read back asynchronously while the next steps are already queued: the CPU
 * never waits inside an epoch.
 *
 * @module
 */

import { encodeSteps, STEP_STRIDE, type StepRecord, writeBuffer } from "../gpu/buffers.ts";
import { ETA_ROWS } from "../model/gpu_params.ts";
import type { Gpu, KernelProfile } from "../gpu/device.ts";
import type { ResidentDataset, SplitRange } from "../data/resident.ts";
import { gatherOp } from "../kernels/gather.ts";
import { type Op, OpEncoder } from "../kernels/op.ts";
import { GpuParams } from "../model/gpu_params.ts";
import { initParams, type InitScheme, type Params } from "../model/init.ts";
import type { EvalPoint, SplitMetrics, TestMetrics } from "./metrics.ts";
import {
  type CyclicSchedule,
  evalSteps,
  learningRate,
  type Schedule,
  type StepDecaySchedule,
  totalSteps,
} from "./schedule.ts";
import { Evaluator, type SlotSums, testMetrics } from "./evaluate.ts";
import {
  adamStep,
  backwardPass,
  createGrads,
  createWorkspace,
  forwardPass,
  lossOf,
  type NetOptions,
  type Workspace,
} from "./graph.ts";
import { kernel, type PlacementOptions, placeOps, storageOf } from "../kernels/placement.ts";
import type { Augment } from "../nn/shared.ts";
import type { Snapshot } from "./snapshot.ts";
import { UserError } from "../errors.ts";
import { type HalvingSpec, rungsProblem, selectModels, survivors } from "./halving.ts";
import { BlockCopier, encodeCompaction } from "./compact.ts";
import {
  exploit,
  type PbtEvent,
  type PbtMove,
  pbtProblem,
  pbtReady,
  type PbtSpec,
  replayed,
  valuesOf,
  withValues,
} from "./pbt.ts";

/** Steps encoded per submission, at most. */
export const STEP_CHUNK = ETA_ROWS;

/** What to train: one shape, one schedule, P models differing in λ and initialisation seed. */
export interface PopulationSpec {
  /** Layer sizes: input dimension, hidden sizes…, classes. */
  sizes: number[];
  /** Weight initialisation scheme, shared by all models. */
  init: InitScheme;
  /** Standard deviation of the `gaussian` scheme's weights (ignored by `xavier` and `he`). */
  sigma: number;
  /** λ of each model (its length is P). */
  lambdas: number[];
  /** Initialisation seed of each model. */
  seeds: number[];
  /** Samples per mini-batch; an epoch is floor(train n / batchSize) steps, the remainder of each
   * epoch's shuffle is skipped. */
  batchSize: number;
  /** Learning-rate schedule; it also fixes the total number of steps. */
  schedule: Schedule;
  /**
   * Each model's own learning-rate schedule (length P; default: `schedule` for all). Each must
   * have `schedule`'s kind and number of steps (and a cyclic one its step size): only the rates
   * may differ.
   */
  schedules?: Schedule[];
  /** Each model's σ of the `gaussian` initialisation (length P; default: `sigma` for all). */
  sigmas?: number[];
  /**
   * Each model's dropout probability after each hidden layer (`[model][layer]`; default:
   * `net.dropout` for all).
   */
  dropouts?: number[][];
  /** Update steps between evaluation points (step 0 and the last step are always evaluated). */
  evalEvery: number;
  /** Seed of the per-epoch shuffles (shared: all models see the same batches). */
  shuffleSeed: number;
  /** Per hidden layer: batch normalisation. */
  bn?: boolean[];
  /** Dropout, BN momentum and L2 on γ/β; `net.seed` seeds the dropout masks. */
  net?: NetOptions;
  /** SGD (default; fused into the backward kernels) or Adam. */
  optimizer?: { kind: "sgd" } | { kind: "adam"; beta1: number; beta2: number; eps: number };
  /** Random flips and translations of training samples in the gather kernel. */
  augment?: Augment;
  /**
   * Successive halving: at each rung (an evaluation point) the worst models stop and the
   * survivors go on as a narrower population, their state compacted on the GPU (`halving.ts`).
   */
  halving?: HalvingSpec;
  /**
   * Population-based training: at each of its steps (evaluation points) the worst models copy
   * the state of some of the best on the GPU and explore new values of λ, η or dropout
   * (`pbt.ts`). Not with `halving`.
   */
  pbt?: PbtSpec;
}

/** The splits of a resident dataset to train and evaluate on. */
export interface TrainData {
  /** The GPU-resident images, labels and normalisation statistics. */
  dataset: ResidentDataset;
  /** Images the mini-batches are drawn from; evaluated at every point. */
  train: SplitRange;
  /** Validation images, evaluated at every point, or null for none. */
  val: SplitRange | null;
  /** Test images, evaluated once after training (with confusion counts), or null for none. */
  test: SplitRange | null;
}

/** The training data of a resident dataset: its own splits (train, and val and test if any). */
export function trainDataOf(dataset: ResidentDataset): TrainData {
  const { train, val, test } = dataset.splits;
  return { dataset, train, val: val ?? null, test: test ?? null };
}

/** Everything one model of the population produced. */
export interface ModelResult {
  /** Its healthy evaluation points, in step order (none after divergence). */
  curves: EvalPoint[];
  /** Metrics of its last healthy evaluation point, or null if it had none. */
  final: { train: SplitMetrics; val?: SplitMetrics } | null;
  /** Test metrics: with a test split, for a model that did not diverge, unless interrupted. */
  test?: TestMetrics;
  /** Set when an evaluation saw NaN/Inf: that evaluation's step, and a message. */
  diverged?: { step: number; reason: string };
  /** Set when successive halving stopped it: the rung (1-based) and its step. */
  stopped?: { rung: number; step: number };
  /** With PBT: each exploit of the model, in step order (absent while it has none). */
  lineage?: PbtEvent[];
}

/** A progress report at an evaluation point. */
export interface Progress {
  /** Update steps done at this evaluation point. */
  step: number;
  /** Update steps the schedule asks for. */
  total: number;
  /** Epochs done (fractional). */
  epoch: number;
  /** Learning rate of the last step taken (of step 0 at step 0). */
  eta: number;
  /** Seconds since the training loop started (setup excluded). */
  elapsedSeconds: number;
  /** Mean rate so far: step / elapsedSeconds. */
  stepsPerSecond: number;
  /** Estimated seconds left. */
  remainingSeconds: number;
  /** The point for each model (null for a model that has diverged or been stopped). */
  points: (EvalPoint | null)[];
  /** With halving: how many models its rungs have stopped so far. */
  stopped?: number;
  /** With PBT: each model's λ now (after the exploits so far). */
  lambdas?: number[];
}

/** What happened at a rung of successive halving (see {@link TrainOptions.onRung}). */
export interface RungEvent {
  /** The rung, 1-based. */
  rung: number;
  /** Its update step. */
  step: number;
  /** The models that go on (indices in the spec), increasing. */
  kept: number[];
  /** The models it stopped, increasing (diverged models are dropped without being listed). */
  stopped: number[];
  /** Copies the compaction encoded (0 when no model left the population). */
  copies: number;
}

/** What happened at an exploit of population-based training (see {@link TrainOptions.onExploit}). */
export interface ExploitEvent {
  /** Its update step. */
  step: number;
  /** Who copied whom, and the values they go on with (indices in the spec). */
  moves: PbtMove[];
  /** Dispatches the copies encoded (0 when no model copied). */
  dispatches: number;
}

/** The outcome of {@link trainPopulation}. */
export interface TrainResult {
  /** Curves, final and test metrics of each model, in `spec.lambdas` order. */
  models: ModelResult[];
  /** Final parameters of the models in `members`, in that order (float32 values). */
  params: Params[];
  /**
   * The models `params` holds (indices in the spec): every model, or with halving those its
   * last rung kept.
   */
  members: number[];
  /** Update steps done (less than `totalSteps` when interrupted or every model diverged). */
  steps: number;
  /** floor(train n / batchSize): steps in one epoch. */
  stepsPerEpoch: number;
  /** Steps the schedule asks for. */
  totalSteps: number;
  /** Seconds of the training loop and its evaluations (setup, test pass and download excluded). */
  trainSeconds: number;
  /** True when `signal` stopped the run early. */
  interrupted: boolean;
  /** Snapshots handed to `onSnapshot`: how many, their buffer bytes, and the seconds it took. */
  snapshots: { count: number; bytes: number; seconds: number };
}

/** Options of {@link trainPopulation}. */
export interface TrainOptions {
  /** Called at each evaluation point, in step order, once its metrics have been read back. */
  onEval?: (p: Progress) => void;
  /**
   * Stop when aborted: no further chunk of steps is submitted, and the curves end at the last
   * evaluation point reached (the run reports `interrupted`).
   */
  signal?: AbortSignal;
  /** Initial parameters (one per model) instead of initialising from the seeds. */
  initial?: Params[];
  /** Continue from this snapshot (of the same spec) instead of starting at step 0. */
  resume?: Snapshot;
  /**
   * Called with a resumable snapshot at every evaluation point after step 0, at least every
   * `snapshotSeconds` of training (at the end of a chunk of steps), and at the step an
   * interrupted run stopped; calls come in step order, each awaited before the next.
   */
  onSnapshot?: (s: Snapshot) => Promise<void>;
  /** Seconds of training between timed snapshots (default {@link SNAPSHOT_SECONDS}). */
  snapshotSeconds?: number;
  /** With halving: called at each rung, once it has been ranked and the population compacted. */
  onRung?: (r: RungEvent) => void;
  /** With PBT: called at each exploit, once the state has been copied and the values changed. */
  onExploit?: (e: ExploitEvent) => void;
}

/** Default seconds of training between two timed snapshots. */
export const SNAPSHOT_SECONDS = 30;

/** The dispatches of one training step, their workspace and the step table they read. */
export interface TrainingStep {
  /**
   * gather → forward → loss → backward with in-place SGD (or gradients, then Adam), in order;
   * where the tail carries the next step's gather, the step's own gather is in `prologue`.
   */
  ops: Op[];
  /** Ops to encode once before each run of steps (each submission): see `placeOps`. */
  prologue: Op[];
  ws: Workspace;
  /** Step table of {@link STEP_CHUNK} records (epoch, batch position, η per step). */
  steps: GPUBuffer;
  /**
   * Buffers that carry state from one step to the next beyond the parameters (Adam's moments),
   * by label: what a snapshot must hold besides {@link GpuParams.state}.
   */
  state: Record<string, GPUBuffer>;
  /** Free the step's buffers (workspace, step table, optimiser state). */
  destroy(): void;
}

/** Options of {@link trainingStep}. */
export interface TrainingStepOptions {
  /** Whether the adapter loads texels faster than buffer elements (`Gpu.prefersTextures`). */
  textures?: boolean;
  /** The kernel selection of the products (`Gpu.kernelProfile`; default `cpu`). */
  profile?: KernelProfile;
  /** Builds each product's op (default `matmulOp`): tools pass their own to watch the specs. */
  matmul?: PlacementOptions["matmul"];
  /** Fuse the top layers into one tail dispatch where they fit (default true; the bench compares). */
  tail?: boolean;
  /** Let the tail carry the next step's gather where it can (default true; tests compare). */
  gather?: boolean;
  /**
   * Let layer 1's products read the batch from the dataset's images, X never gathered, where
   * placement can (default true; tests and the bench compare): see `PlacementOptions.images`.
   */
  images?: boolean;
}

/** Build the dispatches of one training step (once per run; encoded every step). */
export function trainingStep(
  params: GpuParams,
  data: TrainData,
  spec: PopulationSpec,
  opts: TrainingStepOptions = {},
): TrainingStep {
  const device = params.device;
  const ws = createWorkspace(params, { rows: spec.batchSize, training: true });
  const steps = device.createBuffer({
    label: "train-steps",
    size: STEP_CHUNK * STEP_STRIDE,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const net = { ...spec.net, ...(spec.dropouts ? { modelDropout: spec.dropouts } : {}) };
  if (spec.dropouts) params.setDropout(spec.dropouts);
  const gather = {
    mode: "train" as const,
    dataset: data.dataset,
    split: data.train,
    R: spec.batchSize,
    y: ws.y,
    seed: spec.shuffleSeed,
    steps,
    augment: spec.augment,
  };
  const nodes = [
    kernel(
      "gather_train",
      { writesEither: [ws.X], gather },
      () => gatherOp(device, { ...gather, x: storageOf(ws.X) }),
    ),
    ...forwardPass(params, ws, { mode: "train", steps, net }),
    lossOf(params, ws, "train"),
  ];
  const owned: { destroy(): void }[] = [ws];
  const state: Record<string, GPUBuffer> = {};
  if (spec.optimizer?.kind === "adam") {
    const grads = createGrads(params);
    nodes.push(...backwardPass(params, ws, { kind: "grads", grads }, { net }));
    const adam = adamStep(params, ws, grads, steps, spec.optimizer);
    nodes.push(...adam.nodes);
    params.trainable().forEach((p, i) => {
      state[`adam.m.${p.name}`] = adam.state.m[i];
      state[`adam.v.${p.name}`] = adam.state.v[i];
    });
    owned.push(adam.state, {
      destroy: () =>
        [...grads.dW, ...grads.db, ...grads.dGamma, ...grads.dBeta].forEach((b) => b?.destroy()),
    });
  } else {
    nodes.push(...backwardPass(params, ws, { kind: "sgd", steps }, { net }));
  }
  const placed = placeOps(device, nodes, opts);
  owned.push(placed);
  return {
    ops: placed.ops,
    prologue: placed.prologue,
    ws,
    steps,
    state,
    destroy() {
      for (const o of owned) o.destroy();
      steps.destroy();
    },
  };
}

/** The evaluator's slots of a train and a val evaluation, adjacent (val = train + 1). */
export interface SlotPair {
  train: number;
  val: number;
}

/**
 * The evaluator's metrics slots of one training with `points` evaluation points: a pair per
 * point, one pair for the step an interrupted run stopped at, then one slot for the test.
 */
export function metricSlots(points: number): {
  point(k: number): SlotPair;
  stop: SlotPair;
  test: number;
  count: number;
} {
  const pair = (k: number): SlotPair => ({ train: 2 * k, val: 2 * k + 1 });
  return { point: pair, stop: pair(points), test: 2 * points + 2, count: 2 * points + 3 };
}

/**
 * Step-table records of steps [from, to) for a population spec. With per-model schedules the
 * records name their models and their index, and the kernels take each model's η from
 * {@link etaTable} (written beside λ) instead of the record's `eta`.
 */
export function stepRecords(
  spec: PopulationSpec,
  stepsPerEpoch: number,
  from: number,
  to: number,
): StepRecord[] {
  const records: StepRecord[] = [];
  const models = spec.schedules ? spec.lambdas.length : 0;
  const epoch = (t: number) => Math.floor(t / stepsPerEpoch);
  const pos = (t: number) => (t % stepsPerEpoch) * spec.batchSize;
  for (let t = from; t < to; t++) {
    records.push({
      step: t,
      epoch: epoch(t),
      pos: pos(t),
      eta: learningRate(spec.schedule, t, stepsPerEpoch),
      record: t - from,
      models,
      // the next step's batch, for a tail that gathers it (the table's last step has none: the
      // next submission's prologue gathers its first batch)
      next: t + 1 < to ? 1 : 0,
      nextEpoch: epoch(t + 1),
      nextPos: pos(t + 1),
    });
  }
  return records;
}

/**
 * Each model's η at steps [from, to) (at most {@link STEP_CHUNK}), record-major: what
 * {@link writeStepChunk} puts beside λ when the models have their own schedules.
 */
export function etaTable(
  spec: PopulationSpec,
  stepsPerEpoch: number,
  from: number,
  to: number,
): Float32Array {
  const P = spec.lambdas.length;
  const schedules = spec.schedules ?? Array(P).fill(spec.schedule);
  const out = new Float32Array((to - from) * P);
  for (let t = from; t < to; t++) {
    for (let m = 0; m < P; m++) {
      out[(t - from) * P + m] = learningRate(schedules[m], t, stepsPerEpoch);
    }
  }
  return out;
}

/**
 * Write the step table of steps [from, to) (at most {@link STEP_CHUNK}) and, with per-model
 * schedules, the models' learning rates beside λ.
 */
export function writeStepChunk(
  params: GpuParams,
  steps: GPUBuffer,
  spec: PopulationSpec,
  stepsPerEpoch: number,
  from: number,
  to: number,
): void {
  writeBuffer(params.device, steps, 0, encodeSteps(stepRecords(spec, stepsPerEpoch, from, to)));
  if (spec.schedules) {
    writeBuffer(
      params.device,
      params.lambda,
      4 * params.P,
      etaTable(spec, stepsPerEpoch, from, to),
    );
  }
}

/**
 * Check a spec's per-model values: one per model, and schedules that differ only in their rates.
 */
export function checkPerModel(spec: PopulationSpec, stepsPerEpoch: number): void {
  const P = spec.lambdas.length;
  if (spec.sigmas && spec.sigmas.length !== P) {
    throw new Error(`${spec.sigmas.length} sigmas for ${P} models`);
  }
  const hidden = spec.sizes.length - 2;
  if (
    spec.dropouts && (spec.dropouts.length !== P || spec.dropouts.some((d) => d.length !== hidden))
  ) {
    throw new Error(`dropouts need ${hidden} values for each of ${P} models`);
  }
  if (!spec.schedules) return;
  if (spec.schedules.length !== P) {
    throw new Error(`${spec.schedules.length} schedules for ${P} models`);
  }
  const total = totalSteps(spec.schedule, stepsPerEpoch);
  for (const s of spec.schedules) {
    const same = s.kind === spec.schedule.kind && totalSteps(s, stepsPerEpoch) === total &&
      (s.kind !== "cyclic" || s.stepSize === (spec.schedule as CyclicSchedule).stepSize) &&
      (s.kind !== "stepDecay" || s.every === (spec.schedule as StepDecaySchedule).every);
    if (!same) {
      throw new Error(
        `per-model schedules must share the kind, steps and step size of ${spec.schedule.kind}`,
      );
    }
  }
}

/**
 * Train the population; resolves when the last evaluation (and the test) has been read back.
 *
 * @example Train three λ values at once on the splits of a config
 * ```ts
 * import { loadConfig, prepareData, trainDataOf, trainPopulation } from "@webgpu-mlp/core";
 *
 * const cfg = await loadConfig("experiments/cyclic-1.json");
 * const data = await prepareData(cfg);
 * const result = await trainPopulation(data.gpu, { ...trainDataOf(data.dataset), test: null }, {
 *   sizes: [3072, 50, 10],
 *   init: "xavier",
 *   sigma: 0.01,
 *   lambdas: [1e-4, 1e-3, 1e-2],
 *   seeds: [0, 0, 0],
 *   batchSize: 100,
 *   schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 500, cycles: 1 },
 *   evalEvery: 100,
 *   shuffleSeed: 0,
 * });
 * data.dataset.destroy();
 * result.models.forEach((m, i) => console.log(i, m.final?.val?.accuracy));
 * ```
 */
export async function trainPopulation(
  gpu: Gpu,
  data: TrainData,
  spec: PopulationSpec,
  options: TrainOptions = {},
): Promise<TrainResult> {
  const device = gpu.device;
  const P = spec.lambdas.length;
  if (spec.seeds.length !== P) throw new Error("one seed per model");
  const B = spec.batchSize;
  const stepsPerEpoch = Math.floor(data.train.n / B);
  if (stepsPerEpoch < 1) throw new Error(`batch ${B} larger than the training set ${data.train.n}`);
  const total = totalSteps(spec.schedule, stepsPerEpoch);
  const rungs = rungSteps(spec, total);
  const exploits = pbtSteps(spec, total);
  const points = withRungs(evalSteps(total, spec.evalEvery), [...rungs, ...exploits]);
  const slots = metricSlots(points.length);
  checkPerModel(spec, stepsPerEpoch);

  const resume = options.resume;
  if (resume && (resume.step > total || resume.models.length !== P)) {
    throw new UserError(
      `the snapshot to resume is damaged (${
        resume.step > total
          ? `step ${resume.step} past the schedule's ${total}`
          : `${resume.models.length} models for a population of ${P}`
      }): pass --restart to start afresh`,
    );
  }
  // the models in the population now, as indices in the spec (fewer after a rung of halving)
  let members = resume ? resumedMembers(resume, P, rungs) : [...Array(P).keys()];
  // the values each model trains with now: with PBT they change at each exploit
  let current = spec.pbt ? pbtReady(spec, spec.pbt.dims) : spec;
  if (resume && spec.pbt) current = replayed(current, resume.models.map((m) => m.lineage));
  let live = livePopulation(gpu, data, selectModels(current, members), slots.count);
  if (!resume) {
    const initial = options.initial ??
      spec.seeds.map((seed, z) =>
        initParams(spec.sizes, spec.init, spec.sigmas?.[z] ?? spec.sigma, seed, spec.bn)
      );
    initial.forEach((p, z) => live.params.upload(z, p));
  } else {
    try {
      restoreState(device, live.state, resume, P);
    } catch (e) {
      live.destroy();
      throw e;
    }
  }

  const regular = new Set(points);
  const models: ModelResult[] = resume
    ? resume.models.map((m) => structuredClone(m))
    : Array.from({ length: P }, () => ({ curves: [], final: null }));
  // η of model z at step t (its own schedule, if it has one)
  const eta = (t: number, z = 0) =>
    learningRate(current.schedules?.[z] ?? current.schedule, t, stepsPerEpoch);
  const trainedBefore = resume?.trainSeconds ?? 0;
  const started = performance.now() - 1000 * trainedBefore;
  const seconds = () => (performance.now() - started) / 1000;
  let alive = members.filter((z) => !models[z].diverged).length;
  const stoppedCount = () => models.filter((m) => m.stopped).length;

  // the sums of an evaluation of the population `who` (models' indices, in population order)
  const finish = (at: number, who: number[], sums: SlotSums[][]) => {
    const elapsed = seconds();
    const report: (EvalPoint | null)[] = new Array(P).fill(null);
    who.forEach((z, j) => {
      const m = models[z];
      if (m.diverged) return;
      const l2 = sums[0][j].sumSquares;
      const train = splitMetrics(sums[0][j], l2, current.lambdas[z]);
      const val = data.val ? splitMetrics(sums[1][j], l2, current.lambdas[z]) : undefined;
      if (!isFiniteMetrics(train) || (val && !isFiniteMetrics(val)) || !Number.isFinite(l2)) {
        m.diverged = { step: at, reason: `loss or weights became NaN/Inf by step ${at}` };
        alive--;
        return;
      }
      const point: EvalPoint = {
        step: at,
        epoch: at / stepsPerEpoch,
        eta: eta(Math.max(at - 1, 0), z),
        train,
        ...(val ? { val } : {}),
      };
      m.curves.push(point);
      m.final = { train, ...(val ? { val } : {}) };
      report[z] = point;
    });
    const rate = (at - (resume?.step ?? 0)) / Math.max(elapsed - trainedBefore, 1e-9);
    options.onEval?.({
      step: at,
      total,
      epoch: at / stepsPerEpoch,
      eta: eta(Math.max(at - 1, 0)),
      elapsedSeconds: elapsed,
      stepsPerSecond: rate,
      remainingSeconds: at > 0 ? (total - at) / rate : NaN,
      points: report,
      ...(spec.halving ? { stopped: stoppedCount() } : {}),
      ...(spec.pbt ? { lambdas: [...current.lambdas] } : {}),
    });
  };

  // An evaluation of every model at step `at` into a pair of slots: encoded after what `ops` holds
  // (whose pass it ends); the returned function, called after the submission, reads it back.
  const submitEval = (
    enc: GPUCommandEncoder,
    ops: OpEncoder,
    at: number,
    pair: SlotPair,
  ): () => Promise<void> => {
    const requests = [
      { split: "train", slot: pair.train },
      ...(data.val ? [{ split: "val", slot: pair.val }] : []),
    ];
    live.evaluator.encode(ops, requests, pair.train);
    ops.end();
    const read = live.evaluator.readSlots(enc, pair.train, 2);
    const who = members;
    return () => read().then((sums) => finish(at, who, sums));
  };

  // Evaluations whose results are still being read back, in step order (settled ones are dropped
  // once awaited, so the list stays short however many points a run has).
  const pending: { step: number; done: Promise<void> }[] = [];
  // Snapshots: state buffers copied in the submission's stream right after step `at`, written
  // once they and every evaluation up to `at` have been read back, in order.
  let snapshots: Promise<void> = Promise.resolve();
  // a snapshot that cannot be written stops the run (after the chunk in flight) and is reported
  let snapshotError: unknown = null;
  const snapshotCost = { count: 0, bytes: 0, seconds: 0 };
  let lastSnapshot = performance.now(), snappedAt = -1;
  const snapshotEvery = 1000 * (options.snapshotSeconds ?? SNAPSHOT_SECONDS);
  const takeSnapshot = (enc: GPUCommandEncoder, at: number): () => void => {
    const read = readState(device, enc, live.state);
    // with halving, who is in the population and how many rungs it has passed
    const halved = spec.halving
      ? { members: [...members], rung: rungs.filter((r) => r <= at).length }
      : {};
    lastSnapshot = performance.now();
    snappedAt = at;
    return () => {
      const earlier = pending.filter((e) => e.step <= at).map((e) => e.done);
      const ready = Promise.all([read(), ...earlier]);
      snapshots = snapshots.then(async () => {
        const [buffers] = await ready;
        const t = performance.now();
        await options.onSnapshot!({
          step: at,
          trainSeconds: seconds(),
          models: models.map((m) => modelsAt(m, at, regular)),
          buffers,
          ...halved,
        });
        snapshotCost.count++;
        snapshotCost.bytes += Object.values(buffers).reduce((n, b) => n + b.byteLength, 0);
        snapshotCost.seconds += (performance.now() - t) / 1000;
      }).catch((e) => {
        snapshotError ??= e;
      });
    };
  };

  // A rung at step `at` (its evaluation read back): the worst models stop, and the survivors'
  // state is copied together on the GPU into a population of their own, which trains from here.
  // the models still training, with the accuracy a rung or an exploit ranks them by: their last
  // evaluation's on validation (on training data without a validation split)
  const standings = () =>
    members.filter((z) => !models[z].diverged).map((z) => {
      const last = models[z].final!;
      return { index: z, accuracy: (last.val ?? last.train).accuracy };
    });

  const halve = (at: number) => {
    const rung = rungs.indexOf(at) + 1;
    const ranked = standings();
    const kept = survivors(ranked, spec.halving!.reduction);
    const stopped = ranked.map((m) => m.index).filter((z) => !kept.includes(z));
    for (const z of stopped) models[z].stopped = { rung, step: at };
    let copies = 0;
    if (kept.length > 0 && kept.length < members.length) {
      const next = livePopulation(gpu, data, selectModels(spec, kept), slots.count);
      const enc = device.createCommandEncoder();
      const positions = kept.map((z) => members.indexOf(z));
      copies = encodeCompaction(
        enc,
        live.state,
        live.params.layers,
        next.state,
        next.params.layers,
        positions,
      );
      device.queue.submit([enc.finish()]);
      live.destroy();
      live = next;
      members = kept;
    }
    options.onRung?.({ rung, step: at, kept, stopped, copies });
  };

  // An exploit of PBT at step `at` (its evaluation read back): the bottom quantile copies the
  // state of models of the top one on the GPU, and goes on with values explored from theirs.
  const explore = (at: number) => {
    const pbt = spec.pbt!;
    const moves = exploit(standings(), (z) => valuesOf(current, z, pbt.dims), pbt, at);
    let dispatches = 0;
    if (moves.length > 0) {
      const origin = members.map((_, j) => j);
      for (const { model, event } of moves) origin[model] = event.from;
      const enc = device.createCommandEncoder();
      dispatches = live.copier!.encode(enc, origin);
      device.queue.submit([enc.finish()]);
      for (const { model, event } of moves) {
        current = withValues(current, model, event.values);
        (models[model].lineage ??= []).push(event);
      }
      live.spec = current;
      writeBuffer(device, live.params.lambda, 0, new Float32Array(current.lambdas));
      if (current.dropouts) live.params.setDropout(current.dropouts);
    }
    options.onExploit?.({ step: at, moves, dispatches });
  };

  let s = resume?.step ?? 0, k = points.findIndex((t) => t > s), interrupted = false;
  if (k < 0) k = points.length;
  if (!resume) {
    // point 0: the initial model
    const enc = device.createCommandEncoder();
    const after = submitEval(enc, new OpEncoder(enc), 0, slots.point(0));
    device.queue.submit([enc.finish()]);
    pending.push({ step: 0, done: after() });
  }

  // Keep at most two submissions queued (the one running and the next): the GPU always has work,
  // and an abort (Ctrl-C, SIGTERM) takes effect within two chunks of steps.
  const queued: Promise<unknown>[] = [];
  while (s < total) {
    if (alive === 0 || snapshotError) break;
    if (options.signal?.aborted) {
      interrupted = true;
      break;
    }
    const end = Math.min(points[k], s + STEP_CHUNK);
    const { ops: stepOps, prologue, steps } = live.step;
    writeStepChunk(live.params, steps, live.spec, stepsPerEpoch, s, end);
    const enc = device.createCommandEncoder();
    const ops = new OpEncoder(enc);
    ops.encodeAll(prologue);
    for (let t = s; t < end; t++) ops.encodeAll(stepOps, t - s);
    let after: (() => Promise<void>) | null = null;
    if (end === points[k]) after = submitEval(enc, ops, end, slots.point(k++));
    else ops.end();
    // a rung or an exploit: the population changes there, once its evaluation is read back
    const atRung = rungs.includes(end) || exploits.includes(end);
    const timed = performance.now() - lastSnapshot >= snapshotEvery;
    // a rung's snapshot is taken once the population is compacted, below
    const snap = options.onSnapshot && end < total && !atRung && (after || timed)
      ? takeSnapshot(enc, end)
      : null;
    device.queue.submit([enc.finish()]);
    gpu.check();
    s = end;
    if (after) pending.push({ step: end, done: after() });
    snap?.();
    queued.push(device.queue.onSubmittedWorkDone());
    if (atRung) {
      // the one readback a rung waits for: every evaluation up to it, the rung's last
      await Promise.all(pending.splice(0).map((e) => e.done));
      await Promise.all(queued.splice(0));
      if (rungs.includes(end)) halve(end);
      else explore(end);
      if (options.onSnapshot) {
        const enc = device.createCommandEncoder();
        const take = takeSnapshot(enc, end);
        device.queue.submit([enc.finish()]);
        take();
      }
      gpu.check();
    }
    while (queued.length > 1) await queued.shift();
    // keep at most two evaluations in flight: the CPU runs ahead, but not unboundedly
    while (pending.length > 2) await pending.shift()!.done;
    // turn the event loop once a chunk, so that a Ctrl-C, a progress line or a readback is seen
    // here and not only after the last chunk: the promises awaited above may already be settled
    // (work finished inside submit), and awaiting those runs microtasks only. Seen in CI: a
    // SIGINT sent just after the step-0 line was handled once all 1200 steps had been submitted.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  if (interrupted && s > 0 && !regular.has(s)) {
    // evaluate once at the step reached (reported, not part of the snapshot's curves), and keep a
    // snapshot there unless a timed one just fell on it (evaluation points always have one)
    const enc = device.createCommandEncoder();
    const after = submitEval(enc, new OpEncoder(enc), s, slots.stop);
    const snap = options.onSnapshot && snappedAt !== s ? takeSnapshot(enc, s) : null;
    device.queue.submit([enc.finish()]);
    pending.push({ step: s, done: after() });
    snap?.();
  }
  await Promise.all(pending.map((e) => e.done));
  await snapshots;
  if (snapshotError) {
    live.destroy();
    throw snapshotError;
  }
  const trainSeconds = seconds();
  gpu.check();

  if (data.test && alive > 0 && !interrupted) {
    const enc = device.createCommandEncoder();
    const ops = new OpEncoder(enc);
    live.evaluator.encode(ops, [{ split: "test", slot: slots.test, confusion: true }]);
    ops.end();
    const readSums = live.evaluator.readSlots(enc, slots.test, 1);
    const readCounts = live.evaluator.readConfusion(enc);
    device.queue.submit([enc.finish()]);
    const [sums, counts] = await Promise.all([readSums(), readCounts()]);
    members.forEach((z, j) => {
      if (models[z].diverged) return;
      models[z].test = testMetrics(sums[0][j], counts[j]);
    });
  }
  const finalParams = await live.params.download();
  gpu.check();
  live.destroy();
  return {
    models,
    params: finalParams,
    members,
    steps: s,
    stepsPerEpoch,
    totalSteps: total,
    trainSeconds,
    interrupted,
    snapshots: snapshotCost,
  };
}

/** The GPU side of a population in training: what a rung of halving replaces by a narrower one. */
interface LivePopulation {
  /** The spec of its models (the run's spec, {@link selectModels} of its members). */
  spec: PopulationSpec;
  params: GpuParams;
  step: TrainingStep;
  evaluator: Evaluator;
  /** Every buffer that carries state from one step to the next, by label (what a snapshot holds). */
  state: Record<string, GPUBuffer>;
  /** With PBT: copies between its models (the exploits). */
  copier: BlockCopier | null;
  destroy(): void;
}

/** Build a population's parameters (zeroed), training step and evaluator. */
function livePopulation(
  gpu: Gpu,
  data: TrainData,
  spec: PopulationSpec,
  slots: number,
): LivePopulation {
  const params = new GpuParams(gpu.device, spec.sizes, spec.lambdas, spec.bn);
  const step = trainingStep(params, data, spec, {
    textures: gpu.prefersTextures,
    profile: gpu.kernelProfile,
    tail: gpu.fuseTail,
    gather: gpu.fuseGather,
    images: gpu.fuseImages,
  });
  const splits: Record<string, SplitRange> = { train: data.train };
  if (data.val) splits.val = data.val;
  if (data.test) splits.test = data.test;
  const evaluator = new Evaluator(params, data.dataset, splits, slots, {
    bnL2: !!spec.net?.bnL2,
    textures: gpu.prefersTextures,
    profile: gpu.kernelProfile,
  });
  const state = { ...params.state(), ...step.state };
  // built with the population: a shape the device cannot copy is refused before any training
  const copier = spec.pbt ? new BlockCopier(gpu.device, state, params.layers, params.P) : null;
  return {
    spec,
    params,
    step,
    evaluator,
    state,
    copier,
    destroy() {
      copier?.destroy();
      evaluator.destroy();
      step.destroy();
      params.destroy();
    },
  };
}

/** The rungs of a spec's halving (none without), checked against the schedule's `total` steps. */
function rungSteps(spec: PopulationSpec, total: number): number[] {
  if (!spec.halving) return [];
  const { rungs, reduction } = spec.halving;
  const problem = rungsProblem(rungs, spec.schedule, total);
  if (problem) throw new Error(problem);
  if (!(reduction > 1)) throw new Error(`halving: the reduction factor ${reduction} is not > 1`);
  return rungs;
}

/** The exploit steps of a spec's PBT (none without), checked against the schedule's `total` steps. */
function pbtSteps(spec: PopulationSpec, total: number): number[] {
  if (!spec.pbt) return [];
  if (spec.halving) throw new Error(`a population takes successive halving or PBT, not both`);
  const problem = pbtProblem(spec.pbt, total);
  if (problem) throw new Error(problem);
  return spec.pbt.steps;
}

/** Evaluation points with the rungs among them (every rung is evaluated). */
function withRungs(points: number[], rungs: number[]): number[] {
  return [...new Set([...points, ...rungs])].sort((a, b) => a - b);
}

/**
 * The members of a resumed population: the snapshot's (every model when it has none, as
 * without halving), which must be the models its rungs up to its step left.
 */
function resumedMembers(snap: Snapshot, P: number, rungs: number[]): number[] {
  const bad = (what: string) =>
    new UserError(
      `the snapshot to resume from does not fit this run (${what}): pass --restart to start afresh`,
    );
  const passed = rungs.filter((r) => r <= snap.step).length;
  if ((snap.rung ?? 0) !== passed) {
    throw bad(
      `it has passed ${snap.rung ?? 0} rungs of halving, this run ${passed} by step ${snap.step}`,
    );
  }
  const members = snap.members ?? [...Array(P).keys()];
  if (
    members.length === 0 || members.some((z, j) =>
      !Number.isInteger(z) || z < 0 || z >= P ||
      (j > 0 && z <= members[j - 1])
    )
  ) {
    throw bad(`its members ${members.join(", ")} are not models of a population of ${P}`);
  }
  return members;
}

/** Model m as it stood after step `at`: its regular evaluation points up to `at` only. */
function modelsAt(m: ModelResult, at: number, regular: Set<number>): ModelResult {
  const curves = m.curves.filter((p) => p.step <= at && regular.has(p.step));
  const last = curves.at(-1);
  const out: ModelResult = {
    curves: structuredClone(curves),
    final: last ? { train: last.train, ...(last.val ? { val: last.val } : {}) } : null,
  };
  if (m.diverged && m.diverged.step <= at && regular.has(m.diverged.step)) {
    out.diverged = { ...m.diverged };
  }
  if (m.stopped && m.stopped.step <= at) out.stopped = { ...m.stopped };
  const lineage = m.lineage?.filter((e) => e.step <= at);
  if (lineage?.length) out.lineage = structuredClone(lineage);
  return out;
}

/** Copy every state buffer into a readable one in `enc`; the function reads them once submitted. */
function readState(
  device: GPUDevice,
  enc: GPUCommandEncoder,
  state: Record<string, GPUBuffer>,
): () => Promise<Record<string, Float32Array>> {
  const copies = Object.entries(state).map(([name, src]) => {
    const dst = device.createBuffer({
      label: `snapshot-${name}`,
      size: src.size,
      usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
    });
    enc.copyBufferToBuffer(src, 0, dst, 0, src.size);
    return { name, dst };
  });
  return async () => {
    const out: Record<string, Float32Array> = {};
    await Promise.all(copies.map(async ({ name, dst }) => {
      await dst.mapAsync(GPUMapMode.READ);
      out[name] = new Float32Array(dst.getMappedRange().slice(0));
      dst.destroy();
    }));
    return out;
  };
}

/** Put a snapshot's buffer contents back (the same spec: every buffer, the same sizes). */
function restoreState(
  device: GPUDevice,
  state: Record<string, GPUBuffer>,
  snap: Snapshot,
  P: number,
): void {
  const bad = (what: string) =>
    new UserError(
      `the snapshot to resume from does not fit this run (${what}): pass --restart to start afresh`,
    );
  if (snap.models.length !== P) throw bad(`${snap.models.length} models, not ${P}`);
  const names = Object.keys(state);
  const extra = Object.keys(snap.buffers).find((n) => !(n in state));
  if (extra) throw bad(`it holds ${extra}, which this run does not have`);
  for (const name of names) {
    const data = snap.buffers[name];
    if (!data || data.byteLength !== state[name].size) {
      throw bad(`${name}: ${data?.byteLength ?? "no"} bytes, this run has ${state[name].size}`);
    }
  }
  for (const name of names) writeBuffer(device, state[name], 0, snap.buffers[name]);
}

function splitMetrics(s: SlotSums, l2: number, lambda: number): SplitMetrics {
  const loss = s.lossSum / s.rows;
  return { loss, cost: loss + lambda * l2, accuracy: s.correct / s.rows };
}

function isFiniteMetrics(m: SplitMetrics): boolean {
  return Number.isFinite(m.loss) && Number.isFinite(m.cost);
}
