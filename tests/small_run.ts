/**
 * A small two-hidden-layer config on one training batch and a one-model training of it, shared by
 * the whole-training-path tests of batch normalisation, dropout, Adam and augmentation.
 */

import { parseConfig } from "../src/config.ts";
import { populationSpec, prepareData } from "../src/train/run.ts";
import { trainDataOf, trainPopulation } from "../src/train/trainer.ts";

/** A validated config: seed 11, batch 1 with a 1000-sample holdout, hidden [32, 24], He init. */
export function cfgWith(
  model: Record<string, unknown>,
  train: Record<string, unknown> = {},
  data: Record<string, unknown> = {},
) {
  return parseConfig(
    {
      seed: 11,
      data: { train: [1], val: { holdout: 1000 }, test: false, ...data },
      model: { hidden: [32, 24], init: "he", ...model },
      train: {
        batchSize: 100,
        lambda: 0.001,
        schedule: { kind: "cyclic", etaMin: 1e-4, etaMax: 0.05, stepSize: 30, cycles: 1 },
        evalEvery: 60,
        ...train,
      },
    },
    "test",
  );
}

/** Train `cfg` as a population of one; the dataset is freed, the data kept for checks. */
export async function train(cfg: ReturnType<typeof cfgWith>) {
  const data = await prepareData(cfg);
  const spec = populationSpec(cfg, data.cifar.train.n, [cfg.train.lambda], [cfg.seed]);
  const result = await trainPopulation(
    data.gpu,
    { ...trainDataOf(data.dataset), test: null },
    spec,
  );
  data.dataset.destroy();
  return { result, data };
}
