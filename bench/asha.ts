/**
 * The successive-halving (ASHA) benchmark: the same N trials (λ log-spaced, one net, a cyclic
 * schedule of several cycles) trained as one population twice in one run — every trial to the
 * end, then with successive halving at the end of each cycle but the last — reporting the
 * wall-time ratio, the model-steps each trained, and whether halving's best trial lands within
 * 0.5 points of the full search's best validation accuracy, and — each best trial trained again
 * as the final model and evaluated on the test set — of its test accuracy. Halving's survivors train
 * bit-identically to the same trials in the full run, so the check also says whether their
 * curves are equal.
 *
 * @module
 */

import { defaultRungs, keepCount } from "../src/train/halving.ts";
import { evaluateCheckpoint } from "../src/train/eval_checkpoint.ts";
import type { Schedule } from "../src/train/schedule.ts";
import { type TrainData, trainPopulation, type TrainResult } from "../src/train/trainer.ts";
import { type BenchContext, benchSpec } from "./setup.ts";

/** What the comparison trains. */
export interface AshaConfig {
  sizes: number[];
  batch: number;
  /** The trials' λ (one model each; seeds 0, 1, …). */
  lambdas: number[];
  /** A cyclic schedule of at least two cycles (a rung at the end of each but the last). */
  schedule: Schedule & { kind: "cyclic" };
  /** η_r: at a rung of n models, ⌈n/η_r⌉ go on. */
  reduction: number;
  /** Training images: the first of the bench's training split (validation: its val split). */
  trainImages: number;
}

/** The best trial of a search by final validation accuracy. */
export interface AshaBest {
  /** Its index among the trials. */
  trial: number;
  lambda: number;
  valAccuracy: number;
}

/** The comparison's results. */
export interface AshaResult {
  config: AshaConfig & { steps: number; rungs: number[]; evalEvery: number };
  /** Wall seconds of `trainPopulation` with every trial to the end (evaluations included). */
  fullSeconds: number;
  /** The same with successive halving. */
  ashaSeconds: number;
  /** fullSeconds / ashaSeconds. */
  speedup: number;
  /** Model-steps trained: N × steps, and what halving left of them. */
  modelSteps: { full: number; asha: number };
  /** Models training before the first rung and after each one (N, …, the survivors). */
  population: number[];
  /** Best of every trial trained to the end. */
  fullBest: AshaBest;
  /** Best of the trials halving let finish. */
  ashaBest: AshaBest;
  /** fullBest − ashaBest validation accuracy, in percentage points. */
  gapPoints: number;
  /** gapPoints ≤ 0.5. */
  within: boolean;
  /** Whether every survivor's curves equal, bit for bit, its curves in the full run. */
  survivorsIdentical: boolean;
  /**
   * Each search's best trial trained again as the final model (alone, its λ and seed, the same
   * data and schedule) and evaluated on the 10 000 test images: the accuracies, the gap in
   * percentage points (full − ASHA) and whether it is within 0.5.
   */
  test?: { full: number; asha: number; gapPoints: number; within: boolean };
}

/** The best trial among `models` (indices) by final validation accuracy (ties: the first). */
function bestOf(r: TrainResult, lambdas: number[], models: number[]): AshaBest {
  let best: AshaBest = { trial: -1, lambda: NaN, valAccuracy: -Infinity };
  for (const z of models) {
    const acc = r.models[z].final?.val?.accuracy ?? -Infinity;
    if (acc > best.valAccuracy) best = { trial: z, lambda: lambdas[z], valAccuracy: acc };
  }
  return best;
}

/**
 * Train `c.lambdas` to the end, then with successive halving, and compare (the full run goes
 * first: each run includes compiling the pipelines of its population widths).
 */
