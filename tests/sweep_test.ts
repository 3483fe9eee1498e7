/**
 * λ sweeps: a population trains exactly like its models one by one; a killed sweep resumes
 * without losing or duplicating trials; shards split and merge without loss or duplicates;
 * a diverging trial is contained; bad search specs get one line.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Config, parseConfig } from "../src/config.ts";
import { UserError } from "../src/errors.ts";
import { parseRecord, RUN_FORMAT, TRIAL_FORMAT } from "../src/io/records.ts";
import { populationSpec, prepareData, type PreparedData, runMetrics } from "../src/train/run.ts";
import {
  type ModelResult,
  trainDataOf,
  trainPopulation,
  type TrainResult,
} from "../src/train/trainer.ts";
import type { EvalPoint } from "../src/train/metrics.ts";
import { readTrials } from "../src/sweep/results.ts";
import { parseShard, resolveShard, type Shard } from "../src/sweep/shard.ts";
import {
  mergeSweep,
  planStage,
  runSweep,
  SWEEP_CONFIG,
  sweepPath,
  trialRecord,
} from "../src/sweep/sweep.ts";
import type { SweepSummary, TrialRecord } from "../src/sweep/types.ts";

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
  const splits = { ...trainDataOf(data.dataset), test: null };
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
  for (const s of ["5/4", "0/4", "a/b", "2", "1/0"]) assert.throws(() => parseShard(s), UserError);
  assert.throws(() => parseShard("1/0"), /--shard 1\/0: there must be at least 1 shard/);
  assert.throws(() => parseShard("5/4"), /the shard number must be between 1 and 4/);
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
  assert.throws(() => resolveShard(undefined, 3, {}), /--shards 3 needs the shard's index/);
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

// ---- files read back are validated: fixtures built by hand from the real writers, no training

/** An evaluation point of a fake model. */
function point(step: number, acc: number): EvalPoint {
  return {
    step,
    epoch: step / 90,
    eta: 0.01,
    train: { loss: 2 - acc, cost: 2.1 - acc, accuracy: acc },
    val: { loss: 2.1 - acc, cost: 2.2 - acc, accuracy: acc - 0.05 },
  };
}

/** A fake model's result: healthy, or diverged after its first point. */
function fakeModel(diverged = false): ModelResult {
  const curves = diverged ? [point(0, 0.1)] : [point(0, 0.1), point(20, 0.3), point(40, 0.4)];
  const last = curves.at(-1)!;
  return {
    curves,
    final: { train: last.train, val: last.val },
    ...(diverged
      ? { diverged: { step: 20, reason: "loss or weights became NaN/Inf by step 20" } }
      : {}),
  };
}

/** A trial record exactly as a sweep writes it (through `trialRecord`). */
function fakeTrial(index: number, lambda: number, shard: Shard | null, diverged = false) {
  return trialRecord(
    { id: `a/${index}`, stage: "a", index, lambda, seed: 5 },
    fakeModel(diverged),
    shard,
  );
}

const line = (t: unknown) => JSON.stringify(t) + "\n";

/**
 * A sweep directory of stage `a` (4 λ) as two shards leave it before a merge: trials.jsonl holds
 * trials 0 and 1 from an earlier merge, shard 1/2 trials 0 and 2, shard 2/2 trials 1 and 3.
 */
async function fakeSweepDir() {
  const out = await Deno.makeTempDir();
  const cfg = sweepConfig(out, {
    stages: [{ name: "a", space: { kind: "list", values: [0.001, 0.01, 0.1, 1] } }],
  });
  const dir = join(out, "s");
  await Deno.mkdir(dir);
  await Deno.writeTextFile(join(dir, SWEEP_CONFIG), JSON.stringify(cfg, null, 2) + "\n");
  const s1 = parseShard("1/2"), s2 = parseShard("2/2");
  const t = [fakeTrial(0, 0.001, s1), fakeTrial(1, 0.01, s2), fakeTrial(2, 0.1, s1)];
  t.push(fakeTrial(3, 1, s2, true));
  const files = {
    merged: join(dir, "trials.jsonl"),
    shard1: join(dir, "trials.shard-1-of-2.jsonl"),
    shard2: join(dir, "trials.shard-2-of-2.jsonl"),
  };
  await Deno.writeTextFile(files.merged, line(t[0]) + line(t[1]));
  await Deno.writeTextFile(files.shard1, line(t[0]) + line(t[2]));
  await Deno.writeTextFile(files.shard2, line(t[1]) + line(t[3]));
  return { out, dir, cfg, trials: t, files, remove: () => Deno.remove(out, { recursive: true }) };
}

