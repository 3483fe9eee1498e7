/**
 * Evaluation on the GPU: forward passes over whole splits in chunks, accumulating loss sums,
 * correct counts, Σ‖W‖² and (for the test set) confusion counts into a metrics buffer, read back
 * asynchronously.
 *
 * @module
 */

import type { TestMetrics } from "./metrics.ts";
import {
  encodeSteps,
  STEP_STRIDE,
  type StepRecord,
  storageBuffer,
  writeBuffer,
} from "../gpu/buffers.ts";
import type { ResidentDataset, SplitRange } from "../data/resident.ts";
import type { KernelProfile } from "../gpu/device.ts";
import { gatherOp } from "../kernels/gather.ts";
import { type Op, type OpEncoder } from "../kernels/op.ts";
import { confusionOp, METRIC_FLOATS, reduceRowsOp, sumSquaresOp } from "../kernels/reduce.ts";
import type { GpuParams } from "../model/gpu_params.ts";
import { createWorkspace, forwardPass, lossOf, type Workspace } from "./graph.ts";
import { kernel, type PlacedOps, placeOps, storageOf } from "../kernels/placement.ts";

/** Rows per evaluation chunk, at most. */
export const EVAL_ROWS = 2000;

/** One split to evaluate into a metrics slot. */
export interface EvalRequest {
  /** Name of a split given to the constructor (e.g. `train`, `val`, `test`). */
  split: string;
  /** Metrics slot to accumulate into, in [0, slots); it should still hold zeros. */
  slot: number;
  /** Also count (true, predicted) pairs into the confusion buffer. */
  confusion?: boolean;
}

/** Options of an {@link Evaluator}. */
export interface EvaluatorOptions {
  /** Rows per evaluation chunk, at most (default {@link EVAL_ROWS}). */
  rows?: number;
  /** Include BN's γ and β in Σ‖W‖² (when the L2 term applies to them). */
  bnL2?: boolean;
  /** Whether the adapter loads texels faster than buffer elements (see `placeOps`). */
  textures?: boolean;
  /** The kernel selection of the products (`Gpu.kernelProfile`; default `cpu`). */
  profile?: KernelProfile;
}

/** Sums of one (slot, model) entry, turned into means. */
export interface SlotSums {
  /** Σ cross-entropy loss over the evaluated rows. */
  lossSum: number;
  /** Rows whose arg-max prediction equals the label. */
  correct: number;
  /** Σ‖W‖² over the model's layers (γ, β too with `bnL2`); 0 unless this was the `l2Slot`. */
  sumSquares: number;
  /** Rows evaluated (the split's size): divide the sums by it for means. */
  rows: number;
}

/** A model's test metrics from its slot sums and confusion counts [true][predicted]. */
export function testMetrics(sums: SlotSums, confusion: number[][]): TestMetrics {
  return {
    loss: sums.lossSum / sums.rows,
    accuracy: sums.correct / sums.rows,
    confusion,
    perClassAccuracy: confusion.map((row, t) =>
      row[t] / Math.max(1, row.reduce((a, b) => a + b, 0))
    ),
  };
}

/** Evaluates the population in `params` on named splits of a resident dataset. */
export class Evaluator {
  /** The population evaluated, with the parameters its buffers hold when the pass executes. */
  readonly params: GpuParams;
  /** Evaluation workspace of min(rows, largest split) rows: one chunk at a time. */
  readonly ws: Workspace;
  /** Sums per (slot, model): vec4 (Σ loss, Σ correct, Σ‖W‖², rows) at float (slot·P + z)·4;
   * accumulated, so each slot is written by one evaluation only. */
  readonly metrics: GPUBuffer;
  /** counts[(z·C + true)·C + predicted], u32. */
  readonly counts: GPUBuffer;
  /** Number of metrics slots in `metrics`. */
  readonly slots: number;
  readonly #table: GPUBuffer;
  readonly #gathers = new Map<string, Op>();
  readonly #splits: Record<string, SplitRange>;
  readonly #body: Op[];
  readonly #reduce: Op;
  readonly #confusion: Op;
  readonly #l2: Op[];
  readonly #prologue: Op[];
  readonly #placed: PlacedOps;

