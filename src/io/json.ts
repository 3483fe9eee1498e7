/**
 * Reading JSON files that may be absent.
 *
 * @module
 */

import { UserError } from "../errors.ts";

/** The parsed contents of `path`, or null when it does not exist; malformed JSON is an error. */
export function readJsonIfExists<T>(path: string): T | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new UserError(`${path} cannot be read: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new UserError(`${path} is not valid JSON: the file is damaged`);
  }
}
