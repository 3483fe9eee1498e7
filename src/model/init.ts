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

/** Float64 parameters of one network. */
export interface Params {
  /** Layer sizes: input dimension, hidden sizes…, classes. */
  sizes: number[];
  /** W[l]: sizes[l] × sizes[l+1], row-major. */
  W: Float64Array[];
  /** b[l]: sizes[l+1]. */
  b: Float64Array[];
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

/** Initialise weights ~ N(0, std²) per the scheme, biases 0, deterministically from `seed`. */
export function initParams(
  sizes: number[],
  scheme: InitScheme,
  sigma: number,
  seed: number,
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
  return { sizes: [...sizes], W, b };
}

/** A deep copy of parameters. */
export function cloneParams(p: Params): Params {
  return { sizes: [...p.sizes], W: p.W.map((w) => w.slice()), b: p.b.map((b) => b.slice()) };
}

/** Σ over layers of ‖W_l‖² (biases excluded), the L2 term of the cost. */
export function sumSquaredWeights(p: Params): number {
  let s = 0;
  for (const w of p.W) for (let i = 0; i < w.length; i++) s += w[i] * w[i];
  return s;
}
