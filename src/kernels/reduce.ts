/**
 * Evaluation reductions (`shaders/reduce.wgsl`): per-model sums of row losses and correct
 * predictions, sums of squared weights for the L2 term, and confusion counts. Results accumulate
 * into a metrics buffer of vec4 (Σ loss, Σ correct, Σ W², rows) per (slot, model).
 *
 * @module
 */

import { dummyBuffer, scratchBuffer } from "../gpu/buffers.ts";
import type { StructValues } from "../gpu/layout.ts";
import { checkGroups, kernelOp, type Op, type OpCost, timesZ } from "./op.ts";

/** Floats per (slot, model) entry of a metrics buffer. */
export const METRIC_FLOATS = 4;

interface Common {
  Z: number;
  steps: GPUBuffer;
  label?: string;
}

/** The shader's Params with the fields an entry point does not read at 0. */
function params(
  p: Partial<Record<"R" | "rowsW" | "colsW" | "ld" | "zStride" | "C", number>>,
  Z: number,
): StructValues {
  return { R: 0, Z, rowsW: 0, colsW: 0, ld: 0, zStride: 0, C: 0, ...p };
}

function reduceOp(
  device: GPUDevice,
  entry: "reduce_rows" | "sum_squares" | "confusion",
  buffers: {
    stats?: GPUBuffer;
    labels?: GPUBuffer;
    w?: GPUBuffer;
    metrics?: GPUBuffer;
    counts?: GPUBuffer;
  },
  p: StructValues,
  c: Common,
  cost: OpCost,
): Op {
  const label = c.label ?? entry;
  const dummy = dummyBuffer(device);
  return kernelOp(device, {
    shader: "reduce",
    entryPoint: entry,
    label,
    resources: {
      stats: buffers.stats ?? dummy,
      labels: buffers.labels ?? dummy,
      W: buffers.w ?? dummy,
      metrics: buffers.metrics ?? scratchBuffer(device),
      counts: buffers.counts ?? scratchBuffer(device, 1),
      p,
      st: c.steps,
    },
    workgroups: [checkGroups(label, c.Z), 1, 1],
    stepped: true,
    cost,
  });
}

/** metrics[slot·Z + z] += (Σ loss, Σ correct, 0, rows) over the record's `rows` valid rows of R. */
export function reduceRowsOp(
  device: GPUDevice,
  s: Common & { R: number; stats: GPUBuffer; metrics: GPUBuffer },
): Op {
  // at most R rows: two adds per (row, model); reads the vec4 stats, a metrics vec4 read and written
  const cost = { flops: 2 * s.R * s.Z, bytes: 16 * s.R * s.Z + 32 * s.Z, shape: `${s.R}×${s.Z}` };
  return reduceOp(
    device,
    "reduce_rows",
    { stats: s.stats, metrics: s.metrics },
    params({ R: s.R }, s.Z),
    s,
    cost,
  );
}

/** metrics[slot·Z + z].z += Σ W² over model z's rows × cols block (row stride ld, block stride zStride). */
export function sumSquaresOp(
  device: GPUDevice,
  s: Common & {
    w: GPUBuffer;
    rows: number;
    cols: number;
    ld: number;
    zStride: number;
    metrics: GPUBuffer;
  },
): Op {
  // a multiply and an add per weight, each read once; a metrics float read and written per model
  const n = s.rows * s.cols * s.Z;
  return reduceOp(
    device,
    "sum_squares",
    { w: s.w, metrics: s.metrics },
    params({ rowsW: s.rows, colsW: s.cols, ld: s.ld, zStride: s.zStride }, s.Z),
    s,
    { flops: 2 * n, bytes: 4 * n + 8 * s.Z, shape: `${s.rows}×${s.cols}${timesZ(s.Z)}` },
  );
}

/** counts[(z·C + y)·C + predicted] += 1 over the record's valid rows. */
export function confusionOp(
  device: GPUDevice,
  s: Common & { R: number; C: number; stats: GPUBuffer; labels: GPUBuffer; counts: GPUBuffer },
): Op {
  // integer counting, no flops; at most R rows: a label and a stats vec4 read, a count read and
  // written (atomically) per (row, model)
  const cost = { flops: 0, bytes: 4 * s.R + 24 * s.R * s.Z, shape: `${s.R}×${s.Z} C=${s.C}` };
  return reduceOp(
    device,
    "confusion",
    { stats: s.stats, labels: s.labels, counts: s.counts },
    params({ R: s.R, C: s.C }, s.Z),
    s,
    cost,
  );
}
