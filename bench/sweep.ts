/**
 * The λ-sweep benchmark: P models differing only in λ (and seed) trained as ONE population versus
 * P single-model trainings one after the other, same steps, same data; and, when a peer can, the
 * same P trainings in that peer (numpy float32). Two variants: `trainPopulation` as a user calls
 * it (evaluation on train and val at the start and the end), and training steps alone.
 *
 * @module
 */

import { trainPopulation } from "../src/train/trainer.ts";
import type { Schedule } from "../src/train/schedule.ts";
import type { PeerClient } from "./peers/client.ts";
import { type BenchContext, BenchNet, benchSpec } from "./setup.ts";
import { pairedRatio, summarise, type Summary } from "./stats.ts";

/** What the sweep trains. */
export interface SweepConfig {
  sizes: number[];
  batch: number;
  lambdas: number[];
  schedule: Schedule & { kind: "cyclic" };
  reps: number;
  /** `steps`: training steps alone; `trainPopulation`: the user-facing call, with evaluation. */
  variants: SweepVariantName[];
}

/** The two ways the sweep is timed. */
export type SweepVariantName = "steps" | "trainPopulation";

/** λ values log-spaced over [lo, hi]. */
export function logLambdas(count: number, lo = 1e-5, hi = 1e-1): number[] {
  if (count === 1) return [lo];
  return Array.from(
    { length: count },
    (_, i) => Number((lo * (hi / lo) ** (i / (count - 1))).toPrecision(3)),
  );
}

/** Total steps of a sweep's cyclic schedule. */
export function sweepSteps(c: SweepConfig): number {
  return 2 * c.schedule.stepSize * c.schedule.cycles;
}

/** One variant's timings (ms for all P trainings). */
export interface SweepVariant {
  population: Summary;
  sequential: Summary;
  /** Paired sequential / population. */
  speedup: Summary;
  peers: Record<
    string,
    {
      status: "ok" | "failed";
      error?: string;
      ms?: Summary;
      vsPopulation?: Summary;
      vsSequential?: Summary;
    }
  >;
}

/** The sweep's results. */
export interface SweepResult {
  config: SweepConfig & { steps: number; evalEvery: number };
  /** trainPopulation with evaluation on train and val at the start and the end. */
  withEval?: SweepVariant;
  /** Training steps alone (nets built beforehand). */
  trainOnly?: SweepVariant;
}

/** Our two ways of training the P models, with or without trainPopulation's evaluations. */
class OursSweep {
  readonly ctx: BenchContext;
  readonly c: SweepConfig;
  readonly steps: number;
  #pop: BenchNet | null = null;
  #single: BenchNet | null = null;

  constructor(ctx: BenchContext, c: SweepConfig) {
    this.ctx = ctx;
    this.c = c;
    this.steps = sweepSteps(c);
  }

  spec(lambdas: number[]) {
    return benchSpec(this.ctx, this.c.sizes, this.c.batch, lambdas, this.c.schedule, this.steps);
  }

  /** Compile every pipeline both variants use, cheaply (a 2-step single-model training). */
  async warmUp(): Promise<void> {
    const spec = this.spec([this.c.lambdas[0]]);
    spec.schedule = { ...this.c.schedule, stepSize: 1 };
    spec.evalEvery = 2;
    await trainPopulation(this.ctx.gpu, this.ctx.train, spec);
    this.#pop ??= new BenchNet(this.ctx, this.spec(this.c.lambdas));
    this.#single ??= new BenchNet(this.ctx, this.spec([this.c.lambdas[0]]));
    await this.#pop.runSteps(2);
    await this.#single.runSteps(2);
  }

  /** Wall ms of one `trainPopulation` call training every λ at once. */
  async populationWithEval(): Promise<number> {
    const t0 = performance.now();
    await trainPopulation(this.ctx.gpu, this.ctx.train, this.spec(this.c.lambdas));
    return performance.now() - t0;
  }

  /** Wall ms of one `trainPopulation` call per λ, in turn. */
  async sequentialWithEval(): Promise<number> {
    const t0 = performance.now();
    for (const [i, lam] of this.c.lambdas.entries()) {
      const spec = this.spec([lam]);
      spec.seeds = [i];
      await trainPopulation(this.ctx.gpu, this.ctx.train, spec);
    }
    return performance.now() - t0;
  }

