/**
 * Names become paths (`<out>/<name>/`, `<out>/<name>/<variant>/`), so every name a user gives —
 * a run name from `--name`, the config or the config's file name, a variant's, a sweep stage's —
 * obeys one rule: letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most 100
 * characters, and none of the names the tool gives its own files.
 *
 * @module
 */

import { UserError } from "../errors.ts";

/** The name rule as a regular expression. */
export const NAME_PATTERN: RegExp = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Longest name allowed. */
export const MAX_NAME_LENGTH = 100;

/** Names of the files and directories the tool writes inside run and sweep directories. */
export const RESERVED_NAMES: readonly string[] = [
  "metrics.json",
  "weights.safetensors",
  "report.html",
  "compare.html",
  "final",
  "trials.jsonl",
  "sweep.json",
  "sweep.config.json",
  "snapshot.safetensors",
  "progress.jsonl",
  "population.json",
  "lock",
  "owner.json",
  "curves.csv",
  "trials.csv",
];

/** Suffixes of the tool's own working entries beside a run directory. */
const RESERVED_SUFFIXES = [".partial", ".lock", ".snapshot"];

/** Why `name` breaks the rule, or null when it is fine. */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return "is empty";
  if (name.length > MAX_NAME_LENGTH) return `is longer than ${MAX_NAME_LENGTH} characters`;
  if (!NAME_PATTERN.test(name)) {
    return `is not a valid name: use letters, digits, ".", "_" and "-", starting with a letter or digit`;
  }
  const lower = name.toLowerCase();
  if (
    RESERVED_NAMES.includes(lower) || /^trials\.shard-/.test(lower) ||
    lower.startsWith("events.out.tfevents.")
  ) {
    return `is the name of one of the tool's own files (${RESERVED_NAMES.join(", ")})`;
  }
  const suffix = RESERVED_SUFFIXES.find((x) => lower.endsWith(x));
  if (suffix) return `ends in "${suffix}", which the tool uses for its own working files`;
  if (/\.(tmp|old)-/.test(lower)) return `looks like one of the tool's temporary files`;
  return null;
}

/** Throw a one-line {@link UserError} when `name` breaks the rule; `what` says whose name it is. */
export function checkName(name: string, what: string, fix: string): string {
  const problem = nameProblem(name);
  if (problem) throw new UserError(`${what} "${clipName(name)}" ${problem}: ${fix}`);
  return name;
}

function clipName(name: string): string {
  return name.length > 60 ? `${name.slice(0, 57)}… (${name.length} characters)` : name;
}
