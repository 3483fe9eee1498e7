/**
 * Work items — one training step and one full epoch of a net at a batch size — measured on this
 * project's trainer, and the same items measured on a peer in pairs (ours, then the peer, rep by
 * rep) so that each ratio compares two runs taken seconds apart.
 *
 * @module
 */

import {
  BENCH_LAMBDA,
  BENCH_SCHEDULE,
  type BenchContext,
  BenchNet,
  benchSpec,
  netName,
} from "./setup.ts";
import { STEP_CHUNK } from "../src/train/trainer.ts";
import type { PeerClient } from "./peers/client.ts";
import { fmtMs, fmtRatio, pairedRatio, summarise, type Summary } from "./stats.ts";

/** One unit of work that every implementation performs. */
export interface WorkItem {
  /** `step/3072-50-10/b100`, `epoch/…`. */
  id: string;
  kind: "step" | "epoch";
  sizes: number[];
  batch: number;
}

/** The items for these nets and batch sizes (steps first, then epochs). */
export function workItems(
  nets: number[][],
  batches: number[],
  epochNets: number[][],
  epochBatches: number[],
): WorkItem[] {
  const items: WorkItem[] = [];
  for (const sizes of nets) {
    for (const batch of batches) {
      items.push({ id: `step/${netName(sizes)}/b${batch}`, kind: "step", sizes, batch });
    }
  }
  for (const sizes of epochNets) {
    for (const batch of epochBatches) {
      items.push({ id: `epoch/${netName(sizes)}/b${batch}`, kind: "epoch", sizes, batch });
    }
  }
  return items;
}

/** A readable name of an item: `step 3072-50-10 B=100`. */
export function itemLabel(item: WorkItem): string {
  return `${item.kind} ${netName(item.sizes)} B=${item.batch}`;
}

/** Repetitions and sizes of the measurements. */
export interface StepOptions {
  /** Paired or plain repetitions of a step item / an epoch item. */
  stepReps: number;
  epochReps: number;
  /** Work per step-item repetition, in ms of our time (sets the steps per repetition). */
  targetMs: number;
}

/** Our result on one item. */
export interface OursItem {
  /** ms per step (step items) or per epoch (epoch items). */
  ms: Summary;
  /** Steps per repetition of a step item; steps per epoch of an epoch item. */
  steps: number;
}

/** This project's trainer on the work items: one BenchNet per (net, batch), kept warm. */
export class OursRunner {
  readonly ctx: BenchContext;
  #nets = new Map<string, BenchNet>();
  #k = new Map<string, number>();

  constructor(ctx: BenchContext) {
    this.ctx = ctx;
  }

  /** The warm net of an item (built, compiled and run once on first use). */
  async net(item: WorkItem): Promise<BenchNet> {
    const key = `${netName(item.sizes)}/${item.batch}`;
    let net = this.#nets.get(key);
    if (!net) {
      net = new BenchNet(
        this.ctx,
        benchSpec(this.ctx, item.sizes, item.batch, [BENCH_LAMBDA], BENCH_SCHEDULE),
      );
      this.#nets.set(key, net);
      await net.runSteps(2); // compile pipelines, touch every buffer
    }
    return net;
  }

  /** Steps per repetition of a step item, so that one repetition takes about `targetMs`. */
  async stepsPerRep(item: WorkItem, targetMs: number): Promise<number> {
    const key = `${netName(item.sizes)}/${item.batch}`;
    let k = this.#k.get(key);
    if (k === undefined) {
      const net = await this.net(item);
      const per = (await net.runSteps(4)) / 4;
      k = Math.max(3, Math.min(STEP_CHUNK, Math.round(targetMs / per)));
      this.#k.set(key, k);
    }
    return k;
  }

  /** One repetition: ms per step (over `k` steps in one submission) or ms per epoch. */
  async once(item: WorkItem, k: number): Promise<number> {
    const net = await this.net(item);
    if (item.kind === "epoch") return await net.runEpoch();
    return (await net.runSteps(k)) / k;
  }

  /** Steps per epoch of an item. */
  async stepsPerEpoch(item: WorkItem): Promise<number> {
    return (await this.net(item)).stepsPerEpoch;
  }

