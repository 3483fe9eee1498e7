/**
 * Successive halving inside a population: the ranking rule, the compaction of the survivors'
 * state on the GPU, the survivors ending bit-identical to a population of them alone, resume
 * from snapshots before, at and after rungs, a halving sweep's records, tables and report, a
 * halving sweep interrupted and resumed ending as an uninterrupted one, and every bad halving
 * key refused in one line.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Config, parseConfig } from "../src/config.ts";
import { getGpu } from "../src/gpu/device.ts";
import { trialsCsv } from "../src/io/csv.ts";
import { readSweepTrials } from "../src/io/hparams.ts";
import { parseRecord, TRIAL_FORMAT } from "../src/io/records.ts";
import { GpuParams } from "../src/model/gpu_params.ts";
import { initParams, type Params } from "../src/model/init.ts";
import { renderSweepReport } from "../src/report/sweep.ts";
import { loadSweep } from "../src/report/load.ts";
import { readTrials } from "../src/sweep/results.ts";
import { runSweep } from "../src/sweep/sweep.ts";
import type { SweepSummary, TrialRecord } from "../src/sweep/types.ts";
import { encodeCompaction } from "../src/train/compact.ts";
import {
  defaultRungs,
  keepCount,
  rungsProblem,
  selectModels,
  survivors,
} from "../src/train/halving.ts";
import { populationSpec, prepareData, type PreparedData } from "../src/train/run.ts";
import { readSnapshot, type Snapshot, writeSnapshot } from "../src/train/snapshot.ts";
import {
  type PopulationSpec,
  type RungEvent,
  trainDataOf,
  trainPopulation,
  type TrainResult,
} from "../src/train/trainer.ts";
import { assertUserError } from "./assert_user_error.ts";

const quiet = () => {};

/** 80 steps (2 cycles of n_s = 20) on 9000 / 1000 samples of batch 1, 3072-16-10. */
function config(extra: { model?: Record<string, unknown>; train?: Record<string, unknown> } = {}) {
  return parseConfig(
    {
      name: "h",
      seed: 5,
      data: { train: [1], val: { holdout: 1000 }, test: false },
      model: { hidden: [16], init: "xavier", ...extra.model },
      train: {
        batchSize: 100,
        schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 20, cycles: 2 },
        evalEvery: 20,
        ...extra.train,
      },
    },
    "test.json",
  );
}

const LAMBDAS = [0, 0.01, 0.3, 0.001, 0.02, 0.1];
const SEEDS = [1, 2, 3, 4, 5, 6];

/** Every value of a model's parameters, as plain numbers (bit-exact comparisons). */
function flat(p: Params): number[][] {
  const out = [...p.W, ...p.b].map((a) => [...a]);
  for (const q of p.bn ?? []) {
    if (q) out.push(...[q.gamma, q.beta, q.mean, q.variance].map((a) => [...a]));
  }
  return out;
}

function train(data: PreparedData, spec: PopulationSpec, opts = {}): Promise<TrainResult> {
  return trainPopulation(data.gpu, { ...trainDataOf(data.dataset), test: null }, spec, opts);
}

Deno.test("the ranking at a rung: ⌈n/η_r⌉ best by accuracy, ties to the smaller index, in index order", () => {
  assert.deepEqual([81, 27, 9, 3, 2, 1, 0].map((n) => keepCount(n, 3)), [27, 9, 3, 1, 1, 1, 0]);
  assert.equal(keepCount(10, 3), 4);
  assert.equal(keepCount(5, 1.5), 4);
  const ms = [0.3, 0.5, 0.5, 0.1, 0.5, 0.2].map((accuracy, index) => ({ index, accuracy }));
  assert.deepEqual(survivors(ms, 3), [1, 2]); // 0.5 three times: the first two
  assert.deepEqual(survivors(ms, 2), [1, 2, 4]);
  assert.deepEqual(survivors(ms.slice(3), 5), [4]);
  assert.deepEqual(survivors([], 3), []);
  // the default rungs: the end of each cycle but the last
  const cyc = { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 900, cycles: 4 } as const;
  assert.deepEqual(defaultRungs(cyc), [1800, 3600, 5400]);
  assert.deepEqual(defaultRungs({ ...cyc, cycles: 1 }), []);
  assert.equal(rungsProblem(undefined, cyc, 7200), null);
  assert.equal(rungsProblem([100, 7199], cyc, 7200), null);
  // selectModels picks every per-model field and keeps the shared ones
  const spec = populationSpec(config(), 9000, LAMBDAS, SEEDS);
  const sel = selectModels(spec, [4, 1]);
  assert.deepEqual(sel.lambdas, [0.02, 0.01]);
  assert.deepEqual(sel.seeds, [5, 2]);
  assert.deepEqual({ ...sel, lambdas: spec.lambdas, seeds: spec.seeds }, spec);
});

