/**
 * Float64 twin of `shaders/tail.wgsl`: the top one or two layers of an SGD step (forward, softmax
 * cross-entropy gradient, input gradients, in-place updates) as the products the tail replaces,
 * each through {@link matmulRef}, in the tail's order.
 *
 * @module
 */

import { matmulRef, type RefOperand } from "./matmul.ts";

/** One layer of the tail in the population layout; W and b are updated in place. */
export interface TailRefLayer {
  /** Outputs of the layer. */
  nOut: number;
  /** Row stride of W, b and the activations (P·pout). */
  ld: number;
  /** pad4(nOut): the columns of one model's block. */
  pout: number;
  /** W, rows of the layer's inputs. */
  W: Float64Array;
  /** b, one row. */
  b: Float64Array;
}

/** Arguments of {@link tailRef}; mirrors `TailSpec` of src/kernels/tail.ts. */
export interface TailRefSpec {
  /** Rows and models. */
  R: number;
  P: number;
  /** The tail's input H_in. */
  input: { data: ArrayLike<number>; nIn: number; ld: number; zStride: number };
  /** Dropout probability of H_in (its gradient's scale). */
  inputDropout?: number;
  /** The hidden layer under the output layer, if the tail has two. */
  hidden?: TailRefLayer & { dropout?: { p: number; seed: number; layer: number } };
  /** The output layer. */
  out: TailRefLayer;
  /** Labels, one per row. */
  labels: ArrayLike<number>;
  /** λ per model. */
  lambda: ArrayLike<number>;
  /** Learning rate and step (the step seeds dropout). */
  eta: number;
  step: number;
}

/** Run the tail's step in float64: updates the layers' W and b, returns G_in (laid out like H_in). */
export function tailRef(s: TailRefSpec): Float64Array {
  const { R, P, input, hidden, out } = s;
  const H: RefOperand = { data: input.data, ld: input.ld, zStride: input.zStride };
  const rows = (l: TailRefLayer) => new Float64Array(R * l.ld);
  const lambda = { data: s.lambda };
  const gIn = new Float64Array(R * input.ld);
  // the output layer's input: the hidden layer's activations, or H_in
  let X = H, kOut = input.nIn, Ha: Float64Array | null = null;
  if (hidden) {
    Ha = rows(hidden);
    matmulRef({
      variant: "nn",
      M: R,
      N: hidden.nOut,
      K: input.nIn,
      Z: P,
      a: H,
      b: { data: hidden.W, ld: hidden.ld, zStride: hidden.pout },
      c: { data: Ha, ld: hidden.ld, zStride: hidden.pout },
      epilogue: hidden.dropout?.p ? "bias_relu_dropout" : "bias_relu",
      aux: { data: hidden.b },
      dropout: hidden.dropout?.p ? hidden.dropout : undefined,
      step: s.step,
    });
    X = { data: Ha, ld: hidden.ld, zStride: hidden.pout };
    kOut = hidden.nOut;
  }
  const S = rows(out);
  const Wo = { data: out.W, ld: out.ld, zStride: out.pout };
  matmulRef({
    variant: "nn",
    M: R,
    N: out.nOut,
    K: kOut,
    Z: P,
    a: X,
    b: Wo,
    c: { data: S, ld: out.ld, zStride: out.pout },
    epilogue: "bias_softmax_ce",
    aux: { data: out.b },
    softmax: { labels: s.labels, scale: 1 / R },
  });
  const G = { data: S, ld: out.ld, zStride: out.pout };
  // the output layer's input gradient, before its weights change
  const Ga = hidden ? rows(hidden) : gIn;
  matmulRef({
    variant: "nt",
    M: R,
    N: kOut,
    K: out.nOut,
    Z: P,
    a: G,
    b: Wo,
    c: { data: Ga, ld: X.ld, zStride: X.zStride },
    epilogue: "relu_mask",
    aux: { data: X.data },
    dropout: hidden
      ? (hidden.dropout?.p ? hidden.dropout : undefined)
      : (s.inputDropout ? { p: s.inputDropout, seed: 0, layer: 0 } : undefined),
  });
  const sgd = (l: TailRefLayer, a: RefOperand, b: RefOperand, M: number) =>
    matmulRef({
      variant: "tn",
      M,
      N: l.nOut,
      K: R,
      Z: P,
      a,
      b,
      c: { data: l.W, ld: l.ld, zStride: l.pout },
      epilogue: "sgd",
      lambda,
      eta: s.eta,
      bias: { data: l.b, mode: "sgd" },
    });
  sgd(out, X, G, kOut);
  if (hidden) {
    const GaOp = { data: Ga, ld: hidden.ld, zStride: hidden.pout };
    matmulRef({
      variant: "nt",
      M: R,
      N: input.nIn,
      K: hidden.nOut,
      Z: P,
      a: GaOp,
      b: { data: hidden.W, ld: hidden.ld, zStride: hidden.pout },
      c: { data: gIn, ld: input.ld, zStride: input.zStride },
      epilogue: "relu_mask",
      aux: { data: input.data },
      dropout: s.inputDropout ? { p: s.inputDropout, seed: 0, layer: 0 } : undefined,
    });
    sgd(hidden, H, GaOp, input.nIn);
  }
  return gIn;
}
