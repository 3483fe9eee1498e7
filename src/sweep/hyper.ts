/**
 * The hyperparameters a search space spans (λ, η, σ, dropout): what each one is, where it lives
 * in a config, a trial's values applied to a config, and which trials may share a population.
 *
 * @module
 */

import type { Config, SpaceDim, StageConfig } from "../config.ts";
import { SPACE_DIMS } from "../config/schema.ts";
import { type Schedule } from "../train/schedule.ts";

export { SPACE_DIMS };
export type { SpaceDim };

/** A trial's hyperparameter values: one per dimension of its stage's space. */
export interface Hyper {
  /** L2 strength λ. */
  lambda?: number;
  /** Highest η of the cyclic schedule. */
  etaMax?: number;
  /** Lowest η of the cyclic schedule. */
  etaMin?: number;
  /** η of the constant or step-decay schedule. */
  eta?: number;
  /** σ of the gaussian initialisation. */
  sigma?: number;
  /** Dropout probability of every hidden layer. */
  dropout?: number;
}

/** What a dimension is: how tables name it, its scale, and the values it may take. */
export interface DimInfo {
  /** Its name in tables and logs (`λ`, `η_max`…). */
  label: string;
  /** `log`: searched (and searched around) in log space; `linear`: as it is. */
  scale: "log" | "linear";
  /** Smallest value allowed, and whether it is allowed itself. */
  min: number;
  /** Whether `min` is excluded (η and σ must be > 0). */
  minExclusive: boolean;
  /** Largest value allowed (excluded). */
  max: number;
  /** The bounds as users read them (`≥ 0`, `> 0`, `in [0, 1)`). */
  bounds: string;
  /** The schedule kinds that have it (absent: every config has it). */
  schedules?: Schedule["kind"][];
}

/** Every dimension's {@link DimInfo}. */
export const DIM_INFO: Readonly<Record<SpaceDim, DimInfo>> = {
  lambda: { label: "λ", scale: "log", min: 0, minExclusive: false, max: Infinity, bounds: "≥ 0" },
  etaMax: {
    label: "η_max",
    scale: "log",
    min: 0,
    minExclusive: true,
    max: Infinity,
    bounds: "> 0",
    schedules: ["cyclic"],
  },
  etaMin: {
    label: "η_min",
    scale: "log",
    min: 0,
    minExclusive: true,
    max: Infinity,
    bounds: "> 0",
    schedules: ["cyclic"],
  },
  eta: {
    label: "η",
    scale: "log",
    min: 0,
    minExclusive: true,
    max: Infinity,
    bounds: "> 0",
    schedules: ["constant", "stepDecay"],
  },
  sigma: { label: "σ", scale: "log", min: 0, minExclusive: true, max: Infinity, bounds: "> 0" },
  dropout: {
    label: "dropout",
    scale: "linear",
    min: 0,
    minExclusive: false,
    max: 1,
    bounds: "in [0, 1)",
  },
};

/**
 * The largest dropout an around space moves to (a linear dimension is clamped to its bounds, and
 * dropout's upper bound 1 itself is not allowed).
 */
export const MAX_AROUND_DROPOUT = 0.95;

/** Whether `v` is a value dimension `d` may take. */
export function inBounds(d: SpaceDim, v: number): boolean {
  const info = DIM_INFO[d];
  return Number.isFinite(v) && (info.minExclusive ? v > info.min : v >= info.min) && v < info.max;
}

/**
 * A dimension's value in a config (a stage's, with its overrides): λ, the schedule's η, σ, or
 * the dropout of the hidden layers (undefined where the config has none: η_max of a constant
 * schedule, a dropout that differs per layer).
 */
export function configValue(cfg: Config, d: SpaceDim): number | undefined {
  const s = cfg.train.schedule;
  switch (d) {
    case "lambda":
      return cfg.train.lambda;
    case "etaMax":
      return s.kind === "cyclic" ? s.etaMax : undefined;
    case "etaMin":
      return s.kind === "cyclic" ? s.etaMin : undefined;
    case "eta":
      return s.kind === "cyclic" ? undefined : s.eta;
    case "sigma":
      return cfg.model.sigma;
    case "dropout": {
      const p = cfg.model.dropout;
      if (!Array.isArray(p)) return p;
      return p.every((x) => x === p[0]) ? (p[0] ?? 0) : undefined;
    }
  }
}

