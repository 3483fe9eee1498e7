/**
 * Layer 1's products reading the batch straight from the dataset's images (`ImagesOperand`,
 * A_IMAGES in shaders/matmul.wgsl; `datasetImages` in src/data/resident.ts; the gather's INDEX
 * mode; placement's `images`): the images texture holds every image where the kernels look for
 * it, the products give the bits of the same product on the normalised rows in a texture and
 * agree with float64 on awkward shapes, and a whole training run is bit for bit the gathered one.
 *
 * Tolerance against float64, as in tests/matmul_test.ts: |gpu − ref| ≤ 1e-5·Σ_k|a_ik·b_kj| +
 * 1e-6·|ref| + 1e-30, for K ≤ 3072 terms of float32 rounding.
 */

import assert from "node:assert/strict";
import { datasetImages, IMAGES_PER_TEXTURE_ROW, uploadDataset } from "../src/data/resident.ts";
import { matmulOp, type MatmulVariant } from "../src/kernels/matmul.ts";
import { IMAGE_BYTES } from "../src/data/format.ts";
import { gatherOp } from "../src/kernels/gather.ts";
import { runOps } from "../src/kernels/op.ts";
import { stepTable } from "../src/gpu/buffers.ts";
import type { KernelProfile, TextureReads } from "../src/gpu/device.ts";
import { gatherIndices } from "../src/reference/gather.ts";
import { assertClose, download, gpuDevice, Rng, upload } from "./helpers.ts";
import { uploadTexture } from "./matmul_check.ts";

const D = IMAGE_BYTES;
const pad4 = (n: number) => Math.ceil(n / 4) * 4;

/** 141 random images in two parts, at most 75 a buffer: 71 in the first (not a multiple of 8). */
async function dataset() {
  const device = await gpuDevice();
  const rng = new Rng(11);
  const sizes = [["train", 100], ["val", 41]] as const;
  const parts = sizes.map(([name, n]) => ({
    name,
    images: Uint8Array.from({ length: n * D }, () => rng.int(256)),
    labels: Uint8Array.from({ length: n }, () => rng.int(10)),
  }));
  const mean = Float32Array.from({ length: D }, () => rng.range(60, 190));
  const std = Float32Array.from({ length: D }, () => rng.range(20, 80));
  const ds = uploadDataset(device, parts, { mean, std }, 75);
  const bytes = new Uint8Array(141 * D);
  bytes.set(parts[0].images);
  bytes.set(parts[1].images, 100 * D);
  // row r of X as the gather computes it in float32: (u − mean) · (1/std)
  const inv = Float32Array.from(std, (s) => 1 / s);
  const xRow = (img: number) =>
    Float32Array.from(
      { length: D },
      (_, d) => Math.fround(Math.fround(bytes[img * D + d] - mean[d]) * inv[d]),
    );
  return { device, rng, ds, parts, bytes, xRow };
}

Deno.test("datasetImages: image i is the 768 texels from ((i mod 8)·768, ⌊i/8⌋), across the buffers' boundary", async () => {
  const { device, ds, bytes } = await dataset();
  assert.equal(ds.n0, 71);
  const tex = datasetImages(device, ds)!;
  assert.equal(datasetImages(device, ds), tex, "made once per dataset");
  assert.deepEqual([tex.width, tex.height, tex.format], [8 * 768, 18, "rgba8uint"]);
  const bytesPerRow = IMAGES_PER_TEXTURE_ROW * D;
  const buf = device.createBuffer({
    size: bytesPerRow * tex.height,
    usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
  });
  const enc = device.createCommandEncoder();
  enc.copyTextureToBuffer({ texture: tex }, { buffer: buf, bytesPerRow }, [
    tex.width,
    tex.height,
  ]);
  device.queue.submit([enc.finish()]);
  await buf.mapAsync(GPUMapMode.READ);
  const got = new Uint8Array(buf.getMappedRange().slice(0));
  buf.destroy();
  // the texture's rows are 8 consecutive images: its bytes are the dataset's, in order
  assert.deepEqual(got.subarray(0, 141 * D), bytes);
  ds.destroy();
});

Deno.test("datasetImages: null when the images would not fit the device's textures", async () => {
  const device = await gpuDevice();
  const n = IMAGES_PER_TEXTURE_ROW * device.limits.maxTextureDimension2D + 1;
  // a dataset too large to upload here: only its size matters to datasetImages
  const ds = { total: n, data0: null, data1: null, n0: n } as never;
  assert.equal(datasetImages(device, ds), null);
});

