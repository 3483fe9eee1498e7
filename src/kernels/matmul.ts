/**
 * Matrix products for dense layers (`shaders/matmul.wgsl`), with their fused epilogues.
 *
 * Operands are row-major regions of storage buffers: element (z, row, col) of an operand sits at
 * `offset + z·zStride + row·ld + col`. Offsets and leading dimensions are multiples of 4, and the
 * columns between a matrix's logical width and its padded width hold zeros.
 *
 * @module
 */

import { dummyBuffer, noSteps, scratchBuffer } from "../gpu/buffers.ts";
import {
  type KernelProfile,
  readsAsStorage,
  type TextureReads,
  textureReadsOf,
} from "../gpu/device.ts";
import { IMAGES_PER_TEXTURE_ROW } from "../data/resident.ts";
import { IMAGE_BYTES } from "../data/format.ts";
import { checkGroups, F32, kernelOp, type Op, type OpCost, timesZ } from "./op.ts";
import { type BnDropout, dropThreshold } from "../nn/shared.ts";

/** `nn`: C = A·B; `tn`: C = Aᵀ·B (A stored K×M); `nt`: C = A·Bᵀ (B stored N×K). */
export type MatmulVariant = "nn" | "tn" | "nt";

/** What happens to each finished dot product; see shaders/matmul.wgsl. */
export type Epilogue =
  | "store"
  | "bias"
  | "bias_relu"
  | "bias_relu_dropout"
  | "relu_mask"
  | "sgd"
  | "grad_l2"
  | "bias_softmax_ce";

const EPILOGUES: Record<Epilogue, number> = {
  store: 0,
  bias: 1,
  bias_relu: 2,
  relu_mask: 3,
  sgd: 4,
  grad_l2: 5,
  bias_relu_dropout: 6,
  bias_softmax_ce: 7,
};

/** Most classes the output layer may have for its loss to be fused into its product. */
export const SOFTMAX_MAX_N = 32;

/**
 * Whether an `nn` product of N output columns can end in the softmax cross-entropy gradient
 * (epilogue `bias_softmax_ce`): one invocation must hold whole rows, 4·TN4 ≥ N registers wide.
 */
export function softmaxFusable(variant: MatmulVariant, N: number): boolean {
  return variant === "nn" && N <= SOFTMAX_MAX_N;
}

/** A matrix operand inside a buffer. */
export interface Operand {
  /** Storage buffer of f32 holding the matrix. */
  buffer: GPUBuffer;
  /** First element, in floats (multiple of 4). */
  offset?: number;
  /** Row stride, in floats (multiple of 4). */
  ld: number;
  /** Distance between consecutive batch entries z, in floats (0 = shared by all z). */
  zStride?: number;
}

/**
 * An operand read from an rgba32float texture instead of a buffer: row r of the matrix is texture
 * row r, its quads the texels, with no offset — or, wrapped ({@link TextureOperand.ld}), the quads
 * of its buffer in order, `width` a texture row; `nn` and `tn` only. As A it is shared by every z;
 * as B, batch entry z starts at texel z·zStride/4 of each row (blocks side by side). On llvmpipe
 * texel loads are much cheaper than buffer loads (see `prefersTextures` in src/gpu/device.ts).
 * A texture with `STORAGE_BINDING` usage is bound as a read-only storage texture where the
 * product reads textures so ({@link MatmulSpec.textureReads}; by default the device's, storage on
 * llvmpipe: `textureReads` in src/gpu/device.ts); without that usage it is bound for sampling.
 */
export interface TextureOperand {
  /**
   * The texture (width = quads per row, height = rows; wrapped, a power of two of quads a row),
   * bound for sampling or as a read-only storage texture (see above).
   */
  texture: GPUTexture;
  /** B only: distance between consecutive batch entries z, in floats (multiple of 4). */
  zStride?: number;
  /**
   * The matrix's row stride in floats, for a wrapped texture: one that holds the matrix's quads in
   * the order of a buffer with rows of `ld` floats (batch entry z of B from float z·zStride),
   * `width` a texture row, a power of two: quad t of the buffer is texel (t mod width,
   * ⌊t / width⌋). That is what `copyBufferToTexture` makes of a buffer whose rows are not a
   * multiple of 256 bytes (src/kernels/placement.ts). Without it (or with ld = 4·width) texture
   * row r is row r of the matrix.
   */
  ld?: number;
}

