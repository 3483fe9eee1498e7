/**
 * TFRecord framing, the container of TensorBoard's event files: each record is
 *
 * ```text
 * uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
 * ```
 *
 * with CRC-32C (Castagnoli) from `@aws-crypto/crc32c` and TensorFlow's mask
 * `((crc >>> 15) | (crc << 17)) + 0xa282ead8` (tensorflow/core/lib/hash/crc32c.h, and
 * tensorboard/compat/tensorflow_stub/pywrap_tensorflow.py, which TensorBoard's own reader uses).
 *
 * @module
 */

import { crc32c } from "@aws-crypto/crc32c";

/** The constant TensorFlow adds to a rotated CRC to mask it. */
export const CRC_MASK_DELTA = 0xa282ead8;

/** TensorFlow's masked form of a CRC-32C value: rotate right by 15 bits, add {@link CRC_MASK_DELTA}. */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + CRC_MASK_DELTA) >>> 0;
}

/** The masked CRC-32C of `data`, as TFRecord stores it. */
export function maskedCrc32c(data: Uint8Array): number {
  return maskCrc(crc32c(data));
}

/** One TFRecord: length, masked CRC of the length, the data, masked CRC of the data. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** Records framed one after the other: the bytes of a whole TFRecord file. */
export function frameRecords(records: Uint8Array[]): Uint8Array {
  const framed = records.map(frameRecord);
  const out = new Uint8Array(framed.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of framed) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

/**
 * The records of a TFRecord file, each CRC checked: a truncated file or a CRC that does not match
 * throws, naming the byte offset of the record.
 */
export function parseRecords(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 12 > bytes.length) throw new Error(`TFRecord at byte ${at}: truncated header`);
    const length = view.getBigUint64(at, true);
    if (view.getUint32(at + 8, true) !== maskedCrc32c(bytes.subarray(at, at + 8))) {
      throw new Error(`TFRecord at byte ${at}: the length's CRC does not match`);
    }
    const end = at + 12 + Number(length);
    if (length > BigInt(bytes.length) || end + 4 > bytes.length) {
      throw new Error(`TFRecord at byte ${at}: truncated data (${length} bytes announced)`);
    }
    const data = bytes.subarray(at + 12, end);
    if (view.getUint32(end, true) !== maskedCrc32c(data)) {
      throw new Error(`TFRecord at byte ${at}: the data's CRC does not match`);
    }
    out.push(data);
    at = end + 4;
  }
  return out;
}
