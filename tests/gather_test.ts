/**
 * gather.wgsl against its twin: the per-epoch Feistel shuffle (a bijection of [0, n) that changes
 * every epoch), index-exact rows and labels across the two dataset buffers, normalisation within
 * 1e-5·(1 + |x|), and evaluation chunks that stop at the valid row count.
 */

import assert from "node:assert/strict";
import { stepTable } from "../src/gpu/buffers.ts";
import { uploadDataset } from "../src/data/resident.ts";
import { gatherOp } from "../src/kernels/gather.ts";
import { runOps } from "../src/kernels/op.ts";
import { gatherIndices, gatherRef } from "../src/reference/gather.ts";
import { epochPermutation } from "../src/reference/shuffle.ts";
import { assertClose, download, gpuDevice, Rng } from "./helpers.ts";

Deno.test("shuffle: every epoch is a permutation of [0, n), different per epoch and seed", () => {
  for (const n of [1, 2, 7, 33, 100, 1000, 45000]) {
    const seen = new Uint8Array(n);
    const p0 = epochPermutation(n, 42, 0);
    for (const v of p0) {
      assert.ok(v < n);
      assert.equal(seen[v], 0, `n=${n}: ${v} twice`);
      seen[v] = 1;
    }
    if (n >= 33) {
      const p1 = epochPermutation(n, 42, 1), q0 = epochPermutation(n, 43, 0);
      const same = (a: Uint32Array, b: Uint32Array) => a.filter((v, i) => v === b[i]).length;
      assert.ok(same(p0, p1) < n / 4, `n=${n}: epochs 0 and 1 agree too often`);
      assert.ok(same(p0, q0) < n / 4, `n=${n}: seeds 42 and 43 agree too often`);
    }
  }
});

function syntheticImages(rng: Rng, n: number): Uint8Array {
  const a = new Uint8Array(n * 3072);
  for (let i = 0; i < a.length; i++) a[i] = rng.int(256);
  return a;
}

