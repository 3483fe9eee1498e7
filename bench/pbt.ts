/**
 * The population-based training benchmark: N trials of (λ, η_max) drawn log-uniform from one
 * seed, trained as one population twice in one run at equal compute (N models × the same
 * steps): once as a random search (every trial to the end with the values it drew), once with
 * PBT exploiting every `interval` steps from the same starting points. It reports both wall
 * times (PBT's exploits add their readbacks and copies) and both best validation accuracies,
 * with the difference in points. One seed: the difference is one draw, not an average.
 *
 * @module
 */

import { Rng } from "../src/model/rng.ts";
import { exploitSteps, type PbtSpec } from "../src/train/pbt.ts";
import type { Schedule } from "../src/train/schedule.ts";
import { type TrainData, trainPopulation, type TrainResult } from "../src/train/trainer.ts";
import { type BenchContext, benchSpec } from "./setup.ts";

/** What the comparison trains. */
export interface PbtBenchConfig {
  sizes: number[];
  batch: number;
  /** Trials (models of the population). */
  trials: number;
  /** λ and η_max ranges the trials are drawn from (log-uniform), and PBT explores in. */
  lambdaRange: [number, number];
  etaMaxRange: [number, number];
  /** Seed of the draws and of PBT's exploits. */
  seed: number;
  /** A cyclic schedule (its η_max is each trial's own). */
  schedule: Schedule & { kind: "cyclic" };
  /** Update steps between exploits. */
  interval: number;
  /** Fraction copied at each exploit. */
  quantile: number;
  /** Training images: the first of the bench's training split (validation: its val split). */
  trainImages: number;
}

/** The best trial of a search by final validation accuracy, with the values it ended with. */
export interface PbtBest {
  trial: number;
  lambda: number;
  etaMax: number;
  valAccuracy: number;
}

/** The comparison's results. */
export interface PbtBenchResult {
  config: PbtBenchConfig & { steps: number; exploits: number[] };
  /** Wall seconds of `trainPopulation` as a random search (evaluations included). */
  randomSeconds: number;
  /** The same with PBT. */
  pbtSeconds: number;
  /** Model-steps each trained (equal: N × steps). */
  modelSteps: number;
  randomBest: PbtBest;
  pbtBest: PbtBest;
  /** pbtBest − randomBest validation accuracy, in percentage points. */
  gainPoints: number;
  /** Copies PBT made over all its exploits. */
  copies: number;
  /** Median validation accuracy at the end: random search, PBT. */
  median: { random: number; pbt: number };
}

function best(r: TrainResult, lambdas: number[], etas: number[]): PbtBest {
  let out: PbtBest = { trial: -1, lambda: NaN, etaMax: NaN, valAccuracy: -Infinity };
  r.models.forEach((m, z) => {
    const acc = m.final?.val?.accuracy ?? -Infinity;
    if (acc > out.valAccuracy) {
      const last = m.lineage?.at(-1)?.values;
      out = {
        trial: z,
        lambda: last?.lambda ?? lambdas[z],
        etaMax: last?.etaMax ?? etas[z],
        valAccuracy: acc,
      };
    }
  });
  return out;
}

function median(r: TrainResult): number {
  const accs = r.models.map((m) => m.final?.val?.accuracy ?? 0).sort((a, b) => a - b);
  return accs[Math.floor(accs.length / 2)];
}

/** Train the trials as a random search, then with PBT, and compare. */
export async function measurePbt(
  ctx: BenchContext,
  c: PbtBenchConfig,
  log: (line: string) => void,
): Promise<PbtBenchResult> {
  const steps = 2 * c.schedule.stepSize * c.schedule.cycles;
  const rng = new Rng(c.seed);
  const logDraw = ([lo, hi]: [number, number]) => 10 ** rng.range(Math.log10(lo), Math.log10(hi));
  const lambdas = Array.from({ length: c.trials }, () => logDraw(c.lambdaRange));
  const etas = Array.from({ length: c.trials }, () => logDraw(c.etaMaxRange));
  const data: TrainData = {
    ...ctx.train,
    train: { base: ctx.train.train.base, n: Math.min(c.trainImages, ctx.train.train.n) },
    test: null,
  };
  const base = benchSpec(ctx, c.sizes, c.batch, lambdas, c.schedule, c.interval);
  const spec = { ...base, schedules: etas.map((etaMax) => ({ ...c.schedule, etaMax })) };
  const exploits = exploitSteps(c.interval, steps);
  const pbt: PbtSpec = {
    steps: exploits,
    quantile: c.quantile,
    factors: [0.8, 1.2],
    resample: 0.25,
    seed: c.seed,
    dims: [
      { name: "lambda", kind: "log", range: c.lambdaRange },
      { name: "etaMax", kind: "log", range: c.etaMaxRange },
    ],
  };
  const t0 = performance.now();
  const random = await trainPopulation(ctx.gpu, data, spec);
  const randomSeconds = (performance.now() - t0) / 1000;
  log(`  PBT bench: ${c.trials} trials as a random search in ${randomSeconds.toFixed(1)} s`);
  let copies = 0;
  const t1 = performance.now();
  const withPbt = await trainPopulation(ctx.gpu, data, { ...spec, pbt }, {
    onExploit: (e) => copies += e.moves.length,
  });
  const pbtSeconds = (performance.now() - t1) / 1000;
  log(`  PBT bench: with PBT (${exploits.length} exploits) in ${pbtSeconds.toFixed(1)} s`);
  const randomBest = best(random, lambdas, etas), pbtBest = best(withPbt, lambdas, etas);
  return {
    config: { ...c, steps, exploits },
    randomSeconds,
    pbtSeconds,
    modelSteps: c.trials * steps,
    randomBest,
    pbtBest,
    gainPoints: 100 * (pbtBest.valAccuracy - randomBest.valAccuracy),
    copies,
    median: { random: median(random), pbt: median(withPbt) },
  };
}

/** The comparison as text lines (the console report). */
export function pbtLines(p: PbtBenchResult): string[] {
  const c = p.config;
  const b = (x: PbtBest) =>
    `${(100 * x.valAccuracy).toFixed(2)} % (trial ${x.trial}, λ ${x.lambda.toExponential(2)}, ` +
    `η_max ${x.etaMax.toExponential(2)})`;
  return [
    `PBT: ${c.trials} trials of ${c.sizes.join("-")}, B=${c.batch}, ${c.steps} steps on ` +
    `${c.trainImages} images (cyclic n_s=${c.schedule.stepSize}, ${c.schedule.cycles} cycles), ` +
    `λ and η_max log-uniform, exploits every ${c.interval} steps (quantile ${c.quantile}), ` +
    `${p.modelSteps} model-steps each`,
    `  random search: ${p.randomSeconds.toFixed(1)} s, best val ${b(p.randomBest)}, median ` +
    `${(100 * p.median.random).toFixed(2)} %`,
    `  PBT:           ${p.pbtSeconds.toFixed(1)} s, best val ${b(p.pbtBest)}, median ` +
    `${(100 * p.median.pbt).toFixed(2)} %, ${p.copies} copies`,
    `  PBT's best is ${p.gainPoints >= 0 ? "+" : ""}${p.gainPoints.toFixed(2)} points against ` +
    `random search's at equal compute; time ×${(p.pbtSeconds / p.randomSeconds).toFixed(2)}`,
  ];
}
