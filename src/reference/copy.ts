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
): Float64Array {
  const out = new Float64Array(4 * width * height);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < 4 * width; i++) out[y * 4 * width + i] = src[y * ld + i];
  }
  return out;
}
