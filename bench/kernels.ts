/**
 * Kernel throughput: each dispatch of the trainer's training step, timed on its own layer shapes
 * (many dispatches of one op in one pass), as GFLOP/s against the adapter's FMA ceiling measured
 * in the same run (bench/probes.ts, the bench's peak) and against a large square matmul with this
 * project's kernel, with the workgroups and invocations each dispatch launches, and the share of a
 * step each kernel takes (timestamp queries around one pass per dispatch where the adapter has
 * them). FLOPs, bytes and the shape of each dispatch are the nominal cost its kernel builder
 * declares (`Op.cost`, src/kernels/); the workgroup size is the shader's (`Op.workgroupSize`).
 *
 * @module
 */

import { encodeSteps, storageBuffer, writeBuffer } from "../src/gpu/buffers.ts";
import {
  matmulOp,
  type Operand,
  selectTile,
  type TextureOperand,
  type Tile,
} from "../src/kernels/matmul.ts";
import { LONG_ROWS } from "../src/kernels/placement.ts";
import { type Op, OpEncoder } from "../src/kernels/op.ts";
import { STEP_CHUNK, stepRecords } from "../src/train/trainer.ts";
import { BENCH_LAMBDA, type BenchContext, BenchNet, benchSpec } from "./setup.ts";
import { median, summarise, type Summary } from "./stats.ts";
import { tileName } from "./tiles.ts";
import type { GpuTimer } from "./timing.ts";

/** Throughput of one kernel of the step. */
export interface KernelResult {
  label: string;
  shape: string;
  /** Milliseconds per dispatch. */
  ms: Summary;
  gflops: number | null;
  gbps: number | null;
  /** GFLOP/s over the FMA ceiling measured in this run (the bench's peak). */
  ofCeiling: number | null;
  /** GFLOP/s over the square matmul of this project's kernel. */
  ofSquare: number | null;
  /** Dispatches per measurement. */
  repeats: number;
  /** Workgroup grid and invocations per workgroup of the dispatch. */
  workgroups: [number, number, number];
  workgroupSize: [number, number, number];
  /** Invocations launched: workgroups × workgroup size. */
  invocations: number;
}

/** The grid of one dispatch of a training step. */
export interface DispatchInfo {
  label: string;
  workgroups: [number, number, number];
  workgroupSize: [number, number, number];
  invocations: number;
}

/** Dispatches of one training step of a net (`trainingStep(...).ops`). */
export interface StepDispatches {
  net: string;
  batch: number;
  /** Dispatches per training step. */
  perStep: number;
  /** Dispatches once per submission of steps (`prologue`, e.g. seeding a texture copy). */
  perSubmission: number;
  ops: DispatchInfo[];
}

/** Grid facts of an op. */
export function dispatchInfo(op: Op): DispatchInfo {
  const [x, y, z] = op.workgroups;
  const [a, b, c] = op.workgroupSize;
  return {
    label: op.label,
    workgroups: [...op.workgroups],
    workgroupSize: [...op.workgroupSize],
    invocations: x * y * z * a * b * c,
  };
}

/** The dispatches of a bench net's training step. */
export function stepDispatches(net: BenchNet): StepDispatches {
  return {
    net: net.spec.sizes.join("-"),
    batch: net.spec.batchSize,
    perStep: net.step.ops.length,
    perSubmission: net.step.prologue.length,
    ops: net.step.ops.map(dispatchInfo),
  };
}

/**
 * A net's training step built two ways, `A` and `B`, timed in alternating runs: what one fusion
 * pays on this adapter. {@link TailComparison} and {@link CarryComparison} are its two uses.
 */
export interface StepComparison<A extends string, B extends string> {
  /** `3072-50-10`. */
  net: string;
  batch: number;
  /** Dispatches per step, each way. */
  dispatches: Record<A | B, number>;
  /** Median ms per step, each way (runs of `steps` steps, alternating). */
  ms: Record<A | B, number>;
  /** ms of B / ms of A: above 1 when A, the fused way, pays. */
  ratio: number;
}

/** The step with its top layers fused into the tail (`tail`) and with their `products`. */
export type TailComparison = StepComparison<"tail", "products">;