Deno.test("compaction copies the kept models' blocks of every state buffer together on the GPU", async () => {
  const gpu = await getGpu();
  const sizes = [7, 5, 3];
  const bn = [true];
  const P = 5, keep = [0, 2, 3];
  const all = Array.from({ length: P }, (_, z) => initParams(sizes, "gaussian", 0.5, 100 + z, bn));
  // running statistics are not what initialisation gives: make them distinct per model
  all.forEach((p, z) => p.bn![0]!.mean.forEach((_, i, a) => a[i] = z + i / 10));
  const from = new GpuParams(gpu.device, sizes, Array(P).fill(0), bn);
  all.forEach((p, z) => from.upload(z, p));
  const to = new GpuParams(gpu.device, sizes, keep.map(() => 0), bn);
  const enc = gpu.device.createCommandEncoder();
  const copies = encodeCompaction(enc, from.state(), from.layers, to.state(), to.layers, keep);
  gpu.device.queue.submit([enc.finish()]);
  // runs [0] and [2, 3] of every row: W1 and W2 pad4(7) = pad4(5) = 8 rows; b1, γ1, β1, the
  // running mean and variance, b2 one each
  assert.equal(copies, 2 * (8 + 1 + 4 + 8 + 1));
  const got = await to.download();
  const want = await from.download();
  keep.forEach((z, j) => assert.deepEqual(flat(got[j]), flat(want[z]), `model ${z} at ${j}`));
  from.destroy();
  to.destroy();
});

for (
  const [what, extra] of [
    ["SGD", {}],
    ["SGD, each model with its own η_max and σ", {
      model: { hidden: [16], init: "gaussian" },
    }],
    ["Adam, batch normalisation", {
      model: { hidden: [16, 12], bn: [true, false] },
      train: {
        optimizer: { kind: "adam" },
        schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.005, stepSize: 20, cycles: 2 },
      },
    }],
  ] as const
) {
  Deno.test(`halving stops the worst at each rung; the survivors end bit-identical to a population of them alone (${what})`, async () => {
    const cfg = config(extra);
    const data = await prepareData(cfg);
    try {
      const base = populationSpec(cfg, data.cifar.train.n, LAMBDAS, SEEDS);
      // per-model values must follow their models through the compaction (selectModels); not
      // dropout, whose masks depend on a model's place in its population
      const spec: PopulationSpec = what.includes("own")
        ? {
          ...base,
          schedules: LAMBDAS.map((_, z) => ({ ...base.schedule, etaMax: 0.02 + 0.01 * z })),
          sigmas: LAMBDAS.map((_, z) => 0.005 * (z + 1)),
        }
        : base;
      const rungEvents: RungEvent[] = [];
      const halved = await train(data, { ...spec, halving: { rungs: [20, 40], reduction: 2 } }, {
        onRung: (r: RungEvent) => rungEvents.push(r),
      });
      // 6 → 3 → 2, each rung keeping the best validation accuracies recorded at it
      let training = [...LAMBDAS.keys()];
      for (const [i, step] of [20, 40].entries()) {
        const acc = (z: number) =>
          halved.models[z].curves.find((p) => p.step === step)!.val!.accuracy;
        const ranked = [...training].sort((a, b) => acc(b) - acc(a) || a - b);
        const kept = ranked.slice(0, Math.ceil(training.length / 2)).sort((a, b) => a - b);
        const stopped = training.filter((z) => !kept.includes(z));
        assert.deepEqual(rungEvents[i].kept, kept, `rung ${i + 1}`);
        assert.deepEqual(rungEvents[i].stopped, stopped, `rung ${i + 1}`);
        for (const z of stopped) {
          assert.deepEqual(halved.models[z].stopped, { rung: i + 1, step });
          assert.equal(halved.models[z].curves.at(-1)!.step, step, `model ${z} ends at its rung`);
        }
        training = kept;
      }
      assert.equal(training.length, 2);
      assert.deepEqual(halved.members, training);
      assert.equal(halved.steps, 80);
      // the same two trials as a population of two from the start, without halving
      const alone = await train(data, selectModels(spec, training));
      training.forEach((z, j) => {
        assert.deepEqual(flat(halved.params[j]), flat(alone.params[j]), `model ${z}: parameters`);
        assert.deepEqual(halved.models[z], alone.models[j], `model ${z}: curves`);
      });
    } finally {
      data.dataset.destroy();
    }
  });
}