/** Everything in a directory, by name: to show that nothing was written. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of Deno.readDirSync(dir)) {
    if (e.isFile) out[e.name] = Deno.readTextFileSync(join(dir, e.name));
  }
  return out;
}

/**
 * Replace line 2 of shard 2/2 (trial a/3) by `bad`, then check that merge and resume both refuse
 * with one line matching `re` and write nothing.
 */
async function refused(bad: (t: TrialRecord) => unknown, re: RegExp): Promise<string> {
  const f = await fakeSweepDir();
  try {
    const value = bad(structuredClone(f.trials[3]));
    const text = typeof value === "string" ? value : JSON.stringify(value);
    await Deno.writeTextFile(f.files.shard2, line(f.trials[1]) + text + "\n");
    const before = snapshot(f.dir);
    let msg = "";
    for (const attempt of [() => mergeSweep(f.dir, quiet), () => runSweep(f.cfg, { log: quiet })]) {
      await assert.rejects(attempt, (e: unknown) => {
        assert.ok(e instanceof UserError, `expected a UserError, got ${(e as Error).stack}`);
        assert.ok(!e.message.includes("\n"), "one line");
        assert.ok(e.message.length < 400, `${e.message.length} characters`);
        assert.match(e.message, re);
        msg = e.message;
        return true;
      });
      assert.deepEqual(snapshot(f.dir), before, "nothing written");
    }
    return msg;
  } finally {
    await f.remove();
  }
}

const at2 = String.raw`trials\.shard-2-of-2\.jsonl:2: `;

Deno.test("what the tool writes is read back as written: trials, and a diverged run's null metrics", () => {
  for (const t of [fakeTrial(0, 0.01, null), fakeTrial(1, 0.1, parseShard("2/3"), true)]) {
    assert.deepEqual(parseRecord(TRIAL_FORMAT, JSON.parse(JSON.stringify(t)), "t"), t);
  }
  const cfg = sweepConfig("/tmp/unused", {
    stages: [{ name: "a", space: { kind: "list", values: [0] } }],
  });
  const data = {
    gpu: { adapter: { vendor: "mesa", architecture: "", device: "", description: "llvmpipe" } },
    cifar: { classNames: ["a", "b"], train: { n: 9000 }, val: { n: 1000 }, test: null },
    setupSeconds: 1.5,
  } as unknown as PreparedData;
  const spec = populationSpec(cfg, 9000, [50], [5]);
  const result = (m: ModelResult): TrainResult => ({
    models: [m],
    params: [],
    members: [0],
    steps: 20,
    stepsPerEpoch: 90,
    totalSteps: 40,
    trainSeconds: 0.5,
    interrupted: false,
    snapshots: { count: 0, bytes: 0, seconds: 0 },
  });
  // diverged before any healthy evaluation point: its final metrics are NaN, written as null
  const early: ModelResult = {
    curves: [],
    final: null,
    diverged: { step: 0, reason: "loss or weights became NaN/Inf by step 0" },
  };
  for (const m of [early, fakeModel(true), fakeModel()]) {
    const written = JSON.stringify(runMetrics(cfg, data, spec, result(m), new Date(), 0));
    const back = parseRecord(RUN_FORMAT, JSON.parse(written), "metrics.json");
    assert.equal(back.status, m.diverged ? "diverged" : "completed");
    if (m === early) {
      assert.match(written, /"final":\{"train":\{"loss":null,"cost":null,"accuracy":null\}\}/);
      assert.ok(Number.isNaN(back.final.train.loss) && Number.isNaN(back.final.train.accuracy));
    } else assert.deepEqual(back.final.train, m.final!.train);
  }
  // null is accepted only where the writer can put a NaN
  const ok = JSON.parse(JSON.stringify(runMetrics(cfg, data, spec, result(early), new Date(), 0)));
  assert.throws(
    () => parseRecord(RUN_FORMAT, { ...ok, status: "completed", diverged: undefined }, "m.json"),
    /m\.json: final\.train holds null: only a diverged run has no final metrics/,
  );
  assert.throws(
    () => parseRecord(RUN_FORMAT, { ...ok, lambda: null }, "m.json"),
    /m\.json: lambda must be a number, got null/,
  );
});

