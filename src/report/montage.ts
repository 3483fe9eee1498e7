/**
 * First-layer weights as images: each row of `fc1.weight` ([units, 3072]) is a 32×32 RGB image
 * stored as the R plane, the G plane, then the B plane, each row-major (CIFAR-10's layout). Each
 * unit is rescaled to [0, 255] by its own minimum and maximum, as the classic assignment shows the
 * class templates of a linear classifier.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Tensor } from "../io/safetensors.ts";
import type { MontageSpec } from "./charts.ts";

/** Image side and channels of a CIFAR-10 input. */
export const IMAGE_SIDE = 32;
/** Values per image (3 planes of 32×32). */
export const IMAGE_SIZE = 3 * IMAGE_SIDE * IMAGE_SIDE;
/** At most this many units are drawn (the first ones). */
export const MAX_MONTAGE_UNITS = 256;

/** The images to draw, or why there are none. */
export type MontageResult =
  | {
    ok: true;
    /** `templates`: a 1-layer net's class templates; `hidden`: hidden units of a deeper net. */
    kind: "templates" | "hidden";
    /** Units drawn and units in the layer. */
    units: number;
    totalUnits: number;
    /** Per unit, planar RGB bytes (IMAGE_SIZE each). */
    pixels: Uint8Array;
    /** Class names for templates. */
    labels?: string[];
  }
  | { ok: false; reason: string };

/**
 * Rescale one unit's weights to bytes by its own min/max (finite values only; NaN/Inf become 0,
 * a constant unit becomes mid-grey).
 */
export function rescaleUnit(row: ArrayLike<number>): Uint8Array {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (Number.isFinite(v)) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  const out = new Uint8Array(row.length);
  const range = max - min;
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (!Number.isFinite(v)) out[i] = 0;
    else if (!(range > 0)) out[i] = 128;
    else out[i] = Math.round(((v - min) / range) * 255);
  }
  return out;
}

/** Build the first-layer montage from a checkpoint's tensors. */
export function firstLayerMontage(
  tensors: Record<string, Tensor>,
  classNames: string[],
  maxUnits = MAX_MONTAGE_UNITS,
): MontageResult {
  const w = tensors["fc1.weight"];
  if (!w) return { ok: false, reason: "The checkpoint has no fc1.weight tensor." };
  if (w.shape.length !== 2 || w.shape[1] !== IMAGE_SIZE) {
    return {
      ok: false,
      reason: `fc1.weight has shape [${
        w.shape.join(", ")
      }]; [units, ${IMAGE_SIZE}] (32×32 RGB inputs) is needed to draw it as images.`,
    };
  }
  const totalUnits = w.shape[0];
  const units = Math.min(totalUnits, maxUnits);
  const pixels = new Uint8Array(units * IMAGE_SIZE);
  for (let u = 0; u < units; u++) {
    pixels.set(rescaleUnit(w.data.subarray(u * IMAGE_SIZE, (u + 1) * IMAGE_SIZE)), u * IMAGE_SIZE);
  }
  const templates = !tensors["fc2.weight"];
  return {
    ok: true,
    kind: templates ? "templates" : "hidden",
    units,
    totalUnits,
    pixels,
    labels: templates
      ? Array.from({ length: units }, (_, i) => classNames[i] ?? `class ${i}`)
      : undefined,
  };
}

/** The page's montage spec (without id) for a montage result. */
export function montageSpec(m: Extract<MontageResult, { ok: true }>): Omit<MontageSpec, "id"> {
  const few = m.units <= 16;
  return {
    units: m.units,
    width: IMAGE_SIDE,
    height: IMAGE_SIDE,
    cols: Math.min(m.units, few ? 10 : 16),
    scale: few ? 3 : 2,
    labels: m.labels,
    b64: Buffer.from(m.pixels.buffer, m.pixels.byteOffset, m.pixels.byteLength).toString("base64"),
  };
}
