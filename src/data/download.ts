/**
 * Download (or take a local copy of) the official `cifar-10-binary.tar.gz`, verify its MD5,
 * extract it and move `cifar-10-batches-bin/` into place atomically.
 *
 * Everything is staged in a temporary directory beside `dest` (same filesystem), and the finished
 * directory is renamed into place in one step: `dest` is never half-written, and on any failure
 * the temporary files are removed and `dest` is left as it was.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import * as tar from "tar";
import { UserError } from "../errors.ts";
import { nearestExisting } from "../io/exists.ts";

/** Where the official archive is downloaded from. */
export const CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/** MD5 of the official archive, as published on the CIFAR-10 page. */
export const CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530";
/** The directory inside the archive that holds the data. */
export const ARCHIVE_DIR = "cifar-10-batches-bin";
/** The files a complete copy holds, with their exact sizes in bytes (null: any size). */
export const EXPECTED_FILES: Readonly<Record<string, number | null>> = {
  "data_batch_1.bin": 30730000,
  "data_batch_2.bin": 30730000,
  "data_batch_3.bin": 30730000,
  "data_batch_4.bin": 30730000,
  "data_batch_5.bin": 30730000,
  "test_batch.bin": 30730000,
  "batches.meta.txt": null,
};

/** Options of {@link downloadCifar10}. */
export interface DownloadOptions {
  /** Directory that receives the files of `cifar-10-batches-bin/`. */
  dest: string;
  /** Archive URL (default {@link CIFAR10_URL}). */
  url?: string;
  /** Expected MD5 of the archive, hex (default {@link CIFAR10_MD5}). */
  md5?: string;
  /** A local `.tar.gz` to use instead of downloading. */
  from?: string;
  /** Called as bytes are downloaded (or read, with `from`); `total` is null when unknown. */
  onProgress?: (done: number, total: number | null) => void;
  /** Called with one-line notes, e.g. that `dest` already holds a complete copy. */
  onInfo?: (line: string) => void;
  /** Aborts the download; the temporary files are removed. */
  signal?: AbortSignal;
}

function flat(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** An error's message, followed by those of its causes (fetch puts the reason in `cause`). */
function errorText(e: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = e; c !== undefined && parts.length < 4;) {
    const text = flat(c instanceof Error ? c.message : String(c));
    if (text !== "" && !parts.some((p) => p.includes(text))) parts.push(text);
    c = c instanceof Error ? c.cause : undefined;
  }
  return parts.join(": ");
}

/**
 * Check that `dir` holds a complete copy (every file of {@link EXPECTED_FILES} with its size).
 * Returns null when it does, or a short description of the first problem.
 */
export async function checkCifar10Dir(dir: string): Promise<string | null> {
  for (const [name, size] of Object.entries(EXPECTED_FILES)) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(join(dir, name));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
        return `${name} is missing`;
      }
      throw e;
    }
    if (!info.isFile) return `${name} is not a file`;
    if (size !== null && info.size !== size) {
      return `${name} is ${info.size} bytes, expected ${size}`;
    }
  }
  return null;
}

async function isEmptyDir(dir: string): Promise<boolean> {
  for await (const _ of Deno.readDir(dir)) return false;
  return true;
}

function interrupted(): UserError {
  return new UserError("download interrupted: nothing was written; run the command again", 130);
}

/** Copy `body` into a new file at `path`, hashing it; returns the MD5 hex and the byte count. */
async function saveHashed(
  body: ReadableStream<Uint8Array>,
  path: string,
  total: number | null,
  onProgress?: (done: number, total: number | null) => void,
): Promise<{ md5: string; bytes: number }> {
  const hash = createHash("md5");
  let done = 0;
  const file = await Deno.open(path, { write: true, createNew: true });
  await body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        hash.update(chunk);
        done += chunk.length;
        onProgress?.(done, total);
        controller.enqueue(chunk);
      },
    }),
  ).pipeTo(file.writable);
  return { md5: hash.digest("hex"), bytes: done };
}

/** Hash a local file (streaming), reporting progress. */
async function hashFile(
  path: string,
  onProgress?: (done: number, total: number | null) => void,
): Promise<string> {
  const total = (await Deno.stat(path)).size;
  const hash = createHash("md5");
  let done = 0;
  const file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) {
    hash.update(chunk);
    done += chunk.length;
    onProgress?.(done, total);
  }
  return hash.digest("hex");
}

