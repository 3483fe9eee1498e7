/**
 * Copies: buffer to texture (`shaders/copy.wgsl`), a row-major matrix of floats into an rgba32float
 * texture of one texel per quad, for rows of any length (`copyBufferToTexture` needs rows of a
 * multiple of 256 bytes); and models' blocks within a population's state buffer
 * (`shaders/blocks.wgsl`), for population-based training.
 *
 * @module
 */

import { noSteps } from "../gpu/buffers.ts";
import { checkGroups, F32, kernelOp, type Op } from "./op.ts";

/** Arguments of {@link copyToTextureOp}. */
export interface CopyToTextureSpec {
  /** Source: `height` rows of stride `ld` floats (a multiple of 4). */
  src: GPUBuffer;
  ld: number;
  /** Destination: an rgba32float storage texture of at least width × height texels. */
  dst: GPUTexture;
  /** Quads per row to copy (texels per texture row). */
  width: number;
  /** Rows to copy. */
  height: number;
  /**
   * Only the first this many quads of `src` (default all of width × height): the last row of a
   * wrapped texture's seed is partial (see `Matrix.wrap` in src/kernels/placement.ts).
   */
  quads?: number;
  label?: string;
}

const WG = 64;

/** Prepare a copy dispatch: texel (x, y) = floats 4x..4x+3 of row y (rows `ld` floats apart). */
export function copyToTextureOp(device: GPUDevice, s: CopyToTextureSpec): Op {
  const label = s.label ?? "copy_to_texture";
  if (s.ld % 4 !== 0) throw new Error(`${label}: ld ${s.ld} is not a multiple of 4`);
  if (4 * s.width > s.ld) throw new Error(`${label}: ${s.width} quads exceed the row of ${s.ld}`);
  if (s.width > s.dst.width || s.height > s.dst.height) {
    throw new Error(`${label}: ${s.width}x${s.height} texels exceed the texture`);
  }
  return kernelOp(device, {
    shader: "copy",
    entryPoint: "buffer_to_texture",
    constants: { WG },
    label,
    resources: {
      src: s.src,
      dst: s.dst,
      p: { width: s.width, height: s.height, ld4: s.ld / 4, quads: s.quads ?? 0xffffffff },
      st: noSteps(device),
    },
    workgroups: [
      checkGroups(label, Math.ceil(s.width / WG)),
      checkGroups(label, s.height),
      1,
    ],
    stepped: false,
    // no arithmetic; every quad (4 floats) read once and written once
    cost: {
      flops: 0,
      bytes: 2 * 4 * F32 * Math.min(s.width * s.height, s.quads ?? Infinity),
      shape: `${s.height}×${4 * s.width} → texture`, // texture rows × their floats
    },
  });
}

/** Arguments of {@link copyBlocksOp}. */
export interface CopyBlocksSpec {
  /** A copy of `dst` taken before the dispatch (a kernel cannot read and write one buffer). */
  src: GPUBuffer;
  /** The state buffer: `rows` rows of `ld` floats, model m's block of `pout` at column m·pout. */
  dst: GPUBuffer;
  /** P u32s: the model whose block model m takes (m itself to keep its own). */
  origin: GPUBuffer;
  rows: number;
  ld: number;
  pout: number;
  /** Models in the population. */
  P: number;
  label?: string;
}

/**
 * Prepare a block copy within a population's state buffer (`shaders/blocks.wgsl`): model m's
 * block of every row becomes model origin[m]'s, as `src` holds them.
 *
 * @example Model 0 takes model 2's weights (a 3-model population, one row of 4 floats each)
 * ```ts ignore
 * const op = copyBlocksOp(device, { src: scratch, dst: W, origin, rows: 1, ld: 12, pout: 4, P: 3 });
 * // origin holds [2, 1, 2]; encode a copy of W into scratch, then the op
 * ```
 */
export function copyBlocksOp(device: GPUDevice, s: CopyBlocksSpec): Op {
  const label = s.label ?? "copy_blocks";
  if (s.P * s.pout > s.ld) {
    throw new Error(`${label}: ${s.P} blocks of ${s.pout} exceed ld ${s.ld}`);
  }
  if (4 * s.rows * s.ld > s.dst.size || s.src.size < s.dst.size) {
    throw new Error(`${label}: ${s.rows} rows of ${s.ld} floats exceed its buffers`);
  }
  if (s.origin.size < 4 * s.P) throw new Error(`${label}: origin holds fewer than ${s.P} models`);
  return kernelOp(device, {
    shader: "blocks",
    entryPoint: "copy_blocks",
    constants: { WG },
    label,
    resources: {
      src: s.src,
      dst: s.dst,
      origin: s.origin,
      p: { rows: s.rows, ld: s.ld, pout: s.pout, P: s.P },
      st: noSteps(device),
    },
    workgroups: [checkGroups(label, Math.ceil((s.P * s.pout) / WG)), checkGroups(label, s.rows), 1],
    stepped: false,
    // no arithmetic; every float of the P blocks read once and written once
    cost: {
      flops: 0,
      bytes: 2 * F32 * s.P * s.pout * s.rows,
      shape: `${s.rows}×${s.P}·${s.pout} blocks`,
    },
  });
}
