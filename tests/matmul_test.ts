/**
 * matmul.wgsl against its float64 twin, for every variant and epilogue, on awkward shapes
 * (1, 7, 33, 100, 3072: none a multiple of any tile), batched (Z > 1) and with padded layouts.
 *
 * Tolerance: |gpu − ref| ≤ 1e-5·Σ_k|a_ik·b_kj|·s + 1e-6·|ref| + 1e-30, where s is the factor the
 * epilogue applies to the product (η for sgd, 1 otherwise). float32 rounding of a K-term dot
 * product stays far below 1e-5 of Σ|a·b| for K ≤ 3072 with random data.
 */

import { matmulOp } from "../src/kernels/matmul.ts";
import { gpuDevice, Rng, upload } from "./helpers.ts";
import { type Case, caseTags, check, checkSoftmax, epilogues } from "./matmul_check.ts";
import assert from "node:assert/strict";

const cases: Case[] = [
  { v: "nn", M: 1, N: 1, K: 1 },
  { v: "nn", M: 7, N: 10, K: 33 },
  { v: "nn", M: 33, N: 7, K: 100 },
  { v: "nn", M: 100, N: 50, K: 3072 },
  { v: "nn", M: 100, N: 10, K: 50, Z: 3, a: "side", b: "side" },
  { v: "nn", M: 33, N: 50, K: 7, Z: 3, a: "shared", b: "side" },
  { v: "nn", M: 7, N: 33, K: 33, Z: 2, a: "side", b: "stacked", tile: { tm: 12, tn4: 3, wg: 16 } },
  { v: "tn", M: 3072, N: 50, K: 100 },
  { v: "tn", M: 33, N: 7, K: 1 },
  { v: "tn", M: 7, N: 33, K: 100 },
  { v: "tn", M: 1, N: 10, K: 7 },
  { v: "tn", M: 50, N: 10, K: 100, Z: 3, a: "side", b: "side" },
  { v: "tn", M: 33, N: 7, K: 33, Z: 2, a: "shared", b: "side", tile: { tm: 4, tn4: 1, wg: 4 } },
  { v: "nn", M: 100, N: 50, K: 3072, tex: true },
  { v: "nn", M: 7, N: 33, K: 33, Z: 2, a: "shared", b: "side", tex: true },
  { v: "tn", M: 3072, N: 50, K: 100, tex: true },
  { v: "tn", M: 33, N: 7, K: 1, Z: 3, a: "shared", b: "side", tex: true },
  // B from a texture, wrapped textures (the buffer's quads in order, 16 or 32 a texture row, the
  // last one partial), λ by column block (layer 1 of a population)
  { v: "nn", M: 100, N: 50, K: 3072, tex: true, btex: true },
  { v: "nn", M: 7, N: 33, K: 33, Z: 2, a: "shared", b: "side", tex: true, btex: true },
  { v: "nn", M: 100, N: 50, K: 3072, tex: true, btex: true, wrap: "b" },
  { v: "nn", M: 7, N: 33, K: 33, Z: 2, a: "shared", b: "side", tex: true, btex: true, wrap: "ab" },
  { v: "nn", M: 33, N: 100, K: 7, btex: true, wrap: "b", tile: { tm: 20, tn4: 4, wg: 8 } },
  { v: "tn", M: 3072, N: 50, K: 100, tex: true, btex: true },
  { v: "tn", M: 3072, N: 50, K: 100, tex: true, btex: true, wrap: "b" },
  { v: "tn", M: 33, N: 7, K: 1, Z: 3, a: "shared", b: "side", btex: true, wrap: "b" },
  { v: "tn", M: 7, N: 2 * 36 + 33, K: 33, tex: true, btex: true, wrap: "ab", lamColumns: 36 },
  // the same texture operands bound for sampling instead of as read-only storage textures
  { v: "nn", M: 100, N: 50, K: 3072, tex: true, btex: true, sampled: true },
  {
    v: "nn",
    M: 7,
    N: 33,
    K: 33,
    Z: 2,
    a: "shared",
    b: "side",
    tex: true,
    btex: true,
    sampled: true,
  },
  { v: "tn", M: 3072, N: 50, K: 100, tex: true, btex: true, wrap: "b", sampled: true },
  { v: "tn", M: 33, N: 7, K: 1, Z: 3, a: "shared", b: "side", tex: true, sampled: true },
  { v: "nn", M: 1, N: 2 * 8 + 7, K: 100, lamColumns: 8 },
  { v: "nt", M: 100, N: 50, K: 10 },
  { v: "nt", M: 7, N: 33, K: 3072 },
  { v: "nt", M: 1, N: 7, K: 33 },
  { v: "nt", M: 33, N: 1, K: 7 },
  { v: "nt", M: 100, N: 50, K: 10, Z: 3, a: "side", b: "side" },
  { v: "nt", M: 7, N: 100, K: 33, Z: 2, a: "side", b: "stacked", tile: { tm: 8, tn4: 3, wg: 16 } },
  { v: "nt", M: 7, N: 33, K: 10, Z: 3, a: "side", b: "side" },
];

