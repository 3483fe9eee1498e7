/**
 * Directories the tool wrote itself. Every run, variants and sweep directory (and a run's
 * in-progress directory) carries a marker file, {@link MARKER}, naming its kind and the hash of
 * the config it belongs to. `--overwrite` and `--restart` remove only directories that carry it
 * (or, for directories written before markers existed, the tool's own metrics or sweep files),
 * never anything else, and never through a symbolic link.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { UserError } from "../errors.ts";
import { writeJsonAtomic } from "./atomic.ts";
import { nearestExisting } from "./exists.ts";
import {
  FileProblem,
  MAX_RECORD_BYTES,
  MAX_SMALL_BYTES,
  readRegularSync,
  readRegularTextOrNull,
} from "./regular.ts";

/** The marker file inside a directory the tool owns. */
export const MARKER = ".webgpu-mlp.json";

/**
 * What a directory the tool owns holds: a run, a variants or sweep directory, a run's in-progress
 * directory, or the TensorBoard events of one trial of a sweep (a sub-directory of the sweep).
 */
export type OwnedKind = "run" | "variants" | "sweep" | "partial" | "trial";

/** Contents of the marker file. */
export interface Marker {
  /** Format tag. */
  format: "webgpu-mlp.dir/1";
  /** What the directory holds. */
  kind: OwnedKind;
  /** Hash of the resolved config the directory belongs to. */
  config: string;
  /** When it was created (ISO 8601). */
  created: string;
}

/** Write the marker into `dir` (created if needed). */
export async function markOwned(dir: string, kind: OwnedKind, config: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const marker: Marker = {
    format: "webgpu-mlp.dir/1",
    kind,
    config,
    created: new Date().toISOString(),
  };
  await writeJsonAtomic(join(dir, MARKER), marker);
}

/**
 * The JSON of a regular file the tool may have written, or null: a FIFO, a device, a symbolic
 * link or an oversized file named like one of the tool's is never read (nor waited on).
 */
