/**
 * Whether a path exists.
 *
 * @module
 */

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
