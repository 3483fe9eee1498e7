/**
 * The dispatches of a forward pass, a loss, and a backward pass with update, for a population of
 * networks on a workspace of R rows. Built once per run; encoded every step.
 *
 * Per layer l (rows = samples, W is n_in × n_out):
 *   forward   Z = H·W + b, ReLU (and dropout) on hidden layers  matmul_nn, epilogue bias_relu(_dropout)
 *             with batch normalisation: Z = H·W                    matmul_nn, epilogue store
 *                       H = dropout(ReLU(γ·Ẑ + β))              bn_forward_train / bn_forward_eval
 *   loss      G_L = (softmax(Z_L) − Y)/B                          softmax_ce (train)
 *   backward  G_{l−1} = (G_l·Wᵀ) ⊙ [H_{l−1} > 0] / (1−p)          matmul_nt, epilogue relu_mask
 *             BN: G_l ← dL/dZ_l through the batch statistics       bn_backward (γ, β updated or stored)
 *             W −= η(H_{l−1}ᵀ·G_l + 2λW), b −= η·Σ_rows G_l          matmul_tn, epilogue sgd + bias sums
 * The input gradient of a layer is computed before its weights are updated. With Adam, the
 * backward pass stores gradients (epilogues grad_l2 / store) and update kernels follow.
 *
 * @module
 */

import { pad4, storageBuffer } from "../gpu/buffers.ts";
import type { GpuParams } from "../model/gpu_params.ts";
import { bnBackwardOp, bnForwardEvalOp, bnForwardTrainOp } from "../kernels/batchnorm.ts";
import { copyToTextureOp } from "../kernels/copy.ts";
import { matmulOp, type MatmulSpec } from "../kernels/matmul.ts";
import type { Op } from "../kernels/op.ts";
import { softmaxCeOp } from "../kernels/softmax_ce.ts";
import { updateOp } from "../kernels/update.ts";

/** Training-time options of the network: dropout and batch normalisation's settings. */
export interface NetOptions {
  /** Dropout probability after each hidden layer's ReLU (training only). */
  dropout?: number[];
  /** Seed of the dropout masks. */
  seed?: number;
  /** Running-statistics momentum α of batch normalisation. */
  bnAlpha?: number;
  /** L2 on γ and β. */
  bnL2?: boolean;
}

/**
 * Builds the op of a matrix product: {@link matmulOp} by default; tools that study the products
 * (the tile sweep of `deno task bench`) pass their own to see every spec the graph uses.
 */
export type MatmulFactory = (spec: MatmulSpec) => Op;

/** Buffers for R rows of inputs, activations and gradients. */
export interface Workspace {
  /** Rows: the mini-batch size, or the evaluation chunk size. */
  R: number;
  /**
   * Inputs: R rows of stride xld = pad4(input dim) in a buffer, or (see {@link createWorkspace})
   * an rgba32float texture of R rows × xld/4 texels that layer 1's products read as a texture.
   */
  x: GPUBuffer | GPUTexture;
  /** Row stride of `x` in floats: pad4(input dim), shared by all models. */
  xld: number;
  /** Labels (R u32). */
  y: GPUBuffer;
  /** Hidden activations H_1..H_{L−1}, each R × ld of its layer. */
  H: GPUBuffer[];
  /** Per hidden layer with batch normalisation: its pre-activations Z (then Ẑ), else null. */
  pre: (GPUBuffer | null)[];
  /** Per BN layer in training: 1/√(v + ε) of the batch, for the backward pass. */
  invStd: (GPUBuffer | null)[];
  /** Output scores, overwritten with the output gradient in training. */
  S: GPUBuffer;
  /** Gradients of the hidden layers' outputs (training workspaces only). */
  G: GPUBuffer[];
  /** Per-row (loss, correct, predicted, 0) per model, from the evaluation loss. */
  stats: GPUBuffer;
  /**
   * Training with textures, layer 1 without BN in a net of 2+ layers: a texture copy of G_1 (R rows
   * × ld/4 texels), written by layer 2's input-gradient product alongside ws.G[0] and read by
   * layer 1's weight-gradient product as its B operand. Null otherwise.
   */
  g1: GPUTexture | null;
  /**
   * With textures, when asked for: a texture copy of W_1 (pin rows × ld/4 texels) that layer 1's
   * forward product reads as its B operand. {@link mirrorOps} brings it up to date from the buffer;
   * in training with SGD, the epilogue of layer 1's weight-gradient product then keeps it current.
   * Null otherwise.
   */
  w1: GPUTexture | null;
  /** Free every buffer of the workspace. */
  destroy(): void;
}

