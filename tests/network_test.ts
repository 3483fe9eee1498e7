/**
 * The whole network: float64 analytic gradients against numerical ones (centred ≤ 1e-6, forward
 * ≤ 1e-3), GPU float32 analytic gradients against float64 analytic (≤ 1e-4 relative, see relErr), for 1- to 4-layer nets and a population of
 * three models with different λ, and one GPU SGD step against its float64 twin.
 */

import assert from "node:assert/strict";
import { GpuParams } from "../src/model/gpu_params.ts";
import { initParams, type Params } from "../src/model/init.ts";
import { stepTable } from "../src/gpu/buffers.ts";
import { runOps } from "../src/kernels/op.ts";
import { gradients, maxRelativeError, numericalGradients } from "../src/reference/network.ts";
import { backwardPass, createWorkspace, forwardPass, lossOf } from "../src/train/graph.ts";
import { gpuGradients } from "../src/train/gpu_grads.ts";
import { placeOps, writeRows } from "../src/kernels/placement.ts";
import { writeBuffer } from "../src/gpu/buffers.ts";
import { gpuDevice, Rng } from "./helpers.ts";

/** Inputs already representable in float32, so both sides see the same numbers. */
function data(rng: Rng, n: number, d: number, C: number) {
  const X = Float64Array.from({ length: n * d }, () => Math.fround(rng.normal()));
  const y = Int32Array.from({ length: n }, () => rng.int(C));
  return { X, y };
}

/**
 * Relative error |a−b| / max(eps, |a|+|b|) with eps = 1% of the largest |b|: float32 arithmetic
 * leaves an absolute error near 1e-7·max|g| on every entry, which would read as a large relative
 * error on entries close to zero. Entries below the floor are thus held to ≈1e-6·max|g| absolute.
 */
function relErr(a: Float64Array, b: Float64Array): number {
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  return maxRelativeError(a, b, 1e-2 * scale + 1e-30);
}

Deno.test("float64 analytic gradients match centred and forward differences", () => {
  const rng = new Rng(1);
  for (const sizes of [[10, 5], [12, 8, 5], [12, 8, 6, 5], [12, 8, 6, 6, 5]]) {
    for (const lambda of [0, 0.1]) {
      const p = initParams(sizes, "he", 0, 7);
      for (const b of p.b) for (let i = 0; i < b.length; i++) b[i] = 0.1 * rng.normal();
      const { X, y } = data(rng, 4, sizes[0], sizes.at(-1)!);
      const a = gradients(p, X, y, 4, lambda);
      const c = numericalGradients(p, X, y, 4, lambda, 1e-6, true);
      const f = numericalGradients(p, X, y, 4, lambda, 1e-6, false);
      for (let l = 0; l < a.W.length; l++) {
        const tag = `${sizes.join("-")} λ=${lambda} layer ${l + 1}`;
        assert.ok(
          maxRelativeError(a.W[l], c.W[l]) <= 1e-6,
          `${tag} W centred ${maxRelativeError(a.W[l], c.W[l])}`,
        );
        assert.ok(maxRelativeError(a.b[l], c.b[l]) <= 1e-6, `${tag} b centred`);
        assert.ok(
          maxRelativeError(a.W[l], f.W[l]) <= 1e-3,
          `${tag} W forward ${maxRelativeError(a.W[l], f.W[l])}`,
        );
      }
    }
  }
});

Deno.test("GPU gradients match float64 for 1-4 layer nets and a 3-model population", async () => {
  const device = await gpuDevice();
  const rng = new Rng(2);
  for (
    const [sizes, n] of [[[20, 10], 7], [[20, 50, 10], 33], [[7, 33, 10], 100], [
      [20, 50, 30, 10],
      1,
    ], [[20, 13, 9, 7, 10], 33]] as const
  ) {
    const lambdas = [0, 0.01, 0.5];
    const models: Params[] = lambdas.map((_, p) => {
      const m = initParams([...sizes], "xavier", 0, 10 + p);
      for (const b of m.b) for (let i = 0; i < b.length; i++) b[i] = 0.05 * rng.normal();
      for (const a of [...m.W, ...m.b]) for (let i = 0; i < a.length; i++) a[i] = Math.fround(a[i]);
      return m;
    });
    const { X, y } = data(rng, n, sizes[0], sizes.at(-1)!);
    const got = await gpuGradients(device, models, lambdas, X, y, n);
    models.forEach((m, p) => {
      const want = gradients(m, X, y, n, lambdas[p]);
      for (let l = 0; l < want.W.length; l++) {
        const tag = `${sizes.join("-")} n=${n} model ${p} layer ${l + 1}`;
        assert.ok(
          relErr(got[p].W[l], want.W[l]) <= 1e-4,
          `${tag} W ${relErr(got[p].W[l], want.W[l])}`,
        );
        assert.ok(
          relErr(got[p].b[l], want.b[l]) <= 1e-4,
          `${tag} b ${relErr(got[p].b[l], want.b[l])}`,
        );
      }
    });
  }
});

