/**
 * Buffer-to-texture copy (`shaders/copy.wgsl`): a row-major matrix of floats into an rgba32float
 * texture of one texel per quad, for rows of any length (`copyBufferToTexture` needs rows of a
 * multiple of 256 bytes).
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
  label?: string;
}

const WG = 64;

/** Prepare a copy dispatch: texel (x, y) = floats 4x..4x+3 of row y. */
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
      p: { width: s.width, height: s.height, ld4: s.ld / 4 },
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
      bytes: 2 * 4 * F32 * s.width * s.height,
      shape: `${s.height}×${4 * s.width} → texture`,
    },
  });
}
