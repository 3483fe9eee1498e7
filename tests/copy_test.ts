/**
 * copy.wgsl against its float64 twin: a buffer matrix into an rgba32float texture, on awkward
 * shapes (rows not a multiple of 256 bytes, widths of 1 and 7 quads, 3072 rows); and blocks.wgsl
 * (models' blocks within a state buffer, for population-based training) against its twin, on
 * 1, 7, 33, 100 and 3072 rows, blocks of 1, 7, 52 floats, populations of 1, 3 and 16. A copy is
 * exact.
 */

import assert from "node:assert/strict";
import { copyBlocksOp, copyToTextureOp } from "../src/kernels/copy.ts";
import { runOps } from "../src/kernels/op.ts";
import { copyBlocksRef, copyToTextureRef } from "../src/reference/copy.ts";
import { download, downloadTexture, gpuDevice, randomArray, Rng, upload } from "./helpers.ts";

const cases = [
  { width: 1, height: 1, ld: 4 },
  { width: 7, height: 33, ld: 36 }, // texture narrower than the rows: the tail is not copied
  { width: 13, height: 3072, ld: 52 }, // W₁ of a 3072-50-… net
  { width: 208, height: 100, ld: 832 }, // G₁ of a 16-model population, batch 100
  // the seed of a wrapped texture: the buffer read as rows of 4·width floats, the first `quads`
  { width: 16, height: 2496, ld: 64, quads: 39936 }, // W₁ of one 3072-50-… model, 16 quads a row
  { width: 16, height: 82, ld: 64, quads: 1300 }, // 100 rows of 52 floats: the last row 4 quads
  { width: 7, height: 3, ld: 28, quads: 1 },
];

for (const c of cases) {
  const first = "quads" in c ? `, the first ${c.quads} quads` : "";
  Deno.test(`copy_to_texture ${c.width}x${c.height} (ld ${c.ld}${first}) matches float64 exactly`, async () => {
    const device = await gpuDevice();
    const src = randomArray(new Rng(c.width * 7919 + c.height), c.ld * c.height);
    const dst = device.createTexture({
      size: [c.width, c.height],
      format: "rgba32float",
      usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_SRC,
    });
    const op = copyToTextureOp(device, { ...c, src: upload(device, src), dst });
    await runOps(device, [op]);
    const got = await downloadTexture(device, dst, c.width, c.height);
    const want = copyToTextureRef(src, c.ld, c.width, c.height, "quads" in c ? c.quads : undefined);
    assert.deepEqual(Array.from(got), Array.from(want));
  });
}

Deno.test("copy_to_texture rejects a width beyond the rows or the texture", async () => {
  const device = await gpuDevice();
  const dst = device.createTexture({
    size: [4, 4],
    format: "rgba32float",
    usage: GPUTextureUsage.STORAGE_BINDING,
  });
  const src = upload(device, new Float32Array(64));
  assert.throws(
    () => copyToTextureOp(device, { src, ld: 8, dst, width: 3, height: 4 }),
    /3 quads exceed the row of 8/,
  );
  assert.throws(
    () => copyToTextureOp(device, { src, ld: 20, dst, width: 5, height: 4 }),
    /5x4 texels exceed the texture/,
  );
  assert.throws(() => copyToTextureOp(device, { src, ld: 6, dst, width: 1, height: 1 }), /ld 6/);
});

const blockCases = [
  { rows: 1, pout: 1, P: 1, pad: 0 },
  { rows: 7, pout: 7, P: 3, pad: 1 }, // padding columns past P·pout stay as they were
  { rows: 33, pout: 52, P: 3, pad: 0 },
  { rows: 100, pout: 1, P: 16, pad: 3 },
  { rows: 3072, pout: 52, P: 16, pad: 0 }, // W₁ of a 16-model 3072-50-… population
];

for (const c of blockCases) {
  Deno.test(`copy_blocks ${c.rows} rows of ${c.P}×${c.pout} (+${c.pad}) matches float64 exactly`, async () => {
    const device = await gpuDevice();
    const rng = new Rng(c.rows * 31 + c.pout * 7 + c.P);
    const ld = c.P * c.pout + c.pad;
    const data = randomArray(rng, c.rows * ld);
    // every model takes a random one, itself included; model 0 keeps its own
    const origin = Array.from({ length: c.P }, (_, m) => (m === 0 ? 0 : rng.int(c.P)));
    const dst = upload(device, data);
    const src = device.createBuffer({
      size: dst.size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    const originBuf = device.createBuffer({
      size: 4 * c.P,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(originBuf, 0, new Uint32Array(origin));
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(dst, 0, src, 0, dst.size);
    device.queue.submit([enc.finish()]);
    const op = copyBlocksOp(device, {
      src,
      dst,
      origin: originBuf,
      rows: c.rows,
      ld,
      pout: c.pout,
      P: c.P,
    });
    await runOps(device, [op]);
    const got = await download(device, dst, c.rows * ld);
    const want = copyBlocksRef(data, c.rows, ld, c.pout, origin);
    const bad = want.findIndex((v, i) => v !== got[i]);
    assert.equal(bad, -1, `first difference at ${bad}`);
  });
}

Deno.test("copy_blocks rejects blocks beyond the rows and too few origins", async () => {
  const device = await gpuDevice();
  const buf = upload(device, new Float32Array(24));
  const origin = device.createBuffer({ size: 8, usage: GPUBufferUsage.STORAGE });
  assert.throws(
    () => copyBlocksOp(device, { src: buf, dst: buf, origin, rows: 2, ld: 12, pout: 5, P: 3 }),
    /3 blocks of 5 exceed ld 12/,
  );
  assert.throws(
    () => copyBlocksOp(device, { src: buf, dst: buf, origin, rows: 3, ld: 12, pout: 4, P: 3 }),
    /3 rows of 12 floats exceed its buffers/,
  );
  assert.throws(
    () => copyBlocksOp(device, { src: buf, dst: buf, origin, rows: 2, ld: 12, pout: 4, P: 3 }),
    /origin holds fewer than 3 models/,
  );
});
