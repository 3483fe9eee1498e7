/**
 * The benchmark's result file (`bench/results/<adapter>-<date>.json`, format
 * `webgpu-mlp.bench/2`): environment, settings, the probes (FMA ceiling — the bench's peak — and
 * load costs), the square product, dispatches per training step, every median/min/max with its
 * samples, paired ratios, and the peers that ran, failed or were skipped (with the reason).
 * Format 2 replaced format 1's `peak` (the square product) by `probes.fma` and `square`, and each
 * kernel's `ofPeak` by `ofCeiling` and `ofSquare`.
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "../src/io/atomic.ts";
import type { AdapterSummary, KernelProfile, TextureReads } from "../src/gpu/device.ts";
import type {
  CarryComparison,
  ImagesComparison,
  KernelResult,
  SquareResult,
  StepBreakdown,
  StepDispatches,
  TailComparison,
} from "./kernels.ts";
import type { ProbeResults } from "./probes.ts";
import type { OursItem, PeerItem, WorkItem } from "./steps.ts";
import type { SweepResult } from "./sweep.ts";
import type { AshaResult } from "./asha.ts";
import type { PbtBenchResult } from "./pbt.ts";
import type { TileShapeResult } from "./tiles.ts";
import type { VerifyResult } from "./verify.ts";

/** What a peer says about itself when it starts (keys depend on the peer). */
export interface PeerHello {
  peer?: string;
  python?: string;
  executable?: string;
  numpy?: string;
  torch?: string;
  /** Intra-op threads (PyTorch). */
  threads?: number;
  torch_blas?: string;
  cuda_device?: string;
  tfjs?: string;
  backend?: string;
  simd?: boolean;
  wasmThreads?: boolean;
  adapter?: string;
  capabilities?: string[];
  blas?: {
    openblas?: { library: string; core: string; config?: string | null } | null;
    threadpools?: { internal_api?: string; num_threads?: number }[] | string;
    numpy_build?: unknown;
  };
  [key: string]: unknown;
}

/** A peer as the run saw it. */
export interface PeerRecord {
  name: string;
  description: string;
  status: "ok" | "skipped" | "failed";
  /** Why it was skipped or failed. */
  reason?: string;
  /** What the peer reported about itself (versions, BLAS kernels, threads, device). */
  hello?: PeerHello;
  /** Loss and accuracy on 1000 training samples after its runs (a sanity check). */
  sanity?: Record<string, unknown>;
  /** Same-math checks against this project (identical start and batches). */
  verify?: VerifyResult[];
  seconds?: number;
}

/** One work item with our result and each peer's. */
export interface ItemRecord extends WorkItem {
  ours: OursItem;
  peers: Record<string, PeerItem>;
}

/** Everything a bench run writes. */
export interface BenchResults {
  format: "webgpu-mlp.bench/2";
  date: string;
  argv: string[];
  mode: { quick: boolean; sections: string[]; peers: string[] };
  env: {
    adapter: AdapterSummary;
    timestamps: boolean;
    /** The kernel selection of the products (`Gpu.kernelProfile`; absent in older results: cpu). */
    kernels?: KernelProfile;
    /** Whether layer 1's products read texture copies (`Gpu.prefersTextures`). */
    textures?: boolean;
    /** How texture operands are read (`Gpu.textureReads`; absent in older results: sampled). */
    textureReads?: TextureReads;
    backend: string;
    deno: typeof Deno.version;
    os: string;
    arch: string;
    cpus: number;
    cpuModel: string;
    loadavg: { start: number[]; end?: number[] };
    trainBatches: number[];
    trainSamples: number;
  };
  settings: Record<string, unknown>;
  /** FMA ceiling (the peak every "of ceiling" is against) and load costs, from shaders/probe.wgsl. */
  probes?: ProbeResults;
  /** This project's matmul on a large square product. */
  square?: SquareResult;
  /** Dispatches per training step of the 2- and 3-layer nets. */
  dispatches?: StepDispatches[];
  /** Dispatches per step of the same nets as the other kernel profile builds them. */
  dispatchesOther?: { profile: KernelProfile; nets: { net: string; perStep: number }[] };
  /** The step with its top layers in the tail against the products it replaces. */
  tail?: TailComparison[];
  /** The step whose tail carries the next step's gather against the step with its own. */
  carry?: CarryComparison[];
  /** The step reading the batch from the dataset's images against the step with X gathered. */
  images?: ImagesComparison[];
  kernels?: { net: string; batch: number; results: KernelResult[] };
  /**
   * Every dispatch of a population's training step (the sweep's models as one population), timed
   * like `kernels`: the wide products of layer 1 that make a population faster than its models.
   */
  populationKernels?: { net: string; batch: number; models: number; results: KernelResult[] };
  breakdown?: StepBreakdown & { net: string; batch: number; stepWallMs?: number };
  items: ItemRecord[];
  sweep?: SweepResult;
  /** Successive halving against every trial trained to the end (the sweep section). */
  asha?: AshaResult;
  /** Population-based training against random search at equal compute (the sweep section). */
  pbt?: PbtBenchResult;
  tiles?: TileShapeResult[];
  peers: PeerRecord[];
  seconds?: number;
}

/** A file-name-safe name of the adapter: `llvmpipe`, `nvidia-geforce-rtx-4090`. */
export function adapterSlug(a: AdapterSummary): string {
  const text = (a.description || a.device || a.vendor || "gpu").toLowerCase();
  const short = text.replace(/\(.*?\)/g, " ").trim() || text;
  return short.replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 48) || "gpu";
}

/** `<dir>/<adapter>-<YYYY-MM-DD>T<HHMMSS>` (local time), without extension. */
export function resultBase(dir: string, a: AdapterSummary, when: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const stamp = `${when.getFullYear()}-${p(when.getMonth() + 1)}-${p(when.getDate())}T` +
    `${p(when.getHours())}${p(when.getMinutes())}${p(when.getSeconds())}`;
  return join(dir, `${adapterSlug(a)}-${stamp}`);
}

/** Write the JSON (atomically); non-finite numbers become null. */
export async function writeResults(path: string, r: BenchResults): Promise<void> {
  await writeFileAtomic(
    path,
    JSON.stringify(r, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2) +
      "\n",
  );
}
