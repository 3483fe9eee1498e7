/**
 * Evaluation reductions (`shaders/reduce.wgsl`): per-model sums of row losses and correct
 * predictions, sums of squared weights for the L2 term, and confusion counts. Results accumulate
 * into a metrics buffer of vec4 (Σ loss, Σ correct, Σ W², rows) per (slot, model).
 *
 * @module
 */

import { dummyBuffer, scratchBuffer, uniformBuffer } from "../gpu/buffers.ts";
import { bindLayout, pipeline } from "../gpu/shaders.ts";
import { bufferEntries, checkGroups, type Op } from "./op.ts";

/** Floats per (slot, model) entry of a metrics buffer. */
export const METRIC_FLOATS = 4;

const LAYOUT = ["read", "read", "read", "write", "write", "uniform", "dynamic"] as const;

interface Common {
  Z: number;
  steps: GPUBuffer;
  label?: string;
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
  params: number[],
  c: Common,
): Op {
  const label = c.label ?? entry;
  const layout = bindLayout(device, [...LAYOUT]);
  const dummy = dummyBuffer(device);
  const p = new Uint32Array(8);
  p.set(params);
  return {
    label,
    pipeline: pipeline(device, "reduce", entry, layout),
    bindGroup: device.createBindGroup({
      label,
      layout,
      entries: bufferEntries([
        buffers.stats ?? dummy,
        buffers.labels ?? dummy,
        buffers.w ?? dummy,
        buffers.metrics ?? scratchBuffer(device),
        buffers.counts ?? scratchBuffer(device, 1),
        uniformBuffer(device, p, `${label}.params`),
        c.steps,
      ], 6),
    }),
    workgroups: [checkGroups(label, c.Z), 1, 1],
    stepped: true,
  };
}

/** metrics[slot·Z + z] += (Σ loss, Σ correct, 0, rows) over the record's `rows` valid rows of R. */
export function reduceRowsOp(
  device: GPUDevice,
  s: Common & { R: number; stats: GPUBuffer; metrics: GPUBuffer },
): Op {
  return reduceOp(device, "reduce_rows", { stats: s.stats, metrics: s.metrics }, [s.R, s.Z], s);
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
  return reduceOp(
    device,
    "sum_squares",
    { w: s.w, metrics: s.metrics },
    [0, s.Z, s.rows, s.cols, s.ld, s.zStride],
    s,
  );
}

/** counts[(z·C + y)·C + predicted] += 1 over the record's valid rows. */
export function confusionOp(
  device: GPUDevice,
  s: Common & { R: number; C: number; stats: GPUBuffer; labels: GPUBuffer; counts: GPUBuffer },
): Op {
  return reduceOp(
    device,
    "confusion",
    { stats: s.stats, labels: s.labels, counts: s.counts },
    [s.R, s.Z, 0, 0, 0, 0, s.C],
    s,
  );
}
