/**
 * Checkpoints as safetensors, in PyTorch's nn.Linear convention so that
 * `torch.nn.Linear.load_state_dict` takes them directly: `fc{l}.weight` is [out, in],
 * `fc{l}.bias` is [out] (absent for a batch-normalised layer, whose BN shift replaces it);
 * batch normalisation as nn.BatchNorm1d names it: `bn{l}.weight` (γ), `bn{l}.bias` (β),
 * `bn{l}.running_mean`, `bn{l}.running_var` (the biased variance this tool uses); the input
 * normalisation is `input.mean` and `input.std` [3072]. All tensors are F32.
 *
 * The network is fc1 → [bn1] → ReLU → fc2 → … → fcL → softmax: each hidden layer's linear part,
 * then (where present) nn.BatchNorm1d(eps=1e-5) in eval mode, then ReLU; the output layer has
 * neither BN nor ReLU.
 *
 * The inputs are NOT PyTorch's `ToTensor()` pixels in 0..1. The metadata says what they are:
 *
 * | key               | value                                                                        |
 * | ----------------- | ---------------------------------------------------------------------------- |
 * | `input.pixels`    | `uint8 0..255`: raw bytes of the CIFAR-10 binary files                       |
 * | `input.layout`    | `CHW: the R plane, then G, then B, each 32x32 row-major, flattened to 3072`  |
 * | `input.normalise` | `x = (pixels - input.mean) / input.std`, per dimension                       |
 * | `network`         | the layer order and the BN convention above, in words                        |
 * | `format`, `sizes` | {@link CHECKPOINT_FORMAT}, the layer sizes as JSON (`[3072, 50, 10]`)        |
 *
 * {@link decodeCheckpoint} refuses, with one line naming the file and the problem, anything that
 * cannot be evaluated: a missing tensor, a non-F32 dtype, a dimension of 0 (a layer of 0 units),
 * a NaN or ±Inf anywhere, an `input.std` entry ≤ 0, a negative running variance, or shapes that
 * do not chain — on top of the file-format checks of `decodeSafetensors`.
 *
 * @module
 */

import { decodeSafetensors, encodeSafetensors, type Tensor } from "../io/safetensors.ts";
import { UserError } from "../errors.ts";
import type { BnParams, Params } from "./init.ts";

/** Format tag stored in the checkpoint metadata. */
export const CHECKPOINT_FORMAT = "webgpu-mlp.checkpoint/1";

/**
 * What the network's inputs are, stored in every checkpoint's metadata (see the module doc): a
 * PyTorch user who feeds `ToTensor()` pixels (0..1) instead of these gets chance accuracy.
 */
export const INPUT_METADATA: Readonly<Record<string, string>> = {
  "input.pixels": "uint8 0..255",
  "input.layout": "CHW: the R plane, then G, then B, each 32x32 row-major, flattened to 3072",
  "input.normalise": "x = (pixels - input.mean) / input.std",
  "network": "fc1 -> [bn1] -> ReLU -> fc2 -> ... -> fcL -> softmax; bn{l}, where present, is " +
    "nn.BatchNorm1d(eps=1e-5) in eval mode, (z - running_mean) / sqrt(running_var + 1e-5) * " +
    "weight + bias, with running_var the biased variance, and fc{l} then has no bias",
};

/** A decoded checkpoint. */
export interface Checkpoint {
  /** The network, back in this tool's layout (W[l] is n_in × n_out row-major). */
  params: Params;
  /** Per-dimension mean of the raw 0..255 training pixels (`input.mean`, 3072 floats). */
  mean: Float32Array;
  /** Per-dimension standard deviation of the raw training pixels (`input.std`, 3072 floats). */
  std: Float32Array;
  /** String metadata (format, config JSON, class names JSON…). */
  metadata: Record<string, string>;
}

/** Encode parameters and normalisation statistics as safetensors bytes. */
export function encodeCheckpoint(
  params: Params,
  stats: { mean: Float32Array; std: Float32Array },
  metadata: Record<string, string> = {},
): Uint8Array {
  const tensors: Record<string, Tensor> = {
    "input.mean": { shape: [stats.mean.length], data: stats.mean },
    "input.std": { shape: [stats.std.length], data: stats.std },
  };
  params.W.forEach((w, l) => {
    const nIn = params.sizes[l], nOut = params.sizes[l + 1];
    const t = new Float32Array(nIn * nOut);
    for (let i = 0; i < nIn; i++) for (let j = 0; j < nOut; j++) t[j * nIn + i] = w[i * nOut + j];
    tensors[`fc${l + 1}.weight`] = { shape: [nOut, nIn], data: t };
    const bn = params.bn?.[l];
    if (bn) {
      const vec = (a: Float64Array) => ({ shape: [nOut], data: Float32Array.from(a) });
      tensors[`bn${l + 1}.weight`] = vec(bn.gamma);
      tensors[`bn${l + 1}.bias`] = vec(bn.beta);
      tensors[`bn${l + 1}.running_mean`] = vec(bn.mean);
      tensors[`bn${l + 1}.running_var`] = vec(bn.variance);
    } else tensors[`fc${l + 1}.bias`] = { shape: [nOut], data: Float32Array.from(params.b[l]) };
  });
  return encodeSafetensors(tensors, {
    format: CHECKPOINT_FORMAT,
    sizes: JSON.stringify(params.sizes),
    ...INPUT_METADATA,
    ...metadata,
  });
}

