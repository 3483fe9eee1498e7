/**
 * Fused softmax + cross-entropy (`shaders/softmax_ce.wgsl`): the loss gradient in training, per-row
 * loss / correctness / prediction in evaluation.
 *
 * @module
 */

import { noSteps, scratchBuffer } from "../gpu/buffers.ts";
import { checkGroups, F32, kernelOp, type Op, timesZ } from "./op.ts";

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
  const { R, Z, C } = s;
  const train = s.mode === "train";
  return kernelOp(device, {
    shader: "softmax_ce",
    entryPoint: "softmax_ce",
    constants: { TRAIN: train, WG },
    label,
    resources: {
      S: s.scores,
      labels: s.labels,
      stats: s.stats ?? scratchBuffer(device),
      p: { R, Z, C, ld: s.ld, zStride: s.zStride, scale: s.scale ?? 1 },
      st: noSteps(device),
    },
    workgroups: [checkGroups(label, Math.ceil(R / WG)), checkGroups(label, Z), 1],
    stepped: false,
    // per score: the max, exp and sum, then the gradient (train) or the loss (eval), counted as
    // 4; bytes: the R·C·Z scores read, and written back as gradients (train) or R·Z vec4 stats
    // written (eval), and the R labels read
    cost: {
      flops: 4 * R * C * Z,
      bytes: F32 * ((train ? 2 * R * C * Z : R * C * Z + 4 * R * Z) + R),
      shape: `${R}×${C}${timesZ(Z)}`,
    },
  });
}
