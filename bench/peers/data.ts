/**
 * The data handed to peers: the exact samples and normalisation the WebGPU trainer uses, written
 * once to a temporary directory as raw files (see `common.py` for the layout).
 *
 * @module
 */

import { join } from "node:path";
import type { PreparedData } from "../../src/train/run.ts";

/** A temporary directory of peer data; `remove` deletes it. */
export interface PeerData {
  dir: string;
  remove(): Promise<void>;
}

/** Write the training and validation splits and the statistics (mean, 1/std) to a temp dir. */
export async function writePeerData(data: PreparedData, threads: number): Promise<PeerData> {
  const dir = await Deno.makeTempDir({ prefix: "webgpu-mlp-bench-" });
  const { cifar, stats } = data;
  const istd = new Float32Array(stats.std.length);
  for (let i = 0; i < istd.length; i++) istd[i] = 1 / stats.std[i];
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  await Deno.writeFile(join(dir, "train_images.u8"), cifar.train.images);
  await Deno.writeFile(join(dir, "train_labels.u8"), cifar.train.labels);
  if (cifar.val) {
    await Deno.writeFile(join(dir, "val_images.u8"), cifar.val.images);
    await Deno.writeFile(join(dir, "val_labels.u8"), cifar.val.labels);
  }
  await Deno.writeFile(join(dir, "mean.f32"), bytes(stats.mean));
  await Deno.writeFile(join(dir, "istd.f32"), bytes(istd));
  const meta = {
    dim: 3072,
    train: cifar.train.n,
    val: cifar.val?.n ?? 0,
    classes: cifar.classNames.length,
    threads,
  };
  await Deno.writeTextFile(join(dir, "meta.json"), JSON.stringify(meta));
  return { dir, remove: () => Deno.remove(dir, { recursive: true }).catch(() => {}) };
}
