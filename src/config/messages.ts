/**
 * The one-line messages for a config the schema refuses: which key, what is allowed there, what
 * was given, and for an unknown key the allowed key it most likely meant.
 *
 * @module
 */

import type { z } from "zod";
import { clip, shown } from "../errors.ts";
import { getPath } from "../io/json.ts";
import { configSchema } from "./schema.ts";

/** The keys an object schema allows at `path` of `value` (following unions by `kind`). */
export function allowedKeys(path: PropertyKey[], value: unknown): string[] {
  // deno-lint-ignore no-explicit-any
  let s: any = configSchema;
  for (let i = 0; i <= path.length; i++) {
    while (s?._zod?.def?.innerType) s = s._zod.def.innerType; // optional / default
    if (s?._zod?.def?.type === "union") {
      const kind = (getPath(value, path.slice(0, i)) as { kind?: unknown })?.kind;
      // deno-lint-ignore no-explicit-any
      s = s._zod.def.options.find((o: any) => o.shape?.kind?._zod?.def?.values?.includes(kind));
    }
    if (i === path.length) break;
    const k = path[i];
    if (s?._zod?.def?.type === "array") s = s._zod.def.element;
    else s = s?.shape?.[k as string];
  }
  return s?.shape ? Object.keys(s.shape) : [];
}

/** One line for a schema issue: the key (and its flag), what is allowed there, what was given. */
export function describeIssue(
  issue: z.core.$ZodIssue,
  value: unknown,
  fromFlag: Map<string, string>,
): string {
  const at = issue.path.map(String).join(".");
  const flag = fromFlag.get(at);
  const where = (clip(at, 80) || "(top level)") + (flag ? ` (from ${flag})` : "");
  const got = getPath(value, issue.path);
  const gotText = shown(got);
  switch (issue.code) {
    case "unrecognized_keys": {
      const allowed = allowedKeys(issue.path, value);
      const key = issue.keys[0];
      const guess = key.length <= 100 ? closest(key, allowed) : null;
      const prefix = clip(at ? `${at}.${key}` : key);
      const more = issue.keys.length > 1 ? ` (and ${issue.keys.length - 1} more)` : "";
      return `unknown key ${JSON.stringify(prefix)}${more}` +
        (guess ? ` (did you mean "${guess}"?)` : "") + `; allowed here: ${allowed.join(", ")}`;
    }
    case "invalid_type":
      if (got === undefined) return `${where} is missing (expected ${issue.expected})`;
      return `${where} must be ${
        issue.expected === "int" ? "an integer" : `a ${issue.expected}`
      }, got ${gotText}`;
    case "invalid_value":
      return `${where} must be one of ${
        issue.values.map((v) => JSON.stringify(v)).join(", ")
      }, got ${gotText}`;
    case "invalid_union":
      if ("discriminator" in issue && issue.discriminator) {
        const options = (issue as unknown as { options: unknown[] }).options;
        return `${where} must be one of ${
          options.map((v) => JSON.stringify(v)).join(", ")
        }, got ${gotText}`;
      }
      return `${where} has an unexpected shape (${gotText})`;
    case "too_small":
    case "too_big": {
      const { op, bound } = boundOf(issue);
      if (issue.origin === "array") {
        return `${where} must have ${op} ${bound} entries, got ${gotText}`;
      }
      if (issue.origin === "string") return `${where} must have ${op} ${bound} characters`;
      return `${where} must be ${op} ${bound}, got ${gotText}`;
    }
    case "invalid_format":
      return `${where} has an invalid format (${gotText}): use letters, digits, ".", "_" and "-"`;
    default:
      return `${where}: ${clip(issue.message, 80)}`;
  }
}

/** The candidate nearest to `word` by edit distance, if close enough to be a likely typo. */
export function closest(word: string, candidates: string[]): string | null {
  let best: string | null = null, bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

/** The Levenshtein distance between `a` and `b` (insertions, deletions, substitutions). */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = t;
    }
  }
  return prev[b.length];
}

/** The comparison a too_small or too_big issue asks for, as text (`>=`, `<`…), and its bound. */
export function boundOf(
  issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig,
): { op: string; bound: unknown } {
  return issue.code === "too_small"
    ? { op: issue.inclusive ? ">=" : ">", bound: issue.minimum }
    : { op: issue.inclusive ? "<=" : "<", bound: issue.maximum };
}
