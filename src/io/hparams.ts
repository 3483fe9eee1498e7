/**
 * A sweep directory's trials as a table of hyperparameters: what each trial was trained with
 * (λ, stage, seed, its value in every other dimension of its stage's space, and every training
 * key a stage changes), read from what the directory holds —
 * its `sweep.config.json`, its trials files and its marker. TensorBoard's HParams view
 * ({@link writeSweepEvents}) and `trials.csv` are both written from it.
 *
 * @module
 */

import { basename, join } from "node:path";
import { type Config, parseConfig } from "../config.ts";
import { UserError } from "../errors.ts";
import { readJsonIfExists } from "./json.ts";
import { readMarker } from "./owned.ts";
import { parseRecord, SWEEP_FORMAT } from "./records.ts";
import { readTrials } from "../sweep/results.ts";
import type { TrialRecord } from "../sweep/types.ts";
import { configValue, dimsOf, SPACE_DIMS, type SpaceDim, stageConfig } from "../sweep/hyper.ts";

/** A hyperparameter's value: what TensorBoard's HParams plugin and a CSV cell can hold. */
export type HParamValue = number | string | boolean;

/** One hyperparameter of a sweep: its name, kind, and the values its trials took. */
export interface HParamColumn {
  /**
   * `lambda`, `stage`, `seed`, a dimension of a search space (`etaMax`, `sigma`…), or a dotted
   * training key a stage changes (`train.batchSize`).
   */
  name: string;
  /** The kind of its values. */
  type: "number" | "string" | "bool";
  /** Its distinct values over the trials, in order of first appearance. */
  values: HParamValue[];
  /** True when the trials do not all share one value. */
  differs: boolean;
}

/** What {@link readSweepTrials} reads from a sweep directory. */
export interface SweepTrials {
  /** The sweep directory. */
  dir: string;
  /** The sweep's name (the config's, else the directory's). */
  name: string;
  /** Its finished trials, in stage order (as configured), then index. */
  trials: TrialRecord[];
  /**
   * Its hyperparameters: always lambda, stage and seed, then every other dimension a stage's
   * space searches, then (for PBT trials) `pbt.copies` and the values each ended with
   * (`pbt.end.lambda`, …), then the training keys stages change.
   */
  hparams: HParamColumn[];
  /** Each trial's hyperparameters, by trial id. */
  values: Map<string, Record<string, HParamValue>>;
  /**
   * Seconds since the epoch the sweep is dated by: its directory's creation (the marker), which
   * resuming does not change, so the files written from it keep their names.
   */
  time: number;
}

/** The sweep config a directory was created with (null when it has none). */
function readConfig(dir: string): Config | null {
  return readJsonIfExists(join(dir, "sweep.config.json"), (value, source) => {
    const cfg = parseConfig(value, source, {}, basename(dir));
    if (!cfg.search) throw new UserError(`${source} has no "search" block: not a sweep's config`);
    return cfg;
  });
}

/** Nested plain objects flattened to dotted keys of numbers, strings and booleans. */
function flatten(prefix: string, value: unknown, out: Record<string, HParamValue>): void {
  if (value === undefined || value === null) return;
  if (typeof value === "number" || typeof value === "string" || typeof value === "boolean") {
    out[prefix] = value;
  } else if (typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(`${prefix}.${k}`, v, out);
  } else {
    out[prefix] = JSON.stringify(value);
  }
}

/** The training keys of each stage (the sweep's, with the stage's overrides), flattened. */
function stageTrain(cfg: Config | null): Map<string, Record<string, HParamValue>> {
  const out = new Map<string, Record<string, HParamValue>>();
  for (const stage of cfg?.search?.stages ?? []) {
    const train: Record<string, unknown> = { ...cfg!.train };
    for (const [k, v] of Object.entries(stage.train ?? {})) if (v !== undefined) train[k] = v;
    delete train.lambda; // each trial's own
    const flat: Record<string, HParamValue> = {};
    flatten("train", train, flat);
    out.set(stage.name, flat);
  }
  return out;
}

function typeOf(v: HParamValue): HParamColumn["type"] {
  return typeof v === "number" ? "number" : typeof v === "boolean" ? "bool" : "string";
}