/**
 * Allocate a workspace of R rows for the population's shape. With `textures` (and when the
 * inputs fit the device's texture size), the inputs live in a texture: the gather kernel writes
 * it and layer 1's products read it with texel loads, which llvmpipe serves far faster than
 * buffer loads.
 */
export function createWorkspace(
  params: GpuParams,
  R: number,
  training: boolean,
  textures = false,
  /**
   * Keep a texture copy of W_1 ({@link Workspace.w1}): for evaluation, or training with SGD (not
   * Adam, whose update kernel would leave the copy behind).
   */
  mirrorW1 = false,
): Workspace {
  const device = params.device;
  const L = params.layers.length;
  const xld = pad4(params.sizes[0]);
  const maxSide = device.limits.maxTextureDimension2D;
  const fits = (quads: number, rows: number) => quads <= maxSide && rows <= maxSide;
  const xTexture = textures && fits(xld / 4, R);
  const first = params.layers[0];
  const texture = (label: string, quads: number, rows: number, copy = 0) =>
    device.createTexture({
      label,
      size: [quads, rows],
      format: "rgba32float",
      usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.TEXTURE_BINDING | copy,
    });
  const g1 = training && xTexture && L > 1 && !params.bn[0] &&
      fits(first.ld / 4, R)
    ? texture("G1", first.ld / 4, R)
    : null;
  const w1 = xTexture && mirrorW1 && fits(first.ld / 4, first.pin)
    ? texture("W1", first.ld / 4, first.pin)
    : null;
  const hidden = params.layers.slice(0, L - 1);
  const ws: Workspace = {
    R,
    // X can be read back, and written from the CPU (uploadRows in gpu_grads.ts), like a buffer
    x: xTexture
      ? texture("X", xld / 4, R, GPUTextureUsage.COPY_SRC | GPUTextureUsage.COPY_DST)
      : storageBuffer(device, R * xld, "X"),
    xld,
    y: storageBuffer(device, R, "y"),
    H: hidden.map((layer, l) => storageBuffer(device, R * layer.ld, `H${l + 1}`)),
    pre: hidden.map((layer, l) =>
      params.bn[l] ? storageBuffer(device, R * layer.ld, `Z${l + 1}`) : null
    ),
    invStd: hidden.map((layer, l) =>
      training && params.bn[l] ? storageBuffer(device, layer.ld, `invStd${l + 1}`) : null
    ),
    S: storageBuffer(device, R * params.layers[L - 1].ld, "S"),
    G: training ? hidden.map((layer, l) => storageBuffer(device, R * layer.ld, `G${l + 1}`)) : [],
    stats: storageBuffer(device, R * params.P * 4, "stats"),
    g1,
    w1,
    destroy() {
      const all = [ws.x, ws.y, ws.S, ws.stats, ...ws.H, ...ws.G, ...ws.pre, ...ws.invStd, g1, w1];
      for (const b of all) b?.destroy();
    },
  };
  return ws;
}

/**
 * How layer l's products are batched over the population. Layer 1's input X is shared, so its
 * products run as one wide product over the P weight blocks side by side (Z = 1, N spanning every
 * block, padding columns between blocks computing zeros; λ per block of pout columns), which
 * tiles far better than P narrow ones. Deeper layers run P products in one dispatch (Z = P).
 */
function grid(params: GpuParams, l: number) {
  const layer = params.layers[l];
  return l === 0
    ? { Z: 1, N: (params.P - 1) * layer.pout + layer.nOut, zStride: 0, lamColumns: layer.pout }
    : { Z: params.P, N: layer.nOut, zStride: layer.pout, lamColumns: undefined };
}

function inputOf(params: GpuParams, ws: Workspace, l: number) {
  if (l === 0 && ws.x instanceof GPUTexture) return { texture: ws.x };
  return l === 0
    ? { buffer: ws.x as GPUBuffer, ld: ws.xld, zStride: 0 }
    : { buffer: ws.H[l - 1], ld: params.layers[l - 1].ld, zStride: params.layers[l - 1].pout };
}

/**
 * Forward pass: layer outputs into ws.H and ws.S. `train` uses batch statistics (updating the
 * running ones) and dropout, reading the step from `steps`; `eval` uses running statistics and no
 * dropout, and `steps` (the evaluation table) tells BN how many rows of a chunk are valid.
 */
