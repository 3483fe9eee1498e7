/**
 * Batch normalisation of hidden layers (`shaders/batchnorm.wgsl`): the training forward with
 * batch statistics (Ẑ in place, H, running statistics, 1/√(v+ε)), the evaluation forward with
 * the running statistics, and the backward through the batch statistics with γ, β stored as
 * gradients or updated by SGD.
 *
 * All three ops bind the same declarations of the shader, by name (their binding numbers and kinds
 * are the shader's, see src/kernels/op.ts); the buffers change role per entry point:
 *
 * | variable | bn_forward_train | bn_forward_eval | bn_backward          |
 * |----------|------------------|-----------------|----------------------|
 * | `Zb`     | Z → Ẑ (in place) | Z               | Ẑ                    |
 * | `HG`     | H                | H               | G → dZ (in place)    |
 * | `gamma`  | γ                | γ               | γ (sgd: updated)     |
 * | `beta`   | β                | β               | β (sgd: updated)     |
 * | `vecA`   | μ_av (updated)   | μ_av            | dγ (store)           |
 * | `vecB`   | v_av (updated)   | v_av            | dβ (store)           |
 * | `invStd` | 1/√(v+ε) (out)   | —               | 1/√(v+ε)             |
 * | `lam`    | —                | —               | λ per model (l2)     |
 * | `p`      | Params           | Params          | Params               |
 * | `st`     | step (dropout)   | step (rows)     | step (sgd: η)        |
 *
 * Unused bindings hold placeholder buffers.
 *
 * @module
 */

import { dummyBuffer, noSteps, scratchBuffer } from "../gpu/buffers.ts";
import type { StructValues } from "../gpu/layout.ts";
import { BN_DEFAULT_ALPHA, BN_DEFAULT_EPS, type BnDropout, dropThreshold } from "../nn/shared.ts";
import {
  checkGroups,
  F32,
  kernelOp,
  MAX_GROUPS,
  type Op,
  type OpCost,
  type Resource,
  timesZ,
} from "./op.ts";

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

/** What both forwards read and write: {@link BnForwardTrainSpec}, {@link BnForwardEvalSpec}. */
export interface BnForwardBuffers extends BnShape {
  /**
   * Pre-activations Z = H_prev·W (R × ld): overwritten with Ẑ by the training forward, read only
   * by the evaluation forward.
   */
  pre: GPUBuffer;
  /** Output activations H (R × ld). */
  h: GPUBuffer;
  /**
   * γ, β (read) and the running mean/variance (updated by the training forward, read by the
   * evaluation forward), each laid out like a row.
   */
  gamma: GPUBuffer;
  beta: GPUBuffer;
  runMean: GPUBuffer;
  runVar: GPUBuffer;
  /** Added to the variance; default 1e-5. */
  eps?: number;
}

/** Arguments of {@link bnForwardTrainOp}. */
export interface BnForwardTrainSpec extends BnForwardBuffers {
  /** Output 1/√(v + ε) per column, laid out like a row, for {@link bnBackwardOp}. */
  invStd: GPUBuffer;
  /** Momentum of the running statistics, in (0, 1); default 0.9. */
  alpha?: number;
  /** Inverted dropout after the ReLU, keyed by the step record's `step` (p = 0: none). */
  dropout?: BnDropout;
  /** Step table (required with dropout). */
  steps?: GPUBuffer;
  /** The per-model buffer holding the dropout table, when `dropout.table` is set. */
  lambda?: GPUBuffer;
}