/** The step whose tail carries the next step's gather (`carried`), and with its `own` gather. */
export type CarryComparison = StepComparison<"carried", "own">;

/**
 * The step whose layer-1 products read the batch from the dataset's images (`images`), and with
 * X gathered and copied into its texture (`gathered`).
 */
export type ImagesComparison = StepComparison<"images", "gathered">;

/** How a {@link BenchNet} is built: the switches {@link compareSteps} sets apart. */
export type BenchNetOptions = ConstructorParameters<typeof BenchNet>[2];

/**
 * Time a net's training step built as `a` and as `b` (one model, λ = {@link BENCH_LAMBDA}),
 * alternating runs of `steps` steps after one warm-up run each, `reps` pairs.
 *
 * @example Does the tail pay?
 * ```ts ignore
 * const c = await compareSteps(ctx, [3072, 50, 10], 100, { steps: 200, reps: 7 },
 *   ["tail", { tail: true }], ["products", { tail: false }]);
 * console.log(`${c.ratio.toFixed(2)}×`);
 * ```
 */
export async function compareSteps<A extends string, B extends string>(
  ctx: BenchContext,
  sizes: number[],
  batch: number,
  runs: { steps: number; reps: number },
  a: [A, BenchNetOptions],
  b: [B, BenchNetOptions],
): Promise<StepComparison<A, B>> {
  const spec = benchSpec(ctx, sizes, batch, [BENCH_LAMBDA]);
  const nets = [new BenchNet(ctx, spec, a[1]), new BenchNet(ctx, spec, b[1])];
  const times: number[][] = [[], []];
  try {
    for (const n of nets) await n.runSteps(runs.steps);
    for (let r = 0; r < runs.reps; r++) {
      for (const [i, n] of nets.entries()) {
        times[i].push((await n.runSteps(runs.steps)) / runs.steps);
      }
    }
  } finally {
    for (const n of nets) n.destroy();
  }
  const [msA, msB] = times.map(median);
  return {
    net: sizes.join("-"),
    batch,
    dispatches: { [a[0]]: nets[0].step.ops.length, [b[0]]: nets[1].step.ops.length } as Record<
      A | B,
      number
    >,
    ms: { [a[0]]: msA, [b[0]]: msB } as Record<A | B, number>,
    ratio: msB / msA,
  };
}

/** Options of the kernel measurements. */
export interface KernelOptions {
  /** Milliseconds of work per measurement. */
  targetMs: number;
  reps: number;
}

/** Fill the net's step table (η etc.) so stepped ops read valid records. */
function primeSteps(net: BenchNet): void {
  writeBuffer(
    net.ctx.gpu.device,
    net.step.steps,
    0,
    encodeSteps(stepRecords(net.spec, net.stepsPerEpoch, 0, STEP_CHUNK)),
  );
}

/**
 * Time every dispatch of the net's training step in isolation; `refs` are the GFLOP/s of the FMA
 * ceiling and of the square product (null when not measured).
 */
export async function measureKernels(
  net: BenchNet,
  timer: GpuTimer,
  opts: KernelOptions,
  refs: { ceiling: number | null; square: number | null },
): Promise<KernelResult[]> {
  primeSteps(net);
  // one full step first, so every buffer holds what a step leaves there
  await net.runSteps(1);
  primeSteps(net);
  const out: KernelResult[] = [];
  for (const stepOp of net.step.ops) {
    // the kernel and its own copies; the step's moves of the next batch (Op.moves) are the step's
    const op = { ...stepOp, moves: undefined };
    const n = await timer.calibrate([op], opts.targetMs);
    const samples: number[] = [];
    for (let r = 0; r < opts.reps; r++) samples.push(await timer.perRepeat([op], n));
    const ms = summarise(samples);
    // the op's nominal cost, declared by its kernel builder (src/kernels/)
    const { cost } = op;
    const gflops = cost.flops > 0 ? cost.flops / (ms.median * 1e6) : null;
    const info = dispatchInfo(op);
    out.push({
      label: op.label,
      shape: cost.shape,
      ms,
      gflops: gflops === null ? null : round3(gflops),
      gbps: round3(cost.bytes / (ms.median * 1e6)),
      ofCeiling: gflops !== null && refs.ceiling ? round3(gflops / refs.ceiling) : null,
      ofSquare: gflops !== null && refs.square ? round3(gflops / refs.square) : null,
      repeats: n,
      workgroups: info.workgroups,
      workgroupSize: info.workgroupSize,
      invocations: info.invocations,
    });
  }
  return out;
}

