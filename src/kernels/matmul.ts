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
import { checkGroups, F32, kernelOp, type Op, type OpCost, timesZ } from "./op.ts";
import { dropThreshold } from "../nn/shared.ts";

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
 * row r, its quads the texels, with no offset; `nn` and `tn` only. As A it is shared by every z;
 * as B, batch entry z starts at texel z·zStride/4 of each row (blocks side by side). On llvmpipe
 * texel loads are much cheaper than buffer loads (see `prefersTextures` in src/gpu/device.ts).
 */
export interface TextureOperand {
  /** The texture (width = quads per row, height = rows), bound for sampling. */
  texture: GPUTexture;
  /** B only: distance between consecutive batch entries z, in floats (multiple of 4). */
  zStride?: number;
}

/** Register tile: TM rows × 4·TN4 columns per invocation, WG invocations per workgroup. */
export interface Tile {
  /** TM: rows of C per invocation (a multiple of 4 for `tn`). */
  tm: number;
  /** TN4: column quads of C per invocation (4·tn4 columns). */
  tn4: number;
  /** WG: invocations per workgroup. */
  wg: number;
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
  a: Operand | TextureOperand;
  /** Right operand B: K×N, or N×K for `nt` (a texture for `nn` and `tn` only). */
  b: Operand | TextureOperand;
  /** Output C, M×N; read too by the `sgd` epilogue (C is then W, updated in place). */
  c: Operand;
  /**
   * A write-only rgba32float storage texture that receives every quad stored into C as well,
   * laid out like a B texture (row i, batch entry z from texel z·c.zStride/4; c.offset 0): a
   * copy of C that later products read as a texture (e.g. W₁, kept current by the `sgd` epilogue).
   */
  mirror?: GPUTexture;
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
  dropout?: { p: number; seed: number; layer: number };
  /**
   * `bias_softmax_ce`: the samples' labels (one u32 per row) and the gradient's scale (1/B): C
   * receives (softmax(A·B + bias) − onehot(y))·scale, the output layer's loss gradient.
   */
  softmax?: { labels: GPUBuffer; scale: number };
  /** Register tiling (default: {@link defaultTile} for the variant and shape). */
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
  const tile = spec.tile ?? defaultTile(variant, M, N, epi);
  if (variant === "tn" && tile.tm % 4 !== 0) throw new Error(`${label}: tn needs tm % 4 == 0`);
  // a texture A has no offset, leading dimension or batch stride: zeros in the params
  const aTexture = "texture" in spec.a ? spec.a.texture : null;
  const aBuf = "texture" in spec.a ? null : spec.a;
  if (aTexture && variant === "nt") throw new Error(`${label}: a texture A needs nn or tn`);
  if (aTexture && (spec.a as TextureOperand).zStride) {
    throw new Error(`${label}: a texture A is shared by every z (zStride 0)`);
  }
  const aLayout = aBuf ?? { ld: 0, offset: 0, zStride: 0 };
  const bTexture = "texture" in spec.b ? spec.b.texture : null;
  if (bTexture && variant === "nt") throw new Error(`${label}: a texture B needs nn or tn`);
  const bLayout = "texture" in spec.b ? { ld: 0, offset: 0, zStride: spec.b.zStride ?? 0 } : spec.b;
  if (spec.mirror && (spec.c.offset ?? 0) !== 0) {
    throw new Error(`${label}: a mirrored C needs offset 0`);
  }
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
  const drop = spec.dropout ?? { p: 0, seed: 0, layer: 0 };
  if (!(drop.p >= 0 && drop.p < 1)) throw new Error(`${label}: dropout p ${drop.p} outside [0, 1)`);
  const tilesM = Math.ceil(M / tile.tm);
  const tilesN = Math.ceil(N / (4 * tile.tn4));
  const dummy = dummyBuffer(device);
  return kernelOp(device, {
    shader: "matmul",
    entryPoint: `matmul_${variant}`,
    constants: {
      TM: tile.tm,
      TN4: tile.tn4,
      WG: tile.wg,
      A_TEXTURE: !!aTexture,
      B_TEXTURE: !!bTexture,
      C_MIRROR: !!spec.mirror,
      EPI: EPILOGUES[epi],
      BIAS: spec.bias ? (spec.bias.mode === "sgd" ? 2 : 1) : 0,
      SOFTMAX: softmax,
    },
    label,
    resources: {
      ...(aTexture ? { At: aTexture } : { A: aBuf!.buffer }),
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
      },
      aux: spec.aux?.buffer ?? dummy,
      lam: spec.lambda?.buffer ?? dummy,
      st: spec.steps ?? noSteps(device),
      bias: spec.bias?.buffer ?? scratchBuffer(device, 2),
      ...(spec.mirror ? { Cm: spec.mirror } : {}),
      ...(spec.softmax ? { labels: spec.softmax.labels } : {}),
    },
    workgroups: [
      checkGroups(label, Math.ceil((tilesM * tilesN) / tile.wg)),
      1,
      checkGroups(label, Z),
    ],
    stepped: !!spec.steps,
    cost: matmulCost(spec, !aLayout.zStride, !bLayout.zStride),
  });
}

/**
 * Nominal cost of a product, C (M×N) = A·B over K for each of Z batch entries:
 * - flops: 2·M·N·K·Z (a multiply and an add per term), plus the epilogue's work per element of C:
 *   `sgd` w − η·(acc + 2λ·w) 4 (2λ formed once per model), `grad_l2` acc + 2λ·w 2; the bias,
 *   ReLU, mask and dropout epilogues are selects and single adds, not counted (≤ 1/(2K) of the
 *   product). Bias sums (`tn` with `bias`): an add per element of B, K·N·Z, and `sgd` mode
 *   b − η·db 2 per bias.
 * - bytes: each operand once, 4 bytes a float: A M·K (once if shared by every z: zStride 0 or a
 *   texture, else Z times), B K·N (likewise), C M·N·Z written (and read too by `sgd`), aux a
 *   bias row N·Z or a matrix like C (`relu_mask` H, `grad_l2` W), bias sums N·Z written (read
 *   too by `sgd`), the labels M (`bias_softmax_ce`, whose loss adds 4 flops per score, as the
 *   softmax_ce kernel counts it). The per-model λ and the mirror texture copy of C are not counted.
 */
function matmulCost(spec: MatmulSpec, aShared: boolean, bShared: boolean): OpCost {
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
    bytes: F32 * floats,
    shape: `${variant} ${dims}${tags.filter(Boolean).join("")}${timesZ(Z)}`,
  };
}
