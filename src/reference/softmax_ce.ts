/**
 * Float64 twin of `shaders/softmax_ce.wgsl`.
 *
 * @module
 */

/** Per-row results of the evaluation mode. */
export interface RowStats {
  loss: Float64Array;
  correct: Float64Array;
  predicted: Int32Array;
}

/**
 * Softmax cross-entropy of R rows of Z side-by-side score blocks. Returns per-(row, model) stats
 * (index i·Z + z) and, when `gradScale` is given, overwrites the scores with
 * (softmax − onehot)·gradScale as the training kernel does.
 */
export function softmaxCeRef(
  scores: Float64Array | Float32Array,
  labels: ArrayLike<number>,
  R: number,
  Z: number,
  C: number,
  ld: number,
  zStride: number,
  gradScale?: number,
): RowStats {
  const out: RowStats = {
    loss: new Float64Array(R * Z),
    correct: new Float64Array(R * Z),
    predicted: new Int32Array(R * Z),
  };
  for (let i = 0; i < R; i++) {
    for (let z = 0; z < Z; z++) {
      const base = i * ld + z * zStride;
      let m = scores[base], arg = 0;
      for (let c = 1; c < C; c++) {
        if (scores[base + c] > m) {
          m = scores[base + c];
          arg = c;
        }
      }
      let sum = 0;
      for (let c = 0; c < C; c++) sum += Math.exp(scores[base + c] - m);
      const y = labels[i];
      out.loss[i * Z + z] = Math.log(sum) + m - scores[base + y];
      out.correct[i * Z + z] = arg === y ? 1 : 0;
      out.predicted[i * Z + z] = arg;
      if (gradScale !== undefined) {
        for (let c = 0; c < C; c++) {
          const p = Math.exp(scores[base + c] - m) / sum;
          scores[base + c] = (p - (c === y ? 1 : 0)) * gradScale;
        }
      }
    }
  }
  return out;
}