/**
 * An A operand that holds no values of its own: row r is the dataset image `index[r]`, normalised
 * per dimension — the row the gather would have written into X, to the bit (see A_IMAGES in
 * shaders/matmul.wgsl). Layer 1's products read the batch so, straight from the dataset, when
 * placement (src/kernels/placement.ts) finds X read by nothing else. Shared by every z; `nn` with
 * K = 3072 (rows of A) or `tn` with M = 3072 (A stored K × M) only.
 */
export interface ImagesOperand {
  /** The dataset's images: an rgba8uint texture, as `datasetImages` (src/data/resident.ts) makes it. */
  images: GPUTexture;
  /** One u32 per row of A: the image of the row. */
  index: GPUBuffer;
  /** The normalisation: rgba32float, 768 × 2 texels (means, then 1/std), as the gather reads it. */
  norm: GPUTexture;
}

/**
 * Register tile: TM rows × 4·TN4 columns of C per output tile, WG invocations per workgroup. With
 * `ks` (the `gpu` profile's kernels) KS invocations share each output tile, each summing every
 * KS-th step of K, and a workgroup holds WG / KS tiles; without it (the `cpu` profile's) each
 * invocation computes one tile over the whole of K.
 */
export interface Tile {
  /** TM: rows of C per tile (a multiple of 4 for `tn`). */
  tm: number;
  /** TN4: column quads of C per tile (4·tn4 columns). */
  tn4: number;
  /** WG: invocations per workgroup. */
  wg: number;
  /**
   * KS: invocations per output tile, a power of two dividing `wg`, whose partial sums meet in
   * workgroup memory (`matmul_*_split` in shaders/matmul.wgsl; 1 = no split). Absent: the `cpu`
   * profile's kernels (`matmul_nn` etc.).
   */
  ks?: number;
}

/** Everything a matmul dispatch needs. */
export interface MatmulSpec {
  /** Product form: `nn` C = A·B, `tn` C = Aᵀ·B, `nt` C = A·Bᵀ. */
  variant: MatmulVariant;
  /** Logical rows of C. */
  M: number;
  /** Logical columns of C. */
  N: number;
  /** Logical inner dimension of the product. */
  K: number;
  /** Batch count: z = 0..Z-1 run in one dispatch (one per model of a population). */
  Z?: number;
  /** Left operand A: M×K, or K×M for `tn`. */
  a: Operand | TextureOperand | ImagesOperand;
  /** Right operand B: K×N, or N×K for `nt` (a texture for `nn` and `tn` only). */
  b: Operand | TextureOperand;
  /** Output C, M×N; read too by the `sgd` epilogue (C is then W, updated in place). */
  c: Operand;
  /** What is done with each dot product before it is stored (default `store`). */
  epilogue?: Epilogue;
  /** Bias (`bias`, `bias_relu`: indexed by z·c.zStride + col), mask H (`relu_mask`) or W (`grad_l2`), laid out like C. */
  aux?: { buffer: GPUBuffer; offset?: number };
  /** Per-z L2 strengths λ (`sgd`, `grad_l2`): λ of batch entry z at `z·zStride`. */
  lambda?: {
    buffer: GPUBuffer;
    /** Distance between the λ of consecutive models, in floats (default 1). */
    zStride?: number;
    /**
     * Models side by side in one product (Z = 1, a wide C): model m owns columns
     * [m·columns, (m+1)·columns) of C and uses λ at m·zStride. Default: model = z.
     */
    columns?: number;
  };
  /**
   * `tn` only: also the bias gradient Σ_k B(z, k, j) of each column (B being a layer's output
   * gradient), stored into `buffer` or applied as an SGD step (−η·sum), laid out like a row of C.
   */
  bias?: { buffer: GPUBuffer; mode: "store" | "sgd" };
  /** Step table whose record supplies η (`sgd`) or the step that seeds dropout. */
  steps?: GPUBuffer;
  /**
   * Inverted dropout with probability p: `bias_relu_dropout` zeroes dropped units and scales kept
   * ones by 1/(1−p); `relu_mask` scales its gradient by 1/(1−p) (the units it keeps are the kept
   * ones). `seed` and `layer` select the mask stream (see shaders/random.wgsl).
   */
  dropout?: BnDropout;
  /**
   * `bias_softmax_ce`: the samples' labels (one u32 per row) and the gradient's scale (1/B): C
   * receives (softmax(A·B + bias) − onehot(y))·scale, the output layer's loss gradient.
   */
  softmax?: { labels: GPUBuffer; scale: number };
  /**
   * Which kernel selection picks the tile when `tile` is not given (default `cpu`): `cpu`
   * {@link defaultTile}, `gpu` {@link gpuTile} (see `Gpu.kernelProfile`). Results agree to float32
   * rounding, not to the bit: the sums run in another order.
   */
  profile?: KernelProfile;
  /**
   * How texture operands are bound (default: as the device reads them, `textureReadsOf`):
   * `storage` binds those with `STORAGE_BINDING` usage as read-only storage textures (WGSL must
   * have `readonly_and_readwrite_storage_textures`), `sampled` binds them for sampling.
   */
  textureReads?: TextureReads;
  /** Register tiling (default: {@link selectTile} for the profile, variant and shape). */
  tile?: Tile;
  /** Debug label of the op (default `matmul_<variant>`). */
  label?: string;
}

