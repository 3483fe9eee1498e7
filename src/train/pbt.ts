/**
 * Population-based training (PBT, Jaderberg et al. 2017) inside a population: at each exploit
 * step the models are ranked by validation accuracy (training accuracy without a validation
 * split); each of the bottom quantile copies the whole state — parameters, batch normalisation's
 * statistics, optimiser moments — of a model drawn from the top quantile, then explores: each
 * hyperparameter PBT searches is either redrawn from its range (with the resample probability)
 * or the source's value times a factor drawn from the perturbation factors, kept in the range
 * (a value of a list moves to a neighbour instead). This module decides who copies whom and the
 * values they go on with ({@link exploit}); the trainer copies the state on the GPU
 * (`compact.ts`'s `BlockCopier`) and applies the values ({@link withValues}).
 *
 * The draws are seeded by the spec's seed and the step alone, so the same population with the
 * same accuracies makes the same choices, also after a resume.
 *
 * @module
 */

import { Rng } from "../model/rng.ts";
import { rankByAccuracy } from "./halving.ts";
import type { Schedule } from "./schedule.ts";
import type { PopulationSpec } from "./trainer.ts";

import { PBT_DIMS } from "../config/schema.ts";

/** The hyperparameters PBT can change during training (σ only matters at initialisation). */
export { PBT_DIMS };

/** A hyperparameter PBT can change during training. */
export type PbtDimName = typeof PBT_DIMS[number];

/** A model's values in the dimensions PBT searches. */
export type PbtValues = Partial<Record<PbtDimName, number>>;

/** One dimension PBT searches: what a resample draws from, and the range perturbations stay in. */
export interface PbtDim {
  /** The hyperparameter. */
  name: PbtDimName;
  /** `log`/`linear`: a draw is log-uniform/uniform over `range`; `values`: one of them. */
  kind: "log" | "linear" | "values";
  /** Lowest and highest value (of `values`, their extremes). */
  range: [number, number];
  /** The values of a list or grid dimension (sorted ascending). */
  values?: number[];
}

/** Population-based training of a population (`PopulationSpec.pbt`). */
export interface PbtSpec {
  /** Update steps at which to exploit and explore: increasing, each before the last step. */
  steps: number[];
  /** Fraction in (0, 0.5]: the bottom ⌈n·q⌉ (at most ⌊n/2⌋) copy from the top as many. */
  quantile: number;
  /** Factors (each > 0) a perturbation multiplies a value by, one drawn at a time. */
  factors: number[];
  /** Probability in [0, 1] that a value is redrawn from its range instead of perturbed. */
  resample: number;
  /** Seed of the draws (with the step). */
  seed: number;
  /** The dimensions PBT searches (at least one). */
  dims: PbtDim[];
}

/** One model's exploit: whom it copied at which step, and the values it trains with from there. */
export interface PbtEvent {
  /** Update step of the exploit. */
  step: number;
  /** The model it copied (index in the spec). */
  from: number;
  /** Its values from this step on, in every dimension PBT searches. */
  values: PbtValues;
  /** How each value came: `×f` (the source's times f), `up`/`down` (a list's neighbour), `resample`. */
  how: Partial<Record<PbtDimName, string>>;
}

/** What is wrong with a PBT spec against `total` steps, as a one-line message, or null. */
export function pbtProblem(pbt: PbtSpec, total: number): string | null {
  if (!(pbt.quantile > 0 && pbt.quantile <= 0.5)) {
    return `pbt.quantile must be in (0, 0.5], got ${pbt.quantile}`;
  }
  const bad = pbt.factors.findIndex((f) => !(f > 0 && Number.isFinite(f)));
  if (pbt.factors.length === 0 || bad >= 0) {
    return `pbt.perturb.${Math.max(bad, 0)} must be a factor > 0` +
      (bad >= 0 ? `, got ${pbt.factors[bad]}` : " (none given)");
  }
  if (!(pbt.resample >= 0 && pbt.resample <= 1)) {
    return `pbt.resample must be a probability in [0, 1], got ${pbt.resample}`;
  }
  if (pbt.dims.length === 0) return `pbt: no hyperparameter to explore`;
  if (pbt.steps.length === 0) {
    return `pbt: no exploit step before the last step (${total}): make pbt.interval smaller`;
  }
  for (let i = 0; i < pbt.steps.length; i++) {
    if (
      !(pbt.steps[i] >= 1 && pbt.steps[i] < total) || (i > 0 && pbt.steps[i] <= pbt.steps[i - 1])
    ) {
      return `pbt: exploit steps must increase within [1, ${total - 1}], got ${
        pbt.steps.join(", ")
      }`;
    }
  }
  return null;
}

/** The exploit steps of an interval: every multiple of it before the last of `total` steps. */
export function exploitSteps(interval: number, total: number): number[] {
  const out: number[] = [];
  for (let t = interval; t < total; t += interval) out.push(t);
  return out;
}

/** How many of n models copy at an exploit (and how many they copy from): ⌈n·q⌉, at most ⌊n/2⌋. */
export function quantileCount(n: number, quantile: number): number {
  return Math.min(Math.ceil(n * quantile), Math.floor(n / 2));
}

/** The draws of the exploit at `step`: the same seed and step give the same draws. */
export function exploitRng(seed: number, step: number): Rng {
  return new Rng((seed ^ Math.imul(step + 1, 0x9e3779b1)) >>> 0);
}

/** A model that copies another at an exploit, and its {@link PbtEvent}. */
export interface PbtMove {
  /** The model that copies (index in the spec). */
  model: number;
  /** Whom it copied, and the values it goes on with. */
  event: PbtEvent;
}

