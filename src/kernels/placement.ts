/**
 * Where each matrix lives. The graph names matrices ({@link Matrix}: X, W₁, G₁, …) and lists the
 * dispatches that read and write them ({@link Node}); {@link placeOps} decides where every operand
 * lives and builds the ops. On CPU adapters (llvmpipe, lavapipe, SwiftShader) a texel load costs a
 * fraction of a storage-buffer load, so the products that stream long rows read their operands
 * from rgba32float texture copies: this module owns those copies, the mirrors that keep them
 * current and the prologue that seeds them. Nothing outside it knows they exist.
 *
 * The rule (the products and its measurements: see shaders/matmul.wgsl and the README):
 * - a product `nn` or `tn` whose A operand has rows of at least {@link LONG_ROWS} floats (layer 1
 *   of a CIFAR-10 net: K = 3072 in `Z = X·W`, M = 3072 in `dW = Xᵀ·G`) wants copies of both its
 *   operands (of A only when A is shared by every model, as the inputs are);
 * - a matrix gets its copy when every op that writes it during the step can write the copy too:
 *   a product writes it alongside its buffer (the `mirror` of its C), the gather kernel writes the
 *   copy instead of a buffer; any other writer (batch norm's in-place backward pass, Adam's update)
 *   keeps the matrix in its buffer only;
 * - a matrix whose writers all write the copy instead of a buffer and whose readers all read the
 *   copy (the inputs X) lives in the texture alone;
 * - a parameter (written by uploads and resumes, outside the step) with a copy is seeded by the
 *   {@link PlacedOps.prologue}, to be encoded before each submission;
 * - nothing is copied when the adapter does not prefer textures or the copy would exceed
 *   `maxTextureDimension2D`.
 *
 * It also fuses what the adapter runs better as one dispatch: the output layer's product and the
 * softmax cross-entropy that follows it (`bias_softmax_ce`, when one invocation can hold a row).
 *
 * Where a matrix lives, and whether the loss is fused, does not change a single bit of the results
 * (tested).
 *
 * @module
 */

import { storageBuffer, writeBuffer } from "../gpu/buffers.ts";
import type { KernelProfile } from "../gpu/device.ts";
import { copyToTextureOp } from "./copy.ts";
import {
  matmulOp,
  type MatmulSpec,
  type Operand,
  softmaxFusable,
  type TextureOperand,
} from "./matmul.ts";
import type { Op } from "./op.ts";

/**
 * A matrix of the graph: `rows` rows of stride `ld` floats, the blocks of the population's models
 * side by side in each row `zStride` floats apart (0: one matrix shared by every model).
 */
export interface Matrix {
  /** Name in errors and debug labels (`X`, `W1`, `G1`, …). */
  label: string;
  /** Rows (samples, or a weight matrix's n_in). */
  rows: number;
  /** Row stride in floats (a multiple of 4). */
  ld: number;
  /** Distance between consecutive models' blocks, in floats (0: shared by every model). */
  zStride: number;
  /** Written outside the step (a parameter): a copy is seeded before each submission. */
  parameter: boolean;
  /** The storage buffer; null until {@link placeOps} gives one to a matrix created without. */
  buffer: GPUBuffer | null;
  /** The texture copy, when {@link placeOps} made one (for tools and tests to inspect). */
  texture: GPUTexture | null;
}

/** Options of {@link matrix}. */
export interface MatrixOptions {
  /** Name in errors and debug labels. */
  label: string;
  /** Rows. */
  rows: number;
  /** Row stride in floats (a multiple of 4). */
  ld: number;
  /** Distance between the models' blocks in floats (default 0: shared). */
  zStride?: number;
  /** An existing buffer (a parameter's): the matrix is then a parameter, not owned. */
  buffer?: GPUBuffer;
  /**
   * Allocate the buffer now (default), or leave it to {@link placeOps}, which allocates one only
   * if the matrix does not live in a texture alone.
   */
  allocate?: "now" | "placed";
}

/**
 * A matrix of the graph.
 *
 * @example The weights of layer 1 as an operand, and a workspace matrix
 * ```ts
 * import { matrix } from "./placement.ts";
 * declare const device: GPUDevice, W1: GPUBuffer;
 * const W = matrix(device, { label: "W1", rows: 3072, ld: 52, zStride: 52, buffer: W1 });
 * const H = matrix(device, { label: "H1", rows: 100, ld: 52, zStride: 52 });
 * ```
 */
export function matrix(device: GPUDevice, o: MatrixOptions): Matrix {
  const own = !o.buffer && (o.allocate ?? "now") === "now";
  return {
    label: o.label,
    rows: o.rows,
    ld: o.ld,
    zStride: o.zStride ?? 0,
    parameter: !!o.buffer,
    buffer: o.buffer ?? (own ? storageBuffer(device, o.rows * o.ld, o.label) : null),
    texture: null,
  };
}

/** The buffer of a matrix, which must have one (every matrix but a texture-only one). */
export function bufferOf(m: Matrix): GPUBuffer {
  if (!m.buffer) throw new Error(`${m.label} lives in a texture only`);
  return m.buffer;
}

