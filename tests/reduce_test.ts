/**
 * reduce.wgsl against its twins: per-model row sums over a chunk's valid rows, sums of squared
 * weights over a model's logical block (3072×50, the largest real layer), and confusion counts.
 * Tolerance: sums within 1e-6·Σ|terms|; counts exact.
 */

import assert from "node:assert/strict";
import { pad4, stepTable } from "../src/gpu/buffers.ts";
import { runOps } from "../src/kernels/op.ts";
import { confusionOp, reduceRowsOp, sumSquaresOp } from "../src/kernels/reduce.ts";
import { confusionRef, reduceRowsRef, sumSquaresRef } from "../src/reference/reduce.ts";
import { download, gpuDevice, randomArray, Rng, upload } from "./helpers.ts";

Deno.test("reduce_rows and confusion match their twins (valid rows only, two slots)", async () => {
  const device = await gpuDevice();
  const rng = new Rng(3);
  for (const [R, Z, rows] of [[1, 1, 1], [100, 3, 100], [2000, 2, 1333], [33, 1, 7]]) {
    const C = 10;
    const stats = new Float32Array(R * Z * 4);
    const loss = new Float64Array(R * Z),
      correct = new Float64Array(R * Z),
      pred = new Int32Array(R * Z);
    for (let k = 0; k < R * Z; k++) {
      loss[k] = stats[4 * k] = rng.range(0, 5);
      correct[k] = stats[4 * k + 1] = rng.int(2);
      pred[k] = stats[4 * k + 2] = rng.int(C);
    }
    const labels = Uint32Array.from({ length: R }, () => rng.int(C));
    const metrics = upload(device, new Float32Array(3 * Z * 4));
    const counts = upload(device, new Uint32Array(Z * C * C));
    const steps = stepTable(device, [{ rows, slot: 2 }], "s");
    const sBuf = upload(device, stats);
    await runOps(device, [
      reduceRowsOp(device, { R, Z, stats: sBuf, metrics, steps }),
      reduceRowsOp(device, { R, Z, stats: sBuf, metrics, steps }), // accumulates
      confusionOp(device, { R, Z, C, stats: sBuf, labels: upload(device, labels), counts, steps }),
    ]);
    const m = await download(device, metrics, 3 * Z * 4);
    const cm = new Uint32Array((await download(device, counts, Z * C * C)).buffer);
    for (let z = 0; z < Z; z++) {
      const want = reduceRowsRef(loss, correct, rows, Z, z);
      const at = (2 * Z + z) * 4;
      assert.ok(Math.abs(m[at] - 2 * want.loss) <= 1e-6 * 2 * want.loss + 1e-6, `loss z=${z}`);
      assert.equal(m[at + 1], 2 * want.correct, `correct z=${z}`);
      assert.equal(m[at + 3], 2 * rows, `rows z=${z}`);
      assert.equal(m[z * 4], 0, "other slots untouched");
      const conf = confusionRef(labels, pred, rows, Z, z, C);
      assert.deepEqual(
        [...cm.subarray(z * C * C, (z + 1) * C * C)],
        conf.flat(),
        `confusion z=${z}`,
      );
    }
  }
});

Deno.test("sum_squares matches its twin on 3072x50 (Z=1) and 7x33 blocks (Z=3)", async () => {
  const device = await gpuDevice();
  const rng = new Rng(11);
  for (const [rows, cols, Z] of [[3072, 50, 1], [7, 33, 3], [1, 1, 2], [50, 10, 16]]) {
    const zStride = pad4(cols), ld = Z * zStride;
    const w = randomArray(rng, pad4(rows) * ld);
    const metrics = upload(device, new Float32Array(Z * 4));
    await runOps(device, [
      sumSquaresOp(device, {
        Z,
        w: upload(device, w),
        rows,
        cols,
        ld,
        zStride,
        metrics,
        steps: stepTable(device, [{ slot: 0 }], "s"),
      }),
    ]);
    const m = await download(device, metrics, Z * 4);
    for (let z = 0; z < Z; z++) {
      const want = sumSquaresRef(w, rows, cols, ld, zStride, z);
      assert.ok(
        Math.abs(m[z * 4 + 2] - want) <= 1e-6 * want,
        `${rows}x${cols} z=${z}: ${m[z * 4 + 2]} vs ${want}`,
      );
    }
  }
});
