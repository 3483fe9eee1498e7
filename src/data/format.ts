/**
 * CIFAR-10's official binary layout: `data_batch_1.bin` .. `data_batch_5.bin` and
 * `test_batch.bin` (10000 records of 1 label byte + 3072 pixel bytes: the R plane, then G, then B,
 * each 32x32 row-major) and `batches.meta.txt` (the 10 class names, one per line).
 *
 * Parses and validates the bytes and text of those files; reading them from disk is
 * `files.ts`'s job.
 *
 * @module
 */

import { UserError } from "../errors.ts";

/** Pixel bytes per image: 3 channels x 32 x 32. */
export const IMAGE_BYTES = 3072;
/** Bytes per record in a batch file: 1 label byte + the image. */
export const RECORD_BYTES = IMAGE_BYTES + 1;
/** Records in each official batch file. */
export const RECORDS_PER_BATCH = 10000;
/** Number of classes (labels are 0..9). */
export const NUM_CLASSES = 10;

/** CIFAR-10's class names in label order (as batches.meta.txt lists them). */
export const CIFAR10_CLASSES: readonly string[] = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];
/** The six batch files of the binary distribution. */
export const BATCH_FILES: readonly string[] = [
  "data_batch_1.bin",
  "data_batch_2.bin",
  "data_batch_3.bin",
  "data_batch_4.bin",
  "data_batch_5.bin",
  "test_batch.bin",
];
/** The class-name file of the binary distribution. */
export const META_FILE = "batches.meta.txt";

/** What the messages about a damaged or missing copy tell the user to do. */
export const HOW_TO_GET = "run `deno task data` to download a fresh copy";

/** Images (n x 3072 bytes, CIFAR-10 layout) and their labels (n bytes, 0..9). */
export interface Batch {
  /** n × 3072 raw pixel bytes. */
  images: Uint8Array;
  /** n class indices, 0..9. */
  labels: Uint8Array;
}

/** The validated bytes of a batch file, as read, and its record count. */
export interface BatchBytes {
  /** The file's bytes: `n` records of 3073 bytes. */
  bytes: Uint8Array;
  /** Number of records. */
  n: number;
}

/**
 * Validate the bytes of a batch file without copying them: the size is a positive multiple of
 * 3073 and every label is in 0..9. Returns the record count; `source` names the file in errors.
 */
export function checkBatchBytes(bytes: Uint8Array, source: string): number {
  const size = bytes.length;
  if (size === 0 || size % RECORD_BYTES !== 0) {
    throw new UserError(
      `${source} is ${size} bytes, expected a positive multiple of ${RECORD_BYTES} ` +
        `(${RECORDS_PER_BATCH * RECORD_BYTES} for a full batch): truncated or wrong-size file; ` +
        HOW_TO_GET,
    );
  }
  const n = size / RECORD_BYTES;
  for (let i = 0; i < n; i++) {
    const label = bytes[i * RECORD_BYTES];
    if (label >= NUM_CLASSES) {
      throw new UserError(
        `${source}: record ${i} has label ${label}, expected 0..${NUM_CLASSES - 1}: ` +
          `corrupt or not a CIFAR-10 batch file; ${HOW_TO_GET}`,
      );
    }
  }
  return n;
}

/** Copy records [from, to) of validated batch-file bytes into `out`, starting at record `at`. */
export function copyRecords(
  bytes: Uint8Array,
  from: number,
  to: number,
  out: Batch,
  at: number,
): void {
  for (let i = from; i < to; i++, at++) {
    const r = i * RECORD_BYTES;
    out.labels[at] = bytes[r];
    out.images.set(bytes.subarray(r + 1, r + RECORD_BYTES), at * IMAGE_BYTES);
  }
}

/** Parse (and validate, see {@link checkBatchBytes}) the bytes of a batch file. */
export function parseBatch(bytes: Uint8Array, source: string): Batch {
  const n = checkBatchBytes(bytes, source);
  const out = { images: new Uint8Array(n * IMAGE_BYTES), labels: new Uint8Array(n) };
  copyRecords(bytes, 0, n, out, 0);
  return out;
}

/** Parse the text of `batches.meta.txt`: exactly 10 non-empty names, trailing blank lines allowed. */
export function parseClassNames(text: string, source: string): string[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const empty = lines.findIndex((l) => l === "");
  if (lines.length !== NUM_CLASSES || empty >= 0) {
    const why = empty >= 0 ? `line ${empty + 1} is empty` : `found ${lines.length}`;
    throw new UserError(
      `${source} must hold ${NUM_CLASSES} non-empty class names, one per line (${why}); ` +
        HOW_TO_GET,
    );
  }
  return lines;
}
