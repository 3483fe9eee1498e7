/**
 * Where each matrix lives. The graph names matrices ({@link Matrix}: X, W₁, G₁, …) and lists the
 * dispatches that read and write them ({@link Node}); {@link placeOps} decides where every operand
 * lives and builds the ops. On CPU adapters (llvmpipe, lavapipe, SwiftShader) a texel load costs a
 * fraction of a storage-buffer load, so the products that stream long rows read their operands
 * from rgba32float texture copies: this module owns those textures, the buffer-to-texture copies
 * that keep them current and the prologue that seeds them. Nothing outside it knows they exist.
 *
 * The rule (the products and its measurements: see shaders/matmul.wgsl and the README):
 * - a product `nn` or `tn` whose A operand has rows of at least {@link LONG_ROWS} floats (layer 1
 *   of a CIFAR-10 net: K = 3072 in `Z = X·W`, M = 3072 in `dW = Xᵀ·G`) wants copies of both its
 *   operands (of A only when A is shared by every model, as the inputs are);
 * - a matrix gets its copy when every op that writes it during the step can write the copy too:
 *   a product (its op copies C's buffer into the texture after the dispatch,
 *   `copyBufferToTexture`, {@link Op.copy}), or a kernel that writes it either way (the gather,
 *   the tail: next rule); any other writer (batch norm's in-place backward pass, Adam's update)
 *   keeps the matrix in its buffer only;
 * - a kernel that writes a matrix either way writes its buffer, and its op copies the buffer into
 *   the texture after it, when the rows are a multiple of 256 bytes (the inputs X: 3072 floats)
 *   or something needs the buffer: on llvmpipe a texture store costs about twice a buffer store
 *   (the gather of a 100-row batch took 2.88 ms into the texture against 2.14 into the buffer with
 *   the copy); otherwise (narrower rows that only products read as a texture: a tail's output
 *   gradient) the matrix lives in the texture alone, which the kernel writes;
 * - `copyBufferToTexture` copies rows of a multiple of 256 bytes, so a texture filled from a
 *   buffer whose rows are shorter (W₁ of one model: 52 floats, 208 bytes) is wrapped
 *   ({@link Matrix.wrap}, {@link wrapOf}): it holds the buffer's quads in order, a power of two of
 *   them (16 for W₁) a texture row, which the products read through `TextureOperand.ld`. This
 *   replaced a mirror (the product's epilogue storing every quad of C into the texture too), which
 *   took 0.9 ms of layer 1's 5.3 ms weight gradient, against about 0.15 ms for the copy;
 * - a parameter (written by uploads and resumes, outside the step) with a copy is seeded by the
 *   {@link PlacedOps.prologue}, to be encoded before each submission;
 * - nothing is copied when the adapter does not prefer textures; a copy is wrapped to stay within
 *   `maxTextureDimension2D`, and none is made that no power-of-two width can hold.
 *
 * It also fuses what runs better as one dispatch:
 * - the output layer's product and the softmax cross-entropy that follows it
 *   (`bias_softmax_ce`, when one invocation can hold a row);
 * - in an SGD step, the top of the network into one tail dispatch (src/kernels/tail.ts): the
 *   output layer's forward with its loss, input gradient and update, and — on the gpu profile
 *   ({@link TAIL_LAYERS}) — the same three of the hidden layer under it when that layer's input
 *   is per model (not layer 1) and the two fit one workgroup ({@link tailFits}). A 2-layer step is
 *   then gather, forward₁, tail, backward_weights₁: 4 dispatches; a 3-layer one 4 on the gpu
 *   profile, 7 on the cpu profile;
 * - where X lives in its buffer only to be copied into its texture, the tail also gathers the
 *   next step's batch ({@link carryGather}): the step's own gather moves to the prologue (once a
 *   submission), and its last op copies X and the labels into place — 3 dispatches for a 2-layer
 *   step, 6 for a 3-layer one on the cpu profile.
 *
 * And where the step's inputs X would be read through textures by products only, and the batch
 * is not augmented, X is not made at all ({@link imagesInput}): layer 1's products read the
 * normalised rows straight from the dataset's images (an rgba8uint texture, `datasetImages` in
 * src/data/resident.ts) through the batch's image indices, which the gather (or the tail that
 * carries it) writes instead of 3072 floats a row. The same bits; on llvmpipe (2 cores) the
 * 3072-50-10 step at batch 100 took 2.62 ms against 3.28 with X gathered and copied into its
 * texture (alternating in one process): the gather's 1.1 ms of one core and the 0.3 ms copy of
 * 1.2 MB were most of the difference.
 *
 * Where a matrix lives, and what is fused, does not change a single bit of the results (tested).
 *
 * @module
 */

