/**
 * Input normalisation: the per-dimension mean and standard deviation of a split's raw pixel
 * bytes, and the CPU reference of applying them.
 *
 * @module
 */

import { UserError } from "../errors.ts";
import { IMAGE_BYTES } from "./format.ts";
import type { Split } from "./splits.ts";

/** Per-dimension (3072) mean and standard deviation of the raw 0..255 pixel bytes. */
export interface NormStats {
  /** 3072 per-dimension means, in image byte order. */
  mean: Float32Array;
  /** 3072 per-dimension population standard deviations (a zero one replaced by 1). */
  std: Float32Array;
}

/**
 * Per-dimension mean and population standard deviation (divide by n) of a split's raw bytes,
 * accumulated in float64; a zero standard deviation is replaced by 1.
 */
export function normalisationStats(split: Split): NormStats {
  const { images, n } = split;
  if (n <= 0) throw new UserError("cannot compute normalisation statistics of an empty split");
  if (images.length < n * IMAGE_BYTES) {
    throw new Error(`split holds ${images.length} bytes, ${n * IMAGE_BYTES} expected`);
  }
  // Sums of bytes and squared bytes are integers below 2^53, hence exact in float64.
  const sum = new Float64Array(IMAGE_BYTES);
  const sumSq = new Float64Array(IMAGE_BYTES);
  for (let i = 0; i < n; i++) {
    const base = i * IMAGE_BYTES;
    for (let d = 0; d < IMAGE_BYTES; d++) {
      const x = images[base + d];
      sum[d] += x;
      sumSq[d] += x * x;
    }
  }
  const mean = new Float32Array(IMAGE_BYTES);
  const std = new Float32Array(IMAGE_BYTES);
  for (let d = 0; d < IMAGE_BYTES; d++) {
    const m = sum[d] / n;
    const variance = Math.max(0, (sumSq[d] - sum[d] * m) / n);
    const s = Math.sqrt(variance);
    mean[d] = m;
    std[d] = s > 0 ? s : 1;
  }
  return { mean, std };
}

/** CPU reference normalisation: `(x - mean[d]) / std[d]` for each raw byte x of `n` images. */
export function normalise(images: Uint8Array, n: number, stats: NormStats): Float32Array {
  const out = new Float32Array(n * IMAGE_BYTES);
  const { mean, std } = stats;
  for (let i = 0; i < n; i++) {
    const base = i * IMAGE_BYTES;
    for (let d = 0; d < IMAGE_BYTES; d++) {
      out[base + d] = (images[base + d] - mean[d]) / std[d];
    }
  }
  return out;
}