/** Where the time of a training step goes. */
export interface StepBreakdown {
  /** `timestamps`: one timed pass per dispatch inside whole steps; `isolated`: kernel timings. */
  method: "timestamps" | "isolated";
  /** Sum of the kernels' times per step, in ms. */
  stepMs: number;
  /** Per kernel: ms per step (median over repetitions) and share of the step. */
  kernels: { label: string; ms: number; fraction: number }[];
  /** Why the isolated timings were used although the adapter has timestamps. */
  note?: string;
}

/**
 * Split a training step into its kernels. With timestamps: `steps` whole steps in one
 * submission, every dispatch in its own timed pass, medians per kernel over `reps` submissions.
 * Without: the isolated kernel timings, normalised.
 */
export async function stepBreakdown(
  net: BenchNet,
  timer: GpuTimer,
  isolated: KernelResult[],
  steps: number,
  reps: number,
): Promise<StepBreakdown> {
  const ops = net.step.ops;
  const total = isolated.reduce((s, k) => s + k.ms.median, 0);
  const fromIsolated = (note?: string): StepBreakdown => ({
    method: "isolated",
    stepMs: round3(total),
    kernels: isolated.map((k) => ({
      label: k.label,
      ms: k.ms.median,
      fraction: round3(k.ms.median / total),
    })),
    ...(note ? { note } : {}),
  });
  if (!timer.timestamps) return fromIsolated();
  const device = net.ctx.gpu.device;
  const perOp: number[][] = ops.map(() => []);
  for (let r = 0; r < reps; r++) {
    const k = Math.min(steps, STEP_CHUNK);
    writeBuffer(
      device,
      net.step.steps,
      0,
      encodeSteps(stepRecords(net.spec, net.stepsPerEpoch, net.t, net.t + k)),
    );
    net.t += k;
    const t = await timer.measure((begin, enc) => {
      const e = new OpEncoder(enc, begin);
      for (let s = 0; s < k; s++) {
        for (const op of ops) {
          e.encode(op, s);
          e.end();
        }
      }
    }, k * ops.length);
    if (t.passMs.length !== k * ops.length) break;
    ops.forEach((_, i) => {
      let sum = 0;
      for (let s = 0; s < k; s++) sum += t.passMs[s * ops.length + i];
      perOp[i].push(sum / k);
    });
  }
  const med = perOp.map((xs) => summarise(xs).median);
  // Cross-check against the kernels timed alone: an adapter may attribute work to the wrong pass
  // (lavapipe did, for kernels reading textures written in an earlier pass). A kernel that takes
  // ≥ 10% of the step alone but 3× more or less between timestamps discredits the split.
  const off = isolated.findIndex((k, i) =>
    k.ms.median >= 0.1 * total && (med[i] > 3 * k.ms.median || 3 * med[i] < k.ms.median)
  );
  if (off >= 0) {
    const k = isolated[off];
    return fromIsolated(
      `timestamps gave ${k.label} ${med[off].toFixed(3)} ms against ${
        k.ms.median.toFixed(3)
      } ms alone; shares from the isolated timings`,
    );
  }
  const sum = med.reduce((s, x) => s + x, 0);
  return {
    method: "timestamps",
    stepMs: round3(sum),
    kernels: ops.map((op, i) => ({
      label: op.label,
      ms: med[i],
      fraction: round3(med[i] / sum),
    })),
  };
}

/**
 * This project's matmul on large square products (kept beside the FMA ceiling: it has its own
 * target).
 */
export interface SquareResult {
  /** Side of the square product that gave the best GFLOP/s. */
  size: number;
  tile: Tile;
  /**
   * Where A and B were read from: rgba32float textures where the trainer would place them so (an
   * adapter that prefers textures, rows of at least `LONG_ROWS` floats; see
   * src/kernels/placement.ts), storage buffers otherwise (absent in older results: buffers).
   */
  operands?: SquareOperands;
  ms: Summary;
  gflops: number;
  /** Every size and tile tried. */
  tried: { size: number; tile: Tile; operands?: SquareOperands; gflops: number }[];
}

