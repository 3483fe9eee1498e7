/**
 * colsum.wgsl against its float64 twin, store and fused SGD, on awkward shapes.
 * Tolerance: 1e-6·Σ|g| (+ 1e-6·|b| for the update).
 */

import { pad4, stepTable } from "../src/gpu/buffers.ts";
import { colsumOp } from "../src/kernels/colsum.ts";
import { runOps } from "../src/kernels/op.ts";
import { colsumRef } from "../src/reference/colsum.ts";
import { assertClose, download, gpuDevice, randomArray, Rng, upload } from "./helpers.ts";

for (
  const [R, N, Z] of [[1, 1, 1], [100, 50, 1], [7, 10, 3], [33, 7, 2], [500, 33, 1], [100, 3072, 1]]
) {
  Deno.test(`colsum R=${R} N=${N} Z=${Z} matches float64 (store and sgd)`, async () => {
    const device = await gpuDevice();
    const rng = new Rng(R + N * 100 + Z);
    const zStride = pad4(N), ld = Z * zStride + 4;
    const g = randomArray(rng, R * ld);
    const absSum = new Float64Array(ld);
    colsumRef(g.map(Math.abs), R, N, Z, ld, zStride, absSum);
    const gBuf = upload(device, g);
    for (const mode of ["store", "sgd"] as const) {
      const out = randomArray(rng, ld + 8);
      const want = Float64Array.from(out);
      const eta = 0.37;
      colsumRef(g, R, N, Z, ld, zStride, want, 8, mode === "sgd" ? eta : undefined);
      const oBuf = upload(device, out);
      const steps = stepTable(device, [{}, {}, { eta }], "steps");
      await runOps(device, [
        colsumOp(device, { R, N, Z, g: gBuf, ld, zStride, out: oBuf, outOffset: 8, mode, steps }),
      ], 2);
      const got = await download(device, oBuf, out.length);
      assertClose(
        got,
        want,
        (i) => 1e-6 * ((i >= 8 ? absSum[i - 8] : 0) + Math.abs(want[i])) + 1e-30,
        `colsum ${mode}`,
      );
    }
  });
}
