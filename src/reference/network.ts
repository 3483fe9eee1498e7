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
  return { H, P };
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

/**
 * Numerical gradients of the cost by finite differences with step h: forward differences
 * (c(θ+h) − c(θ))/h, or centred (c(θ+h) − c(θ−h))/2h.
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
  const cost = () => evaluate(p, X, y, n, lambda).cost;
  const c0 = centred ? 0 : cost();
  const probe = (arr: Float64Array): Float64Array => {
    const g = new Float64Array(arr.length);
    for (let i = 0; i < arr.length; i++) {
      const old = arr[i];
      arr[i] = old + h;
      const up = cost();
      if (centred) {
        arr[i] = old - h;
        g[i] = (up - cost()) / (2 * h);
      } else g[i] = (up - c0) / h;
      arr[i] = old;
    }
    return g;
  };
  return { W: p.W.map(probe), b: p.b.map(probe) };
}

/** Max relative error |a − n| / max(eps, |a| + |n|) over two arrays. */
export function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>, eps = 1e-10): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(eps, Math.abs(a[i]) + Math.abs(b[i])));
  }
  return m;
}
