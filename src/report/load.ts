/**
 * Read what a report shows: a run directory (metrics.json, the checkpoint, an optional
 * gradcheck.json), a sweep directory (sweep.json, trials.jsonl, the final training's run) or a
 * gradcheck.json. Problems with the inputs become one-line `UserError`s.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { UserError } from "../errors.ts";
import { isObject } from "../io/json.ts";
import { exists } from "../io/exists.ts";
import { parseRecord, RUN_FORMAT, SWEEP_FORMAT, TRIAL_FORMAT } from "../io/records.ts";
import { decodeSafetensors, type Tensor } from "../io/safetensors.ts";
import {
  FileProblem,
  MAX_RECORD_BYTES,
  readRegularSync,
  readRegularTextSync,
} from "../io/regular.ts";
import type { SweepSummary, TrialRecord } from "../sweep/types.ts";
import type { GradcheckReport, RunMetrics } from "../train/metrics.ts";

/** Format tags of the files the report reads. */
export const FORMATS = {
  run: RUN_FORMAT.tag,
  sweep: SWEEP_FORMAT.tag,
  trial: TRIAL_FORMAT.tag,
  gradcheck: "webgpu-mlp.gradcheck/1",
} as const;

/** A run directory's contents. */
export interface LoadedRun {
  /** The run directory. */
  dir: string;
  /** The parsed metrics.json. */
  metrics: RunMetrics;
  /** The decoded checkpoint, when there is one. */
  weights?: Record<string, Tensor>;
  /** Why there are no weights (shown instead of the montage). */
  weightsNote?: string;
  /** The run directory's gradcheck.json, when present. */
  gradcheck?: GradcheckReport;
}

/** A sweep directory's contents. */
export interface LoadedSweep {
  /** The sweep directory. */
  dir: string;
  /** Absent while the sweep runs (only trials.jsonl exists yet). */
  summary?: SweepSummary;
  /** Trial records of trials.jsonl, in file order. */
  trials: TrialRecord[];
  /** The final training with the best λ, when the summary names one that exists. */
  finalRun?: LoadedRun;
  /** Remarks about missing or skipped parts, shown on the page. */
  notes: string[];
  /**
   * How the sweep ranks its trials (`search.rankBy` of sweep.json's config, else of
   * sweep.config.json); absent when neither says.
   */
  rankBy?: "final" | "best";
}

/** One report input, resolved. */
export type ReportInput =
  | { kind: "run"; path: string; run: LoadedRun }
  | { kind: "sweep"; path: string; sweep: LoadedSweep }
  | { kind: "gradcheck"; path: string; gradcheck: GradcheckReport };

function firstLine(msg: string): string {
  return msg.split("\n")[0];
}

/** The error for a path that exists but cannot be read (`e` the file-system error). */
function cannotRead(path: string, e: unknown): UserError {
  return new UserError(`${path}: cannot read (${firstLine((e as Error).message)})`);
}

/** The error for text that is not JSON (`e` the parser's error); `source` names the file. */
function malformedJson(source: string, e: unknown): UserError {
  return new UserError(`${source}: malformed JSON (${firstLine((e as Error).message)})`);
}

/** How the loaders read files. */
export interface LoadOptions {
  /**
   * Follow a symbolic link named like one of the run's files (default true; the dashboard says
   * false: no link inside the served folder is followed).
   */
  followLinks?: boolean;
  /** The largest checkpoint read (default 2 GiB): a larger one is noted, not shown. */
  maxCheckpointBytes?: number;
}

/**
 * Read a text file; a missing or unreadable file, a FIFO or device (never waited on), a file
 * over {@link MAX_RECORD_BYTES} or, unless followed, a symbolic link is a `UserError`.
 */
function readText(path: string, opts: LoadOptions = {}): string {
  try {
    return readRegularTextSync(path, {
      maxBytes: MAX_RECORD_BYTES,
      followLinks: opts.followLinks ?? true,
    });
  } catch (e) {
    if (!(e instanceof FileProblem)) throw cannotRead(path, e);
    throw new UserError(e.message);
  }
}

