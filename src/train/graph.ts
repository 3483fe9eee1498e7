/**
 * The training graph: a forward pass, a loss, and a backward pass with update, for a population of
 * networks on a workspace of R rows, as a list of nodes (one per dispatch, in order) over named
 * matrices. `placeOps` (src/kernels/placement.ts) decides where each matrix lives and builds the
 * ops, once per run; they are encoded every step.
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
import { kernel, type Matrix, matrix, type Node, product } from "../kernels/placement.ts";
import { softmaxCeOp } from "../kernels/softmax_ce.ts";
import { updateOp } from "../kernels/update.ts";
import type { BnDropout } from "../nn/shared.ts";

/** Training-time options of the network: dropout and batch normalisation's settings. */
export interface NetOptions {
  /** Dropout probability after each hidden layer's ReLU (training only). */
  dropout?: number[];
  /**
   * Each model's own dropout probabilities (`[model][hidden layer]`), read by the kernels from
   * the parameters' per-model tables (`GpuParams.setDropout` writes them); overrides `dropout`.
   */
  modelDropout?: number[][];
  /** Seed of the dropout masks. */
  seed?: number;
  /** Running-statistics momentum α of batch normalisation. */
  bnAlpha?: number;
  /** L2 on γ and β. */
  bnL2?: boolean;
}

/**
 * The matrices of a forward and backward pass over R rows, for the population's shape: each is
 * R rows (or a parameter's n_in rows) with the models' blocks side by side.
 */
export interface Workspace {
  /** Rows: the mini-batch size, or the evaluation chunk size. */
  R: number;
  /** Inputs X: R rows of pad4(input dim) floats, shared by every model. */
  X: Matrix;
  /** Labels (R u32). */
  y: GPUBuffer;
  /** The weights W_1..W_L (the parameters' buffers), as operands. */
  W: Matrix[];
  /** Hidden activations H_1..H_{L−1}. */
  H: Matrix[];
  /** Per hidden layer with batch normalisation: its pre-activations Z (then Ẑ), else null. */
  pre: (Matrix | null)[];
  /** Per BN layer in training: 1/√(v + ε) of the batch, for the backward pass. */
  invStd: (GPUBuffer | null)[];
  /** Output scores, overwritten with the output gradient in training. */
  S: Matrix;
  /** Gradients of the hidden layers' outputs G_1..G_{L−1} (training workspaces only). */
  G: Matrix[];
  /** Per-row (loss, correct, predicted, 0) per model, from the evaluation loss. */
  stats: GPUBuffer;
  /** Free the buffers the workspace allocated (not the parameters'). */
  destroy(): void;
}

/** Options of {@link createWorkspace}. */
export interface WorkspaceOptions {
  /** Rows: the mini-batch size, or the evaluation chunk size. */
  rows: number;
  /** Allocate what the backward pass needs (gradients, batch statistics). */
  training: boolean;
}

