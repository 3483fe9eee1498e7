/**
 * End to end on the real data: a short training run whose loss decreases, with its metrics,
 * checkpoint (read back by `eval` with the same test accuracy) and report; a diverging run that
 * stops with status "diverged"; the refusal to overwrite a run directory; and the same numbers
 * whether layer 1's operands are read through texture copies or buffers.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseConfig } from "../src/config.ts";
import { getGpu } from "../src/gpu/device.ts";
import { resolveDataDir } from "../src/data/data_dir.ts";
import { evaluateCheckpoint } from "../src/train/eval_checkpoint.ts";
import type { RunMetrics } from "../src/train/metrics.ts";
import { runExperiment } from "../src/train/run.ts";

function config(out: string, train: Record<string, unknown>, name = "t") {
  return parseConfig(
    {
      name,
      out,
      seed: 3,
      data: { train: [1], val: { batch: 2 }, test: true },
      model: { hidden: [30], init: "xavier" },
      train: {
        batchSize: 100,
        lambda: 0.01,
        schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 60, cycles: 1 },
        evalEvery: 40,
        ...train,
      },
    },
    "test",
  );
}

Deno.test("a short run trains: loss falls, files are complete, eval agrees", async () => {
  const out = await Deno.makeTempDir();
  const lines: string[] = [];
  const { dir, metrics } = await runExperiment(config(out, {}), { log: (l) => lines.push(l) });
  assert.equal(metrics.status, "completed");
  assert.deepEqual(metrics.curves.map((p) => p.step), [0, 40, 80, 120]);
  const first = metrics.curves[0], last = metrics.curves.at(-1)!;
  assert.ok(
    last.train.loss < first.train.loss - 0.3,
    `loss ${first.train.loss} → ${last.train.loss}`,
  );
  assert.ok(last.val!.accuracy > 0.3, `val accuracy ${last.val!.accuracy}`);
  assert.ok(last.train.cost > last.train.loss, "cost includes the L2 term");
  assert.ok(metrics.final.test!.accuracy > 0.3);
  assert.equal(metrics.final.test!.confusion.flat().reduce((a, b) => a + b, 0), 10000);
  assert.equal(metrics.timings.steps, 120);
  assert.ok(lines.some((l) => /step +120\/120 100%/.test(l)), "progress line at the end");
  const onDisk = JSON.parse(await Deno.readTextFile(join(dir, "metrics.json"))) as RunMetrics;
  assert.equal(onDisk.final.test!.accuracy, metrics.final.test!.accuracy);
  assert.ok((await Deno.stat(join(dir, "report.html"))).size > 1000);
  const ev = await evaluateCheckpoint(
    await getGpu(),
    join(dir, "weights.safetensors"),
    resolveDataDir(),
  );
  assert.equal(ev.accuracy, metrics.final.test!.accuracy);
  assert.ok(Math.abs(ev.loss - metrics.final.test!.loss) < 1e-6);
  // same seed, same adapter → same numbers
  const again = await runExperiment(config(out, {}, "t2"), { log: () => {}, report: false });
  assert.deepEqual(again.metrics.curves, metrics.curves);
  // the directory is not overwritten without asking
  await assert.rejects(
    () => runExperiment(config(out, {}), { log: () => {} }),
    /already exists: pass --overwrite/,
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("a diverging run stops with status diverged and no checkpoint", async () => {
  const out = await Deno.makeTempDir();
  const { dir, metrics } = await runExperiment(
    config(out, { lambda: 10, schedule: { kind: "constant", eta: 1, epochs: 2 }, evalEvery: 20 }),
    { log: () => {}, report: false },
  );
  assert.equal(metrics.status, "diverged");
  assert.ok(metrics.diverged && metrics.diverged.step <= 200, JSON.stringify(metrics.diverged));
  assert.ok(metrics.curves.every((p) => Number.isFinite(p.train.loss)), "no NaN in the curves");
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  // no checkpoint (and no report: the test asks for none); the curves for other tools are there
  const files = names.filter((n) => !n.startsWith("."));
  assert.deepEqual(files.filter((n) => !n.startsWith("events.out.tfevents.")), [
    "curves.csv",
    "metrics.json",
  ]);
  assert.equal(files.filter((n) => n.startsWith("events.out.tfevents.")).length, 1);
  await Deno.remove(out, { recursive: true });
});

/** Two models (λ 0.01 and 0.1) of the small config over one 60-step cycle, ready to train. */
async function twoModels() {
  const { prepareData, populationSpec } = await import("../src/train/run.ts");
  const { trainDataOf } = await import("../src/train/trainer.ts");
  const cfg = config("/tmp/unused", {
    evalEvery: 30,
    schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 30, cycles: 1 },
  });
  const data = await prepareData(cfg);
  const splits = trainDataOf(data.dataset);
  const spec = populationSpec(cfg, data.cifar.train.n, [0.01, 0.1], [1, 2]);
  return { data, splits, spec };
}

