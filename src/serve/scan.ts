/**
 * What a runs folder holds, for the dashboard: every run (committed, in training or interrupted)
 * and every sweep under it, with status, progress, best validation accuracy and age. Reading only:
 * symbolic links are never followed, and a file that cannot be read or parsed makes its entry
 * show what is known rather than fail the listing.
 *
 * @module
 */

import { join, relative, sep } from "node:path";
import { liveOwner } from "../io/lock.ts";
import { ownedKind } from "../io/owned.ts";
import { PARTIAL_SUFFIX } from "../train/run.ts";
import { parseProgress, PROGRESS_FILE, type ReadProgress } from "../train/live.ts";
import type { RunMetrics } from "../train/metrics.ts";

/** How deep below the served folder runs are looked for (runs/variants/run, runs/sweep/final). */
export const SCAN_DEPTH = 4;

/** One run or sweep of the listing. */
export interface Entry {
  /** `run` or `sweep`. */
  kind: "run" | "sweep";
  /** Its path below the served folder, `/`-separated, without `.partial`. */
  path: string;
  /** `running`, `completed`, `diverged` or `interrupted`. */
  status: "running" | "completed" | "diverged" | "interrupted";
  /** Steps done and scheduled (runs), or trials recorded (sweeps: total null). */
  progress: { done: number; total: number | null } | null;
  /** Best validation accuracy seen so far (null when none). */
  bestVal: number | null;
  /** Seconds since its files last changed. */
  ageSeconds: number;
}

function stat(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch {
    return null;
  }
}

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

function readJson(path: string): unknown {
  const text = readText(path);
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The progress log of an in-progress directory, or null. */
export function readProgress(partialDir: string): ReadProgress | null {
  const text = readText(join(partialDir, PROGRESS_FILE));
  return text === null ? null : parseProgress(text);
}

/** Whether a live process holds the lock at `path` (or any `<base>.shard-*.lock` beside it). */
export function lockHeld(base: string, shards = false): boolean {
  if (liveOwner(`${base}.lock`)) return true;
  if (!shards) return false;
  const dir = join(base, "..");
  const name = base.slice(dir.length + 1);
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isFile && e.name.startsWith(`${name}.shard-`) && e.name.endsWith(".lock")) {
        if (liveOwner(join(dir, e.name))) return true;
      }
    }
  } catch {
    // unreadable: no lock seen
  }
  return false;
}

function bestOf(values: (number | undefined)[]): number | null {
  const finite = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  return finite.length ? Math.max(...finite) : null;
}

function age(paths: string[]): number {
  const times = paths.map((p) => stat(p)?.mtime?.getTime() ?? 0);
  return Math.max(0, (Date.now() - Math.max(...times)) / 1000);
}

/** The listing entry of a committed run directory. */
function committedRun(root: string, dir: string): Entry {
  const m = readJson(join(dir, "metrics.json")) as RunMetrics | null;
  const curves = Array.isArray(m?.curves) ? m!.curves : [];
  return {
    kind: "run",
    path: toPath(root, dir),
    status: m?.status ?? "interrupted",
    progress: m?.timings ? { done: m.timings.steps, total: null } : null,
    bestVal: bestOf(curves.map((p) => p?.val?.accuracy)),
    ageSeconds: age([join(dir, "metrics.json")]),
  };
}

/** The listing entry of an in-progress directory (`<dir>.partial`). */
function partialRun(root: string, dir: string): Entry {
  const partial = dir + PARTIAL_SUFFIX;
  const log = readProgress(partial);
  const points = log?.lines.map((l) => l.point) ?? [];
  const last = points.at(-1);
  return {
    kind: "run",
    path: toPath(root, dir),
    status: lockHeld(dir) ? "running" : "interrupted",
    progress: log ? { done: last?.step ?? 0, total: log.header.totalSteps } : null,
    bestVal: bestOf(points.map((p) => p.val?.accuracy)),
    ageSeconds: age([join(partial, PROGRESS_FILE), partial]),
  };
}

/** The listing entry of a sweep directory. */
function sweep(root: string, dir: string): Entry {
  const summary = readJson(join(dir, "sweep.json"));
  const trials = trialLines(dir);
  const running = lockHeld(dir, true);
  const vals = trials.map((t) =>
    (t as { final?: { val?: { accuracy?: number } } })?.final?.val?.accuracy
  );
  return {
    kind: "sweep",
    path: toPath(root, dir),
    status: running ? "running" : summary ? "completed" : "interrupted",
    progress: { done: trials.length, total: null },
    bestVal: bestOf(vals),
    ageSeconds: age([join(dir, "trials.jsonl"), join(dir, "sweep.json"), dir]),
  };
}

/** The parsed whole lines of a sweep's trials files (its own and its shards'). */
export function trialLines(dir: string): unknown[] {
  const out: unknown[] = [];
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(dir)].filter((e) =>
      e.isFile && /^trials(\.shard-\d+-of-\d+)?\.jsonl$/.test(e.name)
    ).map((e) => e.name).sort();
  } catch {
    return out;
  }
  for (const name of names) {
    const text = readText(join(dir, name)) ?? "";
    for (const line of text.slice(0, text.lastIndexOf("\n") + 1).split("\n")) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        // a damaged line: the sweep's own tools report it; the listing skips it
      }
    }
  }
  return out;
}

function toPath(root: string, dir: string): string {
  return relative(root, dir).split(sep).join("/");
}

/** What kind of entry `dir` is: a run, an in-progress run, a sweep, a folder to descend, or none. */
export function entryKindOf(dir: string): "run" | "partial" | "sweep" | "folder" | null {
  const kind = ownedKind(dir);
  if (kind === "run") return "run";
  if (kind === "sweep") return "sweep";
  if (kind === "partial") return "partial";
  if (kind === "variants") return "folder";
  if (stat(join(dir, "trials.jsonl"))?.isFile) return "sweep";
  return "folder";
}

/**
 * Every run and sweep under `root`, sorted by path. An in-progress run is listed under its final
 * name (without `.partial`) unless its committed directory exists; a sweep's own final training is
 * listed too.
 */
export function scanRuns(root: string): Entry[] {
  const out = new Map<string, Entry>();
  const walk = (dir: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory || e.isSymlink || e.name.startsWith(".")) continue;
      if (/\.(tmp|old)-/.test(e.name)) continue;
      const path = join(dir, e.name);
      const kind = entryKindOf(path);
      if (kind === "run") {
        const entry = committedRun(root, path);
        out.set(entry.path, entry);
      } else if (kind === "partial" && e.name.endsWith(PARTIAL_SUFFIX)) {
        const final = path.slice(0, -PARTIAL_SUFFIX.length);
        if (entryKindOf(final) !== "run" && stat(join(path, PROGRESS_FILE))) {
          const entry = partialRun(root, final);
          out.set(entry.path, entry);
        }
      } else if (kind === "sweep") {
        const entry = sweep(root, path);
        out.set(entry.path, entry);
        if (depth > 1) walk(path, depth - 1);
      } else if (kind === "folder" && depth > 1) {
        walk(path, depth - 1);
      }
    }
  };
  walk(root, SCAN_DEPTH);
  return [...out.values()].sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
}