Deno.test("gather: train and eval rows match the twin across both dataset buffers", async () => {
  const device = await gpuDevice();
  const rng = new Rng(7);
  const parts = [["train", 100], ["val", 33], ["test", 7]] as const;
  const data = parts.map(([name, n]) => ({
    name,
    images: syntheticImages(rng, n),
    labels: Uint8Array.from({ length: n }, () => rng.int(10)),
  }));
  const mean = Float32Array.from({ length: 3072 }, () => rng.range(100, 150));
  const std = Float32Array.from({ length: 3072 }, () => rng.range(40, 80));
  // at most 75 images per buffer: 70 + 70, the train split straddles the boundary
  const ds = uploadDataset(device, data, { mean, std }, 75);
  assert.equal(ds.n0, 70);
  const R = 33;
  const x = device.createBuffer({
    size: R * 3072 * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  const y = device.createBuffer({
    size: R * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  const records = [{ epoch: 0, pos: 0 }, { epoch: 0, pos: 33 }, { epoch: 5, pos: 66 }];
  const steps = stepTable(device, records, "steps");
  const train = gatherOp(device, {
    mode: "train",
    dataset: ds,
    split: ds.splits.train,
    R,
    x,
    y,
    seed: 1234,
    steps,
  });
  for (let k = 0; k < records.length; k++) {
    await runOps(device, [train], k);
    const idx = gatherIndices("train", R, 100, { seed: 1234, ...records[k] });
    const want = gatherRef(data[0].images, idx, mean, std);
    assertClose(
      await download(device, x, R * 3072),
      want,
      (i) => 1e-5 * (1 + Math.abs(want[i])),
      `train step ${k}`,
    );
    assert.deepEqual(
      [...new Uint32Array((await download(device, y, R)).buffer)],
      idx.map((i) => data[0].labels[i]),
    );
  }
  // evaluation of the 33-image val split in chunks of 20: the second chunk has 13 valid rows
  const evalSteps = stepTable(device, [{ base: 0, rows: 20 }, { base: 20, rows: 13 }], "eval");
  const xe = device.createBuffer({
    size: 20 * 3072 * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  const ye = device.createBuffer({
    size: 20 * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  const ev = gatherOp(device, {
    mode: "eval",
    dataset: ds,
    split: ds.splits.val,
    R: 20,
    x: xe,
    y: ye,
    steps: evalSteps,
  });
  await runOps(device, [ev], 0);
  const first = await download(device, xe, 20 * 3072);
  await runOps(device, [ev], 1);
  const got = await download(device, xe, 20 * 3072);
  const want = gatherRef(
    data[1].images,
    gatherIndices("eval", 20, 33, { base: 20, rows: 13 }),
    mean,
    std,
  );
  assertClose(
    got.subarray(0, 13 * 3072),
    want,
    (i) => 1e-5 * (1 + Math.abs(want[i])),
    "eval chunk 2",
  );
  assert.deepEqual(
    got.subarray(13 * 3072),
    first.subarray(13 * 3072),
    "rows past the valid count untouched",
  );
  // the same rows written into an rgba32float texture (what layer 1 reads on CPU adapters)
  const xt = device.createTexture({
    size: [768, R],
    format: "rgba32float",
    usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_SRC,
  });
  const toTexture = gatherOp(device, {
    mode: "train",
    dataset: ds,
    split: ds.splits.train,
    R,
    x: xt,
    y,
    seed: 1234,
    steps,
  });
  await runOps(device, [toTexture], 2);
  const staging = device.createBuffer({
    size: R * 3072 * 4,
    usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | GPUBufferUsage.STORAGE,
  });
  const enc = device.createCommandEncoder();
  enc.copyTextureToBuffer({ texture: xt }, { buffer: staging, bytesPerRow: 768 * 16 }, [768, R]);
  device.queue.submit([enc.finish()]);
  const fromTexture = await download(device, staging, R * 3072);
  await runOps(device, [train], 2);
  assert.deepEqual(
    fromTexture,
    await download(device, x, R * 3072),
    "texture rows equal buffer rows",
  );
  ds.destroy();
});

Deno.test("gather carried by a tail: the next step's rows and labels as the twin, plain and augmented, at R 1, 7, 33, 100; nothing when `next` is 0", async () => {
  const { tailOp } = await import("../src/kernels/tail.ts");
  const { storageBuffer, uploadBuffer } = await import("../src/gpu/buffers.ts");
  const device = await gpuDevice();
  const rng = new Rng(9);
  const n = 100;
  const data = [{
    name: "train",
    images: syntheticImages(rng, n),
    labels: Uint8Array.from({ length: n }, () => rng.int(10)),
  }];
  const mean = Float32Array.from({ length: 3072 }, () => rng.range(100, 150));
  const std = Float32Array.from({ length: 3072 }, () => rng.range(40, 80));
  const ds = uploadDataset(device, data, { mean, std }, 60); // the split straddles the buffers
  const flipShift = { flip: true, translate: 2 };
  const { augmentParams } = await import("../src/reference/gather.ts");
  // the plain rows (each invocation's normalisation loaded once for all of a workgroup's rows)
  // at every size and rows per workgroup, the augmented ones (row by row) at two
  const cases = [[1, undefined], [7, 3], [33, undefined], [33, 1], [100, 28]] as const;
  for (
    const [R, rowsPer, augment] of [
      ...cases.map(([R, rowsPer]) => [R, rowsPer, undefined] as const),
      [7, 3, flipShift] as const,
      [100, 28, flipShift] as const,
    ]
  ) {
    // a small output layer (8 → 10) for the tail; its numbers are the tail tests' business
    const nIn = 8, ld = 12;
    const H = uploadBuffer(
      device,
      Float32Array.from({ length: R! * nIn }, () => rng.normal()),
      "H",
    );
    // G to a texture, as placement writes G₁ for layer 1's products: 10 storage buffers in all,
    // within every adapter's limit (SwiftShader's is 10)
    const G = device.createTexture({
      size: [nIn / 4, R!],
      format: "rgba32float",
      usage: GPUTextureUsage.STORAGE_BINDING,
    });
    const W = uploadBuffer(
      device,
      Float32Array.from({ length: nIn * ld }, () => rng.normal()),
      "W",
    );
    const b = storageBuffer(device, ld, "b");
    const labels = uploadBuffer(device, Uint32Array.from({ length: R! }, () => rng.int(10)), "l");
    const lambda = uploadBuffer(device, new Float32Array([0.01]), "lambda");
    const x = storageBuffer(device, R! * 3072, "X");
    const y = storageBuffer(device, R!, "y");
    const records = [{ eta: 0.01, next: 1, nextEpoch: 3, nextPos: 100 - R! }, { next: 0 }];
    const steps = stepTable(device, records, "steps");
    const op = tailOp(device, {
      R: R!,
      P: 1,
      input: { buffer: H, nIn, ld: nIn, zStride: nIn },
      output: G,
      out: { nOut: 10, ld, pout: ld, W, b },
      labels,
      lambda,
      steps,
      gather: {
        spec: {
          mode: "train",
          dataset: ds,
          split: ds.splits.train,
          R: R!,
          x,
          y,
          seed: 77,
          steps,
          augment,
        },
        rowsPer,
      },
    });
    await runOps(device, [op], 0);
    const idx = gatherIndices("train", R!, n, { seed: 77, epoch: 3, pos: 100 - R! });
    const decisions = augment && idx.map((s) => augmentParams(77, 3, s, augment));
    const want = gatherRef(data[0].images, idx, mean, std, decisions || undefined);
    const got = await download(device, x, R! * 3072);
    const what = `R ${R} rows ${rowsPer}${augment ? " augmented" : ""}`;
    assertClose(got, want, (i) => 1e-5 * (1 + Math.abs(want[i])), what);
    assert.deepEqual(
      [...new Uint32Array((await download(device, y, R!)).buffer)],
      idx.map((i) => data[0].labels[i]),
    );
    // record 1 (no next step): X is left as it is
    await device.queue.writeBuffer(x, 0, new Float32Array(R! * 3072));
    await runOps(device, [op], 1);
    assert.ok((await download(device, x, R! * 3072)).every((v) => v === 0), `R ${R}: next = 0`);
    for (const buf of [H, G, W, b, labels, lambda, x, y, steps]) buf.destroy();
  }
  ds.destroy();
});