export async function measureAsha(
  ctx: BenchContext,
  c: AshaConfig,
  log: (line: string) => void,
): Promise<AshaResult> {
  const steps = 2 * c.schedule.stepSize * c.schedule.cycles;
  const rungs = defaultRungs(c.schedule);
  if (rungs.length === 0) throw new Error("the ASHA bench needs a schedule of two cycles or more");
  const evalEvery = 2 * c.schedule.stepSize;
  const data: TrainData = {
    ...ctx.train,
    train: { base: ctx.train.train.base, n: Math.min(c.trainImages, ctx.train.train.n) },
    test: null,
  };
  const spec = benchSpec(ctx, c.sizes, c.batch, c.lambdas, c.schedule, evalEvery);
  const N = c.lambdas.length;
  const population = [N];
  for (const _ of rungs) population.push(keepCount(population.at(-1)!, c.reduction));
  const t0 = performance.now();
  const full = await trainPopulation(ctx.gpu, data, spec);
  const fullSeconds = (performance.now() - t0) / 1000;
  log(`  ASHA bench: ${N} trials to the end in ${fullSeconds.toFixed(1)} s`);
  const t1 = performance.now();
  const asha = await trainPopulation(ctx.gpu, data, {
    ...spec,
    halving: { rungs, reduction: c.reduction },
  });
  const ashaSeconds = (performance.now() - t1) / 1000;
  log(
    `  ASHA bench: with halving (${population.join(" → ")}) in ${ashaSeconds.toFixed(1)} s`,
  );
  const all = [...Array(N).keys()];
  const fullBest = bestOf(full, c.lambdas, all);
  const ashaBest = bestOf(asha, c.lambdas, asha.members);
  // the final model of each search: its best trial trained alone, then the test set
  const finalTest = async (z: number): Promise<number> => {
    const one = await trainPopulation(ctx.gpu, data, {
      ...spec,
      lambdas: [spec.lambdas[z]],
      seeds: [spec.seeds[z]],
    });
    const r = await evaluateCheckpoint(ctx.gpu, {
      params: one.params[0],
      mean: ctx.data.stats.mean,
      std: ctx.data.stats.std,
      metadata: {},
    }, ctx.data.dataDir);
    return r.accuracy;
  };
  const fullTest = await finalTest(fullBest.trial);
  const ashaTest = ashaBest.trial === fullBest.trial ? fullTest : await finalTest(ashaBest.trial);
  log(
    `  ASHA bench: final models on the test set: ${(100 * fullTest).toFixed(2)} % (full), ` +
      `${(100 * ashaTest).toFixed(2)} % (ASHA)`,
  );
  const testGap = 100 * (fullTest - ashaTest);
  const bounds = [0, ...rungs, steps];
  const gapPoints = 100 * (fullBest.valAccuracy - ashaBest.valAccuracy);
  return {
    config: { ...c, steps, rungs, evalEvery },
    fullSeconds,
    ashaSeconds,
    speedup: fullSeconds / ashaSeconds,
    modelSteps: {
      full: N * steps,
      asha: population.reduce((sum, n, i) => sum + n * (bounds[i + 1] - bounds[i]), 0),
    },
    population,
    fullBest,
    ashaBest,
    gapPoints,
    within: gapPoints <= 0.5,
    survivorsIdentical: asha.members.every((z) =>
      JSON.stringify(asha.models[z].curves) === JSON.stringify(full.models[z].curves)
    ),
    test: { full: fullTest, asha: ashaTest, gapPoints: testGap, within: testGap <= 0.5 },
  };
}

/** The comparison as text lines (the console report). */
export function ashaLines(a: AshaResult): string[] {
  const c = a.config;
  const best = (b: AshaBest) =>
    `${(100 * b.valAccuracy).toFixed(2)} % (trial ${b.trial}, λ ${b.lambda.toExponential(2)})`;
  return [
    `ASHA: ${c.lambdas.length} λ of ${c.sizes.join("-")}, B=${c.batch}, ${c.steps} steps on ` +
    `${c.trainImages} images (cyclic n_s=${c.schedule.stepSize}, ${c.schedule.cycles} cycles), ` +
    `rungs at ${c.rungs.join(", ")}, η_r=${c.reduction}: ${a.population.join(" → ")} models`,
    `  every trial to the end: ${a.fullSeconds.toFixed(1)} s, ${a.modelSteps.full} model-steps, ` +
    `best val ${best(a.fullBest)}`,
    `  successive halving:     ${a.ashaSeconds.toFixed(1)} s, ${a.modelSteps.asha} model-steps, ` +
    `best val ${best(a.ashaBest)}`,
    `  ${a.speedup.toFixed(2)}× faster; its best is ${a.gapPoints.toFixed(2)} points below the ` +
    `full search's (within 0.5: ${a.within ? "yes" : "no"}); survivors' curves equal the full ` +
    `run's: ${a.survivorsIdentical ? "yes" : "no"}`,
    ...(a.test
      ? [
        `  each best trial trained as the final model, on the test set: full search ` +
        `${(100 * a.test.full).toFixed(2)} %, ASHA ${(100 * a.test.asha).toFixed(2)} % ` +
        `(${
          a.test.gapPoints >= 0
            ? `${a.test.gapPoints.toFixed(2)} points below`
            : `${(-a.test.gapPoints).toFixed(2)} points above`
        } the full search's; within 0.5: ${a.test.within ? "yes" : "no"})`,
      ]
      : []),
  ];
}
