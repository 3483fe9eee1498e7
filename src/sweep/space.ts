/**
 * Search spaces. Of λ alone: log-uniform random, explicit list, grid. Over several
 * hyperparameters (λ, η, σ, dropout; see `hyper.ts`): `random` (points drawn, every dimension
 * independently) and `grid` with `dims` (the Cartesian product). And "around the top trials of a
 * previous stage", in every dimension it searches: a narrower range, or a perturbation of each
 * (in log space for log-scaled dimensions).
 *
 * The λ spaces draw exactly what they drew before spaces had dimensions: a space over λ alone
 * gives the same values from the same seed, whichever of its forms it is written in.
 *
 * @module
 */

import type { AroundDims, Config, DimSpec, SpaceConfig, SpaceDims } from "../config.ts";
import { UserError } from "../errors.ts";
import { Rng } from "../model/rng.ts";
import {
  configValue,
  DIM_INFO,
  dimsOf,
  formatHyper,
  type Hyper,
  inBounds,
  MAX_AROUND_DROPOUT,
  SPACE_DIMS,
  type SpaceDim,
} from "./hyper.ts";

/** A validated search space. */
export type Space = SpaceConfig;

/** The most points a grid's product may have. */
export const MAX_GRID_POINTS = 4096;

/** The dimensions a space names, in {@link SPACE_DIMS} order. */
function namedDims(dims: SpaceDims | AroundDims): SpaceDim[] {
  return SPACE_DIMS.filter((d) => dims[d] !== undefined);
}

/**
 * The dimensions a space searches: λ for the λ forms, the named ones otherwise; null for an
 * around space without `dims`, which searches the dimensions of the stage it is around.
 */
export function spaceDims(space: Space): SpaceDim[] | null {
  switch (space.kind) {
    case "logUniform":
    case "list":
      return ["lambda"];
    case "grid":
      return space.dims ? namedDims(space.dims) : ["lambda"];
    case "random":
      return namedDims(space.dims);
    case "around":
      return space.dims ? namedDims(space.dims) : null;
  }
}

/** The values of a list or grid dimension (a grid spaced as the λ grid always was). */
export function dimValues(spec: DimSpec): number[] {
  if (spec.list) return [...spec.list];
  const [min, max] = spec.grid!;
  const count = spec.count!;
  if (count === 1) return [min];
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const f = i / (count - 1);
    out.push(
      (spec.scale ?? "log") === "log"
        ? 10 ** (Math.log10(min) + f * (Math.log10(max) - Math.log10(min)))
        : min + f * (max - min),
    );
  }
  return out;
}

/** One random draw of a dimension. */
function draw(spec: DimSpec, rng: Rng): number {
  if (spec.logUniform) {
    const [min, max] = spec.logUniform;
    return 10 ** rng.range(Math.log10(min), Math.log10(max));
  }
  if (spec.uniform) return rng.range(spec.uniform[0], spec.uniform[1]);
  const values = dimValues(spec);
  return values[rng.int(values.length)];
}

/** The legacy λ forms as dimensions: a list, a grid, or log-uniform draws of λ. */
function lambdaSpec(space: Space): DimSpec | null {
  switch (space.kind) {
    case "list":
      return { list: space.values };
    case "logUniform":
      return { logUniform: [space.min, space.max] };
    case "grid":
      return space.dims
        ? null
        : { grid: [space.min!, space.max!], count: space.count!, scale: space.scale ?? "log" };
    default:
      return null;
  }
}

/**
 * The spec of dimension `d` in a space that draws its own points (the λ forms, `grid` and
 * `random`), or null: an around space, or a dimension the space does not search.
 */
export function spaceDimSpec(space: Space, d: SpaceDim): DimSpec | null {
  const legacy = lambdaSpec(space);
  if (legacy) return d === "lambda" ? legacy : null;
  if (space.kind === "grid" || space.kind === "random") return space.dims?.[d] ?? null;
  return null;
}

/** The half-width of an around space in dimension `d`. */
function aroundWidth(space: Extract<Space, { kind: "around" }>, d: SpaceDim): number {
  const w = space.dims?.[d]?.width ?? (DIM_INFO[d].scale === "log" ? space.width : undefined);
  if (w === undefined) throw new Error(`around ${d} needs a width (checked with the config)`);
  return w;
}

/**
 * The points of a space, in trial order: each a value per dimension it searches. `around`
 * spaces need the points of the referenced stage's top trials (`centres`), each with a value in
 * every dimension to search (see {@link spaceDims}).
 */
