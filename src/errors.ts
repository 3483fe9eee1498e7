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
