/**
 * Buffer helpers: allocation with the usages this project needs, uploads, read-backs, and the
 * per-step parameter table that kernels index with dynamic uniform offsets.
 *
 * @module
 */

import { packStructInto, STEP_STRUCT, type StructLayout, structLayout } from "./layout.ts";
import { shaderSource } from "./shaders.ts";

/** Usage of every data buffer: bound as storage, written by uploads, read back by copies. */
export const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

/** Round `n` up to a multiple of 4 (the padded width of every matrix row). */
export function pad4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** A zero-initialised storage buffer of `floats` 32-bit words (at least 4). */
export function storageBuffer(device: GPUDevice, floats: number, label: string): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(16, pad4(floats) * 4), usage: STORAGE });
}

/** A storage buffer holding `data` (padded to 16 bytes). */
export function uploadBuffer(
  device: GPUDevice,
  data: Float32Array | Uint32Array | Int32Array,
  label: string,
): GPUBuffer {
  const buf = storageBuffer(device, data.length, label);
  writeBuffer(device, buf, 0, data);
  return buf;
}

/**
 * `queue.writeBuffer` for any typed array (TypeScript's lib types refuse views whose backing
 * store might be a SharedArrayBuffer; WebGPU accepts both).
 */
export function writeBuffer(
  device: GPUDevice,
  buffer: GPUBuffer,
  offset: number,
  data: ArrayBufferView | ArrayBuffer,
  dataOffset?: number,
  size?: number,
): void {
  device.queue.writeBuffer(buffer, offset, data as ArrayBuffer, dataOffset, size);
}

/** A uniform buffer holding `data` (u32/f32 words, padded to 16 bytes). */
export function uniformBuffer(
  device: GPUDevice,
  data: Uint32Array,
  label: string,
): GPUBuffer {
  const buf = device.createBuffer({
    label,
    size: Math.max(16, pad4(data.length) * 4),
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  writeBuffer(device, buf, 0, data);
  return buf;
}

/** Copy `bytes` bytes at `offset` of `src` into a fresh mappable buffer and return them. */
export async function readBytes(
  device: GPUDevice,
  src: GPUBuffer,
  offset = 0,
  bytes = src.size - offset,
): Promise<ArrayBuffer> {
  const staging = device.createBuffer({
    size: pad4(bytes),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, offset, staging, 0, pad4(bytes));
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  staging.destroy();
  return out;
}

/** Read `count` floats at float index `start` of a buffer. */
export async function readFloats(
  device: GPUDevice,
  src: GPUBuffer,
  start = 0,
  count = src.size / 4 - start,
): Promise<Float32Array> {
  return new Float32Array(await readBytes(device, src, start * 4, count * 4));
}

const placeholders = new WeakMap<GPUDevice, Record<string, GPUBuffer>>();

function placeholder(device: GPUDevice, kind: string, make: () => GPUBuffer): GPUBuffer {
  let perDevice = placeholders.get(device);
  if (!perDevice) placeholders.set(device, perDevice = {});
  return perDevice[kind] ??= make();
}

/** A small buffer bound to a read-only binding that a kernel variant ignores. */
export function dummyBuffer(device: GPUDevice): GPUBuffer {
  return placeholder(device, "read", () => storageBuffer(device, 4, "unused"));
}

/**
 * A small buffer bound to a writable binding that a kernel variant ignores; distinct `slot`s give
 * distinct buffers, for kernels that ignore two writable bindings at once.
 */
export function scratchBuffer(device: GPUDevice, slot = 0): GPUBuffer {
  return placeholder(device, `write${slot}`, () => storageBuffer(device, 4, `unused-rw${slot}`));
}

/** A one-record step table of zeros, bound where a kernel ignores the step. */
export function noSteps(device: GPUDevice): GPUBuffer {
  return placeholder(device, "steps", () =>
    device.createBuffer({
      label: "no-steps",
      size: STEP_STRIDE,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    }));
}

/** Byte stride of one record in a step table (the largest uniform offset alignment in use). */
export const STEP_STRIDE = 256;

/**
 * One record of a step table, as the shaders' `Step` struct (shaders/step.wgsl, where each field
 * is documented) reads it. Training kernels take `step`, `epoch`, `pos` (first sample of the batch
 * within the epoch) and `eta`; evaluation kernels take `base` (first row of the chunk), `rows`
 * (valid rows) and `slot` (metrics slot); a tail that carries the gather takes `next`, `nextEpoch`
 * and `nextPos` (the next step's batch). Fields left out are 0.
 */
export interface StepRecord {
  step?: number;
  epoch?: number;
  pos?: number;
  eta?: number;
  base?: number;
  rows?: number;
  slot?: number;
  /** Index of the record within its table (for the per-model η table, see shaders/eta.wgsl). */
  record?: number;
  /** Models whose per-model η the kernels read beside λ (0: the record's `eta` for all). */
  models?: number;
  /** 1: a tail carrying the gather gathers the next step's batch during this step (else 0). */
  next?: number;
  /** Epoch of the next step (with `next`). */
  nextEpoch?: number;
  /** First sample of the next step's batch within its epoch (with `next`). */
  nextPos?: number;
}

let stepLayout: StructLayout | undefined;

/** The layout of the `Step` struct, reflected from shaders/step.wgsl (read once). */
export function stepStruct(): StructLayout {
  if (!stepLayout) {
    const layout = structLayout(shaderSource("step"), STEP_STRUCT);
    if (layout.size > STEP_STRIDE) {
      throw new Error(`Step holds ${layout.size} bytes, more than a record's ${STEP_STRIDE}`);
    }
    stepLayout = layout;
  }
  return stepLayout;
}

/**
 * Encode step records at {@link STEP_STRIDE} bytes each, every field at the offset and of the
 * type that shaders/step.wgsl declares it with (fields left out or undefined are 0; a name the
 * struct does not declare is an error).
 */
export function encodeSteps(records: StepRecord[]): ArrayBuffer {
  const layout = stepStruct();
  const out = new ArrayBuffer(Math.max(1, records.length) * STEP_STRIDE);
  const view = new DataView(out);
  records.forEach((r, i) => {
    const values: Record<string, number> = {};
    for (const f of layout.fields) values[f.name] = 0;
    for (const [name, v] of Object.entries(r)) if (v !== undefined) values[name] = v;
    packStructInto(layout, values, view, i * STEP_STRIDE, `step record ${i}`);
  });
  return out;
}

/** A uniform buffer holding a table of step records, bound with dynamic offsets. */
export function stepTable(device: GPUDevice, records: StepRecord[], label: string): GPUBuffer {
  const data = encodeSteps(records);
  const buf = device.createBuffer({
    label,
    size: data.byteLength,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  writeBuffer(device, buf, 0, data);
  return buf;
}
