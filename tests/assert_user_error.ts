/** Shared assertion for the one-line errors the user sees. */

import assert from "node:assert/strict";
import { UserError } from "../src/errors.ts";

/**
 * Assert that `fn` throws (or rejects with) a one-line {@link UserError} whose message matches
 * `pattern`; returns the error for further checks.
 */
export async function assertUserError(fn: () => unknown, pattern: RegExp): Promise<UserError> {
  let error: unknown;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof UserError, `expected a UserError, got ${error}`);
  assert.match(error.message, pattern);
  assert.ok(!error.message.includes("\n"), `message is not one line: ${error.message}`);
  return error;
}
