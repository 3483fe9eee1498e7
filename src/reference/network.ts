/**
 * The whole network in float64 on the CPU: forward pass, loss and cost, analytic gradients, and
 * numerical gradients by forward and centred differences (the classic ComputeGradsNum and
 * ComputeGradsNumSlow). The GPU path is checked against this.
 *
 * Rows are samples: X is n × d (row-major), labels are class indices.
 *
 * @module
 */

import { BN_EPS, type Params, sumSquaredWeights } from "../model/init.ts";
import type { Grads } from "../nn/shared.ts";

export type { Grads };

/** What a batch-normalised layer keeps from its forward pass for the backward pass. */
export interface BnCache {
  /** Normalised pre-activations Ẑ (n × units). */
  zhat: Float64Array;
  /** 1/√(v + ε) per unit. */
  invStd: Float64Array;
  /** Mean per unit: the batch's in `train` mode, the running one in `eval` mode. */
  mean: Float64Array;
  /** Biased variance per unit: the batch's in `train` mode, the running one in `eval` mode. */
  variance: Float64Array;
}

/** Activations of a forward pass. */
export interface Forward {
  /** H[0] = X; H[l] = ReLU outputs of hidden layer l (n × sizes[l]). */
  H: Float64Array[];
  /** Softmax probabilities (n × classes). */
  P: Float64Array;
  /** Output scores before the softmax (n × classes). */
  S: Float64Array;
  /** Per layer: the batch-normalisation cache, or null. */
  bn: (BnCache | null)[];
}

/** Batch statistics and normalisation of an n × m block (training mode). */
export function bnNormalise(Z: Float64Array, n: number, m: number): BnCache {
  const mean = new Float64Array(m), variance = new Float64Array(m), invStd = new Float64Array(m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) mean[j] += Z[i * m + j] / n;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) variance[j] += (Z[i * m + j] - mean[j]) ** 2 / n;
  }
  for (let j = 0; j < m; j++) invStd[j] = 1 / Math.sqrt(variance[j] + BN_EPS);
  const zhat = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) zhat[i * m + j] = (Z[i * m + j] - mean[j]) * invStd[j];
  }
  return { zhat, invStd, mean, variance };
}

/**
 * Forward pass of n samples. `train` normalises batch-normalised layers with the batch's own
 * statistics; `eval` uses the running statistics stored in the parameters.
 */
export function forward(
  p: Params,
  X: ArrayLike<number>,
  n: number,
  mode: "train" | "eval" = "train",
): Forward {
  const L = p.sizes.length - 1;
  const H: Float64Array[] = [Float64Array.from(X as ArrayLike<number>)];
  const caches: (BnCache | null)[] = [];
  let S = new Float64Array(0);
  for (let l = 0; l < L; l++) {
    const nIn = p.sizes[l], nOut = p.sizes[l + 1];
    const A = H[l], W = p.W[l], b = p.b[l];
    const bn = l < L - 1 ? p.bn?.[l] ?? null : null;
    const Z = new Float64Array(n * nOut);
    for (let i = 0; i < n; i++) {
      if (!bn) { for (let j = 0; j < nOut; j++) Z[i * nOut + j] = b[j]; }
      for (let k = 0; k < nIn; k++) {
        const a = A[i * nIn + k];
        if (a === 0) continue;
        for (let j = 0; j < nOut; j++) Z[i * nOut + j] += a * W[k * nOut + j];
      }
    }
    let cache: BnCache | null = null;
    if (bn) {
      if (mode === "train") cache = bnNormalise(Z, n, nOut);
      else {
        const invStd = bn.variance.map((v) => 1 / Math.sqrt(v + BN_EPS));
        const zhat = Z.map((z, i) => (z - bn.mean[i % nOut]) * invStd[i % nOut]);
        cache = { zhat, invStd, mean: bn.mean, variance: bn.variance };
      }
      for (let i = 0; i < Z.length; i++) {
        const j = i % nOut;
        Z[i] = bn.gamma[j] * cache.zhat[i] + bn.beta[j];
      }
    }
    caches.push(cache);
    if (l < L - 1) {
      for (let i = 0; i < Z.length; i++) Z[i] = Math.max(Z[i], 0);
      H.push(Z);
    } else S = Z;
  }
  const C = p.sizes[L];
  const P = new Float64Array(n * C);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, S[i * C + c]);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += P[i * C + c] = Math.exp(S[i * C + c] - m);
    for (let c = 0; c < C; c++) P[i * C + c] /= sum;
  }
  return { H, P, S, bn: caches };
}

