/**
 * copy.wgsl against its float64 twin: a buffer matrix into an rgba32float texture, on awkward
 * shapes (rows not a multiple of 256 bytes, widths of 1 and 7 quads, 3072 rows). A copy is exact.
 */

import assert from "node:assert/strict";
import { copyToTextureOp } from "../src/kernels/copy.ts";
import { runOps } from "../src/kernels/op.ts";
import { copyToTextureRef } from "../src/reference/copy.ts";
import { downloadTexture, gpuDevice, randomArray, Rng, upload } from "./helpers.ts";

const cases = [
  { width: 1, height: 1, ld: 4 },
  { width: 7, height: 33, ld: 36 }, // texture narrower than the rows: the tail is not copied
  { width: 13, height: 3072, ld: 52 }, // W₁ of a 3072-50-… net
  { width: 208, height: 100, ld: 832 }, // G₁ of a 16-model population, batch 100
];

for (const c of cases) {
  Deno.test(`copy_to_texture ${c.width}x${c.height} (ld ${c.ld}) matches float64 exactly`, async () => {
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
    const want = copyToTextureRef(src, c.ld, c.width, c.height);
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
