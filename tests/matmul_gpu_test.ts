/**
 * The `gpu` kernel profile (src/kernels/matmul.ts `gpuTile`, shaders/matmul.wgsl `matmul_*_split`):
 * every variant and epilogue, bias sums stored and SGD-applied, texture operands (plain and wrapped), Z > 1
 * and λ by column block, against the float64 twin on awkward shapes (M, N, K among 1, 7, 33, 100,
 * 3072, where llvmpipe's per-invocation loop budget bites), with the tolerance of
 * tests/matmul_check.ts (1e-5·Σ|a·b|·s + 1e-6·|ref|: float32 rounding of a K-term dot product, in
 * whatever order its terms meet). Also: the selection's grids (64–256 invocations a workgroup,
 * enough workgroups for layer 1), that the `cpu` profile is the tiles of before, how
 * `WEBGPU_MLP_KERNELS` is read, and that a short training under either profile has the same losses.
 */

import assert from "node:assert/strict";
import { IMAGE_BYTES } from "../src/data/format.ts";
import { storageBuffer } from "../src/gpu/buffers.ts";
import {
  acquireGpu,
  adapterChoices,
  getGpu,
  READONLY_STORAGE_TEXTURES,
  tailChoice,
  type TextureReads,
  textureReads,
  textureReadsOf,
  wgslLanguageFeatures,
} from "../src/gpu/device.ts";
import { compiledModules } from "../src/gpu/shaders.ts";
import { UserError } from "../src/errors.ts";
import {
  defaultTile,
  GPU_MIN_SLICE,
  gpuTile,
  matmulOp,
  type MatmulSpec,
  type MatmulVariant,
} from "../src/kernels/matmul.ts";
import type { Op } from "../src/kernels/op.ts";
import { GpuParams } from "../src/model/gpu_params.ts";
import { type PopulationSpec, trainingStep } from "../src/train/trainer.ts";
import { blankDataset, gpuDevice, representativeSpecs, Rng, testSpec } from "./helpers.ts";
import { type Case, caseTags, check, checkSoftmax, epilogues } from "./matmul_check.ts";

/** Invocations of a workgroup the gpu profile may use. */
const WG_RANGE = [64, 256];

