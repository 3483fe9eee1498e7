/**
 * Tile sweep (`--tiles`): every matmul of the training step on its real layout (the trainer's
 * buffers, strides and texture operands for a single model, placed as the trainer places them on
 * this adapter), timed with a grid of register tiles {tm, tn4, wg}, to pick `defaultTile` per
 * shape. A quick pass over the whole grid, then the best few and the current default re-timed
 * with repetitions. Each tile's build time (pipeline creation, i.e. the shader compile, and one
 * dispatch) is recorded beside its speed: a larger register tile is unrolled into more code, and
 * on llvmpipe over GL its compile grows much faster than its speed-up (see the README).
 *
 * The specs mirror `forwardOps` / `backwardOps` in src/train/graph.ts (same operands, strides and
 * epilogues), with the tile overridden.
 *
 * @module
 */

import { stepTable } from "../src/gpu/buffers.ts";
import { matmulOp, type MatmulSpec, selectTile, type Tile } from "../src/kernels/matmul.ts";
import { encodeOp, type Op } from "../src/kernels/op.ts";
import { GpuParams } from "../src/model/gpu_params.ts";
import { initParams } from "../src/model/init.ts";
import { backwardPass, createWorkspace, forwardPass, type Workspace } from "../src/train/graph.ts";
import { placeOps } from "../src/kernels/placement.ts";
import type { Gpu } from "../src/gpu/device.ts";
import type { BenchContext } from "./setup.ts";
import { summarise, type Summary } from "./stats.ts";
import type { GpuTimer } from "./timing.ts";

/** One tile's time on a shape. */
export interface TileTiming {
  tile: Tile;
  ms: Summary;
  gflops: number;
  /** Milliseconds to build the op (create its pipeline: the shader compile) and run it once. */
  buildMs: number;
}

/** The sweep's verdict on one matmul shape. */
export interface TileShapeResult {
  /** Where it occurs: `forward1 of 3072-50-10 at B=100`, … */
  uses: string[];
  variant: MatmulSpec["variant"];
  /** Where its operands live, as the trainer places them here: `A texture, B buffer, C buffer`. */
  operands: string;
  M: number;
  N: number;
  K: number;
  epilogue: string;
  default: TileTiming;
  best: TileTiming;
  /** default ms / best ms. */
  speedup: number;
  /** The re-timed finalists, fastest first. */
  finalists: TileTiming[];
  /**
   * Every tile of the quick pass: [tm, tn4, wg, ms, build ms] (ms NaN: refused, see `refused`).
   */
  grid: [number, number, number, number, number][];
  /** Tiles of the grid that could not be built or run here, each with the reason. */
  refused: { tile: Tile; reason: string }[];
}

/** The grid and effort of a tile sweep. */
export interface TileOptions {
  tm: number[];
  tn4: number[];
  wg: number[];
  /** ms of work per quick-pass measurement / per finalist measurement. */
  quickMs: number;
  finalMs: number;
  finalists: number;
  reps: number;
}

/**
 * The default grid (27 tiles). tm = 2 is not offered: `tn` cannot take it (its rows go in quads),
 * and for `nn` and `nt` it measured slower than 4 on llvmpipe.
 */
export const TILE_GRID = { tm: [4, 8, 16], tn4: [1, 2, 4], wg: [8, 32, 64] };

/**
 * Why a tile cannot be built for `variant` on a device with these limits (null: it can): tm not a
 * multiple of 4 for `tn` (its rows go in quads; for other variants such a tile compiles without
 * the matmul_tn entry points, see `TN_TILE` in shaders/matmul.wgsl), or more invocations than the
 * device allows.
 */
export function tileRefusal(
  variant: MatmulSpec["variant"],
  tile: Tile,
  maxInvocations: number,
): string | null {
  if (variant === "tn" && tile.tm % 4 !== 0) return "tn needs tm a multiple of 4 (row quads)";
  if (tile.wg > maxInvocations) {
    return `wg ${tile.wg} exceeds maxComputeInvocationsPerWorkgroup ${maxInvocations}`;
  }
  return null;
}

interface Shape {
  key: string;
  label: string;
  spec: MatmulSpec;
}