Deno.test("inputs through textures or buffers: the same numbers, step for step", async () => {
  const { trainPopulation } = await import("../src/train/trainer.ts");
  const { data, splits, spec } = await twoModels();
  const viaTexture = await trainPopulation({ ...data.gpu, prefersTextures: true }, splits, spec);
  const viaBuffer = await trainPopulation({ ...data.gpu, prefersTextures: false }, splits, spec);
  assert.deepEqual(viaTexture.models, viaBuffer.models);
  data.dataset.destroy();
});

Deno.test("WEBGPU_MLP_TAIL=0 (Gpu.fuseTail false): a whole run without the tail gives the same numbers, step for step, in more dispatches", async () => {
  const { trainPopulation, trainingStep } = await import("../src/train/trainer.ts");
  const { GpuParams } = await import("../src/model/gpu_params.ts");
  const { data, splits, spec } = await twoModels();
  const dispatches = (fuseTail: boolean) => {
    const params = new GpuParams(data.gpu.device, spec.sizes, spec.lambdas);
    const step = trainingStep(params, splits, spec, {
      textures: data.gpu.prefersTextures,
      profile: data.gpu.kernelProfile,
      tail: fuseTail,
    });
    const n = step.ops.length;
    step.destroy();
    params.destroy();
    return n;
  };
  assert.ok(dispatches(false) > dispatches(true), "the tail saves dispatches");
  const fused = await trainPopulation({ ...data.gpu, fuseTail: true }, splits, spec);
  const products = await trainPopulation({ ...data.gpu, fuseTail: false }, splits, spec);
  assert.deepEqual(fused.models, products.models);
  assert.deepEqual(fused.params, products.params);
  data.dataset.destroy();
});

Deno.test("the tail carries the next step's gather: the same numbers, step for step, across an epoch and submissions of 1 step, augmented, in one dispatch fewer", async () => {
  const { prepareData, populationSpec } = await import("../src/train/run.ts");
  const { trainDataOf, trainPopulation, trainingStep } = await import("../src/train/trainer.ts");
  const { GpuParams } = await import("../src/model/gpu_params.ts");
  // 120 steps of 100 rows: epoch 1 from step 100; evaluations at 119 and 120 make the last
  // submission one step
  const base = config("/tmp/unused", {
    evalEvery: 119,
    schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 60, cycles: 1 },
  });
  // hidden 50: G₁'s rows (2·52 floats) live in its texture alone, so the tail binds 10 storage
  // buffers with the gather, which every adapter here allows (SwiftShader's limit)
  const cfg = {
    ...base,
    data: { ...base.data, augment: { flip: true, translate: 3 } },
    model: { ...base.model, hidden: [50] },
  };
  const data = await prepareData(cfg);
  const splits = trainDataOf(data.dataset);
  const spec = populationSpec(cfg, data.cifar.train.n, [0.01, 0.1], [1, 2]);
  const gpu = { ...data.gpu, prefersTextures: true, kernelProfile: "cpu" as const };
  const shape = (gather: boolean) => {
    const params = new GpuParams(gpu.device, spec.sizes, spec.lambdas);
    const step = trainingStep(params, splits, spec, { textures: true, profile: "cpu", gather });
    const labels = step.ops.map((op) => op.label);
    const prologue = step.prologue.map((op) => op.label);
    step.destroy();
    params.destroy();
    return { labels, prologue };
  };
  const carried = shape(true), own = shape(false);
  assert.equal(own.labels[0], "gather_train");
  assert.deepEqual(carried.labels.length, own.labels.length - 1, carried.labels.join(" "));
  assert.ok(
    carried.labels.some((l) => /^tail\(.*\)\+gather_next$/.test(l)),
    carried.labels.join(" "),
  );
  assert.deepEqual(carried.prologue, [...own.prologue, "gather_train"]);
  const fused = await trainPopulation(gpu, splits, spec);
  const plain = await trainPopulation({ ...gpu, fuseGather: false }, splits, spec);
  assert.deepEqual(fused.models, plain.models);
  assert.deepEqual(fused.params, plain.params);
  data.dataset.destroy();
});