export function samplePoints(space: SpaceConfig, centres: Hyper[] = []): Hyper[] {
  const legacy = lambdaSpec(space);
  if (legacy) {
    if (space.kind === "logUniform") {
      const rng = new Rng(space.seed);
      return Array.from({ length: space.count }, () => ({ lambda: draw(legacy, rng) }));
    }
    return dimValues(legacy).map((lambda) => ({ lambda }));
  }
  switch (space.kind) {
    case "grid": {
      let points: Hyper[] = [{}];
      for (const d of namedDims(space.dims!)) {
        const values = dimValues(space.dims![d]!);
        points = points.flatMap((p) => values.map((v) => ({ ...p, [d]: v })));
      }
      return points;
    }
    case "random": {
      const rng = new Rng(space.seed);
      const dims = namedDims(space.dims);
      return Array.from({ length: space.count }, () => {
        const p: Hyper = {};
        for (const d of dims) p[d] = draw(space.dims[d]!, rng);
        return p;
      });
    }
    case "around":
      return sampleAround(space, centres);
    default:
      throw new Error(`unreachable: space ${space.kind}`);
  }
}

function sampleAround(space: Extract<Space, { kind: "around" }>, centres: Hyper[]): Hyper[] {
  if (centres.length === 0) throw new Error("an around space needs the top trials of its stage");
  const dims = dimsOf(centres[0]);
  const rng = new Rng(space.seed);
  const clamp = (d: SpaceDim, v: number) =>
    Math.min(Math.max(v, DIM_INFO[d].min), d === "dropout" ? MAX_AROUND_DROPOUT : Infinity);
  if (space.mode === "range") {
    const ranges = dims.map((d) => {
      const values = centres.map((c) => c[d]!);
      const w = aroundWidth(space, d);
      if (DIM_INFO[d].scale === "linear") {
        return { d, lo: clamp(d, Math.min(...values) - w), hi: clamp(d, Math.max(...values) + w) };
      }
      const low = Math.min(...values);
      if (!(low > 0)) {
        throw new UserError(
          `stage searching around ${space.stage}: a top trial has ${d} ${low}, which a log scale ` +
            `cannot search around (use "mode": "perturb", or list the values)`,
        );
      }
      return { d, lo: Math.log10(low) - w, hi: Math.log10(Math.max(...values)) + w };
    });
    return Array.from({ length: space.count }, () => {
      const p: Hyper = {};
      for (const { d, lo, hi } of ranges) {
        p[d] = DIM_INFO[d].scale === "log" ? 10 ** rng.range(lo, hi) : rng.range(lo, hi);
      }
      return p;
    });
  }
  const out: Hyper[] = [];
  for (const c of centres) {
    for (let i = 0; i < space.count; i++) {
      const p: Hyper = {};
      for (const d of dims) {
        const w = aroundWidth(space, d);
        p[d] = DIM_INFO[d].scale === "log"
          ? c[d]! * 10 ** rng.range(-w, w)
          : clamp(d, c[d]! + rng.range(-w, w));
      }
      out.push(p);
    }
  }
  return out;
}

/**
 * The λ values of a space, in trial order (of a space over λ alone; see {@link samplePoints}
 * for the others). `around` spaces need the λs of the referenced stage's top trials.
 */
export function sampleSpace(space: Space, centres: number[] = []): number[] {
  return samplePoints(space, centres.map((lambda) => ({ lambda }))).map((p) => p.lambda!);
}

/** The most trials a stage of this space can have (an `around … perturb`: `count` per centre). */
export function spaceSize(space: Space): number {
  switch (space.kind) {
    case "list":
      return space.values.length;
    case "around":
      return space.mode === "perturb" ? space.count * space.top : space.count;
    case "grid":
      return space.dims
        ? namedDims(space.dims).reduce((n, d) => n * dimSize(space.dims![d]!), 1)
        : space.count!;
    default:
      return space.count;
  }
}

function dimSize(spec: DimSpec): number {
  return spec.list ? spec.list.length : spec.grid ? (spec.count ?? 1) : Infinity;
}

function describeDim(d: SpaceDim, spec: DimSpec): string {
  if (spec.list) return `${d} ∈ {${spec.list.join(", ")}}`;
  if (spec.grid) {
    return `${d} ${spec.count} ${spec.scale ?? "log"}-spaced ${spec.grid[0]}…${spec.grid[1]}`;
  }
  if (spec.logUniform) {
    const [a, b] = spec.logUniform;
    return `${d} 10^U(${Math.log10(a).toFixed(2)}, ${Math.log10(b).toFixed(2)})`;
  }
  const [a, b] = spec.uniform!;
  return `${d} U(${a}, ${b})`;
}

