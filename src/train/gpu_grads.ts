/**
 * Analytic gradients computed on the GPU for given inputs (no gather, no update): what the
 * gradient audit compares with the float64 twin.
 *
 * @module
 */

import { readFloats, storageBuffer, writeBuffer } from "../gpu/buffers.ts";
import { GpuParams } from "../model/gpu_params.ts";
import type { Params } from "../model/init.ts";
import { runOps } from "../kernels/op.ts";
import type { Grads } from "../reference/network.ts";
import { backwardOps, createWorkspace, forwardOps, lossOp } from "./graph.ts";

/**
 * Upload P networks (one λ each), run forward + loss + backward on n samples (X row-major n × d,
 * labels y) and read back every model's gradients (float32 values in float64 arrays).
 */
export async function gpuGradients(
  device: GPUDevice,
  models: Params[],
  lambdas: number[],
  X: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
): Promise<Grads[]> {
  const sizes = models[0].sizes;
  const params = new GpuParams(device, sizes, lambdas);
  models.forEach((m, p) => params.upload(p, m));
  const ws = createWorkspace(params, n, true);
  uploadRows(device, ws.x, ws.xld, X, n, sizes[0]);
  writeBuffer(device, ws.y, 0, Uint32Array.from(y as ArrayLike<number>));
  const dW = params.layers.map((L) => storageBuffer(device, L.pin * L.ld, "dW"));
  const db = params.layers.map((L) => storageBuffer(device, L.ld, "db"));
  await runOps(device, [
    ...forwardOps(params, ws),
    lossOp(params, ws, "train"),
    ...backwardOps(params, ws, { kind: "grads", dW, db }),
  ]);
  const gW = await Promise.all(dW.map((b) => readFloats(device, b)));
  const gb = await Promise.all(db.map((b) => readFloats(device, b)));
  const out: Grads[] = models.map((_, p) => ({
    W: params.layers.map((L, l) => {
      const w = new Float64Array(L.nIn * L.nOut);
      for (let i = 0; i < L.nIn; i++) {
        for (let j = 0; j < L.nOut; j++) w[i * L.nOut + j] = gW[l][i * L.ld + p * L.pout + j];
      }
      return w;
    }),
    b: params.layers.map((L, l) =>
      Float64Array.from(gb[l].subarray(p * L.pout, p * L.pout + L.nOut))
    ),
  }));
  for (const b of [...dW, ...db]) b.destroy();
  ws.destroy();
  params.destroy();
  return out;
}

/** Write n rows of d values into a buffer of row stride ld (padding left zero). */
export function uploadRows(
  device: GPUDevice,
  buffer: GPUBuffer,
  ld: number,
  X: ArrayLike<number>,
  n: number,
  d: number,
): void {
  const data = new Float32Array(n * ld);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) data[i * ld + k] = X[i * d + k];
  writeBuffer(device, buffer, 0, data);
}
