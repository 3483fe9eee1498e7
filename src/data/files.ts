/**
 * Reading CIFAR-10's files from disk (see `format.ts` for their layout), with a one-line
 * {@link UserError} for each way a path can fail: missing, a directory where a file should be, a
 * symbolic link loop, a permission problem, Deno's own read permission.
 *
 * @module
 */

import { join } from "node:path";
import { UserError } from "../errors.ts";
import { FileProblem, MAX_SMALL_BYTES, readRegularSync } from "../io/regular.ts";
import {
  type Batch,
  type BatchBytes,
  checkBatchBytes,
  HOW_TO_GET,
  META_FILE,
  parseBatch,
  parseClassNames,
} from "./format.ts";

function notFound(path: string, what: string): UserError {
  return new UserError(
    `${what} ${path} not found: pass --data DIR, set CIFAR10_DIR, or run \`deno task data\``,
  );
}

/**
 * The one-line {@link UserError} for a path that exists but cannot be read: a symbolic link loop,
 * a permission problem, Deno's own read permission, or another OS error (in the OS's words).
 * `named` names the path (`data directory /x (from --data)`), `instead` says where else to
 * point. Errors that are not file-system errors are returned unchanged.
 */
function cannotRead(e: unknown, named: string, instead: string): unknown {
  let why: string;
  if (e instanceof Deno.errors.FilesystemLoop) {
    why = "a symbolic link on the way loops (too many levels of symbolic links); " +
      `fix or remove the link, or ${instead}`;
  } else if (e instanceof Deno.errors.PermissionDenied) {
    why = `permission denied; make it readable (chmod u+r, and u+x for directories), or ${instead}`;
  } else if (e instanceof Deno.errors.NotCapable) {
    why = "Deno was not granted read access to it; run with --allow-read (deno task passes -A)";
  } else if (Object.values(Deno.errors).some((c) => e instanceof c)) {
    why = `${(e as Error).message}; ${instead}`;
  } else return e;
  return new UserError(`${named} cannot be read: ${why}`);
}

/**
 * Whether `path` is a directory, something else, or absent. Any other problem throws the
 * one-line error of {@link cannotRead}, naming the path as `named` and suggesting `instead`.
 */
export function pathKind(path: string, named: string, instead: string): "dir" | "file" | "missing" {
  try {
    return Deno.statSync(path).isDirectory ? "dir" : "file";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return "missing";
    }
    throw cannotRead(e, named, instead);
  }
}

/** The error for a failed read of a CIFAR-10 file: a one-line {@link UserError} when it can be. */
function readFailure(e: unknown, path: string, what: string): unknown {
  if (e instanceof Deno.errors.NotFound) return notFound(path, what);
  if (e instanceof Deno.errors.IsADirectory) {
    return new UserError(`${path} is a directory, expected a ${what}`);
  }
  return cannotRead(e, `${what} ${path}`, `pass --data DIR of a readable copy, or ${HOW_TO_GET}`);
}

/** The most bytes read of a batch file: 349 525 images (CIFAR-10's are 30 730 000 bytes each). */
export const MAX_BATCH_BYTES = 1 << 30;

/**
 * The bytes of one of CIFAR-10's files: a regular file (a link to one is followed) of at most
 * `maxBytes`, read without ever blocking on a FIFO or reading a device (`/dev/zero` never ends);
 * anything else is the one-line error of {@link readFailure} or of the file's problem.
 */
function readDataFile(path: string, what: string, maxBytes: number): Uint8Array {
  try {
    Deno.statSync(path); // the OS's own errors first, in their one-line form (loops, permissions)
  } catch (e) {
    throw readFailure(e, path, what);
  }
  try {
    return readRegularSync(path, { maxBytes, followLinks: true });
  } catch (e) {
    if (!(e instanceof FileProblem)) throw e;
    if (e.kind === "missing") throw notFound(path, what);
    throw new UserError(`${what} ${e.message}: pass --data DIR of a copy, or ${HOW_TO_GET}`);
  }
}

/** Read and validate one batch file (exists, size a positive multiple of 3073, labels 0..9). */
export function readBatchFile(path: string): Batch {
  return parseBatch(readDataFile(path, "CIFAR-10 batch file", MAX_BATCH_BYTES), path);
}

/** Read a batch file's raw bytes, validated as {@link readBatchFile} does, without copying them. */
export function readBatchBytes(path: string): Promise<BatchBytes> {
  try {
    const bytes = readDataFile(path, "CIFAR-10 batch file", MAX_BATCH_BYTES);
    return Promise.resolve({ bytes, n: checkBatchBytes(bytes, path) });
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Read the 10 class names from `dir/batches.meta.txt`. */
export function readClassNames(dir: string): string[] {
  const path = join(dir, META_FILE);
  const text = new TextDecoder().decode(readDataFile(path, "class-name file", MAX_SMALL_BYTES));
  return parseClassNames(text, path);
}
