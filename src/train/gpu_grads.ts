/**
 * Analytic gradients computed on the GPU for given inputs (no gather, no update): what the
 * gradient audit compares with the float64 twin.
 *
 * @module
 */

import { readFloats, stepTable, writeBuffer } from "../gpu/buffers.ts";
import { GpuParams, modelMatrix, modelVector } from "../model/gpu_params.ts";
import type { Params } from "../model/init.ts";
import { runOps } from "../kernels/op.ts";
import type { Grads } from "../nn/shared.ts";
import { backwardOps, createGrads, createWorkspace, forwardOps, lossOp } from "./graph.ts";

/**
 * Upload P networks (one λ each), run forward (batch statistics for BN layers) + loss + backward
 * on n samples (X row-major n × d, labels y) and read back every model's gradients (float32
 * values in float64 arrays).
 */
export async function gpuGradients(
  device: GPUDevice,
  models: Params[],
  lambdas: number[],
  X: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  opts: { bnL2?: boolean } = {},
): Promise<Grads[]> {
  const sizes = models[0].sizes;
  const bnFlags = sizes.slice(1).map((_, l) => !!models[0].bn?.[l]);
  const params = new GpuParams(device, sizes, lambdas, bnFlags);
  models.forEach((m, p) => params.upload(p, m));
  const ws = createWorkspace(params, n, true);
  uploadRows(device, ws.x, ws.xld, X, n, sizes[0]);
  writeBuffer(device, ws.y, 0, Uint32Array.from(y as ArrayLike<number>));
  const grads = createGrads(params);
  const steps = stepTable(device, [{}], "steps");
  await runOps(device, [
    ...forwardOps(params, ws, "train", steps),
    lossOp(params, ws, "train"),
    ...backwardOps(params, ws, { kind: "grads", grads }, { bnL2: opts.bnL2 }),
  ]);
  const read = (b: GPUBuffer | null) => (b ? readFloats(device, b) : Promise.resolve(null));
  const gW = await Promise.all(grads.dW.map(read));
  const gb = await Promise.all(grads.db.map(read));
  const gG = await Promise.all(grads.dGamma.map(read));
  const gB = await Promise.all(grads.dBeta.map(read));
  const out: Grads[] = models.map((_, p) => {
    const vec = (a: Float32Array | null, l: number) =>
      a ? modelVector(a, params.layers[l], p) : null;
    const g: Grads = {
      W: params.layers.map((L, l) => modelMatrix(gW[l]!, L, p)),
      b: params.layers.map((
        _,
        l,
      ) => (params.bn[l] ? new Float64Array(params.layers[l].nOut) : vec(gb[l], l)!)),
    };
    if (params.bn.some((q) => q)) {
      g.gamma = params.layers.map((_, l) => vec(gG[l], l));
      g.beta = params.layers.map((_, l) => vec(gB[l], l));
    }
    return g;
  });
  for (const b of [...grads.dW, ...grads.db, ...grads.dGamma, ...grads.dBeta]) b?.destroy();
  steps.destroy();
  ws.destroy();
  params.destroy();
  return out;
}

/**
 * Write n rows of d values into a workspace's inputs: a buffer of row stride ld, or a texture of
 * ld/4 texels per row (padding left zero).
 */
export function uploadRows(
  device: GPUDevice,
  target: GPUBuffer | GPUTexture,
  ld: number,
  X: ArrayLike<number>,
  n: number,
  d: number,
): void {
  const data = new Float32Array(n * ld);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) data[i * ld + k] = X[i * d + k];
  if (target instanceof GPUTexture) {
    device.queue.writeTexture({ texture: target }, data, { bytesPerRow: ld * 4 }, [ld / 4, n]);
  } else writeBuffer(device, target, 0, data);
}