/** The tile used when a spec names none: chosen for the product's shape. */
export function defaultTile(
  variant: MatmulVariant,
  M: number,
  N: number,
  epilogue: Epilogue = "store",
): Tile {
  // measured on llvmpipe (2 cores): loads dominate, so larger tiles pay while the grid stays
  // wide enough for both cores; 12×12 and 16×8/16×16 were 10–25% ahead of 8×8 on the layer shapes
  // wide products (layer 1 of a population, N = P·pout) take 20×16 tiles: at N = 832 they ran
  // 1.3–1.5× faster than 12×12
  if (variant === "tn") {
    return N >= 256 ? { tm: 20, tn4: 4, wg: 8 } : { tm: 16, tn4: N >= 8 ? 2 : 1, wg: 8 };
  }
  if (variant === "nt") return { tm: 4, tn4: N >= 8 ? 2 : 1, wg: 8 };
  // the fused loss needs whole rows per invocation: TN4 = ⌈N/4⌉ (see softmaxFusable)
  if (epilogue === "bias_softmax_ce") return { tm: M >= 12 ? 12 : 4, tn4: Math.ceil(N / 4), wg: 8 };
  if (N >= 256 && M >= 20) return { tm: 20, tn4: 4, wg: 8 };
  return { tm: M >= 12 ? 12 : 4, tn4: N >= 12 ? 3 : N >= 8 ? 2 : 1, wg: 8 };
}

/**
 * Invocations the `gpu` profile aims to launch per product: an H100 SXM has 132 multiprocessors,
 * each holding up to 2048 resident invocations; 256 per multiprocessor (8 warps) is the fewest that
 * hides a load's latency behind other warps' FMAs, so 132 · 256 = 33 792 invocations fill the chip.
 */
export const GPU_TARGET_INVOCATIONS = 132 * 256;

/**
 * Fewest K steps (quads of K for `nn` and `nt`, rows for `tn`) a slice of a split product keeps: a
 * slice of s steps does s·TM·TN4 vec4 FMAs and the reduction log2(KS) rounds of TM·TN4 vec4 adds
 * behind a barrier each; below 16 steps the rounds would cost as much as the slice.
 */
export const GPU_MIN_SLICE = 16;

/** Largest workgroup the `gpu` profile uses: every WebGPU device allows 256 invocations. */
const GPU_MAX_WG = 256;
/** Smallest: two warps of 32 (one wave of 64 on AMD), so that no SIMD lane idles. */
const GPU_MIN_WG = 64;
/** Workgroup memory every WebGPU device allows (maxComputeWorkgroupStorageSize's floor), bytes. */
const GPU_WG_BYTES = 16384;

