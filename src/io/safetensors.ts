/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length, a JSON header naming each tensor's dtype, shape and byte range, then the raw
 * little-endian data. PyTorch reads it with `safetensors.torch.load_file`.
 *
 * Only F32 tensors are written; F32 and F64 are read. Malformed files are refused with one line
 * (see {@link decodeSafetensors}).
 *
 * @module
 */

import { UserError } from "../errors.ts";
import { isObject } from "./json.ts";

/** A tensor held as float32 in row-major order. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** Whether this platform stores floats little-endian, as safetensors does (then bytes copy as is). */
const LITTLE_ENDIAN = new Uint8Array(new Float32Array([1]).buffer)[3] === 0x3f;

/** Encode tensors (and optional string metadata) as a safetensors file. */
export function encodeSafetensors(
  tensors: Record<string, Tensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new Error(
        `tensor ${name}: shape [${t.shape}] holds ${count} values, data ${t.data.length}`,
      );
    }
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + 4 * count] };
    offset += 4 * count;
  }
  // Pad with spaces to a multiple of 8 bytes of UTF-8 (not of UTF-16 code units: names and
  // metadata may be non-ASCII) so that the data starts 8-byte aligned.
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(json.length + ((8 - (json.length % 8)) % 8)).fill(0x20);
  head.set(json);
  const out = new Uint8Array(8 + head.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let pos = 8 + head.length;
  for (const name of names) {
    const d = tensors[name].data;
    if (LITTLE_ENDIAN) out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    else for (let i = 0; i < d.length; i++) view.setFloat32(pos + 4 * i, d[i], true);
    pos += d.byteLength;
  }
  return out;
}

/**
 * The largest header {@link decodeSafetensors} parses: 100 000 000 bytes, the limit of the
 * reference implementation (a larger one is refused before it is read).
 */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per value of the dtypes {@link decodeSafetensors} reads. */
const DTYPE_BYTES: Record<string, number> = { F32: 4, F64: 8 };

/** A decoded safetensors file. */
export interface Safetensors {
  /** The tensors by name, as float32. */
  tensors: Record<string, Tensor>;
  /** The `__metadata__` strings (empty when the file has none). */
  metadata: Record<string, string>;
  /** Each tensor's dtype in the file (`F32`, or `F64`, which was rounded to float32). */
  dtypes: Record<string, string>;
}

/**
 * Decode a safetensors file; `source` names it in error messages. Every problem of the file — a
 * truncated file, a header length past the end or over {@link MAX_HEADER_BYTES}, a header that is
 * not a JSON object, an entry without a proper shape or byte range, a byte range that does not
 * match its shape or runs past the end, a dtype other than F32 and F64 — is a one-line
 * {@link UserError} naming the file and the tensor. Values are not checked: NaN and ±Inf are
 * valid safetensors contents (checkpoints check them, see `decodeCheckpoint`).
 */
export function decodeSafetensors(bytes: Uint8Array, source = "checkpoint"): Safetensors {
  const bad = (why: string) => new UserError(`${source} is not a valid safetensors file: ${why}`);
  if (bytes.length < 8) throw bad("shorter than its 8-byte header length");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headLen = Number(view.getBigUint64(0, true));
  if (headLen <= 0) throw bad(`header length ${headLen} out of range: the header cannot be empty`);
  if (headLen > MAX_HEADER_BYTES) {
    throw bad(
      `header length ${headLen} out of range: at most ${MAX_HEADER_BYTES} bytes are read ` +
        "(a header that large is corrupt, or not a safetensors file)",
    );
  }
  if (8 + headLen > bytes.length) {
    throw bad(
      `header length ${headLen} out of range: the file holds only ${bytes.length - 8} bytes ` +
        "after it (truncated, or not a safetensors file)",
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(
      bytes.subarray(8, 8 + headLen),
    ));
  } catch {
    throw bad("header is not JSON");
  }
  if (!isObject(header)) throw bad("header is not a JSON object");
  const base = 8 + headLen;
  const dataBytes = bytes.length - base;
  const tensors: Record<string, Tensor> = {};
  const dtypes: Record<string, string> = {};
  let metadata: Record<string, string> = {};
  const ranges: { name: string; start: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isObject(entry) || Object.values(entry).some((v) => typeof v !== "string")) {
        throw bad("__metadata__ must map names to strings");
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (
      !isObject(e) || !Array.isArray(e.shape) || !e.shape.every(isCount) ||
      !Array.isArray(e.data_offsets) || e.data_offsets.length !== 2 ||
      !e.data_offsets.every(isCount) || e.data_offsets[0] > e.data_offsets[1]
    ) {
      throw bad(`tensor ${name} needs a shape and data_offsets [start, end] of integers >= 0`);
    }
    if (!Object.hasOwn(DTYPE_BYTES, String(e.dtype))) {
      throw bad(`tensor ${name} has dtype ${e.dtype} (F32 or F64 expected)`);
    }
    const size = DTYPE_BYTES[e.dtype];
    const count = e.shape.reduce((a, b) => a * b, 1);
    const [start, end] = e.data_offsets;
    if (end - start !== size * count) {
      throw bad(
        `tensor ${name} byte range [${start}, ${end}) does not fit its shape: ` +
          `[${e.shape}] of ${e.dtype} takes ${size * count} bytes, the range ${end - start}`,
      );
    }
    if (end > dataBytes) {
      throw bad(
        `tensor ${name} byte range [${start}, ${end}) does not fit the file: its data section ` +
          `holds ${dataBytes} bytes (truncated file?)`,
      );
    }
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const p = base + start + i * size;
      data[i] = size === 4 ? view.getFloat32(p, true) : view.getFloat64(p, true);
    }
    tensors[name] = { shape: e.shape, data };
    dtypes[name] = e.dtype;
    ranges.push({ name, start, end });
  }
  // the format's tensors never share bytes: two that do are a corrupt (or crafted) file
  ranges.sort((a, b) => a.start - b.start || a.end - b.end);
  for (let i = 1; i < ranges.length; i++) {
    const [a, b] = [ranges[i - 1], ranges[i]];
    if (b.start < a.end && b.end > b.start) {
      throw bad(
        `tensors ${a.name} and ${b.name} share bytes [${b.start}, ${Math.min(a.end, b.end)}): ` +
          "each tensor has its own range in a safetensors file",
      );
    }
  }
  return { tensors, metadata, dtypes };
}

function isCount(x: unknown): boolean {
  return Number.isSafeInteger(x) && (x as number) >= 0;
}
