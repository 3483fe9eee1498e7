/**
 * Evaluate a saved checkpoint on a CIFAR-10 batch file with the GPU.
 *
 * @module
 */

import { join } from "node:path";
import { readBatchFile, readClassNames } from "../data/files.ts";
import type { Batch } from "../data/format.ts";
import { uploadDataset } from "../data/resident.ts";
import { UserError } from "../errors.ts";
import { FileProblem, readRegularSync } from "../io/regular.ts";
import type { Gpu } from "../gpu/device.ts";
import { type Checkpoint, decodeCheckpoint } from "../model/checkpoint.ts";
import { GpuParams } from "../model/gpu_params.ts";
import { OpEncoder } from "../kernels/op.ts";
import { EVAL_ROWS, Evaluator, testMetrics } from "./evaluate.ts";
import { evalFitProblem } from "./preflight.ts";
import type { TestMetrics } from "./metrics.ts";

/** Result of {@link evaluateCheckpoint}. */
export interface CheckpointEval extends TestMetrics {
  /** Images evaluated (the batch file's records). */
  samples: number;
  /** Class names from the data directory's `batches.meta.txt`. */
  classNames: string[];
  /** The checkpoint's layer sizes: 3072, hidden…, 10. */
  sizes: number[];
}

/**
 * Read and check a checkpoint file (see {@link decodeCheckpoint}) that maps CIFAR-10's 3072
 * inputs to its 10 classes. Every problem — the file missing or unreadable, corrupt, or holding a
 * network that cannot be evaluated — is a one-line {@link UserError}, found without the GPU.
 */
export function loadCheckpointFile(path: string): Promise<Checkpoint> {
  try {
    return Promise.resolve(loadCheckpointSync(path));
  } catch (e) {
    return Promise.reject(e);
  }
}

/** The most bytes read of a checkpoint: 2 GiB, five times a 3072-8192-8192-10 net's. */
export const MAX_CHECKPOINT_BYTES = 2 ** 31;

function loadCheckpointSync(path: string): Checkpoint {
  let bytes: Uint8Array;
  try {
    // a regular file (a link to one followed) of bounded size: never a FIFO (which would block)
    // or a device (/dev/zero never ends)
    bytes = readRegularSync(path, { maxBytes: MAX_CHECKPOINT_BYTES, followLinks: true });
  } catch (e) {
    if (!(e instanceof FileProblem)) throw e;
    if (e.kind === "missing") {
      throw new UserError(
        `checkpoint ${path} not found: train with checkpoint: true, or pass --run DIR of a finished run`,
      );
    }
    if (e.kind === "not-file" && e.message.endsWith("is a directory, not a regular file")) {
      throw new UserError(
        `checkpoint ${path} is a directory: pass --run DIR (the run directory) or --checkpoint FILE`,
      );
    }
    throw new UserError(`checkpoint ${e.message}: pass --checkpoint FILE of a .safetensors file`);
  }
  const ck = decodeCheckpoint(bytes, path);
  if (ck.params.sizes[0] !== 3072 || ck.params.sizes[ck.params.sizes.length - 1] !== 10) {
    throw new UserError(
      `${path} maps ${ck.params.sizes[0]} inputs to ${
        ck.params.sizes.at(-1)
      } classes; CIFAR-10 needs 3072 → 10`,
    );
  }
  return ck;
}

/** The images and labels a checkpoint is evaluated on, and the data's class names. */
export interface EvalData {
  /** The batch file's images and labels. */
  batch: Batch;
  /** The 10 class names of the data directory's `batches.meta.txt`. */
  classNames: string[];
}

/**
 * Read `dataDir/file` and the class names of `dataDir`, each problem a one-line
 * {@link UserError}: what `deno task eval` reads before it acquires the GPU.
 */
export function loadEvalData(dataDir: string, file = "test_batch.bin"): EvalData {
  return { batch: readBatchFile(join(dataDir, file)), classNames: readClassNames(dataDir) };
}

/**
 * Evaluate a checkpoint — a file (read by {@link loadCheckpointFile}) or one already loaded — on
 * `dataDir/file` (default test_batch.bin).
 *
 * @example Evaluate a run's checkpoint on the test batch
 * ```ts
 * import { evaluateCheckpoint, getGpu, resolveDataDir } from "@webgpu-mlp/core";
 *
 * const gpu = await getGpu();
 * const r = await evaluateCheckpoint(gpu, "runs/cyclic-1/weights.safetensors", resolveDataDir());
 * console.log(r.sizes.join("-"), r.samples, r.accuracy);
 * ```
 */
export async function evaluateCheckpoint(
  gpu: Gpu,
  checkpoint: string | Checkpoint,
  dataDir: string,
  file = "test_batch.bin",
  data: EvalData = loadEvalData(dataDir, file),
): Promise<CheckpointEval> {
  const ck = typeof checkpoint === "string" ? await loadCheckpointFile(checkpoint) : checkpoint;
  // every input problem before the GPU's work: the data, the class names, the adapter's limits
  const { batch, classNames } = data;
  const tooBig = evalFitProblem(gpu, ck.params.sizes, Math.min(EVAL_ROWS, batch.labels.length));
  if (tooBig) {
    throw new UserError(
      `${typeof checkpoint === "string" ? checkpoint : "the checkpoint"}: ${tooBig}`,
    );
  }
  const dataset = uploadDataset(gpu.device, [{
    name: "eval",
    images: batch.images,
    labels: batch.labels,
  }], ck);
  const bn = ck.params.sizes.slice(1).map((_, l) => !!ck.params.bn?.[l]);
  const params = new GpuParams(gpu.device, ck.params.sizes, [0], bn);
  params.upload(0, ck.params);
  const evaluator = new Evaluator(params, dataset, dataset.splits, 1, {
    textures: gpu.prefersTextures,
    profile: gpu.kernelProfile,
  });
  const enc = gpu.device.createCommandEncoder();
  const ops = new OpEncoder(enc);
  evaluator.encode(ops, [{ split: "eval", slot: 0, confusion: true }]);
  ops.end();
  const readSums = evaluator.readSlots(enc, 0, 1);
  const readCounts = evaluator.readConfusion(enc);
  gpu.device.queue.submit([enc.finish()]);
  const [sums, counts] = await Promise.all([readSums(), readCounts()]);
  gpu.check();
  evaluator.destroy();
  params.destroy();
  dataset.destroy();
  return {
    ...testMetrics(sums[0][0], counts[0]),
    samples: sums[0][0].rows,
    classNames,
    sizes: ck.params.sizes,
  };
}
