/**
 * Probes of the adapter (`shaders/probe.wgsl`): the FMA ceiling — the bench's "peak", against
 * which every kernel's GFLOP/s is read — and the cost of one vec4 load from an rgba32float texture
 * (sampled, and as a read-only storage texture where WGSL has them), a storage buffer, workgroup
 * memory and a uniform buffer, each in ns and in FMAs. Every probe's output is checked
 * against the CPU ({@link fmaExpected}, {@link loadExpected}) before its time counts, so what is
 * timed is real work.
 *
 * Napkin math (declared next to each op's cost, exact by construction):
 * - FMA probe: FLOPs = invocations · iters · REP · NACC · 8 (one vec4 FMA = 4 lanes × 2 FLOPs).
 *   At ~140 GFLOP/s, 1024 workgroups of 64 and NACC = 16, REP = 4: one loop iteration of all
 *   invocations is 65 536 · 512 FLOPs ≈ 0.24 ms, so ≥ 20 ms takes ≥ ~85 iterations.
 * - Load probes: loads = invocations · iters · CH (vec4 each), FLOPs = 4 · loads (the adds into
 *   the accumulators). The baseline twin (same hash, addresses and adds, no load) is timed at the
 *   same size; load cost = (time − baseline time) / loads. "FMAs per load" is that cost over the
 *   time of one vec4 FMA per invocation at the ceiling (8 FLOPs / ceiling): loads per dispatch ×
 *   ns per load × ceiling GFLOP/s / 8. On a CPU adapter (llvmpipe: one SIMD vector of
 *   `lanes` invocations, `threads` cores), one `lanes`-wide load costs ns per load × lanes ×
 *   threads on a core.
 *
 * @module
 */

import { cpus } from "node:os";
import {
  noSteps,
  readFloats,
  storageBuffer,
  uniformBuffer,
  uploadBuffer,
} from "../src/gpu/buffers.ts";
import { kernelOp, type Op } from "../src/kernels/op.ts";
import { READONLY_STORAGE_TEXTURES, wgslLanguageFeatures } from "../src/gpu/device.ts";
import { summarise, type Summary } from "./stats.ts";
import type { GpuTimer } from "./timing.ts";

/** Every kind of memory the load probes measure, in the order the bench reports them. */
export const LOAD_MEMORIES = [
  "texture",
  "storage-texture",
  "buffer",
  "workgroup",
  "uniform",
] as const;

/** Where a load probe's loads go. */
export type LoadMemory = typeof LOAD_MEMORIES[number];

/** Invocations per workgroup of every probe (probe.wgsl's WG). */
export const PROBE_WG = 64;
/** Rounds over the accumulators per loop iteration of the FMA probe (probe.wgsl's REP). */
export const FMA_REP = 4;
/** Loads per loop iteration of a load probe (probe.wgsl's CH). */
export const LOAD_CH = 4;
/** vec4 elements of the source buffer and texels of the texture (128 × 128; 256 KiB). */
export const SRC_N = 16384;
/** Texels per texture row (probe.wgsl's TEX_W). */
export const TEX_W = 128;
/** vec4 elements of the uniform buffer (probe.wgsl's UB_N; 64 KiB, WebGPU's default binding limit). */
export const UB_N = 4096;
/** vec4 elements in workgroup memory (probe.wgsl's WG_N; 8 KiB). */
export const WG_N = 512;
/** The FMA probe's addend: c = 2⁻¹⁰ (lanes c, 2c, c/2, 4c), so that every step is exact. */
export const FMA_C = 2 ** -10;
/** Seed of the load probes' hash. */
export const PROBE_SEED = 0x5eed;
const MEM: Record<LoadMemory, number> = {
  buffer: 0,
  texture: 1,
  workgroup: 2,
  uniform: 3,
  "storage-texture": 4,
};

/** The index mask of a load probe's addresses: its memory holds mask + 1 vec4. */
export function loadMask(memory: LoadMemory): number {
  return memory === "workgroup" ? WG_N - 1 : memory === "uniform" ? UB_N - 1 : SRC_N - 1;
}

/** Element k of the probes' source data: a multiple of 2⁻⁸ in [−1, 1), so sums stay exact. */
export function probeDatum(k: number): number {
  return (((k * 37 + 11) & 511) - 256) / 256;
}