/** A one-line description of a space for tables and logs. */
export function describeSpace(space: Space): string {
  switch (space.kind) {
    case "list":
      return `list of ${space.values.length}`;
    case "grid":
      if (space.dims) {
        const dims = namedDims(space.dims);
        return `grid ${dims.map((d) => describeDim(d, space.dims![d]!)).join(" × ")}, ${
          spaceSize(space)
        } points`;
      }
      return `${space.scale ?? "log"} grid ${space.min}…${space.max}, ${space.count} values`;
    case "logUniform":
      return `log-uniform 10^U(${Math.log10(space.min).toFixed(2)}, ${
        Math.log10(space.max).toFixed(2)
      }), ${space.count} values`;
    case "random": {
      const dims = namedDims(space.dims);
      return `random ${
        dims.map((d) => describeDim(d, space.dims[d]!)).join(", ")
      }, ${space.count} points`;
    }
    case "around": {
      const dims = space.dims
        ? ` in ${
          namedDims(space.dims).map((d) => {
            const w = space.dims![d]!.width;
            return w === undefined ? d : `${d} ±${w}`;
          }).join(", ")
        }`
        : "";
      return `${
        space.mode === "range" ? "log-uniform range" : "perturbation"
      } ±${space.width} decades around the top ${space.top} of ${
        space.sweep ? `${space.sweep}:` : ""
      }${space.stage}${dims}, ${space.count}${
        space.mode === "perturb" ? " per centre" : ""
      } values`;
    }
  }
}

/** Why dimension `d` cannot be searched with the config `cfg` (a stage's), or null. */
export function dimProblem(d: SpaceDim, cfg: Config): string | null {
  const info = DIM_INFO[d];
  const kind = cfg.train.schedule.kind;
  if (info.schedules && !info.schedules.includes(kind)) {
    const has = SPACE_DIMS.filter((x) => DIM_INFO[x].schedules?.includes(kind));
    return `a ${kind} schedule has no ${d} (it has ${has.join(" and ")})`;
  }
  if (d === "sigma" && cfg.model.init !== "gaussian") {
    return `model.init is "${cfg.model.init}", which does not use sigma: set model.init to "gaussian"`;
  }
  if (d === "dropout" && cfg.model.hidden.length === 0) {
    return `the network has no hidden layer to apply dropout to`;
  }
  return null;
}

/** Why a dimension's spec is not usable (`where` names it: `space.dims.lambda`), or null. */
function dimSpecProblem(d: SpaceDim, spec: DimSpec, where: string, inGrid: boolean): string | null {
  const kinds = (["logUniform", "uniform", "list", "grid"] as const).filter((k) =>
    spec[k] !== undefined
  );
  if (kinds.length !== 1) {
    return `${where} needs exactly one of logUniform, uniform, list, grid (got ${
      kinds.length ? kinds.join(" and ") : "none"
    })`;
  }
  const kind = kinds[0];
  if (kind !== "grid" && spec.count !== undefined) {
    return `${where}.count belongs to a grid (a random space's count is the space's)`;
  }
  if (kind !== "grid" && spec.scale !== undefined) return `${where}.scale belongs to a grid`;
  if (kind === "grid" && spec.count === undefined) return `${where}.grid needs a count`;
  if (inGrid && (kind === "logUniform" || kind === "uniform")) {
    return `${where}.${kind}: a grid takes list and grid dimensions; for random draws use "kind": "random"`;
  }
  const info = DIM_INFO[d];
  const outside = (v: number, at: string) =>
    inBounds(d, v) ? null : `${where}.${at} must be ${info.bounds} (${d}), got ${v}`;
  if (kind === "list") {
    for (const [i, v] of spec.list!.entries()) {
      const p = outside(v, `list.${i}`);
      if (p) return p;
    }
    return null;
  }
  const [min, max] = spec[kind]!;
  const log = kind === "logUniform" || (kind === "grid" && (spec.scale ?? "log") === "log");
  const single = kind === "grid" && spec.count === 1 && min === max;
  if (!(min < max) && !single) {
    return `${where}.${kind} is an empty or inverted range [${min}, ${max}]: min must be below max`;
  }
  if (log && min <= 0) {
    return `${where}.${kind}: a log scale needs min > 0, got ${min}` +
      (kind === "grid" ? ` (or "scale": "linear")` : ` (or use "uniform")`);
  }
  return outside(min, `${kind}.0`) ?? outside(max, `${kind}.1`);
}

