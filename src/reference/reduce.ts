/**
 * Float64 twins of `shaders/reduce.wgsl`.
 *
 * @module
 */

/** Σ loss and Σ correct over the first `rows` rows for model z (stats index i·Z + z). */
export function reduceRowsRef(
  loss: ArrayLike<number>,
  correct: ArrayLike<number>,
  rows: number,
  Z: number,
  z: number,
): { loss: number; correct: number } {
  let l = 0, c = 0;
  for (let i = 0; i < rows; i++) {
    l += loss[i * Z + z];
    c += correct[i * Z + z];
  }
  return { loss: l, correct: c };
}

/** Σ W² over model z's rows × cols block. */
export function sumSquaresRef(
  w: ArrayLike<number>,
  rows: number,
  cols: number,
  ld: number,
  zStride: number,
  z: number,
): number {
  let s = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = w[r * ld + z * zStride + c];
      s += v * v;
    }
  }
  return s;
}

/** Confusion counts [true][predicted] of model z over the first `rows` rows. */
export function confusionRef(
  labels: ArrayLike<number>,
  predicted: ArrayLike<number>,
  rows: number,
  Z: number,
  z: number,
  C: number,
): number[][] {
  const m = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  for (let i = 0; i < rows; i++) m[labels[i]][predicted[i * Z + z]]++;
  return m;
}
