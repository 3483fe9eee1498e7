/**
 * Errors the user can act on. The CLI prints `error: <message>` on one line and exits non-zero;
 * anything else is a bug and keeps its stack trace.
 *
 * @module
 */

/** A problem with the user's input (files, flags, config, environment), explained in one line. */
export class UserError extends Error {
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number;
  /** `message` is the one line the CLI prints after `error: `; `exitCode` defaults to 1. */
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "UserError";
    this.exitCode = exitCode;
  }
}

/**
 * `text` cut to about `max` characters for an error message: a longer text keeps its start, then
 * "…" and its full length, so a huge value never floods the one line the CLI prints.
 */
export function clip(text: string, max = 60): string {
  if (text.length <= max) return text;
  let head = text.slice(0, max);
  // never end on half a surrogate pair
  if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1);
  return `${head}… (${text.length} characters)`;
}

/** A value as JSON for an error message, cut short by {@link clip}. */
export function shown(value: unknown, max = 60): string {
  if (value === undefined) return "nothing";
  // JSON would show these as null: a literal too large for a double (1e400) parses to Infinity
  if (typeof value === "number" && !Number.isFinite(value)) {
    return `${value} (a number too large for a double, like 1e400?)`;
  }
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    return "(a value too deep to show)";
  }
  return clip(text, max);
}
