/**
 * The whole network in float64 on the CPU: forward pass, loss and cost, analytic gradients, and
 * numerical gradients by forward and centred differences (the classic ComputeGradsNum and
 * ComputeGradsNumSlow). The GPU path is checked against this.
 *
 * Rows are samples: X is n × d (row-major), labels are class indices.
 *
 * @module
 */

import { type Params, sumSquaredWeights } from "../model/init.ts";

/** Activations of a forward pass. */
export interface Forward {
  /** H[0] = X; H[l] = ReLU outputs of hidden layer l (n × sizes[l]). */
  H: Float64Array[];
  /** Softmax probabilities (n × classes). */
  P: Float64Array;
  /** Output scores before the softmax (n × classes). */
  S: Float64Array;
}

/** Forward pass of n samples. */
export function forward(p: Params, X: ArrayLike<number>, n: number): Forward {
  const L = p.sizes.length - 1;
  const H: Float64Array[] = [Float64Array.from(X as ArrayLike<number>)];
  let S = new Float64Array(0);
  for (let l = 0; l < L; l++) {
    const nIn = p.sizes[l], nOut = p.sizes[l + 1];
    const A = H[l], W = p.W[l], b = p.b[l];
    const Z = new Float64Array(n * nOut);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < nOut; j++) Z[i * nOut + j] = b[j];
      for (let k = 0; k < nIn; k++) {
        const a = A[i * nIn + k];
        if (a === 0) continue;
        for (let j = 0; j < nOut; j++) Z[i * nOut + j] += a * W[k * nOut + j];
      }
    }
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
  return { H, P, S };
}

/** Mean cross-entropy loss, cost = loss + λ·Σ‖W‖², and accuracy of n samples. */
export function evaluate(
  p: Params,
  X: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  lambda: number,
): { loss: number; cost: number; accuracy: number } {
  const { P } = forward(p, X, n);
  const C = p.sizes[p.sizes.length - 1];
  let loss = 0, correct = 0;
  for (let i = 0; i < n; i++) {
    loss -= Math.log(P[i * C + y[i]]);
    let arg = 0;
    for (let c = 1; c < C; c++) if (P[i * C + c] > P[i * C + arg]) arg = c;
    if (arg === y[i]) correct++;
  }
  loss /= n;
  return { loss, cost: loss + lambda * sumSquaredWeights(p), accuracy: correct / n };
}

/** Gradients of the cost with respect to every W and b. */
export interface Grads {
  W: Float64Array[];
  b: Float64Array[];
}

/** Analytic gradients of the cost (mean loss + λ·Σ‖W‖²) over n samples. */
export function gradients(
  p: Params,
  X: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  lambda: number,
): Grads {
  const L = p.sizes.length - 1;
  const { H, P } = forward(p, X, n);
  const C = p.sizes[L];
  let G = Float64Array.from(P);
  for (let i = 0; i < n; i++) G[i * C + y[i]] -= 1;
  for (let i = 0; i < G.length; i++) G[i] /= n;
  const dW: Float64Array[] = new Array(L), db: Float64Array[] = new Array(L);
  for (let l = L - 1; l >= 0; l--) {
    const nIn = p.sizes[l], nOut = p.sizes[l + 1];
    const A = H[l], W = p.W[l];
    const gw = new Float64Array(nIn * nOut), gb = new Float64Array(nOut);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < nOut; j++) gb[j] += G[i * nOut + j];
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
  return { W: dW, b: db };
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
  return { W: p.W.map((w) => probe(w, true)), b: p.b.map((b) => probe(b, false)) };
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