function readOwnJson(path: string, maxBytes: number): unknown {
  const text = readRegularTextOrNull(path, { maxBytes });
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The marker of `dir`, or null when it has none (or it is not the tool's). */
export function readMarker(dir: string): Marker | null {
  const m = readOwnJson(join(dir, MARKER), MAX_SMALL_BYTES) as Marker | null;
  return m?.format === "webgpu-mlp.dir/1" && typeof m.kind === "string" ? m : null;
}

function jsonFormat(path: string): string | null {
  const v = readOwnJson(path, MAX_RECORD_BYTES) as { format?: unknown } | null;
  return typeof v?.format === "string" ? v.format : null;
}

/**
 * The kind of directory `dir` is if the tool wrote it, else null: by its marker, or, for
 * directories of earlier versions, by a `metrics.json` or `sweep.config.json` of the tool.
 */
export function ownedKind(dir: string): OwnedKind | null {
  const marker = readMarker(dir);
  if (marker) return marker.kind;
  if (jsonFormat(join(dir, "metrics.json")) === "webgpu-mlp.run/1") return "run";
  const cfg = readOwnJson(join(dir, "sweep.config.json"), MAX_RECORD_BYTES) as
    | { search?: unknown }
    | null;
  return cfg?.search ? "sweep" : null;
}

/** What is at `path`: nothing, a directory, a symbolic link, or something else. */
export function entryKind(path: string): "none" | "dir" | "symlink" | "other" {
  try {
    const st = Deno.lstatSync(path);
    return st.isSymlink ? "symlink" : st.isDirectory ? "dir" : "other";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "none";
    throw new UserError(`${path} cannot be inspected: ${(e as Error).message}`);
  }
}

/** TensorBoard's event files, as this tool names them (`events.out.tfevents.<seconds>.<host>`). */
const EVENTS = String.raw`events\.out\.tfevents\.\d+\.[A-Za-z0-9._-]+`;
const EVENTS_NAME = new RegExp(`^${EVENTS}$`);

/**
 * The writer this tool names in the first event of each event file it writes (the file-version
 * event's `source_metadata.writer`, field 10 of tensorboard.Event): TensorFlow's, PyTorch's and
 * tensorboardX's files are named like the tool's (`events.out.tfevents.<seconds>.<host>…`), so
 * the name alone does not tell whose a file is.
 */
export const EVENTS_WRITER = "webgpu-mlp";

/** The encoded `source_metadata { writer: EVENTS_WRITER }` field of an Event. */
const WRITER_FIELD = (() => {
  const name = new TextEncoder().encode(EVENTS_WRITER);
  return Uint8Array.from([0x52, name.length + 2, 0x0a, name.length, ...name]);
})();

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * Whether `path` is an event file this tool wrote: named like one, and its first record (a
 * TFRecord: 8-byte length, 4-byte CRC, the event) names {@link EVENTS_WRITER} as its writer. A
 * user's own event file (TensorBoard logs of another program) is not the tool's: `--overwrite`
 * and `--restart` leave its directory alone, and the tool never deletes it.
 */
export function isOwnEventsFile(path: string): boolean {
  if (!EVENTS_NAME.test(basename(path))) return false;
  let head: Uint8Array;
  try {
    head = readRegularSync(path, { maxBytes: Infinity, head: 512 });
  } catch {
    return false;
  }
  if (head.length < 12) return false;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const length = view.getUint32(0, true) + 2 ** 32 * view.getUint32(4, true);
  if (length > head.length - 12) return false;
  return contains(head.subarray(12, 12 + length), WRITER_FIELD);
}

/** A pattern matching exactly one of the given regular-expression sources. */
const oneOf = (...sources: string[]) => new RegExp(`^(${sources.join("|")})$`);

/** Files each kind of directory may hold besides its marker (and atomic writes' temporaries). */
const FILES: Record<OwnedKind, RegExp> = {
  run: oneOf(
    String.raw`metrics\.json`,
    String.raw`weights\.safetensors`,
    String.raw`report\.html`,
    String.raw`curves\.csv`,
    EVENTS,
  ),
  partial: oneOf(
    String.raw`metrics\.json`,
    String.raw`snapshot\.safetensors`,
    String.raw`report\.html`,
    String.raw`progress\.jsonl`,
    String.raw`curves\.csv`,
    EVENTS,
  ),
  variants: /^(report\.html|\.snapshot-\d+\.safetensors)$/,
  sweep: oneOf(
    String.raw`sweep\.config\.json`,
    String.raw`sweep\.json`,
    String.raw`report\.html`,
    String.raw`trials(\.shard-\d+-of-\d+)?\.jsonl`,
    String.raw`\.snapshot(\.shard-\d+-of-\d+)?\.safetensors`,
    String.raw`final\.lock`,
    String.raw`trials\.csv`,
    String.raw`population(\.shard-\d+-of-\d+)?\.json`,
    // a PBT population's best member as trained: `<stage>-<index>.weights.safetensors`
    String.raw`[A-Za-z0-9][A-Za-z0-9._-]*-\d+\.weights\.safetensors`,
    EVENTS,
  ),
  trial: oneOf(EVENTS),
};
const TEMPORARY = /\.tmp-\d+-[0-9a-f]{8}$/;
/** A sweep's sub-directory of one trial's TensorBoard events: `<stage>-<index>`. */
const TRIAL_DIR = /^[A-Za-z0-9_][A-Za-z0-9._-]*-\d+$/;

/** Which sub-directories a kind of directory may hold: their kind, by name (null: none). */
function subKind(kind: OwnedKind, name: string): OwnedKind | null {
  if (kind === "variants") return name.endsWith(".partial") ? "partial" : "run";
  if (kind === "sweep") {
    if (name === "final.partial") return "partial";
    if (/^final(\.(tmp|old)-.*)?$/.test(name)) return "run";
    if (TRIAL_DIR.test(name)) return "trial";
  }
  return null;
}

/**
 * The first entry under `dir` (a directory of `kind`) that the tool would not have written, as a
 * path, or null when it holds only the tool's own files.
 */
export function foreignEntry(dir: string, kind: OwnedKind): string | null {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (e) {
    return `${dir} (${(e as Error).message.split("\n")[0]})`;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (
      e.isFile && (e.name === MARKER || TEMPORARY.test(e.name) ||
        (FILES[kind].test(e.name) && (!EVENTS_NAME.test(e.name) || isOwnEventsFile(path))))
    ) {
      continue;
    }
    const sub = e.isDirectory && !e.isSymlink ? subKind(kind, e.name) : null;
    const actual = sub ? ownedKind(path) : null;
    if (sub && actual === sub) {
      const inner = foreignEntry(path, sub);
      if (inner) return inner;
      continue;
    }
    return path;
  }
  return null;
}

/**
 * Why `dir` may not be replaced as a directory of `kind`, or null when it may: it must be a real
 * directory (not a link) that the tool wrote as that kind, holding nothing the tool did not write.
 */
export function replaceProblem(dir: string, kind: OwnedKind): string | null {
  const what = entryKind(dir);
  if (what === "none") return null;
  if (what === "symlink") {
    return `${dir} is a symbolic link: the tool replaces only directories it wrote`;
  }
  const actual = what === "dir" ? ownedKind(dir) : null;
  if (actual === null) {
    return `${dir} was not written by this tool (no ${MARKER} or metrics of a run in it), so it is left alone`;
  }
  if (actual !== kind) return `${dir} holds a ${actual}, not a ${kind}, so it is left alone`;
  const foreign = foreignEntry(dir, kind);
  if (foreign) return `${dir} holds ${foreign}, which the tool did not write, so it is left alone`;
  return null;
}

/**
 * Remove `dir` if, and only if, the tool wrote it as a directory of `kind` and it holds nothing
 * else ({@link replaceProblem}); otherwise a {@link UserError} ending in `fix`.
 */
export async function removeOwned(dir: string, kind: OwnedKind, fix: string): Promise<void> {
  const problem = replaceProblem(dir, kind);
  if (problem) throw new UserError(`${problem}: ${fix}`);
  if (entryKind(dir) === "none") return;
  await Deno.remove(dir, { recursive: true });
}

/**
 * Remove the temporaries of atomic writes a killed process left in `dir` (`NAME.tmp-PID-XXXXXXXX`):
 * those of the files named in `names`, or all of them when `names` is null. Call it holding the
 * lock of whatever writes those files.
 */
export async function removeTemporaries(dir: string, names: string[] | null): Promise<void> {
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.isFile || !TEMPORARY.test(e.name)) continue;
    const of = e.name.replace(TEMPORARY, "");
    if (names === null || names.includes(of)) await Deno.remove(join(dir, e.name)).catch(() => {});
  }
}