/**
 * The `gpu` profile's tile for a product (see {@link Tile}): 64–256 invocations per workgroup,
 * K split inside the workgroup until about {@link GPU_TARGET_INVOCATIONS} run.
 *
 * The napkin math, on an H100 (132 multiprocessors, ~60 TFLOP/s fp32, 3 TB/s):
 * - Output tiles: 4×4 (16 outputs, 16 vec4 FMAs per 8 vec4 loads of a K quad) for small outputs,
 *   1 row × 4 columns when M < 4, 8×8 (64 vec4 FMAs per 16 loads: twice the reuse) when both M
 *   and N reach 64 (`nn`, `tn`; `nt`, whose tile holds TM·4·TN4 lane vectors, stays 4×4), whole
 *   rows of ⌈N/4⌉ quads, 1 row a tile, for the fused loss.
 * - KS, a power of two: doubled while tiles·KS < 33 792, a slice keeps ≥ {@link GPU_MIN_SLICE}
 *   steps, KS ≤ 256 and the partial tiles fit workgroup memory (WG·TM·TN4·16 B ≤ 16 KiB).
 * - WG = max(64, KS): KS slices of 64/KS tiles, or one tile of KS slices.
 *
 * What it gives the 3072-50-10 net at batch 100 (layer 1's two products are 98% of its flops):
 * - forward `nn` 100×3072·3072×50 (30.7 MFLOP): 25·13 = 325 tiles of 4×4, K4 = 768 quads, KS 32
 *   (24 quads a slice) → 325·32 = 10 400 busy invocations in 163 workgroups of 64, where the cpu
 *   profile's 12×12 tiles launch 9·5 = 45 invocations in 6 workgroups of 8: a chain of 768 steps
 *   of ~100 cycles of load latency each (~45 µs at 1.7 GHz) against 24 steps and 5 reduction
 *   rounds (~2 µs), for a product whose operands (1.8 MB) stream in under 1 µs.
 * - weight gradient `tn` (100×3072)ᵀ·100×50 (30.7 MFLOP): 768·13 = 9 984 tiles of 4×4, K = 100
 *   rows, KS 4 (25 rows a slice) → 39 936 invocations in 624 workgroups.
 * - the 16-model wide layer 1, `nn` 100×3072·3072×832 (511 MFLOP): 13·104 = 1 352 tiles of 8×8,
 *   KS 32 (24 quads a slice) → 43 264 invocations in 676 workgroups.
 * - a square 1024³ product (2.1 GFLOP): 16 384 tiles of 8×8, KS 4 (64 quads a slice) → 65 536
 *   invocations in 1 024 workgroups.
 * - the small layers (layer 2: 100×50·50×10, 0.1 MFLOP) stay at KS 1 and a few workgroups:
 *   they are bound by the launch (~5 µs), not by threads.
 */
export function gpuTile(
  variant: MatmulVariant,
  M: number,
  N: number,
  K: number,
  Z = 1,
  epilogue: Epilogue = "store",
): Tile {
  let tm: number, tn4: number;
  if (epilogue === "bias_softmax_ce") [tm, tn4] = [1, Math.ceil(N / 4)];
  else if (variant !== "nt" && M >= 64 && N >= 64) [tm, tn4] = [8, 2];
  else [tm, tn4] = [variant === "tn" || M >= 4 ? 4 : 1, 1];
  const tiles = Math.ceil(M / tm) * Math.ceil(N / (4 * tn4)) * Z;
  const steps = variant === "tn" ? K : Math.ceil(K / 4);
  const maxWg = Math.min(GPU_MAX_WG, GPU_WG_BYTES / (16 * tm * tn4));
  let ks = 1;
  while (
    tiles * ks < GPU_TARGET_INVOCATIONS && steps / (2 * ks) >= GPU_MIN_SLICE && 2 * ks <= maxWg
  ) {
    ks *= 2;
  }
  return { tm, tn4, wg: Math.max(GPU_MIN_WG, ks), ks };
}

/** The tile a product gets when its spec names none: {@link defaultTile} or {@link gpuTile}. */
export function selectTile(
  profile: KernelProfile,
  variant: MatmulVariant,
  M: number,
  N: number,
  K: number,
  Z = 1,
  epilogue: Epilogue = "store",
): Tile {
  return profile === "gpu"
    ? gpuTile(variant, M, N, K, Z, epilogue)
    : defaultTile(variant, M, N, epilogue);
}

/**
 * log2 of a wrapped texture operand's width (see {@link TextureOperand.ld}); 0 for a texture whose
 * rows are the matrix's (no ld, or ld = 4·width); an error for a width that is not a power of two.
 */
function wrapOf(label: string, which: "a" | "b", t: TextureOperand): number {
  if (t.ld === undefined || t.ld === 4 * t.texture.width) return 0;
  const w = t.texture.width;
  if (!(t.ld > 0 && t.ld % 4 === 0 && w >= 2 && (w & (w - 1)) === 0)) {
    throw new Error(
      `${label}: ${which}'s texture of ${w} texels a row holds neither its rows of ${t.ld} ` +
        `floats nor its quads wrapped at a power of two`,
    );
  }
  return Math.log2(w);
}

