/**
 * Checks of shaders/matmul.wgsl against its float64 twin (src/reference/matmul.ts), shared by the
 * cpu profile's tests (matmul_test.ts) and the gpu profile's (matmul_gpu_test.ts): operands with
 * zero padding and garbage beyond, every epilogue, bias sums, texture operands, plain and wrapped.
 *
 * Tolerance: |gpu − ref| ≤ 1e-5·Σ_k|a_ik·b_kj|·s + 1e-6·|ref| + 1e-30, where s is the factor the
 * epilogue applies to the product (η for sgd, 1 otherwise). float32 rounding of a K-term dot
 * product stays far below 1e-5 of Σ|a·b| for K ≤ 3072 with random data, in whatever order the
 * terms are summed (one running sum, or slices meeting in a tree).
 */

import { pad4 } from "../src/gpu/buffers.ts";
import {
  type KernelProfile,
  READONLY_STORAGE_TEXTURES,
  type TextureReads,
  wgslLanguageFeatures,
} from "../src/gpu/device.ts";
import { type Epilogue, matmulOp, type MatmulVariant, type Tile } from "../src/kernels/matmul.ts";
import { type Op, runOps } from "../src/kernels/op.ts";
import { matmulRef } from "../src/reference/matmul.ts";
import { stepTable } from "../src/gpu/buffers.ts";
import { assertClose, download, gpuDevice, Rng, upload } from "./helpers.ts";
import assert from "node:assert/strict";

/** How the Z blocks of an operand are laid out: one shared, side by side in a row, stacked. */
export type Layout = "shared" | "side" | "stacked";

/** A test matrix: its data (padding zero, garbage beyond), leading dimension, block stride. */
export interface Mat {
  data: Float32Array<ArrayBuffer>;
  ld: number;
  zStride: number;
}

/** A rows×cols matrix per z (contiguous dim = cols) with zero padding and garbage beyond. */
export function makeMat(rng: Rng, rows: number, cols: number, Z: number, layout: Layout): Mat {
  const pc = pad4(cols);
  const ld = layout === "side" ? Z * pc + 4 : pc + 4;
  const zStride = layout === "side" ? pc : layout === "stacked" ? rows * ld : 0;
  const blocks = layout === "shared" ? 1 : Z;
  const size = layout === "stacked" ? Z * rows * ld : rows * ld;
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = 1e6 * rng.range(-1, 1); // must never be read
  for (let z = 0; z < blocks; z++) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < pc; c++) {
        data[z * zStride + r * ld + c] = c < cols ? rng.range(-1, 1) : 0;
      }
    }
  }
  return { data, ld, zStride };
}

/** A product to check: variant, shape, layouts, tile and operand kinds. */
export interface Case {
  v: MatmulVariant;
  M: number;
  N: number;
  K: number;
  Z?: number;
  a?: Layout;
  b?: Layout;
  tile?: Tile;
  /** A read from an rgba32float texture (shared layout only). */
  tex?: boolean;
  /** B read from an rgba32float texture (shared or side layout). */
  btex?: boolean;
  /**
   * Texture operands made without `STORAGE_BINDING` usage and bound for sampling; otherwise they
   * are bound as read-only storage textures wherever WGSL has them ({@link readsOf}).
   */
  sampled?: boolean;
  /**
   * These texture operands wrapped as placement wraps a copy of a buffer (src/kernels/placement.ts
   * `wrapOf`): the buffer's quads in order, 16 (A) or 32 (B) a texture row, the last texture row
   * partial where they do not divide.
   */
  wrap?: "a" | "b" | "ab";
  /** λ per block of this many columns of C (models side by side in one product, Z = 1). */
  lamColumns?: number;
}

/** Every epilogue but the fused loss (checked by {@link checkSoftmax}). */
export const epilogues: Epilogue[] = [
  "store",
  "bias",
  "bias_relu",
  "bias_relu_dropout",
  "relu_mask",
  "sgd",
  "grad_l2",
];

