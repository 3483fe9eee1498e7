/**
 * Batch normalisation of hidden layers (`shaders/batchnorm.wgsl`): the training forward with
 * batch statistics (Ẑ in place, H, running statistics, 1/√(v+ε)), the evaluation forward with
 * the running statistics, and the backward through the batch statistics with γ, β stored as
 * gradients or updated by SGD.
 *
 * All three ops share one bind-group layout (the shader's bindings change role per entry point):
 *
 * | binding | kind      | bn_forward_train | bn_forward_eval | bn_backward          |
 * |---------|-----------|------------------|-----------------|----------------------|
 * | 0       | storage   | Z → Ẑ (in place) | Z               | Ẑ                    |
 * | 1       | storage   | H                | H               | G → dZ (in place)    |
 * | 2       | storage   | γ                | γ               | γ (sgd: updated)     |
 * | 3       | storage   | β                | β               | β (sgd: updated)     |
 * | 4       | storage   | μ_av (updated)   | μ_av            | dγ (store)           |
 * | 5       | storage   | v_av (updated)   | v_av            | dβ (store)           |
 * | 6       | storage   | 1/√(v+ε) (out)   | —               | 1/√(v+ε)             |
 * | 7       | read-only | —                | —               | λ per model (l2)     |
 * | 8       | uniform   | params           | params          | params               |
 * | 9       | dynamic   | step (dropout)   | step (rows)     | step (sgd: η)        |
 *
 * Unused bindings hold placeholder buffers.
 *
 * @module
 */

import { dummyBuffer, noSteps, scratchBuffer, uniformBuffer } from "../gpu/buffers.ts";
import { type BindingKind, bindLayout, pipeline } from "../gpu/shaders.ts";
import { BN_DEFAULT_ALPHA, BN_DEFAULT_EPS, type BnDropout, dropThreshold } from "../nn/shared.ts";
import { bufferEntries, checkGroups, MAX_GROUPS, type Op } from "./op.ts";

export { BN_DEFAULT_ALPHA, BN_DEFAULT_EPS, type BnDropout };

/**
 * Most rows the column kernels accept: llvmpipe ends an invocation after 65,535 loop iterations
 * in total, silently, and the training forward runs 3R + 4⌈R/64⌉ of them (R = 21500 already
 * loses its last rows there).
 */
export const BN_MAX_ROWS = 20000;

/** Shape of a BN layer in the population layout (src/model/gpu_params.ts). */
export interface BnShape {
  /** Rows (samples) of the batch or evaluation chunk. */
  R: number;
  /** Logical units per model. */
  n: number;
  /** Models side by side. */
  Z: number;
  /** Row stride of the activations, in floats (P·pout). */
  ld: number;
  /** Column distance between consecutive models' blocks (pout). */
  zStride: number;
  label?: string;
}

/** Arguments of {@link bnForwardTrainOp}. */
export interface BnForwardTrainSpec extends BnShape {
  /** Pre-activations Z = H_prev·W (R × ld), overwritten with Ẑ. */
  pre: GPUBuffer;
  /** Output activations H (R × ld). */
  h: GPUBuffer;
  /** γ, β (read) and the running mean/variance (updated), each laid out like a row. */
  gamma: GPUBuffer;
  beta: GPUBuffer;
  runMean: GPUBuffer;
  runVar: GPUBuffer;
  /** Output 1/√(v + ε) per column, laid out like a row, for {@link bnBackwardOp}. */
  invStd: GPUBuffer;
  /** Momentum of the running statistics, in (0, 1); default 0.9. */
  alpha?: number;
  /** Added to the batch variance; default 1e-5. */
  eps?: number;
  /** Inverted dropout after the ReLU, keyed by the step record's `step` (p = 0: none). */
  dropout?: BnDropout;
  /** Step table (required with dropout). */
  steps?: GPUBuffer;
}

/** Arguments of {@link bnForwardEvalOp}. */
export interface BnForwardEvalSpec extends BnShape {
  /** Pre-activations Z (R × ld), read only. */
  pre: GPUBuffer;
  /** Output activations H (R × ld). */
  h: GPUBuffer;
  gamma: GPUBuffer;
  beta: GPUBuffer;
  runMean: GPUBuffer;
  runVar: GPUBuffer;
  eps?: number;
  /**
   * Step table: with it, rows ≥ the record's `rows` are skipped (their H left as it was), for
   * partial evaluation chunks; without it all R rows are computed.
   */
  steps?: GPUBuffer;
}