/** Options of the cost: L2 on BN's γ and β, and the forward mode. */
export interface CostOptions {
  /** Count BN's γ and β in Σ‖W‖² (default false: weights only). */
  bnL2?: boolean;
  /** BN statistics: the batch's own (`train`, default) or the running ones (`eval`). */
  mode?: "train" | "eval";
}

/** Mean cross-entropy loss, cost = loss + λ·Σ‖W‖², and accuracy of n samples. */
export function evaluate(
  p: Params,
  X: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  lambda: number,
  opts: CostOptions = {},
): { loss: number; cost: number; accuracy: number } {
  const { P } = forward(p, X, n, opts.mode ?? "train");
  const C = p.sizes[p.sizes.length - 1];
  let loss = 0, correct = 0;
  for (let i = 0; i < n; i++) {
    loss -= Math.log(P[i * C + y[i]]);
    let arg = 0;
    for (let c = 1; c < C; c++) if (P[i * C + c] > P[i * C + arg]) arg = c;
    if (arg === y[i]) correct++;
  }
  loss /= n;
  return {
    loss,
    cost: loss + lambda * sumSquaredWeights(p, !!opts.bnL2),
    accuracy: correct / n,
  };
}

/**
 * Backward through batch normalisation: from G = dL/dS (S = γ·Ẑ + β, n × m) to dL/dZ, with the
 * full dependence of the batch mean and variance on Z; also dγ and dβ.
 */
export function bnBackward(
  G: Float64Array,
  cache: BnCache,
  gamma: Float64Array,
  n: number,
  m: number,
): { dZ: Float64Array; dGamma: Float64Array; dBeta: Float64Array } {
  const dGamma = new Float64Array(m), dBeta = new Float64Array(m);
  const meanG = new Float64Array(m), meanGZ = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      const g = G[i * m + j], z = cache.zhat[i * m + j];
      dGamma[j] += g * z;
      dBeta[j] += g;
      meanG[j] += (g * gamma[j]) / n;
      meanGZ[j] += (g * gamma[j] * z) / n;
    }
  }
  const dZ = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      const gz = G[i * m + j] * gamma[j];
      dZ[i * m + j] = cache.invStd[j] * (gz - meanG[j] - cache.zhat[i * m + j] * meanGZ[j]);
    }
  }
  return { dZ, dGamma, dBeta };
}

/** Analytic gradients of the cost (mean loss + λ·Σ‖W‖²) over n samples, BN in training mode. */
export function gradients(
  p: Params,
  X: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  lambda: number,
  opts: { bnL2?: boolean } = {},
): Grads {
  const L = p.sizes.length - 1;
  const fw = forward(p, X, n, "train");
  const { H, P } = fw;
  const C = p.sizes[L];
  let G: Float64Array = Float64Array.from(P);
  for (let i = 0; i < n; i++) G[i * C + y[i]] -= 1;
  for (let i = 0; i < G.length; i++) G[i] /= n;
  const dW: Float64Array[] = new Array(L), db: Float64Array[] = new Array(L);
  const dGamma: (Float64Array | null)[] = new Array(L).fill(null);
  const dBeta: (Float64Array | null)[] = new Array(L).fill(null);
  for (let l = L - 1; l >= 0; l--) {
    const nIn = p.sizes[l], nOut = p.sizes[l + 1];
    const bn = l < L - 1 ? p.bn?.[l] ?? null : null;
    if (bn) {
      const r = bnBackward(G, fw.bn[l]!, bn.gamma, n, nOut);
      const l2 = opts.bnL2 ? 2 * lambda : 0;
      dGamma[l] = r.dGamma.map((g, j) => g + l2 * bn.gamma[j]);
      dBeta[l] = r.dBeta.map((g, j) => g + l2 * bn.beta[j]);
      G = r.dZ;
    }
    const A = H[l], W = p.W[l];
    const gw = new Float64Array(nIn * nOut), gb = new Float64Array(nOut);
    for (let i = 0; i < n; i++) {
      if (!bn) { for (let j = 0; j < nOut; j++) gb[j] += G[i * nOut + j]; }
      for (let k = 0; k < nIn; k++) {
        const a = A[i * nIn + k];
        if (a === 0) continue;
        for (let j = 0; j < nOut; j++) gw[k * nOut + j] += a * G[i * nOut + j];
      }
    }
    for (let i = 0; i < gw.length; i++) gw[i] += 2 * lambda * W[i];
    dW[l] = gw;
    db[l] = gb;
    if (l > 0) {
      const Gp = new Float64Array(n * nIn);
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < nIn; k++) {
          if (A[i * nIn + k] <= 0) continue;
          let s = 0;
          for (let j = 0; j < nOut; j++) s += G[i * nOut + j] * W[k * nOut + j];
          Gp[i * nIn + k] = s;
        }
      }
      G = Gp;
    }
  }
  const out: Grads = { W: dW, b: db };
  if (p.bn) {
    out.gamma = dGamma;
    out.beta = dBeta;
  }
  return out;
}