/** The single files the tool writes where the user says (`report --out`, `gradcheck --out`). */
export type OwnFileKind = "report" | "gradcheck";

/** How the start of each kind of file shows the tool wrote it. */
const OWN_FILE_SIGNS: Record<OwnFileKind, { what: string; sign: RegExp }> = {
  report: { what: "an HTML report", sign: /<meta name="generator" content="webgpu-mlp report">/ },
  gradcheck: { what: "a gradient audit", sign: /"format":\s*"webgpu-mlp\.gradcheck\/1"/ },
};

/** Bytes of a file's start read to find the sign that the tool wrote it. */
const SIGN_BYTES = 16 << 10;

/**
 * Why the tool may not write its `kind` file at `path`, or null when it may: the path is free (and
 * the nearest folder above it that exists is a folder), or a regular file the tool wrote as that
 * kind (an earlier report, an earlier audit), which it replaces. A file of anybody else — a thesis,
 * an HTML page of another tool, a run's metrics — is never replaced, nor is anything that is not
 * a regular file, nor is a symbolic link followed. The message is one line, naming `flag`.
 *
 * @example
 * ```ts ignore
 * const problem = outputFileProblem("compare.html", "report", "--out");
 * if (problem) throw new UserError(problem);
 * ```
 */
export function outputFileProblem(path: string, kind: OwnFileKind, flag: string): string | null {
  const { what, sign } = OWN_FILE_SIGNS[kind];
  const elsewhere = `give ${flag} another file`;
  let entry: "none" | "dir" | "symlink" | "other";
  try {
    const st = Deno.lstatSync(path);
    entry = st.isSymlink ? "symlink" : st.isDirectory ? "dir" : "other";
  } catch (e) {
    // missing, or a file where a folder of the path should be: the folders are checked below
    if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory)) {
      return `${path} cannot be inspected (${(e as Error).message.split("\n")[0]}): ${elsewhere}`;
    }
    entry = "none";
  }
  if (entry === "dir") {
    return `${path} is a directory: ${flag} names the file of ${what} (e.g. ${
      join(path, kind === "report" ? "report.html" : "gradcheck.json")
    })`;
  }
  if (entry === "symlink") {
    return `${path} is a symbolic link, which the tool does not write through: ${elsewhere}`;
  }
  if (entry === "none") {
    // the folders to be made: the nearest one above that exists must be a folder
    let above: { at: string; info: Deno.FileInfo };
    try {
      above = nearestExisting(dirname(path));
    } catch (e) {
      return `${path} cannot be written: ${dirname(path)} cannot be inspected (${
        (e as Error).message.split("\n")[0]
      })`;
    }
    return above.info.isDirectory
      ? null
      : `${path} cannot be written: ${above.at} is a file, not a folder: ${elsewhere}`;
  }
  let head: string;
  try {
    head = new TextDecoder().decode(
      readRegularSync(path, { maxBytes: Infinity, head: SIGN_BYTES }),
    );
  } catch (e) {
    if (e instanceof FileProblem) return `${e.message}: ${elsewhere}`;
    throw e;
  }
  return sign.test(head)
    ? null
    : `${path} exists and is not ${what} this tool wrote, so it is left alone: ${elsewhere}, or move the file away`;
}