Deno.test("a halving population resumed from a snapshot before, at or after a rung ends exactly as without a stop", async () => {
  const cfg = config({ model: { hidden: [16, 12], bn: [true, false] } });
  const data = await prepareData(cfg);
  try {
    const spec: PopulationSpec = {
      ...populationSpec(cfg, data.cifar.train.n, LAMBDAS, SEEDS),
      evalEvery: 30, // points 0, 30, 60, 80 and the rungs 20, 40
      halving: { rungs: [20, 40], reduction: 2 },
    };
    const snaps: Snapshot[] = [];
    const whole = await train(data, spec, {
      onSnapshot: (s: Snapshot) => (snaps.push(structuredClone(s)), Promise.resolve()),
      snapshotSeconds: 1e9,
    });
    assert.deepEqual(snaps.map((s) => s.step), [20, 30, 40, 60]);
    assert.deepEqual(snaps.map((s) => [s.members!.length, s.rung]), [[3, 1], [3, 1], [2, 2], [
      2,
      2,
    ]]);
    // the buffers are those of the compacted population: 3 (then 2) models' blocks
    assert.equal(snaps[0].buffers.W1.length, 3072 * 3 * 16);
    assert.equal(snaps[2].buffers.W1.length, 3072 * 2 * 16);
    // through the file and back
    const file = await Deno.makeTempFile({ suffix: ".safetensors" });
    await writeSnapshot(file, "h", snaps[1]);
    const stored = (await readSnapshot(file, "restart"))!;
    assert.deepEqual(stored.snapshot, snaps[1]);
    await Deno.remove(file);
    for (const s of [stored.snapshot, snaps[0], snaps[2], snaps[3]]) {
      const resumed = await train(data, spec, { resume: s });
      assert.deepEqual(resumed.members, whole.members, `from step ${s.step}`);
      assert.deepEqual(resumed.models, whole.models, `from step ${s.step}`);
      assert.deepEqual(resumed.params.map(flat), whole.params.map(flat), `from step ${s.step}`);
    }
    // a snapshot whose membership does not fit the rungs is refused
    await assertUserError(
      () => train(data, spec, { resume: { ...snaps[0], rung: 0 } }),
      /does not fit this run \(it has passed 0 rungs of halving, this run 1 by step 20\).*--restart/,
    );
    await assertUserError(
      () => train(data, spec, { resume: { ...snaps[0], members: [0, 2, 9] } }),
      /its members 0, 2, 9 are not models of a population of 6/,
    );
  } finally {
    data.dataset.destroy();
  }
});

/** A sweep of 6 λs in one population, halving at `halving`; 80 steps evaluated every `every`. */
function halvingSweep(out: string, halving: Record<string, unknown>, every = 20): Config {
  return parseConfig(
    {
      name: "asha",
      out,
      seed: 5,
      data: { train: [1], val: { holdout: 1000 }, test: false },
      model: { hidden: [16] },
      train: {
        batchSize: 100,
        schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 20, cycles: 2 },
        evalEvery: every,
      },
      search: {
        stages: [{ name: "a", space: { kind: "list", values: LAMBDAS }, halving }],
        population: 6,
      },
    },
    "asha.json",
  );
}

function logger() {
  const lines: string[] = [];
  return { lines, log: (l: string) => lines.push(l) };
}

const byId = (m: Map<string, TrialRecord>) =>
  [...m.values()].sort((a, b) => (a.id < b.id ? -1 : 1));