import { storageBuffer, writeBuffer } from "../gpu/buffers.ts";
import type { KernelProfile } from "../gpu/device.ts";
import { copyToTextureOp } from "./copy.ts";
import {
  type ImagesOperand,
  matmulOp,
  type MatmulSpec,
  type Operand,
  softmaxFusable,
  type TextureOperand,
} from "./matmul.ts";
import type { Copy, Op } from "./op.ts";
import { gatherOp, type GatherSpec } from "./gather.ts";
import { datasetImages } from "../data/resident.ts";
import { IMAGE_BYTES } from "../data/format.ts";
import { tailFits, type TailGather, tailLayout, tailOp } from "./tail.ts";

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
  /**
   * Texels a row of its texture: ld/4, texture row r holding row r of the matrix, or (a wrapped
   * copy, see {@link wrapOf}) a power of two, the texture holding the quads of the buffer in
   * order: quad t at texel (t mod wrap, ⌊t / wrap⌋), so that a copy of the buffer fills texture
   * rows of a multiple of 256 bytes, as `copyBufferToTexture` needs.
   */
  wrap: number;
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
    wrap: o.ld / 4,
  };
}

/** The buffer of a matrix, which must have one (every matrix but a texture-only one). */
export function bufferOf(m: Matrix): GPUBuffer {
  if (!m.buffer) throw new Error(`${m.label} lives in a texture only`);
  return m.buffer;
}

/** Matrices whose kernels write the buffer, copied into the texture after them (see placeOps). */
const staged = new WeakSet<Matrix>();

/**
 * Where a kernel that writes a matrix either way (`writesEither`: the gather, the tail) writes
 * it: its buffer when it has one and no texture copy, or when placement copies the buffer into
 * the texture after the kernel (rows of a multiple of 256 bytes, as the inputs X's, or a buffer
 * that something else reads, or rows too long for a texture row: the copy then wrapped);
 * otherwise its texture, a row of the matrix a texture row (such a matrix then lives in the
 * texture alone). Valid once {@link placeOps} has run.
 */
export function storageOf(m: Matrix): GPUBuffer | GPUTexture {
  return staged.has(m) ? bufferOf(m) : m.texture ?? bufferOf(m);
}

/** A product whose operands are matrices of the graph; the rest as in {@link MatmulSpec}. */
export interface ProductSpec extends Omit<MatmulSpec, "a" | "b" | "c"> {
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
    /**
     * This kernel is the step's training gather, of this spec (X: its `writesEither` matrix):
     * {@link placeOps} may move it into the step's tail, gathering the next step's batch.
     */
    gather?: Omit<GatherSpec, "x">;
    /** This kernel is a tail that may carry the gather: its op built with one, or null if it cannot. */
    withGather?: (g: TailGather) => Op | null;
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
    gather?: Omit<GatherSpec, "x">;
    withGather?: (g: TailGather) => Op | null;
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
  /**
   * Fuse what runs better as one dispatch (default true): a loss into the product of its
   * scores, and the top layers of an SGD step into one tail dispatch.
   */
  fuse?: boolean;
  /** With `fuse`, also fuse the top layers into a tail dispatch (default true; tests turn it off). */
  tail?: boolean;
  /**
   * With a tail, also move the training gather into it, gathering the next step's batch
   * (default true; tests and the bench turn it off to compare) — see {@link placeOps}.
   */
  gather?: boolean;
  /**
   * With `textures`, let layer 1's products read the batch straight from the dataset's images
   * where nothing else reads X (default true; tests and the bench turn it off to compare): the
   * gather then writes the rows' image indices only — see {@link placeOps}.
   */
  images?: boolean;
  /**
   * How many layers a tail may take: 1 (the output layer) or 2 (and the hidden layer under it).
   * Default by profile: 2 on the gpu profile, 1 on the cpu profile — see {@link TAIL_LAYERS}.
   */
  tailLayers?: 1 | 2;
}

