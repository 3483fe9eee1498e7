/**
 * Shared CLI plumbing: {@link runMain} turns a {@link UserError} into one `error: ...` line and an
 * exit code (anything else is a bug: stack trace, exit 2), and {@link parseFlags} wraps
 * `node:util` parseArgs so that bad flags become one-line user errors.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { UserError } from "../errors.ts";

/** Exit code for unexpected errors (bugs), as opposed to a {@link UserError}'s code. */
export const BUG_EXIT_CODE = 2;

/** One line of text: runs of whitespace (newlines included) collapsed to single spaces. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** The longest error line {@link runMain} prints (after `error: `). */
export const MAX_MESSAGE_CHARS = 400;

/**
 * A message cut to at most `max` characters (by default {@link MAX_MESSAGE_CHARS}): a longer one
 * keeps its start and its end (where the hint on what to do usually is) around " … ".
 */
export function clipMessage(text: string, max = MAX_MESSAGE_CHARS): string {
  if (text.length <= max) return text;
  const tail = Math.floor(max / 4), head = max - tail - 3;
  return `${text.slice(0, head)} … ${text.slice(text.length - tail)}`;
}

/**
 * Run a CLI's body. A {@link UserError} prints `error: <message>` on stderr (one line of at most
 * {@link MAX_MESSAGE_CHARS} characters, no stack) and exits with its exit code; any other error
 * prints its stack and exits with 2.
 */
export async function runMain(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof UserError) {
      console.error(`error: ${clipMessage(oneLine(e.message))}`);
      Deno.exit(e.exitCode);
    }
    console.error(e instanceof Error ? (e.stack ?? String(e)) : e);
    Deno.exit(BUG_EXIT_CODE);
  }
}

/** Parsed flags: the values by option name and the positional arguments. */
export interface ParsedFlags {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

function flagList(options: ParseArgsOptionsConfig): string {
  return Object.keys(options).map((k) => `--${k}`).join(", ");
}

function toUserError(e: unknown, options: ParseArgsOptionsConfig): unknown {
  const code = (e as { code?: string }).code;
  const message = e instanceof Error ? e.message : String(e);
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? "";
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return new UserError(`unknown flag ${quoted} (allowed: ${flagList(options)})`);
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return new UserError(
        `unexpected argument '${quoted}': this command takes only flags (${flagList(options)})`,
      );
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      // `quoted` is like "--dest <value>" or "-h, --help": keep the long name.
      const flag = /--[\w-]+/.exec(quoted)?.[0] ?? quoted;
      if (/does not take an argument/.test(message)) {
        return new UserError(`flag ${flag} does not take a value`);
      }
      return new UserError(
        `flag ${flag} needs a value (write ${flag}=VALUE if the value starts with -)`,
      );
    }
    default:
      return e;
  }
}

/**
 * Parse command-line flags strictly with `node:util` parseArgs; problems (unknown flag, missing
 * value, stray positional, a single-valued flag given twice) throw a one-line {@link UserError}.
 */
export function parseFlags(
  args: string[],
  options: ParseArgsOptionsConfig,
  config: { allowPositionals?: boolean } = {},
): ParsedFlags {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals: config.allowPositionals ?? false,
      tokens: true,
    });
  } catch (e) {
    throw toUserError(e, options);
  }
  const seen = new Set<string>();
  for (const t of parsed.tokens ?? []) {
    if (t.kind !== "option") continue;
    if (seen.has(t.name) && !options[t.name]?.multiple) {
      throw new UserError(`flag --${t.name} is given more than once: give it once`);
    }
    seen.add(t.name);
  }
  return {
    values: parsed.values as ParsedFlags["values"],
    positionals: parsed.positionals,
  };
}
