/**
 * The top of a network's training step in one dispatch (`shaders/tail.wgsl`): the forward pass,
 * the softmax cross-entropy gradient and the backward pass with in-place SGD of the last one or
 * two layers, one workgroup per model, activations and gradients in workgroup memory. It replaces
 * 3 products (one layer: the output layer with its fused loss, its input gradient, its weight
 * update) or 6 (two layers) by one dispatch, with the same bits (see the shader).
 *
 * {@link tailFits} says whether a shape can take it on a device; placement
 * (src/kernels/placement.ts) chooses it, so the graph never sees it.
 *
 * @module
 */

import { checkGroups, F32, kernelOp, type Op, type OpCost, timesZ } from "./op.ts";
import { type BnDropout, type DropoutTable, dropThreshold } from "../nn/shared.ts";
import { SOFTMAX_MAX_N } from "./matmul.ts";
import { gatherParts, type GatherSpec } from "./gather.ts";

/** One layer of the tail: its weights and bias in the population layout (src/model/gpu_params.ts). */
export interface TailLayer {
  /** Outputs of the layer (units, or classes for the output layer). */
  nOut: number;
  /** Row stride of W, b and the layer's activations: P·pout. */
  ld: number;
  /** pad4(nOut): the columns one model's block takes. */
  pout: number;
  /** W: rows of the layer's inputs, model z's block at column z·pout. */
  W: GPUBuffer;
  /** b: one row, model z's biases at z·pout. */
  b: GPUBuffer;
}

/** Everything a tail dispatch needs. */
export interface TailSpec {
  /** Rows of the mini-batch. */
  R: number;
  /** Models of the population (one workgroup each). */
  P: number;
  /** The tail's input H_in (layer l₀'s output): R rows of `nIn`, stride `ld`, blocks `zStride` apart. */
  input: { buffer: GPUBuffer; nIn: number; ld: number; zStride: number };
  /**
   * Where G_in, the gradient of H_in (masked by [H_in > 0], scaled by 1/(1 − p) of H_in's
   * dropout), goes: a buffer laid out like H_in, or the rgba32float texture copy of it that a
   * later product reads (row i, model z's block from texel z·zStride/4).
   */
  output: GPUBuffer | GPUTexture;
  /**
   * Dropout of H_in: its gradient's scale 1/(1 − p) (default none), or with `table` each model's
   * own (see BnDropout).
   */
  inputDropout?: { p: number; table?: DropoutTable };
  /**
   * A hidden layer before the output layer, with its dropout (seed and layer index of its masks),
   * and the buffer its activations H_a go to when they do not fit workgroup memory (laid out as
   * the layer's activations: R rows of `ld`, model z's block at z·pout).
   */
  hidden?: TailLayer & { dropout?: BnDropout; activations?: GPUBuffer };
  /** The output layer, whose scores go through softmax cross-entropy. */
  out: TailLayer;
  /** The samples' labels, one u32 per row. */
  labels: GPUBuffer;
  /** λ of model z at `z·lambdaStride` (the population's λ buffer). */
  lambda: GPUBuffer;
  /** Distance between consecutive models' λ, in floats (default 1). */
  lambdaStride?: number;
  /** The step table: η of the step, and the step seeding dropout. */
  steps: GPUBuffer;
  /** Invocations of each workgroup (default 64). */
  wg?: number;
  /**
   * Also gather the next step's training batch (of the record's `nextEpoch`, `nextPos`, when
   * `next` is set) into `spec.x` (a buffer) and `spec.y`, which nothing in the step may read
   * (see {@link TailGather}).
   */
  gather?: TailGather;
  /** Debug label (default `tail`). */
  label?: string;
}

/**
 * The gather a tail carries: a training gather's spec, its X a buffer, and the rows of each of
 * its workgroups (default {@link gatherRowsPer}).
 */
export interface TailGather {
  /**
   * The training gather, writing X's buffer (or the batch's image indices) and the labels'
   * second buffer.
   */
  spec: GatherSpec & { mode: "train"; x: GPUBuffer | { index: GPUBuffer } };
  /** Gather rows of each workgroup (default {@link gatherRowsPer}). */
  rowsPer?: number;
}