/**
 * Where a kernel that writes a matrix either way (`writesEither`, the gather) writes it: its
 * texture when it lives in one alone, else its buffer. Valid once {@link placeOps} has run.
 */
export function storageOf(m: Matrix): GPUBuffer | GPUTexture {
  return m.buffer ?? m.texture ?? bufferOf(m);
}

/** A product whose operands are matrices of the graph; the rest as in {@link MatmulSpec}. */
export interface ProductSpec extends Omit<MatmulSpec, "a" | "b" | "c" | "mirror"> {
  /** Left operand A: M×K, or K×M for `tn`. */
  a: Matrix;
  /** Right operand B: K×N, or N×K for `nt`. */
  b: Matrix;
  /** Output C, M×N (also read by the `sgd` epilogue). */
  c: Matrix;
}

/** One dispatch of a step, as the graph lists it. */
export type Node =
  /** A matrix product; {@link placeOps} picks its operands' placement. */
  | { kind: "product"; spec: ProductSpec }
  /**
   * Any other kernel: the matrices it reads and writes as buffers, and (`writesEither`) the ones
   * it writes either as a buffer or as a texture copy (`gather`); `build` runs after placement.
   */
  | {
    kind: "kernel";
    label: string;
    reads?: Matrix[];
    writes?: Matrix[];
    writesEither?: Matrix[];
    /**
     * This kernel is the softmax cross-entropy of the scores `scores` (in place, into their
     * gradient): {@link placeOps} fuses it into the product that writes them just before.
     */
    loss?: { scores: Matrix; labels: GPUBuffer; scale: number };
    build(): Op;
  };

/** A product node. */
export function product(spec: ProductSpec): Node {
  return { kind: "product", spec };
}

/** A node of any other kernel (see {@link Node}). */
export function kernel(
  label: string,
  access: {
    reads?: Matrix[];
    writes?: Matrix[];
    writesEither?: Matrix[];
    loss?: { scores: Matrix; labels: GPUBuffer; scale: number };
  },
  build: () => Op,
): Node {
  return { kind: "kernel", label, ...access, build };
}

/** Rows at least this long make a product read its operands through texture copies. */
export const LONG_ROWS = 1024;

/** Options of {@link placeOps}. */
export interface PlacementOptions {
  /** Whether the adapter loads texels faster than buffer elements (`Gpu.prefersTextures`). */
  textures?: boolean;
  /** The kernel selection of products that name none (`Gpu.kernelProfile`; default `cpu`). */
  profile?: KernelProfile;
  /** Builds each product's op (default {@link matmulOp}); tools pass their own to watch specs. */
  matmul?: (spec: MatmulSpec) => Op;
  /** Row length from which products read copies (default {@link LONG_ROWS}; tests lower it). */
  longRows?: number;
  /** Fuse a loss into the product of its scores when the product can (default true). */
  fuse?: boolean;
}

/** What {@link placeOps} built. */
export interface PlacedOps {
  /**
   * One op per node, in order, except that a loss fused into the product before it makes one op
   * of the two.
   */
  ops: Op[];
  /** Copies of parameters into their textures: encode before each submission. */
  prologue: Op[];
  /** Labels of the matrices given texture copies (for tests and tools). */
  copies: string[];
  /**
   * Free the textures and buffers placement allocated, and take them back from their matrices
   * (`texture`, and `buffer` where placement gave it, become null again).
   */
  destroy(): void;
}

/**
 * Fuse each softmax cross-entropy kernel into the product that writes its scores just before it,
 * when that product is the output layer's `Z = H·W + b` and can hold whole rows
 * ({@link softmaxFusable}): one dispatch instead of two, the same numbers to the bit.
 */
function fuseLosses(nodes: Node[]): Node[] {
  const out: Node[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i], next = nodes[i + 1];
    if (
      n.kind === "product" && next?.kind === "kernel" && next.loss &&
      next.loss.scores === n.spec.c && n.spec.epilogue === "bias" && !n.spec.tile &&
      softmaxFusable(n.spec.variant, n.spec.N)
    ) {
      out.push(product({
        ...n.spec,
        label: `${n.spec.label}+${next.label}`,
        epilogue: "bias_softmax_ce",
        softmax: { labels: next.loss.labels, scale: next.loss.scale },
      }));
      i++;
    } else out.push(n);
  }
  return out;
}

/** The operand of a product that reads its texture copy, if the product can. */
function readsCopy(spec: ProductSpec, which: "a" | "b"): boolean {
  if (spec.variant === "nt") return false;
  return which === "b" || spec.a.zStride === 0;
}

/** The length of the A operand's rows: K for `nn` and `nt`, M for `tn` (A stored K × M). */
function rowLength(spec: ProductSpec): number {
  return spec.variant === "tn" ? spec.M : spec.K;
}

/**
 * Decide where every matrix of the nodes lives (see the module doc for the rule), allocate the
 * texture copies and the buffers still missing, and build the ops.
 */