/** probe.wgsl's probeHash(i, g, seed) in u32 arithmetic. */
export function probeHash(i: number, g: number, seed: number): number {
  let h = (Math.imul((i ^ seed) >>> 0, 0x9e3779b1) ^ g) >>> 0;
  h = Math.imul((h ^ (h >>> 16)) >>> 0, 0x85ebca6b) >>> 0;
  return (h ^ (h >>> 13)) >>> 0;
}

/** What an FMA probe dispatch is. */
export interface FmaSpec {
  workgroups: number;
  /** Loop iterations (each REP rounds over the NACC accumulators). */
  iters: number;
  /** Independent vec4 accumulators per invocation (8–32). */
  nacc: number;
}

/** What a load probe dispatch is. */
export interface LoadSpec {
  memory: LoadMemory;
  /** The baseline twin: same address arithmetic and adds, no load. */
  baseline: boolean;
  workgroups: number;
  /** Loop iterations (each CH loads). */
  iters: number;
}

/** out[g] of the FMA probe, as the CPU computes it (f32 rounding, the shader's order). */
export function fmaExpected(s: FmaSpec, g: number): Float32Array {
  const f = Math.fround;
  const n = s.iters * FMA_REP;
  const c = [FMA_C, 2 * FMA_C, FMA_C / 2, 4 * FMA_C];
  const out = new Float32Array(4);
  for (let l = 0; l < 4; l++) {
    let sum = 0;
    // each acc = fma(acc, 1, c) n times: exact in f32 while base + n·c < 2²⁴·c (n < 2²⁴)
    for (let a = 0; a < s.nacc; a++) sum = f(sum + f((g & 15) + a + n * c[l]));
    out[l] = sum;
  }
  return out;
}

/** out[g] of a load probe, as the CPU computes it (f32 rounding, the shader's order). */
export function loadExpected(s: LoadSpec, g: number): Float32Array {
  const f = Math.fround;
  const mask = loadMask(s.memory);
  const acc = Array.from({ length: LOAD_CH }, () => [0, 1, 2, 3]);
  for (let i = 0; i < s.iters; i++) {
    const h = probeHash(i, g, PROBE_SEED);
    for (let c = 0; c < LOAD_CH; c++) {
      const idx = (h + c * 4099) & mask;
      const a = acc[c];
      for (let l = 0; l < 4; l++) {
        a[l] = f(a[l] + (s.baseline ? idx & 255 : probeDatum(4 * idx + l)));
      }
    }
  }
  const out = new Float32Array(4);
  for (let l = 0; l < 4; l++) {
    let sum = 0;
    for (let c = 0; c < LOAD_CH; c++) sum = f(sum + acc[c][l]);
    out[l] = sum;
  }
  return out;
}

/** The buffers and texture every probe binds (the source data, the output). */
export class ProbeResources {
  readonly device: GPUDevice;
  readonly src: GPUBuffer;
  readonly tex: GPUTexture;
  /** The first {@link UB_N} vec4 of the source data as a uniform buffer. */
  readonly ub: GPUBuffer;
  readonly out: GPUBuffer;
  /** Invocations the output holds (one vec4 each). */
  readonly capacity: number;

  constructor(device: GPUDevice, maxWorkgroups: number) {
    this.device = device;
    const data = new Float32Array(4 * SRC_N);
    for (let k = 0; k < data.length; k++) data[k] = probeDatum(k);
    this.src = uploadBuffer(device, data, "probe.src");
    this.ub = uniformBuffer(device, new Uint32Array(data.buffer, 0, UB_N * 4), "probe.ub");
    this.tex = device.createTexture({
      label: "probe.tex",
      size: [TEX_W, SRC_N / TEX_W],
      format: "rgba32float",
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST |
        GPUTextureUsage.STORAGE_BINDING,
    });
    device.queue.writeTexture(
      { texture: this.tex },
      data,
      { bytesPerRow: TEX_W * 16, rowsPerImage: SRC_N / TEX_W },
      [TEX_W, SRC_N / TEX_W],
    );
    this.capacity = maxWorkgroups * PROBE_WG;
    this.out = storageBuffer(device, 4 * this.capacity, "probe.out");
  }