/** The matmul specs of one model's training step, recorded from the graph that builds them. */
function stepMatmuls(
  gpu: Gpu,
  params: GpuParams,
  ws: Workspace,
  steps: GPUBuffer,
): { shapes: Shape[]; destroy(): void } {
  const out: Shape[] = [];
  const record = (spec: MatmulSpec): Op => {
    out.push({
      key: `${spec.variant}|${spec.M}|${spec.N}|${spec.K}|${spec.epilogue}`,
      label: spec.label ?? spec.variant,
      spec,
    });
    return {
      label: "recorded",
      workgroups: [0, 0, 0],
      stepped: false,
      cost: { flops: 0, bytes: 0, shape: "recorded" },
    } as unknown as Op;
  };
  const nodes = [
    ...forwardPass(params, ws, { mode: "train", steps }),
    ...backwardPass(params, ws, { kind: "sgd", steps }),
  ];
  // the inputs' buffer is placement's: freed with the workspace by the caller's cleanup
  const placed = placeOps(params.device, nodes, {
    matmul: record,
    textures: gpu.prefersTextures,
    profile: gpu.kernelProfile,
  });
  return { shapes: out, destroy: () => placed.destroy() };
}

/** An op built with a tile, and how long building it and its first dispatch took. */
interface Built {
  op: Op;
  buildMs: number;
}

/**
 * Build an op with a tile and run it once, or return the reason the device or the kernel refuses
 * it: {@link tileRefusal}, or the error that its creation or first dispatch raised. Refusals are
 * remembered in `refused` by variant, epilogue and tile: the pipeline cache would hand the same
 * invalid pipeline back later without a new error.
 */
async function tryOp(
  device: GPUDevice,
  spec: MatmulSpec,
  tile: Tile,
  refused: Map<string, string>,
): Promise<Built | { reason: string }> {
  const key = `${spec.variant}|${spec.epilogue}|${tile.tm}|${tile.tn4}|${tile.wg}|${tile.ks}`;
  const known = refused.get(key) ??
    tileRefusal(spec.variant, tile, device.limits.maxComputeInvocationsPerWorkgroup);
  if (known) return { reason: known };
  const scopes = ["validation", "internal", "out-of-memory"] as const;
  for (const s of scopes) device.pushErrorScope(s);
  let op: Op | null = null;
  let reason = "";
  const t0 = performance.now();
  try {
    op = matmulOp(device, { ...spec, tile, label: `tile_${spec.variant}` });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encodeOp(pass, op, 0);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  } catch (e) {
    op = null;
    reason = (e as Error).message;
  }
  for (let i = 0; i < scopes.length; i++) {
    const err = await device.popErrorScope();
    if (err) reason ||= err.message;
  }
  if (reason || !op) {
    reason = (reason || "refused").split("\n")[0].slice(0, 200);
    refused.set(key, reason);
    return { reason };
  }
  return { op, buildMs: performance.now() - t0 };
}

function isOp(x: Built | { reason: string }): x is Built {
  return !("reason" in x);
}

/**
 * Sweep the grid on every distinct matmul shape of these nets and batches (one model each).
 * `log` gets a line per shape.
 */
