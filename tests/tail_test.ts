/**
 * The tail (shaders/tail.wgsl, src/kernels/tail.ts): the top one or two layers of an SGD step in
 * one dispatch. It must change no bit against the products it replaces (placement's fusion on and
 * off, whole steps), match its float64 twin (src/reference/tail.ts) on awkward shapes, and be
 * chosen only where it fits.
 */

import assert from "node:assert/strict";
import { readFloats, stepTable, writeBuffer } from "../src/gpu/buffers.ts";
import { runOps } from "../src/kernels/op.ts";
import { initParams } from "../src/model/init.ts";
import { placeOps, TAIL_LAYERS, writeRows } from "../src/kernels/placement.ts";
import { GpuParams } from "../src/model/gpu_params.ts";
import { backwardPass, createWorkspace, forwardPass, lossOf } from "../src/train/graph.ts";
import { assertClose, download, downloadTexture, gpuDevice, Rng, upload } from "./helpers.ts";
import { pad4 } from "../src/gpu/buffers.ts";
import {
  TAIL_MAX_ITERATIONS,
  tailFits,
  tailIterations,
  tailLayout,
  tailOp,
} from "../src/kernels/tail.ts";
import { tailRef } from "../src/reference/tail.ts";

interface StepCase {
  sizes: number[];
  R: number;
  P: number;
  dropout?: number[];
  textures?: boolean;
  longRows?: number;
  steps?: number;
  /** Layers the tail may take (default 2, the gpu profile's; the cpu profile's is 1). */
  tailLayers?: 1 | 2;
}

/** Parameters (W and b of every layer) after a few SGD steps, with the tail on or off. */
async function train(
  c: StepCase,
  tail: boolean,
): Promise<{ labels: string[]; out: Float32Array[] }> {
  const device = await gpuDevice();
  const { sizes, R, P } = c;
  const rng = new Rng(5);
  const X = Array.from({ length: R * sizes[0] }, () => rng.normal());
  const y = Uint32Array.from({ length: R }, () => Math.floor(rng.uniform() * sizes.at(-1)!));
  const params = new GpuParams(device, sizes, Array.from({ length: P }, (_, z) => 0.01 * z));
  for (let z = 0; z < P; z++) params.upload(z, initParams(sizes, "he", 0, 7 + z));
  const ws = createWorkspace(params, { rows: R, training: true });
  const steps = stepTable(device, [{ eta: 0.05, step: 3 }], "steps");
  const net = { dropout: c.dropout, seed: 11 };
  const placed = placeOps(device, [
    ...forwardPass(params, ws, { mode: "train", steps, net }),
    lossOf(params, ws, "train"),
    ...backwardPass(params, ws, { kind: "sgd", steps }, { net }),
  ], { tail, textures: c.textures, longRows: c.longRows, tailLayers: c.tailLayers ?? 2 });
  writeRows(device, ws.X, X, R, sizes[0]);
  writeBuffer(device, ws.y, 0, y);
  for (let t = 0; t < (c.steps ?? 3); t++) {
    await runOps(device, [...placed.prologue, ...placed.ops]);
  }
  const out = await Promise.all([...params.W, ...params.b].map((w) => readFloats(device, w)));
  const labels = placed.ops.map((op) => op.label);
  placed.destroy();
  ws.destroy();
  steps.destroy();
  params.destroy();
  return { labels, out };
}

async function assertSameBits(c: StepCase, fusedOps: number) {
  const fused = await train(c, true);
  const plain = await train(c, false);
  assert.equal(fused.labels.length, fusedOps, fused.labels.join(" "));
  assert.ok(fused.labels.some((l) => l.startsWith("tail(")), fused.labels.join(" "));
  fused.out.forEach((w, i) => {
    const bad = w.findIndex((v, k) => !Object.is(v, plain.out[i][k]));
    assert.equal(
      bad,
      -1,
      `${JSON.stringify(c)}: buffer ${i} differs at ${bad}: ${w[bad]} vs ${plain.out[i][bad]}`,
    );
  });
}

Deno.test("tail: the output layer of a 2-layer net in one dispatch changes no bit", async () => {
  for (
    const [sizes, R, P] of [[[20, 30, 7], 33, 3], [[7, 1, 3], 1, 1], [[33, 7, 10], 100, 2], [
      [5, 33, 16],
      7,
      1,
    ]] as const
  ) {
    await assertSameBits({ sizes: [...sizes], R, P }, 3);
  }
});

