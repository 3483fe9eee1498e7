/**
 * Fused softmax + cross-entropy (`shaders/softmax_ce.wgsl`): the loss gradient in training, per-row
 * loss / correctness / prediction in evaluation.
 *
 * @module
 */

import { noSteps, scratchBuffer, uniformBuffer } from "../gpu/buffers.ts";
import { bindLayout, pipeline } from "../gpu/shaders.ts";
import { bufferEntries, checkGroups, type Op } from "./op.ts";

/** Arguments of {@link softmaxCeOp}. */
export interface SoftmaxCeSpec {
  /** `train`: scores → gradient in place; `eval`: per-row stats. */
  mode: "train" | "eval";
  /** Rows (samples), models and classes. */
  R: number;
  Z: number;
  C: number;
  /** Scores: R rows of stride `ld`, model z's block at column z·zStride. */
  scores: GPUBuffer;
  ld: number;
  zStride: number;
  labels: GPUBuffer;
  /** Eval output: R·Z vec4 (loss, correct, predicted, 0), row-major over (row, model). */
  stats?: GPUBuffer;
  /** Gradient scale in training (1/B). */
  scale?: number;
  label?: string;
}

const WG = 64;

/** Prepare a softmax-cross-entropy dispatch. */
export function softmaxCeOp(device: GPUDevice, s: SoftmaxCeSpec): Op {
  const label = s.label ?? `softmax_ce_${s.mode}`;
  if (s.mode === "eval" && !s.stats) throw new Error(`${label}: eval mode needs stats`);
  const params = new Uint32Array(8);
  params.set([s.R, s.Z, s.C, s.ld, s.zStride]);
  new Float32Array(params.buffer)[5] = s.scale ?? 1;
  const layout = bindLayout(device, ["write", "read", "write", "uniform", "dynamic"]);
  return {
    label,
    pipeline: pipeline(device, "softmax_ce", "softmax_ce", layout, {
      TRAIN: s.mode === "train",
      WG,
    }),
    bindGroup: device.createBindGroup({
      label,
      layout,
      entries: bufferEntries([
        s.scores,
        s.labels,
        s.stats ?? scratchBuffer(device),
        uniformBuffer(device, params, `${label}.params`),
        noSteps(device),
      ], 4),
    }),
    workgroups: [checkGroups(label, Math.ceil(s.R / WG)), checkGroups(label, s.Z), 1],
    stepped: false,
  };
}