/**
 * Layers a tail takes by default, per kernel profile. A tail is one workgroup per model, so on a
 * CPU adapter it runs on one core what the products it replaces spread over every core: measured
 * on llvmpipe (2 cores, 3072-…-10 at batch 100, P = 1 / 4 / 16), the output layer alone was neutral
 * (0.96 / 1.01 / 0.97× the products' step time) but the two-layer tail of 3072-50-50-10 slower
 * (0.84 / 0.94 / 0.91×). On a GPU, where these small products are launch-bound, both pay.
 */
export const TAIL_LAYERS: Record<KernelProfile, 1 | 2> = { cpu: 1, gpu: 2 };

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

/**
 * Invocations of a tail's workgroup under the gpu profile: a model's tail is one workgroup, so on
 * a GPU it takes a whole workgroup's worth of threads (on llvmpipe 64: one core runs it as 8 SIMD
 * batches).
 */
const TAIL_GPU_WG = 256;

/** The output layer of an SGD step, or a hidden layer under it: its three products. */
interface TailLayerNodes {
  forward: ProductSpec;
  input: ProductSpec;
  weights: ProductSpec;
}

/**
 * Whether `f`, `i`, `w` are one layer's forward product, input gradient and in-place SGD update
 * of a population batched over its models (Z = P, a per-model input): `i` reads the gradient
 * of f's output with f's weights, `w` updates those weights (and f's bias) from f's input.
 */
function layerTriple(
  f: Node | undefined,
  i: Node | undefined,
  w: Node | undefined,
  gradient: Matrix,
) {
  if (f?.kind !== "product" || i?.kind !== "product" || w?.kind !== "product") return null;
  const [F, I, W] = [f.spec, i.spec, w.spec];
  const plain = (p: ProductSpec) => !p.tile && p.a.zStride > 0 && (p.Z ?? 1) === (F.Z ?? 1);
  return F.variant === "nn" && I.variant === "nt" && W.variant === "tn" &&
      plain(F) && plain(I) && plain(W) && I.a === gradient && I.b === F.b &&
      I.epilogue === "relu_mask" && W.a === F.a && W.b === gradient && W.c === F.b &&
      W.epilogue === "sgd" && !W.lambda?.columns && W.bias?.mode === "sgd" &&
      W.bias.buffer === F.aux?.buffer && !!W.steps
    ? { forward: F, input: I, weights: W } as TailLayerNodes
    : null;
}

/**
 * Fuse the top of an SGD step into one tail dispatch (src/kernels/tail.ts) when its shapes fit a
 * workgroup: the output layer's products (its forward with the fused loss, input gradient and
 * update), and the hidden layer's under it when that fits too — 3 or 6 dispatches as one, the
 * same numbers to the bit. Layer 1, whose input is shared by the models, stays as it is.
 */