/**
 * The exploit at `step`: each of the bottom quantile of `models` (those still training, with
 * their accuracy; ties ranked to the smaller index) copies a model drawn from the top quantile
 * and explores from its values (`values(z)`: model z's current ones). Moves come in rank order,
 * best of the bottom first.
 */
export function exploit(
  models: { index: number; accuracy: number }[],
  values: (z: number) => PbtValues,
  pbt: PbtSpec,
  step: number,
): PbtMove[] {
  const ranked = rankByAccuracy(models);
  const q = quantileCount(ranked.length, pbt.quantile);
  const top = ranked.slice(0, q), bottom = ranked.slice(ranked.length - q);
  const rng = exploitRng(pbt.seed, step);
  return bottom.map(({ index }) => {
    const from = top[rng.int(q)].index;
    const source = values(from);
    const next: PbtValues = {}, how: PbtEvent["how"] = {};
    for (const d of pbt.dims) {
      if (rng.uniform() < pbt.resample) {
        next[d.name] = draw(d, rng);
        how[d.name] = "resample";
      } else {
        const [v, h] = perturb(d, source[d.name]!, pbt.factors, rng);
        next[d.name] = v;
        how[d.name] = h;
      }
    }
    return { model: index, event: { step, from, values: next, how } };
  });
}

/** A value drawn from a dimension's range (or list). */
function draw(d: PbtDim, rng: Rng): number {
  const [lo, hi] = d.range;
  if (d.kind === "values") return d.values![rng.int(d.values!.length)];
  if (d.kind === "log") return 10 ** rng.range(Math.log10(lo), Math.log10(hi));
  return rng.range(lo, hi);
}

/** A value perturbed: times a drawn factor, kept in the range; of a list, a neighbour. */
function perturb(d: PbtDim, v: number, factors: number[], rng: Rng): [number, string] {
  if (d.kind === "values") {
    const vs = d.values!;
    let at = 0;
    vs.forEach((x, i) => {
      if (Math.abs(x - v) < Math.abs(vs[at] - v)) at = i;
    });
    const up = rng.uniform() < 0.5;
    const to = Math.min(vs.length - 1, Math.max(0, at + (up ? 1 : -1)));
    return [vs[to], up ? "up" : "down"];
  }
  const f = factors[rng.int(factors.length)];
  return [Math.min(d.range[1], Math.max(d.range[0], v * f)), `×${f}`];
}

/** Model z's values in the dimensions `dims` under `spec` (its own schedule, λ and dropout). */
export function valuesOf(spec: PopulationSpec, z: number, dims: PbtDim[]): PbtValues {
  const out: PbtValues = {};
  const s = (spec.schedules?.[z] ?? spec.schedule) as Schedule & Record<string, number>;
  for (const { name } of dims) {
    if (name === "lambda") out.lambda = spec.lambdas[z];
    else if (name === "dropout") {
      out.dropout = spec.dropouts?.[z]?.[0] ?? spec.net?.dropout?.[0] ?? 0;
    } else out[name] = s[name];
  }
  return out;
}

/**
 * `spec` with model z's values replaced by `values`: λ, its own schedule's rates (η_min lowered
 * to η_max where a change put it above), its dropout in every hidden layer. The arrays changed
 * are copies; `spec` itself is not modified.
 */
export function withValues(spec: PopulationSpec, z: number, values: PbtValues): PopulationSpec {
  const P = spec.lambdas.length;
  const out = { ...spec };
  if (values.lambda !== undefined) {
    out.lambdas = [...spec.lambdas];
    out.lambdas[z] = values.lambda;
  }
  const rates = (["etaMax", "etaMin", "eta"] as const).filter((d) => values[d] !== undefined);
  if (rates.length > 0) {
    const schedules = [...(spec.schedules ?? Array(P).fill(spec.schedule))];
    const s = { ...schedules[z] } as Schedule & Record<string, number>;
    for (const d of rates) s[d] = values[d]!;
    if (s.kind === "cyclic" && s.etaMin > s.etaMax) s.etaMin = s.etaMax;
    schedules[z] = s;
    out.schedules = schedules;
  }
  if (values.dropout !== undefined) {
    const dropouts = ownDropouts(spec);
    dropouts[z] = Array(spec.sizes.length - 2).fill(values.dropout);
    out.dropouts = dropouts;
  }
  return out;
}

/** Each model's dropout per hidden layer, as a fresh array: `spec.dropouts`, else `net.dropout`. */
function ownDropouts(spec: PopulationSpec): number[][] {
  const hidden = spec.sizes.length - 2;
  return spec.dropouts?.map((d) => [...d]) ??
    Array.from(
      { length: spec.lambdas.length },
      () => Array.from({ length: hidden }, (_, l) => spec.net?.dropout?.[l] ?? 0),
    );
}

/**
 * `spec` made ready for PBT over `dims`: every model with its own schedule when a learning
 * rate is explored, its own dropout when dropout is (so that the kernels read them per model),
 * each as the spec gives it.
 */
export function pbtReady(spec: PopulationSpec, dims: PbtDim[]): PopulationSpec {
  const names = new Set(dims.map((d) => d.name));
  const rates = (["etaMax", "etaMin", "eta"] as const).some((d) => names.has(d));
  return {
    ...spec,
    ...(rates && !spec.schedules
      ? { schedules: Array(spec.lambdas.length).fill(spec.schedule) }
      : {}),
    ...(names.has("dropout") && !spec.dropouts ? { dropouts: ownDropouts(spec) } : {}),
  };
}

/** `spec` with every model's last exploit applied (the values it trains with now; for a resume). */
export function replayed(
  spec: PopulationSpec,
  lineages: (PbtEvent[] | undefined)[],
): PopulationSpec {
  let out = spec;
  lineages.forEach((events, z) => {
    const last = events?.at(-1);
    if (last) out = withValues(out, z, last.values);
  });
  return out;
}
