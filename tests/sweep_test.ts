/**
 * λ sweeps: a population trains exactly like its models one by one; a killed sweep resumes
 * without losing or duplicating trials; shards split and merge without loss or duplicates;
 * a diverging trial is contained; bad search specs get one line.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Config, parseConfig } from "../src/config.ts";
import { UserError } from "../src/errors.ts";
import { populationSpec, prepareData } from "../src/train/run.ts";
import { trainPopulation } from "../src/train/trainer.ts";
import { readTrials } from "../src/sweep/results.ts";
import { parseShard, resolveShard } from "../src/sweep/shard.ts";
import { mergeSweep, planStage, runSweep, sweepPath } from "../src/sweep/sweep.ts";
import type { SweepSummary } from "../src/sweep/types.ts";

const quiet = () => {};

function sweepConfig(out: string, search: Record<string, unknown>, name = "s"): Config {
  return parseConfig(
    {
      name,
      out,
      seed: 5,
      data: { train: [1], val: { holdout: 1000 }, test: true },
      model: { hidden: [16], init: "xavier" },
      train: {
        batchSize: 100,
        schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 20, cycles: 1 },
        evalEvery: 20,
      },
      search,
    },
    "test",
  );
}

Deno.test("a population of 3 trains exactly like the same 3 models one by one", async () => {
  const cfg = sweepConfig("/tmp/unused", {
    stages: [{ name: "a", space: { kind: "list", values: [0] } }],
  });
  const data = await prepareData(cfg);
  const splits = {
    dataset: data.dataset,
    train: data.dataset.splits.train,
    val: data.dataset.splits.val,
    test: null,
  };
  const lambdas = [0, 0.01, 0.3], seeds = [1, 2, 3];
  const pop = await trainPopulation(
    data.gpu,
    splits,
    populationSpec(cfg, data.cifar.train.n, lambdas, seeds),
  );
  for (let z = 0; z < 3; z++) {
    const one = await trainPopulation(
      data.gpu,
      splits,
      populationSpec(cfg, data.cifar.train.n, [lambdas[z]], [seeds[z]]),
    );
    const a = pop.models[z].curves, b = one.models[0].curves;
    assert.equal(a.length, b.length);
    a.forEach((p, i) => {
      for (const split of ["train", "val"] as const) {
        for (const k of ["loss", "cost", "accuracy"] as const) {
          const x = p[split]![k], y = b[i][split]![k];
          assert.ok(
            Math.abs(x - y) <= 1e-5 * Math.max(1, Math.abs(y)),
            `model ${z} point ${i} ${split} ${k}: ${x} vs ${y}`,
          );
        }
      }
    });
    for (let l = 0; l < 2; l++) {
      const w = pop.params[z].W[l], v = one.params[0].W[l];
      let err = 0;
      for (let i = 0; i < w.length; i++) err = Math.max(err, Math.abs(w[i] - v[i]));
      assert.ok(err <= 1e-5, `model ${z} W${l + 1} differs by ${err}`);
    }
  }
  data.dataset.destroy();
});

Deno.test("a diverging trial is recorded as diverged and the others go on", async () => {
  const out = await Deno.makeTempDir();
  const cfg = sweepConfig(out, {
    stages: [{ name: "a", space: { kind: "list", values: [0.001, 50, 0.01] } }],
  });
  cfg.train.schedule = { kind: "constant", eta: 0.1, epochs: 1 };
  cfg.train.evalEvery = 30;
  const summary = await runSweep(cfg, { log: quiet, report: false });
  const trials = [...readTrials(join(out, "s")).values()].sort((a, b) => a.index - b.index);
  assert.deepEqual(trials.map((t) => t.status), ["completed", "diverged", "completed"]);
  assert.ok(trials[1].diverged!.step > 0);
  assert.ok(trials[0].final!.val.accuracy > 0.2 && trials[2].final!.val.accuracy > 0.2);
  assert.equal(summary!.stages[0].diverged, 1);
  assert.ok(summary!.stages[0].top.every((t) => t.lambda !== 50));
  await Deno.remove(out, { recursive: true });
});

Deno.test("shards split the trials and merge without loss or duplicates", async () => {
  const out = await Deno.makeTempDir();
  const search = {
    stages: [
      { name: "coarse", space: { kind: "logUniform", min: 1e-4, max: 1e-1, count: 5, seed: 3 } },
      { name: "fine", space: { kind: "around", stage: "coarse", top: 2, count: 3, seed: 4 } },
    ],
    population: 8,
  };
  const cfg = sweepConfig(out, search);
  // shard 1 trains its share of the first stage and stops: the next stage needs all of it;
  // shard 2, finishing the stage, goes on with its share of the next
  assert.equal(await runSweep(cfg, { shard: parseShard("1/2"), log: quiet, report: false }), null);
  const dir = join(out, "s");
  assert.deepEqual([...readTrials(dir).values()].map((t) => t.index).sort(), [0, 2, 4]);
  assert.equal(await runSweep(cfg, { shard: parseShard("2/2"), log: quiet, report: false }), null);
  const after = [...readTrials(dir).values()];
  assert.equal(after.filter((t) => t.stage === "coarse").length, 5);
  assert.deepEqual(after.filter((t) => t.stage === "fine").map((t) => t.index), [1]);
  const merged = await mergeSweep(dir, quiet);
  assert.deepEqual(merged.stages.map((s) => s.name), ["coarse"]);
  // the shards run the next stage, and a final merge holds every trial once
  await runSweep(cfg, { shard: parseShard("1/2"), log: quiet, report: false });
  await runSweep(cfg, { shard: parseShard("2/2"), log: quiet, report: false });
  const final = await mergeSweep(dir, quiet);
  const lines = Deno.readTextFileSync(join(dir, "trials.jsonl")).trim().split("\n").map((l) =>
    JSON.parse(l).id
  );
  assert.equal(lines.length, 8);
  assert.equal(new Set(lines).size, 8);
  assert.deepEqual(final.stages.map((s) => s.name), ["coarse", "fine"]);
  // the same λs as an unsharded plan
  const plan = planStage(cfg, cfg.search!.stages[0], []);
  assert.deepEqual(
    plan.map((p) => p.lambda),
    [...readTrials(dir).values()].filter((t) => t.stage === "coarse").sort((a, b) =>
      a.index - b.index
    ).map((t) => t.lambda),
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("a killed sweep resumes: finished trials kept, none duplicated, summary valid", async () => {
  const out = await Deno.makeTempDir();
  const cfgFile = join(out, "sweep.json");
  await Deno.writeTextFile(
    cfgFile,
    JSON.stringify({
      name: "k",
      out,
      seed: 5,
      data: { train: [1], val: { holdout: 1000 }, test: false },
      model: { hidden: [16] },
      train: {
        batchSize: 100,
        schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 40, cycles: 1 },
        evalEvery: 40,
      },
      search: {
        stages: [{ name: "a", space: { kind: "grid", min: 1e-4, max: 1e-1, count: 8 } }],
        population: 2,
      },
    }),
  );
  const args = ["run", "-A", "src/cli/sweep.ts", "--config", cfgFile, "--no-report"];
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "null" }).spawn();
  const trialsPath = join(out, "k", "trials.jsonl");
  const lines = () => {
    try {
      return Deno.readTextFileSync(trialsPath).trim().split("\n").filter(Boolean).length;
    } catch {
      return 0;
    }
  };
  const deadline = Date.now() + 120_000;
  while (lines() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  child.kill("SIGKILL");
  await child.status;
  const before = lines();
  assert.ok(before >= 2 && before < 8, `killed after ${before} of 8 trials`);
  const done = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .output();
  assert.equal(done.code, 0, new TextDecoder().decode(done.stderr));
  assert.match(
    new TextDecoder().decode(done.stdout),
    new RegExp(`8 trials, ${before} already done`),
  );
  const ids = Deno.readTextFileSync(trialsPath).trim().split("\n").map((l) => JSON.parse(l).id);
  assert.equal(ids.length, 8);
  assert.equal(new Set(ids).size, 8);
  const summary = JSON.parse(Deno.readTextFileSync(join(out, "k", "sweep.json"))) as SweepSummary;
  assert.equal(summary.stages[0].trials, 8);
  assert.equal(summary.stages[0].top.length, 3);
  await Deno.remove(out, { recursive: true });
});

Deno.test("bad search specs and shard specs get one line", async () => {
  const bad = (search: unknown, pattern: RegExp) =>
    assert.throws(
      () => sweepConfig("/tmp/x", search as Record<string, unknown>),
      (e: Error) => e instanceof UserError && pattern.test(e.message),
    );
  bad(
    { stages: [{ name: "a", space: { kind: "logUniform", min: 1e-1, max: 1e-5, count: 5 } }] },
    /empty or inverted range/,
  );
  bad(
    { stages: [{ name: "a", space: { kind: "logUniform", min: 1e-3, max: 1e-3, count: 5 } }] },
    /empty or inverted range/,
  );
  bad(
    { stages: [{ name: "a", space: { kind: "logUniform", min: 1e-5, max: 1e-1, count: 0 } }] },
    /count must be >= 1/,
  );
  bad(
    { stages: [{ name: "a", space: { kind: "list", values: [0.1, -0.01] } }] },
    /values\.1 must be >= 0/,
  );
  bad(
    { stages: [{ name: "a", space: { kind: "logUniform", min: -1, max: 1, count: 3 } }] },
    /min must be > 0/,
  );
  bad(
    { stages: [{ name: "f", space: { kind: "around", stage: "coarse", count: 3 } }] },
    /"coarse" is not an earlier stage/,
  );
  bad({ stages: [] }, /stages must have >= 1 entries/);
  for (const s of ["5/4", "0/4", "a/b", "2"]) assert.throws(() => parseShard(s), UserError);
  assert.deepEqual(parseShard("2/4"), { index: 1, count: 4, label: "2/4" });
  assert.deepEqual(
    resolveShard(undefined, undefined, {
      SLURM_ARRAY_TASK_ID: "3",
      SLURM_ARRAY_TASK_COUNT: "4",
      SLURM_ARRAY_TASK_MIN: "1",
    })!.label,
    "3/4",
  );
  assert.deepEqual(resolveShard(undefined, 5, { JOB_COMPLETION_INDEX: "0" })!.label, "1/5");
  assert.throws(
    () => resolveShard(undefined, undefined, { JOB_COMPLETION_INDEX: "0" }),
    /--shards N/,
  );
  assert.equal(resolveShard(undefined, undefined, {}), null);
  // a bare sweep name lives under the config's out directory; a path is taken as it is
  const named = sweepConfig("/tmp/runs-x", {
    stages: [{ name: "a", space: { kind: "list", values: [0] } }],
  });
  assert.equal(sweepPath(named, "coarse"), join("/tmp/runs-x", "coarse"));
  assert.equal(sweepPath(named, "elsewhere/coarse"), "elsewhere/coarse");
  // a fine stage pointing at a missing or a different coarse sweep
  const out = await Deno.makeTempDir();
  const fine = (sweep: string) =>
    sweepConfig(out, {
      stages: [{ name: "f", space: { kind: "around", stage: "coarse", sweep, count: 2 } }],
    }, "fine");
  await assert.rejects(
    () => runSweep(fine(join(out, "nothing")), { log: quiet }),
    /not a sweep directory/,
  );
  const other = sweepConfig(out, {
    stages: [{ name: "coarse", space: { kind: "list", values: [0.01] } }],
  }, "coarse");
  other.model.hidden = [8];
  await runSweep(other, { log: quiet, report: false });
  await assert.rejects(
    () => runSweep(fine(join(out, "coarse")), { log: quiet }),
    /searched a different setting/,
  );
  await Deno.remove(out, { recursive: true });
});
