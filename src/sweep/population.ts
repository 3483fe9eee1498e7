/**
 * The population a sweep process is training, as `deno task serve` shows it: `population.json`
 * (or `population.shard-i-of-n.json` for a shard) in the sweep directory, rewritten atomically at
 * each evaluation point and removed once that population's trials are recorded. An interrupted or
 * killed process leaves its file behind: the dashboard shows a population as training only while
 * its process holds the matching lock (`<sweep>.lock`, `<sweep>.shard-i-of-n.lock`).
 *
 * @module
 */

import type { Shard } from "./shard.ts";

/** Format tag of a population file. */
export const POPULATION_FORMAT = "webgpu-mlp.population/1";

/** A population in training. */
export interface PopulationProgress {
  /** Format tag. */
  format: typeof POPULATION_FORMAT;
  /** The stage it belongs to. */
  stage: string;
  /** Its trials' ids, in model order. */
  trials: string[];
  /** Their λ, in model order. */
  lambdas: number[];
  /** Steps done. */
  step: number;
  /** Steps the schedule asks for. */
  totalSteps: number;
  /** Mean steps per second so far. */
  stepsPerSecond: number;
  /** Estimated seconds left. */
  remainingSeconds: number;
  /** Each model's latest validation accuracy (null: diverged, or no validation split). */
  val: (number | null)[];
  /** When this was written (ISO 8601). */
  updatedAt: string;
}

/** The population file of a process (of a shard, or of the whole sweep). */
export function populationFileName(shard: Shard | null): string {
  return shard === null
    ? "population.json"
    : `population.shard-${shard.index + 1}-of-${shard.count}.json`;
}

/** Whether `name` is a population file's name. */
export function isPopulationFile(name: string): boolean {
  return /^population(\.shard-\d+-of-\d+)?\.json$/.test(name);
}