  #op(
    label: string,
    entryPoint: string,
    constants: Record<string, number | boolean>,
    p: {
      iters: number;
      mask: number;
      workgroups: number;
    },
    flops: number,
    bytes: number,
    shape: string,
  ): Op {
    if (p.workgroups * PROBE_WG > this.capacity) {
      throw new Error(`${label}: ${p.workgroups} workgroups exceed the output`);
    }
    return kernelOp(this.device, {
      shader: "probe",
      entryPoint,
      constants: { WG: PROBE_WG, ...constants },
      label,
      resources: {
        src: this.src,
        tex: this.tex,
        ...(constants.UBO ? { ub: this.ub } : {}),
        ...(constants.STX ? { stx: this.tex } : {}),
        out: this.out,
        p: { iters: p.iters, mask: p.mask, seed: PROBE_SEED, m: 1, c: FMA_C },
        st: noSteps(this.device),
      },
      workgroups: [p.workgroups, 1, 1],
      stepped: false,
      cost: { flops, bytes, shape },
    });
  }

  /** The FMA probe: FLOPs = invocations · iters · REP · NACC · 8, exactly. */
  fmaOp(s: FmaSpec): Op {
    if (s.iters * FMA_REP >= 2 ** 24) throw new Error(`fma probe: ${s.iters} iterations too many`);
    const inv = s.workgroups * PROBE_WG;
    return this.#op(
      `probe_fma${s.nacc}`,
      "fma_peak",
      { NACC: s.nacc, REP: FMA_REP },
      { iters: s.iters, mask: 0, workgroups: s.workgroups },
      inv * s.iters * FMA_REP * s.nacc * 8,
      inv * 16, // one vec4 written per invocation
      `${inv} inv × ${s.iters}·${FMA_REP}·${s.nacc} vec4 FMA`,
    );
  }

  /** A load probe: loads = invocations · iters · CH vec4; FLOPs = 4 per load (the adds). */
  loadOp(s: LoadSpec): Op {
    const inv = s.workgroups * PROBE_WG;
    const loads = inv * s.iters * LOAD_CH;
    return this.#op(
      `probe_${s.memory}${s.baseline ? "_base" : ""}`,
      "load_probe",
      {
        MEM: MEM[s.memory],
        LOAD: !s.baseline,
        CH: LOAD_CH,
        TEX_W,
        WG_N,
        UB_N,
        UBO: s.memory === "uniform",
        STX: s.memory === "storage-texture",
      },
      {
        iters: s.iters,
        mask: loadMask(s.memory),
        workgroups: s.workgroups,
      },
      4 * loads,
      (s.baseline ? 0 : 16 * loads) + inv * 16,
      `${inv} inv × ${s.iters}·${LOAD_CH} ${s.memory} vec4${s.baseline ? " (no load)" : ""}`,
    );
  }

  /** Free the buffers and the texture. */
  destroy(): void {
    this.src.destroy();
    this.ub.destroy();
    this.tex.destroy();
    this.out.destroy();
  }
}

/** How a probe's output compared with the CPU's. */
export interface ProbeCheck {
  /** Invocations compared. */
  checked: number;
  /** Largest |GPU − CPU| / max(1, |CPU|) over their lanes. */
  maxRelErr: number;
  ok: boolean;
}

/** Relative tolerance of a probe check (the sums are exact in f32 up to reassociation). */
export const PROBE_TOLERANCE = 1e-5;

/**
 * Read the output of the last probe dispatch of `invocations` invocations and compare `samples`
 * of them (every one when `samples` ≥ invocations; else evenly spread, first and last included)
 * with `expected`.
 */
export async function checkProbe(
  r: ProbeResources,
  invocations: number,
  expected: (g: number) => Float32Array,
  samples = Infinity,
): Promise<ProbeCheck> {
  const got = await readFloats(r.device, r.out, 0, 4 * invocations);
  const n = Math.min(invocations, samples);
  let maxRelErr = 0;
  for (let s = 0; s < n; s++) {
    const g = n === invocations ? s : Math.round((s * (invocations - 1)) / Math.max(1, n - 1));
    const want = expected(g);
    for (let l = 0; l < 4; l++) {
      const err = Math.abs(got[4 * g + l] - want[l]) / Math.max(1, Math.abs(want[l]));
      maxRelErr = Math.max(maxRelErr, Number.isNaN(err) ? Infinity : err);
    }
  }
  return { checked: n, maxRelErr, ok: maxRelErr <= PROBE_TOLERANCE };
}