/** The lowest and highest values a dimension's spec gives. */
function specRange(spec: DimSpec): [number, number] {
  if (spec.list) return [Math.min(...spec.list), Math.max(...spec.list)];
  return (spec.logUniform ?? spec.uniform ?? spec.grid)!;
}

/**
 * Why a stage's space cannot be searched with the stage's config, or null. The message starts
 * with the key (`space.dims.etaMax: …`), to be put after the stage's path. `aroundDims` are the
 * dimensions of the stage an around space without `dims` searches around (null: not known yet,
 * a stage of another sweep; checked when that sweep is read).
 */
export function spaceProblem(
  space: Space,
  cfg: Config,
  aroundDims: SpaceDim[] | null = null,
): string | null {
  if (space.kind === "logUniform" || (space.kind === "grid" && !space.dims)) {
    if (space.kind === "grid") {
      for (const k of ["min", "max", "count"] as const) {
        if (space[k] === undefined) {
          return `space.${k} is missing: a grid of λ gives min, max and count (or give "dims")`;
        }
      }
    }
    const { min, max } = space as { min: number; max: number };
    if (!(min < max) && !(space.kind === "grid" && space.count === 1 && min === max)) {
      return `space is an empty or inverted range (min ${min}, max ${max}): min must be below max`;
    }
    if (space.kind === "grid" && (space.scale ?? "log") === "log" && min <= 0) {
      return `space.min must be > 0 on a log grid (got ${min})`;
    }
    return null;
  }
  if (space.kind === "list") return null;
  if (space.kind === "grid") {
    const both = (["min", "max", "count", "scale"] as const).filter((k) => space[k] !== undefined);
    if (both.length) {
      return `space gives both dims and ${
        both.join(", ")
      }: a grid over dims spaces each dimension in it ("grid": [min, max], "count", "scale")`;
    }
  }
  const dims = space.kind === "around" && !space.dims ? aroundDims : spaceDims(space);
  if (dims === null) return null;
  if (dims.length === 0) {
    return `space.dims names no dimension: give one or more of ${SPACE_DIMS.join(", ")}`;
  }
  for (const d of dims) {
    const where = space.kind === "around" && !space.dims ? "space" : `space.dims.${d}`;
    const p = dimProblem(d, cfg);
    if (p) {
      return space.kind === "around" && !space.dims
        ? `space searches around stage ${space.stage}, which searched ${d}: ${p}`
        : `${where}: ${p}`;
    }
    if (space.kind === "around") {
      if (DIM_INFO[d].scale === "linear" && space.dims?.[d]?.width === undefined) {
        return `space.dims.${d}.width is missing: ${d} is searched around on a linear scale, ` +
          `so give its half-width in its own units (e.g. "${d}": {"width": 0.1})`;
      }
      continue;
    }
    const sp = space.dims![d]!;
    const q = dimSpecProblem(d, sp, where, space.kind === "grid");
    if (q) return q;
  }
  if (space.kind === "grid" && spaceSize(space) > MAX_GRID_POINTS) {
    return `space is a grid of ${spaceSize(space)} points (${
      dims.map((d) => dimSize(space.dims![d]!)).join(" × ")
    }), more than ${MAX_GRID_POINTS}: use fewer values, or "kind": "random"`;
  }
  if (space.kind !== "around" && cfg.train.schedule.kind === "cyclic") {
    const sd = space.dims!;
    const lowMax = sd.etaMax ? specRange(sd.etaMax)[0] : configValue(cfg, "etaMax")!;
    const highMin = sd.etaMin ? specRange(sd.etaMin)[1] : configValue(cfg, "etaMin")!;
    if (highMin > lowMax) {
      return sd.etaMax
        ? `space.dims.etaMax goes down to ${lowMax}, below etaMin ${highMin}: ` +
          `a cyclic schedule needs etaMin ≤ etaMax`
        : `space.dims.etaMin goes up to ${highMin}, above etaMax ${lowMax}: ` +
          `a cyclic schedule needs etaMin ≤ etaMax`;
    }
  }
  return null;
}

/**
 * Refuse a planned trial whose values do not make a valid config (an around space can move
 * etaMin above etaMax): one line naming the trial.
 */
export function checkTrialConfig(cfg: Config, id: string, hyper: Hyper): void {
  const s = cfg.train.schedule;
  if (s.kind === "cyclic" && s.etaMin > s.etaMax) {
    throw new UserError(
      `trial ${id} (${formatHyper(hyper)}) has etaMin ${s.etaMin} above etaMax ${s.etaMax}: ` +
        `narrow the space's width, or search etaMin and etaMax apart`,
    );
  }
}