/** Mean cross-entropy loss of n samples from their scores: logsumexp(s) − s_y, max-shifted. */
function meanLoss(S: Float64Array, y: ArrayLike<number>, n: number, C: number): number {
  let loss = 0;
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, S[i * C + c]);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(S[i * C + c] - m);
    loss += Math.log(sum) + m - S[i * C + y[i]];
  }
  return loss / n;
}

/** True when two forward passes put some hidden unit on different sides of its ReLU's kink. */
function crossesKink(a: Forward, b: Forward): boolean {
  for (let l = 1; l < a.H.length; l++) {
    const ha = a.H[l], hb = b.H[l];
    for (let i = 0; i < ha.length; i++) if ((ha[i] > 0) !== (hb[i] > 0)) return true;
  }
  return false;
}

/**
 * Numerical gradients of the cost by finite differences with step h: forward differences
 * (c(θ+h) − c(θ))/h, or centred (c(θ+h) − c(θ−h))/2h.
 *
 * Two refinements keep the check meaningful. The cost is loss + λ·Σ‖W‖²; its L2 part changes
 * only in the perturbed entry, so that part of the difference is taken on that entry alone
 * (λ·((w+h)² − w²)) rather than by subtracting two sums of thousands of squares. And where a
 * perturbation moves some hidden unit across its ReLU's kink, the cost is not differentiable
 * within the step: that entry is NaN ("skipped"), as numerical checks of ReLU nets must do.
 */
export function numericalGradients(
  p: Params,
  X: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  lambda: number,
  h: number,
  centred: boolean,
  opts: { bnL2?: boolean } = {},
): Grads {
  const C = p.sizes[p.sizes.length - 1];
  const base = forward(p, X, n);
  const l0 = meanLoss(base.S, y, n, C);
  const probe = (arr: Float64Array, regularised: boolean): Float64Array => {
    const g = new Float64Array(arr.length);
    const l2 = (w: number) => (regularised ? lambda * w * w : 0);
    for (let i = 0; i < arr.length; i++) {
      const old = arr[i];
      arr[i] = old + h;
      const up = forward(p, X, n);
      let kink = crossesKink(base, up);
      if (centred) {
        arr[i] = old - h;
        const down = forward(p, X, n);
        kink ||= crossesKink(base, down);
        g[i] = (meanLoss(up.S, y, n, C) - meanLoss(down.S, y, n, C) + l2(old + h) - l2(old - h)) /
          (2 * h);
      } else g[i] = (meanLoss(up.S, y, n, C) - l0 + l2(old + h) - l2(old)) / h;
      if (kink) g[i] = NaN;
      arr[i] = old;
    }
    return g;
  };
  const out: Grads = { W: p.W.map((w) => probe(w, true)), b: p.b.map((b) => probe(b, false)) };
  if (p.bn) {
    out.gamma = p.bn.map((q) => (q ? probe(q.gamma, !!opts.bnL2) : null));
    out.beta = p.bn.map((q) => (q ? probe(q.beta, !!opts.bnL2) : null));
  }
  return out;
}

/** Number of NaN entries (skipped at a kink) in a numerical gradient. */
export function countSkipped(g: ArrayLike<number>): number {
  let k = 0;
  for (let i = 0; i < g.length; i++) if (Number.isNaN(g[i])) k++;
  return k;
}

/**
 * Max relative error |a − b| / max(eps, |a| + |b|) over two arrays; entries where `b` is NaN
 * (skipped numerical entries) are left out, a NaN in `a` counts as infinitely wrong.
 */
export function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>, eps = 1e-10): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(b[i])) continue;
    const r = Math.abs(a[i] - b[i]) / Math.max(eps, Math.abs(a[i]) + Math.abs(b[i]));
    m = Number.isNaN(r) ? Infinity : Math.max(m, r);
  }
  return m;
}
