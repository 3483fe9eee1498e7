/**
 * `deno task data [--dest DIR] [--from FILE.tar.gz] [--url URL] [--md5 HEX]`: download the
 * CIFAR-10 binary archive (or take a local copy), verify it and install it in `--dest`
 * (default: the per-user cache directory, where the trainer finds it automatically).
 *
 * @module
 */

import { resolve } from "node:path";
import { resolveDataDir, userCacheDataDir } from "../data/data_dir.ts";
import { CIFAR10_MD5, CIFAR10_URL, downloadCifar10 } from "../data/download.ts";
import { UserError } from "../errors.ts";
import { parseFlags, runMain } from "./main.ts";

/** Usage text of the command. */
export const USAGE =
  `usage: deno task data [--dest DIR] [--from FILE.tar.gz] [--url URL] [--md5 HEX]

Download CIFAR-10 (binary version), verify its MD5 and install it in DIR.

  --dest DIR          where the files go (default: ${userCacheDataDir()})
  --from FILE.tar.gz  use a local copy of cifar-10-binary.tar.gz instead of downloading
  --url URL           download from URL (default: ${CIFAR10_URL})
  --md5 HEX           expected MD5 of the archive (default: ${CIFAR10_MD5})
  -h, --help          show this help`;

const MB = 1024 * 1024;

function mb(bytes: number): string {
  return (bytes / MB).toFixed(1);
}

/** A progress reporter: one rewritten line on a terminal, a few plain lines otherwise. */
function progressPrinter(verb: string): {
  onProgress: (done: number, total: number | null) => void;
  finish: () => void;
} {
  const tty = Deno.stderr.isTerminal();
  const encoder = new TextEncoder();
  let lastTime = 0;
  let lastStep = -1;
  let drawn = false;
  const line = (done: number, total: number | null) =>
    total === null
      ? `${verb} ${mb(done)} MB`
      : `${verb} ${mb(done)} / ${mb(total)} MB (${Math.floor((100 * done) / total)}%)`;
  return {
    onProgress(done, total) {
      if (tty) {
        const now = Date.now();
        if (now - lastTime < 100 && done !== total) return;
        lastTime = now;
        Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${line(done, total)}`));
        drawn = true;
      } else {
        // Every 25% when the size is known, every 50 MB otherwise.
        const step = total === null ? Math.floor(done / (50 * MB)) : Math.floor((4 * done) / total);
        if (step === lastStep) return;
        lastStep = step;
        console.error(line(done, total));
      }
    },
    finish() {
      if (drawn) Deno.stderr.writeSync(encoder.encode("\n"));
      drawn = false;
    },
  };
}

/** Run the command with the given arguments. */
export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    dest: { type: "string" },
    from: { type: "string" },
    url: { type: "string" },
    md5: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const from = values.from as string | undefined;
  const url = values.url as string | undefined;
  if (from !== undefined && url !== undefined) {
    throw new UserError("--from and --url exclude each other: give one of them");
  }
  const dest = resolve((values.dest as string | undefined) ?? userCacheDataDir());

  const controller = new AbortController();
  const onSigint = () => controller.abort();
  Deno.addSignalListener("SIGINT", onSigint);
  const progress = progressPrinter(from !== undefined ? "verifying" : "downloading");
  let dir: string;
  try {
    dir = await downloadCifar10({
      dest,
      from,
      url,
      md5: values.md5 as string | undefined,
      onProgress: progress.onProgress,
      onInfo: (line) => {
        progress.finish();
        console.error(line);
      },
      signal: controller.signal,
    });
  } finally {
    progress.finish();
    Deno.removeSignalListener("SIGINT", onSigint);
  }

  console.log(`CIFAR-10 is in ${dir}`);
  let found: string | null = null;
  try {
    found = resolveDataDir();
  } catch {
    // not found automatically (e.g. CIFAR10_DIR points elsewhere): explained below
  }
  if (found === dir) {
    console.log("deno task train finds it automatically (or pass --data DIR / set CIFAR10_DIR).");
  } else {
    console.log(`use it with: CIFAR10_DIR=${dir} deno task train ...  (or --data ${dir})`);
  }
}

if (import.meta.main) runMain(() => main(Deno.args));