const cases: Case[] = [
  // nn: 1-row tiles (M < 4), 4×4 tiles, 8×8 tiles (M, N ≥ 64); K split 1 to 32 ways
  { v: "nn", M: 1, N: 1, K: 1 },
  { v: "nn", M: 7, N: 10, K: 33 },
  { v: "nn", M: 1, N: 7, K: 3072 },
  { v: "nn", M: 100, N: 50, K: 3072 },
  { v: "nn", M: 100, N: 100, K: 3072 },
  { v: "nn", M: 3072, N: 7, K: 33 },
  { v: "nn", M: 100, N: 10, K: 50, Z: 3, a: "side", b: "side" },
  { v: "nn", M: 7, N: 33, K: 3072, Z: 2, a: "side", b: "stacked" },
  // a deep reduction (8 rounds) over a whole workgroup of 256; 2 tiles of 64 slices each (wg 128)
  { v: "nn", M: 7, N: 33, K: 3072, tile: { tm: 4, tn4: 1, wg: 256, ks: 256 } },
  { v: "nn", M: 33, N: 7, K: 100, tile: { tm: 4, tn4: 2, wg: 128, ks: 64 } },
  // tn (the weight gradient, K = batch rows): bias sums stored or SGD-applied on alternate epilogues
  { v: "tn", M: 3072, N: 50, K: 100 },
  { v: "tn", M: 3072, N: 100, K: 100 },
  { v: "tn", M: 33, N: 7, K: 3072 },
  { v: "tn", M: 33, N: 7, K: 1 },
  { v: "tn", M: 7, N: 33, K: 100 },
  { v: "tn", M: 1, N: 10, K: 7 },
  { v: "tn", M: 50, N: 10, K: 100, Z: 3, a: "side", b: "side" },
  { v: "tn", M: 100, N: 7, K: 33, tile: { tm: 8, tn4: 2, wg: 64, ks: 64 } },
  // nt (the input gradient)
  { v: "nt", M: 100, N: 50, K: 10 },
  { v: "nt", M: 7, N: 33, K: 3072 },
  { v: "nt", M: 33, N: 100, K: 3072 },
  { v: "nt", M: 1, N: 7, K: 33 },
  { v: "nt", M: 33, N: 1, K: 7 },
  { v: "nt", M: 3072, N: 7, K: 100 },
  { v: "nt", M: 100, N: 50, K: 10, Z: 3, a: "side", b: "side" },
  { v: "nt", M: 7, N: 100, K: 33, Z: 2, a: "side", b: "stacked" },
  // texture operands, plain and wrapped, λ by column block (layer 1 of a population)
  { v: "nn", M: 100, N: 50, K: 3072, tex: true },
  { v: "nn", M: 7, N: 33, K: 33, Z: 2, a: "shared", b: "side", tex: true },
  { v: "nn", M: 100, N: 50, K: 3072, tex: true, btex: true },
  { v: "nn", M: 7, N: 33, K: 3072, Z: 2, a: "shared", b: "side", tex: true, btex: true },
  { v: "nn", M: 7, N: 33, K: 33, Z: 2, a: "shared", b: "side", tex: true, btex: true, wrap: "ab" },
  { v: "nn", M: 100, N: 50, K: 3072, tex: true, btex: true, wrap: "b" },
  { v: "nn", M: 33, N: 100, K: 7, btex: true, wrap: "b" },
  { v: "nn", M: 100, N: 2 * 36 + 33, K: 3072, tex: true, btex: true, wrap: "b", lamColumns: 36 },
  { v: "nn", M: 1, N: 2 * 8 + 7, K: 100, lamColumns: 8 },
  { v: "tn", M: 3072, N: 50, K: 100, tex: true },
  { v: "tn", M: 33, N: 7, K: 1, Z: 3, a: "shared", b: "side", tex: true },
  { v: "tn", M: 3072, N: 50, K: 100, tex: true, btex: true, wrap: "b" },
  { v: "tn", M: 33, N: 7, K: 1, Z: 3, a: "shared", b: "side", btex: true, wrap: "b" },
  { v: "tn", M: 7, N: 2 * 36 + 33, K: 33, tex: true, btex: true, wrap: "ab", lamColumns: 36 },
];

/** The grid facts of an op the gpu profile built: its workgroup size is in range. */
function assertGpuGrid(op: Op, what: string): void {
  const [x, y, z] = op.workgroupSize;
  assert.ok(
    x >= WG_RANGE[0] && x <= WG_RANGE[1] && y === 1 && z === 1,
    `${what}: workgroup size ${op.workgroupSize}`,
  );
}

for (const c of cases) {
  const tile = c.tile ? ` tile ${c.tile.tm}x${c.tile.tn4}x${c.tile.wg}/${c.tile.ks}` : "";
  Deno.test(`gpu profile: matmul_${c.v}_split ${c.M}x${c.N}x${c.K} Z=${c.Z ?? 1}${caseTags(c)}${tile} matches float64 for every epilogue`, async () => {
    const rng = new Rng(c.M * 1000003 + c.N * 1009 + c.K + 17);
    for (const epi of epilogues) {
      const op = await check(c, epi, rng, "gpu");
      assert.match(op.pipeline.label, /_split$/, "the split kernel ran");
      if (!c.tile) assertGpuGrid(op, `${c.v} ${c.M}x${c.N}x${c.K} ${epi}`);
    }
  });
}

const softmaxCases: Case[] = [
  { v: "nn", M: 1, N: 1, K: 1 },
  { v: "nn", M: 7, N: 10, K: 33 },
  { v: "nn", M: 33, N: 7, K: 100 },
  { v: "nn", M: 100, N: 10, K: 3072, tex: true },
  { v: "nn", M: 7, N: 32, K: 3072 },
  { v: "nn", M: 100, N: 10, K: 50, Z: 3, a: "side", b: "side" },
  { v: "nn", M: 7, N: 32, K: 33, Z: 2, a: "side", b: "stacked" },
  { v: "nn", M: 33, N: 3, K: 7, Z: 3, a: "side", b: "side" },
  { v: "nn", M: 7, N: 10, K: 33, tex: true, btex: true, wrap: "ab" },
];

