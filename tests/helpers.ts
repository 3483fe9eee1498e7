/** Shared test utilities: seeded random data, GPU buffers, tolerance checks. */

import { getGpu } from "../src/gpu/device.ts";
import { readFloats, uploadBuffer } from "../src/gpu/buffers.ts";
import { Rng } from "../src/model/rng.ts";

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