function check4(label: string, what: string, v: number): void {
  if (v % 4 !== 0) throw new Error(`${label}: ${what} ${v} is not a multiple of 4`);
}

/** Prepare a matmul dispatch: validates the layout, builds the pipeline and bind group once. */
export function matmulOp(device: GPUDevice, spec: MatmulSpec): Op {
  const { variant, M, N, K } = spec;
  const Z = spec.Z ?? 1;
  const label = spec.label ?? `matmul_${variant}`;
  const epi = spec.epilogue ?? "store";
  if (M < 1 || N < 1 || K < 1 || Z < 1) {
    throw new Error(`${label}: empty shape ${M}x${N}x${K}x${Z}`);
  }
  const tile = spec.tile ?? selectTile(spec.profile ?? "cpu", variant, M, N, K, Z, epi);
  if (variant === "tn" && tile.tm % 4 !== 0) throw new Error(`${label}: tn needs tm % 4 == 0`);
  const split = tile.ks !== undefined;
  const ks = tile.ks ?? 1;
  if (split) {
    if (!(Number.isInteger(ks) && ks >= 1 && (ks & (ks - 1)) === 0 && tile.wg % ks === 0)) {
      throw new Error(`${label}: ks ${ks} is not a power of two dividing wg ${tile.wg}`);
    }
    const bytes = 16 * tile.wg * tile.tm * tile.tn4;
    if (bytes > device.limits.maxComputeWorkgroupStorageSize) {
      throw new Error(
        `${label}: tile ${tile.tm}x${tile.tn4}x${tile.wg} needs ${bytes} bytes of workgroup ` +
          `memory (the device allows ${device.limits.maxComputeWorkgroupStorageSize})`,
      );
    }
  }
  // a texture A has no offset or batch stride, and a leading dimension only when wrapped
  const img = "images" in spec.a ? spec.a : null;
  if (img && variant === "nt") throw new Error(`${label}: images as A need nn or tn`);
  if (img && (variant === "nn" ? K : M) !== IMAGE_BYTES) {
    throw new Error(
      `${label}: images as A are rows of ${IMAGE_BYTES} values, not ${variant === "nn" ? K : M}`,
    );
  }
  const aTexture = "texture" in spec.a ? spec.a.texture : null;
  const aBuf = "texture" in spec.a || img ? null : spec.a as Operand;
  if (aTexture && variant === "nt") throw new Error(`${label}: a texture A needs nn or tn`);
  if (aTexture && (spec.a as TextureOperand).zStride) {
    throw new Error(`${label}: a texture A is shared by every z (zStride 0)`);
  }
  const aWrap = "texture" in spec.a ? wrapOf(label, "a", spec.a) : 0;
  const aLayout = aBuf ?? { ld: aWrap ? (spec.a as TextureOperand).ld! : 0, offset: 0, zStride: 0 };
  const bTexture = "texture" in spec.b ? spec.b.texture : null;
  if (bTexture && variant === "nt") throw new Error(`${label}: a texture B needs nn or tn`);
  const bWrap = "texture" in spec.b ? wrapOf(label, "b", spec.b) : 0;
  const bLayout = "texture" in spec.b
    ? { ld: bWrap ? spec.b.ld! : 0, offset: 0, zStride: spec.b.zStride ?? 0 }
    : spec.b;
  for (const [name, op] of [["a", aLayout], ["b", bLayout], ["c", spec.c]] as const) {
    check4(label, `${name}.offset`, op.offset ?? 0);
    check4(label, `${name}.ld`, op.ld);
    check4(label, `${name}.zStride`, op.zStride ?? 0);
  }
  if (
    (epi === "bias" || epi === "bias_relu" || epi === "relu_mask" || epi === "grad_l2") && !spec.aux
  ) {
    throw new Error(`${label}: epilogue ${epi} needs aux`);
  }
  if ((epi === "sgd" || epi === "grad_l2") && !spec.lambda) {
    throw new Error(`${label}: epilogue ${epi} needs lambda`);
  }
  const lamCols = spec.lambda?.columns ?? 0;
  if (lamCols !== 0 && (lamCols % 4 !== 0 || lamCols < 0)) {
    throw new Error(`${label}: lambda.columns ${lamCols} is not a positive multiple of 4`);
  }
  if ((epi === "sgd" || epi === "bias_relu_dropout") && !spec.steps) {
    throw new Error(`${label}: epilogue ${epi} needs a step table`);
  }
  if (epi === "bias_relu_dropout" && !spec.dropout) {
    throw new Error(`${label}: ${epi} needs dropout`);
  }
  if (spec.bias && variant !== "tn") throw new Error(`${label}: bias sums need the tn variant`);
  check4(label, "aux.offset", spec.aux?.offset ?? 0);
  if (spec.bias?.mode === "sgd" && !spec.steps) {
    throw new Error(`${label}: bias sgd needs a step table`);
  }
  const softmax = epi === "bias_softmax_ce";
  if (softmax) {
    if (!softmaxFusable(variant, N)) {
      throw new Error(`${label}: ${epi} needs nn and at most ${SOFTMAX_MAX_N} columns`);
    }
    if (4 * tile.tn4 < N) throw new Error(`${label}: ${epi} needs 4·tn4 >= N (whole rows)`);
    if (!spec.aux || !spec.softmax) throw new Error(`${label}: ${epi} needs aux and softmax`);
  } else if (spec.softmax) {
    throw new Error(`${label}: softmax labels need the bias_softmax_ce epilogue`);
  }
  const drop: BnDropout = spec.dropout ?? { p: 0, seed: 0, layer: 0 };
  if (!(drop.p >= 0 && drop.p < 1)) throw new Error(`${label}: dropout p ${drop.p} outside [0, 1)`);
  if (drop.table && !spec.lambda) {
    throw new Error(`${label}: per-model dropout reads the lambda buffer: give lambda`);
  }
  const tilesM = Math.ceil(M / tile.tm);
  const tilesN = Math.ceil(N / (4 * tile.tn4));
  const dummy = dummyBuffer(device);
  const reads = spec.textureReads ?? textureReadsOf(device);
  // the gpu profile's kernels: KS invocations a tile, WG / KS tiles a workgroup
  const tilesPerGroup = tile.wg / ks;
  return kernelOp(device, {
    shader: "matmul",
    entryPoint: `matmul_${variant}${split ? "_split" : ""}`,
    constants: {
      ...(split ? { SPLIT: true, KS: ks } : {}),
      ...(tile.tm % 4 !== 0 ? { TN_TILE: false } : {}),
      TM: tile.tm,
      TN4: tile.tn4,
      WG: tile.wg,
      A_TEXTURE: !!aTexture,
      A_IMAGES: !!img,
      ...(img ? { A_IMAGE_ROW: IMAGES_PER_TEXTURE_ROW } : {}),
      B_TEXTURE: !!bTexture,
      A_STORAGE: readsAsStorage(reads, aTexture ?? img?.images ?? null),
      B_STORAGE: readsAsStorage(reads, bTexture),
      ...(aWrap ? { A_WRAP: aWrap } : {}),
      ...(bWrap ? { B_WRAP: bWrap } : {}),
      EPI: EPILOGUES[epi],
      BIAS: spec.bias ? (spec.bias.mode === "sgd" ? 2 : 1) : 0,
      SOFTMAX: softmax,
    },
    label,
    resources: {
      ...(img
        ? { Ai: img.images, aIndex: img.index, aNorm: img.norm }
        : aTexture
        ? { At: aTexture }
        : { A: aBuf!.buffer }),
      ...(bTexture ? { Bt: bTexture } : { B: (spec.b as Operand).buffer }),
      C: spec.c.buffer,
      p: {
        M,
        N,
        K,
        tilesN,
        lda: aLayout.ld,
        ldb: bLayout.ld,
        ldc: spec.c.ld,
        tilesM,
        aOff: aLayout.offset ?? 0,
        bOff: bLayout.offset ?? 0,
        cOff: spec.c.offset ?? 0,
        auxOff: spec.aux?.offset ?? 0,
        aZ: aLayout.zStride ?? 0,
        bZ: bLayout.zStride ?? 0,
        cZ: spec.c.zStride ?? 0,
        lamZ: spec.lambda?.zStride ?? 1,
        dropSeed: drop.seed >>> 0,
        dropLayer: drop.layer >>> 0,
        dropThreshold: dropThreshold(drop.p),
        dropScale: 1 / (1 - drop.p),
        lamCols,
        scale: spec.softmax?.scale ?? 1,
        dropTable: drop.table?.thresholds ?? 0,
        dropScales: drop.table?.scales ?? 0,
      },
      aux: spec.aux?.buffer ?? dummy,
      lam: spec.lambda?.buffer ?? dummy,
      st: spec.steps ?? noSteps(device),
      bias: spec.bias?.buffer ?? scratchBuffer(device, 2),
      ...(spec.softmax ? { labels: spec.softmax.labels } : {}),
    },
    workgroups: [
      checkGroups(label, Math.ceil((tilesM * tilesN) / tilesPerGroup)),
      1,
      checkGroups(label, Z),
    ],
    stepped: !!spec.steps,
    cost: matmulCost(spec, !aLayout.zStride, !bLayout.zStride, !!img),
  });
}

