/**
 * Bias gradients (`shaders/colsum.wgsl`): column sums of a gradient block, stored or applied as
 * an SGD step.
 *
 * @module
 */

import { noSteps, uniformBuffer } from "../gpu/buffers.ts";
import { bindLayout, pipeline } from "../gpu/shaders.ts";
import { bufferEntries, checkGroups, type Op } from "./op.ts";

/** Arguments of {@link colsumOp}. */
export interface ColsumSpec {
  /** Sum R rows of G (stride ld) over N logical columns in each of Z blocks (stride zStride). */
  R: number;
  N: number;
  Z: number;
  g: GPUBuffer;
  ld: number;
  zStride: number;
  /** Output vector, laid out like a row of G (offset outOffset). */
  out: GPUBuffer;
  outOffset?: number;
  /** `sgd`: out -= η·sum with η from the step table; `store`: out = sum. */
  mode: "store" | "sgd";
  steps?: GPUBuffer;
  label?: string;
}

const WG = 64;

/** Prepare a column-sum dispatch. */
export function colsumOp(device: GPUDevice, s: ColsumSpec): Op {
  const label = s.label ?? `colsum_${s.mode}`;
  if (s.mode === "sgd" && !s.steps) throw new Error(`${label}: sgd needs a step table`);
  const layout = bindLayout(device, ["read", "write", "uniform", "dynamic"]);
  const params = new Uint32Array([s.R, s.N, s.Z, s.ld, s.zStride, s.outOffset ?? 0, 0, 0]);
  return {
    label,
    pipeline: pipeline(device, "colsum", "colsum", layout, { SGD: s.mode === "sgd", WG }),
    bindGroup: device.createBindGroup({
      label,
      layout,
      entries: bufferEntries([
        s.g,
        s.out,
        uniformBuffer(device, params, `${label}.params`),
        s.steps ?? noSteps(device),
      ], 3),
    }),
    workgroups: [checkGroups(label, Math.ceil((s.N * s.Z) / WG)), 1, 1],
    stepped: !!s.steps,
  };
}