/**
 * Build the product of `c` with epilogue `epi` (the tile `c.tile`, else the profile's), run it on
 * random operands and compare C (and its bias sums) with the float64 twin; returns
 * the op, for its grid.
 */
export async function check(
  c: Case,
  epi: Epilogue,
  rng: Rng,
  profile?: KernelProfile,
): Promise<Op> {
  const device = await gpuDevice();
  const Z = c.Z ?? 1;
  const la = c.a ?? "shared", lb = c.b ?? "shared";
  const a = c.v === "tn" ? makeMat(rng, c.K, c.M, Z, la) : makeMat(rng, c.M, c.K, Z, la);
  const b = c.v === "nt" ? makeMat(rng, c.N, c.K, Z, lb) : makeMat(rng, c.K, c.N, Z, lb);
  const cm = makeMat(rng, c.M, c.N, Z, Z > 1 ? "side" : "shared");
  for (let i = 0; i < cm.data.length; i++) cm.data[i] = rng.range(-1, 1); // old C, all entries
  // aux: bias laid out like a row of C, or a matrix laid out like C
  const isBias = epi === "bias" || epi === "bias_relu" || epi === "bias_relu_dropout";
  // dropout on the epilogues that take it; the relu_mask gradient scale is checked with it too
  const dropout = epi === "bias_relu_dropout" || (epi === "relu_mask" && c.M % 2 === 1)
    ? { p: 0.3, seed: 17, layer: 2 }
    : undefined;
  const aux = new Float32Array(isBias ? cm.ld : cm.data.length);
  for (let i = 0; i < aux.length; i++) aux[i] = rng.range(-1, 1);
  const lam = new Float32Array([0.3, 0.01, 1e-4, 0.05]);
  const eta = 0.05;
  // tn also sums B's columns into a bias vector (on alternate epilogues: stored or SGD-applied)
  const biasMode = c.v === "tn" ? (epi === "sgd" || epi === "store" ? "sgd" : "store") : undefined;
  const bias = new Float32Array(cm.ld + 4);
  for (let i = 0; i < bias.length; i++) bias[i] = rng.range(-1, 1);
  const biasWant = Float64Array.from(bias);
  const want = Float64Array.from(cm.data);
  const common = { variant: c.v, M: c.M, N: c.N, K: c.K, Z, epilogue: epi };
  matmulRef({
    ...common,
    a: a,
    b: b,
    c: { data: want, ld: cm.ld, zStride: cm.zStride },
    aux: { data: aux },
    lambda: { data: lam, columns: c.lamColumns },
    eta,
    dropout,
    step: 1,
    bias: biasMode ? { data: biasWant, mode: biasMode } : undefined,
  });
  const absSum = new Float64Array(cm.data.length);
  matmulRef({
    ...common,
    epilogue: "store",
    a: { ...a, data: a.data.map(Math.abs) },
    b: { ...b, data: b.data.map(Math.abs) },
    c: { data: absSum, ld: cm.ld, zStride: cm.zStride },
  });
  const cBuf = upload(device, cm.data);
  const biasBuf = upload(device, bias);
  const aRows = c.v === "tn" ? c.K : c.M;
  const bRows = c.v === "nt" ? c.N : c.K;
  const op = matmulOp(device, {
    ...common,
    a: c.tex
      ? textureOperand(device, a, aRows, c, "a")
      : { buffer: upload(device, a.data), ld: a.ld, zStride: a.zStride },
    b: c.btex
      ? { ...textureOperand(device, b, bRows, c, "b"), zStride: b.zStride }
      : { buffer: upload(device, b.data), ld: b.ld, zStride: b.zStride },
    c: { buffer: cBuf, ld: cm.ld, zStride: cm.zStride },
    aux: { buffer: upload(device, aux) },
    lambda: { buffer: upload(device, lam), columns: c.lamColumns },
    steps: stepTable(device, [{}, { eta, step: 1 }], "steps"),
    tile: c.tile,
    profile,
    textureReads: readsOf(c),
    dropout,
    bias: biasMode ? { buffer: biasBuf, mode: biasMode } : undefined,
  });
  await runOps(device, [op], 1);
  const got = await download(device, cBuf, cm.data.length);
  if (biasMode) {
    const gotBias = await download(device, biasBuf, bias.length);
    // Σ_k |b| bounds the float32 error of a K-term sum; untouched entries must match exactly
    assertClose(
      gotBias,
      biasWant,
      (i) => 1e-5 * c.K * (biasMode === "sgd" ? eta : 1) + 1e-6 * Math.abs(biasWant[i]),
      `${c.v} bias ${biasMode}`,
    );
  }
  const scale = epi === "sgd" ? eta : dropout ? 1 / 0.7 : 1;
  const what = `${c.v} M=${c.M} N=${c.N} K=${c.K} Z=${Z} ${la}/${lb} ${epi}${caseTags(c)}`;
  assertClose(got, want, (i) => 1e-5 * absSum[i] * scale + 1e-6 * Math.abs(want[i]) + 1e-30, what);
  // entries outside the logical M×N blocks are untouched (want kept the old values there)
  for (let i = 0; i < got.length; i++) {
    if (absSum[i] === 0 && want[i] === cm.data[i]) {
      assert.equal(got[i], cm.data[i], `${what}: wrote outside C at ${i}`);
    }
  }
  return op;
}

