/**
 * Compaction of a population on the GPU: the state of the models that go on at a rung —
 * weights, biases, batch normalisation's γ, β and running statistics, Adam's moments: every
 * buffer a snapshot holds — copied together into the buffers of a narrower population, one
 * `copyBufferToBuffer` per row of each run of adjacent blocks, in a command encoder. Nothing
 * goes through the CPU.
 *
 * Every state buffer is laid out like its layer's parameters (`gpu_params.ts`): rows of P·pout
 * floats, model p's block at column p·pout. A buffer's layer is the number its label ends with
 * (`W2`, `running_var1`, `adam.m.gamma1`), its row count its size over the row.
 *
 * @module
 */

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
