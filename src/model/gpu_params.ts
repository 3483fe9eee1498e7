/**
 * Parameters of a population of P networks (same shape, P = 1 for a single run) in GPU buffers.
 *
 * Layer l's weights for all models sit side by side in one buffer: pad4(n_in) rows of
 * P·pad4(n_out) floats, model p's n_in × n_out block starting at column p·pad4(n_out); biases
 * likewise in one row of P·pad4(n_out). Padding holds zeros. Activations use the same column
 * layout, so layer 1 is one product of the batch with all P weight blocks, and deeper layers
 * are batched over the model index.
 *
 * @module
 */

import { pad4, readFloats, storageBuffer, uploadBuffer, writeBuffer } from "../gpu/buffers.ts";
import type { Params } from "./init.ts";

/** Shape facts of one layer in the population layout. */
export interface LayerLayout {
  nIn: number;
  nOut: number;
  /** Padded widths. */
  pin: number;
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

/** GPU buffers of P networks' parameters and per-model L2 strengths. */
export class GpuParams {
  readonly device: GPUDevice;
  readonly sizes: number[];
  readonly P: number;
  readonly layers: LayerLayout[];
  readonly W: GPUBuffer[];
  readonly b: GPUBuffer[];
  /** λ of each model (P floats). */
  readonly lambda: GPUBuffer;

  constructor(device: GPUDevice, sizes: number[], lambdas: number[]) {
    this.device = device;
    this.sizes = [...sizes];
    this.P = lambdas.length;
    this.layers = layerLayouts(sizes, this.P);
    this.W = this.layers.map((L, l) => storageBuffer(device, L.pin * L.ld, `W${l + 1}`));
    this.b = this.layers.map((L, l) => storageBuffer(device, L.ld, `b${l + 1}`));
    this.lambda = uploadBuffer(device, Float32Array.from(lambdas), "lambda");
  }

  /** Write model p's parameters (float64, converted to float32). */
  upload(p: number, params: Params): void {
    this.layers.forEach((L, l) => {
      const rows = new Float32Array(L.nOut);
      for (let i = 0; i < L.nIn; i++) {
        for (let j = 0; j < L.nOut; j++) rows[j] = params.W[l][i * L.nOut + j];
        writeBuffer(this.device, this.W[l], 4 * (i * L.ld + p * L.pout), rows);
      }
      writeBuffer(this.device, this.b[l], 4 * p * L.pout, Float32Array.from(params.b[l]));
    });
  }

  /** Read every model's parameters back (float32 values in float64 arrays). */
  async download(): Promise<Params[]> {
    const Ws = await Promise.all(this.W.map((w) => readFloats(this.device, w)));
    const bs = await Promise.all(this.b.map((b) => readFloats(this.device, b)));
    const out: Params[] = [];
    for (let p = 0; p < this.P; p++) {
      out.push({
        sizes: [...this.sizes],
        W: this.layers.map((L, l) => {
          const w = new Float64Array(L.nIn * L.nOut);
          for (let i = 0; i < L.nIn; i++) {
            for (let j = 0; j < L.nOut; j++) w[i * L.nOut + j] = Ws[l][i * L.ld + p * L.pout + j];
          }
          return w;
        }),
        b: this.layers.map((L, l) =>
          Float64Array.from(bs[l].subarray(p * L.pout, p * L.pout + L.nOut))
        ),
      });
    }
    return out;
  }

  /** Free the buffers. */
  destroy(): void {
    for (const buf of [...this.W, ...this.b, this.lambda]) buf.destroy();
  }
}