/** Fetch `url` into `path`; returns the MD5 of what was received. */
async function fetchTo(
  url: string,
  path: string,
  opts: DownloadOptions,
): Promise<string> {
  const hint = "check the URL and the network connection, or pass --from FILE.tar.gz";
  let res: Response;
  try {
    // identity: keep the bytes as sent even if the server labels the .tar.gz with
    // `Content-Encoding: gzip` (fetch would otherwise gunzip it and the MD5 would not match).
    res = await fetch(url, { signal: opts.signal, headers: { "accept-encoding": "identity" } });
  } catch (e) {
    if (opts.signal?.aborted) throw interrupted();
    throw new UserError(`could not download ${url}: ${errorText(e)}; ${hint}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new UserError(
      `download of ${url} failed: HTTP ${res.status} ${flat(res.statusText)}; ${hint}`,
    );
  }
  if (res.body === null) throw new UserError(`download of ${url} returned no data; ${hint}`);
  const length = Number(res.headers.get("content-length"));
  const total = Number.isFinite(length) && length > 0 ? length : null;
  let got: { md5: string; bytes: number };
  try {
    got = await saveHashed(res.body, path, total, opts.onProgress);
  } catch (e) {
    if (opts.signal?.aborted) throw interrupted();
    throw new UserError(`download of ${url} broke off: ${errorText(e)}; ${hint}`);
  }
  if (total !== null && got.bytes !== total) {
    throw new UserError(
      `download of ${url} ended after ${got.bytes} of ${total} bytes; run the command again`,
    );
  }
  return got.md5;
}

/**
 * Download (or read `from`) the CIFAR-10 binary archive, verify its MD5, extract it and move
 * the files of `cifar-10-batches-bin/` into `dest` atomically. If `dest` already holds a
 * complete copy, it says so through `onInfo` and does nothing. Returns `dest` (absolute).
 */
export async function downloadCifar10(opts: DownloadOptions): Promise<string> {
  const url = opts.url ?? CIFAR10_URL;
  const expectedMd5 = (opts.md5 ?? CIFAR10_MD5).toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(expectedMd5)) {
    throw new UserError(`--md5 ${opts.md5} is not an MD5 checksum: give 32 hex digits`);
  }
  const dest = resolve(opts.dest);

  // Look at dest first: a complete copy means nothing to do, anything else but absent/empty is
  // left alone.
  let destExists = false;
  try {
    const info = await Deno.stat(dest);
    if (!info.isDirectory) {
      throw new UserError(`${dest} exists and is not a directory: pass --dest DIR`);
    }
    destExists = true;
  } catch (e) {
    if (e instanceof UserError) throw e;
    if (e instanceof Deno.errors.NotADirectory) {
      throw new UserError(
        `--dest ${dest}: ${fileOnTheWay(dest)} is a file, not a directory: pass --dest DIR`,
      );
    }
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new UserError(`--dest ${dest} cannot be inspected (${errorText(e)}): pass --dest DIR`);
    }
  }
  if (destExists) {
    const problem = await checkCifar10Dir(dest);
    if (problem === null) {
      opts.onInfo?.(`${dest} already holds a complete CIFAR-10 copy: nothing to do`);
      return dest;
    }
    if (!(await isEmptyDir(dest))) {
      throw new UserError(
        `${dest} exists but is not a complete CIFAR-10 copy (${problem}): ` +
          "remove it or pass --dest DIR",
      );
    }
  }

  let from: string | undefined;
  if (opts.from !== undefined) {
    from = resolve(opts.from);
    let info: Deno.FileInfo | undefined;
    try {
      info = await Deno.stat(from);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory)) {
        throw new UserError(
          `archive ${from} cannot be read (${errorText(e)}): pass --from FILE.tar.gz`,
        );
      }
    }
    if (!info) {
      throw new UserError(`archive ${from} not found: pass --from FILE.tar.gz, or leave it out`);
    }
    if (!info.isFile) {
      const what = info.isDirectory ? "a directory" : "not a regular file (a device or a FIFO?)";
      throw new UserError(`archive ${from} is ${what}: pass --from FILE.tar.gz`);
    }
  }

  // the folders above dest that are missing: made now, removed again if the install fails
  const parent = dirname(dest);
  const made = missingFoldersOf(parent);
  let tmp: string;
  try {
    await Deno.mkdir(parent, { recursive: true });
    tmp = join(parent, `.${basename(dest)}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
    await Deno.mkdir(tmp);
  } catch (e) {
    await removeEmpty(made);
    throw new UserError(`--dest ${dest} cannot be made (${errorText(e)}): pass --dest DIR`);
  }
  if (from === undefined) opts.onInfo?.(`downloading ${url}`);
  let installed = false;
  try {
    const source = from ?? url;
    let archive: string;
    let md5: string;
    if (from !== undefined) {
      archive = from;
      md5 = await hashFile(from, opts.onProgress);
    } else {
      archive = join(tmp, "cifar-10-binary.tar.gz");
      md5 = await fetchTo(url, archive, opts);
    }
    if (opts.signal?.aborted) throw interrupted();
    if (md5 !== expectedMd5) {
      const what = from === undefined ? "the download" : "the file";
      const fix = from === undefined ? "run the command again" : "download it again";
      throw new UserError(
        `MD5 of ${source} is ${md5}, expected ${expectedMd5}: ${what} is corrupt or not ` +
          `the official cifar-10-binary.tar.gz; ${fix}`,
      );
    }

    opts.onInfo?.(`extracting ${source}`);
    const out = join(tmp, "extract");
    await Deno.mkdir(out);
    try {
      await tar.x({
        file: archive,
        cwd: out,
        strict: true,
        // the archive's own files and folders only: never a link (to anywhere) or a device
        filter: (p: string, entry: unknown) =>
          p.replace(/^\.\//, "").split("/")[0] === ARCHIVE_DIR &&
          ["File", "OldFile", "Directory"].includes((entry as { type?: string }).type ?? ""),
      });
    } catch (e) {
      throw new UserError(`could not extract ${source}: ${errorText(e)}; not a valid .tar.gz`);
    }
    const extracted = join(out, ARCHIVE_DIR);
    const problem = await checkCifar10Dir(extracted);
    if (problem !== null) {
      throw new UserError(
        `${source} is not the CIFAR-10 binary archive: in its ${ARCHIVE_DIR}/, ${problem}`,
      );
    }
    if (opts.signal?.aborted) throw interrupted();

    try {
      await Deno.rename(extracted, dest); // replaces dest only if it is absent or empty
    } catch (e) {
      if ((await checkCifar10Dir(dest).catch(() => "unreadable")) === null) {
        opts.onInfo?.(`${dest} already holds a complete CIFAR-10 copy: nothing to do`);
        return dest;
      }
      throw new UserError(`could not move the data into ${dest}: ${errorText(e)}`);
    }
    installed = true;
    return dest;
  } finally {
    await removeTemporary(tmp);
    if (!installed) await removeEmpty(made);
  }
}

/** The file in the way of `path` (a file where one of its folders should be), else a phrase. */
function fileOnTheWay(path: string): string {
  try {
    const { at, info } = nearestExisting(path);
    return info.isDirectory ? "a part of the path" : at;
  } catch {
    return "a part of the path";
  }
}

/** The folders of `dir` and above it that do not exist yet, deepest first. */
function missingFoldersOf(dir: string): string[] {
  try {
    return nearestExisting(dir).missing;
  } catch {
    return []; // the mkdir that follows says what is wrong
  }
}

/** Remove the folders the install made (deepest first), each only while it is empty. */
async function removeEmpty(folders: string[]): Promise<void> {
  for (const f of folders) {
    try {
      await Deno.remove(f); // not recursive: a folder somebody has put something in stays
    } catch {
      return;
    }
  }
}

/**
 * Remove the install's temporary directory. An extraction that failed may still be writing into
 * it for a moment (tar rejects on the first bad entry while its writes finish), so a removal that
 * leaves it behind is tried again.
 */
async function removeTemporary(tmp: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    try {
      await Deno.lstat(tmp);
    } catch {
      return; // gone
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