/** Arguments of {@link bnBackwardOp}. */
export interface BnBackwardSpec extends BnShape {
  /** G = dL/dS (R × ld), ReLU mask and dropout scaling applied; overwritten with dL/dZ. */
  g: GPUBuffer;
  /** Ẑ as left by {@link bnForwardTrainOp}. */
  zhat: GPUBuffer;
  /** 1/√(v + ε) as left by {@link bnForwardTrainOp}. */
  invStd: GPUBuffer;
  gamma: GPUBuffer;
  beta: GPUBuffer;
  /**
   * `store`: dγ (+2λ_z·γ) into `dGamma`, dβ (+2λ_z·β) into `dBeta`;
   * `sgd`: γ −= η(dγ + 2λ_z·γ), β −= η(dβ + 2λ_z·β), η from the step record.
   * The λ terms only when `l2`.
   */
  mode: "store" | "sgd";
  dGamma?: GPUBuffer;
  dBeta?: GPUBuffer;
  /** Step table (required by `sgd`). */
  steps?: GPUBuffer;
  /** Per-model λ (Z floats; required when `l2`). */
  lambda?: GPUBuffer;
  /** Whether L2 applies to γ and β (default false). */
  l2?: boolean;
}

const WG_COL = 16; // column kernels: few invocations, spread over more workgroups
const WG_EVAL = 64;
const LAYOUT: BindingKind[] = [
  "write",
  "write",
  "write",
  "write",
  "write",
  "write",
  "write",
  "read",
  "uniform",
  "dynamic",
];

function isInt(v: number, min: number): boolean {
  return Number.isInteger(v) && v >= min;
}

/** Validate the shape and buffer sizes common to all three ops. */
function checkShape(
  label: string,
  s: BnShape,
  matrices: [string, GPUBuffer][],
  vectors: [string, GPUBuffer][],
  maxRows: number,
): void {
  const { R, n, Z, ld, zStride } = s;
  if (!isInt(R, 1) || !isInt(n, 1) || !isInt(Z, 1)) {
    throw new Error(`${label}: R, n, Z must be positive integers (got ${R}, ${n}, ${Z})`);
  }
  if (R > maxRows) throw new Error(`${label}: R = ${R} rows exceed the limit of ${maxRows}`);
  if (!isInt(zStride, 0) || (Z > 1 && zStride < n)) {
    throw new Error(`${label}: zStride ${zStride} must be an integer ≥ n = ${n}`);
  }
  const width = (Z - 1) * zStride + n;
  if (!isInt(ld, 1) || ld < width) {
    throw new Error(`${label}: ld ${ld} is smaller than the ${width} columns of ${Z} blocks`);
  }
  const need = (what: string, buf: GPUBuffer, floats: number) => {
    if (buf.size < floats * 4) {
      throw new Error(`${label}: ${what} holds ${buf.size} bytes, needs ${floats * 4}`);
    }
  };
  for (const [what, buf] of matrices) need(what, buf, (R - 1) * ld + width);
  for (const [what, buf] of vectors) need(what, buf, width);
}

function checkEps(label: string, eps: number): void {
  if (!(eps > 0) || !Number.isFinite(eps)) {
    throw new Error(`${label}: eps must be > 0 (got ${eps})`);
  }
}

function params(
  s: BnShape,
  f: { eps: number; alpha?: number; l2?: boolean; dropout?: BnDropout; gx?: number },
): Uint32Array {
  const u = new Uint32Array(16);
  const fl = new Float32Array(u.buffer);
  u.set([s.R, s.n, s.Z, s.ld, s.zStride]);
  fl[5] = f.eps;
  fl[6] = f.alpha ?? 0;
  u[7] = f.l2 ? 1 : 0;
  if (f.dropout) {
    u[8] = f.dropout.seed >>> 0;
    u[9] = f.dropout.layer >>> 0;
    u[10] = dropThreshold(f.dropout.p);
    fl[11] = 1 / (1 - f.dropout.p);
  }
  u[12] = f.gx ?? 0;
  return u;
}

function makeOp(
  device: GPUDevice,
  label: string,
  entry: string,
  constants: Record<string, number | boolean>,
  buffers: GPUBuffer[],
  steps: GPUBuffer | undefined,
  workgroups: [number, number, number],
): Op {
  const layout = bindLayout(device, LAYOUT);
  return {
    label,
    pipeline: pipeline(device, "batchnorm", entry, layout, constants),
    bindGroup: device.createBindGroup({
      label,
      layout,
      entries: bufferEntries([...buffers, steps ?? noSteps(device)], 9),
    }),
    workgroups,
    stepped: !!steps,
  };
}

/**
 * Prepare the training forward `bn_forward_train`: batch statistics per column, Z overwritten
 * with Ẑ, H = ReLU(γ⊙Ẑ + β) with optional inverted dropout, running statistics updated and
 * 1/√(v + ε) stored. R ≤ {@link BN_MAX_ROWS}.
 */