for (const c of softmaxCases) {
  Deno.test(`gpu profile: matmul_nn_split ${c.M}x${c.N}x${c.K} Z=${c.Z ?? 1}${caseTags(c)} with the softmax cross-entropy fused matches float64`, async () => {
    const op = await checkSoftmax(c, "gpu");
    assert.match(op.pipeline.label, /matmul_nn_split$/);
    assertGpuGrid(op, `softmax ${c.M}x${c.N}x${c.K}`);
  });
}

Deno.test("gpu profile: every tile has 64–256 invocations a workgroup, a power-of-two split of K into slices of at least 16 steps, and partial tiles that fit 16 KiB", () => {
  const dims = [1, 3, 4, 7, 10, 33, 50, 64, 100, 832, 1024, 3072];
  for (const variant of ["nn", "tn", "nt"] as MatmulVariant[]) {
    for (const M of dims) {
      for (const N of dims) {
        for (const K of dims) {
          for (const Z of [1, 16]) {
            const softmax = variant === "nn" && N <= 32;
            for (
              const epi of softmax ? ["store", "bias_softmax_ce"] as const : ["store"] as const
            ) {
              const t = gpuTile(variant, M, N, K, Z, epi);
              const what = `${variant} ${M}x${N}x${K}x${Z} ${epi}: ${JSON.stringify(t)}`;
              const ks = t.ks!;
              assert.ok(t.wg >= WG_RANGE[0] && t.wg <= WG_RANGE[1], what);
              assert.ok(ks >= 1 && (ks & (ks - 1)) === 0 && t.wg % ks === 0, what);
              assert.ok(16 * t.wg * t.tm * t.tn4 <= 16384, what);
              const steps = variant === "tn" ? K : Math.ceil(K / 4);
              if (ks > 1) assert.ok(steps / ks >= GPU_MIN_SLICE, what);
              if (variant === "tn") assert.equal(t.tm % 4, 0, what);
              if (epi === "bias_softmax_ce") assert.ok(4 * t.tn4 >= N, what);
            }
          }
        }
      }
    }
  }
});

/** Every product op of a training step of `s` built under `profile`, by label. */
async function stepProducts(s: PopulationSpec, profile: "cpu" | "gpu", textures = false) {
  const device = await gpuDevice();
  const { dataset, train } = blankDataset(device);
  const params = new GpuParams(device, s.sizes, s.lambdas, s.bn);
  const products: { spec: MatmulSpec; op: Op }[] = [];
  const step = trainingStep(params, { dataset, train, val: null, test: null }, s, {
    textures,
    profile,
    matmul: (spec) => {
      const op = matmulOp(device, spec);
      products.push({ spec, op });
      return op;
    },
  });
  step.destroy();
  params.destroy();
  dataset.destroy();
  return products;
}

Deno.test("gpu profile: every product of real training steps runs 64–256 invocations a workgroup; layer 1's forward at batch 100 launches over 100 workgroups", async () => {
  for (const { name, spec } of representativeSpecs()) {
    for (const textures of [false, true]) {
      const products = await stepProducts(spec, "gpu", textures);
      // at least layer 1's forward and weight gradient (an SGD step's top layers run in the tail)
      assert.ok(products.length >= 2, name);
      for (const { spec: s, op } of products) {
        assert.equal(s.profile, "gpu", `${name}: ${op.label} built for the gpu profile`);
        assert.match(op.pipeline.label, /_split$/, `${name}: ${op.label}`);
        assertGpuGrid(op, `${name}: ${op.label}`);
      }
    }
  }
  // 3072-50-10 at B = 100: 100×3072·3072×50 is 30.7 MFLOP, 325 tiles of 4×4 with K split 32 ways
  const net = { ...testSpec([IMAGE_BYTES, 50, 10], 1), batchSize: 100 };
  const gpu = await stepProducts(net, "gpu");
  const forward = gpu.find((p) => p.op.label === "forward1")!.op;
  const groups = forward.workgroups[0] * forward.workgroups[1] * forward.workgroups[2];
  assert.ok(groups >= 100, `forward1: ${groups} workgroups`);
  assert.ok(groups * forward.workgroupSize[0] >= 10000, `forward1: ${groups} × 64 invocations`);
  const weights = gpu.find((p) => p.op.label === "backward_weights1")!.op;
  assert.ok(weights.workgroups[0] >= 100, `backward_weights1: ${weights.workgroups}`);
  // the cpu profile keeps its few fat invocations: 6 workgroups of 8 for the same product
  const cpu = await stepProducts(net, "cpu");
  const cpuForward = cpu.find((p) => p.op.label === "forward1")!.op;
  assert.deepEqual([cpuForward.workgroups, cpuForward.workgroupSize], [[6, 1, 1], [8, 1, 1]]);
});

