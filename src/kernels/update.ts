/**
 * Parameter updates (`shaders/update.wgsl`): plain SGD or Adam over a flat parameter buffer, with
 * the learning rate and the step count read from the step table.
 *
 * @module
 */

import { dummyBuffer, scratchBuffer } from "../gpu/buffers.ts";
import { checkGroups, F32, kernelOp, MAX_GROUPS, type Op } from "./op.ts";

/** Arguments of {@link updateOp}. */
export interface UpdateSpec {
  /**
   * `sgd`: θ −= η·g. `adam`: m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g²,
   * θ −= η·m̂/(√v̂ + ε) with m̂ = m/(1−β1^t), v̂ = v/(1−β2^t), t = step + 1.
   */
  kind: "sgd" | "adam";
  /** Parameters θ, updated in place over their first `n` floats. */
  param: GPUBuffer;
  /** Gradient, laid out like `param`; it already holds any L2 term. */
  grad: GPUBuffer;
  /** Adam's first and second moments, laid out like `param`, zero before the first step. */
  m?: GPUBuffer;
  v?: GPUBuffer;
  /** Floats to update (the whole buffer length; padding entries hold zeros and stay zero). */
  n: number;
  /** Adam's decay rates, each in [0, 1) (defaults 0.9 and 0.999), and ε > 0 (default 1e-8). */
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Step table: each record's `eta` is η and its 0-based `step` gives t = step + 1. */
  steps: GPUBuffer;
  /**
   * The population's per-model values (GpuParams.lambda), whose η table gives each model its own
   * learning rate when the step table's records name their models (see shaders/eta.wgsl).
   */
  lambda?: GPUBuffer;
  /**
   * The parameter's layout, to tell an element's model: rows of `ld` floats, models' blocks
   * `pout` floats apart (default: one model).
   */
  layout?: { ld: number; pout: number };
  label?: string;
  /**
   * Workgroups per grid row (default and maximum 65535): more workgroups wrap onto further rows.
   * Only tests set it, to exercise the 2-D grid at small sizes.
   */
  rowGroups?: number;
}

const WG = 256;
const PER = 4;

/** Parameters updated by one workgroup. */
export const UPDATE_BLOCK = WG * PER;

/** Prepare a parameter-update dispatch (stepped: encode it with the step's record). */
export function updateOp(device: GPUDevice, s: UpdateSpec): Op {
  const label = s.label ?? `update_${s.kind}`;
  function fail(why: string): never {
    throw new Error(`${label}: ${why}`);
  }
  if (s.kind !== "sgd" && s.kind !== "adam") fail(`unknown kind ${s.kind}`);
  if (!Number.isInteger(s.n) || s.n < 0) fail(`n must be a non-negative integer, got ${s.n}`);
  const fits = (b: GPUBuffer, name: string) => {
    if (s.n * 4 > b.size) fail(`${name} holds ${b.size / 4} floats, fewer than n = ${s.n}`);
  };
  fits(s.param, "param");
  fits(s.grad, "grad");
  if (s.grad === s.param) fail("grad must be a buffer other than param");
  const beta1 = s.beta1 ?? 0.9, beta2 = s.beta2 ?? 0.999, eps = s.eps ?? 1e-8;
  let m = scratchBuffer(device, 0), v = scratchBuffer(device, 1);
  if (s.kind === "adam") {
    if (!s.m || !s.v) fail("adam needs moment buffers m and v");
    m = s.m;
    v = s.v;
    fits(m, "m");
    fits(v, "v");
    if (new Set([s.param, s.grad, m, v]).size !== 4) fail("param, grad, m and v must be distinct");
    // The shader sees the f32 values: check those (0.99999999 rounds to 1, 1e-50 to 0).
    for (const [name, b] of [["beta1", beta1], ["beta2", beta2]] as const) {
      const f = Math.fround(b);
      if (!(f >= 0 && f < 1)) fail(`${name} must lie in [0, 1) as an f32, got ${b}`);
    }
    if (!(Math.fround(eps) > 0) || !Number.isFinite(eps)) {
      fail(`eps must be positive and finite as an f32, got ${eps}`);
    }
  }
  const maxRow = s.rowGroups ?? MAX_GROUPS;
  if (!Number.isInteger(maxRow) || maxRow < 1 || maxRow > MAX_GROUPS) {
    fail(`rowGroups must be an integer in [1, ${MAX_GROUPS}], got ${maxRow}`);
  }
  const groups = Math.ceil(s.n / UPDATE_BLOCK);
  const rowGroups = Math.min(groups, maxRow);
  const rows = groups === 0 ? 0 : Math.ceil(groups / rowGroups);

  // ln β in float64 from the f32 β the shader multiplies with; β = 0 gives −∞, clamped to −100
  // (e^−100 flushes to 0 in f32, so 1 − β^t = 1 exactly, as it should).
  const lnBeta = (b: number) => Math.max(Math.log(Math.fround(b)), -100);
  const adam = s.kind === "adam";
  return kernelOp(device, {
    shader: "update",
    entryPoint: s.kind,
    constants: { WG, PER },
    label,
    resources: {
      theta: s.param,
      grad: s.grad,
      m,
      v,
      p: {
        n: s.n,
        rowGroups: Math.max(rowGroups, 1),
        beta1,
        beta2,
        eps,
        lnBeta1: lnBeta(beta1),
        lnBeta2: lnBeta(beta2),
        ld: s.layout?.ld ?? 0,
        pout: s.layout?.pout ?? 0,
      },
      st: s.steps,
      lam: s.lambda ?? dummyBuffer(device),
    },
    workgroups: [rowGroups, checkGroups(label, rows), 1],
    stepped: true,
    // per element: sgd θ − η·g 2 flops, θ read and written, g read; adam 14 flops (m: 3, v: 4,
    // θ − η·(m/c1)/(√(v/c2) + ε): 7), θ, m and v read and written, g read
    cost: {
      flops: (adam ? 14 : 2) * s.n,
      bytes: F32 * (adam ? 7 : 3) * s.n,
      shape: `${s.kind} ${s.n}`,
    },
  });
}