/**
 * A texture operand holding `rows` rows of `m` (with the blocks side by side in them): a row of
 * `m` a texture row, or, where `c.wrap` names it, the quads of `m`'s buffer in order, {@link WRAP}
 * a texture row (as placement wraps a copy of a buffer), the last texture row partial where they
 * do not divide.
 */
export function textureOperand(
  device: GPUDevice,
  m: Mat,
  rows: number,
  c: Case,
  which: "a" | "b",
): { texture: GPUTexture; ld: number } {
  const quads = (rows * m.ld) / 4;
  const width = c.wrap?.includes(which) ? WRAP[which] : m.ld / 4;
  const data = new Float32Array(Math.ceil(quads / width) * width * 4);
  data.set(m.data.subarray(0, rows * m.ld));
  return {
    texture: uploadTexture(device, data, width, Math.ceil(quads / width), c),
    ld: m.ld,
  };
}

/**
 * Texels a row of a wrapped texture operand in the checks: placement's smallest (256 bytes) for
 * A, the next for B (placement's W₁ of 4 models of 50 units), so that two shifts are exercised.
 */
const WRAP = { a: 16, b: 32 };

/**
 * How a case's texture operands are bound: as read-only storage textures wherever WGSL has them
 * (on every adapter, whatever it reads by default), sampled for `sampled` cases (whose textures
 * also lack `STORAGE_BINDING`).
 */
function readsOf(c: Case): TextureReads {
  return !c.sampled && wgslLanguageFeatures().has(READONLY_STORAGE_TEXTURES)
    ? "storage"
    : "sampled";
}

/** The operand kinds of a case, for test names. */
export function caseTags(c: Case): string {
  return (c.tex ? " (A texture)" : "") + (c.btex ? " (B texture)" : "") +
    (c.sampled ? " (sampled)" : "") +
    (c.wrap ? ` (${c.wrap.split("").join(", ").toUpperCase()} wrapped)` : "") +
    (c.lamColumns ? ` (λ per ${c.lamColumns} columns)` : "");
}

/**
 * An rgba32float texture of `rows` rows of `quads` texels holding `data`, with `STORAGE_BINDING`
 * usage unless `sampled` (so read as a storage texture where the process reads textures so).
 */
