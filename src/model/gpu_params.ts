/**
 * Parameters of a population of P networks (same shape, P = 1 for a single run) in GPU buffers.
 *
 * Layer l's weights for all models sit side by side in one buffer: pad4(n_in) rows of
 * P·pad4(n_out) floats, model p's n_in × n_out block starting at column p·pad4(n_out); biases
 * likewise in one row of P·pad4(n_out). Padding holds zeros. Activations use the same column
 * layout, so layer 1 is one product of the batch with all P weight blocks, and deeper layers
 * are batched over the model index. A batch-normalised layer also has γ, β and running mean and
 * variance vectors, laid out like its bias (which it does not use).
 *
 * @module
 */

import { pad4, readFloats, storageBuffer, uploadBuffer, writeBuffer } from "../gpu/buffers.ts";
import type { Params } from "./init.ts";
import { type DropoutTable, dropThreshold } from "../nn/shared.ts";

/** Records of a step table whose per-model learning rates fit in {@link GpuParams.lambda}. */
export const ETA_ROWS = 250;

/** Shape facts of one layer in the population layout. */
export interface LayerLayout {
  /** Inputs of the layer (logical width of its input activations). */
  nIn: number;
  /** Outputs of the layer (units). */
  nOut: number;
  /** pad4(nIn): rows of W, padded input width. */
  pin: number;
  /** pad4(nOut): columns one model's block occupies in W, b and the activations. */
  pout: number;
  /** Row stride of W, b and this layer's activations: P·pout. */
  ld: number;
}

/** The population layout of a network shape. */
export function layerLayouts(sizes: number[], P: number): LayerLayout[] {
  const out: LayerLayout[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const pout = pad4(sizes[l + 1]);
    out.push({ nIn: sizes[l], nOut: sizes[l + 1], pin: pad4(sizes[l]), pout, ld: P * pout });
  }
  return out;
}

/** Model p's n_in × n_out block of a matrix laid out like a layer's W (float64, row-major). */
export function modelMatrix(data: Float32Array, L: LayerLayout, p: number): Float64Array {
  const w = new Float64Array(L.nIn * L.nOut);
  for (let i = 0; i < L.nIn; i++) {
    for (let j = 0; j < L.nOut; j++) w[i * L.nOut + j] = data[i * L.ld + p * L.pout + j];
  }
  return w;
}

/** Model p's n_out entries of a vector laid out like a layer's bias (float64). */
export function modelVector(data: Float32Array, L: LayerLayout, p: number): Float64Array {
  return Float64Array.from(data.subarray(p * L.pout, p * L.pout + L.nOut));
}

/** Batch-normalisation buffers of one layer (each P·pout floats). */
export interface GpuBn {
  /** Scale γ per unit (trainable). */
  gamma: GPUBuffer;
  /** Shift β per unit (trainable; replaces the bias). */
  beta: GPUBuffer;
  /** Running mean of the pre-activations, used at evaluation time. */
  mean: GPUBuffer;
  /** Running (biased) variance of the pre-activations, used at evaluation time. */
  variance: GPUBuffer;
}

/** GPU buffers of P networks' parameters and per-model L2 strengths. */
export class GpuParams {
  /** The device that owns the buffers. */
  readonly device: GPUDevice;
  /** Layer sizes shared by every model: input dimension, hidden sizes…, classes. */
  readonly sizes: number[];
  /** Number of models in the population. */
  readonly P: number;
  /** Per layer: logical and padded widths and row stride. */
  readonly layers: LayerLayout[];
  /** W[l]: pin rows × ld floats, model p's nIn × nOut block at column p·pout. */
  readonly W: GPUBuffer[];
  /** b[l]: one row of ld floats, model p's nOut biases at p·pout. */
  readonly b: GPUBuffer[];
  /** Per layer: its batch normalisation, or null. */
  readonly bn: (GpuBn | null)[];
  /**
   * The models' per-model values: λ of model m at float m, then a table of learning rates, η of
   * model m for record r of a training step table at float P·(r + 1) + m (r < {@link ETA_ROWS}),
   * written by the trainer chunk by chunk (see shaders/eta.wgsl); then per hidden layer each
   * model's dropout threshold and scale ({@link GpuParams.dropoutTable}).
   */
  readonly lambda: GPUBuffer;

  /** Allocate zeroed parameters for `lambdas.length` models; `bn` flags hidden layers with BN. */
  constructor(device: GPUDevice, sizes: number[], lambdas: number[], bn: boolean[] = []) {
    this.device = device;
    this.sizes = [...sizes];
    this.P = lambdas.length;
    this.layers = layerLayouts(sizes, this.P);
    this.W = this.layers.map((L, l) => storageBuffer(device, L.pin * L.ld, `W${l + 1}`));
    this.b = this.layers.map((L, l) => storageBuffer(device, L.ld, `b${l + 1}`));
    this.bn = this.layers.map((L, l) =>
      bn[l] && l < this.layers.length - 1
        ? {
          gamma: storageBuffer(device, L.ld, `gamma${l + 1}`),
          beta: storageBuffer(device, L.ld, `beta${l + 1}`),
          mean: storageBuffer(device, L.ld, `running_mean${l + 1}`),
          variance: storageBuffer(device, L.ld, `running_var${l + 1}`),
        }
        : null
    );
    const values = new Float32Array(this.P * (1 + ETA_ROWS + 2 * (this.layers.length - 1)));
    values.set(lambdas);
    this.lambda = uploadBuffer(device, values, "lambda");
  }

