/**
 * Finding the CIFAR-10 directory: `--data DIR`, `$CIFAR10_DIR`, `./data/cifar-10` or the user
 * cache, and the one-line messages for a directory that is missing, a file, unreadable or
 * without the data.
 *
 * @module
 */

import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { UserError } from "../errors.ts";
import { pathKind } from "./files.ts";

/** The per-user cache directory for the data: `$XDG_CACHE_HOME/webgpu-mlp/cifar-10` or `~/.cache/...`. */
export function userCacheDataDir(): string {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const base = xdg && xdg.startsWith("/") ? xdg : join(homedir(), ".cache");
  return join(base, "webgpu-mlp", "cifar-10");
}

/** Whether `dir` holds a `data_batch_1.bin` file (a loop or permission problem throws). */
function hasData(dir: string, instead: string): boolean {
  const file = join(dir, "data_batch_1.bin");
  return pathKind(file, `CIFAR-10 batch file ${file}`, instead) === "file";
}

/**
 * Find the CIFAR-10 directory (returned as an absolute path). A given `flag` (or the env
 * `CIFAR10_DIR`, if set) must be a directory holding `data_batch_1.bin`; otherwise the first of
 * `./data/cifar-10` and {@link userCacheDataDir} that holds it. A path that cannot be read (a
 * symbolic link loop, a permission problem) or a file where the directory should be is a
 * one-line {@link UserError} naming the path and what to do.
 */
export function resolveDataDir(flag?: string): string {
  const explicit: [string | undefined, string][] = [
    [flag, "--data"],
    [Deno.env.get("CIFAR10_DIR") || undefined, "CIFAR10_DIR"],
  ];
  for (const [dir, source] of explicit) {
    if (dir === undefined) continue;
    const abs = resolve(dir);
    const named = `data directory ${abs} (from ${source})`;
    const instead = source === "--data"
      ? "pass --data the directory that holds data_batch_1.bin"
      : "set CIFAR10_DIR to the directory that holds data_batch_1.bin";
    const kind = pathKind(abs, named, instead);
    if (kind === "missing") {
      throw new UserError(
        `${named} not found: pass --data DIR, set CIFAR10_DIR, or run \`deno task data\``,
      );
    }
    if (kind === "file") {
      throw new UserError(
        `${named} is a file, not a directory: ${instead} (an archive is installed by ` +
          "`deno task data --from FILE`)",
      );
    }
    if (!hasData(abs, instead)) {
      throw new UserError(
        `${named} has no data_batch_1.bin: point it at the ` +
          "cifar-10-batches-bin contents, or run `deno task data`",
      );
    }
    return abs;
  }
  const tried = [resolve("data/cifar-10"), userCacheDataDir()];
  const instead = "pass --data DIR or set CIFAR10_DIR to a readable copy";
  for (const dir of tried) if (hasData(dir, instead)) return dir;
  throw new UserError(
    `CIFAR-10 not found (tried ${tried.join(", ")}): run \`deno task data\`, ` +
      "pass --data DIR, or set CIFAR10_DIR",
  );
}

/**
 * Check that a given data directory (one {@link resolveDataDir} did not find) is a readable
 * directory; a missing path or a file is a one-line {@link UserError}.
 */
export function checkDataDir(dir: string): void {
  const kind = pathKind(dir, `data directory ${dir}`, "pass --data DIR of a readable copy");
  if (kind === "missing") {
    throw new UserError(
      `data directory ${dir} not found: pass --data DIR, set CIFAR10_DIR, or run \`deno task data\``,
    );
  }
  if (kind === "file") {
    throw new UserError(
      `data directory ${dir} is a file, not a directory: pass --data the directory that holds ` +
        "data_batch_1.bin",
    );
  }
}
