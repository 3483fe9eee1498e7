/**
 * Loading CIFAR-10: the splits a {@link SplitSpec} describes, read from a data directory.
 *
 * The parts live in their own modules: the binary layout in `format.ts`, reading the files in
 * `files.ts`, finding the data directory in `data_dir.ts`, the splits in `splits.ts` and the
 * normalisation statistics in `normalise.ts`.
 *
 * @module
 */

import { join } from "node:path";
import { checkDataDir } from "./data_dir.ts";
import { readBatchBytes, readClassNames } from "./files.ts";
import { holdOut, type Split, type SplitSpec, validateSplitSpec, wholeSplit } from "./splits.ts";

/** The splits loaded by {@link loadCifar10}, with the class names. */
export interface Cifar10 {
  /** The training batches, concatenated (minus any holdout). */
  train: Split;
  /** The validation split, or null when the spec asks for none. */
  val: Split | null;
  /** The test batch, or null when not requested. */
  test: Split | null;
  /** The 10 class names from `batches.meta.txt`, indexed by label. */
  classNames: string[];
}

/**
 * Load the splits described by `spec` from `dir` (validating every file). With
 * `val: { holdout: N }` the last N samples of the concatenated training batches become val.
 *
 * @example Batch 1 for training, the last 1000 samples held out, and the test batch
 * ```ts
 * import { loadCifar10, resolveDataDir } from "@webgpu-mlp/core";
 *
 * const cifar = await loadCifar10(resolveDataDir(), {
 *   train: [1],
 *   val: { holdout: 1000 },
 *   test: true,
 * });
 * console.log(cifar.train.n, cifar.val?.n, cifar.test?.n); // 9000 1000 10000
 * ```
 */
export async function loadCifar10(dir: string, spec: SplitSpec): Promise<Cifar10> {
  validateSplitSpec(spec);
  checkDataDir(dir);
  const classNames = readClassNames(dir);
  const path = (b: number) => join(dir, `data_batch_${b}.bin`);
  const trainBatches = await Promise.all(spec.train.map((b) => readBatchBytes(path(b))));
  let train: Split;
  let val: Split | null = null;
  if ("holdout" in spec.val) {
    ({ train, val } = holdOut(trainBatches, spec.val.holdout));
  } else {
    train = wholeSplit(trainBatches);
    if ("batch" in spec.val) val = wholeSplit([await readBatchBytes(path(spec.val.batch))]);
  }
  const test = spec.test ? wholeSplit([await readBatchBytes(join(dir, "test_batch.bin"))]) : null;
  return { train, val, test, classNames };
}