/** The config a stage trains with: the sweep's config with the stage's `train` overrides. */
export function stageConfig(cfg: Config, stage: StageConfig): Config {
  const train = { ...cfg.train };
  for (const [k, v] of Object.entries(stage.train ?? {})) {
    if (v !== undefined) (train as Record<string, unknown>)[k] = v;
  }
  return { ...cfg, train };
}

/**
 * `cfg` with the values of `hyper` in place: λ in `train.lambda`, η in the schedule, σ in
 * `model.sigma`, dropout in `model.dropout` (one value for every hidden layer). A dimension the
 * schedule does not have is an error (the config checks refuse such spaces before any work).
 */
export function withHyper(cfg: Config, hyper: Hyper): Config {
  let { train, model } = cfg;
  for (const d of SPACE_DIMS) {
    const v = hyper[d];
    if (v === undefined) continue;
    if (d === "lambda") train = { ...train, lambda: v };
    else if (d === "sigma") model = { ...model, sigma: v };
    else if (d === "dropout") model = { ...model, dropout: v };
    else {
      const s = train.schedule;
      const has = DIM_INFO[d].schedules!.includes(s.kind);
      if (!has) throw new Error(`a ${s.kind} schedule has no ${d}`);
      train = { ...train, schedule: { ...s, [d]: v } as Schedule };
    }
  }
  return train === cfg.train && model === cfg.model ? cfg : { ...cfg, train, model };
}

/** The dimensions of `hyper` that it gives a value, in {@link SPACE_DIMS} order. */
export function dimsOf(hyper: Hyper): SpaceDim[] {
  return SPACE_DIMS.filter((d) => hyper[d] !== undefined);
}

/**
 * What may differ between the models of one population: λ, the initialisation seed, the
 * learning rates (each model follows its own schedule: PopulationSpec.schedules), σ (sigmas) and
 * dropout (dropouts) — every dimension a space can search. A dimension outside this set would be
 * shared by a population, and trials differing in it would train in separate populations.
 */
export const PER_MODEL_DIMS: ReadonlySet<SpaceDim | "seed"> = new Set([
  "lambda",
  "seed",
  "etaMax",
  "etaMin",
  "eta",
  "sigma",
  "dropout",
]);

/** Of a trial's values, those its population shares (every dimension not per model). */
export function sharedHyper(hyper: Hyper): Hyper {
  const out: Hyper = {};
  for (const d of dimsOf(hyper)) if (!PER_MODEL_DIMS.has(d)) out[d] = hyper[d];
  return out;
}

/**
 * The key of the population a trial trains in: trials with equal keys share everything a
 * population must share ({@link PER_MODEL_DIMS} aside).
 */
export function populationKey(trial: { hyper?: Hyper; seed: number }): string {
  const hyper = trial.hyper ?? {}; // a trial of a λ space: only λ, which is per model
  const key: [string, number][] = dimsOf(sharedHyper(hyper)).map((d) => [d, hyper[d]!]);
  if (!PER_MODEL_DIMS.has("seed")) key.push(["seed", trial.seed]);
  return JSON.stringify(key);
}

/**
 * Trials in populations of at most `max`: grouped by {@link populationKey} in the order each
 * key first appears, each group in trial order, then cut into chunks of `max`. Deterministic: the
 * same trials always give the same populations.
 */
export function groupPopulations<T extends { hyper?: Hyper; seed: number }>(
  trials: T[],
  max: number,
): T[][] {
  const groups = new Map<string, T[]>();
  for (const t of trials) {
    const k = populationKey(t);
    const g = groups.get(k);
    if (g) g.push(t);
    else groups.set(k, [t]);
  }
  const out: T[][] = [];
  for (const g of groups.values()) {
    for (let i = 0; i < g.length; i += max) out.push(g.slice(i, i + max));
  }
  return out;
}

/** A value as tables show it: 3 decimals in scientific notation; dropout as it is. */
export function formatValue(d: SpaceDim, v: number): string {
  return d === "dropout" ? String(Number(v.toFixed(4))) : v.toExponential(3);
}

/** Values as `η_max 5.000e-2  σ 1.000e-3` (the dimensions given, λ too unless `withLambda` is false). */
export function formatHyper(hyper: Hyper, withLambda = true): string {
  return dimsOf(hyper).filter((d) => withLambda || d !== "lambda").map((d) =>
    `${DIM_INFO[d].label} ${formatValue(d, hyper[d]!)}`
  ).join("  ");
}
