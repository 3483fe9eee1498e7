/**
 * Timing GPU work: wall-clock time of a submission (with its one awaited round trip), and the
 * adapter's own timestamps around compute passes where it has timestamp queries. Both are taken on
 * many dispatches encoded into one submission, never on a single awaited dispatch.
 *
 * @module
 */

import type { Gpu } from "../src/gpu/device.ts";
import { type Op, OpEncoder } from "../src/kernels/op.ts";

/** Wall and (when available) GPU time of one measured submission, in milliseconds. */
export interface PassTime {
  wallMs: number;
  /** Time between the first pass's start and the last pass's end, from timestamp queries. */
  gpuMs: number | null;
}

/**
 * Encodes work into compute passes that it opens itself (`begin` may attach timestamp writes),
 * and commands between them (a texture copy) into `enc`.
 */
export type PassEncoder = (begin: () => GPUComputePassEncoder, enc: GPUCommandEncoder) => void;

/** Queries a WebGPU query set may hold: a submission of more passes is timed by the wall clock. */
const MAX_QUERIES = 4096;

/** Times submissions, with timestamp queries when the device has them enabled. */
export class GpuTimer {
  readonly gpu: Gpu;
  /** Whether timestamps are used. */
  readonly timestamps: boolean;
  #capacity = 0;
  #query: GPUQuerySet | null = null;
  #resolve: GPUBuffer | null = null;

  constructor(gpu: Gpu) {
    this.gpu = gpu;
    this.timestamps = gpu.timestamps;
  }

  #ensure(count: number): void {
    if (count <= this.#capacity) return;
    this.#query?.destroy();
    this.#resolve?.destroy();
    this.#capacity = Math.max(count, 64);
    this.#query = this.gpu.device.createQuerySet({ type: "timestamp", count: this.#capacity });
    this.#resolve = this.gpu.device.createBuffer({
      size: this.#capacity * 8,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
  }

  /**
   * Submit the passes `encode` opens and wait for them. With timestamps, every pass gets a begin and
   * an end timestamp; the result holds the times of all passes (ns ticks converted to ms) and
   * their span. `maxPasses` bounds how many passes `encode` may open.
   */
  async measure(encode: PassEncoder, maxPasses = 1): Promise<PassTime & { passMs: number[] }> {
    const device = this.gpu.device;
    const ts = this.timestamps && 2 * maxPasses <= MAX_QUERIES;
    if (ts) this.#ensure(2 * maxPasses);
    const t0 = performance.now();
    const enc = device.createCommandEncoder();
    let opened = 0;
    encode(() => {
      if (!ts) return enc.beginComputePass();
      if (opened >= maxPasses) throw new Error(`more than ${maxPasses} timed passes`);
      const i = opened++;
      return enc.beginComputePass({
        timestampWrites: {
          querySet: this.#query!,
          beginningOfPassWriteIndex: 2 * i,
          endOfPassWriteIndex: 2 * i + 1,
        },
      });
    }, enc);
    let read: GPUBuffer | null = null;
    if (ts && opened > 0) {
      read = device.createBuffer({
        size: opened * 16,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      enc.resolveQuerySet(this.#query!, 0, 2 * opened, this.#resolve!, 0);
      enc.copyBufferToBuffer(this.#resolve!, 0, read, 0, opened * 16);
    }
    device.queue.submit([enc.finish()]);
    if (read) await read.mapAsync(GPUMapMode.READ);
    else await device.queue.onSubmittedWorkDone();
    const wallMs = performance.now() - t0;
    this.gpu.check();
    if (!read) return { wallMs, gpuMs: null, passMs: [] };
    const ticks = new BigUint64Array(read.getMappedRange().slice(0));
    read.unmap();
    read.destroy();
    const passMs: number[] = [];
    for (let i = 0; i < opened; i++) passMs.push(Number(ticks[2 * i + 1] - ticks[2 * i]) / 1e6);
    const span = Number(ticks[2 * opened - 1] - ticks[0]) / 1e6;
    // an adapter whose timestamps are all zero (or go backwards) has none worth reporting
    const valid = span > 0 && passMs.every((m) => m >= 0);
    return { wallMs, gpuMs: valid ? span : null, passMs: valid ? passMs : [] };
  }

  /**
   * Milliseconds per repeat of `ops` (encoded in order, `n` times, into one pass, or a pass per
   * repeat where an op ends in a texture copy, the copies between them): GPU time from the first
   * pass's start to the last one's end where timestamps exist, wall time otherwise.
   */
  async perRepeat(ops: Op[], n: number, record = 0): Promise<number> {
    const passes = 1 + n * ops.filter((op) => op.copies?.length || op.moves?.length).length;
    const t = await this.measure((begin, enc) => {
      const e = new OpEncoder(enc, begin);
      for (let i = 0; i < n; i++) e.encodeAll(ops, record);
      e.end();
    }, passes);
    return (t.gpuMs ?? t.wallMs) / n;
  }

  /**
   * Repeat count such that `ops` × count takes about `targetMs` (at least `min`, at most `max`),
   * from a probe of increasing size.
   */
  async calibrate(ops: Op[], targetMs: number, min = 3, max = 4096, record = 0): Promise<number> {
    let n = 1;
    for (;;) {
      const per = await this.perRepeat(ops, n, record);
      if (per * n >= targetMs / 4 || n >= max) {
        return Math.max(min, Math.min(max, Math.ceil(targetMs / Math.max(per, 1e-6))));
      }
      n = Math.min(max, n * 8);
    }
  }

  /** Free the query set. */
  destroy(): void {
    this.#query?.destroy();
    this.#resolve?.destroy();
  }
}
