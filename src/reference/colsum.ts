/**
 * Float64 twin of `shaders/colsum.wgsl`.
 *
 * @module
 */

/** Column sums of Z blocks of N logical columns; `eta` given: out -= η·sum, else out = sum. */
export function colsumRef(
  g: ArrayLike<number>,
  R: number,
  N: number,
  Z: number,
  ld: number,
  zStride: number,
  out: Float64Array | Float32Array,
  outOffset = 0,
  eta?: number,
): void {
  for (let z = 0; z < Z; z++) {
    for (let j = 0; j < N; j++) {
      const col = z * zStride + j;
      let s = 0;
      for (let i = 0; i < R; i++) s += g[i * ld + col];
      out[outOffset + col] = eta === undefined ? s : out[outOffset + col] - eta * s;
    }
  }
}
