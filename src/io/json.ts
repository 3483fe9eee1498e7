/**
 * Reading JSON files that may be absent, always through a validator.
 *
 * @module
 */

import { UserError } from "../errors.ts";

/**
 * The contents of `path` validated by `parse` (which gets the parsed JSON and `path` to name in
 * its messages), or null when the file does not exist; malformed JSON is an error.
 */
export function readJsonIfExists<T>(
  path: string,
  parse: (value: unknown, source: string) => T,
): T | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new UserError(`${path} cannot be read: ${(e as Error).message.split("\n")[0]}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UserError(`${path} is not valid JSON: the file is damaged`);
  }
  return parse(value, path);
}

/** Whether a parsed JSON value is an object (not null, not an array). */
export function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** JSON with every object's keys sorted, for comparing values regardless of key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_, v) =>
      typeof v === "object" && v !== null && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : v,
  );
}

/** The value at `path` inside a parsed JSON value (undefined where the path leaves it). */
export function getPath(obj: unknown, path: PropertyKey[]): unknown {
  let o = obj;
  for (const k of path) {
    if (typeof o !== "object" || o === null) return undefined;
    o = (o as Record<PropertyKey, unknown>)[k];
  }
  return o;
}