Deno.test("a bad record: a field of the wrong type is named with its file and line", async () => {
  await refused(
    (t) => ({ ...t, lambda: "x" }),
    new RegExp(`${at2}lambda must be a number, got "x"$`),
  );
  await refused(
    (t) => ({ ...t, curves: 5 }),
    new RegExp(`${at2}curves must be an array, got 5$`),
  );
  await refused((t) => {
    t.curves[0].train.accuracy = 1.5;
    return t;
  }, new RegExp(`${at2}curves\\.0\\.train\\.accuracy must be <= 1, got 1\\.5$`));
  await refused(
    (t) => ({ ...t, status: "ok" }),
    new RegExp(`${at2}status must be one of "completed", "diverged", "stopped", got "ok"$`),
  );
});

Deno.test("a bad record: a missing or unknown field", async () => {
  await refused((t) => ({ ...t, bestVal: undefined }), new RegExp(`${at2}bestVal is missing`));
  await refused(
    (t) => ({ ...t, extra: 1 }),
    new RegExp(`${at2}unknown field "extra": this tool does not write it$`),
  );
  await refused(
    (t) => ({ ...t, diverged: undefined }),
    new RegExp(`${at2}diverged is missing \\(a diverged trial records where it diverged\\)$`),
  );
});

Deno.test("a bad record: a trial id that does not match its stage and index", async () => {
  await refused(
    (t) => ({ ...t, id: "a/7" }),
    new RegExp(`${at2}id must be its stage and index, "a/3", got "a/7"$`),
  );
});

Deno.test("a bad record: the same trial recorded differently in two files names both", async () => {
  // trial a/1 as shard 2/2 has it, with another λ, in trials.jsonl: which one is right?
  const f = await fakeSweepDir();
  try {
    await Deno.writeTextFile(
      f.files.merged,
      line(f.trials[0]) + line({ ...f.trials[1], lambda: 2 }),
    );
    const before = snapshot(f.dir);
    await assert.rejects(
      () => mergeSweep(f.dir, quiet),
      new RegExp(
        String.raw`trial "a/1" is recorded differently in \S+/trials\.jsonl:2 and ` +
          String.raw`\S+/trials\.shard-2-of-2\.jsonl:1: keep the right line and remove the other$`,
      ),
    );
    await assert.rejects(() => runSweep(f.cfg, { log: quiet }), /recorded differently/);
    assert.deepEqual(snapshot(f.dir), before);
    // the same result under another shard's label is the same trial: kept once
    await Deno.writeTextFile(f.files.merged, line({ ...f.trials[1], shard: "1/3" }));
    assert.equal(readTrials(f.dir, f.cfg).size, 4);
  } finally {
    await f.remove();
  }
});

Deno.test("a bad record: a trial of a stage the config does not have, or beyond its stage", async () => {
  await refused(
    (t) => ({ ...t, id: "zzz/3", stage: "zzz" }),
    new RegExp(
      `${at2}trial "zzz/3" is of stage "zzz", which this sweep's config does not have ` +
        `\\(stages: a\\): the line belongs to another sweep`,
    ),
  );
  await refused(
    (t) => ({ ...t, id: "a/4", index: 4 }),
    new RegExp(`${at2}trial "a/4" is beyond the 4 trials of stage "a"`),
  );
});

Deno.test("a bad record: a line that is not JSON, or not a trial record of this tool", async () => {
  await refused(() => `{"format": "webgpu-mlp.trial/1", "id": `, /jsonl:2 is not a JSON line/);
  await refused(
    (t) => ({ ...t, format: "webgpu-mlp.trial/0" }),
    new RegExp(
      `${at2}not a trial record \\(format "webgpu-mlp.trial/0", expected "webgpu-mlp.trial/1"\\)$`,
    ),
  );
  await refused(() => "[1, 2]", new RegExp(`${at2}not a trial record \\(format \\(not a JSON`));
});

Deno.test("a bad record: a huge value is cut short in the one-line error", async () => {
  const m = await refused(
    (t) => ({ ...t, lambda: "y".repeat(1_000_000) }),
    new RegExp(`${at2}lambda must be a number, got "y+… \\(1000002 characters\\)$`),
  );
  assert.ok(m.length < 300, m);
});

