/**
 * The k-layer MLP's parameters on the CPU in float64, and their seeded initialisation.
 *
 * Layer l maps n_{l-1} inputs to n_l outputs: W_l is n_{l-1} × n_l (row-major, rows = inputs),
 * b_l has n_l entries. Hidden layers use ReLU; the last layer feeds a softmax.
 *
 * @module
 */

import { Rng } from "./rng.ts";

/** Weight initialisation schemes. */
export type InitScheme = "gaussian" | "xavier" | "he";

/** Batch-normalisation parameters and running statistics of one hidden layer. */
export interface BnParams {
  /** Scale γ, one per unit. */
  gamma: Float64Array;
  /** Shift β, one per unit (it takes the place of the layer's bias). */
  beta: Float64Array;
  /** Running mean of the pre-activations, used at evaluation time. */
  mean: Float64Array;
  /** Running (biased) variance of the pre-activations, used at evaluation time. */
  variance: Float64Array;
}

/** ε added to the variance before its square root. */
export const BN_EPS = 1e-5;

/** Float64 parameters of one network. */
export interface Params {
  /** Layer sizes: input dimension, hidden sizes…, classes. */
  sizes: number[];
  /** W[l]: sizes[l] × sizes[l+1], row-major. */
  W: Float64Array[];
  /** b[l]: sizes[l+1] (unused, and kept at zero, in a layer with batch normalisation). */
  b: Float64Array[];
  /** bn[l]: batch normalisation of hidden layer l, or null (absent: none anywhere). */
  bn?: (BnParams | null)[];
}

/** Standard deviation of layer weights for a scheme (`sigma` is used by `gaussian`). */
export function initStd(scheme: InitScheme, nIn: number, sigma: number): number {
  switch (scheme) {
    case "gaussian":
      return sigma;
    case "xavier":
      return 1 / Math.sqrt(nIn);
    case "he":
      return Math.sqrt(2 / nIn);
  }
}

/**
 * Initialise weights ~ N(0, std²) per the scheme, biases 0, deterministically from `seed`; hidden
 * layers flagged in `bn` get γ = 1, β = 0 and running statistics (0, 1).
 */
export function initParams(
  sizes: number[],
  scheme: InitScheme,
  sigma: number,
  seed: number,
  bn: boolean[] = [],
): Params {
  const rng = new Rng(seed);
  const W: Float64Array[] = [], b: Float64Array[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const std = initStd(scheme, sizes[l], sigma);
    const w = new Float64Array(sizes[l] * sizes[l + 1]);
    for (let i = 0; i < w.length; i++) w[i] = std * rng.normal();
    W.push(w);
    b.push(new Float64Array(sizes[l + 1]));
  }
  const p: Params = { sizes: [...sizes], W, b };
  if (bn.some((f) => f)) {
    p.bn = W.map((_, l) =>
      bn[l] && l < W.length - 1
        ? {
          gamma: new Float64Array(sizes[l + 1]).fill(1),
          beta: new Float64Array(sizes[l + 1]),
          mean: new Float64Array(sizes[l + 1]),
          variance: new Float64Array(sizes[l + 1]).fill(1),
        }
        : null
    );
  }
  return p;
}

/** Σ over layers of ‖W_l‖² (biases excluded; BN's γ and β included when `bnL2`): the L2 term. */
export function sumSquaredWeights(p: Params, bnL2 = false): number {
  let s = 0;
  const add = (a: Float64Array) => {
    for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  };
  p.W.forEach(add);
  if (bnL2) { for (const q of p.bn ?? []) if (q) (add(q.gamma), add(q.beta)); }
  return s;
}
