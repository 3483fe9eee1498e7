/**
 * Checkpoints as safetensors, in PyTorch's nn.Linear convention so that
 * `torch.nn.Linear.load_state_dict` takes them directly: `fc{l}.weight` is [out, in],
 * `fc{l}.bias` is [out] (absent for a batch-normalised layer, whose BN shift replaces it);
 * batch normalisation as nn.BatchNorm1d names it: `bn{l}.weight` (γ), `bn{l}.bias` (β),
 * `bn{l}.running_mean`, `bn{l}.running_var` (the biased variance this tool uses); the input
 * normalisation is `input.mean` and `input.std` [3072].
 *
 * @module
 */

import { decodeSafetensors, encodeSafetensors, type Tensor } from "../io/safetensors.ts";
import { UserError } from "../errors.ts";
import type { BnParams, Params } from "./init.ts";

/** Format tag stored in the checkpoint metadata. */
export const CHECKPOINT_FORMAT = "webgpu-mlp.checkpoint/1";

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
    ...metadata,
  });
}

/** Decode a checkpoint written by {@link encodeCheckpoint}; `source` names it in errors. */
export function decodeCheckpoint(bytes: Uint8Array, source: string): Checkpoint {
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  const need = (name: string): Tensor => {
    const t = tensors[name];
    if (!t) throw new UserError(`${source} has no tensor ${name}: not a checkpoint of this tool`);
    return t;
  };
  const mean = need("input.mean").data, std = need("input.std").data;
  const W: Float64Array[] = [], b: Float64Array[] = [];
  const bns: (BnParams | null)[] = [];
  const sizes = [mean.length];
  for (let l = 1; tensors[`fc${l}.weight`]; l++) {
    const w = need(`fc${l}.weight`);
    const [nOut, nIn] = w.shape;
    const vec = (name: string) => {
      const t = need(name);
      if (t.shape.length !== 1 || t.shape[0] !== nOut) {
        throw new UserError(`${source}: ${name} has shape [${t.shape}], expected [${nOut}]`);
      }
      return Float64Array.from(t.data);
    };
    if (nIn !== sizes[l - 1]) {
      throw new UserError(
        `${source}: fc${l} has shape [${w.shape}] after a layer of ${sizes[l - 1]}`,
      );
    }
    const m = new Float64Array(nIn * nOut);
    for (let i = 0; i < nIn; i++) {
      for (let j = 0; j < nOut; j++) m[i * nOut + j] = w.data[j * nIn + i];
    }
    W.push(m);
    if (tensors[`bn${l}.weight`]) {
      b.push(new Float64Array(nOut));
      bns.push({
        gamma: vec(`bn${l}.weight`),
        beta: vec(`bn${l}.bias`),
        mean: vec(`bn${l}.running_mean`),
        variance: vec(`bn${l}.running_var`),
      });
    } else {
      b.push(vec(`fc${l}.bias`));
      bns.push(null);
    }
    sizes.push(nOut);
  }
  if (W.length === 0) throw new UserError(`${source} has no layers (fc1.weight missing)`);
  const params: Params = { sizes, W, b };
  if (bns.some((q) => q)) params.bn = bns;
  return { params, mean, std, metadata };
}
