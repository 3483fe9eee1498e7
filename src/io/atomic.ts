/**
 * Atomic file writes: write a temporary file beside the target, then rename it over the target,
 * so a reader never sees a half-written file and an interrupted run leaves the old file intact.
 *
 * @module
 */

import { dirname } from "node:path";

/** Write `data` to `path` atomically (temp file in the same directory + rename). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Write a value as pretty-printed JSON atomically. */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * {@link writeFileAtomic}, synchronously: for state written from inside a busy loop (snapshots),
 * where an asynchronous write would wait behind the loop and its cost could not be told apart.
 * Unlike {@link writeFileAtomic} it never creates the directory: a directory that has gone (taken
 * over, removed) makes it fail rather than appear again without its owner.
 */
export function writeFileAtomicSync(path: string, data: Uint8Array): void {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    Deno.writeFileSync(tmp, data);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch {
      // never created
    }
    throw e;
  }
}