/** Allocate a workspace for the population's shape (the inputs' place is left to placeOps). */
export function createWorkspace(params: GpuParams, opts: WorkspaceOptions): Workspace {
  const device = params.device;
  const { rows: R, training } = opts;
  const L = params.layers.length;
  const hidden = params.layers.slice(0, L - 1);
  const rowsOf = (label: string, ld: number, zStride: number) =>
    matrix(device, { label, rows: R, ld, zStride });
  const ws: Workspace = {
    R,
    X: matrix(device, { label: "X", rows: R, ld: pad4(params.sizes[0]), allocate: "placed" }),
    y: storageBuffer(device, R, "y"),
    W: params.layers.map((layer, l) =>
      matrix(device, {
        label: `W${l + 1}`,
        rows: layer.pin,
        ld: layer.ld,
        zStride: layer.pout,
        buffer: params.W[l],
      })
    ),
    H: hidden.map((layer, l) => rowsOf(`H${l + 1}`, layer.ld, layer.pout)),
    pre: hidden.map((layer, l) => params.bn[l] ? rowsOf(`Z${l + 1}`, layer.ld, layer.pout) : null),
    invStd: hidden.map((layer, l) =>
      training && params.bn[l] ? storageBuffer(device, layer.ld, `invStd${l + 1}`) : null
    ),
    S: rowsOf("S", params.layers[L - 1].ld, params.layers[L - 1].pout),
    G: training ? hidden.map((layer, l) => rowsOf(`G${l + 1}`, layer.ld, layer.pout)) : [],
    stats: storageBuffer(device, R * params.P * 4, "stats"),
    destroy() {
      const own = [ws.S, ...ws.H, ...ws.G, ...ws.pre].map((m) => m?.buffer);
      for (const b of [ws.y, ws.stats, ...ws.invStd, ...own]) b?.destroy();
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
    ? { Z: 1, N: (params.P - 1) * layer.pout + layer.nOut, lamColumns: layer.pout }
    : { Z: params.P, N: layer.nOut, lamColumns: undefined };
}

/** The input of layer l (0-based): X, or the previous layer's activations. */
function inputOf(ws: Workspace, l: number): Matrix {
  return l === 0 ? ws.X : ws.H[l - 1];
}

/** Options of {@link forwardPass}. */
export interface ForwardOptions {
  /**
   * `train` uses batch statistics (updating the running ones) and dropout, reading the step from
   * `steps`; `eval` (default) uses running statistics and no dropout, and `steps` (the evaluation
   * table) tells BN how many rows of a chunk are valid.
   */
  mode?: "train" | "eval";
  /** The step table. */
  steps?: GPUBuffer;
  /** Dropout and batch-norm settings. */
  net?: NetOptions;
}

/**
 * The dropout of hidden layer l (0-based) in training: the net's p, or with per-model values the
 * largest of them and the table each model's own is read from; undefined for none.
 */
function dropoutOf(
  params: GpuParams,
  net: NetOptions,
  l: number,
  seed: number,
): BnDropout | undefined {
  if (net.modelDropout) {
    const p = Math.max(...net.modelDropout.map((row) => row[l] ?? 0));
    return p > 0 ? { p, seed, layer: l, table: params.dropoutTable(l) } : undefined;
  }
  const p = net.dropout?.[l] ?? 0;
  return p > 0 ? { p, seed, layer: l } : undefined;
}

/** Forward pass: layer outputs into ws.H and ws.S, one node per op in forward order. */
export function forwardPass(params: GpuParams, ws: Workspace, opts: ForwardOptions = {}): Node[] {
  const device = params.device;
  const { mode = "eval", steps, net = {} } = opts;
  const L = params.layers.length;
  const nodes: Node[] = [];
  params.layers.forEach((layer, l) => {
    const last = l === L - 1;
    const bn = last ? null : params.bn[l];
    const dropout = mode === "train" && !last
      ? dropoutOf(params, net, l, net.seed ?? 0)
      : undefined;
    const g = grid(params, l);
    const H = inputOf(ws, l), W = ws.W[l];
    // Z = H·W + b, then ReLU (and dropout) on hidden layers; with BN, Z = H·W and BN follows
    const Z = last ? ws.S : bn ? ws.pre[l]! : ws.H[l];
    nodes.push(product({
      label: `forward${l + 1}`,
      variant: "nn",
      M: ws.R,
      N: g.N,
      K: layer.nIn,
      Z: g.Z,
      a: H,
      b: W,
      c: Z,
      epilogue: last ? "bias" : bn ? "store" : dropout ? "bias_relu_dropout" : "bias_relu",
      aux: bn ? undefined : { buffer: params.b[l] },
      steps: dropout && !bn ? steps : undefined,
      dropout: bn ? undefined : dropout,
      // per-model dropout reads its table from the per-model buffer
      lambda: dropout?.table && !bn ? { buffer: params.lambda, columns: g.lamColumns } : undefined,
    }));
    if (!bn) return;
    // H = dropout(ReLU(γ·Ẑ + β)), Ẑ the normalised Z (batch statistics in training)
    const Zl = ws.pre[l]!, Hl = ws.H[l];
    const common = {
      R: ws.R,
      n: layer.nOut,
      Z: params.P,
      ld: layer.ld,
      zStride: layer.pout,
      pre: Zl.buffer!,
      h: Hl.buffer!,
      gamma: bn.gamma,
      beta: bn.beta,
      runMean: bn.mean,
      runVar: bn.variance,
    };
    const label = mode === "train" ? `bn_forward${l + 1}` : `bn_eval${l + 1}`;
    nodes.push(
      kernel(
        label,
        { reads: [Zl], writes: [Zl, Hl] },
        () =>
          mode === "train"
            ? bnForwardTrainOp(device, {
              ...common,
              label,
              invStd: ws.invStd[l]!,
              alpha: net.bnAlpha,
              dropout,
              steps: dropout ? steps : undefined,
              lambda: params.lambda,
            })
            : bnForwardEvalOp(device, { ...common, label, steps }),
      ),
    );
  });
  return nodes;
}

/** The loss: `train` turns ws.S into the output gradient (scale 1/R); `eval` fills ws.stats. */
export function lossOf(params: GpuParams, ws: Workspace, mode: "train" | "eval"): Node {
  const out = params.layers[params.layers.length - 1];
  const label = `softmax_ce_${mode}`;
  // in training the loss is the gradient G = (softmax(S) − Y)/R, which the output layer's product
  // may compute itself (placement fuses the two when it can)
  const loss = mode === "train" ? { scores: ws.S, labels: ws.y, scale: 1 / ws.R } : undefined;
  return kernel(
    label,
    { reads: [ws.S], writes: mode === "train" ? [ws.S] : [], loss },
    () =>
      softmaxCeOp(params.device, {
        mode,
        R: ws.R,
        Z: params.P,
        C: out.nOut,
        scores: ws.S.buffer!,
        ld: out.ld,
        zStride: out.pout,
        labels: ws.y,
        stats: ws.stats,
        scale: 1 / ws.R,
      }),
  );
}

/** Gradient buffers laid out like the parameters (W, b, and γ, β of BN layers). */
export interface GradBuffers {
  /** dW_l, laid out like W_l. */
  dW: GPUBuffer[];
  /** db_l, laid out like b_l. */
  db: GPUBuffer[];
  /** dγ_l of BN layers, else null. */
  dGamma: (GPUBuffer | null)[];
  /** dβ_l of BN layers, else null. */
  dBeta: (GPUBuffer | null)[];
}

/** Allocate gradient buffers for a population's parameters. */
export function createGrads(params: GpuParams): GradBuffers {
  const d = params.device;
  const perBn = (name: string) =>
    params.layers.map((L, l) => params.bn[l] ? storageBuffer(d, L.ld, `${name}${l + 1}`) : null);
  return {
    dW: params.layers.map((L, l) => storageBuffer(d, L.pin * L.ld, `dW${l + 1}`)),
    db: params.layers.map((L, l) => storageBuffer(d, L.ld, `db${l + 1}`)),
    dGamma: perBn("dgamma"),
    dBeta: perBn("dbeta"),
  };
}

/** Where a backward pass puts its results. */
export type BackwardTarget =
  /** Update the parameters in place with SGD, η from the step table. */
  | { kind: "sgd"; steps: GPUBuffer }
  /** Write the gradients (with their L2 terms) into buffers laid out like the parameters. */
  | { kind: "grads"; grads: GradBuffers };

/** Options of {@link backwardPass}. */
export interface BackwardOptions {
  /** Dropout and batch-norm settings (as in the forward pass). */
  net?: NetOptions;
}

/** Backward pass from the output gradient in ws.S, layer L down to 1, one node per op. */
export function backwardPass(
  params: GpuParams,
  ws: Workspace,
  target: BackwardTarget,
  opts: BackwardOptions = {},
): Node[] {
  const device = params.device;
  const net = opts.net ?? {};
  const L = params.layers.length;
  const nodes: Node[] = [];
  const sgd = target.kind === "sgd";
  const grads = target.kind === "grads" ? target.grads : null;
  // the weight gradient's destination: W itself (SGD in place) or dW, laid out like W
  const dW = (l: number): Matrix =>
    sgd ? ws.W[l] : { ...ws.W[l], label: `dW${l + 1}`, parameter: false, buffer: grads!.dW[l] };
  for (let l = L - 1; l >= 0; l--) {
    const layer = params.layers[l];
    const G = l === L - 1 ? ws.S : ws.G[l];
    const bn = l === L - 1 ? null : params.bn[l];
    if (bn) {
      // G ← dL/dZ through the batch statistics; γ, β updated (SGD) or their gradients stored
      const label = `bn_backward${l + 1}`;
      nodes.push(kernel(label, { reads: [G, ws.pre[l]!], writes: [G] }, () =>
        bnBackwardOp(device, {
          label,
          R: ws.R,
          n: layer.nOut,
          Z: params.P,
          ld: layer.ld,
          zStride: layer.pout,
          g: G.buffer!,
          zhat: ws.pre[l]!.buffer!,
          invStd: ws.invStd[l]!,
          gamma: bn.gamma,
          beta: bn.beta,
          mode: sgd ? "sgd" : "store",
          dGamma: grads?.dGamma[l] ?? undefined,
          dBeta: grads?.dBeta[l] ?? undefined,
          steps: sgd ? target.steps : undefined,
          lambda: params.lambda,
          l2: !!net.bnL2,
        })));
    }
    if (l > 0) {
      // G_{l−1} = (G_l·Wᵀ) ⊙ [H_{l−1} > 0] / (1−p), before W_l is updated
      const dropout = dropoutOf(params, net, l - 1, 0);
      nodes.push(product({
        label: `backward_input${l + 1}`,
        variant: "nt",
        M: ws.R,
        N: layer.nIn,
        K: layer.nOut,
        Z: params.P,
        a: G,
        b: ws.W[l],
        c: ws.G[l - 1],
        epilogue: "relu_mask",
        aux: { buffer: ws.H[l - 1].buffer! },
        dropout,
        lambda: dropout?.table ? { buffer: params.lambda } : undefined,
      }));
    }
    // dW = Hᵀ·G + 2λW (SGD: W −= η·dW), and the bias gradient Σ_rows G from the same pass
    const g = grid(params, l);
    nodes.push(product({
      label: `backward_weights${l + 1}`,
      variant: "tn",
      M: layer.nIn,
      N: g.N,
      K: ws.R,
      Z: g.Z,
      a: inputOf(ws, l),
      b: G,
      c: dW(l),
      epilogue: sgd ? "sgd" : "grad_l2",
      aux: sgd ? undefined : { buffer: params.W[l] },
      lambda: { buffer: params.lambda, columns: g.lamColumns },
      steps: sgd ? target.steps : undefined,
      bias: bn
        ? undefined
        : { buffer: sgd ? params.b[l] : grads!.db[l], mode: sgd ? "sgd" : "store" },
    }));
  }
  return nodes;
}

/** Adam's moment buffers, one pair per trainable buffer. */
export interface AdamState {
  /** First moments, in the order of `GpuParams.trainable()`. */
  m: GPUBuffer[];
  /** Second moments, likewise. */
  v: GPUBuffer[];
  /** Free the moment buffers. */
  destroy(): void;
}

/** The optimiser step that follows a `grads` backward pass: Adam on every trainable buffer. */
export function adamStep(
  params: GpuParams,
  ws: Workspace,
  grads: GradBuffers,
  steps: GPUBuffer,
  hyper: { beta1: number; beta2: number; eps: number },
): { nodes: Node[]; state: AdamState } {
  const device = params.device;
  const pairs = params.trainable().map(({ name, buffer, layer }) => ({
    name,
    buffer,
    layer,
    // the weights are operands of the products; the other parameters are vectors
    writes: name.startsWith("W") ? [ws.W[layer]] : [],
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
  const nodes = pairs.map((p, i) =>
    kernel(`adam_${p.name}`, { writes: p.writes }, () =>
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
        lambda: params.lambda,
        layout: { ld: params.layers[p.layer].ld, pout: params.layers[p.layer].pout },
      }))
  );
  return {
    nodes,
    state: {
      m,
      v,
      destroy() {
        for (const b of [...m, ...v]) b.destroy();
      },
    },
  };
}
