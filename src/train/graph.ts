/**
 * The dispatches of a forward pass, a loss, and a backward pass with update, for a population of
 * networks on a workspace of R rows. Built once per run; encoded every step.
 *
 * Per layer l (rows = samples, W is n_in × n_out):
 *   forward   Z = H·W + b, ReLU on hidden layers           matmul_nn, epilogue bias(+relu)
 *   loss      G_L = (softmax(Z_L) − Y)/B                     softmax_ce (train)
 *   backward  G_{l−1} = (G_l·Wᵀ) ⊙ [H_{l−1} > 0]            matmul_nt, epilogue relu_mask
 *             W −= η(H_{l−1}ᵀ·G_l + 2λW)                     matmul_tn, epilogue sgd
 *             b −= η·Σ_rows G_l                              colsum, sgd
 * The input gradient of a layer is computed before its weights are updated.
 *
 * @module
 */

import { pad4, storageBuffer } from "../gpu/buffers.ts";
import type { GpuParams } from "../model/gpu_params.ts";
import { colsumOp } from "../kernels/colsum.ts";
import { matmulOp } from "../kernels/matmul.ts";
import type { Op } from "../kernels/op.ts";
import { softmaxCeOp } from "../kernels/softmax_ce.ts";

/** Buffers for R rows of inputs, activations and gradients. */
export interface Workspace {
  R: number;
  /** Inputs: R rows of stride xld = pad4(input dim). */
  x: GPUBuffer;
  xld: number;
  /** Labels (R u32). */
  y: GPUBuffer;
  /** Hidden activations H_1..H_{L−1}, each R × ld of its layer. */
  H: GPUBuffer[];
  /** Output scores, overwritten with the output gradient in training. */
  S: GPUBuffer;
  /** Gradients of the hidden layers' outputs (training workspaces only). */
  G: GPUBuffer[];
  /** Per-row (loss, correct, predicted, 0) per model, from the evaluation loss. */
  stats: GPUBuffer;
  destroy(): void;
}

/** Allocate a workspace of R rows for the population's shape. */
export function createWorkspace(params: GpuParams, R: number, training: boolean): Workspace {
  const device = params.device;
  const L = params.layers.length;
  const xld = pad4(params.sizes[0]);
  const hidden = params.layers.slice(0, L - 1);
  const ws: Workspace = {
    R,
    x: storageBuffer(device, R * xld, "X"),
    xld,
    y: storageBuffer(device, R, "y"),
    H: hidden.map((layer, l) => storageBuffer(device, R * layer.ld, `H${l + 1}`)),
    S: storageBuffer(device, R * params.layers[L - 1].ld, "S"),
    G: training ? hidden.map((layer, l) => storageBuffer(device, R * layer.ld, `G${l + 1}`)) : [],
    stats: storageBuffer(device, R * params.P * 4, "stats"),
    destroy() {
      for (const b of [ws.x, ws.y, ws.S, ws.stats, ...ws.H, ...ws.G]) b.destroy();
    },
  };
  return ws;
}

/** Forward pass: layer outputs into ws.H and ws.S. */
export function forwardOps(params: GpuParams, ws: Workspace): Op[] {
  const device = params.device;
  const L = params.layers.length;
  return params.layers.map((layer, l) => {
    const input = l === 0
      ? { buffer: ws.x, ld: ws.xld, zStride: 0 }
      : { buffer: ws.H[l - 1], ld: params.layers[l - 1].ld, zStride: params.layers[l - 1].pout };
    const last = l === L - 1;
    return matmulOp(device, {
      label: `forward${l + 1}`,
      variant: "nn",
      M: ws.R,
      N: layer.nOut,
      K: layer.nIn,
      Z: params.P,
      a: input,
      b: { buffer: params.W[l], ld: layer.ld, zStride: layer.pout },
      c: { buffer: last ? ws.S : ws.H[l], ld: layer.ld, zStride: layer.pout },
      epilogue: last ? "bias" : "bias_relu",
      aux: { buffer: params.b[l] },
    });
  });
}

/** The loss: `train` turns ws.S into the output gradient (scale 1/R); `eval` fills ws.stats. */
export function lossOp(params: GpuParams, ws: Workspace, mode: "train" | "eval"): Op {
  const out = params.layers[params.layers.length - 1];
  return softmaxCeOp(params.device, {
    mode,
    R: ws.R,
    Z: params.P,
    C: out.nOut,
    scores: ws.S,
    ld: out.ld,
    zStride: out.pout,
    labels: ws.y,
    stats: ws.stats,
    scale: 1 / ws.R,
  });
}

/** Where a backward pass puts its results. */
export type BackwardTarget =
  /** Update the parameters in place with SGD, η from the step table. */
  | { kind: "sgd"; steps: GPUBuffer }
  /** Write the gradients (with the L2 term) into buffers laid out like W and b. */
  | { kind: "grads"; dW: GPUBuffer[]; db: GPUBuffer[] };

/** Backward pass from the output gradient in ws.S, layer L down to 1. */
export function backwardOps(params: GpuParams, ws: Workspace, target: BackwardTarget): Op[] {
  const device = params.device;
  const L = params.layers.length;
  const ops: Op[] = [];
  for (let l = L - 1; l >= 0; l--) {
    const layer = params.layers[l];
    const g = l === L - 1 ? ws.S : ws.G[l];
    const gOp = { buffer: g, ld: layer.ld, zStride: layer.pout };
    if (l > 0) {
      const prev = params.layers[l - 1];
      ops.push(matmulOp(device, {
        label: `backward_input${l + 1}`,
        variant: "nt",
        M: ws.R,
        N: layer.nIn,
        K: layer.nOut,
        Z: params.P,
        a: gOp,
        b: { buffer: params.W[l], ld: layer.ld, zStride: layer.pout },
        c: { buffer: ws.G[l - 1], ld: prev.ld, zStride: prev.pout },
        epilogue: "relu_mask",
        aux: { buffer: ws.H[l - 1] },
      }));
    }
    const input = l === 0
      ? { buffer: ws.x, ld: ws.xld, zStride: 0 }
      : { buffer: ws.H[l - 1], ld: params.layers[l - 1].ld, zStride: params.layers[l - 1].pout };
    const sgd = target.kind === "sgd";
    ops.push(matmulOp(device, {
      label: `backward_weights${l + 1}`,
      variant: "tn",
      M: layer.nIn,
      N: layer.nOut,
      K: ws.R,
      Z: params.P,
      a: input,
      b: gOp,
      c: { buffer: sgd ? params.W[l] : target.dW[l], ld: layer.ld, zStride: layer.pout },
      epilogue: sgd ? "sgd" : "grad_l2",
      aux: sgd ? undefined : { buffer: params.W[l] },
      lambda: { buffer: params.lambda },
      steps: sgd ? target.steps : undefined,
    }));
    ops.push(colsumOp(device, {
      label: `backward_bias${l + 1}`,
      R: ws.R,
      N: layer.nOut,
      Z: params.P,
      g,
      ld: layer.ld,
      zStride: layer.pout,
      out: sgd ? params.b[l] : target.db[l],
      mode: sgd ? "sgd" : "store",
      steps: sgd ? target.steps : undefined,
    }));
  }
  return ops;
}
