/**
 * Float64 twin of `shaders/copy.wgsl`.
 *
 * @module
 */

/**
 * The texels of a `width` × `height` rgba32float texture filled from `src` (rows of stride `ld`
 * floats), as floats row-major (`height` rows of 4·width): texel (x, y) = src[y·ld + 4x .. + 3].
 */
export function copyToTextureRef(
  src: ArrayLike<number>,
  ld: number,
  width: number,
  height: number,
  quads = Infinity,
): Float64Array {
  const out = new Float64Array(4 * width * height);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < 4 * width; i++) {
      // quads past the first `quads` of src are not copied (the texture keeps its zeros)
      if ((y * ld) / 4 + Math.floor(i / 4) < quads) out[y * 4 * width + i] = src[y * ld + i];
    }
  }
  return out;
}

/**
 * Float64 twin of `shaders/blocks.wgsl`: `buf` (`rows` rows of `ld` floats, model m's block of
 * `pout` floats at column m·pout) with model m's block of every row replaced by model
 * `origin[m]`'s, read before any is replaced; columns past origin.length·pout kept.
 */
export function copyBlocksRef(
  buf: ArrayLike<number>,
  rows: number,
  ld: number,
  pout: number,
  origin: readonly number[],
): Float64Array {
  const out = Float64Array.from(buf);
  for (let i = 0; i < rows; i++) {
    origin.forEach((o, m) => {
      for (let j = 0; j < pout; j++) out[i * ld + m * pout + j] = buf[i * ld + o * pout + j];
    });
  }
  return out;
}
