/**
 * Float64 twin of `shaders/update.wgsl`: SGD and Adam parameter updates, in place.
 *
 * @module
 */

/** Writable arrays of numbers the twins update in place. */
type Vec = Float64Array | Float32Array | number[];

/** Hyper-parameters of one Adam step. */
export interface AdamStep {
  /** Learning rate η. */
  eta: number;
  /** Decay rates of the first and second moments, in [0, 1). */
  beta1: number;
  beta2: number;
  /** Added to √v̂ in the denominator. */
  eps: number;
  /** 1-based step count of the bias corrections (the step record's `step` + 1). */
  t: number;
}

/** θ −= η·g over the first `n` entries (default: all of θ). */
export function sgdRef(theta: Vec, grad: ArrayLike<number>, eta: number, n = theta.length): void {
  for (let i = 0; i < n; i++) theta[i] -= eta * grad[i];
}

/**
 * One Adam step over the first `n` entries (default: all of θ): m = β1·m + (1−β1)·g,
 * v = β2·v + (1−β2)·g², θ −= η·m̂/(√v̂ + ε) with m̂ = m/(1−β1^t), v̂ = v/(1−β2^t).
 */
export function adamRef(
  theta: Vec,
  grad: ArrayLike<number>,
  m: Vec,
  v: Vec,
  s: AdamStep,
  n = theta.length,
): void {
  const c1 = 1 - Math.pow(s.beta1, s.t), c2 = 1 - Math.pow(s.beta2, s.t);
  for (let i = 0; i < n; i++) {
    const g = grad[i];
    const mi = s.beta1 * m[i] + (1 - s.beta1) * g;
    const vi = s.beta2 * v[i] + (1 - s.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    theta[i] -= s.eta * (mi / c1) / (Math.sqrt(vi / c2) + s.eps);
  }
}