function fuseTail(
  device: GPUDevice,
  nodes: Node[],
  { wg, layers }: { wg?: number; layers: 1 | 2 },
): Node[] {
  const f = nodes.findIndex((n) => n.kind === "product" && n.spec.epilogue === "bias_softmax_ce");
  if (f < 0) return nodes;
  const outSpec = (nodes[f] as { spec: ProductSpec }).spec;
  const out = layerTriple(nodes[f], nodes[f + 1], nodes[f + 2], outSpec.c);
  if (!out || !outSpec.softmax) return nodes;
  const R = outSpec.M;
  const hiddenFwd = nodes[f - 1];
  let hidden: TailLayerNodes | null = null;
  if (layers === 2 && hiddenFwd?.kind === "product" && hiddenFwd.spec.c === outSpec.a) {
    const h = layerTriple(hiddenFwd, nodes[f + 3], nodes[f + 4], out.input.c);
    const epi = hiddenFwd.spec.epilogue;
    if (
      h && (epi === "bias_relu" || epi === "bias_relu_dropout") && h.forward.M === R &&
      out.input.aux?.buffer === h.forward.c.buffer &&
      (out.input.dropout?.p ?? 0) === (h.forward.dropout?.p ?? 0) &&
      (!h.forward.steps || h.forward.steps === out.weights.steps)
    ) hidden = h;
  }
  const top = (h: TailLayerNodes | null) => h ? h.input : out.input;
  const fits = (h: TailLayerNodes | null) =>
    tailLayout(device, {
      R,
      nIn: (h ?? out).forward.K,
      out: outSpec.N,
      hidden: h ? h.forward.N : undefined,
      gBuffer: true,
      wg,
    });
  if (hidden && !fits(hidden)) hidden = null;
  const layout = fits(hidden);
  if (!layout) return nodes;
  const lowest = hidden ?? out;
  const gIn = top(hidden).c, hIn = lowest.forward.a;
  if (top(hidden).aux?.buffer !== hIn.buffer) return nodes;
  const first = hidden ? f - 1 : f, last = hidden ? f + 4 : f + 2;
  // what stays inside the tail (scores, and a hidden layer's output and gradient) must have no
  // reader outside it
  const inner = [outSpec.c, ...(hidden ? [hidden.forward.c, out.input.c] : [])];
  const rest = [...nodes.slice(0, first), ...nodes.slice(last + 1)];
  const touches = (n: Node) =>
    n.kind === "product"
      ? [n.spec.a, n.spec.b, n.spec.c].some((m) => inner.includes(m)) ||
        inner.some((m) => m.buffer && n.spec.aux?.buffer === m.buffer)
      : [...n.reads ?? [], ...n.writes ?? [], ...n.writesEither ?? []].some((m) =>
        inner.includes(m)
      );
  if (rest.some(touches)) return nodes;
  const layer = (t: TailLayerNodes) => ({
    nOut: t.forward.N,
    ld: t.forward.c.ld,
    pout: t.forward.c.zStride,
    W: bufferOf(t.forward.b),
    b: t.forward.aux!.buffer,
  });
  const labels = nodes.slice(first, last + 1).map((n) => (n as { spec: ProductSpec }).spec.label);
  const label = `tail(${labels.join(",")})`;
  // whether it can carry the gather too, once placement has put G_in in its buffer or texture
  const carries = () =>
    tailFits(device, {
      R,
      nIn: lowest.forward.K,
      out: outSpec.N,
      hidden: hidden ? hidden.forward.N : undefined,
      gBuffer: !(storageOf(gIn) instanceof GPUTexture),
      wg,
      haStorage: layout.haStorage,
      gather: true,
    });
  const build = (gather?: TailGather) =>
    tailOp(device, {
      R,
      P: outSpec.Z ?? 1,
      input: { buffer: bufferOf(hIn), nIn: lowest.forward.K, ld: hIn.ld, zStride: hIn.zStride },
      output: storageOf(gIn),
      inputDropout: top(hidden).dropout,
      hidden: hidden
        ? {
          ...layer(hidden),
          dropout: hidden.forward.dropout,
          activations: layout.haStorage ? bufferOf(hidden.forward.c) : undefined,
        }
        : undefined,
      out: layer(out),
      labels: outSpec.softmax!.labels,
      lambda: out.weights.lambda!.buffer,
      lambdaStride: out.weights.lambda!.zStride,
      steps: out.weights.steps!,
      wg,
      gather,
      label: gather ? `${label}+gather_next` : label,
    });
  const fused = kernel(label, {
    reads: [hIn],
    writes: [outSpec.b, ...(hidden ? [hidden.forward.b] : [])],
    writesEither: [gIn],
    withGather: (g) => carries() ? build(g) : null,
  }, () => build());
  return [...nodes.slice(0, first), fused, ...nodes.slice(last + 1)];
}

