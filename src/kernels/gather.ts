/**
 * Batch gather (`shaders/gather.wgsl`): normalised input rows and labels from the resident
 * dataset, shuffled per epoch in training, in order in evaluation.
 *
 * @module
 */

import { uniformBuffer } from "../gpu/buffers.ts";
import { bindLayout, pipeline } from "../gpu/shaders.ts";
import type { ResidentDataset, SplitRange } from "../data/resident.ts";
import { feistelHalfBits } from "../reference/shuffle.ts";
import { bufferEntries, checkGroups, type Op } from "./op.ts";

/** Arguments of {@link gatherOp}. */
export interface GatherSpec {
  /** `train`: rows pos..pos+R-1 of the epoch's permutation; `eval`: rows base..base+rows-1. */
  mode: "train" | "eval";
  dataset: ResidentDataset;
  split: SplitRange;
  /** Rows of X / y to fill. */
  R: number;
  /** Output: R × 3072 floats and R labels. */
  x: GPUBuffer;
  y: GPUBuffer;
  /** Shuffle seed (train). */
  seed?: number;
  /** Step table: `epoch` and `pos` (train), `base` and `rows` (eval). */
  steps: GPUBuffer;
  label?: string;
}

const WG = 64;

/** Prepare a gather dispatch. */
export function gatherOp(device: GPUDevice, s: GatherSpec): Op {
  const label = s.label ?? `gather_${s.mode}`;
  const ds = s.dataset;
  const params = new Uint32Array([
    ds.n0,
    s.split.base,
    s.split.n,
    s.R,
    (s.seed ?? 0) >>> 0,
    feistelHalfBits(s.split.n),
    0,
    0,
  ]);
  const layout = bindLayout(device, [
    "read",
    "read",
    "read",
    "read",
    "write",
    "write",
    "uniform",
    "dynamic",
  ]);
  return {
    label,
    pipeline: pipeline(device, "gather", "gather", layout, { TRAIN: s.mode === "train", WG }),
    bindGroup: device.createBindGroup({
      label,
      layout,
      entries: bufferEntries([
        ds.data0,
        ds.data1,
        ds.labels,
        ds.norm,
        s.x,
        s.y,
        uniformBuffer(device, params, `${label}.params`),
        s.steps,
      ], 7),
    }),
    workgroups: [checkGroups(label, s.R), 1, 1],
    stepped: true,
  };
}