export function placeOps(
  device: GPUDevice,
  listed: Node[],
  opts: PlacementOptions = {},
): PlacedOps {
  const nodes = opts.fuse === false ? listed : fuseLosses(listed);
  const products = nodes.flatMap((n) => n.kind === "product" ? [n.spec] : []);
  const kernels = nodes.flatMap((n) => n.kind === "kernel" ? [n] : []);
  const maxSide = device.limits.maxTextureDimension2D;
  const wanted = new Set<Matrix>();
  if (opts.textures) {
    for (const p of products.filter((p) => rowLength(p) >= (opts.longRows ?? LONG_ROWS))) {
      if (readsCopy(p, "a")) wanted.add(p.a);
      if (readsCopy(p, "b")) wanted.add(p.b);
    }
  }
  const copied = new Set<Matrix>();
  for (const m of wanted) {
    const other = kernels.some((k) => k.writes?.includes(m));
    const fits = m.ld / 4 <= maxSide && m.rows <= maxSide;
    if (!other && fits) copied.add(m);
  }
  // a matrix its kernels write either way cannot be both: keep the copy only if nothing needs
  // the buffer (no product writes or reads it as a buffer, no kernel reads it)
  const needsBuffer = (m: Matrix) =>
    products.some((p) =>
      p.c === m || (p.a === m && !(copied.has(m) && readsCopy(p, "a"))) ||
      (p.b === m && !(copied.has(m) && readsCopy(p, "b")))
    ) || kernels.some((k) => k.reads?.includes(m) || k.writes?.includes(m));
  for (const m of copied) {
    if (kernels.some((k) => k.writesEither?.includes(m)) && needsBuffer(m)) copied.delete(m);
  }
  // what this placement gives matrices, taken back by destroy (or if building an op fails): a
  // matrix placed again later gets fresh storage, never a destroyed buffer or texture
  const owned: { destroy(): void }[] = [];
  const given: { m: Matrix; field: "buffer" | "texture" }[] = [];
  const destroy = () => {
    for (const o of owned) o.destroy();
    for (const { m, field } of given) m[field] = null;
    owned.length = 0;
    given.length = 0;
  };
  try {
    for (const m of copied) {
      const texture = device.createTexture({
        label: m.label,
        size: [m.ld / 4, m.rows],
        format: "rgba32float",
        usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.TEXTURE_BINDING |
          GPUTextureUsage.COPY_SRC | GPUTextureUsage.COPY_DST,
      });
      m.texture = texture;
      owned.push(texture);
      given.push({ m, field: "texture" });
    }
    const all = new Set<Matrix>([
      ...products.flatMap((p) => [p.a, p.b, p.c]),
      ...kernels.flatMap((k) => [...k.reads ?? [], ...k.writes ?? [], ...k.writesEither ?? []]),
    ]);
    for (const m of all) {
      if (!m.buffer && !(copied.has(m) && !needsBuffer(m))) {
        m.buffer = storageBuffer(device, m.rows * m.ld, m.label);
        owned.push(m.buffer);
        given.push({ m, field: "buffer" });
      }
    }
    const build = opts.matmul ?? ((spec: MatmulSpec) => matmulOp(device, spec));
    const operand = (p: ProductSpec, which: "a" | "b"): Operand | TextureOperand => {
      const m = p[which];
      return copied.has(m) && readsCopy(p, which)
        ? { texture: m.texture!, zStride: which === "b" ? m.zStride : undefined }
        : { buffer: bufferOf(m), ld: m.ld, zStride: m.zStride };
    };
    const ops = nodes.map((n) => {
      if (n.kind === "kernel") return n.build();
      const p = n.spec;
      return build({
        ...p,
        profile: p.profile ?? opts.profile,
        a: operand(p, "a"),
        b: operand(p, "b"),
        c: { buffer: bufferOf(p.c), ld: p.c.ld, zStride: p.c.zStride },
        mirror: copied.has(p.c) ? p.c.texture! : undefined,
      });
    });
    const prologue = [...copied].filter((m) => m.parameter).map((m) =>
      copyToTextureOp(device, {
        label: `mirror_${m.label}`,
        src: bufferOf(m),
        ld: m.ld,
        dst: m.texture!,
        width: m.ld / 4,
        height: m.rows,
      })
    );
    return { ops, prologue, copies: [...copied].map((m) => m.label), destroy };
  } catch (e) {
    destroy();
    throw e;
  }
}

/**
 * Write n rows of d values from the CPU into a matrix, wherever it lives (padding left zero).
 */
export function writeRows(
  device: GPUDevice,
  m: Matrix,
  values: ArrayLike<number>,
  n: number,
  d: number,
): void {
  const data = new Float32Array(n * m.ld);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) data[i * m.ld + k] = values[i * d + k];
  if (m.buffer) writeBuffer(device, m.buffer, 0, data);
  if (m.texture) {
    device.queue.writeTexture({ texture: m.texture }, data, { bytesPerRow: m.ld * 4 }, [
      m.ld / 4,
      n,
    ]);
  }
}