  /** Measure an item on its own: one warm-up repetition, then `reps`. */
  async measure(item: WorkItem, opts: StepOptions): Promise<OursItem> {
    const k = item.kind === "step"
      ? await this.stepsPerRep(item, opts.targetMs)
      : await this.stepsPerEpoch(item);
    await this.once(item, k);
    const samples: number[] = [];
    const reps = item.kind === "step" ? opts.stepReps : opts.epochReps;
    for (let r = 0; r < reps; r++) samples.push(await this.once(item, k));
    return { ms: summarise(samples), steps: k };
  }

  /** Free every net. */
  destroy(): void {
    for (const net of this.#nets.values()) net.destroy();
    this.#nets.clear();
  }
}

/** A peer's result on one item. */
export interface PeerItem {
  status: "ok" | "failed";
  error?: string;
  /** The peer's ms per step / per epoch. */
  ms?: Summary;
  /** Our times in the same pairs. */
  oursMs?: Summary;
  /** Paired ratios peer / ours (> 1: this project is faster). */
  ratio?: Summary;
  /** The peer's steps per repetition (step items). */
  steps?: number;
}

/** Request timeouts of peer commands. */
export interface PeerTimeouts {
  /** Per request, in ms. */
  requestMs: number;
}

/**
 * Measure items on a peer, each repetition paired with one of ours taken right before it. Items
 * sharing a net and batch share one `setup` on the peer. Throws (PeerError) when the peer dies
 * or misses a deadline; results gathered so far are in `out`.
 */
export async function measurePaired(
  ours: OursRunner,
  peer: PeerClient,
  items: WorkItem[],
  opts: StepOptions,
  timeouts: PeerTimeouts,
  out: Map<string, PeerItem>,
  log: (line: string) => void,
): Promise<void> {
  // group by net and batch: one setup (and one warm-up) per group on the peer
  const keyOf = (item: WorkItem) => `${netName(item.sizes)}/${item.batch}`;
  const groups = [...new Set(items.map(keyOf))];
  const order = groups.flatMap((g) => items.filter((item) => keyOf(item) === g));
  let current = "";
  for (const item of order) {
    const key = keyOf(item);
    const k = item.kind === "step"
      ? await ours.stepsPerRep(item, opts.targetMs)
      : await ours.stepsPerEpoch(item);
    if (key !== current) {
      await peer.request("setup", {
        sizes: item.sizes,
        batch: item.batch,
        lam: BENCH_LAMBDA,
        schedule: BENCH_SCHEDULE,
        seed: 0,
      }, timeouts.requestMs);
      current = key;
      // warm-up: allocation, kernel compilation, caches
      const warm = Math.min(await ours.stepsPerEpoch(item), item.kind === "step" ? k : 10);
      await peer.request("steps", { n: warm }, timeouts.requestMs);
    }
    // the peer's steps per repetition follow its own speed (a repetition of about 2·targetMs, at
    // least 3 steps): a fast peer is not timed on a few microseconds, a slow one does not take
    // minutes; ms per step stays comparable
    let kPeer = k;
    if (item.kind === "step") {
      const probe = await peer.request("steps", { n: 3 }, timeouts.requestMs) as { ms: number };
      const per = Math.max(probe.ms / 3, 1e-3);
      kPeer = Math.max(3, Math.min(5000, Math.round((2 * opts.targetMs) / per)));
    }
    const peerOnce = async (): Promise<number> => {
      const r = item.kind === "step"
        ? await peer.request("steps", { n: kPeer }, timeouts.requestMs) as { ms: number }
        : await peer.request("epoch", {}, timeouts.requestMs) as { ms: number };
      return item.kind === "step" ? r.ms / kPeer : r.ms;
    };
    const o: number[] = [], p: number[] = [];
    const reps = item.kind === "step" ? opts.stepReps : opts.epochReps;
    for (let r = 0; r < reps; r++) {
      o.push(await ours.once(item, k));
      p.push(await peerOnce());
    }
    const result: PeerItem = {
      status: "ok",
      ms: summarise(p),
      oursMs: summarise(o),
      ratio: pairedRatio(p, o),
      steps: item.kind === "step" ? kPeer : undefined,
    };
    out.set(item.id, result);
    log(
      `  ${peer.name.padEnd(12)} ${item.id.padEnd(28)} ${fmtMs(result.ms!.median)} ` +
        `(ours ${fmtMs(result.oursMs!.median)}, ratio ${fmtRatio(result.ratio!.median)})`,
    );
  }
}