  /** Build buffers and dispatches once; `slots` metrics slots are available. */
  constructor(
    params: GpuParams,
    dataset: ResidentDataset,
    splits: Record<string, SplitRange>,
    slots: number,
    options: EvaluatorOptions = {},
  ) {
    const { rows = EVAL_ROWS, bnL2 = false, textures = false, profile } = options;
    const device = params.device;
    this.params = params;
    this.slots = slots;
    this.#splits = splits;
    const largest = Math.max(1, ...Object.values(splits).map((s) => s.n));
    this.ws = createWorkspace(params, { rows: Math.min(rows, largest), training: false });
    const P = params.P, C = params.sizes[params.sizes.length - 1];
    this.metrics = storageBuffer(device, slots * P * METRIC_FLOATS, "metrics");
    this.counts = storageBuffer(device, P * C * C, "confusion");
    const records = Object.values(splits).reduce((n, s) => n + this.#chunks(s.n), 1);
    this.#table = device.createBuffer({
      label: "eval-steps",
      size: records * STEP_STRIDE,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    const steps = this.#table;
    const names = Object.keys(splits);
    const gathers = names.map((name) =>
      kernel(`gather_${name}`, { writesEither: [this.ws.X] }, () =>
        gatherOp(device, {
          mode: "eval",
          dataset,
          split: splits[name],
          R: this.ws.R,
          x: storageOf(this.ws.X),
          y: this.ws.y,
          steps,
          label: `gather_${name}`,
        }))
    );
    const body = [...forwardPass(params, this.ws, { steps }), lossOf(params, this.ws, "eval")];
    this.#placed = placeOps(device, [...gathers, ...body], { textures, profile });
    const ops = this.#placed.ops;
    names.forEach((name, i) => this.#gathers.set(name, ops[i]));
    this.#body = ops.slice(names.length);
    this.#prologue = this.#placed.prologue;
    const common = { Z: P, steps, stats: this.ws.stats, R: this.ws.R };
    this.#reduce = reduceRowsOp(device, { ...common, metrics: this.metrics });
    this.#confusion = confusionOp(device, { ...common, C, labels: this.ws.y, counts: this.counts });
    this.#l2 = params.layers.flatMap((layer, l) => {
      const common = { Z: P, steps, ld: layer.ld, zStride: layer.pout, metrics: this.metrics };
      const bn = bnL2 ? params.bn[l] : null;
      return [
        sumSquaresOp(device, {
          ...common,
          w: params.W[l],
          rows: layer.nIn,
          cols: layer.nOut,
          label: `sum_squares${l + 1}`,
        }),
        ...(bn ? [bn.gamma, bn.beta] : []).map((w, k) =>
          sumSquaresOp(device, {
            ...common,
            w,
            rows: 1,
            cols: layer.nOut,
            label: `sum_squares_bn${l + 1}.${k}`,
          })
        ),
      ];
    });
  }

  #chunks(n: number): number {
    return Math.ceil(n / this.ws.R);
  }

  /**
   * Write this evaluation's step records and encode it with `ops`: each request's split in
   * chunks, and Σ‖W‖² into `l2Slot`. One call per submission: the records are rewritten by the
   * next call (the queue orders the write after the previous submission).
   */
  encode(ops: OpEncoder, requests: EvalRequest[], l2Slot?: number): void {
    const records: StepRecord[] = [];
    const plan: { op: Op; record: number; confusion: boolean }[] = [];
    for (const r of requests) {
      const split = this.#splits[r.split];
      const gather = this.#gathers.get(r.split);
      if (!split || !gather) throw new Error(`no split ${r.split} in this evaluator`);
      if (r.slot >= this.slots) throw new Error(`slot ${r.slot} out of range`);
      for (let base = 0; base < split.n; base += this.ws.R) {
        plan.push({ op: gather, record: records.length, confusion: !!r.confusion });
        records.push({ base, rows: Math.min(this.ws.R, split.n - base), slot: r.slot });
      }
    }
    const l2Record = records.length;
    if (l2Slot !== undefined) records.push({ slot: l2Slot });
    writeBuffer(this.params.device, this.#table, 0, encodeSteps(records));
    ops.encodeAll(this.#prologue);
    for (const { op, record, confusion } of plan) {
      ops.encode(op, record);
      ops.encodeAll(this.#body, record);
      ops.encode(this.#reduce, record);
      if (confusion) ops.encode(this.#confusion, record);
    }
    if (l2Slot !== undefined) ops.encodeAll(this.#l2, l2Record);
  }

  /**
   * Encode a copy of `count` slots starting at `first` into a fresh staging buffer; after the
   * submission, the returned function maps it and gives per-slot, per-model sums.
   */
  readSlots(enc: GPUCommandEncoder, first: number, count: number): () => Promise<SlotSums[][]> {
    const P = this.params.P;
    const bytes = count * P * METRIC_FLOATS * 4;
    const staging = this.params.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    enc.copyBufferToBuffer(this.metrics, first * P * METRIC_FLOATS * 4, staging, 0, bytes);
    return async () => {
      await staging.mapAsync(GPUMapMode.READ);
      const m = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      staging.destroy();
      const out: SlotSums[][] = [];
      for (let s = 0; s < count; s++) {
        const row: SlotSums[] = [];
        for (let z = 0; z < P; z++) {
          const o = (s * P + z) * METRIC_FLOATS;
          row.push({ lossSum: m[o], correct: m[o + 1], sumSquares: m[o + 2], rows: m[o + 3] });
        }
        out.push(row);
      }
      return out;
    };
  }

  /** Encode a copy of the confusion counts; after submission the function reads them per model. */
  readConfusion(enc: GPUCommandEncoder): () => Promise<number[][][]> {
    const P = this.params.P, C = this.params.sizes[this.params.sizes.length - 1];
    const bytes = P * C * C * 4;
    const staging = this.params.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    enc.copyBufferToBuffer(this.counts, 0, staging, 0, bytes);
    return async () => {
      await staging.mapAsync(GPUMapMode.READ);
      const c = new Uint32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      staging.destroy();
      return Array.from(
        { length: P },
        (_, z) =>
          Array.from(
            { length: C },
            (_, t) => [...c.subarray((z * C + t) * C, (z * C + t + 1) * C)],
          ),
      );
    };
  }

  /** Free the evaluator's buffers. */
  destroy(): void {
    this.ws.destroy();
    this.#placed.destroy();
    for (const b of [this.metrics, this.counts, this.#table]) b.destroy();
  }
}