Deno.test("cpu profile: the tiles and kernels of before, with or without the profile named", async () => {
  const device = await gpuDevice();
  const [a, b, c] = ["A", "B", "C"].map((x) => storageBuffer(device, 4 * 3072 * 64, `cpu.${x}`));
  const shapes: [MatmulVariant, number, number, number][] = [
    ["nn", 100, 50, 3072],
    ["nn", 100, 832, 3072],
    ["tn", 3072, 50, 100],
    ["tn", 3072, 832, 100],
    ["nt", 100, 50, 10],
    ["nn", 7, 10, 33],
  ];
  for (const [variant, M, N, K] of shapes) {
    const spec = {
      variant,
      M,
      N,
      K,
      a: { buffer: a, ld: 3072 },
      b: { buffer: b, ld: 3072 },
      c: { buffer: c, ld: 832 },
    };
    const plain = matmulOp(device, spec);
    const named = matmulOp(device, { ...spec, profile: "cpu" });
    const tiled = matmulOp(device, { ...spec, tile: defaultTile(variant, M, N) });
    for (const op of [plain, named, tiled]) {
      assert.equal(op.pipeline.label, `matmul:matmul_${variant}`);
      assert.equal(op.pipeline, plain.pipeline, `${variant} ${M}x${N}x${K}: one pipeline`);
      assert.deepEqual(op.workgroups, plain.workgroups);
    }
    const t = defaultTile(variant, M, N);
    assert.equal(plain.workgroupSize[0], t.wg);
    assert.equal(
      plain.workgroups[0],
      Math.ceil(Math.ceil(M / t.tm) * Math.ceil(N / (4 * t.tn4)) / t.wg),
    );
  }
  for (const x of [a, b, c]) x.destroy();
});

Deno.test("WEBGPU_MLP_KERNELS: cpu or gpu overrides the adapter's profile, textures stay as they were, anything else is a one-line UserError", async () => {
  const llvmpipe = "llvmpipe (LLVM 15.0.6, 256 bits)", h100 = "NVIDIA H100 80GB HBM3";
  assert.deepEqual(adapterChoices(llvmpipe, {}), { prefersTextures: true, kernelProfile: "cpu" });
  assert.deepEqual(adapterChoices("SwiftShader Device (Subzero)", {}), {
    prefersTextures: true,
    kernelProfile: "cpu",
  });
  assert.deepEqual(adapterChoices(h100, {}), { prefersTextures: false, kernelProfile: "gpu" });
  assert.deepEqual(adapterChoices(llvmpipe, { kernels: "gpu" }), {
    prefersTextures: true,
    kernelProfile: "gpu",
  });
  assert.deepEqual(adapterChoices(llvmpipe, { kernels: "gpu", textures: "0" }), {
    prefersTextures: false,
    kernelProfile: "gpu",
  });
  assert.deepEqual(adapterChoices(h100, { kernels: "cpu", textures: "1" }), {
    prefersTextures: true,
    kernelProfile: "cpu",
  });
  assert.deepEqual(adapterChoices(h100, { kernels: "", textures: "" }), {
    prefersTextures: false,
    kernelProfile: "gpu",
  });
  for (const kernels of ["GPU", "fast", " gpu", "1"]) {
    assert.throws(
      () => adapterChoices(llvmpipe, { kernels }),
      (e: unknown) =>
        e instanceof UserError && /^WEBGPU_MLP_KERNELS=.* is not one of cpu, gpu/.test(e.message) &&
        !e.message.includes("\n"),
    );
  }
  assert.throws(
    () => adapterChoices(llvmpipe, { textures: "yes" }),
    (e: unknown) =>
      e instanceof UserError && /^WEBGPU_MLP_TEXTURES="yes" is not one of 0, 1/.test(e.message),
  );
  // read from the environment, before any adapter is requested
  const before = Deno.env.get("WEBGPU_MLP_KERNELS");
  Deno.env.set("WEBGPU_MLP_KERNELS", "warp");
  try {
    await assert.rejects(() => acquireGpu(), UserError);
  } finally {
    if (before === undefined) Deno.env.delete("WEBGPU_MLP_KERNELS");
    else Deno.env.set("WEBGPU_MLP_KERNELS", before);
  }
  // this process's device took the adapter's profile (or the override it was started with)
  const gpu = await getGpu();
  assert.ok(gpu.kernelProfile === "cpu" || gpu.kernelProfile === "gpu");
});

