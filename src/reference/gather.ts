/**
 * Float64 twin of `shaders/gather.wgsl`.
 *
 * @module
 */

import { epochKey, feistelHalfBits, permuteIndex } from "./shuffle.ts";

/** Indices (within the split) of the rows a gather fills. */
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

/** Normalised rows (x − mean)/std of the given images (raw bytes, 3072 per image). */
export function gatherRef(
  images: Uint8Array,
  indices: number[],
  mean: ArrayLike<number>,
  std: ArrayLike<number>,
): Float64Array {
  const D = 3072;
  const out = new Float64Array(indices.length * D);
  indices.forEach((img, r) => {
    for (let d = 0; d < D; d++) out[r * D + d] = (images[img * D + d] - mean[d]) / std[d];
  });
  return out;
}