Deno.test("a halving sweep records stopped trials at their rung, ranks the completed ones, and draws the rungs", async () => {
  const out = await Deno.makeTempDir({ prefix: "halving_test_" });
  try {
    // the defaults: a rung at the end of the first cycle (step 40), η_r = 3: 6 → 2
    const cfg = halvingSweep(out, {});
    assert.deepEqual(cfg.search!.stages[0].halving, { reduction: 3 });
    const { lines, log } = logger();
    const summary = (await runSweep(cfg, { log, report: false }))! as SweepSummary;
    const dir = join(out, "asha");
    const trials = byId(readTrials(dir));
    const stopped = trials.filter((t) => t.status === "stopped");
    const completed = trials.filter((t) => t.status === "completed");
    assert.equal(stopped.length, 4);
    assert.equal(completed.length, 2);
    // the two that went on had the best validation accuracy at the rung
    const at40 = (t: TrialRecord) => t.curves.find((p) => p.step === 40)!.val!.accuracy;
    assert.ok(Math.min(...completed.map(at40)) >= Math.max(...stopped.map(at40)));
    for (const t of stopped) {
      assert.deepEqual(t.stopped, { rung: 1, step: 40 });
      assert.deepEqual(t.curves.map((p) => p.step), [0, 20, 40]);
      assert.equal(t.final!.val.accuracy, at40(t));
      assert.deepEqual(parseRecord(TRIAL_FORMAT, JSON.parse(JSON.stringify(t)), "t"), t);
    }
    for (const t of completed) assert.equal(t.curves.at(-1)!.step, 80);
    // the log names the rung and who went on; the stage's tables rank the completed trials only
    const ids = (ts: TrialRecord[]) => ts.map((t) => t.index).join(", ");
    assert.ok(
      lines.includes(
        `a: rung 1 at step 40: 2 of 6 go on (trials ${ids(completed)}), 4 stopped (trials ${
          ids(stopped)
        })`,
      ),
      lines.join("\n"),
    );
    assert.ok(lines.some((l) => l.includes("(4 stopped at rungs)")), lines.join("\n"));
    assert.ok(
      lines.includes(
        "stage a: 4 of 6 trials stopped by successive halving (rung 1 at step 40: 6 → 2); the table ranks the 2 that completed",
      ),
      lines.join("\n"),
    );
    const stage = summary.stages[0];
    assert.deepEqual(
      [stage.trials, stage.completed, stage.diverged, stage.stopped],
      [6, 2, 0, 4],
    );
    assert.deepEqual(stage.halving, { rungs: [40], reduction: 3 });
    assert.deepEqual(stage.top.map((e) => e.id).sort(), completed.map((t) => t.id));
    // trials.csv says which stopped, and where (its last step)
    const csv = trialsCsv(readSweepTrials(dir)).trim().split("\n");
    const head = csv[0].split(",");
    for (const t of trials) {
      const row = csv.find((r) => r.startsWith(`${t.id},`))!.split(",");
      assert.equal(row[head.indexOf("status")], t.status);
      assert.equal(Number(row[head.indexOf("steps")]), t.status === "stopped" ? 40 : 80);
    }
    // the report: a rung table and every trial's curve
    const html = renderSweepReport(await loadSweep(dir));
    assert.match(html, /Stage a: successive halving/);
    assert.match(html, /4 of 6 trials stopped at rungs · rungs at steps 40, η_r = 3/);
    assert.match(html, /Stage a: validation accuracy of every trial/);
    assert.match(html, /6 trials in 1 stage · 0 diverged · 4 stopped at rungs/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a halving stage of several populations halves each on its own, and says so", async () => {
  const out = await Deno.makeTempDir({ prefix: "halving_pops_" });
  try {
    const cfg = halvingSweep(out, {});
    cfg.search!.population = 3;
    const { lines, log } = logger();
    await runSweep(cfg, { log, report: false });
    assert.ok(
      lines.includes(
        "stage a: successive halving ranks each population on its own: 6 trials train in 2 populations (search.population 3, grouped by shared values)",
      ),
      lines.join("\n"),
    );
    // each population of 3 keeps ⌈3/3⌉ = 1
    const trials = byId(readTrials(join(out, "asha")));
    const done = (ts: TrialRecord[]) => ts.filter((t) => t.status === "completed").length;
    assert.equal(done(trials.filter((t) => t.index < 3)), 1);
    assert.equal(done(trials.filter((t) => t.index >= 3)), 1);
    assert.equal(trials.filter((t) => t.status === "stopped").length, 4);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a halving sweep interrupted at a rung or between rungs resumes to what an uninterrupted one records", async () => {
  const out = await Deno.makeTempDir({ prefix: "halving_resume_" });
  try {
    const halving = { rungs: [20, 60], reduction: 2 }; // 6 → 3 → 2
    const ref = await runSweep(halvingSweep(join(out, "ref"), halving, 10), {
      log: quiet,
      report: false,
    });
    const want = byId(readTrials(join(out, "ref", "asha")));
    assert.equal(want.filter((t) => t.status === "completed").length, 2);
    // stop right after the first rung, and between the rungs (at the point after step 30)
    for (
      const [what, when] of [["at rung 1", /rung 1 at step 20/], [
        "after step 30",
        /step 30\//,
      ]] as const
    ) {
      const dir = join(out, what.replace(/ /g, "-"));
      const cfg = halvingSweep(dir, halving, 10);
      const abort = new AbortController();
      const { lines, log } = logger();
      const stopped = await runSweep(cfg, {
        log: (l) => {
          log(l);
          if (when.test(l)) abort.abort();
        },
        signal: abort.signal,
        report: false,
      });
      assert.equal(stopped, null, lines.join("\n"));
      const at = /interrupted at step (\d+)\/80/.exec(lines.join("\n"));
      assert.ok(at && Number(at[1]) < 80, lines.join("\n"));
      if (what === "at rung 1") assert.equal(at[1], "20");
      const again = logger();
      const summary = await runSweep(cfg, { log: again.log, report: false });
      assert.ok(
        again.lines.some((l) => l.includes(`resuming at step ${at[1]}`)),
        again.lines.join("\n"),
      );
      assert.deepEqual(byId(readTrials(join(dir, "asha"))), want, what);
      assert.deepEqual(summary!.stages, ref!.stages, what);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("bad halving keys get one line naming the key, before any work", async () => {
  const bad = (halving: unknown, re: RegExp, schedule?: unknown) =>
    assertUserError(
      () =>
        parseConfig(
          {
            data: { train: [1], val: { holdout: 1000 } },
            train: {
              schedule: schedule ??
                { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 100, cycles: 3 },
            },
            search: { stages: [{ name: "a", space: { kind: "list", values: [0.1] }, halving }] },
          },
          "bad.json",
          {},
          "bad",
        ),
      re,
    );
  await bad(
    { rungs: [200, 600] },
    /^config bad\.json: search\.stages\.0\.halving\.rungs\.1 \(600\) is not before the last step: the schedule trains 600 steps, so every rung must be at most 599$/,
  );
  await bad(
    { rungs: [400, 200] },
    /^config bad\.json: search\.stages\.0\.halving\.rungs\.1 \(200\) does not come after rungs\.0 \(400\): rungs must increase$/,
  );
  await bad({ rungs: [200, 200] }, /rungs\.1 \(200\) does not come after rungs\.0 \(200\)/);
  await bad(
    { reduction: 1 },
    /^config bad\.json: search\.stages\.0\.halving\.reduction must be > 1, got 1$/,
  );
  await bad({ reduction: 0.5 }, /halving\.reduction must be > 1, got 0\.5$/);
  await bad({ rungs: [] }, /halving\.rungs must have >= 1 entries/);
  await bad({ rungs: [0] }, /halving\.rungs\.0 must be >= 1, got 0/);
  await bad({ every: 3 }, /unknown key "search\.stages\.0\.halving\.every"/);
  await bad(
    {},
    /^config bad\.json: search\.stages\.0\.halving: a constant schedule has no cycles to put rungs at the end of: give "rungs" \(update steps before its last, 180\)$/,
    { kind: "constant", eta: 0.01, epochs: 2 },
  );
  await bad(
    {},
    /halving: a cyclic schedule of 1 cycle has no cycle end before its last step \(200\): give "rungs"/,
    { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 100, cycles: 1 },
  );
  // a stage's own schedule is the one checked
  await assertUserError(
    () =>
      parseConfig(
        {
          data: { train: [1], val: { holdout: 1000 } },
          train: {
            schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 100, cycles: 3 },
          },
          search: {
            stages: [{
              name: "a",
              space: { kind: "list", values: [0.1] },
              train: { schedule: { kind: "stepDecay", eta: 0.1, decay: 0.5, every: 1, epochs: 2 } },
              halving: { rungs: [90, 180] },
            }],
          },
        },
        "bad.json",
        {},
        "bad",
      ),
    /halving\.rungs\.1 \(180\) is not before the last step: the schedule trains 180 steps/,
  );
  // the command: one error line, exit 1, nothing written
  const dir = await Deno.makeTempDir({ prefix: "halving_bad_" });
  try {
    const file = join(dir, "bad.json");
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        out: join(dir, "runs"),
        data: { train: [1], val: { holdout: 1000 } },
        train: { schedule: { kind: "constant", eta: 0.01, epochs: 2 } },
        search: { stages: [{ name: "a", space: { kind: "list", values: [0.1] }, halving: {} }] },
      }),
    );
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "src/cli/sweep.ts", "--config", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(r.stderr).trim();
    assert.equal(r.code, 1, err);
    assert.match(
      err,
      /^error: config \S+bad\.json: search\.stages\.0\.halving: a constant schedule/,
    );
    assert.equal(err.split("\n").length, 1, err);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["bad.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