export function uploadTexture(
  device: GPUDevice,
  data: Float32Array<ArrayBuffer>,
  quads: number,
  rows: number,
  opts: { sampled?: boolean } = {},
): GPUTexture {
  const texture = device.createTexture({
    size: [quads, rows],
    format: "rgba32float",
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST |
      (opts.sampled ? 0 : GPUTextureUsage.STORAGE_BINDING),
  });
  device.queue.writeTexture({ texture }, data, { bytesPerRow: quads * 16 }, [quads, rows]);
  return texture;
}

/**
 * Build the `nn` product of `c` with the softmax cross-entropy fused in (bias_softmax_ce: C =
 * (softmax(A·B + bias) − onehot(y))·scale), run it and compare with the twin's product followed by
 * softmaxCeRef; returns the op. Tolerance: the scores' error (≤ 1e-5·Σ|a·b|, as above) moves a
 * probability by at most twice that, scaled by `scale`; plus 1e-6.
 */
export async function checkSoftmax(c: Case, profile?: KernelProfile): Promise<Op> {
  const device = await gpuDevice();
  const rng = new Rng(c.M * 7919 + c.N * 31 + c.K);
  const Z = c.Z ?? 1;
  const la = c.a ?? "shared", lb = c.b ?? "shared";
  const a = makeMat(rng, c.M, c.K, Z, la), b = makeMat(rng, c.K, c.N, Z, lb);
  const cm = makeMat(rng, c.M, c.N, Z, Z > 1 ? "side" : "shared");
  const bias = new Float32Array(cm.ld).map(() => rng.range(-1, 1));
  const labels = Uint32Array.from({ length: c.M }, () => rng.int(c.N));
  const scale = 1 / c.M;
  const want = Float64Array.from(cm.data);
  const spec = { variant: "nn" as const, M: c.M, N: c.N, K: c.K, Z };
  matmulRef({
    ...spec,
    epilogue: "bias_softmax_ce",
    a,
    b,
    c: { data: want, ld: cm.ld, zStride: cm.zStride },
    aux: { data: bias },
    softmax: { labels, scale },
  });
  const absSum = new Float64Array(cm.data.length);
  matmulRef({
    ...spec,
    a: { ...a, data: a.data.map(Math.abs) },
    b: { ...b, data: b.data.map(Math.abs) },
    c: { data: absSum, ld: cm.ld, zStride: cm.zStride },
  });
  const cBuf = upload(device, cm.data);
  const op = matmulOp(device, {
    ...spec,
    epilogue: "bias_softmax_ce",
    a: c.tex
      ? textureOperand(device, a, c.M, c, "a")
      : { buffer: upload(device, a.data), ld: a.ld, zStride: a.zStride },
    b: c.btex
      ? { ...textureOperand(device, b, c.K, c, "b"), zStride: b.zStride }
      : { buffer: upload(device, b.data), ld: b.ld, zStride: b.zStride },
    c: { buffer: cBuf, ld: cm.ld, zStride: cm.zStride },
    aux: { buffer: upload(device, bias) },
    softmax: { labels: upload(device, labels), scale },
    profile,
    textureReads: readsOf(c),
  });
  await runOps(device, [op]);
  const got = await download(device, cBuf, cm.data.length);
  // the largest Σ|a·b| of each row bounds how far its probabilities can move
  const rowMax = (i: number) => {
    const r = Math.floor(i / cm.ld); // C is shared (Z = 1) or side by side: rows span every z
    let m = 0;
    for (let z = 0; z < Z; z++) {
      for (let j = 0; j < c.N; j++) m = Math.max(m, absSum[z * cm.zStride + r * cm.ld + j]);
    }
    return m;
  };
  const what = `nn M=${c.M} N=${c.N} K=${c.K} Z=${Z} ${la}/${lb} bias_softmax_ce${caseTags(c)}`;
  assertClose(got, want, (i) => 2e-5 * rowMax(i) * scale + 1e-6, what);
  for (let i = 0; i < got.length; i++) {
    if (absSum[i] === 0 && want[i] === cm.data[i]) {
      assert.equal(got[i], cm.data[i], `${what}: wrote outside C at ${i}`);
    }
  }
  return op;
}