export async function tileSweep(
  ctx: BenchContext,
  timer: GpuTimer,
  nets: number[][],
  batches: number[],
  opts: TileOptions,
  log: (line: string) => void,
): Promise<TileShapeResult[]> {
  const device = ctx.gpu.device;
  const shapes = new Map<string, Shape & { uses: string[] }>();
  const cleanup: (() => void)[] = [];
  const steps = stepTable(device, [{ eta: 1e-3 }], "tiles.steps");
  for (const sizes of nets) {
    for (const B of batches) {
      const params = new GpuParams(device, sizes, [0.01]);
      params.upload(0, initParams(sizes, "xavier", 0.01, 0));
      const ws = createWorkspace(params, { rows: B, training: true });
      const recorded = stepMatmuls(ctx.gpu, params, ws, steps);
      cleanup.push(() => (recorded.destroy(), ws.destroy(), params.destroy()));
      for (const s of recorded.shapes) {
        const use = `${s.label} of ${sizes.join("-")} at B=${B}`;
        const seen = shapes.get(s.key);
        if (seen) seen.uses.push(use);
        else shapes.set(s.key, { ...s, uses: [use] });
      }
    }
  }
  const results: TileShapeResult[] = [];
  const refused = new Map<string, string>();
  try {
    for (const shape of shapes.values()) {
      const { spec } = shape;
      const flops = 2 * spec.M * spec.N * spec.K;
      const timing = async (
        op: Op,
        n: number,
        reps: number,
        tile: Tile,
        buildMs: number,
      ): Promise<TileTiming> => {
        const xs: number[] = [];
        for (let r = 0; r < reps; r++) xs.push(await timer.perRepeat([op], n));
        const ms = summarise(xs);
        return {
          tile,
          ms,
          gflops: Number((flops / (ms.median * 1e6)).toPrecision(3)),
          buildMs: Math.round(buildMs),
        };
      };
      // the tile the adapter's kernel profile selects (gpu: a split tile, against the cpu grid)
      const def = selectTile(
        ctx.gpu.kernelProfile,
        spec.variant,
        spec.M,
        spec.N,
        spec.K,
        spec.Z,
        spec.epilogue,
      );
      const defTry = await tryOp(device, spec, def, refused);
      if (!isOp(defTry)) {
        throw new Error(
          `the default tile ${tileName(def)} fails on ${shape.label}: ${defTry.reason}`,
        );
      }
      const defOp = defTry.op;
      await timer.perRepeat([defOp], 1);
      const nQuick = await timer.calibrate([defOp], opts.quickMs, 2, 2000);
      const grid: [number, number, number, number, number][] = [];
      const candidates: (Built & { tile: Tile; ms: number })[] = [];
      const shapeRefused: TileShapeResult["refused"] = [];
      for (const tm of opts.tm) {
        for (const tn4 of opts.tn4) {
          for (const wg of opts.wg) {
            const tile = { tm, tn4, wg };
            const built = await tryOp(device, spec, tile, refused);
            if (!isOp(built)) {
              grid.push([tm, tn4, wg, NaN, NaN]);
              shapeRefused.push({ tile, reason: built.reason });
              continue;
            }
            const { op, buildMs } = built;
            const ms = await timer.perRepeat([op], nQuick);
            grid.push([tm, tn4, wg, Number(ms.toPrecision(4)), Math.round(buildMs)]);
            candidates.push({ tile, op, ms, buildMs });
          }
        }
      }
      candidates.sort((a, b) => a.ms - b.ms);
      const nFinal = await timer.calibrate([defOp], opts.finalMs, 2, 4000);
      const finalists: TileTiming[] = [];
      const isDef = (t: Tile) =>
        t.tm === def.tm && t.tn4 === def.tn4 && t.wg === def.wg && t.ks === def.ks;
      for (const c of candidates.slice(0, opts.finalists)) {
        if (!isDef(c.tile)) {
          finalists.push(await timing(c.op, nFinal, opts.reps, c.tile, c.buildMs));
        }
      }
      const defTiming = await timing(defOp, nFinal, opts.reps, def, defTry.buildMs);
      finalists.push(defTiming);
      finalists.sort((a, b) => a.ms.median - b.ms.median);
      const best = finalists[0];
      const r: TileShapeResult = {
        uses: shape.uses,
        variant: spec.variant,
        operands: operandsOf(spec),
        M: spec.M,
        N: spec.N,
        K: spec.K,
        epilogue: spec.epilogue ?? "store",
        default: defTiming,
        best,
        speedup: Number((defTiming.ms.median / best.ms.median).toPrecision(3)),
        finalists,
        grid,
        refused: shapeRefused,
      };
      results.push(r);
      log(
        `  ${`${spec.variant} ${spec.M}×${spec.N}×${spec.K}`.padEnd(20)} default ` +
          `${tileName(def)} ${defTiming.ms.median.toPrecision(3)} ms → best ${
            tileName(best.tile)
          } ` +
          `${best.ms.median.toPrecision(3)} ms (${r.speedup}×; built in ${defTiming.buildMs} → ` +
          `${best.buildMs} ms)  [${shape.uses.join("; ")}]` +
          (shapeRefused.length ? `; ${shapeRefused.length} tiles refused` : ""),
      );
    }
  } finally {
    for (const c of cleanup) c();
    steps.destroy();
  }
  return results;
}

/** Where a product's operands live: `A texture, B buffer, C buffer`. */
export function operandsOf(spec: MatmulSpec): string {
  const kind = (o: object) => "texture" in o ? "texture" : "buffer";
  return `A ${kind(spec.a)}, B ${kind(spec.b)}, C buffer`;
}

/** `{tm:8,tn4:2,wg:64}`, with `,ks:32` for a tile of the gpu profile's split kernels. */
export function tileName(t: Tile): string {
  return `{tm:${t.tm},tn4:${t.tn4},wg:${t.wg}${t.ks === undefined ? "" : `,ks:${t.ks}`}}`;
}