/** Parse JSON text; malformed JSON is a `UserError` naming the file. */
function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw malformedJson(source, e);
  }
}

/** Read and parse a JSON file. */
export function readJsonFile(path: string, opts: LoadOptions = {}): Promise<unknown> {
  return Promise.resolve().then(() => parseJson(readText(path, opts), path));
}

function formatOf(x: unknown): string {
  return isObject(x) ? JSON.stringify(x.format ?? null) : "(not a JSON object)";
}

function expectFormat(x: unknown, format: string, path: string, what: string): void {
  if (!isObject(x) || x.format !== format) {
    throw new UserError(`${path}: not ${what} (format ${formatOf(x)}, expected "${format}")`);
  }
}

type Kind = "array" | "object" | "string" | "number";

function need(obj: Record<string, unknown>, field: string, kind: Kind, path: string): void {
  const v = obj[field];
  const ok = kind === "array"
    ? Array.isArray(v)
    : kind === "object"
    ? isObject(v)
    : kind === "string"
    ? typeof v === "string"
    : typeof v === "number";
  if (!ok) {
    throw new UserError(
      `${path}: field "${field}" missing or not ${kind === "array" ? "an" : "a"} ${kind}`,
    );
  }
}

/** Validate a parsed gradcheck.json. */
export function validateGradcheck(x: unknown, path: string): GradcheckReport {
  expectFormat(x, FORMATS.gradcheck, path, "a gradcheck.json");
  const o = x as Record<string, unknown>;
  need(o, "rows", "array", path);
  need(o, "thresholds", "object", path);
  (o.rows as unknown[]).forEach((r, i) => {
    if (!isObject(r) || typeof r.param !== "string" || typeof r.net !== "string") {
      throw new UserError(`${path}: rows[${i}] is not a gradient-audit row ({ net, param, … })`);
    }
  });
  return x as GradcheckReport;
}

/**
 * Parse trials.jsonl text. A malformed line is a `UserError` naming its line number, except an
 * unterminated last line (a trial being written), which is skipped with a note.
 */
