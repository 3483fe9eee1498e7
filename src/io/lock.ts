/**
 * Directory locks: a run or sweep directory belongs to one process at a time. The lock is a file
 * created exclusively (`createNew`), holding the owner's pid, host and process start time, and
 * touched every {@link HEARTBEAT_SECONDS} while the owner lives.
 *
 * A lock is stale when its owner is gone: on the same host, no process with that pid and start
 * time exists; on another host (a shared filesystem), its heartbeat is older than
 * {@link STALE_SECONDS}. A stale lock is taken over with a message; a live one refuses the second
 * process with one line naming the owner.
 *
 * @module
 */

import { dirname } from "node:path";
import { UserError } from "../errors.ts";
import { MAX_SMALL_BYTES, readRegularTextOrNull } from "./regular.ts";

/** Seconds between two touches of a held lock. */
export const HEARTBEAT_SECONDS = 20;
/** A lock of another host whose heartbeat is older than this is stale. */
export const STALE_SECONDS = 120;

/** What a lock file holds. */
export interface LockInfo {
  /** Format tag. */
  format: "webgpu-mlp.lock/1";
  /** Process id of the owner. */
  pid: number;
  /** Host name of the owner. */
  host: string;
  /** The owner's process start time (Linux: clock ticks since boot; else null). */
  start: string | null;
  /** The owner's pid namespace (Linux: `/proc/self/ns/pid`; else null): pids of others mean nothing. */
  ns?: string | null;
  /** When the lock was taken (ISO 8601). */
  since: string;
  /** What the owner is doing, for the message a second process gets. */
  what: string;
}

/** A held lock. */
export interface Lock {
  /** The lock file. */
  readonly path: string;
  /** Remove the lock file (only if it is still ours) and stop the heartbeat. */
  release(): Promise<void>;
}