/**
 * Nominal cost of a product, C (M×N) = A·B over K for each of Z batch entries:
 * - flops: 2·M·N·K·Z (a multiply and an add per term), plus the epilogue's work per element of C:
 *   `sgd` w − η·(acc + 2λ·w) 4 (2λ formed once per model), `grad_l2` acc + 2λ·w 2; the bias,
 *   ReLU, mask and dropout epilogues are selects and single adds, not counted (≤ 1/(2K) of the
 *   product). Bias sums (`tn` with `bias`): an add per element of B, K·N·Z, and `sgd` mode
 *   b − η·db 2 per bias.
 * - bytes: each operand once, 4 bytes a float (images as A: a byte a value and 4 an index): A M·K (once if shared by every z: zStride 0 or a
 *   texture, else Z times), B K·N (likewise), C M·N·Z written (and read too by `sgd`), aux a
 *   bias row N·Z or a matrix like C (`relu_mask` H, `grad_l2` W), bias sums N·Z written (read
 *   too by `sgd`), the labels M (`bias_softmax_ce`, whose loss adds 4 flops per score, as the
 *   softmax_ce kernel counts it). The per-model λ is not counted.
 * - the same for either kernel profile: the `gpu` profile's split kernels add KS − 1 partial sums
 *   per element of C in workgroup memory, (KS − 1)/(2K) of the product's flops (under 1/32: each
 *   slice keeps ≥ 16 rows or quads of K), not counted either.
 */
