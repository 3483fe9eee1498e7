/**
 * Batch gather (`shaders/gather.wgsl`): normalised input rows and labels from the resident
 * dataset, shuffled per epoch in training, in order in evaluation. Training can augment each
 * sample on the fly (random horizontal flip, random translation), decided per (seed, epoch,
 * sample) exactly as `augmentParams` in `src/reference/gather.ts` does.
 *
 * @module
 */

import type { ResidentDataset, SplitRange } from "../data/resident.ts";
import { IMAGE_BYTES } from "../data/format.ts";
import { type Augment, checkAugment, feistelHalfBits } from "../nn/shared.ts";
import { checkGroups, F32, kernelOp, type Op, type OpCost, type Resource } from "./op.ts";
import { readsAsStorage, textureReadsOf } from "../gpu/device.ts";

/** Arguments of {@link gatherOp}. */
export interface GatherSpec {
  /** `train`: rows pos..pos+R-1 of the epoch's permutation; `eval`: rows base..base+rows-1. */
  mode: "train" | "eval";
  /** The dataset resident on the GPU. */
  dataset: ResidentDataset;
  /** The split the rows come from. */
  split: SplitRange;
  /** Rows of X / y to fill. */
  R: number;
  /**
   * Output: R × 3072 floats (a buffer, or an rgba32float storage texture of R rows × 768 texels),
   * or (`index`) no rows but each row's image index in the dataset, one u32 a row, for products
   * that read the images themselves (`ImagesOperand` in src/kernels/matmul.ts).
   */
  x: GPUBuffer | GPUTexture | { index: GPUBuffer };
  /** Output: the R labels. */
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
  /** Rows each workgroup of {@link gatherOp} fills (default {@link GATHER_ROWS}; tests, bench). */
  rows?: number;
  /** Debug label (default `gather_<mode>`). */
  label?: string;
}

const WG = 192;
/**
 * Rows a gather workgroup fills (shaders/gather.wgsl's ROWS): its invocations load their share of
 * the normalisation table once for all of them.
 */
export const GATHER_ROWS = 4;
const ROW = IMAGE_BYTES; // floats of a row of X (shaders/gather_row.wgsl: WORDS·4)
const VECS = ROW / 16; // 16-byte vectors of an image: what a row's invocations share

/**
 * The constants, resources (bindings of shaders/gather_row.wgsl) and cost of a gather's rows, as
 * the gather kernel and a tail that carries the gather (src/kernels/tail.ts) both bind them.
 * `wg` invocations fill a row: it must divide 192 (and 768 with augmentation).
 */
export function gatherParts(
  device: GPUDevice,
  s: GatherSpec,
  wg: number,
): { constants: Record<string, boolean>; resources: Record<string, Resource>; cost: OpCost } {
  const ds = s.dataset;
  const aug = s.augment ?? { flip: false, translate: 0 };
  checkAugment(aug);
  const augment = s.mode === "train" && (aug.flip || aug.translate > 0);
  if (VECS % wg !== 0 || (augment && (ROW / 4) % wg !== 0)) {
    throw new Error(`${s.label ?? "gather"}: ${wg} invocations cannot share a row`);
  }
  const R = s.R;
  const index = "index" in s.x ? s.x.index : null;
  if (index && augment) {
    throw new Error(`${s.label ?? "gather"}: an augmented batch must be gathered into X`);
  }
  return {
    constants: {
      TRAIN: s.mode === "train",
      X_TEXTURE: s.x instanceof GPUTexture,
      INDEX: !!index,
      NORM_STORAGE: readsAsStorage(textureReadsOf(device), ds.norm),
      AUGMENT: augment,
    },
    resources: {
      data0: ds.data0,
      data1: ds.data1,
      dsLabels: ds.labels,
      norm: ds.norm,
      ...(index
        ? { xIndex: index }
        : s.x instanceof GPUTexture
        ? { Xt: s.x }
        : { X: s.x as GPUBuffer }),
      y: s.y,
      gp: {
        n0: ds.n0,
        splitBase: s.split.base,
        splitN: s.split.n,
        R,
        key: (s.seed ?? 0) >>> 0,
        halfBits: feistelHalfBits(s.split.n),
        flip: augment && aug.flip ? 1 : 0,
        shift: augment ? aug.translate : 0,
      },
    },
    // per pixel: a subtraction and a multiplication (normalisation); bytes: the u8 images read, X
    // written as f32, a label read and written per row (the normalisation table is not counted);
    // image indices: an index written, a label read and written per row
    cost: index ? { flops: 0, bytes: 3 * F32 * R, shape: `${R} image indices` } : {
      flops: 2 * R * ROW,
      bytes: R * ROW + F32 * R * ROW + 2 * F32 * R,
      shape: `${R}×${ROW} u8→f32${augment ? " +augment" : ""}`,
    },
  };
}

/**
 * Prepare a gather dispatch. Throws when `augment.translate` is not an integer in 0..31.
 */
export function gatherOp(device: GPUDevice, s: GatherSpec): Op {
  const label = s.label ?? `gather_${s.mode}`;
  const parts = gatherParts(device, s, WG);
  // image indices: one workgroup takes every row, one a lane
  const rows = s.rows ?? ("index" in s.x ? s.R : GATHER_ROWS);
  if (!(Number.isInteger(rows) && rows >= 1)) {
    throw new Error(`${label}: rows per workgroup ${rows} is not a positive integer`);
  }
  return kernelOp(device, {
    shader: "gather",
    entryPoint: "gather",
    constants: { ...parts.constants, WG, ROWS: rows },
    label,
    resources: { ...parts.resources, st: s.steps },
    workgroups: [checkGroups(label, Math.ceil(s.R / rows)), 1, 1],
    stepped: true,
    cost: parts.cost,
  });
}
