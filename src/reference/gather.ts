/**
 * Float64 twin of `shaders/gather.wgsl`: the rows a gather fills, their optional augmentation
 * (random horizontal flip and translation, training only) and the normalised output.
 *
 * @module
 */

import { type Augment, checkAugment, feistelHalfBits } from "../nn/shared.ts";
import { random3 } from "./random.ts";
import { epochKey, permuteIndex } from "./shuffle.ts";

export { type Augment, checkAugment };

/** Image side in pixels, and pixels per colour plane. */
const SIDE = 32, PLANE = SIDE * SIDE;

/** The `random3` stream (`b` argument) of the augmentation decisions, as `AUG_STREAM` in the shader. */
export const AUG_STREAM = 0x61756721;

/** The augmentation of one sample: mirrored or not, then shifted right by dx and down by dy. */
export interface AugmentDecision {
  flip: boolean;
  dx: number;
  dy: number;
}

/**
 * The augmentation of sample `sample` (index within the split) in epoch `epoch`, as the shader
 * decides it: h = random3(seed, epoch, AUG_STREAM, sample); flip = augment.flip and bit 31 of h;
 * with T = augment.translate, dx = ((h >> 16) & 0x7fff) mod (2T+1) − T and
 * dy = (h & 0xffff) mod (2T+1) − T.
 */
export function augmentParams(
  seed: number,
  epoch: number,
  sample: number,
  augment: Augment,
): AugmentDecision {
  const h = random3(seed >>> 0, epoch >>> 0, AUG_STREAM, sample >>> 0);
  const T = augment.translate, span = 2 * T + 1;
  return {
    flip: augment.flip && (h >>> 31) === 1,
    dx: ((h >>> 16) & 0x7fff) % span - T,
    dy: (h & 0xffff) % span - T,
  };
}

/**
 * Source dimension (c·1024 + y·32 + x) of output dimension `d` under an augmentation, or −1 when
 * the output pixel was vacated by the shift: output (c, y, x) reads source (c, y − dy, sx) with
 * tx = x − dx and sx = flip ? 31 − tx : tx.
 */
export function augmentSource(d: number, flip: boolean, dx: number, dy: number): number {
  const c = Math.floor(d / PLANE), y = Math.floor(d / SIDE) % SIDE, x = d % SIDE;
  const sy = y - dy, tx = x - dx;
  if (sy < 0 || sy >= SIDE || tx < 0 || tx >= SIDE) return -1;
  return c * PLANE + sy * SIDE + (flip ? SIDE - 1 - tx : tx);
}

/**
 * One augmented image (3072 raw bytes in, 3072 raw values out): mirrored if `flip`, shifted by
 * (dx, dy), vacated pixels set to `fill[d]` (pass the per-dimension mean to get normalised 0).
 */
export function augmentImage(
  bytes: ArrayLike<number>,
  flip: boolean,
  dx: number,
  dy: number,
  fill: ArrayLike<number> | number = 0,
): Float64Array {
  const D = 3 * PLANE;
  const out = new Float64Array(D);
  for (let d = 0; d < D; d++) {
    const s = augmentSource(d, flip, dx, dy);
    out[d] = s >= 0 ? bytes[s] : typeof fill === "number" ? fill : fill[d];
  }
  return out;
}

/**
 * Indices (within the split) of the rows a gather fills. Augmentation does not change them:
 * see {@link gatherAugments} for each row's flip and shift.
 */
export function gatherIndices(
  mode: "train" | "eval",
  R: number,
  splitN: number,
  opts: { seed?: number; epoch?: number; pos?: number; base?: number; rows?: number },
): number[] {
  const out: number[] = [];
  if (mode === "train") {
    const key = epochKey(opts.seed ?? 0, opts.epoch ?? 0), h = feistelHalfBits(splitN);
    for (let r = 0; r < R; r++) out.push(permuteIndex((opts.pos ?? 0) + r, splitN, key, h));
  } else {
    const rows = Math.min(R, opts.rows ?? R);
    for (let r = 0; r < rows; r++) out.push((opts.base ?? 0) + r);
  }
  return out;
}

/**
 * The augmentation of each gathered row (`indices` from {@link gatherIndices}): `undefined`
 * (none) in `eval` mode or without augmentation, as the kernel does.
 */
export function gatherAugments(
  mode: "train" | "eval",
  indices: number[],
  opts: { seed?: number; epoch?: number; augment?: Augment },
): AugmentDecision[] | undefined {
  const a = opts.augment;
  if (a) checkAugment(a);
  if (mode !== "train" || !a || (!a.flip && a.translate === 0)) return undefined;
  return indices.map((i) => augmentParams(opts.seed ?? 0, opts.epoch ?? 0, i, a));
}

/**
 * Normalised rows (x − mean)/std of the given images (raw bytes, 3072 per image), each augmented
 * by `augments[r]` when given (vacated pixels come out as 0, the normalised mean).
 */
export function gatherRef(
  images: Uint8Array,
  indices: number[],
  mean: ArrayLike<number>,
  std: ArrayLike<number>,
  augments?: AugmentDecision[],
): Float64Array {
  const D = 3072;
  const out = new Float64Array(indices.length * D);
  indices.forEach((img, r) => {
    const a = augments?.[r];
    if (a) {
      for (let d = 0; d < D; d++) {
        const s = augmentSource(d, a.flip, a.dx, a.dy);
        out[r * D + d] = s >= 0 ? (images[img * D + s] - mean[d]) / std[d] : 0;
      }
    } else {
      for (let d = 0; d < D; d++) out[r * D + d] = (images[img * D + d] - mean[d]) / std[d];
    }
  });
  return out;
}