/** The FMA ceiling measured in this run: the bench's peak. */
export interface FmaCeiling {
  gflops: number;
  /** ms per dispatch of the fastest accumulator count. */
  ms: Summary;
  nacc: number;
  iters: number;
  workgroups: number;
  invocations: number;
  /** FLOPs per dispatch (exact). */
  flops: number;
  /** ns of one vec4 FMA per invocation, device-wide (8 FLOPs / ceiling). */
  nsPerFma: number;
  /** On a CPU adapter: ns of one `lanes`-wide vec4 FMA on one core. */
  nsPerFmaVector: number | null;
  /** Every accumulator count tried. */
  tried: { nacc: number; iters: number; gflops: number; check: ProbeCheck }[];
  check: ProbeCheck;
}

/** The measured cost of one vec4 load from one kind of memory. */
export interface LoadCost {
  memory: LoadMemory;
  iters: number;
  workgroups: number;
  invocations: number;
  /** vec4 loads per dispatch. */
  loads: number;
  /** ms per dispatch with loads, and of the baseline twin without. */
  ms: Summary;
  baselineMs: Summary;
  /** Net ns per vec4 load per invocation, device-wide: (ms − baseline ms) / loads. */
  nsPerLoad: number;
  /** The same without subtracting the baseline (address hash and adds included). */
  nsPerLoadRaw: number;
  /** On a CPU adapter: net ns of one `lanes`-wide vec4 load on one core. */
  nsPerVectorLoad: number | null;
  /** Net cost of a load in vec4 FMAs at the measured ceiling. */
  fmasPerLoad: number | null;
  check: ProbeCheck;
  baselineCheck: ProbeCheck;
}

/** Every probe of a run. */
export interface ProbeResults {
  /** SIMD lanes and cores of a CPU adapter (llvmpipe), null elsewhere. */
  cpu: { lanes: number; threads: number } | null;
  fma: FmaCeiling;
  loads: LoadCost[];
}

/** Options of {@link measureProbes}. */
export interface ProbeOptions {
  /** Workgroups of every probe dispatch (64 invocations each). */
  workgroups: number;
  /** Each timed dispatch runs at least this long. */
  minMs: number;
  reps: number;
  /** Accumulator counts of the FMA probe to try (the fastest is the ceiling). */
  nacc: number[];
  /** Invocations compared with the CPU per probe. */
  samples: number;
}

/** SIMD lanes and cores of a CPU rasteriser, from its description (`llvmpipe (LLVM 15, 256 bits)`). */
export function cpuAdapter(description: string): { lanes: number; threads: number } | null {
  if (!/llvmpipe|lavapipe|swiftshader/i.test(description)) return null;
  const bits = Number(/(\d+) bits/.exec(description)?.[1] ?? 256);
  const env = Number(Deno.env.get("LP_NUM_THREADS"));
  return { lanes: bits / 32, threads: env > 0 ? env : cpus().length };
}

/** ms per dispatch of `op`, `reps` samples of one dispatch per submission. */
async function time(timer: GpuTimer, op: Op, reps: number): Promise<Summary> {
  const xs: number[] = [];
  for (let r = 0; r < reps; r++) xs.push(await timer.perRepeat([op], 1));
  return summarise(xs);
}

/**
 * Iterations that make `build(iters)` take ≥ `minMs` per dispatch: from `start`, scaled by the
 * measured time (with a margin) until a dispatch takes that long.
 */
async function calibrate(
  timer: GpuTimer,
  build: (iters: number) => Op,
  start: number,
  minMs: number,
  maxIters: number,
): Promise<number> {
  let iters = start;
  for (let round = 0; round < 6; round++) {
    const op = build(iters);
    await timer.perRepeat([op], 1); // compile, warm
    const ms = await timer.perRepeat([op], 1);
    // a margin over minMs, so that the timed repetitions stay above it
    if (ms >= 1.1 * minMs || iters >= maxIters) return iters;
    const scale = ms > 0.5 ? (1.25 * minMs) / ms : 16;
    iters = Math.min(maxIters, Math.ceil(iters * Math.min(scale, 64)));
  }
  return iters;
}

