/**
 * Numeric columns embedded in a report page: each series is stored once, losslessly, as base64 of
 * a little-endian Float32Array when every value is exactly a float32 (GPU metrics, step counts),
 * else of a Float64Array. Missing values (`null`, `undefined`, NaN) are stored as NaN; the page
 * skips them when drawing. This keeps 100k-point curves a few MB instead of tens of MB of JSON.
 *
 * @module
 */

import { Buffer } from "node:buffer";

/** One encoded column as embedded in the page's JSON. */
export interface EncodedColumn {
  /** Element type of the encoded array. */
  dtype: "f32" | "f64";
  /** Number of values. */
  n: number;
  /** Base64 of the little-endian array bytes. */
  b64: string;
}

/** A value a column accepts: missing values become NaN. */
export type MaybeNumber = number | null | undefined;

/** Convert to a Float64Array with NaN for missing values. */
function toFloat64(values: ArrayLike<MaybeNumber>): Float64Array {
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = typeof v === "number" ? v : NaN;
  }
  return out;
}

/** Encode values losslessly (float32 when exact, else float64). */
export function encodeColumn(values: ArrayLike<MaybeNumber>): EncodedColumn {
  const f64 = toFloat64(values);
  const f32 = new Float32Array(f64);
  let exact = true;
  for (let i = 0; i < f64.length && exact; i++) {
    exact = Object.is(f32[i], f64[i]) || (Number.isNaN(f32[i]) && Number.isNaN(f64[i]));
  }
  const arr = exact ? f32 : f64;
  const b64 = Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength).toString("base64");
  return { dtype: exact ? "f32" : "f64", n: f64.length, b64 };
}

/** Decode a column (the inverse of `encodeColumn`, for tests and tools). */
export function decodeColumn(col: EncodedColumn): Float64Array {
  const bytes = Buffer.from(col.b64, "base64");
  const copy = new Uint8Array(bytes); // aligned copy
  const arr = col.dtype === "f32" ? new Float32Array(copy.buffer) : new Float64Array(copy.buffer);
  return Float64Array.from(arr);
}

/** True when at least one value is a finite number. */
export function hasFinite(values: ArrayLike<MaybeNumber>): boolean {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === "number" && Number.isFinite(v)) return true;
  }
  return false;
}

/** The columns of one page, addressed by unique keys. */
export class ColumnStore {
  /** Encoded columns by key. */
  readonly columns: Record<string, EncodedColumn> = {};
  #next = 0;

  /** Store a column and return its key (`hint` makes keys readable; they stay unique). */
  add(values: ArrayLike<MaybeNumber>, hint = "c"): string {
    const key = `${hint.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 40)}#${this.#next++}`;
    this.columns[key] = encodeColumn(values);
    return key;
  }
}
