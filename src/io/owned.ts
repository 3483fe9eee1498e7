/**
 * Directories the tool wrote itself. Every run, variants and sweep directory (and a run's
 * in-progress directory) carries a marker file, {@link MARKER}, naming its kind and the hash of
 * the config it belongs to. `--overwrite` and `--restart` remove only directories that carry it
 * (or, for directories written before markers existed, the tool's own metrics or sweep files),
 * never anything else, and never through a symbolic link.
 *
 * @module
 */

import { join } from "node:path";
import { UserError } from "../errors.ts";
import { writeJsonAtomic } from "./atomic.ts";

/** The marker file inside a directory the tool owns. */
export const MARKER = ".webgpu-mlp.json";

/** What a directory the tool owns holds. */
export type OwnedKind = "run" | "variants" | "sweep" | "partial";

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

/** The marker of `dir`, or null when it has none (or it is not the tool's). */
export function readMarker(dir: string): Marker | null {
  try {
    const m = JSON.parse(Deno.readTextFileSync(join(dir, MARKER)));
    return m?.format === "webgpu-mlp.dir/1" && typeof m.kind === "string" ? m : null;
  } catch {
    return null;
  }
}

function jsonFormat(path: string): string | null {
  try {
    const v = JSON.parse(Deno.readTextFileSync(path));
    return typeof v?.format === "string" ? v.format : null;
  } catch {
    return null;
  }
}

/**
 * The kind of directory `dir` is if the tool wrote it, else null: by its marker, or, for
 * directories of earlier versions, by a `metrics.json` or `sweep.config.json` of the tool.
 */
export function ownedKind(dir: string): OwnedKind | null {
  const marker = readMarker(dir);
  if (marker) return marker.kind;
  if (jsonFormat(join(dir, "metrics.json")) === "webgpu-mlp.run/1") return "run";
  try {
    const cfg = JSON.parse(Deno.readTextFileSync(join(dir, "sweep.config.json")));
    if (cfg?.search) return "sweep";
  } catch {
    // not a sweep
  }
  return null;
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

/**
 * Remove `dir` if, and only if, the tool wrote it (and it is a real directory, not a link);
 * otherwise a {@link UserError} saying why it is left alone. `fix` is the advice at the end.
 */
export async function removeOwned(dir: string, fix: string): Promise<void> {
  const kind = entryKind(dir);
  if (kind === "none") return;
  if (kind === "symlink") {
    throw new UserError(
      `${dir} is a symbolic link: the tool replaces only directories it wrote; ${fix}`,
    );
  }
  if (kind !== "dir" || ownedKind(dir) === null) {
    throw new UserError(
      `${dir} was not written by this tool (no ${MARKER} or metrics of a run in it), so it is left alone: ${fix}`,
    );
  }
  await Deno.remove(dir, { recursive: true });
}