/** Arguments of {@link bnForwardEvalOp}. */
export interface BnForwardEvalSpec extends BnForwardBuffers {
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

/** The shader's Params for a shape and the flags of one op (fields it does not read: 0). */
function params(
  s: BnShape,
  f: { eps: number; alpha?: number; l2?: boolean; dropout?: BnDropout; gx?: number },
): StructValues {
  const d = f.dropout;
  return {
    R: s.R,
    N: s.n,
    Z: s.Z,
    ld: s.ld,
    zStride: s.zStride,
    eps: f.eps,
    alpha: f.alpha ?? 0,
    l2: f.l2 ? 1 : 0,
    seed: d ? d.seed >>> 0 : 0,
    layer: d ? d.layer >>> 0 : 0,
    threshold: d ? dropThreshold(d.p) : 0,
    dropScale: d ? 1 / (1 - d.p) : 0,
    gx: f.gx ?? 0,
    dropTable: d?.table?.thresholds ?? 0,
    dropScales: d?.table?.scales ?? 0,
  };
}

/**
 * An op of the batch-norm shader. `resources` names the buffers the entry point uses; the others
 * get placeholders: `vecA` and `vecB` two distinct scratch buffers (`invStd` the first of them:
 * no entry point leaves both `vecA` and `invStd` unused), `lam` a read-only one, and `st` a step
 * table of zeros when `steps` is absent (the op is then not stepped).
 */
function makeOp(
  device: GPUDevice,
  label: string,
  entryPoint: string,
  constants: Record<string, number | boolean>,
  resources: Record<string, Resource>,
  steps: GPUBuffer | undefined,
  workgroups: [number, number, number],
  cost: OpCost,
): Op {
  return kernelOp(device, {
    shader: "batchnorm",
    entryPoint,
    constants,
    label,
    resources: {
      vecA: scratchBuffer(device, 0),
      vecB: scratchBuffer(device, 1),
      invStd: scratchBuffer(device),
      lam: dummyBuffer(device),
      ...resources,
      st: steps ?? noSteps(device),
    },
    workgroups,
    stepped: !!steps,
    cost,
  });
}

/** What both forwards read and write: the shape checked, and Z, H, γ, β, μ_av, v_av by name. */
function forwardBuffers(
  label: string,
  s: BnForwardBuffers,
  more: [string, GPUBuffer][],
  maxRows: number,
): Record<string, GPUBuffer> {
  checkShape(label, s, [["pre", s.pre], ["h", s.h]], [
    ["gamma", s.gamma],
    ["beta", s.beta],
    ["runMean", s.runMean],
    ["runVar", s.runVar],
    ...more,
  ], maxRows);
  return { Zb: s.pre, HG: s.h, gamma: s.gamma, beta: s.beta, vecA: s.runMean, vecB: s.runVar };
}

/** `R×n` (×Z) and a tag: the shape of a batch-norm op. */
function bnShape(s: BnShape, tag = ""): string {
  return `${s.R}×${s.n}${timesZ(s.Z)}${tag}`;
}

/**
 * Prepare the training forward `bn_forward_train`: batch statistics per column, Z overwritten
 * with Ẑ, H = ReLU(γ⊙Ẑ + β) with optional inverted dropout, running statistics updated and
 * 1/√(v + ε) stored. R ≤ {@link BN_MAX_ROWS}.
 */
export function bnForwardTrainOp(device: GPUDevice, s: BnForwardTrainSpec): Op {
  const label = s.label ?? "bn_forward_train";
  const buffers = forwardBuffers(label, s, [["invStd", s.invStd]], BN_MAX_ROWS);
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
  if (dropout?.table && !s.lambda) {
    throw new Error(`${label}: per-model dropout reads the lambda buffer: give lambda`);
  }
  const entries = s.R * s.n * s.Z, cols = s.n * s.Z;
  return makeOp(
    device,
    label,
    "bn_forward_train",
    { WG: WG_COL, DROPOUT: !!dropout },
    {
      ...buffers,
      invStd: s.invStd,
      ...(dropout?.table ? { lam: s.lambda! } : {}),
      p: params(s, { eps, alpha, dropout }),
    },
    dropout ? s.steps : undefined,
    [checkGroups(label, Math.ceil(cols / WG_COL)), 1, 1],
    // per entry: μ 1, v 3 (subtract, square, add), Ẑ and H 5 (subtract, scale, γ·Ẑ + β, ReLU),
    // dropout 1 more; bytes: Z read, Ẑ and H written; per column γ, β read, μ_av, v_av read and
    // written, 1/√(v + ε) written
    {
      flops: (dropout ? 10 : 9) * entries,
      bytes: F32 * (3 * entries + 7 * cols),
      shape: bnShape(s, dropout ? " +dropout" : ""),
    },
  );
}

/**
 * Prepare the evaluation forward `bn_forward_eval`: H = ReLU(γ·(Z − μ_av)/√(v_av + ε) + β) per
 * entry, from the running statistics; no dropout, nothing else written.
 */
export function bnForwardEvalOp(device: GPUDevice, s: BnForwardEvalSpec): Op {
  const label = s.label ?? "bn_forward_eval";
  const buffers = forwardBuffers(label, s, [], Infinity);
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
    { ...buffers, p: params(s, { eps, gx }) },
    s.steps,
    [gx, gy, 1],
    // per entry: 1/√(v_av + ε) 3, then subtract, scale, γ·x + β, ReLU 5; bytes: Z read, H
    // written, per column γ, β, μ_av, v_av read
    { flops: 8 * total, bytes: F32 * (2 * total + 4 * s.n * s.Z), shape: bnShape(s) },
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
  const entries = s.R * s.n * s.Z, cols = s.n * s.Z;
  return makeOp(
    device,
    label,
    "bn_backward",
    { WG: WG_COL, SGD: sgd },
    {
      Zb: s.zhat,
      HG: s.g,
      gamma: s.gamma,
      beta: s.beta,
      ...(sgd ? {} : { vecA: s.dGamma!, vecB: s.dBeta! }),
      invStd: s.invStd,
      // λ for the L2 terms; its η table for SGD (see shaders/eta.wgsl)
      ...(s.l2 || (sgd && s.lambda) ? { lam: s.lambda! } : {}),
      p: params(s, { eps: BN_DEFAULT_EPS, l2: s.l2 }),
    },
    sgd ? s.steps : undefined,
    [checkGroups(label, Math.ceil(cols / WG_COL)), 1, 1],
    // per entry: the sums Σ G, Σ G⊙Ẑ 3, dZ = s·(γ·G − mean − Ẑ·mean) 5; per column dγ, dβ with
    // their λ terms and the SGD step 8; bytes: G and Ẑ read, dZ written, per column γ, β, 1/√
    // read and γ, β (sgd) or dγ, dβ (store) written
    {
      flops: 8 * entries + 8 * cols,
      bytes: F32 * (3 * entries + 5 * cols),
      shape: bnShape(s, ` ${s.mode}`),
    },
  );
}