/**
 * Most classes a tail takes: each invocation holds a row's scores and 4 rows of W_o's quads. At 32
 * classes (8 quads) SwiftShader's compiler ran out of memory on the tail (past 3 GB and growing;
 * 16 compile at once), while the fused product handles 32; CIFAR-10 has 10.
 */
export const TAIL_MAX_CLASSES = 16;

/** 16-byte vectors of an image: a carried gather's workgroup must share them out evenly. */
const GATHER_ROW_VECTORS = 192;

/** Most loop iterations one invocation may run: far below llvmpipe's silent cap of 65 535. */
export const TAIL_MAX_ITERATIONS = 16384;

/**
 * Storage buffers the tail binds: H_in, W and b per layer, G_in (as a buffer), labels and λ, and
 * H_a's buffer when it lives there.
 */
function storageBuffers(
  two: boolean,
  gBuffer: boolean,
  haStorage: boolean,
  gather: boolean,
): number {
  return 1 + (two ? 4 : 2) + (gBuffer ? 1 : 0) + 2 + (haStorage ? 1 : 0) +
    (gather ? GATHER_BUFFERS : 0);
}

/** Storage buffers a carried gather adds: the dataset's two image buffers and labels, X and y. */
const GATHER_BUFFERS = 5;

/**
 * Workgroup memory of a tail, in bytes: G_o, and for a hidden layer G_a, with H_a too unless it
 * lives in its buffer.
 */
export function tailWorkgroupBytes(
  R: number,
  out: number,
  hidden?: number,
  haStorage = false,
): number {
  const qo = Math.ceil(out / 4), qa = hidden === undefined ? 0 : Math.ceil(hidden / 4);
  return 16 * R * (qo + (haStorage ? 1 : 2) * qa);
}

/**
 * Loop iterations each invocation of a WG-wide tail runs, phase by phase (the K loops inside
 * each task included): what llvmpipe's per-invocation cap bounds.
 */
export function tailIterations(
  R: number,
  nIn: number,
  out: number,
  hidden: number | undefined,
  wg: number,
): number {
  const q = (n: number) => Math.ceil(n / 4);
  const per = (tasks: number, inner: number) => Math.ceil(tasks / wg) * (1 + inner);
  const kO = hidden ?? nIn;
  let n = per(R, q(kO)) + per(R * q(kO), 4 * q(out)) + per(q(kO) * q(out) + q(out), R);
  if (hidden !== undefined) {
    n += per(R * q(hidden), q(nIn)) + per(R * q(nIn), 4 * q(hidden)) +
      per(q(nIn) * q(hidden) + q(hidden), R);
  }
  return n;
}

/**
 * Gather rows one tail workgroup takes the time of, per loop iteration of each of its invocations
 * ({@link tailIterations}), measured on llvmpipe (2 cores): the 50→10 tail at R = 100 (402
 * iterations) took 0.45 ms, a gather row about 11 µs of one core, so 28 rows. Timed alone, that
 * tail carrying the gather in 4 workgroups of 28 rows took 0.64 ms against 0.45 + 0.57 for the
 * two dispatches; in whole steps 0.02–0.25 gave the same times within the machine's noise.
 */
export const ROWS_PER_ITERATION = 0.07;

/**
 * Rows of each gather workgroup of a tail that carries the gather (shaders/tail.wgsl, GATHER):
 * about as many as take a tail's time, so that the grid is of workgroups of even work, which
 * llvmpipe's threads share evenly whatever their number. Only speed depends on it.
 */
export function gatherRowsPer(
  s: { R: number; nIn: number; out: number; hidden?: number; wg: number },
): number {
  const rows = Math.round(tailIterations(s.R, s.nIn, s.out, s.hidden, s.wg) * ROWS_PER_ITERATION);
  return Math.min(s.R, Math.max(1, rows));
}

