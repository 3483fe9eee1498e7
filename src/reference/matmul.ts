/**
 * Float64 twin of `shaders/matmul.wgsl`: the same addressing, the same epilogues.
 *
 * @module
 */

import type { Epilogue, MatmulVariant } from "../kernels/matmul.ts";
import { dropKeep, dropThreshold } from "./random.ts";
import { softmaxCeRef } from "./softmax_ce.ts";

/** A matrix operand in a flat array (same addressing as the GPU {@link Operand}). */
export interface RefOperand {
  data: ArrayLike<number>;
  offset?: number;
  ld: number;
  zStride?: number;
}

/** Arguments of {@link matmulRef}; mirrors `MatmulSpec`. */
export interface MatmulRefSpec {
  variant: MatmulVariant;
  M: number;
  N: number;
  K: number;
  Z?: number;
  a: RefOperand;
  b: RefOperand;
  /** Output, updated in place (read too by the `sgd` epilogue). */
  c: { data: Float64Array | Float32Array; offset?: number; ld: number; zStride?: number };
  epilogue?: Epilogue;
  aux?: { data: ArrayLike<number>; offset?: number };
  /** λ per z, or per block of `columns` columns of C when set (models side by side, Z = 1). */
  lambda?: { data: ArrayLike<number>; zStride?: number; columns?: number };
  eta?: number;
  /** `tn`: column sums of B into a bias vector (stored, or applied as −η·sum). */
  bias?: { data: Float64Array | Float32Array; mode: "store" | "sgd" };
  /** Dropout of `bias_relu_dropout` / gradient scale of `relu_mask`, and the step seeding it. */
  dropout?: { p: number; seed: number; layer: number };
  step?: number;
  /** `bias_softmax_ce`: the rows' labels and the gradient's scale (see {@link softmaxCeRef}). */
  softmax?: { labels: ArrayLike<number>; scale: number };
}

/** Compute the product and epilogue in float64, writing only the logical M×N entries of C. */
export function matmulRef(s: MatmulRefSpec): void {
  const Z = s.Z ?? 1;
  const epi = s.epilogue ?? "store";
  const ao = s.a.offset ?? 0, bo = s.b.offset ?? 0, co = s.c.offset ?? 0;
  const az = s.a.zStride ?? 0, bz = s.b.zStride ?? 0, cz = s.c.zStride ?? 0;
  const A = s.a.data, B = s.b.data, C = s.c.data;
  const auxOff = s.aux?.offset ?? 0;
  const drop = s.dropout ?? { p: 0, seed: 0, layer: 0 };
  const threshold = dropThreshold(drop.p), scale = 1 / Math.fround(1 - drop.p);
  for (let z = 0; z < Z; z++) {
    const lamOf = (col: number) => {
      if (!s.lambda) return 0;
      const model = s.lambda.columns ? Math.floor(col / s.lambda.columns) : z;
      return s.lambda.data[model * (s.lambda.zStride ?? 1)];
    };
    if (s.bias) {
      for (let j = 0; j < s.N; j++) {
        let sum = 0;
        for (let k = 0; k < s.K; k++) sum += B[bo + z * bz + k * s.b.ld + j];
        const col = z * cz + j;
        s.bias.data[col] = s.bias.mode === "sgd" ? s.bias.data[col] - (s.eta ?? 0) * sum : sum;
      }
    }
    for (let i = 0; i < s.M; i++) {
      for (let j = 0; j < s.N; j++) {
        let acc = 0;
        for (let k = 0; k < s.K; k++) {
          const a = s.variant === "tn"
            ? A[ao + z * az + k * s.a.ld + i]
            : A[ao + z * az + i * s.a.ld + k];
          const b = s.variant === "nt"
            ? B[bo + z * bz + j * s.b.ld + k]
            : B[bo + z * bz + k * s.b.ld + j];
          acc += a * b;
        }
        const idx = co + z * cz + i * s.c.ld + j;
        const col = z * cz + j;
        const aux = s.aux?.data;
        switch (epi) {
          case "store":
            C[idx] = acc;
            break;
          case "bias":
          case "bias_softmax_ce":
            C[idx] = acc + aux![auxOff + col];
            break;
          case "bias_relu":
            C[idx] = Math.max(acc + aux![auxOff + col], 0);
            break;
          case "bias_relu_dropout": {
            const keep = dropKeep(drop.seed, s.step ?? 0, drop.layer, i * s.c.ld + col, threshold);
            C[idx] = keep ? Math.max(acc + aux![auxOff + col], 0) * scale : 0;
            break;
          }
          case "relu_mask":
            C[idx] = aux![auxOff + idx] > 0 ? acc * scale : 0;
            break;
          case "sgd":
            C[idx] = C[idx] - (s.eta ?? 0) * (acc + 2 * lamOf(col) * C[idx]);
            break;
          case "grad_l2":
            C[idx] = acc + 2 * lamOf(col) * aux![auxOff + idx];
            break;
        }
      }
    }
  }
  // the output layer's loss, fused: the scores just computed become their gradient
  if (epi === "bias_softmax_ce") {
    const { labels, scale } = s.softmax!;
    const view = co === 0 ? C : C.subarray(co);
    softmaxCeRef(view, labels, s.M, Z, s.N, s.c.ld, cz, scale);
  }
}