function processStart(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // the command name (field 2) is parenthesised and may hold spaces: split after its ")"
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

function pidNamespace(): string | null {
  try {
    return Deno.readLinkSync("/proc/self/ns/pid");
  } catch {
    return null;
  }
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/** The lock's contents, or null: a FIFO, device, link or huge file named like a lock is not read. */
function readLock(path: string): LockInfo | null {
  const text = readRegularTextOrNull(path, { maxBytes: MAX_SMALL_BYTES });
  if (text === null) return null;
  try {
    const info = JSON.parse(text);
    return info?.format === "webgpu-mlp.lock/1" ? info : null;
  } catch {
    return null;
  }
}

/** How every lock file starts (`JSON.stringify` keeps the key order of {@link LockInfo}). */
const LOCK_START = '{"format":"webgpu-mlp.lock/1"';

/**
 * Why the entry at a lock's path is not the tool's lock, or null when it is one: a lock, or one
 * whose writing was cut short (empty, or the start of a lock's text). A directory, a link, a
 * device or a file of other text — `poetry.lock`, `deno.lock`, a user's `data.lock/` — is somebody
 * else's, and the tool never takes it over (it would delete it).
 */
function foreignLock(path: string): string | null {
  let st: Deno.FileInfo;
  try {
    st = Deno.lstatSync(path);
  } catch {
    return null; // gone: the next attempt creates it
  }
  if (st.isSymlink) return "a symbolic link";
  if (st.isDirectory) return "a directory";
  if (!st.isFile) return "not a regular file";
  const text = readRegularTextOrNull(path, { maxBytes: MAX_SMALL_BYTES });
  if (text === null) return "a file larger than a lock";
  return text.startsWith(LOCK_START) || LOCK_START.startsWith(text)
    ? null
    : "a file that is not a lock of this tool";
}

/** Why the lock at `path` is stale, or null when its owner may be alive. */
function staleness(path: string, info: LockInfo | null): string | null {
  let age = 0;
  try {
    age = (Date.now() - (Deno.statSync(path).mtime?.getTime() ?? Date.now())) / 1000;
  } catch {
    return "it is gone";
  }
  if (!info) {
    // a lock being written right now is empty for a moment: only an old one is damaged (its
    // writer was killed between creating and filling it)
    return age > 10 ? "it is damaged" : null;
  }
  const ns = pidNamespace();
  if (info.host === hostname() && Deno.build.os === "linux" && ns !== null && info.ns === ns) {
    const start = processStart(info.pid);
    if (start === null) return `process ${info.pid} is no longer running`;
    if (info.start !== null && start !== info.start) {
      return `process ${info.pid} is no longer running (its pid was reused)`;
    }
    return null;
  }
  if (age > STALE_SECONDS) {
    return `its heartbeat is ${Math.round(age)} s old (more than ${STALE_SECONDS} s)`;
  }
  return null;
}

/** The owner of the lock at `path` when it is held by a live process (else null). */
export function liveOwner(path: string): LockInfo | null {
  const info = readLock(path);
  if (!info || staleness(path, info) !== null) return null;
  return info;
}

/**
 * Take the lock at `path` for this process, taking over a stale one (saying so through `log`);
 * a live owner makes it a {@link UserError}. `what` describes the work ("training runs/x").
 */
export async function acquireLock(
  path: string,
  what: string,
  log: (line: string) => void = (l) => console.error(l),
): Promise<Lock> {
  const mine: LockInfo = {
    format: "webgpu-mlp.lock/1",
    pid: Deno.pid,
    host: hostname(),
    start: processStart(Deno.pid),
    ns: pidNamespace(),
    since: new Date().toISOString(),
    what,
  };
  const text = JSON.stringify(mine) + "\n";
  try {
    await Deno.mkdir(dirname(path), { recursive: true });
  } catch (e) {
    throw new UserError(`cannot create ${dirname(path)} for the lock: ${(e as Error).message}`);
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const f = await Deno.open(path, { write: true, createNew: true });
      try {
        await f.write(new TextEncoder().encode(text));
      } finally {
        f.close();
      }
      return held(path, text);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) {
        throw new UserError(`cannot create the lock ${path}: ${(e as Error).message}`);
      }
    }
    const info = readLock(path);
    // a lock of the tool is what it reads; anything else is looked at closer
    const foreign = info ? null : foreignLock(path);
    if (foreign !== null) {
      throw new UserError(
        `${path} is ${foreign}, in the way of the lock and not written by this tool, so it is ` +
          "left alone: move it away, or use another --name or --out",
      );
    }
    const why = staleness(path, info);
    if (why === null) {
      const who = info
        ? `process ${info.pid} on ${info.host} (${info.what}, since ${info.since})`
        : "another process";
      throw new UserError(
        `${path} is held by ${who}: wait for it to finish, or use another --name; ` +
          `if that process is gone for sure, delete ${path}`,
      );
    }
    // take over: move the stale file aside, then check that what moved is what was judged stale
    const aside = `${path}.stale-${Deno.pid}`;
    try {
      await Deno.rename(path, aside);
    } catch {
      continue; // someone else took it over first: look again
    }
    const moved = readLock(aside);
    if (JSON.stringify(moved) !== JSON.stringify(info)) {
      await Deno.rename(aside, path).catch(() => {});
      continue;
    }
    await Deno.remove(aside).catch(() => {});
    log(
      `taking over the stale lock ${path}` +
        (info ? ` of process ${info.pid} on ${info.host}` : "") + `: ${why}`,
    );
  }
  throw new UserError(`${path} keeps changing hands: another process is starting on it too`);
}

function held(path: string, text: string): Lock {
  const timer = setInterval(() => {
    try {
      const now = new Date();
      Deno.utimeSync(path, now, now);
    } catch {
      // the lock's directory may be gone (a run being committed): nothing to touch
    }
  }, HEARTBEAT_SECONDS * 1000);
  Deno.unrefTimer(timer);
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      try {
        if ((await Deno.readTextFile(path)) === text) await Deno.remove(path);
      } catch {
        // already gone
      }
    },
  };
}
