/**
 * Whether a path exists, and which of the folders above it do.
 *
 * @module
 */

import { dirname } from "node:path";

/** True when `path` exists (a file or a directory, links followed); other errors throw. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * The nearest of `path` and the folders above it that exists (links followed), and the ones
 * below it that do not, deepest first: what a write to `path` would have to make, and what is in
 * the way when the nearest is a file. A path under a file counts as missing, as it cannot exist.
 * Errors other than missing (a link loop, a permission) throw.
 */
export function nearestExisting(
  path: string,
): { at: string; info: Deno.FileInfo; missing: string[] } {
  const missing: string[] = [];
  for (let at = path;; at = dirname(at)) {
    try {
      return { at, info: Deno.statSync(at), missing };
    } catch (e) {
      const gone = e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory;
      if (!gone || dirname(at) === at) throw e;
      missing.push(at);
    }
  }
}
