/**
 * softmax_ce.wgsl against its float64 twin: training gradient and evaluation stats, for 1, 7,
 * 33 and 100 rows, 1 to 3 models, 1/7/10 classes, with scores large enough to need the max shift.
 * Tolerance: gradient 1e-6 absolute (probabilities ≤ 1, scale 1/R), loss 1e-5·(1 + |loss|).
 */

import assert from "node:assert/strict";
import { pad4 } from "../src/gpu/buffers.ts";
import { runOps } from "../src/kernels/op.ts";
import { softmaxCeOp } from "../src/kernels/softmax_ce.ts";
import { softmaxCeRef } from "../src/reference/softmax_ce.ts";
import { assertClose, download, gpuDevice, Rng, upload } from "./helpers.ts";

const shapes = [[1, 1, 10], [7, 2, 10], [33, 3, 7], [100, 1, 10], [100, 3, 1], [5, 1, 33]];

for (const [R, Z, C] of shapes) {
  Deno.test(`softmax_ce R=${R} Z=${Z} C=${C} matches float64 (train and eval)`, async () => {
    const device = await gpuDevice();
    const rng = new Rng(R * 31 + Z * 7 + C);
    const zStride = pad4(C), ld = Z * zStride;
    const scores = new Float32Array(R * ld);
    for (let i = 0; i < R; i++) {
      for (let z = 0; z < Z; z++) {
        for (let c = 0; c < C; c++) scores[i * ld + z * zStride + c] = 30 * rng.range(-1, 1);
      }
    }
    const labels = Uint32Array.from({ length: R }, () => rng.int(C));
    const ref64 = Float64Array.from(scores);
    const ref = softmaxCeRef(ref64, labels, R, Z, C, ld, zStride, 1 / R);

    const sBuf = upload(device, scores);
    const stats = device.createBuffer({
      size: R * Z * 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    const common = { R, Z, C, scores: sBuf, ld, zStride, labels: upload(device, labels) };
    await runOps(device, [softmaxCeOp(device, { ...common, mode: "eval", stats })]);
    const st = await download(device, stats, R * Z * 4);
    for (let k = 0; k < R * Z; k++) {
      const loss = st[4 * k];
      assert.ok(
        Math.abs(loss - ref.loss[k]) <= 1e-5 * (1 + Math.abs(ref.loss[k])),
        `loss ${k}: ${loss} vs ${ref.loss[k]}`,
      );
      assert.equal(st[4 * k + 1], ref.correct[k], `correct ${k}`);
      assert.equal(st[4 * k + 2], ref.predicted[k], `predicted ${k}`);
    }
    // eval mode leaves the scores alone
    assert.deepEqual(await download(device, sBuf, scores.length), scores);

    await runOps(device, [
      softmaxCeOp(device, { ...common, mode: "train", scale: 1 / R }),
    ]);
    const g = await download(device, sBuf, scores.length);
    assertClose(g, ref64, () => 1e-6, `gradient R=${R} Z=${Z} C=${C}`);
  });
}