// The output layer with its loss fused in (bias_softmax_ce: C = (softmax(A·B + bias) − onehot(y))·
// scale), against the twin's product followed by softmaxCeRef. Tolerance: the scores' error (as
// above, ≤ 1e-5·Σ|a·b|) moves a probability by at most that much, scaled by `scale`; plus 1e-6.
const softmaxCases: Case[] = [
  { v: "nn", M: 1, N: 1, K: 1 },
  { v: "nn", M: 7, N: 10, K: 33 },
  { v: "nn", M: 33, N: 7, K: 100 },
  { v: "nn", M: 100, N: 10, K: 3072, tex: true },
  { v: "nn", M: 100, N: 10, K: 3072, tex: true, sampled: true },
  { v: "nn", M: 100, N: 10, K: 50, Z: 3, a: "side", b: "side" },
  { v: "nn", M: 7, N: 32, K: 33, Z: 2, a: "side", b: "stacked" },
  { v: "nn", M: 33, N: 3, K: 7, Z: 3, a: "side", b: "side" },
  { v: "nn", M: 7, N: 10, K: 33, tex: true, btex: true, wrap: "ab" },
];

for (const c of softmaxCases) {
  Deno.test(`matmul_nn ${c.M}x${c.N}x${c.K} Z=${c.Z ?? 1}${caseTags(c)} with the softmax cross-entropy fused matches float64`, async () => {
    await checkSoftmax(c);
  });
}

Deno.test("matmul: bias_softmax_ce is refused where a row does not fit one invocation", async () => {
  const device = await gpuDevice();
  const buf = upload(device, new Float32Array(64 * 64));
  const operand = { buffer: buf, ld: 64 };
  const base = {
    variant: "nn" as const,
    M: 4,
    K: 4,
    a: operand,
    b: operand,
    c: operand,
    epilogue: "bias_softmax_ce" as const,
    aux: { buffer: buf },
    softmax: { labels: buf, scale: 1 },
  };
  assert.throws(() => matmulOp(device, { ...base, N: 33 }), /at most 32 columns/);
  assert.throws(
    () => matmulOp(device, { ...base, N: 10, tile: { tm: 4, tn4: 2, wg: 8 } }),
    /whole rows/,
  );
  assert.throws(() => matmulOp(device, { ...base, N: 10, variant: "tn" }), /needs nn/);
  assert.throws(
    () => matmulOp(device, { ...base, N: 10, softmax: undefined }),
    /needs aux and softmax/,
  );
});

for (const c of cases) {
  Deno.test(`matmul_${c.v} ${c.M}x${c.N}x${c.K} Z=${c.Z ?? 1}${caseTags(c)} matches float64 for every epilogue`, async () => {
    const rng = new Rng(c.M * 1000003 + c.N * 1009 + c.K);
    for (const epi of epilogues) await check(c, epi, rng);
  });
}