  /** ms of the training steps of the whole population (net built beforehand). */
  async populationSteps(): Promise<number> {
    this.#pop ??= new BenchNet(this.ctx, this.spec(this.c.lambdas));
    this.#pop.t = 0;
    return await this.#pop.runSteps(this.steps);
  }

  /** ms of the training steps of P single models, one after the other. */
  async sequentialSteps(): Promise<number> {
    this.#single ??= new BenchNet(this.ctx, this.spec([this.c.lambdas[0]]));
    let ms = 0;
    for (let i = 0; i < this.c.lambdas.length; i++) {
      this.#single.t = 0;
      ms += await this.#single.runSteps(this.steps);
    }
    return ms;
  }

  destroy(): void {
    this.#pop?.destroy();
    this.#single?.destroy();
  }
}

/**
 * Run the sweep benchmark: a warm-up of each variant, then `reps` rounds in which ours
 * (population, sequential) and every peer run back to back, so ratios pair runs of one round.
 */
export async function measureSweep(
  ctx: BenchContext,
  c: SweepConfig,
  peers: PeerClient[],
  requestMs: number,
  log: (line: string) => void,
): Promise<SweepResult> {
  const ours = new OursSweep(ctx, c);
  const steps = ours.steps;
  const peerArgs = (evaluate: boolean) => ({
    sizes: c.sizes,
    batch: c.batch,
    lambdas: c.lambdas,
    schedule: c.schedule,
    steps,
    evaluate,
  });
  const variant = async (evaluate: boolean): Promise<SweepVariant> => {
    const pop = evaluate ? () => ours.populationWithEval() : () => ours.populationSteps();
    const seq = evaluate ? () => ours.sequentialWithEval() : () => ours.sequentialSteps();
    const name = evaluate ? "trainPopulation" : "training steps only";
    const P: number[] = [], S: number[] = [];
    const peerMs = new Map<string, number[]>();
    const failed = new Map<string, string>();
    for (let r = 0; r < c.reps; r++) {
      P.push(await pop());
      S.push(await seq());
      log(
        `  sweep (${name}) rep ${r + 1}/${c.reps}: population ${fmt(P[r])}, sequential ${
          fmt(S[r])
        }`,
      );
      for (const peer of peers) {
        if (failed.has(peer.name)) continue;
        try {
          if (r === 0) {
            await peer.request(
              "sweep",
              { ...peerArgs(evaluate), lambdas: c.lambdas.slice(0, 1) },
              requestMs,
            );
          }
          const res = await peer.request("sweep", peerArgs(evaluate), requestMs) as { ms: number };
          if (!peerMs.has(peer.name)) peerMs.set(peer.name, []);
          peerMs.get(peer.name)!.push(res.ms);
          log(`  sweep (${name}) rep ${r + 1}/${c.reps}: ${peer.name} ${fmt(res.ms)}`);
        } catch (e) {
          failed.set(peer.name, (e as Error).message);
          log(`  sweep: ${peer.name} failed: ${(e as Error).message}`);
        }
      }
    }
    const out: SweepVariant = {
      population: summarise(P),
      sequential: summarise(S),
      speedup: pairedRatio(S, P),
      peers: {},
    };
    for (const peer of peers) {
      const ms = peerMs.get(peer.name);
      if (failed.has(peer.name) && (!ms || ms.length < c.reps)) {
        out.peers[peer.name] = { status: "failed", error: failed.get(peer.name) };
      } else if (ms) {
        out.peers[peer.name] = {
          status: "ok",
          ms: summarise(ms),
          vsPopulation: pairedRatio(ms, P),
          vsSequential: pairedRatio(ms, S),
        };
      }
    }
    return out;
  };
  try {
    await ours.warmUp();
    const out: SweepResult = { config: { ...c, steps, evalEvery: steps } };
    if (c.variants.includes("steps")) out.trainOnly = await variant(false);
    if (c.variants.includes("trainPopulation")) out.withEval = await variant(true);
    return out;
  } finally {
    ours.destroy();
  }
}

function fmt(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** The variants a sweep result holds, with their display names. */
export function sweepVariants(r: SweepResult): [string, SweepVariant][] {
  const out: [string, SweepVariant][] = [];
  if (r.trainOnly) out.push(["training steps only", r.trainOnly]);
  if (r.withEval) out.push(["trainPopulation (eval at start and end)", r.withEval]);
  return out;
}
