/**
 * Reading a file that may not be what its name says. A name the tool reads back (`metrics.json`,
 * `progress.jsonl`, a lock, a marker) may be a FIFO (opening it blocks until a writer comes), a
 * device (`/dev/zero` never ends), a symbolic link to anywhere, or a file far larger than the tool
 * ever writes. {@link readRegularSync} opens without blocking (`O_NONBLOCK`), optionally without
 * following a final symbolic link (`O_NOFOLLOW`), checks on the open descriptor that it is a
 * regular file of at most `maxBytes`, and reads no more than the size it found.
 *
 * @module
 */

import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";

/** Why a file was not read. */
export type FileProblemKind = "missing" | "link" | "not-file" | "too-big" | "unreadable";

/** A file that could not be read as a regular file of bounded size; `message` is one line. */
export class FileProblem extends Error {
  /** What was wrong. */
  readonly kind: FileProblemKind;
  constructor(kind: FileProblemKind, message: string) {
    super(message);
    this.name = "FileProblem";
    this.kind = kind;
  }
}

/** Options of {@link readRegularSync}. */
export interface RegularReadOptions {
  /** Refuse a file larger than this many bytes. */
  maxBytes: number;
  /** Follow a symbolic link at the last component of the path (default false). */
  followLinks?: boolean;
  /** Read from this byte on (default 0): what a file that only grows has gained since. */
  from?: number;
  /** Read at most this many bytes (a larger file is then not refused: its start is read). */
  head?: number;
}

/** The most this tool reads of one of its own record files (metrics.json, a progress log, …). */
export const MAX_RECORD_BYTES = 256 << 20;

/** The most this tool reads of one of its own small files (a marker, a lock). */
export const MAX_SMALL_BYTES = 64 << 10;

function mib(bytes: number): string {
  return bytes >= 1 << 20 ? `${Math.round(bytes / (1 << 20))} MiB` : `${bytes} bytes`;
}

/**
 * The bytes of the regular file at `path`, read without ever blocking on a FIFO or reading a
 * device; throws a {@link FileProblem} (one-line message naming `path`) for anything else: a
 * missing file, a symbolic link (unless `followLinks`), a FIFO, socket, device or directory, a
 * file over `maxBytes`, or a read error. A file growing while it is read is read up to the size
 * it had when opened (from `from`, when given).
 */
export function readRegularSync(path: string, opts: RegularReadOptions): Uint8Array {
  const flags = constants.O_RDONLY | constants.O_NONBLOCK |
    (opts.followLinks ? 0 : constants.O_NOFOLLOW);
  let fd: number;
  try {
    fd = openSync(path, flags);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      throw new FileProblem("missing", `${path}: not found`);
    }
    if (code === "ELOOP" && !opts.followLinks) {
      throw new FileProblem("link", `${path} is a symbolic link, which is not read`);
    }
    throw new FileProblem("unreadable", `${path}: cannot open (${firstLine(e)})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      const what = st.isFIFO()
        ? "a FIFO"
        : st.isDirectory()
        ? "a directory"
        : st.isSocket()
        ? "a socket"
        : "a device";
      throw new FileProblem("not-file", `${path} is ${what}, not a regular file`);
    }
    if (opts.head === undefined && st.size > opts.maxBytes) {
      throw new FileProblem(
        "too-big",
        `${path} holds ${mib(st.size)}, more than the ${mib(opts.maxBytes)} this tool reads`,
      );
    }
    const from = Math.min(opts.from ?? 0, st.size);
    const buf = new Uint8Array(Math.min(st.size - from, opts.head ?? Infinity));
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, from + off);
      if (n === 0) break;
      off += n;
    }
    return off === buf.length ? buf : buf.subarray(0, off);
  } catch (e) {
    if (e instanceof FileProblem) throw e;
    throw new FileProblem("unreadable", `${path}: cannot read (${firstLine(e)})`);
  } finally {
    closeSync(fd);
  }
}

/** {@link readRegularSync} as UTF-8 text (malformed bytes become U+FFFD). */
export function readRegularTextSync(path: string, opts: RegularReadOptions): string {
  return new TextDecoder().decode(readRegularSync(path, opts));
}

/** {@link readRegularTextSync}, or null for any {@link FileProblem}. */
export function readRegularTextOrNull(path: string, opts: RegularReadOptions): string | null {
  try {
    return readRegularTextSync(path, opts);
  } catch (e) {
    if (e instanceof FileProblem) return null;
    throw e;
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}
