/**
 * Population-based training of a search stage (`search.stages[i].pbt`): the {@link PbtSpec} of
 * its populations — the exploit steps from the interval and the schedule, each explored
 * dimension's range from the stage's space — and the checks of its keys against both, one line
 * naming the key.
 *
 * @module
 */

import type { Config, PbtConfig, StageConfig } from "../config.ts";
import { configSteps } from "../train/halving.ts";
import { exploitSteps, type PbtDim, type PbtDimName, type PbtSpec } from "../train/pbt.ts";
import { DIM_INFO, type SpaceDim, stageConfig } from "./hyper.ts";
import type { StageSummary } from "./types.ts";
import { dimValues, spaceDims, spaceDimSpec, spaceSize } from "./space.ts";

/** The dimensions a stage's PBT explores: its `dims`, or each of the space's but σ. */
export function pbtDims(stage: StageConfig): SpaceDim[] {
  const pbt = stage.pbt!;
  return pbt.dims ?? (spaceDims(stage.space) ?? []).filter((d) => d !== "sigma");
}

/**
 * What is wrong with a stage's `pbt` against the sweep's config `cfg`, as the end of a line
 * that starts with the key (`pbt.interval …`), or null.
 */
export function pbtStageProblem(stage: StageConfig, cfg: Config): string | null {
  const pbt = stage.pbt;
  if (!pbt) return null;
  if (stage.halving) {
    return `pbt: a stage takes successive halving or population-based training, not both ` +
      `(remove "halving" or "pbt")`;
  }
  const sp = stage.space;
  if (sp.kind === "around") {
    return `pbt: an around space has no range of its own to resample from: give the stage a ` +
      `logUniform, list, grid or random space`;
  }
  const scfg = stageConfig(cfg, stage);
  const total = configSteps(scfg);
  if (pbt.interval >= total) {
    return `pbt.interval (${pbt.interval}) leaves no exploit before the last step: the ` +
      `schedule trains ${total} steps, so the interval must be at most ${total - 1}`;
  }
  const dims = spaceDims(sp)!;
  if (!pbt.dims && !dims.some((d) => d !== "sigma")) {
    return `pbt: the space searches only sigma, which is fixed at initialisation: search λ, ` +
      `a learning rate or dropout too, or drop "pbt"`;
  }
  for (const [i, d] of (pbt.dims ?? []).entries()) {
    if (!dims.includes(d)) {
      return `pbt.dims.${i}: ${d} is not a dimension of the stage's space (${dims.join(", ")}): ` +
        `PBT resamples a dimension from the space, so add it there`;
    }
  }
  if (spaceSize(sp) < 2) {
    return `pbt: the space gives ${spaceSize(sp)} trial; population-based training needs at ` +
      `least 2 to copy between`;
  }
  return null;
}

/** The {@link PbtSpec} of a stage's populations, on the stage's config `scfg`. */
export function pbtSpec(stage: StageConfig, scfg: Config): PbtSpec {
  const pbt: PbtConfig = stage.pbt!;
  const dims = pbtDims(stage).map((d): PbtDim => {
    const spec = spaceDimSpec(stage.space, d);
    if (!spec) {
      throw new Error(`pbt: ${d} is not a dimension of the space (checked with the config)`);
    }
    const name = d as PbtDimName;
    if (spec.logUniform) return { name, kind: "log", range: [...spec.logUniform] };
    if (spec.uniform) return { name, kind: "linear", range: [...spec.uniform] };
    const values = [...new Set(dimValues(spec))].sort((a, b) => a - b);
    return { name, kind: "values", range: [values[0], values.at(-1)!], values };
  });
  for (const d of dims) {
    if (d.name === "dropout") d.range[1] = Math.min(d.range[1], DIM_INFO.dropout.max - 1e-6);
  }
  return {
    steps: exploitSteps(pbt.interval, configSteps(scfg)),
    quantile: pbt.quantile,
    factors: [...pbt.perturb],
    resample: pbt.resample,
    seed: pbt.seed,
    dims,
  };
}

/** What a stage summary records of its PBT (`StageSummary.pbt`). */
export function pbtSummary(stage: StageConfig, cfg: Config): NonNullable<StageSummary["pbt"]> {
  const spec = pbtSpec(stage, stageConfig(cfg, stage));
  return {
    steps: spec.steps,
    quantile: spec.quantile,
    perturb: spec.factors,
    resample: spec.resample,
    dims: spec.dims.map((d) => d.name),
  };
}
