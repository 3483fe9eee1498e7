/**
 * Operand placement (src/kernels/placement.ts): a test per rule of its module doc, on the nodes
 * the real graph lists. That placement never changes a result is tested in network_test.ts (one
 * SGD step against float64 either way) and train_test.ts (whole trainings step for step).
 */

import assert from "node:assert/strict";
import { readFloats, stepTable, storageBuffer, writeBuffer } from "../src/gpu/buffers.ts";
import { encodeOp, type Op, runOps, type TextureCopy } from "../src/kernels/op.ts";
import { matmulOp } from "../src/kernels/matmul.ts";
import { initParams } from "../src/model/init.ts";
import { IMAGE_BYTES } from "../src/data/format.ts";
import {
  kernel,
  type Matrix,
  matrix,
  type Node,
  placeOps,
  product,
  storageOf,
  wrapOf,
  writeRows,
} from "../src/kernels/placement.ts";
import { GpuParams } from "../src/model/gpu_params.ts";
import {
  adamStep,
  backwardPass,
  createGrads,
  createWorkspace,
  forwardPass,
  lossOf,
  type Workspace,
} from "../src/train/graph.ts";
import { downloadTexture, gpuDevice, Rng } from "./helpers.ts";

interface Net {
  params: GpuParams;
  ws: Workspace;
  nodes: Node[];
  destroy(): void;
}