/** Where entry `i` of a tensor of `shape` is, as `[i0, i1, …]`. */
function position(shape: number[], i: number): string {
  const at: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    at.unshift(i % shape[d]);
    i = Math.floor(i / shape[d]);
  }
  return `[${at.join(", ")}]`;
}

/**
 * Decode a checkpoint written by {@link encodeCheckpoint}; `source` names it in errors. Anything
 * that cannot be evaluated is a one-line {@link UserError} (see the module doc).
 */
export function decodeCheckpoint(bytes: Uint8Array, source: string): Checkpoint {
  const { tensors, metadata, dtypes } = decodeSafetensors(bytes, source);
  const refuse = (why: string) => new UserError(`${source}: ${why}`);
  const used = new Set<string>();
  const need = (name: string): Tensor => {
    used.add(name);
    const t = tensors[name];
    if (!t) throw new UserError(`${source} has no tensor ${name}: not a checkpoint of this tool`);
    if (dtypes[name] !== "F32") {
      throw refuse(
        `${name} is ${dtypes[name]}; a checkpoint holds F32 tensors (in PyTorch, .float() ` +
          "the model before saving)",
      );
    }
    if (t.shape.length === 0 || t.shape.includes(0)) {
      throw refuse(
        `${name} has shape [${t.shape}]: ${
          t.shape.length === 0 ? "a scalar" : "a dimension of 0 (a layer of 0 units)"
        } cannot be evaluated; the file is corrupt or not a network`,
      );
    }
    let bad = -1, count = 0;
    for (let i = 0; i < t.data.length; i++) {
      if (!Number.isFinite(t.data[i])) {
        if (bad < 0) bad = i;
        count++;
      }
    }
    if (bad >= 0) {
      throw refuse(
        `${name} holds ${t.data[bad]} at ${position(t.shape, bad)}` +
          (count > 1 ? ` (and ${count - 1} more NaN/Inf values)` : "") +
          ": the network diverged or the file is corrupt; use the checkpoint of a completed run",
      );
    }
    return t;
  };
  const vector = (name: string, n?: number): Float32Array => {
    const t = need(name);
    if (t.shape.length !== 1 || (n !== undefined && t.shape[0] !== n)) {
      throw refuse(`${name} has shape [${t.shape}], expected [${n ?? "n"}]`);
    }
    return t.data;
  };
  const mean = vector("input.mean"), std = vector("input.std", mean.length);
  const nonPositive = std.findIndex((s) => !(s > 0));
  if (nonPositive >= 0) {
    throw refuse(
      `input.std[${nonPositive}] is ${std[nonPositive]}: inputs are divided by input.std, so ` +
        "every entry must be > 0 (this tool writes 1 for a constant pixel); the file is corrupt",
    );
  }
  const W: Float64Array[] = [], b: Float64Array[] = [];
  const bns: (BnParams | null)[] = [];
  const sizes = [mean.length];
  for (let l = 1; tensors[`fc${l}.weight`]; l++) {
    const w = need(`fc${l}.weight`);
    const [nOut, nIn] = w.shape;
    if (w.shape.length !== 2 || nIn !== sizes[l - 1]) {
      throw refuse(
        `fc${l}.weight has shape [${w.shape}] after a layer of ${sizes[l - 1]}: expected ` +
          `[units, ${sizes[l - 1]}]`,
      );
    }
    const vec = (name: string) => Float64Array.from(vector(name, nOut));
    const m = new Float64Array(nIn * nOut);
    for (let i = 0; i < nIn; i++) {
      for (let j = 0; j < nOut; j++) m[i * nOut + j] = w.data[j * nIn + i];
    }
    W.push(m);
    if (tensors[`bn${l}.weight`]) {
      if (!tensors[`fc${l + 1}.weight`]) {
        throw refuse(
          `bn${l}.weight normalises the output layer (fc${l}), which no network of this tool ` +
            "does: the file is not one of its checkpoints",
        );
      }
      if (tensors[`fc${l}.bias`]) {
        throw refuse(
          `fc${l}.bias beside bn${l}.weight: a batch-normalised layer has no bias (BN's shift ` +
            `replaces it); remove one of them`,
        );
      }
      b.push(new Float64Array(nOut));
      const variance = vec(`bn${l}.running_var`);
      const negative = variance.findIndex((v) => v < 0);
      if (negative >= 0) {
        throw refuse(
          `bn${l}.running_var[${negative}] is ${
            Math.fround(variance[negative])
          }: a variance cannot be negative; the file is corrupt`,
        );
      }
      bns.push({
        gamma: vec(`bn${l}.weight`),
        beta: vec(`bn${l}.bias`),
        mean: vec(`bn${l}.running_mean`),
        variance,
      });
    } else {
      b.push(vec(`fc${l}.bias`));
      bns.push(null);
    }
    sizes.push(nOut);
  }
  if (W.length === 0) throw new UserError(`${source} has no layers (fc1.weight missing)`);
  // a tensor left over would change the network (a layer past a gap, a stray bias) or means the
  // file is another model's: evaluated without it, the numbers would be wrong
  const extra = Object.keys(tensors).filter((name) => !used.has(name)).sort();
  if (extra.length > 0) {
    throw refuse(
      `holds ${extra.length === 1 ? "a tensor" : `${extra.length} tensors`} no network of this ` +
        `tool has (${extra.slice(0, 3).join(", ")}${extra.length > 3 ? ", …" : ""}) beside its ` +
        `${W.length} layers fc1..fc${W.length}: it is another model's checkpoint or corrupt`,
    );
  }
  const params: Params = { sizes, W, b };
  if (bns.some((q) => q)) params.bn = bns;
  return { params, mean, std, metadata };
}
