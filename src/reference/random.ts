/**
 * Twin of `shaders/random.wgsl`: counter-based random bits and the dropout mask.
 *
 * @module
 */

import { dropThreshold } from "../nn/shared.ts";
import { hash32 } from "./shuffle.ts";

export { dropThreshold };

/** Random bits for element `index` of stream (seed, a, b). */
export function random3(seed: number, a: number, b: number, index: number): number {
  return hash32((index ^ hash32((b ^ hash32((a ^ hash32(seed >>> 0)) >>> 0)) >>> 0)) >>> 0);
}

/** Whether dropout keeps element `index` of layer `layer` at step `step`. */
export function dropKeep(
  seed: number,
  step: number,
  layer: number,
  index: number,
  threshold: number,
): boolean {
  return random3(seed, step, layer, index) >= threshold;
}
