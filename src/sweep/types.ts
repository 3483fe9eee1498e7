/**
 * The shapes of a sweep's files: `runs/<sweep>/trials.jsonl` (one finished trial per line) and
 * `runs/<sweep>/sweep.json` (the summary). The report reads both.
 *
 * @module
 */

import type { PbtDimName, PbtValues } from "../train/pbt.ts";
import type { EnvInfo, EvalPoint, SplitMetrics, Timings } from "../train/metrics.ts";
import type { Hyper } from "./hyper.ts";

export type { Hyper };

/** One finished trial: a line of `trials.jsonl`. */
export interface TrialRecord {
  /** Format tag, bumped on incompatible changes. */
  format: "webgpu-mlp.trial/1";
  /** Stable identity within the sweep, `<stage>/<index>`; resume and merge key on it. */
  id: string;
  /** Name of the stage the trial belongs to. */
  stage: string;
  /** Index of the trial within its stage (the order the search space produced it). */
  index: number;
  /** L2 strength λ of the trial (also in `hyper` when its stage searches λ). */
  lambda: number;
  /**
   * The trial's value in every dimension its stage's space searches (λ, η, σ, dropout; absent
   * in records of versions before spaces had dimensions, whose stages searched λ alone).
   */
  hyper?: Hyper;
  /** Seed of the weight initialisation. */
  seed: number;
  /**
   * `diverged` when its loss or weights became NaN/Inf; `stopped` when its stage's successive
   * halving stopped it at a rung (only `completed` trials are ranked).
   */
  status: "completed" | "diverged" | "stopped";
  /** Highest validation accuracy over the evaluation points, and where it was. */
  bestVal: { accuracy: number; step: number };
  /**
   * Metrics at the end of training — for a stopped trial, at its rung (NaN-free; absent for a
   * diverged trial).
   */
  final?: { train: SplitMetrics; val: SplitMetrics };
  /** Evaluation points, in step order (up to divergence, or up to the rung that stopped it). */
  curves: EvalPoint[];
  /** For a diverged trial: the evaluation step that saw NaN/Inf, and why. */
  diverged?: { step: number; reason: string };
  /** For a stopped trial: the rung of successive halving that stopped it (1-based) and its step. */
  stopped?: { rung: number; step: number };
  /**
   * With population-based training: each exploit of the trial (the step, the trial whose state
   * it copied, the values it went on with and how each came; none if it never copied), and its
   * values at the end in every dimension of the space (`hyper` holds those it started with).
   */
  pbt?: {
    lineage: PbtTrialEvent[];
    end: Hyper;
    /** For its population's best member: its weights as trained, a file in the sweep directory. */
    checkpoint?: string;
  };
  /** Shard that produced it, as `i/n` (absent when unsharded). */
  shard?: string;
}

/** One exploit of a PBT trial (`TrialRecord.pbt`): `PbtEvent` with the source as a trial id. */
export interface PbtTrialEvent {
  /** Update step of the exploit. */
  step: number;
  /** The trial whose state it copied (`<stage>/<index>`). */
  from: string;
  /** Its values from this step on, in every dimension PBT explores. */
  values: PbtValues;
  /** How each value came: `×f` (the source's times f), `up`/`down` (a list's neighbour), `resample`. */
  how: Partial<Record<PbtDimName, string>>;
}

/** One row of a stage's top-k table. */
export interface TopEntry {
  /** The trial's id, `<stage>/<index>`. */
  id: string;
  /** Its λ. */
  lambda: number;
  /** Its value in every dimension of the stage's space (absent in older summaries). */
  hyper?: Hyper;
  /** Highest validation accuracy over its evaluation points. */
  bestValAccuracy: number;
  /** Validation accuracy at the end of training. */
  finalValAccuracy: number;
  /** Validation cost (loss + λ·Σ‖W‖²) at the end of training. */
  finalValCost: number;
}

/** Summary of one search stage. */
export interface StageSummary {
  /** Stage name. */
  name: string;
  /** The search space as configured (kind and its parameters). */
  space: Record<string, unknown>;
  /** Trials of the stage (all finished: a stage is summarised once complete). */
  trials: number;
  /** How many completed, and how many diverged. */
  completed: number;
  /** How many diverged. */
  diverged: number;
  /** With successive halving: how many its rungs stopped (neither completed nor diverged). */
  stopped?: number;
  /** With successive halving: its rungs (update steps) and reduction factor η_r. */
  halving?: { rungs: number[]; reduction: number };
  /**
   * With population-based training: its exploit steps, quantile, perturbation factors,
   * resample probability and the dimensions it explored.
   */
  pbt?: {
    steps: number[];
    quantile: number;
    perturb: number[];
    resample: number;
    dims: PbtDimName[];
  };
  /** The stage's best trials, best first. */
  top: TopEntry[];
}

/** Contents of `runs/<sweep>/sweep.json`. */
export interface SweepSummary {
  /** Format tag, bumped on incompatible changes. */
  format: "webgpu-mlp.sweep/1";
  /** Sweep name. */
  name: string;
  /** The resolved config of the sweep. */
  config: unknown;
  /** Where it ran. */
  env: EnvInfo;
  /** Wall-clock accounting of the invocation that wrote this summary. */
  timings: Timings;
  /** Summaries of the finished stages, in config order. */
  stages: StageSummary[];
  /** The final training with the best trial's values, when the config asks for one. */
  final?: {
    /** Its λ. */
    lambda: number;
    /** The best trial's values it trained with (absent in older summaries). */
    hyper?: Hyper;
    /** Run directory of the final training, relative to the sweep directory (has metrics.json). */
    run: string;
    /** Test accuracy of the final model. */
    testAccuracy: number;
  };
}