export function bnForwardTrainOp(device: GPUDevice, s: BnForwardTrainSpec): Op {
  const label = s.label ?? "bn_forward_train";
  checkShape(label, s, [["pre", s.pre], ["h", s.h]], [
    ["gamma", s.gamma],
    ["beta", s.beta],
    ["runMean", s.runMean],
    ["runVar", s.runVar],
    ["invStd", s.invStd],
  ], BN_MAX_ROWS);
  const alpha = s.alpha ?? BN_DEFAULT_ALPHA;
  const eps = s.eps ?? BN_DEFAULT_EPS;
  if (!(alpha > 0 && alpha < 1)) {
    throw new Error(`${label}: alpha must be in (0, 1) (got ${alpha})`);
  }
  checkEps(label, eps);
  const p = s.dropout?.p ?? 0;
  if (!(p >= 0 && p < 1)) throw new Error(`${label}: dropout p must be in [0, 1) (got ${p})`);
  const dropout = p > 0 ? s.dropout : undefined;
  if (dropout && !s.steps) throw new Error(`${label}: dropout needs a step table`);
  return makeOp(
    device,
    label,
    "bn_forward_train",
    { WG: WG_COL, DROPOUT: !!dropout },
    [
      s.pre,
      s.h,
      s.gamma,
      s.beta,
      s.runMean,
      s.runVar,
      s.invStd,
      dummyBuffer(device),
      uniformBuffer(device, params(s, { eps, alpha, dropout }), `${label}.params`),
    ],
    dropout ? s.steps : undefined,
    [checkGroups(label, Math.ceil((s.n * s.Z) / WG_COL)), 1, 1],
  );
}

/**
 * Prepare the evaluation forward `bn_forward_eval`: H = ReLU(γ·(Z − μ_av)/√(v_av + ε) + β) per
 * entry, from the running statistics; no dropout, nothing else written.
 */
export function bnForwardEvalOp(device: GPUDevice, s: BnForwardEvalSpec): Op {
  const label = s.label ?? "bn_forward_eval";
  checkShape(label, s, [["pre", s.pre], ["h", s.h]], [
    ["gamma", s.gamma],
    ["beta", s.beta],
    ["runMean", s.runMean],
    ["runVar", s.runVar],
  ], Infinity);
  const eps = s.eps ?? BN_DEFAULT_EPS;
  checkEps(label, eps);
  const total = s.R * s.n * s.Z;
  if (total >= 2 ** 32) throw new Error(`${label}: ${total} entries exceed 2^32`);
  const groups = Math.ceil(total / WG_EVAL);
  const gx = Math.min(groups, MAX_GROUPS);
  const gy = checkGroups(label, Math.ceil(groups / gx));
  return makeOp(
    device,
    label,
    "bn_forward_eval",
    { WG: WG_EVAL, ROWS: !!s.steps },
    [
      s.pre,
      s.h,
      s.gamma,
      s.beta,
      s.runMean,
      s.runVar,
      scratchBuffer(device),
      dummyBuffer(device),
      uniformBuffer(device, params(s, { eps, gx }), `${label}.params`),
    ],
    s.steps,
    [gx, gy, 1],
  );
}

/**
 * Prepare the backward `bn_backward`: G = dL/dS → dL/dZ in place through the batch statistics,
 * and γ, β stored as gradients or updated by SGD. R ≤ {@link BN_MAX_ROWS}.
 */
export function bnBackwardOp(device: GPUDevice, s: BnBackwardSpec): Op {
  const label = s.label ?? `bn_backward_${s.mode}`;
  const vectors: [string, GPUBuffer][] = [
    ["gamma", s.gamma],
    ["beta", s.beta],
    ["invStd", s.invStd],
  ];
  if (s.mode === "store") {
    if (!s.dGamma || !s.dBeta) throw new Error(`${label}: store mode needs dGamma and dBeta`);
    vectors.push(["dGamma", s.dGamma], ["dBeta", s.dBeta]);
  } else if (s.mode === "sgd") {
    if (!s.steps) throw new Error(`${label}: sgd needs a step table`);
  } else {
    throw new Error(`${label}: unknown mode ${s.mode}`);
  }
  checkShape(label, s, [["g", s.g], ["zhat", s.zhat]], vectors, BN_MAX_ROWS);
  if (s.l2) {
    if (!s.lambda) throw new Error(`${label}: l2 needs a lambda buffer`);
    if (s.lambda.size < 4 * s.Z) {
      throw new Error(`${label}: lambda holds ${s.lambda.size / 4} floats, needs Z = ${s.Z}`);
    }
  }
  const sgd = s.mode === "sgd";
  return makeOp(
    device,
    label,
    "bn_backward",
    { WG: WG_COL, SGD: sgd },
    [
      s.zhat,
      s.g,
      s.gamma,
      s.beta,
      sgd ? scratchBuffer(device, 0) : s.dGamma!,
      sgd ? scratchBuffer(device, 1) : s.dBeta!,
      s.invStd,
      s.l2 ? s.lambda! : dummyBuffer(device),
      uniformBuffer(device, params(s, { eps: BN_DEFAULT_EPS, l2: s.l2 }), `${label}.params`),
    ],
    sgd ? s.steps : undefined,
    [checkGroups(label, Math.ceil((s.n * s.Z) / WG_COL)), 1, 1],
  );
}
