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
 * into a scratch buffer, then one dispatch of `copy_blocks` back into it (kernels and bind
 * groups built on first use, once per population).
 */
export class BlockCopier {
  readonly #device: GPUDevice;
  readonly #state: Record<string, GPUBuffer>;
  readonly #layers: LayerLayout[];
  #ready: { scratch: GPUBuffer; origin: GPUBuffer; ops: [GPUBuffer, Op][] } | null = null;

  /** Copies within the state buffers `state` of a population laid out by `layers`. */
  constructor(device: GPUDevice, state: Record<string, GPUBuffer>, layers: LayerLayout[]) {
    this.#device = device;
    this.#state = state;
    this.#layers = layers;
  }

  /**
   * Encode the copies that give model m the state of model origin[m] (one entry per model of
   * the population; origin[m] = m keeps it). Returns the dispatches encoded.
   */
  encode(enc: GPUCommandEncoder, origin: readonly number[]): number {
    const ready = this.#build(origin.length);
    if (origin.some((o) => !Number.isInteger(o) || o < 0 || o >= origin.length)) {
      throw new Error(
        `block copy: origins ${origin.join(", ")} are not models of ${origin.length}`,
      );
    }
    writeBuffer(this.#device, ready.origin, 0, new Uint32Array(origin));
    for (const [buffer, op] of ready.ops) {
      enc.copyBufferToBuffer(buffer, 0, ready.scratch, 0, buffer.size);
      const pass = enc.beginComputePass();
      encodeOp(pass, op);
      pass.end();
    }
    return ready.ops.length;
  }

  /** Free the scratch and origin buffers (the state buffers are the population's). */
  destroy(): void {
    this.#ready?.scratch.destroy();
    this.#ready?.origin.destroy();
    this.#ready = null;
  }

  #build(P: number) {
    if (this.#ready) return this.#ready;
    const device = this.#device;
    const buffers = Object.entries(this.#state);
    const size = Math.max(...buffers.map(([, b]) => b.size));
    const scratch = storageBuffer(device, size / 4, "pbt-scratch");
    const origin = storageBuffer(device, P, "pbt-origin");
    const ops = buffers.map(([label, dst]): [GPUBuffer, Op] => {
      const L = this.#layers[stateLayer(label)];
      if (!L) throw new Error(`block copy: ${label}: no layer ${stateLayer(label) + 1}`);
      const rows = dst.size / (4 * L.ld);
      if (!Number.isInteger(rows) || L.ld !== P * L.pout) {
        throw new Error(`block copy: ${label}: not rows of ${P} blocks of ${L.pout}`);
      }
      return [
        dst,
        copyBlocksOp(device, {
          src: scratch,
          dst,
          origin,
          rows,
          ld: L.ld,
          pout: L.pout,
          P,
          label: `copy_blocks ${label}`,
        }),
      ];
    });
    return this.#ready = { scratch, origin, ops };
  }
}
