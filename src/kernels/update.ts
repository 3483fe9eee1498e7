/**
 * Parameter updates (`shaders/update.wgsl`): plain SGD or Adam over a flat parameter buffer, with
 * the learning rate and the step count read from the step table.
 *
 * @module
 */

import { scratchBuffer, uniformBuffer } from "../gpu/buffers.ts";
import { bindLayout, pipeline } from "../gpu/shaders.ts";
import { bufferEntries, checkGroups, MAX_GROUPS, type Op } from "./op.ts";

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
  const words = new Uint32Array(8);
  const floats = new Float32Array(words.buffer);
  words[0] = s.n;
  words[1] = Math.max(rowGroups, 1);
  floats[2] = beta1;
  floats[3] = beta2;
  floats[4] = eps;
  floats[5] = lnBeta(beta1);
  floats[6] = lnBeta(beta2);

  const layout = bindLayout(device, ["write", "read", "write", "write", "uniform", "dynamic"]);
  return {
    label,
    pipeline: pipeline(device, "update", s.kind, layout, { WG, PER }),
    bindGroup: device.createBindGroup({
      label,
      layout,
      entries: bufferEntries([
        s.param,
        s.grad,
        m,
        v,
        uniformBuffer(device, words, `${label}.params`),
        s.steps,
      ], 5),
    }),
    workgroups: [rowGroups, checkGroups(label, rows), 1],
    stepped: true,
  };
}