/**
 * Read a sweep directory's trials (validated by the trials files' own reader, and checked to
 * belong to its `sweep.config.json` when it has one) and what they were trained with. A training
 * key enters the table only when the trials differ in it; λ, stage and seed always do.
 */
export function readSweepTrials(dir: string): SweepTrials {
  const cfg = readConfig(dir);
  const order = new Map((cfg?.search?.stages ?? []).map((s, i) => [s.name, i]));
  const trials = [...readTrials(dir, cfg ?? undefined).values()].sort((a, b) =>
    (order.get(a.stage) ?? order.size) - (order.get(b.stage) ?? order.size) ||
    (a.stage < b.stage ? -1 : a.stage > b.stage ? 1 : 0) || a.index - b.index
  );
  const train = stageTrain(cfg);
  const values = new Map<string, Record<string, HParamValue>>();
  // the dimensions (besides λ) any trial's space searched: a column each, holding every
  // trial's value (of a stage that did not search it: what the stage trained with)
  const dims = new Set<SpaceDim>();
  for (const t of trials) for (const d of dimsOf(t.hyper ?? {})) if (d !== "lambda") dims.add(d);
  const stageCfgs = new Map(
    (cfg?.search?.stages ?? []).map((st) => [st.name, stageConfig(cfg!, st)]),
  );
  for (const t of trials) {
    const v: Record<string, HParamValue> = { lambda: t.lambda, stage: t.stage, seed: t.seed };
    const own: Record<string, HParamValue> = { ...train.get(t.stage) };
    const scfg = stageCfgs.get(t.stage);
    for (const d of dims) {
      const x = t.hyper?.[d] ?? (scfg ? configValue(scfg, d) : undefined);
      if (x !== undefined) v[d] = x;
      delete own[`train.schedule.${d}`]; // the same value, in the column of its dimension
    }
    // a PBT trial: how many times it copied another, and the values it ended with
    if (t.pbt) {
      v["pbt.copies"] = t.pbt.lineage.length;
      for (const [d, x] of Object.entries(t.pbt.end)) if (x !== undefined) v[`pbt.end.${d}`] = x;
    }
    values.set(t.id, { ...v, ...own });
  }
  // the dimensions of the spaces always, after λ, stage and seed
  const always: string[] = ["lambda", "stage", "seed", ...SPACE_DIMS.filter((d) => dims.has(d))];
  const names: string[] = [...always];
  for (const v of values.values()) {
    for (const k of Object.keys(v)) if (!names.includes(k)) names.push(k);
  }
  const hparams: HParamColumn[] = [];
  for (const name of names) {
    const seen: HParamValue[] = [];
    for (const v of values.values()) if (name in v && !seen.includes(v[name])) seen.push(v[name]);
    const differs = seen.length > 1 ||
      [...values.values()].some((v) => !(name in v)) && seen.length > 0;
    if (!differs && !always.includes(name)) continue;
    const types = new Set(seen.map(typeOf));
    hparams.push({
      name,
      type: types.size === 1 ? typeOf(seen[0]) : "string",
      values: seen,
      differs,
    });
  }
  // a column of mixed kinds is shown as text
  for (const h of hparams) {
    if (h.type !== "string" || h.values.every((v) => typeof v === "string")) continue;
    h.values = [...new Set(h.values.map(String))];
    for (const v of values.values()) if (h.name in v) v[h.name] = String(v[h.name]);
  }
  for (const v of values.values()) {
    for (const k of Object.keys(v)) if (!hparams.some((h) => h.name === k)) delete v[k];
  }
  const created = Date.parse(readMarker(dir)?.created ?? "");
  const time = Number.isFinite(created) ? created / 1000 : sweepStarted(dir);
  return { dir, name: cfg?.name ?? basename(dir), trials, hparams, values, time };
}

/** When the sweep.json of a directory without a marker says it started (else now). */
function sweepStarted(dir: string): number {
  try {
    const s = readJsonIfExists(
      join(dir, "sweep.json"),
      (value, source) => parseRecord(SWEEP_FORMAT, value, source),
    );
    if (s) return Date.parse(s.timings.startedAt) / 1000;
  } catch {
    // a damaged summary: date the files now
  }
  return Date.now() / 1000;
}
