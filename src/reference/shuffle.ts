/**
 * The per-epoch shuffle the gather kernel computes on the GPU (`shaders/gather.wgsl`), in
 * TypeScript with identical 32-bit arithmetic: a keyed four-round Feistel network over
 * 2·halfBits bits, cycle-walked into [0, n). Each epoch re-keys it, giving a new permutation.
 *
 * @module
 */

import { feistelHalfBits } from "../nn/shared.ts";

/** lowbias32 integer hash, as in the shader. */
export function hash32(x: number): number {
  let v = x >>> 0;
  v ^= v >>> 16;
  v = Math.imul(v, 0x7feb352d) >>> 0;
  v ^= v >>> 15;
  v = Math.imul(v, 0x846ca68b) >>> 0;
  v ^= v >>> 16;
  return v >>> 0;
}

export { feistelHalfBits };

function feistel(x: number, key: number, halfBits: number): number {
  const mask = (1 << halfBits) - 1;
  let l = x >>> halfBits, r = x & mask;
  for (let round = 0; round < 4; round++) {
    const f = hash32(r ^ hash32((key + round) >>> 0)) & mask;
    const t = (l ^ f) >>> 0;
    l = r;
    r = t;
  }
  return ((l << halfBits) | r) >>> 0;
}

/** The shuffle key of an epoch. */
export function epochKey(seed: number, epoch: number): number {
  return hash32((seed ^ hash32((Math.imul(epoch, 0x9e3779b9) + 1) >>> 0)) >>> 0);
}

/** Position `i` of the epoch's permutation of [0, n). */
export function permuteIndex(
  i: number,
  n: number,
  key: number,
  halfBits = feistelHalfBits(n),
): number {
  let x = feistel(i, key, halfBits);
  while (x >= n) x = feistel(x, key, halfBits);
  return x;
}

/** The whole permutation of [0, n) for (seed, epoch). */
export function epochPermutation(n: number, seed: number, epoch: number): Uint32Array {
  const key = epochKey(seed, epoch), h = feistelHalfBits(n);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = permuteIndex(i, n, key, h);
  return out;
}