/** The sizes a tail is asked to fit. */
export interface TailShape {
  /** Rows, the input's width, the classes and the hidden layer's width (if two layers). */
  R: number;
  nIn: number;
  out: number;
  hidden?: number;
  /** G_in goes to a buffer (else to a texture copy, which needs no storage buffer). */
  gBuffer: boolean;
  /** Invocations per workgroup (default 64). */
  wg?: number;
  /** H_a in its buffer rather than workgroup memory. */
  haStorage?: boolean;
  /** The tail also carries the next step's gather ({@link TailSpec.gather}). */
  gather?: boolean;
}

/** Whether a tail of these sizes fits the device (workgroup memory, bindings, loop budget). */
export function tailFits(device: GPUDevice, s: TailShape): boolean {
  const wg = s.wg ?? 64;
  const haStorage = !!s.haStorage && s.hidden !== undefined;
  return s.out <= Math.min(SOFTMAX_MAX_N, TAIL_MAX_CLASSES) &&
    tailWorkgroupBytes(s.R, s.out, s.hidden, haStorage) <=
      device.limits.maxComputeWorkgroupStorageSize &&
    storageBuffers(s.hidden !== undefined, s.gBuffer, haStorage, !!s.gather) <=
      device.limits.maxStorageBuffersPerShaderStage &&
    (!s.gather || GATHER_ROW_VECTORS % wg === 0) &&
    wg <= device.limits.maxComputeInvocationsPerWorkgroup &&
    tailIterations(s.R, s.nIn, s.out, s.hidden, wg) <= TAIL_MAX_ITERATIONS;
}

/**
 * Where a tail of these sizes keeps H_a on this device: in workgroup memory when everything fits
 * there, else in its buffer (two layers only); null when neither fits.
 */
export function tailLayout(device: GPUDevice, s: TailShape): { haStorage: boolean } | null {
  if (tailFits(device, { ...s, haStorage: false })) return { haStorage: false };
  if (s.hidden !== undefined && tailFits(device, { ...s, haStorage: true })) {
    return { haStorage: true };
  }
  return null;
}

