/**
 * Float64 twins of `shaders/batchnorm.wgsl`, and the batch-normalisation math on one dense
 * R × n block for the CPU reference network.
 *
 * Per column j over the R rows i of a batch:
 *   μ = mean_i Z,  v = mean_i (Z − μ)² (biased),  s = 1/√(v + ε),  Ẑ = (Z − μ)·s,  S = γ⊙Ẑ + β.
 * Backward from G = dL/dS:
 *   dγ = Σ_i G⊙Ẑ,  dβ = Σ_i G,  dZ = s·(G_Ẑ − mean_i G_Ẑ − Ẑ⊙mean_i(G_Ẑ⊙Ẑ)),  G_Ẑ = G⊙γ.
 * With R = 1 the batch variance is 0: s = 1/√ε, Ẑ = 0, S = β and dZ = 0, all finite.
 *
 * @module
 */

import { BN_DEFAULT_ALPHA, BN_DEFAULT_EPS, type BnDropout, dropThreshold } from "../nn/shared.ts";
import { dropKeep } from "./random.ts";

export { BN_DEFAULT_ALPHA, BN_DEFAULT_EPS, type BnDropout };

/** A writable array of numbers (typed arrays and plain arrays alike). */
export type NumArray = { [index: number]: number; readonly length: number };

/** Forward results on one dense R × n block (row-major, n columns). */
export interface BnBlockForward {
  /** Normalised inputs Ẑ (R × n). */
  zhat: Float64Array;
  /** S = γ⊙Ẑ + β (R × n), before any activation. */
  s: Float64Array;
  /** Batch mean μ, biased variance v and 1/√(v + ε), per column (n). */
  mean: Float64Array;
  variance: Float64Array;
  invStd: Float64Array;
}

/** Backward results on one dense R × n block. */
export interface BnBlockBackward {
  /** dL/dZ (R × n). */
  dz: Float64Array;
  /** dL/dγ and dL/dβ (n), without any L2 term. */
  dGamma: Float64Array;
  dBeta: Float64Array;
}

/**
 * Batch normalisation of a dense R × n block `z` in training mode (batch statistics):
 * returns Ẑ, S = γ⊙Ẑ + β and the per-column statistics.
 */
export function batchNormForward(
  z: ArrayLike<number>,
  R: number,
  n: number,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  eps = BN_DEFAULT_EPS,
): BnBlockForward {
  const zhat = new Float64Array(R * n), s = new Float64Array(R * n);
  const mean = new Float64Array(n), variance = new Float64Array(n), invStd = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let sum = 0;
    for (let i = 0; i < R; i++) sum += z[i * n + j];
    const mu = sum / R;
    let sq = 0;
    for (let i = 0; i < R; i++) sq += (z[i * n + j] - mu) ** 2;
    const v = sq / R;
    const inv = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < R; i++) {
      const zh = (z[i * n + j] - mu) * inv;
      zhat[i * n + j] = zh;
      s[i * n + j] = gamma[j] * zh + beta[j];
    }
    mean[j] = mu;
    variance[j] = v;
    invStd[j] = inv;
  }
  return { zhat, s, mean, variance, invStd };
}

/** Batch normalisation in evaluation mode: S = γ·(Z − μ_av)/√(v_av + ε) + β on an R × n block. */
export function batchNormEval(
  z: ArrayLike<number>,
  R: number,
  n: number,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  runMean: ArrayLike<number>,
  runVar: ArrayLike<number>,
  eps = BN_DEFAULT_EPS,
): Float64Array {
  const s = new Float64Array(R * n);
  for (let j = 0; j < n; j++) {
    const inv = 1 / Math.sqrt(runVar[j] + eps);
    for (let i = 0; i < R; i++) {
      s[i * n + j] = gamma[j] * ((z[i * n + j] - runMean[j]) * inv) + beta[j];
    }
  }
  return s;
}

/**
 * Backward of {@link batchNormForward} from G = dL/dS on an R × n block, through the batch
 * statistics (the full formula): dZ, dγ and dβ.
 */
export function batchNormBackward(
  g: ArrayLike<number>,
  zhat: ArrayLike<number>,
  gamma: ArrayLike<number>,
  invStd: ArrayLike<number>,
  R: number,
  n: number,
): BnBlockBackward {
  const dz = new Float64Array(R * n), dGamma = new Float64Array(n), dBeta = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let sg = 0, sgx = 0;
    for (let i = 0; i < R; i++) {
      sg += g[i * n + j];
      sgx += g[i * n + j] * zhat[i * n + j];
    }
    const meanGz = gamma[j] * sg / R, meanGzx = gamma[j] * sgx / R;
    for (let i = 0; i < R; i++) {
      const k = i * n + j;
      dz[k] = invStd[j] * (gamma[j] * g[k] - meanGz - zhat[k] * meanGzx);
    }
    dGamma[j] = sgx;
    dBeta[j] = sg;
  }
  return { dz, dGamma, dBeta };
}

/**
 * A BN layer in the population layout: R rows of stride `ld`, Z models whose n logical columns
 * start at z·zStride. Parameter vectors are laid out like one row.
 */
export interface BnLayout {
  R: number;
  n: number;
  Z: number;
  ld: number;
  zStride: number;
}

function gatherBlock(L: BnLayout, a: ArrayLike<number>, z: number): Float64Array {
  const out = new Float64Array(L.R * L.n);
  for (let i = 0; i < L.R; i++) {
    for (let j = 0; j < L.n; j++) out[i * L.n + j] = a[i * L.ld + z * L.zStride + j];
  }
  return out;
}