export function parseTrials(text: string, path: string, notes: string[] = []): TrialRecord[] {
  const lines = text.split("\n");
  const trials: TrialRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const source = `${path}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      if (i === lines.length - 1) {
        notes.push(
          `${basename(path)} line ${i + 1} is incomplete (still being written?) and was skipped.`,
        );
        return;
      }
      throw malformedJson(source, e);
    }
    trials.push(parseRecord(TRIAL_FORMAT, value, source));
  });
  return trials;
}

/**
 * Load a run directory: metrics.json (required), checkpoint and gradcheck.json (optional). The
 * checkpoint is the file metrics.json names inside the directory (never a path elsewhere).
 */
export async function loadRun(dir: string, opts: LoadOptions = {}): Promise<LoadedRun> {
  const metricsPath = join(dir, "metrics.json");
  if (!(await exists(metricsPath))) {
    throw new UserError(`${dir}: not a run directory (no metrics.json)`);
  }
  const metrics = parseRecord(RUN_FORMAT, await readJsonFile(metricsPath, opts), metricsPath);
  const run: LoadedRun = { dir, metrics };
  const ckptName = metrics.checkpoint ?? "weights.safetensors";
  const ckptPath = join(dir, ckptName);
  if (await exists(ckptPath)) {
    try {
      const bytes = readRegularSync(ckptPath, {
        maxBytes: opts.maxCheckpointBytes ?? 2 ** 31,
        followLinks: opts.followLinks ?? true,
      });
      run.weights = decodeSafetensors(bytes, ckptPath).tensors;
    } catch (e) {
      if (!(e instanceof UserError) && !(e instanceof FileProblem)) throw e;
      run.weightsNote = `${e.message}; its weights cannot be shown.`;
    }
  } else {
    run.weightsNote = metrics.checkpoint
      ? `The checkpoint ${metrics.checkpoint} named in metrics.json is missing.`
      : "This run has no checkpoint, so its weights cannot be shown.";
  }
  const gcPath = join(dir, "gradcheck.json");
  if (await exists(gcPath)) {
    run.gradcheck = validateGradcheck(await readJsonFile(gcPath, opts), gcPath);
  }
  return run;
}

/** `search.rankBy` of a sweep's config, if it names one. */
function rankByOf(config: unknown): "final" | "best" | undefined {
  const search = isObject(config) ? config.search : undefined;
  const r = isObject(search) ? search.rankBy : undefined;
  return r === "final" || r === "best" ? r : undefined;
}

/** Load a sweep directory: sweep.json and/or trials.jsonl, and the final training's run. */
export async function loadSweep(dir: string, opts: LoadOptions = {}): Promise<LoadedSweep> {
  const notes: string[] = [];
  const summaryPath = join(dir, "sweep.json");
  const trialsPath = join(dir, "trials.jsonl");
  const summary = (await exists(summaryPath))
    ? parseRecord(SWEEP_FORMAT, await readJsonFile(summaryPath, opts), summaryPath)
    : undefined;
  let trials: TrialRecord[] = [];
  if (await exists(trialsPath)) {
    trials = parseTrials(readText(trialsPath, opts), trialsPath, notes);
  } else {
    notes.push("trials.jsonl is missing: only the summary's tables can be shown.");
  }
  if (!summary) {
    notes.push(
      "sweep.json is missing (sweep still running or interrupted): stages and top tables are computed from trials.jsonl.",
    );
  }
  if (!summary && trials.length === 0) {
    throw new UserError(
      `${dir}: sweep directory has neither sweep.json nor any trial in trials.jsonl`,
    );
  }
  const sweep: LoadedSweep = { dir, summary, trials, notes };
  const rankBy = rankByOf(summary?.config) ??
    rankByOf(await readJsonFile(join(dir, "sweep.config.json"), opts).catch(() => null));
  if (rankBy) sweep.rankBy = rankBy;
  if (summary?.final) {
    const finalDir = join(dir, summary.final.run);
    if (await exists(join(finalDir, "metrics.json"))) {
      sweep.finalRun = await loadRun(finalDir, opts);
    } else {notes.push(
        `The final training's run directory ${summary.final.run} has no metrics.json.`,
      );}
  }
  return sweep;
}

/** Load a gradcheck.json. */
export async function loadGradcheck(path: string): Promise<GradcheckReport> {
  return validateGradcheck(await readJsonFile(path), path);
}

/**
 * Resolve one command-line input: a run or sweep directory, or a file (metrics.json, sweep.json,
 * gradcheck.json) recognised by its `format` tag.
 */
export async function loadInput(path: string): Promise<ReportInput> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`${path}: no such file or directory`);
    }
    throw cannotRead(path, e);
  }
  if (info.isDirectory) {
    if ((await exists(join(path, "sweep.json"))) || (await exists(join(path, "trials.jsonl")))) {
      return { kind: "sweep", path, sweep: await loadSweep(path) };
    }
    if (await exists(join(path, "metrics.json"))) {
      return { kind: "run", path, run: await loadRun(path) };
    }
    throw new UserError(
      `${path}: not a run or sweep directory (no metrics.json, sweep.json or trials.jsonl)`,
    );
  }
  const value = await readJsonFile(path);
  const format = isObject(value) ? value.format : undefined;
  if (format === FORMATS.gradcheck) {
    return { kind: "gradcheck", path, gradcheck: validateGradcheck(value, path) };
  }
  if (format === FORMATS.run) return { kind: "run", path, run: await loadRun(dirname(path)) };
  if (format === FORMATS.sweep) {
    return { kind: "sweep", path, sweep: await loadSweep(dirname(path)) };
  }
  throw new UserError(
    `${path}: not a metrics.json, sweep.json or gradcheck.json (format ${formatOf(value)})`,
  );
}
