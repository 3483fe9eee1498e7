/**
 * Copies of models' state on the GPU. Compaction of a population: the state of the models that go on at a rung —
 * weights, biases, batch normalisation's γ, β and running statistics, Adam's moments: every
 * buffer a snapshot holds — copied together into the buffers of a narrower population, one
 * `copyBufferToBuffer` per row of each run of adjacent blocks, in a command encoder. Nothing
 * goes through the CPU. And {@link BlockCopier}: copies between the models of one population, for
 * population-based training.
 *
 * Every state buffer is laid out like its layer's parameters (`gpu_params.ts`): rows of P·pout
 * floats, model p's block at column p·pout. A buffer's layer is the number its label ends with
 * (`W2`, `running_var1`, `adam.m.gamma1`), its row count its size over the row.
 *
 * @module
 */

import { storageBuffer, writeBuffer } from "../gpu/buffers.ts";
import { copyBlocksOp } from "../kernels/copy.ts";
import { encodeOp, type Op } from "../kernels/op.ts";
import type { LayerLayout } from "../model/gpu_params.ts";

/** The layer (0-based) of a state buffer, from the number its label ends with. */
export function stateLayer(label: string): number {
  const m = /(\d+)$/.exec(label);
  if (!m || Number(m[1]) < 1) {
    throw new Error(`state buffer ${label}: no layer number in its label`);
  }
  return Number(m[1]) - 1;
}

/** Runs of adjacent positions in `keep`: [first position in keep, first model, length]. */
function runsOf(keep: number[]): [number, number, number][] {
  const runs: [number, number, number][] = [];
  keep.forEach((z, j) => {
    const last = runs.at(-1);
    if (last && last[1] + last[2] === z) last[2]++;
    else runs.push([j, z, 1]);
  });
  return runs;
}

/**
 * Encode into `enc` the copies that put model `keep[j]` of the population laid out by
 * `fromLayers` (buffers `from`) at position j of the one laid out by `toLayers` (buffers `to`,
 * the same labels), for every buffer of `to`. `keep` must increase. Returns the number of
 * copies encoded.
 */
export function encodeCompaction(
  enc: GPUCommandEncoder,
  from: Record<string, GPUBuffer>,
  fromLayers: LayerLayout[],
  to: Record<string, GPUBuffer>,
  toLayers: LayerLayout[],
  keep: number[],
): number {
  if (keep.some((z, j) => j > 0 && z <= keep[j - 1])) {
    throw new Error(`compaction: models ${keep.join(", ")} do not increase`);
  }
  const extra = Object.keys(from).find((label) => !(label in to));
  if (extra) throw new Error(`compaction: ${extra} has no buffer to go to`);
  const runs = runsOf(keep);
  let copies = 0;
  for (const [label, dst] of Object.entries(to)) {
    const src = from[label];
    if (!src) throw new Error(`compaction: no state buffer ${label} to copy from`);
    const l = stateLayer(label);
    const a = fromLayers[l], b = toLayers[l];
    if (!a || !b || a.pout !== b.pout) throw new Error(`compaction: ${label}: no layer ${l + 1}`);
    const rows = src.size / (4 * a.ld);
    if (!Number.isInteger(rows) || dst.size !== 4 * rows * b.ld) {
      throw new Error(
        `compaction: ${label}: ${src.size} bytes of rows of ${a.ld} floats, ${dst.size} of ${b.ld}`,
      );
    }
    for (let i = 0; i < rows; i++) {
      for (const [j, z, n] of runs) {
        enc.copyBufferToBuffer(
          src,
          4 * (i * a.ld + z * a.pout),
          dst,
          4 * (i * b.ld + j * b.pout),
          4 * n * a.pout,
        );
        copies++;
      }
    }
  }
  return copies;
}

/**
 * Copies between the models of one population, for population-based training: model m's block
 * of every state buffer becomes model origin[m]'s. For each buffer, one `copyBufferToBuffer`
 * into a scratch buffer, then one dispatch of `copy_blocks` back into it. The kernels, bind
 * groups and the two buffers are built with the copier (with the population, so that a shape
 * the device cannot copy is refused before any training).
 */
export class BlockCopier {
  readonly #device: GPUDevice;
  readonly #P: number;
  readonly #scratch: GPUBuffer;
  readonly #origin: GPUBuffer;
  readonly #ops: [GPUBuffer, Op][];

  /** Copies within the state buffers `state` of a population of P models laid out by `layers`. */
  constructor(
    device: GPUDevice,
    state: Record<string, GPUBuffer>,
    layers: LayerLayout[],
    P: number,
  ) {
    this.#device = device;
    this.#P = P;
    const buffers = Object.entries(state);
    // the layouts are checked before anything is allocated
    const shapes = buffers.map(([label, dst]) => {
      const L = layers[stateLayer(label)];
      if (!L) throw new Error(`block copy: ${label}: no layer ${stateLayer(label) + 1}`);
      const rows = dst.size / (4 * L.ld);
      if (!Number.isInteger(rows) || L.ld !== P * L.pout) {
        throw new Error(`block copy: ${label}: not rows of ${P} blocks of ${L.pout}`);
      }
      return { label, dst, rows, L };
    });
    this.#scratch = storageBuffer(
      device,
      Math.max(...buffers.map(([, b]) => b.size)) / 4,
      "pbt-scratch",
    );
    this.#origin = storageBuffer(device, P, "pbt-origin");
    try {
      this.#ops = shapes.map(({ label, dst, rows, L }): [GPUBuffer, Op] => [
        dst,
        copyBlocksOp(device, {
          src: this.#scratch,
          dst,
          origin: this.#origin,
          rows,
          ld: L.ld,
          pout: L.pout,
          P,
          label: `copy_blocks ${label}`,
        }),
      ]);
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  /**
   * Encode the copies that give model m the state of model origin[m] (one entry per model of
   * the population; origin[m] = m keeps it). Returns the dispatches encoded.
   */
  encode(enc: GPUCommandEncoder, origin: readonly number[]): number {
    const P = this.#P;
    if (origin.length !== P || origin.some((o) => !Number.isInteger(o) || o < 0 || o >= P)) {
      throw new Error(`block copy: origins ${origin.join(", ")} are not models of ${P}`);
    }
    writeBuffer(this.#device, this.#origin, 0, new Uint32Array(origin));
    for (const [buffer, op] of this.#ops) {
      enc.copyBufferToBuffer(buffer, 0, this.#scratch, 0, buffer.size);
      const pass = enc.beginComputePass();
      encodeOp(pass, op);
      pass.end();
    }
    return this.#ops.length;
  }

  /** Free the scratch and origin buffers (the state buffers are the population's). */
  destroy(): void {
    this.#scratch.destroy();
    this.#origin.destroy();
  }
}
