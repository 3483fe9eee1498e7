/** Shared test utilities: seeded random data, GPU buffers, tolerance checks. */

import { IMAGE_BYTES } from "../src/data/format.ts";
import { type ResidentDataset, type SplitRange, uploadDataset } from "../src/data/resident.ts";
import { getGpu } from "../src/gpu/device.ts";
import { readFloats, uploadBuffer } from "../src/gpu/buffers.ts";
import { Rng } from "../src/model/rng.ts";
import type { PopulationSpec } from "../src/train/trainer.ts";

export { Rng };

/** The shared GPU device of this test process. */
export async function gpuDevice(): Promise<GPUDevice> {
  return (await getGpu()).device;
}

/** Uniform random values in [-1, 1). */
export function randomArray(rng: Rng, n: number): Float32Array<ArrayBuffer> {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.range(-1, 1);
  return a;
}

/** Upload a Float32Array and return the buffer. */
export function upload(
  device: GPUDevice,
  data: Float32Array | Uint32Array,
): GPUBuffer {
  return uploadBuffer(device, data, "test");
}

/** Read a whole buffer back as floats (its first `n`). */
export async function download(
  device: GPUDevice,
  buf: GPUBuffer,
  n: number,
): Promise<Float32Array> {
  return await readFloats(device, buf, 0, n);
}

/**
 * Largest ratio |got − want| / tol over all entries (≤ 1 passes), and where; `tol` per entry.
 * NaN anywhere fails.
 */
export function worstRatio(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: (i: number) => number,
): { ratio: number; index: number } {
  let ratio = 0, index = -1;
  for (let i = 0; i < want.length; i++) {
    const r = Math.abs(got[i] - want[i]) / tol(i);
    if (!(r <= ratio)) {
      ratio = Number.isNaN(r) ? Infinity : r;
      index = i;
    }
  }
  return { ratio, index };
}

/** Assert that `got` matches `want` within `tol(i)` everywhere, with a helpful message. */
export function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: (i: number) => number,
  what: string,
): void {
  const { ratio, index } = worstRatio(got, want, tol);
  if (!(ratio <= 1)) {
    throw new Error(
      `${what}: entry ${index} got ${got[index]}, want ${want[index]} (tol ${tol(index)}, ` +
        `${ratio.toFixed(2)}× over)`,
    );
  }
}

/** Read `rows` rows of `quads` texels of an rgba32float texture as floats, row-major. */
export async function downloadTexture(
  device: GPUDevice,
  texture: GPUTexture,
  quads: number,
  rows: number,
): Promise<Float32Array> {
  const bytesPerRow = Math.ceil((quads * 16) / 256) * 256;
  const buf = device.createBuffer({
    size: bytesPerRow * rows,
    usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
  });
  const enc = device.createCommandEncoder();
  enc.copyTextureToBuffer({ texture }, { buffer: buf, bytesPerRow }, [quads, rows]);
  device.queue.submit([enc.finish()]);
  await buf.mapAsync(GPUMapMode.READ);
  const all = new Float32Array(buf.getMappedRange().slice(0));
  buf.destroy();
  const out = new Float32Array(quads * 4 * rows);
  for (let r = 0; r < rows; r++) {
    out.set(all.subarray((r * bytesPerRow) / 4, (r * bytesPerRow) / 4 + quads * 4), r * quads * 4);
  }
  return out;
}

/**
 * A population spec of P models for tests that build (rather than run) training steps: Xavier
 * init, λ = 0.01·z and seed z for model z, batches of 8, one epoch at a constant η.
 */
export function testSpec(sizes: number[], P: number): PopulationSpec {
  return {
    sizes,
    init: "xavier",
    sigma: 0.01,
    lambdas: Array.from({ length: P }, (_, i) => 0.01 * i),
    seeds: Array.from({ length: P }, (_, i) => i),
    batchSize: 8,
    schedule: { kind: "constant", eta: 0.01, epochs: 1 },
    evalEvery: 1,
    shuffleSeed: 0,
  };
}

/** The representative specs: SGD/Adam, BN, dropout, augmentation, depth, population size. */
export function representativeSpecs(): { name: string; spec: PopulationSpec; bnL2?: boolean }[] {
  const adam = { kind: "adam" as const, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
  return [
    { name: "sgd 2-layer P=1", spec: testSpec([IMAGE_BYTES, 20, 10], 1) },
    {
      name: "sgd 4-layer P=3 dropout augment",
      spec: {
        ...testSpec([IMAGE_BYTES, 16, 12, 8, 10], 3),
        net: { dropout: [0.2, 0.1, 0.3], seed: 5 },
        augment: { flip: true, translate: 3 },
      },
    },
    {
      name: "sgd 3-layer P=3 BN",
      spec: { ...testSpec([IMAGE_BYTES, 16, 12, 10], 3), bn: [true, true] },
    },
    {
      name: "adam 3-layer P=1 BN+dropout bnL2 flip",
      spec: {
        ...testSpec([IMAGE_BYTES, 16, 12, 10], 1),
        bn: [true, false],
        net: { dropout: [0.5, 0.2], seed: 1, bnL2: true },
        optimizer: adam,
        augment: { flip: true, translate: 0 },
      },
      bnL2: true,
    },
    {
      name: "adam 2-layer P=3 translate",
      spec: {
        ...testSpec([IMAGE_BYTES, 20, 10], 3),
        optimizer: adam,
        augment: { flip: false, translate: 2 },
      },
    },
  ];
}

/** Four blank images resident on the GPU (mean 0, std 1) and the split of all four. */
export function blankDataset(device: GPUDevice): { dataset: ResidentDataset; train: SplitRange } {
  const dataset = uploadDataset(device, [{
    name: "train",
    images: new Uint8Array(4 * IMAGE_BYTES),
    labels: new Uint8Array(4),
  }], { mean: new Float32Array(IMAGE_BYTES), std: new Float32Array(IMAGE_BYTES).fill(1) });
  return { dataset, train: { base: 0, n: 4 } };
}
