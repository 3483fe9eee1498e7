/**
 * Per-model hyperparameters (PopulationSpec.schedules, .sigmas): a population whose models follow
 * their own learning rates and init σ trains each model exactly as it trains alone — the same
 * curves and parameters, bit for bit — through every kernel that applies η (the SGD epilogues,
 * the tail, batch norm's SGD, Adam's update).
 */

import assert from "node:assert/strict";
import { populationSpec, prepareData } from "../src/train/run.ts";
import {
  checkPerModel,
  type PopulationSpec,
  trainDataOf,
  trainPopulation,
} from "../src/train/trainer.ts";
import type { Schedule } from "../src/train/schedule.ts";
import { cfgWith } from "./small_run.ts";

const cyclic = (etaMin: number, etaMax: number): Schedule => ({
  kind: "cyclic",
  etaMin,
  etaMax,
  stepSize: 30,
  cycles: 1,
});

async function assertAlone(name: string, cfg: ReturnType<typeof cfgWith>, schedules: Schedule[]) {
  const data = await prepareData(cfg);
  const splits = { ...trainDataOf(data.dataset), test: null };
  const P = schedules.length;
  const lambdas = schedules.map((_, z) => 0.001 * z);
  const base = populationSpec(cfg, data.cifar.train.n, lambdas, lambdas.map((_, z) => 3 + z));
  const sigmas = schedules.map((_, z) => 0.01 * (z + 1));
  const together = await trainPopulation(data.gpu, splits, { ...base, schedules, sigmas });
  for (let z = 0; z < P; z++) {
    const alone: PopulationSpec = {
      ...base,
      lambdas: [lambdas[z]],
      seeds: [base.seeds[z]],
      schedule: schedules[z],
      sigma: sigmas[z],
    };
    const one = await trainPopulation(data.gpu, splits, alone);
    assert.deepEqual(together.models[z], one.models[0], `${name}: model ${z}'s curves`);
    assert.deepEqual(together.params[z], one.params[0], `${name}: model ${z}'s parameters`);
  }
  data.dataset.destroy();
}

Deno.test("per-model η and σ: a 2-layer SGD population (the tail) equals its models trained one by one", async () => {
  await assertAlone("sgd [32]", cfgWith({ hidden: [32], init: "gaussian" }), [
    cyclic(1e-4, 0.02),
    cyclic(1e-5, 0.05),
    cyclic(1e-3, 0.1),
  ]);
});

Deno.test("per-model η: 3-layer SGD, batch norm's SGD and Adam's update equal one-by-one training", async () => {
  await assertAlone("sgd [20, 16]", cfgWith({ hidden: [20, 16] }), [
    cyclic(1e-4, 0.02),
    cyclic(1e-5, 0.08),
  ]);
  await assertAlone("sgd BN [24]", cfgWith({ hidden: [24], bn: true }), [
    cyclic(1e-4, 0.02),
    cyclic(1e-5, 0.08),
  ]);
  await assertAlone(
    "adam [24]",
    cfgWith({ hidden: [24] }, {
      optimizer: { kind: "adam" },
      schedule: { kind: "constant", eta: 0.001, epochs: 1 },
    }),
    [
      { kind: "constant", eta: 0.001, epochs: 1 },
      { kind: "constant", eta: 0.003, epochs: 1 },
    ],
  );
});

Deno.test("per-model schedules must differ only in their rates", () => {
  const spec = {
    ...cfgSpec(),
    schedules: [cyclic(1e-5, 0.1), { ...cyclic(1e-5, 0.1), stepSize: 31 }],
  };
  assert.throws(() => checkPerModel(spec, 100), /share the kind, steps and step size/);
  assert.throws(
    () => checkPerModel({ ...cfgSpec(), schedules: [cyclic(1e-5, 0.1)] }, 100),
    /1 schedules for 2 models/,
  );
  assert.throws(() => checkPerModel({ ...cfgSpec(), sigmas: [0.1] }, 100), /1 sigmas for 2 models/);
  checkPerModel({ ...cfgSpec(), schedules: [cyclic(1e-5, 0.1), cyclic(1e-3, 0.01)] }, 100);
});

function cfgSpec(): PopulationSpec {
  return {
    sizes: [3072, 10, 10],
    init: "xavier",
    sigma: 0.01,
    lambdas: [0, 0.1],
    seeds: [0, 1],
    batchSize: 100,
    schedule: cyclic(1e-5, 0.1),
    evalEvery: 10,
    shuffleSeed: 0,
  };
}

/**
 * Per-model dropout: in a population whose models drop with their own p, a model with p = 0
 * trains exactly as in a population without dropout, and one with p exactly as in a population
 * where every model drops with p (the masks are the same: they depend on the model's place).
 */
async function assertOwnDropout(name: string, cfg: ReturnType<typeof cfgWith>, p: number) {
  const data = await prepareData(cfg);
  const splits = { ...trainDataOf(data.dataset), test: null };
  const base = populationSpec(cfg, data.cifar.train.n, [0.001, 0.002], [3, 4]);
  const hidden = base.sizes.length - 2;
  const row = (q: number) => Array(hidden).fill(q);
  const run = (spec: PopulationSpec) => trainPopulation(data.gpu, splits, spec);
  const mixed = await run({ ...base, dropouts: [row(0), row(p)] });
  const none = await run({ ...base, net: { ...base.net, dropout: row(0) } });
  const all = await run({ ...base, net: { ...base.net, dropout: row(p) } });
  assert.deepEqual(mixed.models[0], none.models[0], `${name}: p = 0 as without dropout`);
  assert.deepEqual(mixed.params[0], none.params[0], `${name}: p = 0 parameters`);
  assert.deepEqual(mixed.models[1], all.models[1], `${name}: p = ${p} as when all drop`);
  assert.deepEqual(mixed.params[1], all.params[1], `${name}: p = ${p} parameters`);
  assert.notDeepEqual(mixed.params[0], mixed.params[1]);
  data.dataset.destroy();
}

Deno.test("per-model dropout: each model drops with its own p (the tail, the wide layer 1, batch norm, Adam)", async () => {
  await assertOwnDropout("sgd [32]", cfgWith({ hidden: [32] }), 0.3);
  await assertOwnDropout("sgd [20, 16]", cfgWith({ hidden: [20, 16] }), 0.25);
  await assertOwnDropout("sgd BN [24]", cfgWith({ hidden: [24], bn: true }), 0.3);
  await assertOwnDropout(
    "adam [24]",
    cfgWith({ hidden: [24] }, { optimizer: { kind: "adam" } }),
    0.2,
  );
});
