/**
 * What a runs folder holds, for the dashboard: every run (committed, in training or interrupted)
 * and every sweep under it, with status, progress, best validation accuracy and age. Reading only:
 * symbolic links are never followed, and a file that cannot be read or parsed makes its entry
 * show what is known rather than fail the listing.
 *
 * @module
 */

import { dirname, join, relative, sep } from "node:path";
import { liveOwner } from "../io/lock.ts";
import { ownedKind } from "../io/owned.ts";
import { PARTIAL_SUFFIX } from "../train/run.ts";
import { appendProgress, parseProgress, PROGRESS_FILE, type ReadProgress } from "../train/live.ts";
import {
  FileProblem,
  MAX_RECORD_BYTES,
  readRegularSync,
  readRegularTextOrNull,
} from "../io/regular.ts";
import type { RunMetrics } from "../train/metrics.ts";
import { parseRecord, RUN_FORMAT } from "../io/records.ts";
import { UserError } from "../errors.ts";

/** How deep below the served folder runs are looked for (runs/variants/run, runs/sweep/final). */
export const SCAN_DEPTH = 4;

/** One run or sweep of the listing. */
export interface Entry {
  /** `run` or `sweep`. */
  kind: "run" | "sweep";
  /** Its path below the served folder, `/`-separated, without `.partial`. */
  path: string;
  /** `running`, `completed`, `diverged`, `interrupted`, or `damaged` (its metrics.json is not one). */
  status: "running" | "completed" | "diverged" | "interrupted" | "damaged";
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

/** What identifies a regular file's contents cheaply: device, inode, size, times (null: none). */
function fileSignature(info: Deno.FileInfo | null): string | null {
  if (!info?.isFile) return null;
  return `${info.dev}:${info.ino}:${info.size}:${info.mtime?.getTime()}:${info.ctime?.getTime()}`;
}

interface Cached {
  signature: string;
  value: unknown;
  bytes: number;
}

/**
 * Parsed files, by path, kept while their signature holds: a page and the index are looked at
 * every half second by every open page, and a run's files change only at evaluation points.
 * At most {@link CACHE_BYTES} of file contents are kept (the least recently used go first).
 */
const cache = new Map<string, Cached>();
let cachedBytes = 0;
const CACHE_BYTES = 256 << 20;

function forget(path: string): void {
  const old = cache.get(path);
  if (!old) return;
  cachedBytes -= old.bytes;
  cache.delete(path);
}

function remember(path: string, entry: Cached): void {
  forget(path);
  if (entry.bytes > CACHE_BYTES) return;
  cache.set(path, entry);
  cachedBytes += entry.bytes;
  for (const [key, e] of cache) {
    if (cachedBytes <= CACHE_BYTES) break;
    cachedBytes -= e.bytes;
    cache.delete(key);
  }
}

/**
 * `parse` of the text of the regular file at `path` (never through a symbolic link, never
 * blocking on a FIFO, at most {@link MAX_RECORD_BYTES}), cached while the file is unchanged;
 * null when there is no such file or it cannot be read.
 */
function cachedRead<T>(path: string, parse: (text: string) => T): T | null {
  const signature = fileSignature(stat(path));
  if (signature === null) {
    forget(path);
    return null;
  }
  const hit = cache.get(path);
  if (hit?.signature === signature) {
    // most recently used last
    cache.delete(path);
    cache.set(path, hit);
    return hit.value as T;
  }
  const text = readRegularTextOrNull(path, { maxBytes: MAX_RECORD_BYTES });
  if (text === null) {
    forget(path);
    return null;
  }
  const value = parse(text);
  remember(path, { signature, value, bytes: text.length });
  return value;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The parsed JSON file at `path` (cached), or null. */
export function readJson(path: string): unknown {
  return cachedRead(path, parseJson);
}

/** The paths whose parsed contents are kept (for tests and tools). */
export function cachedPaths(): string[] {
  return [...progressCache.keys(), ...cache.keys()];
}

/** Forget the parsed files that are gone (a committed run's progress log, a removed sweep's files). */
function pruneCaches(): void {
  for (const path of progressCache.keys()) if (!stat(path)) progressCache.delete(path);
  for (const path of [...cache.keys()]) if (!stat(path)) forget(path);
}

/** A progress log read so far: where its file was and how far its text was parsed. */
interface ProgressState {
  dev: number | null;
  ino: number | null;
  size: number;
  signature: string;
  /** Bytes parsed: through the last newline seen. */
  offset: number;
  /** The log parsed so far (null: no whole, valid header yet). */
  log: ReadProgress | null;
}

const progressCache = new Map<string, ProgressState>();

/**
 * The progress log of an in-progress directory, or null. A log that only grew since the last
 * look is read from where that look ended (a long run's log is not read whole at every point);
 * a log replaced (a resume rewrites it) or shortened is read again from the start.
 */
export function readProgress(partialDir: string): ReadProgress | null {
  const path = join(partialDir, PROGRESS_FILE);
  const info = stat(path);
  const signature = fileSignature(info);
  if (!info || signature === null) {
    progressCache.delete(path);
    return null;
  }
  let state = progressCache.get(path);
  if (state?.signature === signature) return state.log;
  const same = state && state.dev === info.dev && state.ino === info.ino &&
    info.size >= state.size && state.log !== null;
  if (!same) state = { dev: info.dev, ino: info.ino, size: 0, signature: "", offset: 0, log: null };
  let bytes: Uint8Array;
  try {
    bytes = readRegularSync(path, { maxBytes: MAX_RECORD_BYTES, from: state!.offset });
  } catch (e) {
    if (!(e instanceof FileProblem)) throw e;
    progressCache.delete(path);
    return null;
  }
  const end = bytes.lastIndexOf(0x0a);
  if (end >= 0) {
    const text = new TextDecoder().decode(bytes.subarray(0, end + 1));
    if (state!.log) appendProgress(state!.log, text);
    else state!.log = parseProgress(text);
    state!.offset += end + 1;
  }
  state!.size = info.size;
  state!.signature = signature;
  progressCache.set(path, state!);
  return state!.log;
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

/** The largest finite number of `values` (no spread: a long run has 10⁵ points), or null. */
/**
 * Whether the run that will be committed to `dir` is training now: its own lock is held, or, for a
 * variant (a run inside a variants directory), the variants directory's.
 */
export function runLockHeld(dir: string): boolean {
  if (lockHeld(dir)) return true;
  const parent = dirname(dir);
  return ownedKind(parent) === "variants" && lockHeld(parent);
}

function bestOf(values: (number | undefined)[]): number | null {
  let best: number | null = null;
  for (const v of values) {
    if (typeof v === "number" && Number.isFinite(v) && (best === null || v > best)) best = v;
  }
  return best;
}

function age(paths: string[]): number {
  const newest = paths.reduce((t, p) => Math.max(t, stat(p)?.mtime?.getTime() ?? 0), 0);
  return Math.max(0, (Date.now() - newest) / 1000);
}

/** A run's metrics.json, validated, or the one-line reason it cannot be used. */
export function readRunMetrics(dir: string): RunMetrics | { problem: string } | null {
  const path = join(dir, "metrics.json");
  return cachedRead(path, (text) => {
    try {
      return parseRecord(RUN_FORMAT, JSON.parse(text), path);
    } catch (e) {
      return { problem: e instanceof UserError ? e.message : `${path}: malformed JSON` };
    }
  });
}

/** The listing entry of a committed run directory. */
function committedRun(root: string, dir: string): Entry {
  const read = readRunMetrics(dir);
  const m = read && !("problem" in read) ? read : null;
  return {
    kind: "run",
    path: toPath(root, dir),
    status: m?.status ?? "damaged",
    progress: m ? { done: m.timings.steps, total: null } : null,
    bestVal: bestOf(m?.curves.map((p) => p.val?.accuracy) ?? []),
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
    status: runLockHeld(dir) ? "running" : "interrupted",
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
    for (const line of cachedRead(join(dir, name), wholeLines) ?? []) out.push(line);
  }
  return out;
}

/** The parsed whole lines of a JSON-lines text (a damaged line is skipped). */
function wholeLines(text: string): unknown[] {
  const out: unknown[] = [];
  for (const line of text.slice(0, text.lastIndexOf("\n") + 1).split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // a damaged line: the sweep's own tools report it; the listing skips it
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
  pruneCaches();
  return [...out.values()].sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
}