function matmulCost(
  spec: MatmulSpec,
  aShared: boolean,
  bShared: boolean,
  images: boolean,
): OpCost {
  const { variant, M, N, K } = spec;
  const Z = spec.Z ?? 1;
  const epi = spec.epilogue ?? "store";
  const mnz = M * N * Z;
  // the fused loss: 4 per score, as the softmax_ce kernel counts it (max, exp, sum, scale)
  const perC = epi === "sgd" ? 4 : epi === "grad_l2" ? 2 : epi === "bias_softmax_ce" ? 4 : 0;
  const biasFlops = spec.bias ? K * N * Z + (spec.bias.mode === "sgd" ? 2 * N * Z : 0) : 0;
  const aux = !spec.aux ? 0 : epi === "relu_mask" || epi === "grad_l2" ? mnz : N * Z;
  const floats = M * K * (aShared ? 1 : Z) + K * N * (bShared ? 1 : Z) +
    mnz * (epi === "sgd" ? 2 : 1) + aux +
    (spec.bias ? N * Z * (spec.bias.mode === "sgd" ? 2 : 1) : 0) +
    (epi === "bias_softmax_ce" ? M : 0); // the fused loss reads one label per row
  const dims = variant === "nn"
    ? `${M}×${K}·${K}×${N}`
    : variant === "nt"
    ? `${M}×${K}·(${N}×${K})ᵀ`
    : `(${K}×${M})ᵀ·${K}×${N}`;
  const tags = [
    spec.bias && " +bias",
    epi === "sgd" && " +sgd",
    epi === "grad_l2" && " +l2",
    epi === "bias_softmax_ce" && " +softmax-ce",
  ];
  return {
    flops: 2 * M * N * K * Z + perC * mnz + biasFlops,
    // images as A: a byte a value, and an index a row
    bytes: F32 * floats - (images ? (F32 - 1) * M * K - F32 * (variant === "tn" ? K : M) : 0),
    shape: `${variant} ${dims}${tags.filter(Boolean).join("")}${timesZ(Z)}`,
  };
}