Deno.test("a bad shard line is never merged: trials.jsonl is unchanged", async () => {
  const f = await fakeSweepDir();
  try {
    const good = Deno.readTextFileSync(f.files.shard2);
    await Deno.writeTextFile(
      f.files.shard2,
      line(f.trials[1]) + line({ ...f.trials[3], curves: 5 }),
    );
    const before = Deno.readTextFileSync(f.files.merged);
    // the command prints one line, exits 1, and a second try says the same: nothing was merged
    for (let i = 0; i < 2; i++) {
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "src/cli/sweep.ts", "--merge", f.dir],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(r.stderr).trim();
      assert.equal(r.code, 1, err);
      assert.match(
        err,
        /^error: \S+trials\.shard-2-of-2\.jsonl:2: curves must be an array, got 5$/,
      );
      assert.equal(Deno.readTextFileSync(f.files.merged), before);
      assert.ok(!Deno.readDirSync(f.dir).some((e) => e.name === "sweep.json"));
    }
    await assert.rejects(() => runSweep(f.cfg, { log: quiet }), /curves must be an array/);
    assert.equal(Deno.readTextFileSync(f.files.merged), before);
    // once the line is right again, the merge holds every trial once
    await Deno.writeTextFile(f.files.shard2, good);
    const summary = await mergeSweep(f.dir, quiet);
    const ids = Deno.readTextFileSync(f.files.merged).trim().split("\n").map((l) =>
      JSON.parse(l).id
    );
    assert.deepEqual(ids, ["a/0", "a/1", "a/2", "a/3"]);
    assert.equal(summary.stages[0].diverged, 1);
    assert.deepEqual(readTrials(f.dir, f.cfg).get("a/2"), f.trials[2]);
  } finally {
    await f.remove();
  }
});

Deno.test("a damaged sweep.config.json, final/metrics.json or earlier sweep is refused with one line", async () => {
  const f = await fakeSweepDir();
  try {
    const cfgPath = join(f.dir, SWEEP_CONFIG);
    const text = Deno.readTextFileSync(cfgPath);
    const raw = JSON.parse(text);
    // validated with the config schema itself
    Deno.writeTextFileSync(cfgPath, JSON.stringify({ ...raw, seed: -1 }));
    await assert.rejects(
      () => mergeSweep(f.dir, quiet),
      /: config \S+sweep\.config\.json: seed must be >= 0, got -1$/,
    );
    await assert.rejects(
      () => runSweep(f.cfg, { log: quiet }),
      /sweep\.config\.json: seed must be/,
    );
    Deno.writeTextFileSync(cfgPath, JSON.stringify({ ...raw, search: undefined }));
    await assert.rejects(() => mergeSweep(f.dir, quiet), /has no "search" block/);
    // the same config with its keys in another order is the same config: the resume goes on
    // (every trial is done, so it only writes sweep.json)
    Deno.writeTextFileSync(
      cfgPath,
      JSON.stringify(Object.fromEntries(Object.entries(raw).reverse())),
    );
    const resumed = await runSweep(f.cfg, { log: quiet, report: false });
    assert.equal(resumed!.stages[0].trials, 4);
    Deno.writeTextFileSync(cfgPath, text);
    // the final training's metrics.json
    await Deno.mkdir(join(f.dir, "final"));
    Deno.writeTextFileSync(
      join(f.dir, "final", "metrics.json"),
      JSON.stringify({ format: "webgpu-mlp.run/1", name: "final", status: "completed" }),
    );
    const before = snapshot(f.dir);
    await assert.rejects(
      () => mergeSweep(f.dir, quiet),
      /final\/metrics\.json: config is missing$/,
    );
    assert.deepEqual(snapshot(f.dir), before);
  } finally {
    await f.remove();
  }
  // an earlier sweep this one searches around: its sweep.json is validated too
  const g = await fakeSweepDir();
  try {
    Deno.writeTextFileSync(
      join(g.dir, "sweep.json"),
      JSON.stringify({ format: "webgpu-mlp.sweep/1", name: "s", stages: "a" }),
    );
    const fine = sweepConfig(g.out, {
      stages: [{ name: "f", space: { kind: "around", stage: "a", sweep: g.dir, count: 2 } }],
    }, "fine");
    await assert.rejects(
      () => runSweep(fine, { log: quiet }),
      /s\/sweep\.json: config is missing$/,
    );
    assert.ok(!Deno.readDirSync(g.out).some((e) => e.name === "fine"));
  } finally {
    await g.remove();
  }
});

Deno.test("a trials file that is a directory, a link or a FIFO is one line, not a crash", async () => {
  const { assertUserError } = await import("./assert_user_error.ts");
  const dir = await Deno.makeTempDir({ prefix: "trials-" });
  try {
    await Deno.mkdir(join(dir, "trials.shard-1-of-3.jsonl"));
    await assertUserError(
      () => readTrials(dir),
      /trials\.shard-1-of-3\.jsonl is a directory, not a regular file: the sweep's trials file is damaged; move it away/,
    );
    await Deno.remove(join(dir, "trials.shard-1-of-3.jsonl"));
    await Deno.symlink("/dev/zero", join(dir, "trials.jsonl"));
    await assertUserError(() => readTrials(dir), /trials\.jsonl is a symbolic link/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