/** The nodes of an SGD (or Adam) training step of a net, and its workspace. */
async function net(
  sizes: number[],
  opts: { bn?: boolean[]; adam?: boolean; rows?: number; P?: number; eval?: boolean } = {},
): Promise<Net> {
  const device = await gpuDevice();
  const P = opts.P ?? 2;
  const params = new GpuParams(device, sizes, Array(P).fill(0.01), opts.bn);
  const ws = createWorkspace(params, { rows: opts.rows ?? 8, training: !opts.eval });
  const steps = stepTable(device, [{ eta: 0.01 }], "steps");
  const nodes = [...forwardPass(params, ws, { mode: opts.eval ? "eval" : "train", steps })];
  nodes.push(lossOf(params, ws, opts.eval ? "eval" : "train"));
  const grads = opts.adam ? createGrads(params) : null;
  let adam: { destroy(): void } | null = null;
  if (!opts.eval && grads) {
    nodes.push(...backwardPass(params, ws, { kind: "grads", grads }));
    const step = adamStep(params, ws, grads, steps, { beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    nodes.push(...step.nodes);
    adam = step.state;
  } else if (!opts.eval) {
    nodes.push(...backwardPass(params, ws, { kind: "sgd", steps }));
  }
  return {
    params,
    ws,
    nodes,
    destroy() {
      adam?.destroy();
      for (const b of [...grads?.dW ?? [], ...grads?.db ?? []]) b.destroy();
      ws.destroy();
      params.destroy();
      steps.destroy();
    },
  };
}

const sorted = (xs: string[]) => [...xs].sort();

/** The first copy of an op into a texture, if any. */
function textureCopyOf(op: Op): TextureCopy | undefined {
  return op.copies?.find((c): c is TextureCopy => !("size" in c));
}

Deno.test("placement: without textures every matrix lives in a buffer and nothing is copied", async () => {
  const n = await net([IMAGE_BYTES, 20, 10]);
  const placed = placeOps(n.params.device, n.nodes, { textures: false });
  assert.deepEqual(placed.copies, []);
  assert.equal(placed.prologue.length, 0);
  assert.ok(n.ws.X.buffer, "X got a buffer");
  // layer 2, its loss, input gradient and update are one tail dispatch
  assert.deepEqual(placed.ops.map((op) => op.label), [
    "forward1",
    "tail(forward2+softmax_ce_train,backward_input2,backward_weights2)",
    "backward_weights1",
  ]);
  // without the tail: one op per node, but the loss is fused into the output layer's product
  const noTail = placeOps(n.params.device, n.nodes, { textures: false, tail: false });
  assert.equal(noTail.ops.length, n.nodes.length - 1);
  assert.ok(noTail.ops.some((op) => op.label === "forward2+softmax_ce_train"));
  noTail.destroy();
  const unfused = placeOps(n.params.device, n.nodes, { textures: false, fuse: false });
  assert.equal(unfused.ops.length, n.nodes.length);
  unfused.destroy();
  placed.destroy();
  n.destroy();
});

Deno.test("placement: layer 1's operands are copied when rows reach 1024 floats; X lives in its texture alone", async () => {
  const n = await net([IMAGE_BYTES, 20, 10]);
  const placed = placeOps(n.params.device, n.nodes, { textures: true });
  assert.deepEqual(sorted(placed.copies), ["G1", "W1", "X"]);
  assert.equal(n.ws.X.buffer, null, "X has no buffer");
  assert.ok(n.ws.X.texture && n.ws.W[0].texture && n.ws.G[0].texture);
  assert.ok(
    n.ws.W[0].buffer && n.ws.G[0].buffer,
    "matrices copied after their products keep their buffers",
  );
  assert.equal(n.ws.W[1].texture, null, "layer 2's rows are short");
  // the parameter W1 is seeded before each submission; X and G1 are written within the step
  assert.deepEqual(placed.prologue.map((op) => op.label), ["seed_W1"]);
  placed.destroy();
  n.destroy();
});

Deno.test("placement: short rows get no copies (the threshold can be lowered)", async () => {
  const n = await net([20, 30, 10]);
  const device = n.params.device;
  const plain = placeOps(device, n.nodes, { textures: true });
  assert.deepEqual(plain.copies, []);
  plain.destroy();
  const m = await net([20, 30, 10]);
  const low = placeOps(device, m.nodes, { textures: true, longRows: 1, tail: false });
  // layer 2 too: W2 (written by its SGD epilogue) and S (the scores' gradient, written by the
  // product with the loss fused in); unfused, the loss kernel overwrites S and it keeps no copy
  assert.deepEqual(sorted(low.copies), ["G1", "S", "W1", "W2", "X"]);
  const k = await net([20, 30, 10]);
  const unfused = placeOps(device, k.nodes, { textures: true, longRows: 1, fuse: false });
  assert.deepEqual(sorted(unfused.copies), ["G1", "W1", "W2", "X"]);
  unfused.destroy();
  k.destroy();
  low.destroy();
  n.destroy();
  m.destroy();
});

Deno.test("placement: a kernel that writes a matrix in place keeps it in its buffer", async () => {
  // batch norm's backward pass rewrites G1; Adam's update rewrites W1
  const bn = await net([IMAGE_BYTES, 20, 10], { bn: [true] });
  const a = placeOps(bn.params.device, bn.nodes, { textures: true });
  assert.deepEqual(sorted(a.copies), ["W1", "X"]);
  a.destroy();
  bn.destroy();
  const adam = await net([IMAGE_BYTES, 20, 10], { adam: true });
  const b = placeOps(adam.params.device, adam.nodes, { textures: true });
  assert.deepEqual(sorted(b.copies), ["G1", "X"]);
  assert.equal(b.prologue.length, 0, "no parameter copy to seed");
  b.destroy();
  adam.destroy();
});

Deno.test("placement: evaluation copies X and W1, W1 seeded by the prologue", async () => {
  const n = await net([IMAGE_BYTES, 20, 10], { eval: true, rows: 100 });
  const placed = placeOps(n.params.device, n.nodes, { textures: true });
  assert.deepEqual(sorted(placed.copies), ["W1", "X"]);
  assert.deepEqual(placed.prologue.map((op) => op.label), ["seed_W1"]);
  placed.destroy();
  n.destroy();
});

Deno.test("placement: nt products never read copies, and A is copied only when shared", async () => {
  const device = await gpuDevice();
  const m = (label: string, rows: number, ld: number, zStride = 0): Matrix =>
    matrix(device, { label, rows, ld, zStride });
  const A = m("A", 4, 1024), B = m("B", 8, 1024), C = m("C", 4, 8);
  const nt = placeOps(device, [product({ variant: "nt", M: 4, N: 8, K: 1024, a: A, b: B, c: C })], {
    textures: true,
  });
  assert.deepEqual(nt.copies, []);
  nt.destroy();
  // a per-model A (zStride ≠ 0) stays in its buffer; B is copied
  const A2 = m("A2", 4, 2048, 1024), B2 = m("B2", 1024, 8), C2 = m("C2", 4, 8);
  const nn = placeOps(device, [
    product({ variant: "nn", M: 4, N: 8, K: 1024, Z: 2, a: A2, b: B2, c: C2 }),
  ], { textures: true });
  assert.deepEqual(nn.copies, ["B2"]);
  nn.destroy();
  for (const x of [A, B, C, A2, B2, C2]) x.buffer?.destroy();
});

Deno.test("placement: a kernel writing either way writes the buffer and its op copies it into the texture when rows are a multiple of 256 bytes", async () => {
  const device = await gpuDevice();
  const rng = new Rng(3);
  const R = 5, D = 1024, N = 8; // X: 5 rows of 4096 bytes
  const src = Float32Array.from({ length: 4 * D }, () => rng.normal());
  const W = Float32Array.from({ length: D * N }, () => rng.normal());
  const results: Float32Array[] = [];
  for (const textures of [true, false]) {
    const m = (label: string, rows: number, ld: number, values?: Float32Array) => {
      const x = matrix(device, { label, rows, ld, allocate: values ? "now" : "placed" });
      if (values) writeBuffer(device, x.buffer!, 0, values);
      return x;
    };
    // the writer: X = E·src, E picking rows 0, 1, 2, 3, 0 of src (exact in float32)
    const E = new Float32Array(R * 4);
    [0, 1, 2, 3, 0].forEach((k, i) => (E[i * 4 + k] = 1));
    const Em = m("E", R, 4, E), S = m("S", 4, D, src), X = m("X", R, D);
    // W a parameter (a buffer of its own): its texture is seeded by the prologue
    const wBuffer = storageBuffer(device, D * N, "W");
    writeBuffer(device, wBuffer, 0, W);
    const Wm = matrix(device, { label: "W", rows: D, ld: N, buffer: wBuffer }), Z = m("Z", R, N);
    const placed = placeOps(device, [
      kernel("writer", { writesEither: [X] }, () =>
        matmulOp(device, {
          variant: "nn",
          M: R,
          N: D,
          K: 4,
          a: { buffer: Em.buffer!, ld: 4 },
          b: { buffer: S.buffer!, ld: D },
          c: { buffer: storageOf(X) as GPUBuffer, ld: D },
        })),
      product({ variant: "nn", M: R, N, K: D, a: X, b: Wm, c: Z }),
    ], { textures });
    if (textures) {
      assert.deepEqual(sorted(placed.copies), ["W", "X"]);
      assert.ok(X.buffer && X.texture, "X has its buffer and its texture");
      assert.equal(storageOf(X), X.buffer, "the writer writes the buffer");
      const copy = textureCopyOf(placed.ops[0])!;
      assert.deepEqual(
        { src: copy.src, dst: copy.dst, width: copy.width, height: copy.height },
        { src: X.buffer, dst: X.texture, width: D / 4, height: R },
      );
      assert.match(placed.ops[0].cost.shape, /\+copy to texture$/);
      const pass = device.createCommandEncoder().beginComputePass();
      assert.throws(
        () => encodeOp(pass, placed.ops[0]),
        /matmul_nn ends in a copy: encode it with an OpEncoder/,
      );
      pass.end();
    } else assert.equal(placed.ops[0].copies, undefined);
    await runOps(device, [...placed.prologue, ...placed.ops]);
    if (textures) {
      const seen = await downloadTexture(device, X.texture!, D / 4, R);
      [0, 1, 2, 3, 0].forEach((k, i) =>
        assert.deepEqual(seen.subarray(i * D, (i + 1) * D), src.subarray(k * D, (k + 1) * D))
      );
    }
    results.push(await readFloats(device, Z.buffer!));
    placed.destroy();
    for (const x of [Em, S, Wm, Z]) x.buffer?.destroy();
  }
  assert.deepEqual(results[0], results[1], "Z through the copy = Z through buffers");
});

/** A matrix's texture copy as rows × ld floats, unwrapped (see `Matrix.wrap`). */
async function textureRows(device: GPUDevice, m: Matrix): Promise<Float32Array> {
  const width = m.wrap, height = Math.ceil((m.rows * m.ld) / 4 / width);
  assert.deepEqual([m.texture!.width, m.texture!.height], [width, height], `${m.label}: its size`);
  // a wrapped texture holds the buffer's floats in order, texture row by texture row
  return (await downloadTexture(device, m.texture!, width, height)).subarray(0, m.rows * m.ld);
}

Deno.test("placement: a product whose C has a copy copies its buffer after the dispatch, wrapped where rows are not a multiple of 256 bytes", async () => {
  const side = (await gpuDevice()).limits.maxTextureDimension2D;
  const cases = [[32, 2, 16], [20, 2, 16], [50, 1, 16], [50, 3, 16], [
    50,
    4,
    side < 9984 ? 32 : 16,
  ]];
  for (const [hidden, P, wrap] of cases) {
    // W₁ has P·pad4(hidden) floats a row: 256 bytes for 2 × 32 units (a row of W₁ a texture row),
    // 160 for 2 × 20, 208 for one model of 50 and 624 for three (16 quads a texture row), 832 for
    // four (3072 · 52 quads need 9984 rows of 16, more than 8192: 32 a row)
    const n = await net([IMAGE_BYTES, hidden, 10], { P });
    const device = n.params.device;
    for (let p = 0; p < P; p++) {
      n.params.upload(p, initParams([IMAGE_BYTES, hidden, 10], "xavier", 0.01, p));
    }
    const placed = placeOps(device, n.nodes, { textures: true });
    const W1 = n.ws.W[0];
    assert.ok(placed.copies.includes("W1"));
    assert.equal(W1.wrap, wrap, `hidden ${hidden}: W₁'s texture width`);
    const quads = (IMAGE_BYTES * W1.ld) / 4;
    const bw1 = placed.ops.find((op) => op.label === "backward_weights1")!;
    const copy = textureCopyOf(bw1)!;
    assert.deepEqual(
      { src: copy.src, dst: copy.dst, width: copy.width, height: copy.height, rest: copy.rest },
      {
        src: W1.buffer,
        dst: W1.texture,
        width: wrap,
        height: Math.floor(quads / wrap),
        rest: quads % wrap,
      },
    );
    assert.match(bw1.cost.shape, /\+copy to texture$/);
    // after a step (its SGD epilogue shrinks W₁ by the L2 term) the texture holds the new W₁
    const before = await readFloats(device, W1.buffer!);
    await runOps(device, [...placed.prologue, ...placed.ops]);
    const buffer = await readFloats(device, W1.buffer!);
    assert.notDeepEqual(buffer, before, "the step changed W₁");
    assert.deepEqual(await textureRows(device, W1), buffer, `hidden ${hidden}: texture = buffer`);
    placed.destroy();
    assert.equal(W1.wrap, W1.ld / 4, "destroy takes the wrap back with the texture");
    n.destroy();
  }
});

Deno.test("placement: a kernel writing either way a matrix that is also read as a buffer writes the buffer, copied wrapped, the last texture row partial", async () => {
  const device = await gpuDevice();
  const rng = new Rng(5);
  // X: 21 rows of 20 floats (80 bytes), 105 quads: 6 texture rows of 16 and 9 quads after
  const R = 21, D = 20, N = 8;
  const src = Float32Array.from({ length: 4 * D }, () => rng.normal());
  const W = Float32Array.from({ length: D * N }, () => rng.normal());
  const results: Float32Array[] = [];
  for (const textures of [true, false]) {
    const m = (label: string, rows: number, ld: number, values?: Float32Array) => {
      const x = matrix(device, { label, rows, ld, allocate: values ? "now" : "placed" });
      if (values) writeBuffer(device, x.buffer!, 0, values);
      return x;
    };
    // the writer: X = E·src, E picking row i mod 4 of src (exact in float32)
    const E = new Float32Array(R * 4);
    for (let i = 0; i < R; i++) E[i * 4 + (i % 4)] = 1;
    const Em = m("E", R, 4, E), S = m("S", 4, D, src), X = m("X", R, D);
    // W a parameter (a buffer of its own): its texture is seeded by the prologue
    const wBuffer = storageBuffer(device, D * N, "W");
    writeBuffer(device, wBuffer, 0, W);
    const Wm = matrix(device, { label: "W", rows: D, ld: N, buffer: wBuffer }), Z = m("Z", R, N);
    const Y = matrix(device, { label: "Y", rows: R, ld: N });
    const placed = placeOps(device, [
      kernel("writer", { writesEither: [X] }, () =>
        matmulOp(device, {
          variant: "nn",
          M: R,
          N: D,
          K: 4,
          a: { buffer: Em.buffer!, ld: 4 },
          b: { buffer: S.buffer!, ld: D },
          c: { buffer: storageOf(X) as GPUBuffer, ld: D },
        })),
      product({ variant: "nn", M: R, N, K: D, a: X, b: Wm, c: Z }),
      // a kernel that reads X's buffer: X cannot live in its texture alone
      kernel("reader", { reads: [X] }, () =>
        matmulOp(device, {
          variant: "nn",
          M: R,
          N,
          K: D,
          a: { buffer: X.buffer!, ld: D },
          b: { buffer: Wm.buffer!, ld: N },
          c: { buffer: Y.buffer!, ld: N },
        })),
    ], { textures, longRows: 1 });
    if (textures) {
      assert.ok(placed.copies.includes("X"));
      assert.equal(storageOf(X), X.buffer, "the writer writes the buffer");
      assert.equal(X.wrap, 16);
      const copy = textureCopyOf(placed.ops[0])!;
      assert.deepEqual(
        { src: copy.src, dst: copy.dst, width: copy.width, height: copy.height, rest: copy.rest },
        { src: X.buffer, dst: X.texture, width: 16, height: 6, rest: 9 },
      );
    } else assert.equal(placed.ops[0].copies, undefined);
    await runOps(device, [...placed.prologue, ...placed.ops]);
    if (textures) {
      const seen = await textureRows(device, X);
      for (let i = 0; i < R; i++) {
        const k = i % 4;
        assert.deepEqual(seen.subarray(i * D, (i + 1) * D), src.subarray(k * D, (k + 1) * D));
      }
    }
    const z = await readFloats(device, Z.buffer!), y = await readFloats(device, Y.buffer!);
    assert.deepEqual(z, y, "Z through the texture = Y through the buffer");
    results.push(z);
    placed.destroy();
    for (const x of [Em, S, Wm, Z, Y]) x.buffer?.destroy();
  }
  assert.deepEqual(results[0], results[1], "Z through the copy = Z through buffers");
});

Deno.test("placement: writeRows fills a wrapped texture as its buffer, the last texture row partial", async () => {
  const device = await gpuDevice();
  const X = matrix(device, { label: "X", rows: 21, ld: 20, allocate: "placed" });
  const W = matrix(device, { label: "W", rows: 20, ld: 8 });
  const Z = matrix(device, { label: "Z", rows: 21, ld: 8 });
  const placed = placeOps(device, [
    kernel("writer", { writesEither: [X] }, () => ({ label: "writer", cost: {} }) as never),
    product({ variant: "nn", M: 21, N: 8, K: 20, a: X, b: W, c: Z }),
    kernel("reader", { reads: [X] }, () => ({ label: "reader", cost: {} }) as never),
  ], { textures: true, longRows: 1, matmul: () => ({ label: "unbuilt" }) as never });
  assert.equal(X.wrap, 16);
  const values = Float32Array.from({ length: 21 * 17 }, (_, i) => i + 1);
  writeRows(device, X, values, 21, 17);
  const buffer = await readFloats(device, X.buffer!);
  assert.equal(buffer[20 * 20 + 16], 21 * 17, "the last value in its place");
  assert.deepEqual(await textureRows(device, X), buffer);
  placed.destroy();
  for (const x of [W, Z]) x.buffer?.destroy();
});

Deno.test("placement: narrower rows written either way live in the texture alone", async () => {
  const device = await gpuDevice();
  const X = matrix(device, { label: "X", rows: 4, ld: 20, allocate: "placed" });
  const W = matrix(device, { label: "W", rows: 20, ld: 8 });
  const Z = matrix(device, { label: "Z", rows: 4, ld: 8 });
  const placed = placeOps(device, [
    kernel("writer", { writesEither: [X] }, () => ({ label: "writer" }) as never),
    product({ variant: "nn", M: 4, N: 8, K: 20, a: X, b: W, c: Z }),
  ], { textures: true, longRows: 1, matmul: () => ({ label: "unbuilt" }) as never });
  assert.ok(placed.copies.includes("X"));
  assert.equal(X.buffer, null);
  assert.equal(storageOf(X), X.texture);
  assert.equal(placed.ops[0].copies, undefined);
  // the writer stores rows: a row of X a texture row, not wrapped
  assert.equal(X.wrap, 5);
  assert.deepEqual([X.texture!.width, X.texture!.height], [5, 4]);
  placed.destroy();
  for (const x of [W, Z]) x.buffer?.destroy();
});

Deno.test("placement: a matrix written either way whose rows would not fit a texture row goes through its buffer and a wrapped copy", async () => {
  const device = await gpuDevice();
  const side = device.limits.maxTextureDimension2D;
  const ld = 4 * side + 4; // one quad more than a texture row holds, and not 256 bytes' multiple
  const X = matrix(device, { label: "X", rows: 2, ld, allocate: "placed" });
  const W = matrix(device, { label: "W", rows: ld, ld: 4 });
  const Z = matrix(device, { label: "Z", rows: 2, ld: 4 });
  const placed = placeOps(device, [
    kernel("writer", { writesEither: [X] }, () => ({ label: "writer", cost: {} }) as never),
    product({ variant: "nn", M: 2, N: 4, K: ld, a: X, b: W, c: Z }),
  ], { textures: true, matmul: () => ({ label: "unbuilt" }) as never });
  assert.ok(placed.copies.includes("X"));
  assert.ok(X.buffer, "X has its buffer");
  assert.equal(storageOf(X), X.buffer, "the writer writes the buffer");
  assert.equal(X.wrap, 16);
  const copy = textureCopyOf(placed.ops[0])!;
  assert.deepEqual([copy.width, copy.height, copy.rest], [16, Math.floor(ld / 32), (ld / 2) % 16]);
  placed.destroy();
  for (const x of [W, Z]) x.buffer?.destroy();
});

Deno.test("placement: a product's wrapped copy ends in a partial texture row where the quads do not divide (G₁ of a 3-layer step)", async () => {
  // 3072-50-50-10 with the output layer's tail alone: layer 2's input-gradient product writes G₁
  // (8 rows of 52 floats: 104 quads, 6 texture rows of 16 and 8 quads), which layer 1's update
  // reads through its texture
  const n = await net([IMAGE_BYTES, 50, 50, 10], { P: 1 });
  const device = n.params.device;
  n.params.upload(0, initParams([IMAGE_BYTES, 50, 50, 10], "xavier", 0.01, 4));
  const placed = placeOps(device, n.nodes, { textures: true, tailLayers: 1 });
  const G1 = n.ws.G[0];
  assert.ok(placed.copies.includes("G1"));
  assert.equal(G1.wrap, 16);
  const writer = placed.ops.find((op) => textureCopyOf(op)?.dst === G1.texture)!;
  assert.equal(writer.label, "backward_input2");
  assert.deepEqual([
    textureCopyOf(writer)!.width,
    textureCopyOf(writer)!.height,
    textureCopyOf(writer)!.rest,
  ], [16, 6, 8]);
  // the step's inputs (the graph's nodes start after the gather): random rows into X
  const rng = new Rng(11);
  const x = Float32Array.from({ length: 8 * IMAGE_BYTES }, () => rng.normal());
  writeRows(device, n.ws.X, x, 8, IMAGE_BYTES);
  await runOps(device, [...placed.prologue, ...placed.ops]);
  const buffer = await readFloats(device, G1.buffer!);
  assert.ok(buffer.some((x) => x !== 0), "the step wrote G₁");
  assert.deepEqual(await textureRows(device, G1), buffer, "G₁'s texture = its buffer");
  placed.destroy();
  n.destroy();
});

Deno.test("placement: rows wider than the device's texture side are copied wrapped; no copy larger than a texture holds", async () => {
  const device = await gpuDevice();
  const side = device.limits.maxTextureDimension2D;
  const A = matrix(device, { label: "A", rows: 1, ld: 1024 });
  const B = matrix(device, { label: "B", rows: 1024, ld: 4 * side + 4 });
  const C = matrix(device, { label: "C", rows: 1, ld: 4 * side + 4 });
  const placed = placeOps(device, [
    product({ variant: "nn", M: 1, N: 4 * side + 1, K: 1024, a: A, b: B, c: C }),
  ], { textures: true, matmul: () => ({ label: "unbuilt" }) as never });
  assert.deepEqual(sorted(placed.copies), ["A", "B"]);
  // B: 1024 rows of side + 1 quads, wrapped at the fewest texels that keep it within side rows
  assert.equal(B.wrap, wrapOf(B, side));
  assert.ok(B.texture!.width <= side && B.texture!.height <= side);
  assert.ok(B.wrap * B.texture!.height >= (B.rows * B.ld) / 4);
  placed.destroy();
  for (const x of [A, B, C]) x.buffer?.destroy();
  // rows of a multiple of 256 bytes keep a row a texture row; others wrap at 16 texels and more
  assert.equal(wrapOf({ ld: 64, rows: 10 }, 8192), 16);
  assert.equal(wrapOf({ ld: 3072, rows: 100 }, 8192), 768);
  assert.equal(wrapOf({ ld: 52, rows: 3072 }, 8192), 16);
  assert.equal(wrapOf({ ld: 4 * 8192 + 4, rows: 1024 }, 8192), 2048);
  assert.equal(wrapOf({ ld: 3072, rows: 100 }, 512), 256, "aligned rows wider than the side wrap");
  assert.equal(wrapOf({ ld: 52, rows: 3072 }, 64), 0, "39 936 quads exceed 64 × 64 texels");
});

Deno.test("placement: the loss fused into the output layer's product changes no bit", async () => {
  const device = await gpuDevice();
  const sizes = [20, 30, 7], n = 33, P = 3;
  const rng = new Rng(5);
  const X = Array.from({ length: n * sizes[0] }, () => rng.normal());
  const y = Uint32Array.from({ length: n }, () => Math.floor(rng.uniform() * sizes[2]));
  const results: Float32Array[][] = [];
  for (const fuse of [true, false]) {
    const params = new GpuParams(device, sizes, [0, 0.01, 0.1]);
    for (let z = 0; z < P; z++) params.upload(z, initParams(sizes, "he", 0, 7 + z));
    const ws = createWorkspace(params, { rows: n, training: true });
    const steps = stepTable(device, [{ eta: 0.05 }], "steps");
    const placed = placeOps(device, [
      ...forwardPass(params, ws, { mode: "train", steps }),
      lossOf(params, ws, "train"),
      ...backwardPass(params, ws, { kind: "sgd", steps }),
    ], { fuse });
    assert.equal(placed.ops.some((op) => op.label.includes("+softmax_ce")), fuse);
    writeRows(device, ws.X, X, n, sizes[0]);
    writeBuffer(device, ws.y, 0, y);
    for (let t = 0; t < 5; t++) await runOps(device, placed.ops);
    results.push(await Promise.all(params.W.map((w) => readFloats(device, w))));
    placed.destroy();
    ws.destroy();
    steps.destroy();
    params.destroy();
  }
  results[0].forEach((w, l) => assert.deepEqual(w, results[1][l], `W${l + 1}`));
});

Deno.test("placement: destroy takes back what it gave, so placing again never binds a destroyed buffer; a failed build frees its copies", async () => {
  const n = await net([IMAGE_BYTES, 20, 10]);
  const device = n.params.device;
  const first = placeOps(device, n.nodes, { textures: false });
  assert.ok(n.ws.X.buffer, "X got a buffer from placement");
  first.destroy();
  assert.equal(n.ws.X.buffer, null, "placement took its buffer back");
  assert.ok(n.ws.W[0].buffer, "a parameter's buffer is not placement's");
  // the same graph placed again (as a tool or a retry would) gets fresh storage
  const again = placeOps(device, n.nodes, { textures: true });
  assert.ok(n.ws.X.texture && n.ws.W[0].texture);
  device.pushErrorScope("validation");
  await runOps(device, [...again.prologue, ...again.ops]);
  const error = await device.popErrorScope();
  assert.equal(error, null, error?.message);
  again.destroy();
  assert.equal(n.ws.X.texture, null);
  assert.equal(n.ws.W[0].texture, null);
  const after = placeOps(device, n.nodes, { textures: false });
  device.pushErrorScope("validation");
  await runOps(device, after.ops);
  const error2 = await device.popErrorScope();
  assert.equal(error2, null, error2?.message);
  after.destroy();
  // a product that cannot be built: the copies made for it are freed and taken back
  assert.throws(
    () =>
      placeOps(device, n.nodes, {
        textures: true,
        matmul: () => {
          throw new Error("unbuildable");
        },
      }),
    /unbuildable/,
  );
  assert.equal(n.ws.X.texture, null);
  assert.equal(n.ws.W[0].texture, null);
  assert.equal(n.ws.X.buffer, null);
  n.destroy();
});