  /** Where hidden layer l's per-model dropout thresholds and scales sit in {@link lambda}. */
  dropoutTable(l: number): DropoutTable {
    const thresholds = this.P * (1 + ETA_ROWS + 2 * l);
    return { thresholds, scales: thresholds + this.P };
  }

  /**
   * Write each model's dropout p of each hidden layer (`p[model][layer]`) into the tables the
   * kernels read with per-model dropout: the threshold's bits and the scale 1/(1 − p).
   */
  setDropout(p: number[][]): void {
    const hidden = this.layers.length - 1;
    if (p.length !== this.P || p.some((row) => row.length !== hidden)) {
      throw new Error(`dropout needs ${hidden} values for each of ${this.P} models`);
    }
    for (let l = 0; l < hidden; l++) {
      const bits = new Uint32Array(2 * this.P);
      const f = new Float32Array(bits.buffer);
      for (let m = 0; m < this.P; m++) {
        const pm = p[m][l];
        if (!(pm >= 0 && pm < 1)) throw new Error(`dropout p ${pm} outside [0, 1)`);
        bits[m] = dropThreshold(pm);
        f[this.P + m] = 1 / (1 - pm);
      }
      writeBuffer(this.device, this.lambda, 4 * this.dropoutTable(l).thresholds, bits);
    }
  }

  /** Every parameter buffer and what it holds, in a fixed order (W, b, then γ, β per layer). */
  trainable(): { name: string; buffer: GPUBuffer; layer: number }[] {
    const out: { name: string; buffer: GPUBuffer; layer: number }[] = [];
    this.layers.forEach((_, l) => {
      out.push({ name: `W${l + 1}`, buffer: this.W[l], layer: l });
      const bn = this.bn[l];
      if (bn) {
        out.push({ name: `gamma${l + 1}`, buffer: bn.gamma, layer: l });
        out.push({ name: `beta${l + 1}`, buffer: bn.beta, layer: l });
      } else out.push({ name: `b${l + 1}`, buffer: this.b[l], layer: l });
    });
    return out;
  }

  /**
   * Every buffer whose contents change in training, by a stable label: W, b, and γ, β, running
   * mean and variance of BN layers. Their raw contents are what a snapshot keeps.
   */
  state(): Record<string, GPUBuffer> {
    const out: Record<string, GPUBuffer> = {};
    this.layers.forEach((_, l) => {
      out[`W${l + 1}`] = this.W[l];
      out[`b${l + 1}`] = this.b[l];
      const bn = this.bn[l];
      if (bn) {
        out[`gamma${l + 1}`] = bn.gamma;
        out[`beta${l + 1}`] = bn.beta;
        out[`running_mean${l + 1}`] = bn.mean;
        out[`running_var${l + 1}`] = bn.variance;
      }
    });
    return out;
  }

  /** Write model p's parameters (float64, converted to float32). */
  upload(p: number, params: Params): void {
    this.layers.forEach((L, l) => {
      const rows = new Float32Array(L.nOut);
      for (let i = 0; i < L.nIn; i++) {
        for (let j = 0; j < L.nOut; j++) rows[j] = params.W[l][i * L.nOut + j];
        writeBuffer(this.device, this.W[l], 4 * (i * L.ld + p * L.pout), rows);
      }
      const at = 4 * p * L.pout;
      writeBuffer(this.device, this.b[l], at, Float32Array.from(params.b[l]));
      const bn = this.bn[l], q = params.bn?.[l];
      if (bn) {
        if (!q) throw new Error(`layer ${l + 1} has batch normalisation but the parameters do not`);
        writeBuffer(this.device, bn.gamma, at, Float32Array.from(q.gamma));
        writeBuffer(this.device, bn.beta, at, Float32Array.from(q.beta));
        writeBuffer(this.device, bn.mean, at, Float32Array.from(q.mean));
        writeBuffer(this.device, bn.variance, at, Float32Array.from(q.variance));
      }
    });
  }

  /** Read every model's parameters back (float32 values in float64 arrays). */
  async download(): Promise<Params[]> {
    const read = (b: GPUBuffer) => readFloats(this.device, b);
    const Ws = await Promise.all(this.W.map(read));
    const bs = await Promise.all(this.b.map(read));
    const bns = await Promise.all(
      this.bn.map((q) => q ? Promise.all([q.gamma, q.beta, q.mean, q.variance].map(read)) : null),
    );
    const out: Params[] = [];
    for (let p = 0; p < this.P; p++) {
      const slice = (a: Float32Array, L: LayerLayout) => modelVector(a, L, p);
      const params: Params = {
        sizes: [...this.sizes],
        W: this.layers.map((L, l) => modelMatrix(Ws[l], L, p)),
        b: this.layers.map((L, l) => slice(bs[l], L)),
      };
      if (this.bn.some((q) => q)) {
        params.bn = this.layers.map((L, l) => {
          const q = bns[l];
          return q
            ? {
              gamma: slice(q[0], L),
              beta: slice(q[1], L),
              mean: slice(q[2], L),
              variance: slice(q[3], L),
            }
            : null;
        });
      }
      out.push(params);
    }
    return out;
  }

  /** Free the buffers. */
  destroy(): void {
    for (const buf of [...this.W, ...this.b, this.lambda]) buf.destroy();
    for (const q of this.bn) {
      if (q) { for (const buf of [q.gamma, q.beta, q.mean, q.variance]) buf.destroy(); }
    }
  }
}