/** Where the square product's operands live. */
export type SquareOperands = "textures" | "buffers";

/**
 * This project's matmul on square nn products from `fromSize` (default 512) up, doubling until one
 * dispatch takes `minMs` with the fastest tile (or the side reaches `maxSize`), each with the tile the adapter's
 * kernel profile selects for the size and every tile of `tiles`; the best median is the result.
 * Its operands live where the trainer's placement would put them: in textures from `LONG_ROWS`
 * floats a row on an adapter that prefers textures (as layer 1's X and W₁ on llvmpipe), in
 * buffers otherwise.
 */
export async function measureSquare(
  ctx: BenchContext,
  timer: GpuTimer,
  opts: { minMs: number; maxSize: number; reps: number; tiles: Tile[]; fromSize?: number },
): Promise<SquareResult> {
  const device = ctx.gpu.device;
  const tried: (SquareResult["tried"][number] & { ms: Summary })[] = [];
  for (let S = opts.fromSize ?? 512;; S *= 2) {
    const data = new Float32Array(S * S);
    for (let i = 0; i < data.length; i++) data[i] = Math.random() - 0.5;
    const operands: SquareOperands = ctx.gpu.prefersTextures && S >= LONG_ROWS &&
        S <= device.limits.maxTextureDimension2D
      ? "textures"
      : "buffers";
    // A = B = data: one texture, or one buffer bound as both
    const input: TextureOperand | Operand = operands === "textures"
      ? { texture: squareTexture(device, S, data) }
      : { buffer: storageBuffer(device, S * S, "peak.AB"), ld: S };
    if ("buffer" in input) writeBuffer(device, input.buffer, 0, data);
    const c = storageBuffer(device, S * S, "peak.C");
    let fastest = Infinity;
    try {
      const selected = selectTile(ctx.gpu.kernelProfile, "nn", S, S, S);
      const tiles = [selected, ...opts.tiles.filter((t) => tileName(t) !== tileName(selected))];
      for (const tile of tiles) {
        const op = matmulOp(device, {
          label: `peak_nn_${S}`,
          variant: "nn",
          M: S,
          N: S,
          K: S,
          a: input,
          b: input,
          c: { buffer: c, ld: S },
          tile,
        });
        const first = await timer.perRepeat([op], 1); // compile and warm
        // small sizes: several dispatches per measurement, so that each takes ≥ ~minMs/4
        const n = Math.max(1, Math.min(64, Math.round(opts.minMs / 4 / Math.max(first, 1e-3))));
        const samples: number[] = [];
        for (let r = 0; r < opts.reps; r++) samples.push(await timer.perRepeat([op], n));
        const ms = summarise(samples);
        fastest = Math.min(fastest, ms.median);
        tried.push({
          size: S,
          tile,
          operands,
          ms,
          gflops: round3(op.cost.flops / (ms.median * 1e6)),
        });
      }
    } finally {
      ("texture" in input ? input.texture : input.buffer).destroy();
      c.destroy();
    }
    if (fastest >= opts.minMs || S * 2 > opts.maxSize) break;
  }
  const best = tried.reduce((x, y) => (y.gflops > x.gflops ? y : x));
  return {
    size: best.size,
    tile: best.tile,
    operands: best.operands,
    ms: best.ms,
    gflops: best.gflops,
    tried: tried.map(({ size, tile, operands, gflops }) => ({ size, tile, operands, gflops })),
  };
}

/** An S×S rgba32float texture holding `data` (row r: texture row r, its quads the texels). */
function squareTexture(
  device: GPUDevice,
  S: number,
  data: Float32Array<ArrayBuffer>,
): GPUTexture {
  const texture = device.createTexture({
    label: `peak.AB_${S}`,
    size: [S / 4, S],
    format: "rgba32float",
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST |
      GPUTextureUsage.STORAGE_BINDING, // read as the trainer's copies are (textureReads)
  });
  device.queue.writeTexture({ texture }, data, { bytesPerRow: S * 4 }, [S / 4, S]);
  return texture;
}

function round3(x: number): number {
  return Number(x.toPrecision(3));
}
