/**
 * A sweep's results on disk: trials files (one finished trial per JSON line, rewritten atomically
 * so a killed process never leaves a torn line), reading them back for resume and merge, and the
 * top-k tables.
 *
 * @module
 */

import { join } from "node:path";
import type { Config } from "../config.ts";
import { clip, shown, UserError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { parseRecord, TRIAL_FORMAT } from "../io/records.ts";
import { FileProblem, MAX_RECORD_BYTES, readRegularTextSync } from "../io/regular.ts";
import { formatHyper } from "./hyper.ts";
import { spaceSize } from "./space.ts";
import type { TopEntry, TrialRecord } from "./types.ts";

/** Trials files in a sweep directory: trials.jsonl and every shard's file. */
export function trialFiles(dir: string): string[] {
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch {
    return [];
  }
  return names.filter((n) => /^trials(\.shard-\d+-of-\d+)?\.jsonl$/.test(n)).sort().map((n) =>
    join(dir, n)
  );
}

/**
 * Parse one trials file. Every line must be a trial record exactly as this tool writes it; the
 * first one that is not is a one-line error `FILE:LINE: what is wrong`.
 */
export function parseTrials(text: string, source: string): TrialRecord[] {
  return parseTrialLines(text, source).map((t) => t.record);
}

interface Located {
  record: TrialRecord;
  /** `FILE:LINE` the record was read from. */
  at: string;
}

function parseTrialLines(text: string, source: string): Located[] {
  const out: Located[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const at = `${source}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new UserError(
        `${at} is not a JSON line: the file is damaged; remove that line to re-run the trial`,
      );
    }
    out.push({ record: parseRecord(TRIAL_FORMAT, value, at), at });
  });
  return out;
}

/** Refuse a record that cannot belong to the sweep of `cfg`: an unknown stage, or an index beyond it. */
function checkBelongs(rec: TrialRecord, at: string, cfg: Config): void {
  const stages = cfg.search?.stages ?? [];
  const stage = stages.find((s) => s.name === rec.stage);
  if (!stage) {
    throw new UserError(
      `${at}: trial ${shown(rec.id)} is of stage ${shown(rec.stage)}, which this sweep's config ` +
        `does not have (stages: ${
          clip(stages.map((s) => s.name).join(", "), 80)
        }): the line belongs to another sweep; move it out of this directory`,
    );
  }
  const n = spaceSize(stage.space);
  if (rec.index >= n) {
    throw new UserError(
      `${at}: trial ${shown(rec.id)} is beyond the ${n} trials of stage ${shown(stage.name)}: ` +
        `the line belongs to another sweep; move it out of this directory`,
    );
  }
}

/**
 * Every finished trial of a sweep directory, by id. Every line of every trials file is validated
 * (and, given the sweep's config, checked to belong to one of its stages) before anything is
 * returned. A trial found in several lines is kept once when the lines agree (apart from the
 * shard that trained it) and is an error naming both places when they do not.
 */
export function readTrials(dir: string, cfg?: Config): Map<string, TrialRecord> {
  const byId = new Map<string, Located & { key: string }>();
  for (const f of trialFiles(dir)) {
    let text: string;
    try {
      text = readRegularTextSync(f, { maxBytes: MAX_RECORD_BYTES });
    } catch (e) {
      if (!(e instanceof FileProblem)) throw e;
      throw new UserError(`${e.message}: the sweep's trials file is damaged; move it away`);
    }
    for (const { record, at } of parseTrialLines(text, f)) {
      if (cfg) checkBelongs(record, at, cfg);
      const key = JSON.stringify({ ...record, shard: undefined });
      const first = byId.get(record.id);
      if (!first) byId.set(record.id, { record, at, key });
      else if (first.key !== key) {
        throw new UserError(
          `trial ${shown(record.id)} is recorded differently in ${first.at} and ${at}: ` +
            `keep the right line and remove the other`,
        );
      }
    }
  }
  return new Map([...byId].map(([id, { record }]) => [id, record]));
}

/** Append records to a trials file atomically (the whole file is rewritten through a rename). */
export async function appendTrials(file: string, records: TrialRecord[]): Promise<void> {
  let text = "";
  try {
    text = await Deno.readTextFile(file);
  } catch {
    // first records
  }
  if (text !== "" && !text.endsWith("\n")) text += "\n";
  await writeFileAtomic(file, text + records.map((r) => JSON.stringify(r)).join("\n") + "\n");
}

/** Sort key of a trial under a ranking rule (diverged trials rank last). */
export function score(t: TrialRecord, rankBy: "final" | "best"): number {
  if (t.status !== "completed") return -Infinity;
  return rankBy === "best" ? t.bestVal.accuracy : (t.final?.val.accuracy ?? -Infinity);
}

/** The k best completed trials, best first (ties: smaller λ first, then id). */
export function topK(trials: TrialRecord[], k: number, rankBy: "final" | "best"): TopEntry[] {
  return trials
    .filter((t) => t.status === "completed" && t.final)
    .sort((a, b) =>
      score(b, rankBy) - score(a, rankBy) || a.lambda - b.lambda || (a.id < b.id ? -1 : 1)
    )
    .slice(0, k)
    .map(topEntry);
}

/** A completed trial (one with final metrics) as an entry of a top-k table. */
export function topEntry(t: TrialRecord): TopEntry {
  // a PBT trial is ranked with the values it ended with (those it trained with last)
  const hyper = t.pbt?.end ?? t.hyper;
  return {
    id: t.id,
    lambda: hyper?.lambda ?? t.lambda,
    ...(hyper ? { hyper } : {}),
    bestValAccuracy: t.bestVal.accuracy,
    finalValAccuracy: t.final!.val.accuracy,
    finalValCost: t.final!.val.cost,
  };
}

/**
 * The rungs of a halving stage as text: at each rung, how many trials were training and how
 * many went on (`rung 1 at step 900: 81 → 27`), summed over the stage's populations.
 */
export function formatRungs(stage: string, rungs: number[], trials: TrialRecord[]): string {
  const parts = rungs.map((step, i) => {
    const rung = i + 1;
    const training = trials.filter((t) =>
      !(t.stopped && t.stopped.rung < rung) && !(t.diverged && t.diverged.step < step)
    );
    const on = training.filter((t) =>
      t.stopped?.rung !== rung && !(t.diverged && t.diverged.step <= step)
    );
    return `rung ${rung} at step ${step}: ${training.length} → ${on.length}`;
  });
  const stopped = trials.filter((t) => t.status === "stopped").length;
  return `stage ${stage}: ${stopped} of ${trials.length} trials stopped by successive halving (` +
    parts.join(", ") +
    `); the table ranks the ${
      trials.filter((t) => t.status === "completed").length
    } that completed`;
}

/**
 * A top-k table as text: each trial's λ and its value in every other dimension of the stage,
 * its validation accuracy (final and best) and cost.
 */
export function formatTop(stage: string, top: TopEntry[]): string {
  const rows = top.map((t, i) =>
    `  ${i + 1}. λ ${t.lambda.toExponential(3)}  ${
      t.hyper && formatHyper(t.hyper, false) ? `${formatHyper(t.hyper, false)}  ` : ""
    }val acc final ${(100 * t.finalValAccuracy).toFixed(2)}% ` +
    `best ${(100 * t.bestValAccuracy).toFixed(2)}%  val cost ${
      t.finalValCost.toFixed(4)
    }  (${t.id})`
  );
  return [`top ${top.length} of stage ${stage}:`, ...rows].join("\n");
}