Deno.test("WEBGPU_MLP_TAIL: 0 turns the tail off, 1 or unset keeps it, anything else is a one-line UserError", () => {
  assert.equal(tailChoice(undefined), true);
  assert.equal(tailChoice(""), true);
  assert.equal(tailChoice("1"), true);
  assert.equal(tailChoice("0"), false);
  for (const bad of ["off", "false", " 0", "2"]) {
    assert.throws(
      () => tailChoice(bad),
      (e: unknown) =>
        e instanceof UserError && /^WEBGPU_MLP_TAIL=.* is not one of 0, 1/.test(e.message) &&
        !e.message.includes("\n"),
    );
  }
});

Deno.test("WEBGPU_MLP_TEXTURE_READS: storage on llvmpipe and lavapipe where WGSL allows read-only storage textures, sampled elsewhere or when asked; a texture without STORAGE_BINDING is sampled", async () => {
  const llvmpipe = "llvmpipe (LLVM 15.0.6, 256 bits)", h100 = "NVIDIA H100 80GB HBM3";
  const swiftshader = "SwiftShader Device (Subzero)";
  const has = new Set([READONLY_STORAGE_TEXTURES]), lacks = new Set<string>();
  assert.equal(textureReads(llvmpipe, "", has), "storage");
  assert.equal(textureReads("lavapipe", "", has), "storage");
  assert.equal(textureReads(swiftshader, "", has), "sampled"); // measured slower there
  assert.equal(textureReads(h100, "", has), "sampled"); // not measured
  assert.equal(textureReads(llvmpipe, "", lacks), "sampled");
  assert.equal(textureReads(llvmpipe, "sampled", has), "sampled");
  assert.equal(textureReads(h100, "storage", has), "storage");
  assert.equal(textureReads(llvmpipe, "sampled", lacks), "sampled");
  assert.throws(
    () => textureReads(llvmpipe, "storage", lacks),
    (e: unknown) =>
      e instanceof UserError && /lacks readonly_and_readwrite_storage_textures/.test(e.message),
  );
  for (const bad of ["Storage", "read", "1"]) {
    assert.throws(
      () => textureReads(llvmpipe, bad, has),
      (e: unknown) =>
        e instanceof UserError &&
        /^WEBGPU_MLP_TEXTURE_READS=.* is not one of storage, sampled/.test(e.message),
    );
  }
  // read from the environment, before any adapter is requested
  const before = Deno.env.get("WEBGPU_MLP_TEXTURE_READS");
  Deno.env.set("WEBGPU_MLP_TEXTURE_READS", "mipmapped");
  try {
    await assert.rejects(() => acquireGpu(), UserError);
  } finally {
    if (before === undefined) Deno.env.delete("WEBGPU_MLP_TEXTURE_READS");
    else Deno.env.set("WEBGPU_MLP_TEXTURE_READS", before);
  }
  const gpu = await getGpu();
  assert.equal(gpu.textureReads, textureReads(gpu.adapter.description));
  assert.equal(textureReadsOf(gpu.device), gpu.textureReads);
  // the module built for each operand binds it as the device reads textures and the texture allows
  const device = gpu.device;
  const texture = (storage: boolean) =>
    device.createTexture({
      size: [2, 8],
      format: "rgba32float",
      usage: GPUTextureUsage.TEXTURE_BINDING |
        (storage ? GPUTextureUsage.STORAGE_BINDING : 0),
    });
  const c = device.createBuffer({ size: 4 * 64, usage: GPUBufferUsage.STORAGE });
  const storageOk = wgslLanguageFeatures().has(READONLY_STORAGE_TEXTURES);
  const cases: [boolean, TextureReads | undefined, boolean][] = [
    // [texture has STORAGE_BINDING, the spec's textureReads, bound as storage]
    [true, undefined, gpu.textureReads === "storage"],
    [false, undefined, false],
    [true, "sampled", false],
    [false, "storage", false],
    ...(storageOk ? [[true, "storage", true] as [boolean, TextureReads, boolean]] : []),
  ];
  const made: GPUTexture[] = [];
  try {
    for (const [i, [storage, reads, read]] of cases.entries()) {
      const before = compiledModules(device).length;
      const tile = { tm: 4, tn4: 1, wg: 3 + 2 * i }; // variants no other test builds
      const [a, b] = [texture(storage), texture(storage)];
      made.push(a, b);
      matmulOp(device, {
        variant: "nn",
        M: 4,
        N: 4,
        K: 8,
        a: { texture: a },
        b: { texture: b },
        c: { buffer: c, ld: 4 },
        tile,
        textureReads: reads,
      });
      const built = compiledModules(device).slice(before).find((m) => m.constants.WG === tile.wg);
      assert.ok(built, `case ${i}: the variant of wg ${tile.wg} was built by this test`);
      assert.equal(built.constants.A_STORAGE, read, `case ${i}`);
      assert.equal(built.constants.B_STORAGE, read, `case ${i}`);
      assert.equal(/texture_storage_2d<rgba32float, read>/.test(built.code), read, `case ${i}`);
      assert.equal(/texture_2d<f32>/.test(built.code), !read, `case ${i}`);
    }
  } finally {
    for (const t of made) t.destroy();
    c.destroy();
  }
});