/** Whether a matrix's rows can be copied from its buffer into its texture: 256-byte multiples. */
function aligned(m: { ld: number }): boolean {
  return (m.ld * 4) % 256 === 0;
}

/** Whether a matrix's texture can hold a row of it in each of its rows. */
function fitsRows(m: { ld: number; rows: number }, maxSide: number): boolean {
  return m.ld / 4 <= maxSide && m.rows <= maxSide;
}

/** The quads (texels) of a matrix's buffer: rows × ld/4. */
function quadsOf(m: { ld: number; rows: number }): number {
  return (m.rows * m.ld) / 4;
}

/**
 * The width of a matrix's texture copied from its buffer (see {@link Matrix.wrap}): its rows'
 * ld/4 where they are a multiple of 256 bytes and fit, else the fewest texels, a power of two of
 * at least 16 (256 bytes), that hold the whole matrix within `maxSide` texture rows; 0 if none.
 */
export function wrapOf(m: { ld: number; rows: number }, maxSide: number): number {
  if (aligned(m) && fitsRows(m, maxSide)) return m.ld / 4;
  const quads = quadsOf(m);
  for (let w = 16; w <= maxSide; w *= 2) if (Math.ceil(quads / w) <= maxSide) return w;
  return 0;
}

/** The copy of matrix m's buffer into its (wrapped) texture. */
function textureCopyOf(m: Matrix): Copy {
  const quads = quadsOf(m);
  return {
    src: bufferOf(m),
    dst: m.texture!,
    width: m.wrap,
    height: Math.floor(quads / m.wrap),
    rest: quads % m.wrap,
  };
}

/** The op, followed by more copies. */
function withCopies(op: Op, copies: Copy[]): Op {
  return { ...op, copies: [...op.copies ?? [], ...copies] };
}