Deno.test("gather INDEX: each row's image index in the dataset and its label, as the twin shuffles", async () => {
  const { device, ds, parts } = await dataset();
  const R = 33;
  const index = device.createBuffer({
    size: 4 * R,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  const y = device.createBuffer({
    size: 4 * R,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  const records = [{ epoch: 0, pos: 0 }, { epoch: 3, pos: 8 }];
  const steps = stepTable(device, records, "steps");
  // the val split: its images start at 100, past the first buffer
  const op = gatherOp(device, {
    mode: "train",
    dataset: ds,
    split: ds.splits.val,
    R,
    x: { index },
    y,
    seed: 99,
    steps,
  });
  assert.equal(op.cost.shape, "33 image indices");
  for (let k = 0; k < records.length; k++) {
    await runOps(device, [op], k);
    const want = gatherIndices("train", R, 41, { seed: 99, ...records[k] });
    const got = new Uint32Array((await download(device, index, R)).buffer);
    assert.deepEqual([...got], want.map((i) => 100 + i), `record ${k}`);
    assert.deepEqual(
      [...new Uint32Array((await download(device, y, R)).buffer)],
      want.map((i) => parts[1].labels[i]),
    );
  }
  assert.throws(
    () =>
      gatherOp(device, {
        mode: "train",
        dataset: ds,
        split: ds.splits.train,
        R,
        x: { index },
        y,
        steps,
        augment: { flip: true, translate: 0 },
      }),
    /an augmented batch must be gathered into X/,
  );
  ds.destroy();
});

interface ImageCase {
  v: MatmulVariant;
  /** Rows of the batch (M for nn, K for tn) and columns of C. */
  rows: number;
  N: number;
}

const imageCases: ImageCase[] = [
  { v: "nn", rows: 1, N: 1 },
  { v: "nn", rows: 7, N: 33 },
  { v: "nn", rows: 33, N: 7 },
  { v: "nn", rows: 100, N: 50 },
  { v: "nn", rows: 100, N: 100 },
  { v: "tn", rows: 1, N: 7 },
  { v: "tn", rows: 7, N: 1 },
  { v: "tn", rows: 33, N: 33 },
  { v: "tn", rows: 100, N: 50 },
];

Deno.test("images as A: nn and tn give the bits of the normalised rows in a texture, and agree with float64 (1, 7, 33, 100 rows; both profiles; storage and sampled reads)", async () => {
  const { device, rng, ds, xRow } = await dataset();
  const images = datasetImages(device, ds)!;
  for (const c of imageCases) {
    const R = c.rows, N = c.N, ld = pad4(N);
    const idx = Uint32Array.from({ length: R }, () => rng.int(141));
    const X = new Float32Array(R * D);
    idx.forEach((img, r) => X.set(xRow(img), r * D));
    // B: nn K×N = 3072×N; tn K×N = R×N
    const bRows = c.v === "nn" ? D : R;
    const B = new Float32Array(bRows * ld);
    for (let k = 0; k < bRows; k++) for (let j = 0; j < N; j++) B[k * ld + j] = rng.range(-1, 1);
    const [M, K] = c.v === "nn" ? [R, D] : [D, R];
    // float64: C = X·B (nn) or Xᵀ·B (tn); bound: Σ|a·b|
    const ref = new Float64Array(M * ld), bound = new Float64Array(M * ld);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0, b = 0;
        for (let k = 0; k < K; k++) {
          const a = c.v === "nn" ? X[i * D + k] : X[k * D + i];
          s += a * B[k * ld + j];
          b += Math.abs(a * B[k * ld + j]);
        }
        ref[i * ld + j] = s;
        bound[i * ld + j] = b;
      }
    }
    const index = upload(device, idx);
    const bBuf = upload(device, B);
    const xTex = uploadTexture(device, X, D / 4, R);
    for (const profile of ["cpu", "gpu"] as KernelProfile[]) {
      for (const textureReads of ["storage", "sampled"] as TextureReads[]) {
        const what = `${c.v} ${R} rows, N ${N}, ${profile}, ${textureReads}`;
        const run = async (a: Parameters<typeof matmulOp>[1]["a"]) => {
          const C = device.createBuffer({
            size: 4 * M * ld,
            usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
          });
          const op = matmulOp(device, {
            variant: c.v,
            M,
            N,
            K,
            a,
            b: { buffer: bBuf, ld },
            c: { buffer: C, ld },
            profile,
            textureReads,
          });
          await runOps(device, [op]);
          const out = await download(device, C, M * ld);
          C.destroy();
          return out;
        };
        const got = await run({ images, index, norm: ds.norm });
        assertClose(
          got,
          ref,
          (i) => 1e-5 * bound[i] + 1e-6 * Math.abs(ref[i]) + 1e-30,
          what,
        );
        assert.deepEqual(got, await run({ texture: xTex }), `${what}: the bits of X in a texture`);
      }
    }
    index.destroy();
    bBuf.destroy();
    xTex.destroy();
  }
  ds.destroy();
});

Deno.test("images as A: refused for nt and for rows that are not images, with the reason", async () => {
  const { device, ds } = await dataset();
  const images = datasetImages(device, ds)!;
  const index = upload(device, new Uint32Array(4));
  const buf = upload(device, new Float32Array(4 * D));
  const a = { images, index, norm: ds.norm };
  assert.throws(
    () =>
      matmulOp(device, {
        variant: "nt",
        M: 4,
        N: 4,
        K: D,
        a,
        b: { buffer: buf, ld: D },
        c: { buffer: buf, ld: 4 },
      }),
    /images as A need nn or tn/,
  );
  assert.throws(
    () =>
      matmulOp(device, {
        variant: "nn",
        M: 4,
        N: 4,
        K: 100,
        a,
        b: { buffer: buf, ld: 4 },
        c: { buffer: buf, ld: 4 },
      }),
    /images as A are rows of 3072 values, not 100/,
  );
  ds.destroy();
});
