/**
 * Batch gather (`shaders/gather.wgsl`): normalised input rows and labels from the resident
 * dataset, shuffled per epoch in training, in order in evaluation. Training can augment each
 * sample on the fly (random horizontal flip, random translation), decided per (seed, epoch,
 * sample) exactly as `augmentParams` in `src/reference/gather.ts` does.
 *
 * @module
 */

import { uniformBuffer } from "../gpu/buffers.ts";
import { bindLayout, pipeline } from "../gpu/shaders.ts";
import type { ResidentDataset, SplitRange } from "../data/resident.ts";
import { type Augment, checkAugment, feistelHalfBits } from "../nn/shared.ts";
import { bufferEntries, checkGroups, type Op } from "./op.ts";

/** Arguments of {@link gatherOp}. */
export interface GatherSpec {
  /** `train`: rows pos..pos+R-1 of the epoch's permutation; `eval`: rows base..base+rows-1. */
  mode: "train" | "eval";
  dataset: ResidentDataset;
  split: SplitRange;
  /** Rows of X / y to fill. */
  R: number;
  /**
   * Output: R × 3072 floats (a buffer, or an rgba32float storage texture of R rows × 768 texels)
   * and R labels.
   */
  x: GPUBuffer | GPUTexture;
  y: GPUBuffer;
  /** Shuffle seed (train); also seeds the augmentation decisions. */
  seed?: number;
  /**
   * Data augmentation, training only (ignored in `eval`): `flip` mirrors each sample left-right
   * with probability 1/2, `translate` T (integer 0..31) shifts it by dx, dy uniform in [−T, T],
   * filling vacated pixels with the mean (normalised 0). Absent or all off: the plain kernel.
   */
  augment?: Augment;
  /** Step table: `epoch` and `pos` (train), `base` and `rows` (eval). */
  steps: GPUBuffer;
  label?: string;
}

const WG = 192;

/**
 * Prepare a gather dispatch. Throws when `augment.translate` is not an integer in 0..31.
 */
export function gatherOp(device: GPUDevice, s: GatherSpec): Op {
  const label = s.label ?? `gather_${s.mode}`;
  const ds = s.dataset;
  const aug = s.augment ?? { flip: false, translate: 0 };
  checkAugment(aug);
  const augment = s.mode === "train" && (aug.flip || aug.translate > 0);
  const params = new Uint32Array([
    ds.n0,
    s.split.base,
    s.split.n,
    s.R,
    (s.seed ?? 0) >>> 0,
    feistelHalfBits(s.split.n),
    augment && aug.flip ? 1 : 0,
    augment ? aug.translate : 0,
  ]);
  const xTexture = s.x instanceof GPUTexture;
  const layout = bindLayout(device, [
    "read",
    "read",
    "read",
    "texture",
    xTexture ? "storage-texture" : "write",
    "write",
    "uniform",
    "dynamic",
  ]);
  return {
    label,
    pipeline: pipeline(device, "gather", "gather", layout, {
      TRAIN: s.mode === "train",
      X_TEXTURE: xTexture,
      AUGMENT: augment,
      WG,
    }),
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