/** The op, followed by a copy of matrix m's buffer into its (wrapped) texture. */
function withCopy(op: Op, m: Matrix): Op {
  return withCopies(
    { ...op, cost: { ...op.cost, shape: `${op.cost.shape} +copy to texture` } },
    [textureCopyOf(m)],
  );
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

/** A training gather carried by the step's tail (see {@link placeOps}). */
interface CarriedGather {
  /** Index of the tail among the nodes, and its op that carries the gather. */
  tail: number;
  op: Op;
  /** The labels of the next step's batch (placement's). */
  yNext: GPUBuffer;
  /** The next step's image indices, where X is read from the images (placement's). */
  indexNext: GPUBuffer | null;
  /**
   * After the step's own gather (the prologue's): y into yNext (and the indices into indexNext),
   * as the step's end expects.
   */
  keep: Copy[];
  /** After the step's last op: X's buffer into its texture (or indexNext into the indices), yNext into y. */
  moves: Copy[];
}

/**
 * Move the step's training gather (the first node) into its tail, which then gathers the next
 * step's batch, when X lives in its buffer only for the gather, copied into the texture every
 * reader reads (`private(X)`): nothing reads that buffer during the step, so the next batch can
 * fill it while the products still read this one's texture. The labels go to a second buffer for
 * the same reason (the tail reads this batch's). Null where it does not apply or fit.
 */
function carryGather(
  device: GPUDevice,
  nodes: Node[],
  privateBuffer: (m: Matrix) => boolean,
  index: GPUBuffer | null,
): CarriedGather | null {
  const g = nodes[0];
  const tail = nodes.findIndex((n) => n.kind === "kernel" && !!n.withGather);
  if (g?.kind !== "kernel" || g.gather?.mode !== "train" || tail < 1) return null;
  const X = g.writesEither?.length === 1 ? g.writesEither[0] : null;
  if (!X || (!index && (!X.texture || !privateBuffer(X)))) return null;
  if (nodes.some((n, i) => i > 0 && n.kind === "kernel" && n.writesEither?.includes(X))) {
    return null;
  }
  const y = g.gather.y;
  const yNext = device.createBuffer({ label: "y_next", size: y.size, usage: y.usage });
  const indexNext = index
    ? device.createBuffer({ label: "X_index_next", size: index.size, usage: index.usage })
    : null;
  const t = nodes[tail] as Extract<Node, { kind: "kernel" }>;
  const x = indexNext ? { index: indexNext } : bufferOf(X);
  const op = t.withGather!({ spec: { ...g.gather, mode: "train", x, y: yNext } });
  if (!op) {
    yNext.destroy();
    indexNext?.destroy();
    return null;
  }
  const yCopy = (src: GPUBuffer, dst: GPUBuffer): Copy => ({ src, dst, size: src.size });
  return {
    tail,
    op,
    yNext,
    indexNext,
    keep: [yCopy(y, yNext), ...index && indexNext ? [yCopy(index, indexNext)] : []],
    moves: [
      index && indexNext ? yCopy(indexNext, index) : textureCopyOf(X),
      yCopy(yNext, y),
    ],
  };
}

/** Where the step's X is read from the dataset's images (see {@link imagesInput}). */
interface ImagesInput {
  X: Matrix;
  images: GPUTexture;
  norm: GPUTexture;
  /** The step's gather, writing the batch's image indices instead of X. */
  gather: Omit<GatherSpec, "x">;
}

/**
 * Whether the step's inputs X can stay in the dataset: the first node is a training gather
 * without augmentation, X (what it writes) is the A operand of products only, shared by every
 * model and long enough to be read through textures, and the device holds the images as one
 * texture. The products then read the batch through its image indices ({@link ImagesOperand}):
 * the gather writes R indices instead of R·3072 floats, and X has neither buffer nor texture.
 */
function imagesInput(
  device: GPUDevice,
  nodes: Node[],
  products: ProductSpec[],
  longRows: number,
): ImagesInput | null {
  const g = nodes[0];
  if (g?.kind !== "kernel" || g.gather?.mode !== "train") return null;
  const aug = g.gather.augment;
  if (aug && (aug.flip || aug.translate > 0)) return null;
  const X = g.writesEither?.length === 1 ? g.writesEither[0] : null;
  if (!X || X.parameter || X.ld !== IMAGE_BYTES) return null;
  const others = nodes.slice(1).some((n) =>
    n.kind === "kernel"
      ? [...n.reads ?? [], ...n.writes ?? [], ...n.writesEither ?? []].includes(X)
      : n.spec.b === X || n.spec.c === X ||
        (n.spec.a === X &&
          !((n.spec.variant === "nn" || n.spec.variant === "tn") && readsCopy(n.spec, "a") &&
            rowLength(n.spec) === IMAGE_BYTES && rowLength(n.spec) >= longRows))
  );
  if (others || !products.some((p) => p.a === X)) return null;
  const images = datasetImages(device, g.gather.dataset);
  if (!images) return null;
  return { X, images, norm: g.gather.dataset.norm, gather: g.gather };
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
  const fused = opts.fuse === false ? listed : fuseLosses(listed);
  const nodes = opts.fuse === false || opts.tail === false ? fused : fuseTail(device, fused, {
    wg: opts.profile === "gpu" ? TAIL_GPU_WG : undefined,
    layers: opts.tailLayers ?? TAIL_LAYERS[opts.profile ?? "cpu"],
  });
  const products = nodes.flatMap((n) => n.kind === "product" ? [n.spec] : []);
  const kernels = nodes.flatMap((n) => n.kind === "kernel" ? [n] : []);
  const maxSide = device.limits.maxTextureDimension2D;
  const longRows = opts.longRows ?? LONG_ROWS;
  const fromImages = opts.textures && opts.images !== false
    ? imagesInput(device, nodes, products, longRows)
    : null;
  const wanted = new Set<Matrix>();
  if (opts.textures) {
    for (const p of products.filter((p) => rowLength(p) >= longRows)) {
      if (readsCopy(p, "a") && p.a !== fromImages?.X) wanted.add(p.a);
      if (readsCopy(p, "b")) wanted.add(p.b);
    }
  }
  const copied = new Set<Matrix>();
  for (const m of wanted) {
    const other = kernels.some((k) => k.writes?.includes(m));
    if (!other && wrapOf(m, maxSide) > 0) copied.add(m);
  }
  // a matrix its kernels write either way cannot be both: keep the copy only if nothing needs
  // the buffer (no product writes or reads it as a buffer, no kernel reads it)
  const needsBuffer = (m: Matrix) =>
    products.some((p) =>
      p.c === m || (p.a === m && !(copied.has(m) && readsCopy(p, "a"))) ||
      (p.b === m && !(copied.has(m) && readsCopy(p, "b")))
    ) || kernels.some((k) => k.reads?.includes(m) || k.writes?.includes(m));
  // a matrix its kernels write either way: through its buffer and a copy after them where the
  // rows are a multiple of 256 bytes, something needs the buffer or a row would not fit a texture
  // row (the copy wrapped), else into the texture alone, a row of the matrix a texture row
  const stage = new Set<Matrix>();
  for (const m of copied) {
    if (!kernels.some((k) => k.writesEither?.includes(m))) continue;
    if (aligned(m) || needsBuffer(m) || !fitsRows(m, maxSide)) stage.add(m);
  }
  // a texture that kernels write themselves holds a row of the matrix a row; one filled from
  // the buffer (by the copies after its writers, or the prologue) is wrapped where it must be
  const wrapped = (m: Matrix) => !kernels.some((k) => k.writesEither?.includes(m)) || stage.has(m);
  // what this placement gives matrices, taken back by destroy (or if building an op fails): a
  // matrix placed again later gets fresh storage, never a destroyed buffer or texture
  const owned: { destroy(): void }[] = [];
  const given: { m: Matrix; field: "buffer" | "texture" }[] = [];
  const destroy = () => {
    for (const o of owned) o.destroy();
    for (const { m, field } of given) {
      m[field] = null;
      if (field === "texture") m.wrap = m.ld / 4;
    }
    for (const m of stage) staged.delete(m);
    owned.length = 0;
    given.length = 0;
  };
  try {
    for (const m of copied) {
      const wrap = wrapped(m) ? wrapOf(m, maxSide) : m.ld / 4;
      const texture = device.createTexture({
        label: m.label,
        size: [wrap, Math.ceil(quadsOf(m) / wrap)],
        format: "rgba32float",
        usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.TEXTURE_BINDING |
          GPUTextureUsage.COPY_SRC | GPUTextureUsage.COPY_DST,
      });
      owned.push(texture);
      m.texture = texture;
      m.wrap = wrap;
      given.push({ m, field: "texture" });
    }
    const all = new Set<Matrix>([
      ...products.flatMap((p) => [p.a, p.b, p.c]),
      ...kernels.flatMap((k) => [...k.reads ?? [], ...k.writes ?? [], ...k.writesEither ?? []]),
    ]);
    for (const m of stage) staged.add(m);
    if (fromImages) all.delete(fromImages.X);
    for (const m of all) {
      if (!m.buffer && !(copied.has(m) && !needsBuffer(m) && !stage.has(m))) {
        m.buffer = storageBuffer(device, m.rows * m.ld, m.label);
        owned.push(m.buffer);
        given.push({ m, field: "buffer" });
      }
    }
    const build = opts.matmul ?? ((spec: MatmulSpec) => matmulOp(device, spec));
    // the batch's image indices, where X stays in the dataset
    const index = fromImages
      ? device.createBuffer({
        label: "X_index",
        size: Math.max(16, 4 * fromImages.X.rows),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      })
      : null;
    if (index) owned.push(index);
    const operand = (
      p: ProductSpec,
      which: "a" | "b",
    ): Operand | TextureOperand | ImagesOperand => {
      const m = p[which];
      if (index && which === "a" && m === fromImages!.X) {
        return { images: fromImages!.images, index, norm: fromImages!.norm };
      }
      return copied.has(m) && readsCopy(p, which)
        ? { texture: m.texture!, zStride: which === "b" ? m.zStride : undefined, ld: m.ld }
        : { buffer: bufferOf(m), ld: m.ld, zStride: m.zStride };
    };
    const carried = opts.fuse === false || opts.tail === false || opts.gather === false
      ? null
      : carryGather(device, nodes, (m) => stage.has(m) && !needsBuffer(m), index);
    if (carried) owned.push(carried.yNext, ...carried.indexNext ? [carried.indexNext] : []);
    const ops = nodes.map((n, i): Op => {
      if (n.kind === "kernel") {
        const op = i === carried?.tail
          ? carried.op
          : i === 0 && index
          ? gatherOp(device, { ...fromImages!.gather, x: { index }, label: n.label })
          : n.build();
        const copies = (n.writesEither ?? []).filter((m) => stage.has(m));
        if (copies.length > 1) throw new Error(`${n.label}: more than one matrix to copy`);
        return copies.length ? withCopy(op, copies[0]) : op;
      }
      const p = n.spec;
      // C's copy: C's buffer copied into the (wrapped) texture after the dispatch
      const op = build({
        ...p,
        profile: p.profile ?? opts.profile,
        a: operand(p, "a"),
        b: operand(p, "b") as Operand | TextureOperand,
        c: { buffer: bufferOf(p.c), ld: p.c.ld, zStride: p.c.zStride },
      });
      return copied.has(p.c) ? withCopy(op, p.c) : op;
    });
    // with the gather carried by the tail, the step's own gather runs once per submission, and
    // the step's last op moves the next step's batch into place
    const gathers: Op[] = [];
    if (carried) {
      const [first] = ops.splice(0, 1);
      gathers.push(withCopies(first, carried.keep));
      const last = ops[ops.length - 1];
      ops[ops.length - 1] = { ...last, moves: [...last.moves ?? [], ...carried.moves] };
    }
    const prologue = [...copied].filter((m) => m.parameter).map((m) =>
      copyToTextureOp(device, {
        label: `seed_${m.label}`,
        src: bufferOf(m),
        ld: 4 * m.wrap,
        dst: m.texture!,
        width: m.wrap,
        height: m.texture!.height,
        quads: quadsOf(m),
      })
    );
    return {
      ops,
      prologue: [...prologue, ...gathers],
      copies: [...copied].map((m) => m.label),
      destroy,
    };
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
    // whole texture rows of `wrap` quads each, then the quads left in part of one more
    const width = m.wrap, quads = (n * m.ld) / 4, whole = Math.floor(quads / width);
    const q = device.queue;
    if (whole) {
      q.writeTexture({ texture: m.texture }, data, { bytesPerRow: width * 16 }, [width, whole]);
    }
    const rest = quads % width;
    if (rest) {
      q.writeTexture({ texture: m.texture, origin: [0, whole] }, data, {
        offset: whole * width * 16,
      }, [rest, 1]);
    }
  }
}