export function forwardOps(
  params: GpuParams,
  ws: Workspace,
  mode: "train" | "eval" = "eval",
  steps?: GPUBuffer,
  opts: NetOptions = {},
  matmul: MatmulFactory = (spec) => matmulOp(params.device, spec),
): Op[] {
  const device = params.device;
  const L = params.layers.length;
  const ops: Op[] = [];
  params.layers.forEach((layer, l) => {
    const last = l === L - 1;
    const bn = last ? null : params.bn[l];
    const p = mode === "train" && !last ? opts.dropout?.[l] ?? 0 : 0;
    const dropout = p > 0 ? { p, seed: opts.seed ?? 0, layer: l } : undefined;
    const shape = { R: ws.R, n: layer.nOut, Z: params.P, ld: layer.ld, zStride: layer.pout };
    const g = grid(params, l);
    ops.push(matmul({
      label: `forward${l + 1}`,
      variant: "nn",
      M: ws.R,
      N: g.N,
      K: layer.nIn,
      Z: g.Z,
      a: inputOf(params, ws, l),
      b: l === 0 && ws.w1
        ? { texture: ws.w1, zStride: g.zStride }
        : { buffer: params.W[l], ld: layer.ld, zStride: g.zStride },
      c: { buffer: last ? ws.S : bn ? ws.pre[l]! : ws.H[l], ld: layer.ld, zStride: g.zStride },
      epilogue: last ? "bias" : bn ? "store" : dropout ? "bias_relu_dropout" : "bias_relu",
      aux: bn ? undefined : { buffer: params.b[l] },
      steps: dropout && !bn ? steps : undefined,
      dropout: bn ? undefined : dropout,
    }));
    if (!bn) return;
    const common = {
      ...shape,
      pre: ws.pre[l]!,
      h: ws.H[l],
      gamma: bn.gamma,
      beta: bn.beta,
      runMean: bn.mean,
      runVar: bn.variance,
    };
    ops.push(
      mode === "train"
        ? bnForwardTrainOp(device, {
          ...common,
          label: `bn_forward${l + 1}`,
          invStd: ws.invStd[l]!,
          alpha: opts.bnAlpha,
          dropout,
          steps: dropout ? steps : undefined,
        })
        : bnForwardEvalOp(device, { ...common, label: `bn_eval${l + 1}`, steps }),
    );
  });
  return ops;
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

/** Gradient buffers laid out like the parameters (W, b, and γ, β of BN layers). */
export interface GradBuffers {
  dW: GPUBuffer[];
  db: GPUBuffer[];
  dGamma: (GPUBuffer | null)[];
  dBeta: (GPUBuffer | null)[];
}

/** Allocate gradient buffers for a population's parameters. */
export function createGrads(params: GpuParams): GradBuffers {
  const d = params.device;
  return {
    dW: params.layers.map((L, l) => storageBuffer(d, L.pin * L.ld, `dW${l + 1}`)),
    db: params.layers.map((L, l) => storageBuffer(d, L.ld, `db${l + 1}`)),
    dGamma: params.layers.map((
      L,
      l,
    ) => (params.bn[l] ? storageBuffer(d, L.ld, `dgamma${l + 1}`) : null)),
    dBeta: params.layers.map((
      L,
      l,
    ) => (params.bn[l] ? storageBuffer(d, L.ld, `dbeta${l + 1}`) : null)),
  };
}

/** Where a backward pass puts its results. */
export type BackwardTarget =
  /** Update the parameters in place with SGD, η from the step table. */
  | { kind: "sgd"; steps: GPUBuffer }
  /** Write the gradients (with their L2 terms) into buffers laid out like the parameters. */
  | { kind: "grads"; grads: GradBuffers };

/** Backward pass from the output gradient in ws.S, layer L down to 1. */
export function backwardOps(
  params: GpuParams,
  ws: Workspace,
  target: BackwardTarget,
  opts: NetOptions = {},
  matmul: MatmulFactory = (spec) => matmulOp(params.device, spec),
): Op[] {
  const device = params.device;
  const L = params.layers.length;
  const ops: Op[] = [];
  const sgd = target.kind === "sgd";
  const grads = target.kind === "grads" ? target.grads : null;
  for (let l = L - 1; l >= 0; l--) {
    const layer = params.layers[l];
    const g = l === L - 1 ? ws.S : ws.G[l];
    const gOp = { buffer: g, ld: layer.ld, zStride: layer.pout };
    const bn = l === L - 1 ? null : params.bn[l];
    if (bn) {
      ops.push(bnBackwardOp(device, {
        label: `bn_backward${l + 1}`,
        R: ws.R,
        n: layer.nOut,
        Z: params.P,
        ld: layer.ld,
        zStride: layer.pout,
        g,
        zhat: ws.pre[l]!,
        invStd: ws.invStd[l]!,
        gamma: bn.gamma,
        beta: bn.beta,
        mode: sgd ? "sgd" : "store",
        dGamma: grads?.dGamma[l] ?? undefined,
        dBeta: grads?.dBeta[l] ?? undefined,
        steps: sgd ? target.steps : undefined,
        lambda: params.lambda,
        l2: !!opts.bnL2,
      }));
    }
    if (l > 0) {
      const prev = params.layers[l - 1];
      const p = opts.dropout?.[l - 1] ?? 0;
      ops.push(matmul({
        label: `backward_input${l + 1}`,
        variant: "nt",
        M: ws.R,
        N: layer.nIn,
        K: layer.nOut,
        Z: params.P,
        a: gOp,
        b: { buffer: params.W[l], ld: layer.ld, zStride: layer.pout },
        c: { buffer: ws.G[l - 1], ld: prev.ld, zStride: prev.pout },
        mirror: l === 1 ? ws.g1 ?? undefined : undefined,
        epilogue: "relu_mask",
        aux: { buffer: ws.H[l - 1] },
        dropout: p > 0 ? { p, seed: 0, layer: l - 1 } : undefined,
      }));
    }
    // dW = Hᵀ·G (+ 2λW), with the bias gradient Σ_rows G from the same pass (BN layers have none)
    const wg = grid(params, l);
    ops.push(matmul({
      label: `backward_weights${l + 1}`,
      variant: "tn",
      M: layer.nIn,
      N: wg.N,
      K: ws.R,
      Z: wg.Z,
      a: inputOf(params, ws, l),
      b: l === 0 && ws.g1
        ? { texture: ws.g1, zStride: wg.zStride }
        : { buffer: g, ld: layer.ld, zStride: wg.zStride },
      c: { buffer: sgd ? params.W[l] : grads!.dW[l], ld: layer.ld, zStride: wg.zStride },
      mirror: l === 0 && sgd && ws.w1 ? ws.w1 : undefined,
      epilogue: sgd ? "sgd" : "grad_l2",
      aux: sgd ? undefined : { buffer: params.W[l] },
      lambda: { buffer: params.lambda, columns: wg.lamColumns },
      steps: sgd ? target.steps : undefined,
      bias: bn
        ? undefined
        : { buffer: sgd ? params.b[l] : grads!.db[l], mode: sgd ? "sgd" : "store" },
    }));
  }
  return ops;
}

/**
 * Ops that bring the workspace's texture copies of parameters up to date from their buffers
 * (W_1 into ws.w1): encode them before a run of training steps, after any write to the buffers.
 */
export function mirrorOps(params: GpuParams, ws: Workspace): Op[] {
  if (!ws.w1) return [];
  const first = params.layers[0];
  return [copyToTextureOp(params.device, {
    label: "mirror_W1",
    src: params.W[0],
    ld: first.ld,
    dst: ws.w1,
    width: first.ld / 4,
    height: first.pin,
  })];
}

/** Adam's moment buffers, one pair per trainable buffer. */
export interface AdamState {
  m: GPUBuffer[];
  v: GPUBuffer[];
  destroy(): void;
}

/** The optimiser step that follows a `grads` backward pass: Adam on every trainable buffer. */
export function adamOps(
  params: GpuParams,
  grads: GradBuffers,
  steps: GPUBuffer,
  hyper: { beta1: number; beta2: number; eps: number },
): { ops: Op[]; state: AdamState } {
  const device = params.device;
  const pairs = params.trainable().map(({ name, buffer, layer }) => ({
    name,
    buffer,
    grad: name.startsWith("W")
      ? grads.dW[layer]
      : name.startsWith("b")
      ? grads.db[layer]
      : name.startsWith("gamma")
      ? grads.dGamma[layer]!
      : grads.dBeta[layer]!,
  }));
  const m = pairs.map((p) => storageBuffer(device, p.buffer.size / 4, `m_${p.name}`));
  const v = pairs.map((p) => storageBuffer(device, p.buffer.size / 4, `v_${p.name}`));
  const ops = pairs.map((p, i) =>
    updateOp(device, {
      label: `adam_${p.name}`,
      kind: "adam",
      param: p.buffer,
      grad: p.grad,
      m: m[i],
      v: v[i],
      n: p.buffer.size / 4,
      ...hyper,
      steps,
    })
  );
  return {
    ops,
    state: {
      m,
      v,
      destroy() {
        for (const b of [...m, ...v]) b.destroy();
      },
    },
  };
}
