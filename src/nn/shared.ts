/**
 * Definitions the GPU kernels (`src/kernels/`, `src/train/`) and their float64 twins
 * (`src/reference/`) share: constants, parameter types and the small integer helpers both sides
 * must compute identically. Production code imports these from here, never from
 * `src/reference/`; the twins import them from here too, so both sides cannot drift apart.
 *
 * @module
 */

/** Default ε added to the batch variance of batch normalisation. */
export const BN_DEFAULT_EPS = 1e-5;
/** Default momentum α of batch norm's running mean/variance: avg ← α·avg + (1−α)·batch. */
export const BN_DEFAULT_ALPHA = 0.9;

/** Dropout after the ReLU, as the kernel draws it. */
export interface BnDropout {
  /** Drop probability, 0 ≤ p < 1 (with `table`: the largest of the models'). */
  p: number;
  /** Seed of the masks (the net's dropout seed). */
  seed: number;
  /** Layer number mixed into the random stream. */
  layer: number;
  /**
   * Each model's own p: where its threshold (the u32 bits of dropThreshold(p)) and scale
   * 1/(1 − p) sit in the population's per-model buffer (`GpuParams.lambda`, see
   * `GpuParams.dropoutTable`), in floats: the kernels read model m's at `thresholds + m` and
   * `scales + m`. A model with p = 0 keeps every unit at scale 1, exactly as without dropout.
   */
  table?: DropoutTable;
}

/** Offsets of a layer's per-model dropout thresholds and scales in the per-model buffer. */
export interface DropoutTable {
  /** First model's threshold, in floats (never 0: λ comes first). */
  thresholds: number;
  /** First model's scale, in floats. */
  scales: number;
}

/** The u32 threshold of dropout probability p: an element is dropped when its bits are below it. */
export function dropThreshold(p: number): number {
  return Math.min(0xffffffff, Math.floor(p * 4294967296));
}

/** Data augmentation of training batches: random horizontal flip and random translation. */
export interface Augment {
  /** Mirror each sample left-right with probability 1/2. */
  flip: boolean;
  /** Largest shift T in pixels (integer 0..31): dx, dy uniform in [−T, T]; 0 = none. */
  translate: number;
}

/** Throw unless `augment.translate` is an integer in 0..31 (and `flip` a boolean). */
export function checkAugment(augment: Augment): void {
  const t = augment.translate;
  if (!Number.isInteger(t) || t < 0 || t > 31) {
    throw new Error(`augment.translate must be an integer in 0..31, got ${t}`);
  }
  if (typeof augment.flip !== "boolean") {
    throw new Error(`augment.flip must be a boolean, got ${augment.flip}`);
  }
}

/** Smallest h with 4^h ≥ n (at least 1): the shuffle's Feistel half width for a domain of n. */
export function feistelHalfBits(n: number): number {
  let h = 1;
  while (4 ** h < n) h++;
  return h;
}

/** Gradients of the cost with respect to every parameter (CPU float64, or read from the GPU). */
export interface Grads {
  /** dCost/dW[l], laid out like W[l] (sizes[l] × sizes[l+1], row-major); NaN marks an entry
   * `numericalGradients` (src/reference/network.ts) skipped at a ReLU kink. */
  W: Float64Array[];
  /** dCost/db[l] (sizes[l+1]; zeros for a batch-normalised layer, which ignores its bias). */
  b: Float64Array[];
  /** Per layer: γ gradient of a batch-normalised layer, else null (absent without BN). */
  gamma?: (Float64Array | null)[];
  /** Per layer: β gradient of a batch-normalised layer, else null (absent without BN). */
  beta?: (Float64Array | null)[];
}
