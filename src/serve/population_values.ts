/**
 * The values of the trials of a population in training, for the dashboard's _Training now_.
 * A population file (`population.json`, see `src/sweep/population.ts`) names its trials and their
 * λ only; their other values (η, σ, dropout) are not in it. They are what the sweep planned, so
 * they are planned again here from the sweep's own config (`sweep.config.json`) exactly as the
 * sweep does (`planStage`): for a stage that searches around an earlier stage of the same sweep,
 * around that stage's top trials as recorded in the sweep directory's trials files.
 *
 * Only files of the sweep directory are read (through the dashboard's cached, link-refusing
 * reads): a stage that searches around a stage of another sweep gets no values here (the
 * dashboard shows λ alone), and so does anything that does not parse.
 *
 * @module
 */

import { basename, join } from "node:path";
import { parseConfig } from "../config.ts";
import { TRIAL_FORMAT } from "../io/records.ts";
import type { Hyper } from "../sweep/hyper.ts";
import { topK } from "../sweep/results.ts";
import { centrePoints, planStage, SWEEP_CONFIG } from "../sweep/sweep.ts";
import type { TrialRecord } from "../sweep/types.ts";
import { readJson, trialLines } from "./scan.ts";

/** The recorded trials of a sweep directory (its own trials file and its shards'), by id. */
function recordedTrials(dir: string): Map<string, TrialRecord> {
  const out = new Map<string, TrialRecord>();
  for (const line of trialLines(dir)) {
    const r = TRIAL_FORMAT.schema.safeParse(line);
    if (r.success) out.set(r.data.id, r.data);
  }
  return out;
}

/**
 * The values of trials `ids` of stage `stage` in the sweep directory `dir`, in the order given:
 * each trial's value in every dimension its stage searches (null for a trial not planned, or of
 * a stage over λ alone). Null when they cannot be known from this directory: no or an unreadable
 * `sweep.config.json`, no such stage, an around stage of another sweep, or an around stage whose
 * stage it searches around is not recorded yet.
 */
export function populationHyper(
  dir: string,
  stage: string,
  ids: string[],
): (Hyper | null)[] | null {
  try {
    const raw = readJson(join(dir, SWEEP_CONFIG));
    if (raw === null) return null;
    const cfg = parseConfig(raw, SWEEP_CONFIG, {}, basename(dir));
    const search = cfg.search;
    const st = search?.stages.find((s) => s.name === stage);
    if (!search || !st) return null;
    const sp = st.space;
    let centres: Hyper[] = [];
    if (sp.kind === "around") {
      if (sp.sweep) return null;
      const trials = [...recordedTrials(dir).values()].filter((t) => t.stage === sp.stage);
      const top = topK(trials, sp.top, search.rankBy);
      if (top.length === 0) return null;
      centres = centrePoints(cfg, st, top);
    }
    const planned = new Map(planStage(cfg, st, centres).map((p) => [p.id, p.hyper ?? null]));
    return ids.map((id) => planned.get(id) ?? null);
  } catch {
    // a config this version cannot read, a space that cannot be planned: λ alone is shown
    return null;
  }
}