function round3(x: number): number {
  return Number(x.toPrecision(3));
}

/** Measure the FMA ceiling and the three load costs on `timer`'s device. */
export async function measureProbes(
  timer: GpuTimer,
  description: string,
  opts: ProbeOptions,
): Promise<ProbeResults> {
  const device = timer.gpu.device;
  const r = new ProbeResources(device, opts.workgroups);
  const wg = opts.workgroups;
  const inv = wg * PROBE_WG;
  const cpu = cpuAdapter(description);
  try {
    const tried: FmaCeiling["tried"] = [];
    let best:
      | { nacc: number; iters: number; ms: Summary; flops: number; check: ProbeCheck }
      | null = null;
    for (const nacc of opts.nacc) {
      const build = (iters: number) => r.fmaOp({ workgroups: wg, iters, nacc });
      const iters = await calibrate(timer, build, 8, opts.minMs, 2 ** 22);
      const op = build(iters);
      const ms = await time(timer, op, opts.reps);
      const check = await checkProbe(
        r,
        inv,
        (g) => fmaExpected({ workgroups: wg, iters, nacc }, g),
        opts.samples,
      );
      if (!check.ok) {
        throw new Error(`fma probe (${nacc} accumulators): GPU ≠ CPU (${check.maxRelErr})`);
      }
      const gflops = op.cost.flops / (ms.median * 1e6);
      tried.push({ nacc, iters, gflops: round3(gflops), check });
      if (!best || gflops > best.flops / (best.ms.median * 1e6)) {
        best = { nacc, iters, ms, flops: op.cost.flops, check };
      }
    }
    const b = best!;
    const gflops = b.flops / (b.ms.median * 1e6);
    const nsPerFma = 8 / gflops;
    const fma: FmaCeiling = {
      gflops: round3(gflops),
      ms: b.ms,
      nacc: b.nacc,
      iters: b.iters,
      workgroups: wg,
      invocations: inv,
      flops: b.flops,
      nsPerFma: round3(nsPerFma),
      nsPerFmaVector: cpu ? round3(nsPerFma * cpu.lanes * cpu.threads) : null,
      tried,
      check: b.check,
    };
    const loads: LoadCost[] = [];
    const memories = LOAD_MEMORIES.filter((m) =>
      m !== "storage-texture" || wgslLanguageFeatures().has(READONLY_STORAGE_TEXTURES)
    );
    for (const memory of memories) {
      const spec = (iters: number, baseline: boolean): LoadSpec => ({
        memory,
        baseline,
        workgroups: wg,
        iters,
      });
      const iters = await calibrate(
        timer,
        (n) => r.loadOp(spec(n, false)),
        4,
        opts.minMs,
        2 ** 20,
      );
      const op = r.loadOp(spec(iters, false));
      const ms = await time(timer, op, opts.reps);
      const check = await checkProbe(
        r,
        inv,
        (g) => loadExpected(spec(iters, false), g),
        opts.samples,
      );
      const base = r.loadOp(spec(iters, true));
      await timer.perRepeat([base], 1);
      const baselineMs = await time(timer, base, opts.reps);
      const baselineCheck = await checkProbe(
        r,
        inv,
        (g) => loadExpected(spec(iters, true), g),
        opts.samples,
      );
      for (const [c, what] of [[check, "loads"], [baselineCheck, "baseline"]] as const) {
        if (!c.ok) throw new Error(`${memory} probe (${what}): GPU ≠ CPU (${c.maxRelErr})`);
      }
      const n = inv * iters * LOAD_CH;
      const ns = Math.max(0, ms.median - baselineMs.median) * 1e6 / n;
      loads.push({
        memory,
        iters,
        workgroups: wg,
        invocations: inv,
        loads: n,
        ms,
        baselineMs,
        nsPerLoad: round3(ns),
        nsPerLoadRaw: round3(ms.median * 1e6 / n),
        nsPerVectorLoad: cpu ? round3(ns * cpu.lanes * cpu.threads) : null,
        fmasPerLoad: round3(ns / nsPerFma),
        check,
        baselineCheck,
      });
    }
    return { cpu, fma, loads };
  } finally {
    r.destroy();
  }
}
