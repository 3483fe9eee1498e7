/**
 * Batch normalisation, dropout, Adam and augmentation through the whole training path: the GPU
 * evaluation of a trained BN net uses its running statistics exactly as the float64 reference
 * does; dropout runs are reproducible and train differently from plain runs; Adam trains; and
 * the config refuses out-of-range settings with one line.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../src/config.ts";
import { UserError } from "../src/errors.ts";
import { evaluate } from "../src/reference/network.ts";
import { normalise } from "../src/data/cifar10.ts";
import { populationSpec, prepareData } from "../src/train/run.ts";
import { trainPopulation } from "../src/train/trainer.ts";

function cfgWith(
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

async function train(cfg: ReturnType<typeof cfgWith>) {
  const data = await prepareData(cfg);
  const spec = populationSpec(cfg, data.cifar.train.n, [cfg.train.lambda], [cfg.seed]);
  const result = await trainPopulation(data.gpu, {
    dataset: data.dataset,
    train: data.dataset.splits.train,
    val: data.dataset.splits.val,
    test: null,
  }, spec);
  data.dataset.destroy();
  return { result, data };
}

Deno.test("BN: GPU evaluation uses the running statistics, as the float64 reference does", async () => {
  const cfg = cfgWith({ bn: [true, true], bnAlpha: 0.8 });
  const { result, data } = await train(cfg);
  const p = result.params[0];
  assert.ok(p.bn?.[0] && p.bn[1], "BN parameters come back");
  assert.ok(p.bn![0]!.mean.some((m) => Math.abs(m) > 1e-3), "running means moved");
  assert.ok(p.bn![0]!.variance.some((v) => Math.abs(v - 1) > 1e-3), "running variances moved");
  const val = data.cifar.val!;
  const X = normalise(val.images, val.n, data.stats);
  const ref = evaluate(p, X, val.labels, val.n, cfg.train.lambda, { mode: "eval" });
  const gpu = result.models[0].final!.val!;
  assert.ok(Math.abs(gpu.loss - ref.loss) < 1e-4 * ref.loss, `val loss ${gpu.loss} vs ${ref.loss}`);
  assert.ok(
    Math.abs(gpu.accuracy - ref.accuracy) <= 2 / val.n,
    `val acc ${gpu.accuracy} vs ${ref.accuracy}`,
  );
  // on a small batch, its own statistics give other numbers than the running ones
  const few = X.subarray(0, 7 * 3072);
  const batchMode = evaluate(p, few, val.labels, 7, 0, { mode: "train" });
  const evalMode = evaluate(p, few, val.labels, 7, 0, { mode: "eval" });
  assert.ok(
    Math.abs(batchMode.loss - evalMode.loss) > 1e-3,
    "eval mode differs from batch statistics",
  );
  assert.ok(result.models[0].curves.at(-1)!.train.loss < result.models[0].curves[0].train.loss);
});

Deno.test("dropout: same seed reproduces the run, and it trains differently from no dropout", async () => {
  const a = await train(cfgWith({ dropout: 0.3 }));
  const b = await train(cfgWith({ dropout: 0.3 }));
  const plain = await train(cfgWith({ dropout: 0 }));
  assert.deepEqual(a.result.models[0].curves, b.result.models[0].curves);
  const last = (r: typeof a) => r.result.models[0].curves.at(-1)!.train.loss;
  assert.notEqual(last(a), last(plain));
  // evaluation is deterministic and dropout-free: the same weights give the same loss twice
  assert.equal(a.result.models[0].final!.train.loss, b.result.models[0].final!.train.loss);
  assert.ok(last(a) < a.result.models[0].curves[0].train.loss, "a dropout net still learns");
});

Deno.test("Adam and augmentation train on the GPU", async () => {
  const adam = await train(cfgWith({}, {
    optimizer: { kind: "adam" },
    schedule: { kind: "constant", eta: 1e-3, epochs: 1 },
    evalEvery: 90,
  }, { augment: { flip: true, translate: 3 } }));
  const c = adam.result.models[0].curves;
  assert.ok(
    c.at(-1)!.train.loss < c[0].train.loss - 0.2,
    `Adam loss ${c[0].train.loss} → ${c.at(-1)!.train.loss}`,
  );
  assert.ok(c.at(-1)!.val!.accuracy > 0.25);
});

Deno.test("out-of-range improvement settings get one line", () => {
  const bad = (f: () => unknown, re: RegExp) =>
    assert.throws(
      f,
      (e: Error) => e instanceof UserError && re.test(e.message) && !e.message.includes("\n"),
    );
  bad(
    () => cfgWith({ bn: [true, true, true] }),
    /batch normalisation applies to hidden layers only, not to the output layer/,
  );
  bad(() => cfgWith({ bnAlpha: 1 }), /model\.bnAlpha must be < 1/);
  bad(() => cfgWith({ bnAlpha: 0 }), /model\.bnAlpha must be > 0/);
  bad(() => cfgWith({ dropout: 1 }), /model\.dropout/);
  bad(() => cfgWith({ dropout: [0.1] }), /model\.dropout has 1 entries for 2 hidden layers/);
  bad(
    () => cfgWith({}, {}, { augment: { translate: 32 } }),
    /data\.augment\.translate must be <= 31/,
  );
  bad(
    () => cfgWith({}, { optimizer: { kind: "adam", beta1: 1 } }),
    /train\.optimizer\.beta1 must be < 1/,
  );
  bad(
    () => cfgWith({}, { optimizer: { kind: "adam", beta2: -0.1 } }),
    /train\.optimizer\.beta2 must be >= 0/,
  );
  bad(
    () => cfgWith({}, { optimizer: { kind: "rmsprop" } }),
    /train\.optimizer\.kind must be one of "sgd", "adam"/,
  );
});
