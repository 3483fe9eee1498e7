/**
 * Splits of CIFAR-10: which training batches train, which data validates (another batch, the
 * last N training samples held out, or none), whether the test batch is loaded, and building
 * each split from the batch files' records.
 *
 * @module
 */

import { UserError } from "../errors.ts";
import { type BatchBytes, copyRecords, IMAGE_BYTES, RECORDS_PER_BATCH } from "./format.ts";

/** A split of the data set: `n` images of 3072 bytes each and their labels. */
export interface Split {
  /** n × 3072 raw pixel bytes (0..255), each image its R, G then B 32×32 row-major planes. */
  images: Uint8Array;
  /** n class indices, 0..9. */
  labels: Uint8Array;
  /** Number of images. */
  n: number;
}

/**
 * Which batches make up each split.
 *
 * - `train`: training batch numbers (1..5), non-empty, no duplicates.
 * - `val`: `{ batch }` uses another training batch (1..5, not in `train`); `{ holdout: N }` moves
 *   the LAST N samples of the concatenated training batches (in the order given) into val;
 *   `{ none: true }` has no validation split.
 * - `test`: whether to load `test_batch.bin`.
 */
export interface SplitSpec {
  /** Training batch numbers (1..5), concatenated in this order. */
  train: number[];
  /** Validation: another training batch, the last `holdout` training samples, or none. */
  val: { batch: number } | { holdout: number } | { none: true };
  /** Whether to load `test_batch.bin`. */
  test: boolean;
}

function checkBatchNumber(b: unknown, what: string): number {
  if (typeof b !== "number" || !Number.isInteger(b) || b < 1 || b > 5) {
    throw new UserError(`${what} ${b} is not a training batch number: use 1..5`);
  }
  return b;
}

/** Validate a split spec; throws a one-line {@link UserError} on the first problem. */
export function validateSplitSpec(spec: SplitSpec): void {
  if (!Array.isArray(spec.train) || spec.train.length === 0) {
    throw new UserError("the training split needs at least one batch (1..5)");
  }
  const seen = new Set<number>();
  for (const b of spec.train) {
    checkBatchNumber(b, "train batch");
    if (seen.has(b)) throw new UserError(`train batch ${b} is listed twice: list each batch once`);
    seen.add(b);
  }
  const val = spec.val as Record<string, unknown>;
  if ("batch" in val) {
    const b = checkBatchNumber(val.batch, "val batch");
    if (seen.has(b)) {
      throw new UserError(
        `val batch ${b} is also a train batch: pick a batch not used for training`,
      );
    }
  } else if ("holdout" in val) {
    const h = val.holdout;
    const trainSize = spec.train.length * RECORDS_PER_BATCH;
    if (typeof h !== "number" || !Number.isInteger(h) || h < 1 || h >= trainSize) {
      throw new UserError(
        `val holdout ${h} is out of range: use an integer from 1 to ${trainSize - 1} ` +
          `(the ${spec.train.length} train batch(es) hold ${trainSize} samples)`,
      );
    }
  } else if (val.none !== true) {
    throw new UserError(
      "val split must be { batch: 1..5 }, { holdout: N } or { none: true }",
    );
  }
}

/** Records [start, end) of the concatenation of `batches`, copied into a new split. */
function concat(batches: BatchBytes[], start: number, end: number): Split {
  const n = end - start;
  const out = { images: new Uint8Array(n * IMAGE_BYTES), labels: new Uint8Array(n) };
  let offset = 0; // index of the current batch's first record in the concatenation
  let at = 0;
  for (const b of batches) {
    const from = Math.max(start, offset) - offset;
    const to = Math.min(end, offset + b.n) - offset;
    if (to > from) {
      copyRecords(b.bytes, from, to, out, at);
      at += to - from;
    }
    offset += b.n;
  }
  return { ...out, n };
}

/** Every record of `batches`, in order, as one split. */
export function wholeSplit(batches: BatchBytes[]): Split {
  return concat(batches, 0, batches.reduce((s, b) => s + b.n, 0));
}

/**
 * The training batches, concatenated, split in two: the last `holdout` records become the
 * validation split, the rest the training split. A holdout of all the records (or more) is a
 * one-line {@link UserError}.
 */
export function holdOut(batches: BatchBytes[], holdout: number): { train: Split; val: Split } {
  const total = batches.reduce((s, b) => s + b.n, 0);
  if (holdout >= total) {
    throw new UserError(
      `val holdout ${holdout} is out of range: the train batches hold ${total} samples; use fewer`,
    );
  }
  return {
    train: concat(batches, 0, total - holdout),
    val: concat(batches, total - holdout, total),
  };
}