function gatherVec(L: BnLayout, a: ArrayLike<number>, z: number): Float64Array {
  const out = new Float64Array(L.n);
  for (let j = 0; j < L.n; j++) out[j] = a[z * L.zStride + j];
  return out;
}

/**
 * Twin of `bn_forward_train`: overwrites `pre` (Z) with Ẑ, writes H = ReLU(γ⊙Ẑ + β) (with
 * inverted dropout keyed by `step`), updates the running statistics with momentum α and stores
 * 1/√(v + ε) in `invStd`. Padding is left untouched.
 */
export function bnForwardTrainRef(
  L: BnLayout,
  b: {
    pre: NumArray;
    h: NumArray;
    gamma: ArrayLike<number>;
    beta: ArrayLike<number>;
    runMean: NumArray;
    runVar: NumArray;
    invStd: NumArray;
  },
  o: { alpha?: number; eps?: number; dropout?: BnDropout; step?: number } = {},
): void {
  const alpha = o.alpha ?? BN_DEFAULT_ALPHA;
  const drop = o.dropout && o.dropout.p > 0 ? o.dropout : undefined;
  const threshold = drop ? dropThreshold(drop.p) : 0;
  for (let z = 0; z < L.Z; z++) {
    const f = batchNormForward(
      gatherBlock(L, b.pre, z),
      L.R,
      L.n,
      gatherVec(L, b.gamma, z),
      gatherVec(L, b.beta, z),
      o.eps,
    );
    for (let j = 0; j < L.n; j++) {
      const col = z * L.zStride + j;
      for (let i = 0; i < L.R; i++) {
        const idx = i * L.ld + col;
        b.pre[idx] = f.zhat[i * L.n + j];
        let h = Math.max(f.s[i * L.n + j], 0);
        if (drop) {
          h = dropKeep(drop.seed, o.step ?? 0, drop.layer, idx, threshold) ? h / (1 - drop.p) : 0;
        }
        b.h[idx] = h;
      }
      b.runMean[col] = alpha * b.runMean[col] + (1 - alpha) * f.mean[j];
      b.runVar[col] = alpha * b.runVar[col] + (1 - alpha) * f.variance[j];
      b.invStd[col] = f.invStd[j];
    }
  }
}

/**
 * Twin of `bn_forward_eval`: H = ReLU(γ·(Z − μ_av)/√(v_av + ε) + β) from the running statistics.
 * With `rows`, rows ≥ rows are left untouched (as the kernel does with a step table).
 */
export function bnForwardEvalRef(
  L: BnLayout,
  b: {
    pre: ArrayLike<number>;
    h: NumArray;
    gamma: ArrayLike<number>;
    beta: ArrayLike<number>;
    runMean: ArrayLike<number>;
    runVar: ArrayLike<number>;
  },
  o: { eps?: number; rows?: number } = {},
): void {
  const rows = Math.min(L.R, o.rows ?? L.R);
  for (let z = 0; z < L.Z; z++) {
    const s = batchNormEval(
      gatherBlock({ ...L, R: rows }, b.pre, z),
      rows,
      L.n,
      gatherVec(L, b.gamma, z),
      gatherVec(L, b.beta, z),
      gatherVec(L, b.runMean, z),
      gatherVec(L, b.runVar, z),
      o.eps,
    );
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < L.n; j++) b.h[i * L.ld + z * L.zStride + j] = Math.max(s[i * L.n + j], 0);
    }
  }
}

/**
 * Twin of `bn_backward`: overwrites `g` (dL/dS) with dL/dZ, then either stores dγ (+2λ_z·γ) and
 * dβ (+2λ_z·β) into `dGamma`, `dBeta` (`store`) or updates γ −= η(dγ + 2λ_z·γ),
 * β −= η(dβ + 2λ_z·β) in place (`sgd`); the λ terms only when `l2`.
 */
export function bnBackwardRef(
  L: BnLayout,
  b: {
    g: NumArray;
    zhat: ArrayLike<number>;
    gamma: NumArray;
    beta: NumArray;
    invStd: ArrayLike<number>;
    dGamma?: NumArray;
    dBeta?: NumArray;
  },
  o: { mode: "store" | "sgd"; eta?: number; lambda?: ArrayLike<number>; l2?: boolean },
): void {
  for (let z = 0; z < L.Z; z++) {
    const gm = gatherVec(L, b.gamma, z), bt = gatherVec(L, b.beta, z);
    const r = batchNormBackward(
      gatherBlock(L, b.g, z),
      gatherBlock(L, b.zhat, z),
      gm,
      gatherVec(L, b.invStd, z),
      L.R,
      L.n,
    );
    const lam2 = o.l2 ? 2 * (o.lambda?.[z] ?? 0) : 0;
    for (let j = 0; j < L.n; j++) {
      const col = z * L.zStride + j;
      for (let i = 0; i < L.R; i++) b.g[i * L.ld + col] = r.dz[i * L.n + j];
      const dg = r.dGamma[j] + lam2 * gm[j], db = r.dBeta[j] + lam2 * bt[j];
      if (o.mode === "sgd") {
        const eta = o.eta ?? 0;
        b.gamma[col] = gm[j] - eta * dg;
        b.beta[col] = bt[j] - eta * db;
      } else {
        if (!b.dGamma || !b.dBeta) throw new Error("bnBackwardRef: store mode needs dGamma, dBeta");
        b.dGamma[col] = dg;
        b.dBeta[col] = db;
      }
    }
  }
}
