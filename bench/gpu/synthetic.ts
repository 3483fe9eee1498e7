/**
 * Synthetic CIFAR-10: the official binary layout (`data_batch_1.bin` … `data_batch_5.bin`,
 * `test_batch.bin`, 10 000 records of a label byte and 3072 pixel bytes each, and
 * `batches.meta.txt`) filled with seeded random pixels and labels, for timing runs on a machine
 * that cannot hold or fetch the real data (bench/gpu/run.sh: the GPU machine takes 64 MiB of
 * files in all, and the data is 176 MB). Speed does not depend on the pixel values, so steps/s,
 * epochs and population times measured on it are those of the real data; accuracies are chance
 * (about 10 %) and say nothing. The directory's README.txt says so.
 *
 * Usage: `deno run -A bench/gpu/synthetic.ts DIR [--seed N]`
 *
 * @module
 */

import { join } from "node:path";
import {
  BATCH_FILES,
  CIFAR10_CLASSES,
  META_FILE,
  RECORD_BYTES,
  RECORDS_PER_BATCH,
} from "../../src/data/format.ts";

/** xorshift32 bytes: the same files for the same seed on every machine. */
function fill(out: Uint8Array, state: number): number {
  let s = state >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return s;
}

/**
 * Write synthetic CIFAR-10 into `dir` (created if missing; existing files of these names are
 * replaced, nothing else is touched).
 *
 * @example
 * ```ts ignore
 * await writeSynthetic("/tmp/cifar", 1);
 * ```
 */
export async function writeSynthetic(dir: string, seed = 1): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  let state = (seed * 0x9e3779b1) >>> 0;
  for (const name of BATCH_FILES) {
    const data = new Uint8Array(RECORDS_PER_BATCH * RECORD_BYTES);
    state = fill(data, state);
    for (let r = 0; r < RECORDS_PER_BATCH; r++) data[r * RECORD_BYTES] %= CIFAR10_CLASSES.length;
    const tmp = join(dir, `.${name}.tmp`);
    await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, join(dir, name));
  }
  await Deno.writeTextFile(join(dir, META_FILE), CIFAR10_CLASSES.join("\n") + "\n");
  await Deno.writeTextFile(
    join(dir, "README.txt"),
    "Synthetic CIFAR-10 written by bench/gpu/synthetic.ts (seed " + seed + "): the official " +
      "binary layout filled with random pixels and labels, for timing only. Accuracies on it " +
      "are chance.\n",
  );
}

if (import.meta.main) {
  const args = [...Deno.args];
  const at = args.indexOf("--seed");
  const seed = at >= 0 ? Number(args.splice(at, 2)[1]) : 1;
  if (args.length !== 1 || !Number.isInteger(seed) || seed < 0) {
    console.error("error: usage: deno run -A bench/gpu/synthetic.ts DIR [--seed N] (N ≥ 0)");
    Deno.exit(2);
  }
  await writeSynthetic(args[0], seed);
  console.log(`synthetic CIFAR-10 (seed ${seed}) in ${args[0]}`);
}