Deno.test("tail: a 3-layer net's top two layers in one dispatch change no bit, dropout included", async () => {
  for (
    const [sizes, R, P] of [[[20, 30, 7, 10], 33, 3], [[7, 1, 5, 3], 1, 1], [
      [33, 50, 30, 10],
      100,
      2,
    ]] as const
  ) {
    await assertSameBits({ sizes: [...sizes], R, P }, 3);
    await assertSameBits({ sizes: [...sizes], R, P, dropout: [0.2, 0.3] }, 3);
  }
});

Deno.test("tail: at the real sizes, with layer 1 through textures (G1 written to its copy), no bit changes", async () => {
  await assertSameBits({ sizes: [3072, 50, 10], R: 100, P: 1, textures: true }, 3);
  await assertSameBits({ sizes: [3072, 50, 30, 10], R: 100, P: 2, textures: true }, 3);
});

Deno.test("tail: a hidden layer too wide for workgroup memory keeps its activations in their buffer, no bit changes", async () => {
  const device = await gpuDevice();
  // 3072-50-50-10 at batch 100: G_o, H_a and G_a need 46 400 bytes of workgroup memory
  const shape = { R: 100, nIn: 50, out: 10, hidden: 50, gBuffer: false };
  assert.deepEqual(tailLayout(device, shape), { haStorage: true });
  assert.deepEqual(tailLayout(device, { ...shape, hidden: 30 }), { haStorage: false });
  await assertSameBits({ sizes: [3072, 50, 50, 10], R: 100, P: 2, textures: true }, 3);
  await assertSameBits({ sizes: [33, 50, 50, 10], R: 100, P: 1, dropout: [0.2, 0.3] }, 3);
});

interface TwinCase {
  R: number;
  P: number;
  nIn: number;
  hidden?: number;
  out: number;
  dropout?: number;
  inputDropout?: number;
  texture?: boolean;
  /** H_a in a buffer instead of workgroup memory. */
  haStorage?: boolean;
}

/** A population-layout matrix of `rows` rows, P blocks of `cols` (padded to 4, padding zero). */
function blocks(rng: Rng, rows: number, cols: number, P: number, f: () => number) {
  const pout = pad4(cols), ld = P * pout;
  const data = new Float32Array(rows * ld);
  for (let r = 0; r < rows; r++) {
    for (let z = 0; z < P; z++) for (let c = 0; c < cols; c++) data[r * ld + z * pout + c] = f();
  }
  void rng;
  return { data, ld, pout };
}

/** tailOp against tailRef: W, b of each layer and G_in after one step. */
async function assertTwin(c: TwinCase) {
  const device = await gpuDevice();
  const rng = new Rng(c.R * 131 + c.nIn * 7 + c.out);
  const { R, P } = c;
  const H = blocks(rng, R, c.nIn, P, () => Math.max(0, rng.range(-0.5, 1)));
  const layer = (nIn: number, nOut: number) => {
    const W = blocks(rng, nIn, nOut, P, () => rng.range(-0.5, 0.5));
    const b = blocks(rng, 1, nOut, P, () => rng.range(-0.2, 0.2));
    return { nOut, ld: W.ld, pout: W.pout, W: W.data, b: b.data };
  };
  const hid = c.hidden ? layer(c.nIn, c.hidden) : undefined;
  const out = layer(c.hidden ?? c.nIn, c.out);
  const labels = Uint32Array.from({ length: R }, () => Math.floor(rng.uniform() * c.out));
  const lambda = Float32Array.from({ length: P }, (_, z) => 0.01 * (z + 1));
  const eta = 0.1, step = 5;
  const dropout = c.dropout ? { p: c.dropout, seed: 3, layer: 1 } : undefined;
  const gpuLayer = (l: typeof out) => ({ ...l, W: upload(device, l.W), b: upload(device, l.b) });
  const activations = c.haStorage && hid ? upload(device, new Float32Array(R * hid.ld)) : undefined;
  const gHid = hid && { ...gpuLayer(hid), dropout, activations };
  const gOut = gpuLayer(out);
  const qIn = H.ld / 4;
  const output = c.texture
    ? device.createTexture({
      size: [qIn, R],
      format: "rgba32float",
      usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_SRC,
    })
    : upload(device, new Float32Array(R * H.ld));
  const steps = stepTable(device, [{ eta, step }], "steps");
  const op = tailOp(device, {
    R,
    P,
    input: { buffer: upload(device, H.data), nIn: c.nIn, ld: H.ld, zStride: H.pout },
    output,
    inputDropout: c.inputDropout ? { p: c.inputDropout } : undefined,
    hidden: gHid,
    out: gOut,
    labels: upload(device, labels),
    lambda: upload(device, lambda),
    steps,
  });
  await runOps(device, [op]);
  const f64 = (l: typeof out) => ({ ...l, W: Float64Array.from(l.W), b: Float64Array.from(l.b) });
  const rHid = hid && { ...f64(hid), dropout }, rOut = f64(out);
  const gIn = tailRef({
    R,
    P,
    input: { data: H.data, nIn: c.nIn, ld: H.ld, zStride: H.pout },
    inputDropout: c.inputDropout,
    hidden: rHid,
    out: rOut,
    labels,
    lambda: Array.from(lambda),
    eta,
    step,
  });
  const what = JSON.stringify(c);
  // float32 against float64: a step moves W by η·grad, grad a sum of R products of values ≤ 1
  const tol = (scale: number) => () => 1e-5 * scale;
  const got = c.texture
    ? await downloadTexture(device, output as GPUTexture, qIn, R)
    : await download(device, output as GPUBuffer, R * H.ld);
  assertClose(got, gIn, tol(1), `${what}: G_in`);
  for (const [name, g, r] of [["out", gOut, rOut], ["hidden", gHid, rHid]] as const) {
    if (!g || !r) continue;
    assertClose(await download(device, g.W, r.W.length), r.W, tol(eta * R), `${what}: W ${name}`);
    assertClose(await download(device, g.b, r.b.length), r.b, tol(eta * R), `${what}: b ${name}`);
  }
  steps.destroy();
}

