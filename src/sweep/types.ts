/**
 * The shapes of a sweep's files: `runs/<sweep>/trials.jsonl` (one finished trial per line) and
 * `runs/<sweep>/sweep.json` (the summary). The report reads both.
 *
 * @module
 */

import type { EnvInfo, EvalPoint, SplitMetrics, Timings } from "../train/metrics.ts";

/** One finished trial: a line of `trials.jsonl`. */
export interface TrialRecord {
  format: "webgpu-mlp.trial/1";
  /** Stable identity within the sweep, `<stage>/<index>`; resume and merge key on it. */
  id: string;
  stage: string;
  /** Index of the trial within its stage (the order the search space produced it). */
  index: number;
  lambda: number;
  /** Seed of the weight initialisation. */
  seed: number;
  status: "completed" | "diverged";
  /** Highest validation accuracy over the evaluation points, and where it was. */
  bestVal: { accuracy: number; step: number };
  /** Metrics at the end of training (NaN-free; absent for a diverged trial). */
  final?: { train: SplitMetrics; val: SplitMetrics };
  curves: EvalPoint[];
  diverged?: { step: number; reason: string };
  /** Shard that produced it, as `i/n` (absent when unsharded). */
  shard?: string;
}

/** One row of a stage's top-k table. */
export interface TopEntry {
  id: string;
  lambda: number;
  bestValAccuracy: number;
  finalValAccuracy: number;
  finalValCost: number;
}

/** Summary of one search stage. */
export interface StageSummary {
  name: string;
  /** The search space as configured (kind and its parameters). */
  space: Record<string, unknown>;
  trials: number;
  completed: number;
  diverged: number;
  top: TopEntry[];
}

/** Contents of `runs/<sweep>/sweep.json`. */
export interface SweepSummary {
  format: "webgpu-mlp.sweep/1";
  name: string;
  config: unknown;
  env: EnvInfo;
  timings: Timings;
  stages: StageSummary[];
  /** The final training with the best λ, when the config asks for one. */
  final?: {
    lambda: number;
    /** Run directory of the final training, relative to the sweep directory (has metrics.json). */
    run: string;
    testAccuracy: number;
  };
}
