/**
 * Successive halving inside a population: where its rungs are, who goes on at a rung, and the
 * spec of the population a rung leaves ({@link selectModels}). The GPU side — the survivors'
 * state copied together into a narrower population — is `compact.ts`; the trainer applies both
 * at each rung (`trainPopulation` with `PopulationSpec.halving`).
 *
 * At a rung the models still training are ranked by their validation accuracy at that step
 * (training accuracy when there is no validation split); the ⌈n/η_r⌉ best of the n (at least 1)
 * go on, ties going to the model that comes first; the others stop there, and so does every
 * model that diverged.
 *
 * @module
 */

import type { Config, HalvingConfig } from "../config.ts";
import { RECORDS_PER_BATCH } from "../data/format.ts";
import { type Schedule, totalSteps } from "./schedule.ts";
import type { PopulationSpec } from "./trainer.ts";

/** The reduction factor η_r a halving stage uses unless it gives one. */
export const DEFAULT_REDUCTION = 3;

/** Successive halving of a population (`PopulationSpec.halving`). */
export interface HalvingSpec {
  /** Update steps at which the population is ranked and cut: increasing, each before the last step. */
  rungs: number[];
  /** η_r (> 1): at a rung of n models, the ⌈n/η_r⌉ best go on (at least 1). */
  reduction: number;
}

/**
 * The rungs a halving without explicit rungs uses: the end of every cycle of a cyclic schedule
 * but the last (which is the end of training); none for other schedules, which must give rungs.
 */
export function defaultRungs(schedule: Schedule): number[] {
  if (schedule.kind !== "cyclic") return [];
  return Array.from({ length: schedule.cycles - 1 }, (_, c) => 2 * schedule.stepSize * (c + 1));
}

/**
 * What is wrong with a halving's rungs, as the end of a one-line message that starts with the
 * key (`halving…`), or null: explicit rungs must increase and come before the last of the
 * `total` steps; without them the schedule must be cyclic with more than one cycle.
 */
export function rungsProblem(
  rungs: number[] | undefined,
  schedule: Schedule,
  total: number,
): string | null {
  if (rungs === undefined) {
    if (schedule.kind !== "cyclic") {
      return `halving: a ${schedule.kind} schedule has no cycles to put rungs at the end of: ` +
        `give "rungs" (update steps before its last, ${total})`;
    }
    if (schedule.cycles < 2) {
      return `halving: a cyclic schedule of 1 cycle has no cycle end before its last step ` +
        `(${total}): give "rungs" (update steps) or train more cycles`;
    }
    return null;
  }
  for (let i = 0; i < rungs.length; i++) {
    if (rungs[i] >= total) {
      return `halving.rungs.${i} (${rungs[i]}) is not before the last step: the schedule ` +
        `trains ${total} steps, so every rung must be at most ${total - 1}`;
    }
    if (i > 0 && rungs[i] <= rungs[i - 1]) {
      return `halving.rungs.${i} (${rungs[i]}) does not come after rungs.${i - 1} ` +
        `(${rungs[i - 1]}): rungs must increase`;
    }
  }
  return null;
}

/** Update steps of a config's schedule, from the sizes its data keys give (known before loading). */
export function configSteps(cfg: Config): number {
  const n = RECORDS_PER_BATCH * cfg.data.train.length - (cfg.data.val?.holdout ?? 0);
  return totalSteps(cfg.train.schedule, Math.max(1, Math.floor(n / cfg.train.batchSize)));
}

/**
 * A halving config resolved on the schedule of `cfg` (a stage's config): its rungs, or the
 * defaults, in update steps.
 */
export function halvingSpec(h: HalvingConfig, cfg: Config): HalvingSpec {
  const schedule = cfg.train.schedule;
  const problem = rungsProblem(h.rungs, schedule, configSteps(cfg));
  if (problem) throw new Error(problem);
  return { rungs: [...(h.rungs ?? defaultRungs(schedule))], reduction: h.reduction };
}

/** How many of n models go on at a rung: ⌈n/η_r⌉, at least 1 (0 of none). */
export function keepCount(n: number, reduction: number): number {
  return n === 0 ? 0 : Math.max(1, Math.ceil(n / reduction));
}

/** Models best first by accuracy, ties to the smaller index (the ranking of rungs and PBT). */
export function rankByAccuracy<T extends { index: number; accuracy: number }>(models: T[]): T[] {
  return [...models].sort((a, b) => b.accuracy - a.accuracy || a.index - b.index);
}

/**
 * The models that go on at a rung, in increasing index: the {@link keepCount} best by accuracy
 * (ties: the smaller index first). `models` are those still training (not diverged).
 */
export function survivors(
  models: { index: number; accuracy: number }[],
  reduction: number,
): number[] {
  const ranked = rankByAccuracy(models);
  return ranked.slice(0, keepCount(models.length, reduction)).map((m) => m.index).sort((a, b) =>
    a - b
  );
}

/**
 * The spec of a population of some of `spec`'s models (indices in `keep`, in that order): every
 * per-model field picked for them, everything shared kept. This is the one place that knows
 * which fields of a {@link PopulationSpec} are per model; a per-model field added to the spec
 * must be picked here too, or a compacted population would train its survivors with the values
 * of other models.
 */
export function selectModels(spec: PopulationSpec, keep: number[]): PopulationSpec {
  const pick = <T>(values: T[]): T[] => keep.map((z) => values[z]);
  return {
    ...spec,
    lambdas: pick(spec.lambdas),
    seeds: pick(spec.seeds),
    ...(spec.schedules ? { schedules: pick(spec.schedules) } : {}),
    ...(spec.sigmas ? { sigmas: pick(spec.sigmas) } : {}),
    ...(spec.dropouts ? { dropouts: pick(spec.dropouts) } : {}),
  };
}