Deno.test("layer 1 reads the batch from the dataset's images: X has no buffer or texture, the gather writes indices, and the run is the gathered one bit for bit, across an epoch and submissions of 1 step", async () => {
  const { prepareData, populationSpec } = await import("../src/train/run.ts");
  const { trainDataOf, trainPopulation, trainingStep } = await import("../src/train/trainer.ts");
  const { GpuParams } = await import("../src/model/gpu_params.ts");
  // 120 steps of 100 rows: epoch 1 from step 100; evaluations at 119 and 120 make the last
  // submission one step
  const base = config("/tmp/unused", {
    evalEvery: 119,
    schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 60, cycles: 1 },
  });
  const cfg = { ...base, model: { ...base.model, hidden: [50] } };
  const data = await prepareData(cfg);
  const splits = trainDataOf(data.dataset);
  const spec = populationSpec(cfg, data.cifar.train.n, [0.01, 0.1], [1, 2]);
  const gpu = { ...data.gpu, prefersTextures: true, kernelProfile: "cpu" as const };
  const shape = (s: typeof spec, images: boolean, gather: boolean) => {
    const params = new GpuParams(gpu.device, s.sizes, s.lambdas);
    const step = trainingStep(params, splits, s, {
      textures: true,
      profile: "cpu",
      images,
      gather,
    });
    const out = {
      X: [step.ws.X.buffer, step.ws.X.texture],
      costs: [...step.prologue, ...step.ops].map((op) => `${op.label}: ${op.cost.shape}`),
    };
    step.destroy();
    params.destroy();
    return out;
  };
  const fromImages = shape(spec, true, true);
  assert.deepEqual(fromImages.X, [null, null]);
  const gatherCost = (costs: string[]) => costs.filter((c) => c.includes("gather")).join(" | ");
  assert.match(gatherCost(fromImages.costs), /gather_train: 100 image indices/);
  assert.match(gatherCost(fromImages.costs), /\+gather_next: .* \+gather 100 image indices/);
  assert.doesNotMatch(fromImages.costs.join(" | "), /u8→f32/);
  // off, or with augmentation (X must hold the shifted, mirrored rows), the batch is gathered
  for (
    const [what, s, images] of [
      ["images off", spec, false],
      ["augmented", { ...spec, augment: { flip: true, translate: 2 } }, true],
    ] as const
  ) {
    const other = shape(s, images, true);
    assert.ok(other.X[1] instanceof GPUTexture, what);
    assert.match(gatherCost(other.costs), /u8→f32/, what);
  }
  const images = await trainPopulation(gpu, splits, spec);
  const own = await trainPopulation({ ...gpu, fuseGather: false }, splits, spec);
  const gathered = await trainPopulation({ ...gpu, fuseImages: false }, splits, spec);
  assert.deepEqual(images.models, gathered.models);
  assert.deepEqual(images.params, gathered.params);
  assert.deepEqual(own.params, gathered.params);
  data.dataset.destroy();
});

Deno.test("textures or buffers: Adam, BN, dropout, P > 1, one-layer nets and a checkpoint's evaluation agree bit for bit", async () => {
  const { prepareData, populationSpec } = await import("../src/train/run.ts");
  const { trainDataOf, trainPopulation } = await import("../src/train/trainer.ts");
  const { cfgWith } = await import("./small_run.ts");
  const cases: [string, ReturnType<typeof cfgWith>, number[]][] = [
    [
      "Adam, BN, dropout, P = 2",
      cfgWith({ bn: true, dropout: 0.2 }, { optimizer: { kind: "adam" } }, {
        augment: { flip: true, translate: 2 },
      }),
      [0.001, 0.01],
    ],
    ["BN on layer 1 and dropout, SGD", cfgWith({ hidden: [32], bn: true, dropout: 0.3 }), [0.01]],
    // W₁ and G₁ of 2·32 floats a row (256 bytes): copied after the products that write them
    ["3072-32-24-10, SGD, P = 2", cfgWith({}), [0.001, 0.01]],
    ["dropout without BN, P = 3", cfgWith({ hidden: [32], dropout: 0.3 }), [0, 0.001, 0.01]],
    ["softmax regression, SGD, P = 2", cfgWith({ hidden: [] }), [0.001, 0.01]],
    ["softmax regression, Adam", cfgWith({ hidden: [] }, { optimizer: { kind: "adam" } }), [0.01]],
  ];
  for (const [name, cfg, lambdas] of cases) {
    const data = await prepareData(cfg);
    const splits = { ...trainDataOf(data.dataset), test: null };
    const spec = populationSpec(cfg, data.cifar.train.n, lambdas, lambdas.map((_, z) => 5 + z));
    const runs = [];
    for (const prefersTextures of [true, false]) {
      runs.push(await trainPopulation({ ...data.gpu, prefersTextures }, splits, spec));
    }
    assert.deepEqual(runs[0].models, runs[1].models, name);
    assert.deepEqual(runs[0].params, runs[1].params, name);
    // the checkpoint of model 0 evaluated through textures and through buffers
    const ck = {
      params: runs[0].params[0],
      mean: data.stats.mean,
      std: data.stats.std,
      metadata: {},
    };
    const evals = [];
    for (const prefersTextures of [true, false]) {
      evals.push(
        await evaluateCheckpoint(
          { ...data.gpu, prefersTextures },
          ck,
          resolveDataDir(),
          "data_batch_2.bin",
        ),
      );
    }
    assert.deepEqual(evals[0], evals[1], `${name}: eval`);
    data.dataset.destroy();
  }
});
