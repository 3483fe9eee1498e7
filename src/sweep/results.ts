/**
 * A sweep's results on disk: trials files (one finished trial per JSON line, rewritten atomically
 * so a killed process never leaves a torn line), reading them back for resume and merge, and the
 * top-k tables.
 *
 * @module
 */

import { join } from "node:path";
import { UserError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic.ts";
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

/** Parse one trials file; a malformed line is an error naming the file and line. */
export function parseTrials(text: string, source: string): TrialRecord[] {
  const out: TrialRecord[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let rec: TrialRecord;
    try {
      rec = JSON.parse(line);
    } catch {
      throw new UserError(
        `${source}:${
          i + 1
        } is not a JSON line: the file is damaged; remove that line to re-run the trial`,
      );
    }
    if (rec?.format !== "webgpu-mlp.trial/1" || typeof rec.id !== "string") {
      throw new UserError(`${source}:${i + 1} is not a trial record of this tool`);
    }
    out.push(rec);
  });
  return out;
}

/** Every finished trial of a sweep directory, by id (a trial found twice is kept once). */
export function readTrials(dir: string): Map<string, TrialRecord> {
  const byId = new Map<string, TrialRecord>();
  for (const f of trialFiles(dir)) {
    for (const rec of parseTrials(Deno.readTextFileSync(f), f)) {
      if (!byId.has(rec.id)) byId.set(rec.id, rec);
    }
  }
  return byId;
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
    .map((t) => ({
      id: t.id,
      lambda: t.lambda,
      bestValAccuracy: t.bestVal.accuracy,
      finalValAccuracy: t.final!.val.accuracy,
      finalValCost: t.final!.val.cost,
    }));
}

/** A top-k table as text. */
export function formatTop(stage: string, top: TopEntry[]): string {
  const rows = top.map((t, i) =>
    `  ${i + 1}. λ ${t.lambda.toExponential(3)}  val acc final ${
      (100 * t.finalValAccuracy).toFixed(2)
    }% ` +
    `best ${(100 * t.bestValAccuracy).toFixed(2)}%  val cost ${
      t.finalValCost.toFixed(4)
    }  (${t.id})`
  );
  return [`top ${top.length} of stage ${stage}:`, ...rows].join("\n");
}