Deno.test("tail: one layer matches its float64 twin on awkward shapes", async () => {
  for (const R of [1, 7, 33, 100]) {
    for (const [nIn, out] of [[1, 1], [7, 3], [33, 10], [100, 16]]) {
      await assertTwin({ R, P: R === 33 ? 3 : 1, nIn, out });
    }
  }
  await assertTwin({ R: 33, P: 2, nIn: 33, out: 10, inputDropout: 0.25, texture: true });
});

Deno.test("tail: two layers match their float64 twin on awkward shapes, dropout included", async () => {
  for (
    const [R, nIn, hidden, out, P] of [[1, 1, 1, 1, 1], [7, 7, 33, 3, 2], [33, 33, 7, 10, 3], [
      100,
      100,
      30,
      10,
      1,
    ], [33, 50, 33, 16, 2]]
  ) {
    await assertTwin({ R, P, nIn, hidden, out });
    await assertTwin({ R, P, nIn, hidden, out, dropout: 0.3, inputDropout: 0.2, texture: R === 7 });
    await assertTwin({ R, P, nIn, hidden, out, dropout: 0.1, haStorage: true });
  }
});

Deno.test("tail: the cpu profile fuses the output layer alone, the gpu profile two layers", async () => {
  const one = await train({ sizes: [20, 30, 16, 10], R: 33, P: 2, steps: 1, tailLayers: 1 }, true);
  assert.deepEqual(one.labels, [
    "forward1",
    "forward2",
    "tail(forward3+softmax_ce_train,backward_input3,backward_weights3)",
    "backward_input2",
    "backward_weights2",
    "backward_weights1",
  ]);
  const two = await train({ sizes: [20, 30, 16, 10], R: 33, P: 2, steps: 1 }, true);
  assert.equal(two.labels.length, 3);
  assert.deepEqual(TAIL_LAYERS, { cpu: 1, gpu: 2 });
});

Deno.test("tail: chosen only where it fits a workgroup", async () => {
  const device = await gpuDevice();
  // the course's nets at batch 100 fit, on the device's limits
  assert.ok(tailFits(device, { R: 100, nIn: 50, out: 10, gBuffer: false }));
  assert.ok(tailFits(device, { R: 100, nIn: 50, out: 10, hidden: 30, gBuffer: false }));
  // too many rows for workgroup memory, too many classes for one row per invocation
  assert.ok(!tailFits(device, { R: 4096, nIn: 50, out: 10, gBuffer: false }));
  assert.ok(!tailFits(device, { R: 100, nIn: 50, out: 17, gBuffer: false }));
  // too long a loop per invocation for llvmpipe's cap
  assert.ok(tailIterations(100, 2048, 10, 2048, 64) > TAIL_MAX_ITERATIONS);
  assert.ok(!tailFits(device, { R: 100, nIn: 2048, out: 10, hidden: 2048, gBuffer: false }));
  // and the step falls back to the products it would have replaced
  const big = await train({ sizes: [20, 30, 10], R: 2000, P: 1, steps: 1 }, true);
  assert.ok(!big.labels.some((l) => l.startsWith("tail(")), big.labels.join(" "));
  assert.equal(big.labels.length, 5);
});
