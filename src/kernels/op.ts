/**
 * A prepared kernel dispatch: pipeline, bind group and grid built once, encoded many times.
 *
 * @module
 */

import { STEP_STRIDE } from "../gpu/buffers.ts";

/** One dispatch, ready to encode. */
export interface Op {
  /** Debug label of the bind group, also used in errors (e.g. `matmul_nn`, `gather_train`). */
  label: string;
  /** The specialised compute pipeline. */
  pipeline: GPUComputePipeline;
  /** Bind group 0: the kernel's buffers, the last binding being the step table (dynamic offset). */
  bindGroup: GPUBindGroup;
  /** Workgroup grid (x, y, z); a zero dimension makes {@link encodeOp} skip the dispatch. */
  workgroups: [number, number, number];
  /**
   * The op reads a step-table record: encode it with the record's index. Every kernel's layout
   * ends with a dynamic-offset step binding; ops that ignore it are encoded at offset 0.
   */
  stepped: boolean;
}

/** Encode `op` into a compute pass; `record` selects the step-table record for stepped ops. */
export function encodeOp(pass: GPUComputePassEncoder, op: Op, record = 0): void {
  pass.setPipeline(op.pipeline);
  pass.setBindGroup(0, op.bindGroup, [op.stepped ? record * STEP_STRIDE : 0]);
  const [x, y, z] = op.workgroups;
  if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
}

/** Encode ops in order in one pass, submit, and wait for the GPU (for tests and tools). */
export async function runOps(device: GPUDevice, ops: Op[], record = 0): Promise<void> {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (const op of ops) encodeOp(pass, op, record);
  pass.end();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
}

/** Binding entries for buffers and textures (binding i = resources[i]); `stepSlot` is sized 32 bytes. */
export function bufferEntries(
  buffers: (GPUBuffer | GPUTexture)[],
  stepSlot = -1,
): GPUBindGroupEntry[] {
  return buffers.map((r, binding) =>
    r instanceof GPUTexture
      ? { binding, resource: r.createView() }
      : binding === stepSlot
      ? { binding, resource: { buffer: r, offset: 0, size: 32 } }
      : { binding, resource: { buffer: r } }
  );
}

/** Largest workgroup count per grid dimension every WebGPU device supports. */
export const MAX_GROUPS = 65535;

/** Check a grid dimension against the WebGPU limit, naming the op. */
export function checkGroups(label: string, n: number): number {
  if (n > MAX_GROUPS) throw new Error(`${label}: ${n} workgroups exceed ${MAX_GROUPS}`);
  return n;
}
