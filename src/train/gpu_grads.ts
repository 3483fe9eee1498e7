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
import { backwardPass, createGrads, createWorkspace, forwardPass, lossOf } from "./graph.ts";
import { placeOps, writeRows } from "../kernels/placement.ts";

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
  const ws = createWorkspace(params, { rows: n, training: true });
  const grads = createGrads(params);
  const steps = stepTable(device, [{}], "steps");
  const placed = placeOps(device, [
    ...forwardPass(params, ws, { mode: "train", steps }),
    lossOf(params, ws, "train"),
    ...backwardPass(params, ws, { kind: "grads", grads }, { net: { bnL2: opts.bnL2 } }),
  ]);
  writeRows(device, ws.X, X, n, sizes[0]);
  writeBuffer(device, ws.y, 0, Uint32Array.from(y as ArrayLike<number>));
  await runOps(device, placed.ops);
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
  placed.destroy();
  params.destroy();
  return out;
}