/** Prepare a tail dispatch (pipeline and bind group built once). */
export function tailOp(device: GPUDevice, s: TailSpec): Op {
  const label = s.label ?? "tail";
  const { R, P, input, out, hidden } = s;
  const wg = s.wg ?? 64;
  const gTexture = s.output instanceof GPUTexture;
  if (
    !tailFits(device, {
      R,
      nIn: input.nIn,
      out: out.nOut,
      hidden: hidden?.nOut,
      gBuffer: !gTexture,
      wg,
      haStorage: !!hidden?.activations,
      gather: !!s.gather,
    })
  ) {
    throw new Error(
      `${label}: R ${R}, ${input.nIn}→${
        hidden ? `${hidden.nOut}→` : ""
      }${out.nOut} does not fit one workgroup`,
    );
  }
  for (const [what, v] of [["input.ld", input.ld], ["input.zStride", input.zStride]] as const) {
    if (v % 4 !== 0) throw new Error(`${label}: ${what} ${v} is not a multiple of 4`);
  }
  const qo = Math.ceil(out.nOut / 4);
  const qa = hidden ? Math.ceil(hidden.nOut / 4) : 0;
  const drop = hidden?.dropout ?? { p: 0, seed: 0, layer: 0 };
  const inP = s.inputDropout?.p ?? 0;
  for (const pr of [drop.p, inP]) {
    if (!(pr >= 0 && pr < 1)) throw new Error(`${label}: dropout p ${pr} outside [0, 1)`);
  }
  const gather = s.gather ? gatherParts(device, s.gather.spec, wg) : null;
  // image indices: one workgroup takes every row, one a lane
  const rowsPer = !s.gather
    ? 1
    : s.gather.rowsPer ?? ("index" in s.gather.spec.x ? s.gather.spec.R : gatherRowsPer({
      R: s.gather.spec.R,
      nIn: input.nIn,
      out: out.nOut,
      hidden: hidden?.nOut,
      wg,
    }));
  if (!(Number.isInteger(rowsPer) && rowsPer >= 1)) {
    throw new Error(`${label}: gather rows per workgroup ${rowsPer} is not a positive integer`);
  }
  const groups = s.gather ? P + Math.ceil(s.gather.spec.R / rowsPer) : P;
  const cost = tailCost(s);
  return kernelOp(device, {
    shader: "tail",
    entryPoint: "tail",
    constants: {
      ...gather?.constants,
      GATHER: !!gather,
      WG: wg,
      TWO: !!hidden,
      QO: qo,
      WS_N: R * qo,
      WH_N: hidden ? R * qa : 1,
      G_TEXTURE: gTexture,
      DROP_A: drop.p > 0,
      HA_STORAGE: !!hidden?.activations,
    },
    label,
    resources: {
      H: input.buffer,
      ...(hidden ? { Wa: hidden.W, ba: hidden.b } : {}),
      ...(hidden?.activations ? { Hs: hidden.activations } : {}),
      Wo: out.W,
      bo: out.b,
      ...(gTexture ? { Gt: s.output } : { G: s.output }),
      labels: s.labels,
      lam: s.lambda,
      p: {
        R,
        nIn: input.nIn,
        ldIn: input.ld,
        zIn: input.zStride,
        nA: hidden?.nOut ?? 0,
        ldA: hidden?.ld ?? 0,
        zA: hidden?.pout ?? 0,
        qA: qa,
        nO: out.nOut,
        ldO: out.ld,
        zO: out.pout,
        lamZ: s.lambdaStride ?? 1,
        dropSeed: drop.seed >>> 0,
        dropLayer: drop.layer >>> 0,
        dropThreshold: dropThreshold(drop.p),
        dropScale: 1 / (1 - drop.p),
        inScale: 1 / (1 - inP),
        scale: 1 / R,
        dropTable: drop.table?.thresholds ?? 0,
        dropScales: drop.table?.scales ?? 0,
        inScales: s.inputDropout?.table?.scales ?? 0,
        models: P,
        rowsPer,
      },
      ...gather?.resources,
      st: s.steps,
    },
    workgroups: [checkGroups(label, groups), 1, 1],
    stepped: true,
    cost: gather
      ? {
        flops: cost.flops + gather.cost.flops,
        bytes: cost.bytes + gather.cost.bytes,
        shape: `${cost.shape} +gather ${gather.cost.shape}`,
      }
      : cost,
  });
}

/**
 * Nominal cost of a tail: the products it replaces, as matmulOp counts them (src/kernels/matmul.ts):
 * per layer of n_in → n_out over R rows, the forward 2·R·n_in·n_out, the input gradient as much
 * (not for a layer whose input gradient nobody needs: every tail layer's is needed), the weight
 * gradient as much plus 4 per weight (sgd) and R·n_out + 2·n_out for the bias; the loss 4 per
 * score. Bytes: what leaves or enters workgroup memory: H_in read three times (forward, weight
 * gradient, mask), every W and b read and written, the labels read, G_in written;
 * the activations and gradients inside the tail never touch memory. All times P.
 */
function tailCost(s: TailSpec): OpCost {
  const { R, P, input, out, hidden } = s;
  const layers = hidden
    ? [[input.nIn, hidden.nOut], [hidden.nOut, out.nOut]]
    : [[input.nIn, out.nOut]];
  let flops = 4 * R * out.nOut;
  let floats = 3 * R * input.nIn + R * input.nIn + R;
  for (const [nIn, nOut] of layers) {
    flops += 3 * 2 * R * nIn * nOut + 4 * nIn * nOut + R * nOut + 2 * nOut;
    floats += 2 * (nIn * nOut + nOut);
  }
  const widths = [input.nIn, ...(hidden ? [hidden.nOut] : []), out.nOut].join("→");
  return {
    flops: flops * P,
    bytes: F32 * floats * P,
    shape: `tail ${R}×${widths} +softmax-ce +sgd${timesZ(P)}`,
  };
}