// with textures (and the row threshold lowered to these small layers): X, G₁ and W₁ reach layer
// 1's products through texture copies (W₁ seeded by the prologue)
for (const textures of [false, true]) {
  Deno.test(`one GPU SGD step equals W − η·grad in float64${textures ? " (textures)" : ""}`, async () => {
    const device = await gpuDevice();
    const rng = new Rng(3);
    const sizes = [20, 50, 10], n = 33, eta = 0.1, lambdas = [0.01, 0.1];
    const models = lambdas.map((_, p) => initParams(sizes, "he", 0, 20 + p));
    const { X, y } = data(rng, n, 20, 10);
    const params = new GpuParams(device, sizes, lambdas);
    models.forEach((m, p) => params.upload(p, m));
    const ws = createWorkspace(params, { rows: n, training: true });
    const steps = stepTable(device, [{ eta }], "steps");
    const placed = placeOps(device, [
      ...forwardPass(params, ws),
      lossOf(params, ws, "train"),
      ...backwardPass(params, ws, { kind: "sgd", steps }),
    ], { textures, longRows: 1 });
    const copies = ["G1", "W1", "X"].filter((m) => placed.copies.includes(m));
    assert.deepEqual(copies, textures ? ["G1", "W1", "X"] : []);
    assert.equal(ws.X.buffer === null, textures, "the inputs live in a texture alone");
    writeRows(device, ws.X, X, n, 20);
    writeBuffer(device, ws.y, 0, Uint32Array.from(y));
    await runOps(device, [...placed.prologue, ...placed.ops]);
    const after = await params.download();
    models.forEach((m, p) => {
      const g = gradients(m, X, y, n, lambdas[p]);
      for (let l = 0; l < 2; l++) {
        const wantW = m.W[l].map((w, i) => w - eta * g.W[l][i]);
        const wantB = m.b[l].map((b, i) => b - eta * g.b[l][i]);
        let errW = 0, errB = 0;
        for (let i = 0; i < wantW.length; i++) {
          errW = Math.max(errW, Math.abs(after[p].W[l][i] - wantW[i]));
        }
        for (let i = 0; i < wantB.length; i++) {
          errB = Math.max(errB, Math.abs(after[p].b[l][i] - wantB[i]));
        }
        assert.ok(errW <= 1e-6, `model ${p} W${l + 1} off by ${errW}`);
        assert.ok(errB <= 1e-6, `model ${p} b${l + 1} off by ${errB}`);
      }
    });
    ws.destroy();
    placed.destroy();
    params.destroy();
  });
}

Deno.test("float64 BN network: analytic γ, β, W, b gradients match centred differences", () => {
  const rng = new Rng(9);
  for (
    const [sizes, bn] of [[[10, 8, 5], [true]], [[10, 8, 6, 5], [true, false]], [[10, 8, 6, 6, 5], [
      true,
      true,
      true,
    ]]] as const
  ) {
    for (const bnL2 of [false, true]) {
      const p = initParams([...sizes], "he", 0, 4, [...bn]);
      for (const q of p.bn!) {
        if (!q) continue;
        for (let j = 0; j < q.gamma.length; j++) {
          q.gamma[j] = 1 + 0.2 * rng.normal();
          q.beta[j] = 0.1 * rng.normal();
        }
      }
      const { X, y } = data(rng, 6, sizes[0], sizes.at(-1)!);
      const a = gradients(p, X, y, 6, 0.05, { bnL2 });
      const c = numericalGradients(p, X, y, 6, 0.05, 3e-5, true, { bnL2 });
      const tag = `${sizes.join("-")} bn=${bn} bnL2=${bnL2}`;
      for (let l = 0; l < a.W.length; l++) {
        assert.ok(
          maxRelativeError(a.W[l], c.W[l], 1e-4) <= 1e-6,
          `${tag} W${l + 1} ${maxRelativeError(a.W[l], c.W[l], 1e-4)}`,
        );
        if (p.bn![l]) {
          assert.ok(maxRelativeError(a.gamma![l]!, c.gamma![l]!, 1e-4) <= 1e-6, `${tag} γ${l + 1}`);
          assert.ok(maxRelativeError(a.beta![l]!, c.beta![l]!, 1e-4) <= 1e-6, `${tag} β${l + 1}`);
        } else {
          assert.ok(maxRelativeError(a.b[l], c.b[l], 1e-4) <= 1e-6, `${tag} b${l + 1}`);
        }
      }
    }
  }
});