Deno.test("gpu profile: a short training (60 steps, P = 2), from textures or from buffers, has the cpu profile's losses and accuracies, to float32 rounding", async () => {
  const { prepareData, populationSpec } = await import("../src/train/run.ts");
  const { trainDataOf, trainPopulation } = await import("../src/train/trainer.ts");
  const { cfgWith } = await import("./small_run.ts");
  const cfg = cfgWith({ hidden: [32] }, { evalEvery: 20 });
  const data = await prepareData(cfg);
  const splits = { ...trainDataOf(data.dataset), test: null };
  const spec = populationSpec(cfg, data.cifar.train.n, [0.001, 0.01], [5, 6]);
  const cpu = await trainPopulation({ ...data.gpu, kernelProfile: "cpu" }, splits, spec);
  for (const prefersTextures of [true, false]) {
    const gpu = await trainPopulation(
      { ...data.gpu, kernelProfile: "gpu", prefersTextures },
      splits,
      spec,
    );
    assert.equal(gpu.steps, 60);
    for (let z = 0; z < 2; z++) {
      const a = cpu.models[z].curves, b = gpu.models[z].curves;
      assert.deepEqual(b.map((p) => p.step), a.map((p) => p.step));
      assert.ok(a.length >= 3);
      for (let i = 0; i < a.length; i++) {
        for (const split of ["train", "val"] as const) {
          const x = a[i][split]!, y = b[i][split]!;
          const what = `textures ${prefersTextures}, model ${z} step ${a[i].step} ${split}`;
          // float32 rounding differences of the products carried through 60 SGD steps: measured
          // ~1e-7 relative on llvmpipe; the losses must agree to 1e-5 relative, the accuracies to
          // 2 samples in 1000 (a near tie may flip)
          const close = (u: number, v: number) => Math.abs(u - v) <= 1e-5 * Math.abs(u);
          assert.ok(close(x.loss, y.loss), `${what}: loss ${x.loss} vs ${y.loss}`);
          assert.ok(close(x.cost, y.cost), `${what}: cost ${x.cost} vs ${y.cost}`);
          assert.ok(Math.abs(x.accuracy - y.accuracy) <= 0.002, `${what}: accuracy`);
        }
      }
      assert.notDeepEqual(cpu.params[z], gpu.params[z], "the profiles sum in different orders");
    }
  }
  data.dataset.destroy();
});
