/**
 * CIFAR-10 in the official binary layout: `data_batch_1.bin` .. `data_batch_5.bin` and
 * `test_batch.bin` (10000 records of 1 label byte + 3072 pixel bytes: the R plane, then G, then B,
 * each 32x32 row-major) and `batches.meta.txt` (the 10 class names, one per line).
 *
 * Reads and validates the files, finds the data directory, builds train/val/test splits and
 * computes the per-dimension normalisation statistics.
 *
 * @module
 */

import { homedir } from "node:os";
import { join, resolve } from "node:path";
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

const HOW_TO_GET = "run `deno task data` to download a fresh copy";

/** Images (n x 3072 bytes, CIFAR-10 layout) and their labels (n bytes, 0..9). */
export interface Batch {
  images: Uint8Array;
  labels: Uint8Array;
}

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

/** Per-dimension (3072) mean and standard deviation of the raw 0..255 pixel bytes. */
export interface NormStats {
  /** 3072 per-dimension means, in image byte order. */
  mean: Float32Array;
  /** 3072 per-dimension population standard deviations (a zero one replaced by 1). */
  std: Float32Array;
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
function copyRecords(bytes: Uint8Array, from: number, to: number, out: Batch, at: number): void {
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

/** Whether `path` is a directory, something else, or absent; any other problem throws. */
function pathKind(path: string, named: string, instead: string): "dir" | "file" | "missing" {
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

/** Read and validate one batch file (exists, size a positive multiple of 3073, labels 0..9). */
export function readBatchFile(path: string): Batch {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (e) {
    throw readFailure(e, path, "CIFAR-10 batch file");
  }
  return parseBatch(bytes, path);
}

/** Read a batch file's raw bytes, validated; `n` is its record count. */
async function readBatchBytes(path: string): Promise<{ bytes: Uint8Array; n: number }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw readFailure(e, path, "CIFAR-10 batch file");
  }
  return { bytes, n: checkBatchBytes(bytes, path) };
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

/** Read the 10 class names from `dir/batches.meta.txt`. */
export function readClassNames(dir: string): string[] {
  const path = join(dir, META_FILE);
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw readFailure(e, path, "class-name file");
  }
  return parseClassNames(text, path);
}

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
function concat(batches: { bytes: Uint8Array; n: number }[], start: number, end: number): Split {
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
  const classNames = readClassNames(dir);
  const path = (b: number) => join(dir, `data_batch_${b}.bin`);
  const trainBatches = await Promise.all(spec.train.map((b) => readBatchBytes(path(b))));
  const total = trainBatches.reduce((s, b) => s + b.n, 0);
  let train: Split;
  let val: Split | null = null;
  if ("holdout" in spec.val) {
    const h = spec.val.holdout;
    if (h >= total) {
      throw new UserError(
        `val holdout ${h} is out of range: the train batches hold ${total} samples; use fewer`,
      );
    }
    train = concat(trainBatches, 0, total - h);
    val = concat(trainBatches, total - h, total);
  } else {
    train = concat(trainBatches, 0, total);
    if ("batch" in spec.val) {
      const b = await readBatchBytes(path(spec.val.batch));
      val = concat([b], 0, b.n);
    }
  }
  let test: Split | null = null;
  if (spec.test) {
    const b = await readBatchBytes(join(dir, "test_batch.bin"));
    test = concat([b], 0, b.n);
  }
  return { train, val, test, classNames };
}

/**
 * Per-dimension mean and population standard deviation (divide by n) of a split's raw bytes,
 * accumulated in float64; a zero standard deviation is replaced by 1.
 */
export function normalisationStats(split: Split): NormStats {
  const { images, n } = split;
  if (n <= 0) throw new UserError("cannot compute normalisation statistics of an empty split");
  if (images.length < n * IMAGE_BYTES) {
    throw new Error(`split holds ${images.length} bytes, ${n * IMAGE_BYTES} expected`);
  }
  // Sums of bytes and squared bytes are integers below 2^53, hence exact in float64.
  const sum = new Float64Array(IMAGE_BYTES);
  const sumSq = new Float64Array(IMAGE_BYTES);
  for (let i = 0; i < n; i++) {
    const base = i * IMAGE_BYTES;
    for (let d = 0; d < IMAGE_BYTES; d++) {
      const x = images[base + d];
      sum[d] += x;
      sumSq[d] += x * x;
    }
  }
  const mean = new Float32Array(IMAGE_BYTES);
  const std = new Float32Array(IMAGE_BYTES);
  for (let d = 0; d < IMAGE_BYTES; d++) {
    const m = sum[d] / n;
    const variance = Math.max(0, (sumSq[d] - sum[d] * m) / n);
    const s = Math.sqrt(variance);
    mean[d] = m;
    std[d] = s > 0 ? s : 1;
  }
  return { mean, std };
}

/** CPU reference normalisation: `(x - mean[d]) / std[d]` for each raw byte x of `n` images. */
export function normalise(images: Uint8Array, n: number, stats: NormStats): Float32Array {
  const out = new Float32Array(n * IMAGE_BYTES);
  const { mean, std } = stats;
  for (let i = 0; i < n; i++) {
    const base = i * IMAGE_BYTES;
    for (let d = 0; d < IMAGE_BYTES; d++) {
      out[base + d] = (images[base + d] - mean[d]) / std[d];
    }
  }
  return out;
}
