/**
 * The shape of `runs/<name>/metrics.json`: everything a run records, and what the report reads.
 *
 * @module
 */

/** Loss, cost (= loss + λ·Σ‖W‖²) and accuracy of one model on one split. */
export interface SplitMetrics {
  /** Mean cross-entropy loss over the split. */
  loss: number;
  /** Loss plus the L2 term λ·Σ‖W‖² (equal to `loss` when λ = 0). */
  cost: number;
  /** Fraction of correctly classified samples, in [0, 1]. */
  accuracy: number;
}

/** One evaluation point of a training curve. */
export interface EvalPoint {
  /** Update steps done so far (0 = before training). */
  step: number;
  /** Epochs done so far (fractional: step / steps per epoch). */
  epoch: number;
  /** Learning rate of the last step taken (of step 0 at step 0). */
  eta: number;
  /** Metrics on the full training set. */
  train: SplitMetrics;
  /** Metrics on the full validation set (absent when the run has no validation split). */
  val?: SplitMetrics;
}

/** Where and with what the run executed. */
export interface EnvInfo {
  /** WebGPU adapter, as `GPUAdapterInfo` reports it. */
  adapter: { vendor: string; architecture: string; device: string; description: string };
  /** `Deno.version`: deno, v8, typescript. */
  deno: { deno: string; v8: string; typescript: string };
  /** Operating system, `Deno.build.os` (e.g. `linux`). */
  os: string;
  /** CPU architecture, `Deno.build.arch` (e.g. `x86_64`). */
  arch: string;
  /** This project's version (deno.json). */
  version: string;
}

/** Wall-clock accounting of a run, in seconds unless stated. */
export interface Timings {
  /** When the run started: ISO 8601 timestamp, UTC. */
  startedAt: string;
  /** When the metrics were assembled, just before the run directory is written: ISO 8601, UTC. */
  finishedAt: string;
  /** Whole run, from start to the end of training and the test evaluation (files are written after). */
  wallSeconds: number;
  /** Data loading, normalisation statistics and upload. */
  setupSeconds: number;
  /** Training steps and evaluations on the GPU (the timed loop). */
  trainSeconds: number;
  /** Update steps done (fewer than scheduled when interrupted or every model diverged). */
  steps: number;
  /** Training throughput: `steps / trainSeconds`. */
  stepsPerSecond: number;
  /**
   * Resumable snapshots this session wrote: how many, their bytes in all, and the seconds spent
   * encoding and writing them (off the training loop's critical path, but on the same CPU).
   */
  snapshots?: { count: number; bytes: number; seconds: number };
}

/** Test-set results of the final model. */
export interface TestMetrics {
  /** Mean cross-entropy loss over the test set (no L2 term). */
  loss: number;
  /** Fraction of test samples classified correctly, in [0, 1]. */
  accuracy: number;
  /** confusion[true][predicted] counts, classes in `classNames` order. */
  confusion: number[][];
  /** Accuracy of each true class, in `classNames` order. */
  perClassAccuracy: number[];
}

/** Contents of `runs/<name>/metrics.json`. */
export interface RunMetrics {
  /** Format tag, bumped on incompatible changes. */
  format: "webgpu-mlp.run/1";
  /** Run name: the run directory's name under the config's `out`. */
  name: string;
  /** `completed`, `diverged` (NaN/Inf seen; training stopped), or `interrupted`. */
  status: "completed" | "diverged" | "interrupted";
  /** The resolved config the run used (after CLI overrides). */
  config: unknown;
  /** Seed of the model's weight initialisation (and, in a single run, of the shuffles). */
  seed: number;
  /** The network, for readers that do not parse the config: sizes[0] = input dim, last = classes. */
  layerSizes: number[];
  /** L2 strength λ. */
  lambda: number;
  /** Adapter, Deno version and platform the run executed on. */
  env: EnvInfo;
  /** Where the wall-clock time went. */
  timings: Timings;
  /** Learning rate at every step, sampled to at most ~2000 points: [step, eta] pairs. */
  lrSchedule: [number, number][];
  /** Evaluation points, in step order. */
  curves: EvalPoint[];
  /**
   * Metrics of the final model on the full train and validation sets. A run that diverged before
   * its first healthy evaluation point has NaN train metrics (written as null).
   */
  final: { train: SplitMetrics; val?: SplitMetrics; test?: TestMetrics };
  /** Class names from `batches.meta.txt`. */
  classNames: string[];
  /** Sizes of the splits used. */
  dataSizes: { train: number; val: number; test: number };
  /** Present when status is `diverged`: the first evaluation step that saw NaN/Inf, and why. */
  diverged?: { step: number; reason: string };
  /** File name of the checkpoint beside metrics.json (safetensors), when one was written. */
  checkpoint?: string;
}

/** One row of the gradient audit: one parameter of one network. */
export interface GradcheckRow {
  /** Network label, e.g. `20-50-10` (input, hidden..., classes), with ` BN` appended for BN nets. */
  net: string;
  /** L2 strength λ of the audited cost. */
  lambda: number;
  /** Parameter name: `W1`, `b1`, … and for BN nets `gamma1`, `beta1`, … */
  param: string;
  /** Max relative error |ga−gn| / max(eps, |ga|+|gn|) of float64 analytic vs forward differences. */
  forward: number;
  /** The same against centred differences. */
  centred: number;
  /** GPU float32 analytic vs CPU float64 analytic. */
  gpu: number | null;
  /** Number of entries of the parameter. */
  entries?: number;
  /** Entries left out of the finite-difference columns because a perturbation moved a hidden
   * unit across its ReLU kink. */
  skipped?: number;
}

/** Contents of a `gradcheck.json` written by `deno task gradcheck --out FILE`. */
export interface GradcheckReport {
  /** Format tag, bumped on incompatible changes. */
  format: "webgpu-mlp.gradcheck/1";
  /** Finite-difference step h. */
  h: number;
  /** Samples the audited cost averages over. */
  samples: number;
  /** Input dimensions kept per sample (the first `dims` of 3072). */
  dims: number;
  /** Floor of the relative-error denominator, max(eps, |ga|+|gn|). */
  eps: number;
  /** One row per network, λ and parameter. */
  rows: GradcheckRow[];
  /** The thresholds the audit asserts: centred ≤ centredMax, gpu ≤ gpuMax. */
  thresholds: { centredMax: number; forwardMax: number; gpuMax: number };
  /** Description of the GPU adapter whose gradients were audited (empty when none). */
  adapter: string;
}
