/**
 * Evaluate a saved checkpoint on a CIFAR-10 batch file with the GPU.
 *
 * @module
 */

import { join } from "node:path";
import { readBatchFile, readClassNames } from "../data/files.ts";
import { uploadDataset } from "../data/resident.ts";
import { UserError } from "../errors.ts";
import type { Gpu } from "../gpu/device.ts";
import { type Checkpoint, decodeCheckpoint } from "../model/checkpoint.ts";
import { GpuParams } from "../model/gpu_params.ts";
import { OpEncoder } from "../kernels/op.ts";
import { Evaluator, testMetrics } from "./evaluate.ts";
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
export async function loadCheckpointFile(path: string): Promise<Checkpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      throw new UserError(
        `checkpoint ${path} not found: train with checkpoint: true, or pass --run DIR of a finished run`,
      );
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new UserError(
        `checkpoint ${path} is a directory: pass --run DIR (the run directory) or --checkpoint FILE`,
      );
    }
    if (e instanceof Error && Object.values(Deno.errors).some((c) => e instanceof c)) {
      throw new UserError(`checkpoint ${path} cannot be read: ${e.message}`);
    }
    throw e;
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
): Promise<CheckpointEval> {
  const ck = typeof checkpoint === "string" ? await loadCheckpointFile(checkpoint) : checkpoint;
  const batch = readBatchFile(join(dataDir, file));
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
    classNames: readClassNames(dataDir),
    sizes: ck.params.sizes,
  };
}
