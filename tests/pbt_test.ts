/**
 * Population-based training inside a population: the exploit rule (quantiles, seeded draws,
 * perturbations kept in the space, list neighbours, resampling), the copy on the GPU exact (each
 * copying model's whole state equal to its source's at that step, every other model's equal to
 * a population without PBT), the explored values reaching the kernels (the run from an exploit
 * on equals a plain population with those values), the same seed giving the same history,
 * resume from snapshots before, at and after exploits ending as an uninterrupted run, a PBT
 * sweep's records, log and report, an interrupted PBT sweep resuming to what an uninterrupted
 * one records, and every bad PBT key refused in one line.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Config, parseConfig } from "../src/config.ts";
import type { Params } from "../src/model/init.ts";
import { getGpu } from "../src/gpu/device.ts";
import { resolveDataDir } from "../src/data/data_dir.ts";
import { evaluateCheckpoint } from "../src/train/eval_checkpoint.ts";
import { renderSweepReport } from "../src/report/sweep.ts";
import { loadSweep } from "../src/report/load.ts";
import { readTrials } from "../src/sweep/results.ts";
import { trialsCsv } from "../src/io/csv.ts";
import { readSweepTrials } from "../src/io/hparams.ts";
import { runSweep } from "../src/sweep/sweep.ts";
import type { TrialRecord } from "../src/sweep/types.ts";
import {
  exploit,
  exploitRng,
  exploitSteps,
  type PbtDim,
  pbtReady,
  type PbtSpec,
  type PbtValues,
  quantileCount,
  withValues,
} from "../src/train/pbt.ts";
import { populationSpec, prepareData, type PreparedData } from "../src/train/run.ts";
import { readSnapshot, type Snapshot, writeSnapshot } from "../src/train/snapshot.ts";
import {
  type ExploitEvent,
  type PopulationSpec,
  trainDataOf,
  trainPopulation,
  type TrainResult,
} from "../src/train/trainer.ts";
import { assertUserError } from "./assert_user_error.ts";
import { Browser, fileUrl, findChromium } from "./browser.ts";

const quiet = () => {};

/** 80 steps (2 cycles of n_s = 20) on 9000 / 1000 samples of batch 100, 3072-16-10. */
function config(extra: { model?: Record<string, unknown>; train?: Record<string, unknown> } = {}) {
  return parseConfig(
    {
      name: "p",
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

const DIMS: PbtDim[] = [
  { name: "lambda", kind: "log", range: [1e-4, 0.5] },
  { name: "etaMax", kind: "log", range: [0.005, 0.1] },
];

function pbtOf(steps: number[], extra: Partial<PbtSpec> = {}): PbtSpec {
  return {
    steps,
    quantile: 1 / 3,
    factors: [0.8, 1.2],
    resample: 0.25,
    seed: 7,
    dims: DIMS,
    ...extra,
  };
}

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

/** Model m's block of every state buffer of a snapshot of a 3072-16-10 population of P. */
function block(snap: Snapshot, m: number, P: number): number[][] {
  const pout = [16, 12]; // pad4 of each layer's outputs
  return Object.keys(snap.buffers).sort().map((name) => {
    const b = snap.buffers[name];
    const w = pout[Number(/(\d+)$/.exec(name)![1]) - 1], ld = P * w;
    const out: number[] = [];
    for (let i = 0; i < b.length / ld; i++) {
      out.push(...b.subarray(i * ld + m * w, i * ld + (m + 1) * w));
    }
    return out;
  });
}

Deno.test("an exploit: the bottom ⌈n·q⌉ (at most ⌊n/2⌋) copy the top as many, with seeded draws", () => {
  assert.deepEqual([1, 2, 3, 4, 6, 16, 81].map((n) => quantileCount(n, 0.25)), [
    0,
    1,
    1,
    1,
    2,
    4,
    21,
  ]);
  assert.deepEqual([2, 3, 6].map((n) => quantileCount(n, 0.5)), [1, 1, 3]);
  assert.deepEqual(exploitSteps(20, 80), [20, 40, 60]);
  assert.deepEqual(exploitSteps(30, 80), [30, 60]);
  const accs = [0.30, 0.50, 0.10, 0.50, 0.20, 0.40];
  const models = accs.map((accuracy, index) => ({ index, accuracy }));
  const values = (z: number): PbtValues => ({ lambda: 0.01 * (z + 1), etaMax: 0.01 * (z + 2) });
  const pbt = pbtOf([20], { quantile: 1 / 3 });
  const moves = exploit(models, values, pbt, 20);
  // ranked 1, 3 (tie: smaller index first), 5, 0, 4, 2: the bottom two copy from 1 and 3
  assert.deepEqual(moves.map((m) => m.model), [4, 2]);
  for (const { event } of moves) {
    assert.ok([1, 3].includes(event.from), `copies from the top: ${event.from}`);
    assert.equal(event.step, 20);
    for (const d of DIMS) {
      const v = event.values[d.name]!, how = event.how[d.name]!;
      assert.ok(v >= d.range[0] && v <= d.range[1], `${d.name} ${v} in its range`);
      if (how !== "resample") {
        const f = Number(how.slice(1));
        assert.ok([0.8, 1.2].includes(f), how);
        const want = Math.min(d.range[1], Math.max(d.range[0], values(event.from)[d.name]! * f));
        assert.equal(v, want);
      }
    }
  }
  // the same seed and step draw the same; another step or seed draws differently
  assert.deepEqual(exploit(models, values, pbt, 20), moves);
  const draws = (seed: number, step: number) =>
    Array.from({ length: 8 }, () => exploitRng(seed, step).uniform());
  assert.deepEqual(draws(7, 20), draws(7, 20));
  assert.notDeepEqual(exploitRng(7, 40).uniform(), exploitRng(7, 20).uniform());
  assert.notDeepEqual(exploitRng(8, 20).uniform(), exploitRng(7, 20).uniform());
  // resample 1: every value drawn from the range; resample 0: every value perturbed
  for (const r of [0, 1]) {
    for (const { event } of exploit(models, values, { ...pbt, resample: r }, 40)) {
      assert.ok(Object.values(event.how).every((h) => (h === "resample") === (r === 1)));
    }
  }
  // a list dimension moves to a neighbouring value, clamped at its ends
  const list: PbtDim = { name: "dropout", kind: "values", range: [0, 0.5], values: [0, 0.25, 0.5] };
  for (let step = 1; step < 30; step++) {
    const [m] = exploit(
      [{ index: 0, accuracy: 1 }, { index: 1, accuracy: 0 }],
      () => ({ dropout: 0.25 }),
      { ...pbt, quantile: 0.5, resample: 0, dims: [list] },
      step,
    );
    const want = m.event.how.dropout === "up" ? 0.5 : 0;
    assert.equal(m.event.values.dropout, want);
  }
  // nobody copies in a population of one
  assert.deepEqual(exploit([{ index: 0, accuracy: 1 }], values, pbt, 20), []);
});

Deno.test("withValues changes one model's λ, schedule rates and dropout, and keeps η_min ≤ η_max; pbtReady keeps each model's values", () => {
  const cfg = config({ model: { hidden: [16, 8] } });
  const spec = populationSpec(cfg, 9000, [0.1, 0.2], [1, 2]);
  const a = withValues(spec, 1, { lambda: 0.5, etaMax: 1e-6, dropout: 0.3 });
  assert.deepEqual(a.lambdas, [0.1, 0.5]);
  assert.deepEqual(spec.lambdas, [0.1, 0.2], "the spec itself is kept");
  assert.equal(a.schedules![0], spec.schedule);
  assert.deepEqual(a.schedules![1], { ...spec.schedule, etaMax: 1e-6, etaMin: 1e-6 });
  assert.deepEqual(a.dropouts, [[0, 0], [0.3, 0.3]]);
  // made ready for PBT, every model gets its own schedule and dropout, each as the spec gives it
  const layered = { ...spec, net: { ...spec.net, dropout: [0.1, 0.3] } };
  const dims: PbtDim[] = [{ name: "etaMax", kind: "log", range: [0.01, 0.1] }, {
    name: "dropout",
    kind: "linear",
    range: [0, 0.5],
  }];
  const ready = pbtReady(layered, dims);
  assert.deepEqual(ready.schedules, [spec.schedule, spec.schedule]);
  assert.deepEqual(ready.dropouts, [[0.1, 0.3], [0.1, 0.3]]);
  assert.equal(pbtReady(spec, [DIMS[0]]).schedules, undefined, "λ alone needs no schedules");
});

for (
  const [what, extra] of [
    ["SGD", {}],
    ["Adam, batch normalisation", {
      model: { hidden: [16], bn: true },
      train: {
        optimizer: { kind: "adam" },
        schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.005, stepSize: 20, cycles: 2 },
      },
    }],
  ] as const
) {
  Deno.test(`a PBT copy is exact and the explored values reach the kernels (${what})`, async () => {
    const cfg = config(extra);
    const data = await prepareData(cfg);
    try {
      const base = populationSpec(cfg, data.cifar.train.n, LAMBDAS, SEEDS);
      const spec: PopulationSpec = { ...base, pbt: pbtOf([20, 40]) };
      const P = LAMBDAS.length;
      const snaps: Snapshot[] = [], plainSnaps: Snapshot[] = [];
      const events: ExploitEvent[] = [];
      const keep =
        (into: Snapshot[]) => (s: Snapshot) => (into.push(structuredClone(s)), Promise.resolve());
      const pbt = await train(data, spec, {
        onSnapshot: keep(snaps),
        snapshotSeconds: 1e9,
        onExploit: (e: ExploitEvent) => events.push(e),
      });
      const plain = await train(data, base, { onSnapshot: keep(plainSnaps), snapshotSeconds: 1e9 });
      assert.deepEqual(events.map((e) => e.step), [20, 40]);
      assert.deepEqual(events.map((e) => e.moves.length), [2, 2]);
      assert.ok(events.every((e) => e.dispatches === Object.keys(snaps[0].buffers).length));
      // at step 20 (the snapshot is taken after the exploit): a copying model holds exactly its
      // source's state, as a population without PBT has it at step 20; the others their own
      const at20 = snaps.find((s) => s.step === 20)!,
        plain20 = plainSnaps.find((s) => s.step === 20)!;
      const moved = new Map(events[0].moves.map((m) => [m.model, m.event.from]));
      for (let z = 0; z < P; z++) {
        const from = moved.get(z) ?? z;
        assert.deepEqual(block(at20, z, P), block(plain20, from, P), `model ${z} (from ${from})`);
      }
      // the models' records: the lineage, and the evaluation at 20 before the copy
      for (const [z, from] of moved) {
        assert.deepEqual(
          pbt.models[z].lineage![0],
          events[0].moves.find((m) => m.model === z)!.event,
        );
        assert.equal(pbt.models[z].lineage![0].from, from);
        assert.deepEqual(pbt.models[z].curves[1], plain.models[z].curves[1]);
      }
      // from the last exploit on, PBT trains exactly a plain population with the values it
      // explored: the population resumed at step 40 with those values and without PBT
      const at40 = snaps.find((s) => s.step === 40)!;
      let values = { ...spec, pbt: undefined } as PopulationSpec;
      for (const e of events) {
        for (const m of e.moves) values = withValues(values, m.model, m.event.values);
      }
      const rest = await train(data, values, {
        resume: { ...at40, models: at40.models.map(({ lineage: _, ...m }) => m) },
      });
      assert.deepEqual(rest.params.map(flat), pbt.params.map(flat));
      assert.deepEqual(
        rest.models.map((m) => m.curves),
        pbt.models.map((m) => m.curves),
      );
      // the same seed gives the same history; another seed another one
      const again = await train(data, spec);
      assert.deepEqual(again.models, pbt.models);
      assert.deepEqual(again.params.map(flat), pbt.params.map(flat));
      const other = await train(data, { ...spec, pbt: { ...spec.pbt!, seed: 8 } });
      assert.notDeepEqual(other.models.map((m) => m.lineage), pbt.models.map((m) => m.lineage));
    } finally {
      data.dataset.destroy();
    }
  });
}

Deno.test("a PBT population resumed from a snapshot before, at or after an exploit ends exactly as without a stop", async () => {
  const cfg = config({ model: { hidden: [16], bn: true } });
  const data = await prepareData(cfg);
  try {
    const base = populationSpec(cfg, data.cifar.train.n, LAMBDAS, SEEDS);
    const spec: PopulationSpec = {
      ...base,
      evalEvery: 30, // points 0, 30, 60, 80 and the exploits 20, 40
      schedules: LAMBDAS.map((_, z) => ({ ...base.schedule, etaMax: 0.02 + 0.01 * z })),
      pbt: pbtOf([20, 40], { resample: 0.5 }),
    };
    const snaps: Snapshot[] = [];
    const whole = await train(data, spec, {
      onSnapshot: (s: Snapshot) => (snaps.push(structuredClone(s)), Promise.resolve()),
      snapshotSeconds: 1e9,
    });
    assert.deepEqual(snaps.map((s) => s.step), [20, 30, 40, 60]);
    assert.ok(whole.models.some((m) => m.lineage && m.lineage.length > 0));
    // a snapshot holds the lineage up to its step
    assert.ok(snaps[0].models.every((m) => (m.lineage ?? []).every((e) => e.step === 20)));
    // through the file and back
    const file = await Deno.makeTempFile({ suffix: ".safetensors" });
    await writeSnapshot(file, "p", snaps[1]);
    const stored = (await readSnapshot(file, "restart"))!;
    assert.deepEqual(stored.snapshot, snaps[1]);
    await Deno.remove(file);
    for (const s of [stored.snapshot, snaps[0], snaps[2], snaps[3]]) {
      const resumed = await train(data, spec, { resume: s });
      assert.deepEqual(resumed.models, whole.models, `from step ${s.step}`);
      assert.deepEqual(resumed.params.map(flat), whole.params.map(flat), `from step ${s.step}`);
    }
  } finally {
    data.dataset.destroy();
  }
});

/** A PBT sweep of 6 trials over λ and η_max in one population; 80 steps evaluated every `every`. */
function pbtSweep(out: string, pbt: Record<string, unknown>, every = 20): Config {
  return parseConfig(
    {
      name: "pbt",
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
        stages: [{
          name: "a",
          space: {
            kind: "random",
            count: 6,
            seed: 3,
            dims: { lambda: { logUniform: [1e-4, 0.1] }, etaMax: { logUniform: [0.01, 0.1] } },
          },
          pbt,
        }],
        population: 6,
      },
    },
    "pbt.json",
  );
}

function logger() {
  const lines: string[] = [];
  return { lines, log: (l: string) => lines.push(l) };
}

const byId = (m: Map<string, TrialRecord>) =>
  [...m.values()].sort((a, b) => (a.id < b.id ? -1 : 1));

Deno.test("a PBT sweep records each trial's lineage and end values, ranks by them, logs and draws the exploits", async () => {
  const out = await Deno.makeTempDir({ prefix: "pbt_test_" });
  try {
    const cfg = pbtSweep(out, { interval: 20, quantile: 0.33 });
    const { lines, log } = logger();
    const summary = await runSweep(cfg, { log, report: true });
    const exploits = lines.filter((l) => /^a: exploit at step/.test(l));
    assert.equal(exploits.length, 3, lines.join("\n"));
    assert.match(
      exploits[0],
      /^a: exploit at step 20: 2 trials copy: \d ← \d \(λ [\d.e+-]+ {2}η_max [\d.e+-]+\), \d ← \d/,
    );
    const trials = byId(readTrials(join(out, "pbt")));
    assert.equal(trials.length, 6);
    const copied = trials.filter((t) => t.pbt && t.pbt.lineage.length > 0);
    assert.ok(copied.length >= 2, "at least the two of the first exploit");
    for (const t of copied) {
      const last = t.pbt!.lineage.at(-1)!;
      assert.deepEqual(t.pbt!.end, { ...t.hyper, ...last.values });
      assert.ok(t.pbt!.lineage.every((e) => /^a\/\d$/.test(e.from) && e.from !== t.id));
    }
    // the best member by final validation accuracy keeps its weights as trained, and says so
    const best = [...trials].sort((a, b) =>
      b.final!.val.accuracy - a.final!.val.accuracy || a.index - b.index
    )[0];
    assert.ok(
      trials.every((t) =>
        t.pbt
      ),
      "every trial of a PBT stage has its pbt block",
    );
    assert.deepEqual(trials.filter((t) => t.pbt!.checkpoint).map((t) => t.id), [best.id]);
    const file = join(out, "pbt", best.pbt!.checkpoint!);
    assert.equal(best.pbt!.checkpoint, `${best.id.replace("/", "-")}.weights.safetensors`);
    assert.ok(
      lines.some((l) => l.includes(`its best member, trial ${best.id}`) && l.includes(file)),
    );
    const ev = await evaluateCheckpoint(await getGpu(), file, resolveDataDir(), "data_batch_1.bin");
    assert.equal(ev.samples, 10000);
    assert.ok(ev.accuracy > 0.2, `trained weights: ${ev.accuracy}`);
    // the kept weights are the tool's own: --overwrite replaces the sweep, the same again
    const again = await runSweep(cfg, { log: quiet, report: true, overwrite: true });
    assert.deepEqual(again!.stages, summary!.stages);
    assert.deepEqual(byId(readTrials(join(out, "pbt"))), trials);
    // trials.csv (and TensorBoard's HParams) carry the copies and the end values
    const csv = trialsCsv(readSweepTrials(join(out, "pbt")));
    const header = csv.split("\n")[0].split(",");
    assert.ok(
      ["pbt.copies", "pbt.end.lambda", "pbt.end.etaMax"].every((c) => header.includes(c)),
      csv,
    );
    const row = csv.split("\n").find((l) => l.startsWith(`${copied[0].id},`))!.split(",");
    assert.equal(Number(row[header.indexOf("pbt.copies")]), copied[0].pbt!.lineage.length);
    assert.equal(Number(row[header.indexOf("pbt.end.lambda")]), copied[0].pbt!.end.lambda);
    // the top table shows the values the trials ended with
    const top = summary!.stages[0].top;
    const first = trials.find((t) => t.id === top[0].id)!;
    assert.deepEqual(top[0].hyper, first.pbt?.end ?? first.hyper);
    // the report draws the lineage and the values over time
    const html = await Deno.readTextFile(join(out, "pbt", "report.html"));
    assert.match(html, /Population-based training/);
    assert.match(html, /copied a\/\d/);
    assert.match(html, /Weights of the best member as trained: <code>a-\d\.weights\.safetensors/);
    const sw = await loadSweep(join(out, "pbt"));
    assert.match(renderSweepReport(sw), /λ over training/);
    // in Chromium (where there is one; CI has it): the PBT charts draw, offline, without errors
    const chromium = findChromium();
    if (chromium) {
      const browser = await Browser.launch(chromium);
      try {
        const v = await browser.visit(fileUrl(join(out, "pbt", "report.html")), {
          evaluate: "window.__report",
        });
        assert.deepEqual(v.errors, []);
        assert.deepEqual(v.blocked, []);
        assert.ok(v.ready);
        const state = v.value as {
          charts: { title: string; datasets: { label: string; points: number }[] }[];
        };
        for (
          const title of [
            "Stage a: λ over training",
            "Stage a: η_max over training",
            "Stage a: validation accuracy of every trial",
          ]
        ) {
          const chart = state.charts.find((c) => c.title === title);
          assert.ok(chart, `${title}: ${state.charts.map((c) => c.title)}`);
          assert.ok(chart.datasets.length >= 6 && chart.datasets.every((d) => d.points > 0), title);
        }
      } finally {
        await browser.close();
      }
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a PBT sweep interrupted at an exploit or between exploits resumes to what an uninterrupted one records", async () => {
  const out = await Deno.makeTempDir({ prefix: "pbt_resume_" });
  try {
    const pbt = { interval: 20, quantile: 0.33, resample: 0.5 };
    const ref = await runSweep(pbtSweep(join(out, "ref"), pbt, 10), { log: quiet, report: false });
    const want = byId(readTrials(join(out, "ref", "pbt")));
    assert.ok(want.some((t) => t.pbt!.lineage.length > 0));
    for (
      const [what, when] of [["at exploit 1", /exploit at step 20/], [
        "after step 30",
        /step 30\//,
      ]] as const
    ) {
      const dir = join(out, what.replace(/ /g, "-"));
      const cfg = pbtSweep(dir, pbt, 10);
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
      const again = logger();
      const summary = await runSweep(cfg, { log: again.log, report: false });
      assert.ok(
        again.lines.some((l) => l.includes(`resuming at step ${at[1]}`)),
        again.lines.join("\n"),
      );
      assert.deepEqual(byId(readTrials(join(dir, "pbt"))), want, what);
      assert.deepEqual(summary!.stages, ref!.stages, what);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("bad PBT keys get one line naming the key, before any work", async () => {
  const bad = (stage: Record<string, unknown>, re: RegExp, model?: Record<string, unknown>) =>
    assertUserError(
      () =>
        parseConfig(
          {
            data: { train: [1], val: { holdout: 1000 } },
            ...(model ? { model } : {}),
            train: {
              schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 100, cycles: 3 },
            },
            search: {
              stages: [{
                name: "a",
                space: { kind: "logUniform", min: 1e-4, max: 0.1, count: 8 },
                ...stage,
              }],
            },
          },
          "bad.json",
          {},
          "bad",
        ),
      re,
    );
  const at = "^config bad\\.json: search\\.stages\\.0\\.pbt";
  await bad(
    { pbt: { interval: 100, quantile: 0.6 } },
    new RegExp(`${at}\\.quantile must be <= 0\\.5, got 0\\.6$`),
  );
  await bad(
    { pbt: { interval: 100, quantile: 0 } },
    new RegExp(`${at}\\.quantile must be > 0, got 0$`),
  );
  await bad(
    { pbt: { interval: 100, perturb: [1.2, 0] } },
    new RegExp(`${at}\\.perturb\\.1 must be > 0, got 0$`),
  );
  await bad({ pbt: { interval: 100, perturb: [] } }, /pbt\.perturb must have >= 1 entries/);
  await bad({ pbt: { interval: 100, resample: 2 } }, /pbt\.resample must be <= 1, got 2$/);
  await bad({ pbt: {} }, /pbt\.interval is missing/);
  await bad(
    { pbt: { interval: 600 } },
    new RegExp(
      `${at}\\.interval \\(600\\) leaves no exploit before the last step: the schedule trains 600 steps, so the interval must be at most 599$`,
    ),
  );
  await bad(
    { pbt: { interval: 100 }, halving: {} },
    /pbt: a stage takes successive halving or population-based training, not both/,
  );
  await bad(
    { pbt: { interval: 100, dims: ["etaMax"] } },
    /pbt\.dims\.0: etaMax is not a dimension of the stage's space \(lambda\)/,
  );
  await bad(
    { pbt: { interval: 100, dims: ["sigma"] } },
    /pbt\.dims\.0 must be one of "lambda", "etaMax", "etaMin", "eta", "dropout"/,
  );
  await bad({ pbt: { interval: 100, every: 3 } }, /unknown key "search\.stages\.0\.pbt\.every"/);
  await bad(
    {
      pbt: { interval: 100 },
      space: { kind: "random", count: 4, dims: { sigma: { logUniform: [1e-3, 1e-1] } } },
    },
    /pbt: the space searches only sigma, which is fixed at initialisation/,
    { init: "gaussian" },
  );
  await assertUserError(
    () =>
      parseConfig(
        {
          data: { train: [1], val: { holdout: 1000 } },
          train: {
            schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 100, cycles: 3 },
          },
          search: {
            stages: [
              { name: "a", space: { kind: "logUniform", min: 1e-4, max: 0.1, count: 8 } },
              { name: "b", space: { kind: "around", stage: "a", count: 4 }, pbt: { interval: 10 } },
            ],
          },
        },
        "bad.json",
        {},
        "bad",
      ),
    /^config bad\.json: search\.stages\.1\.pbt: an around space has no range of its own to resample from/,
  );
  await bad(
    { pbt: { interval: 100 }, space: { kind: "list", values: [0.1] } },
    /pbt: the space gives 1 trial; population-based training needs at least 2/,
  );
  // the command: one error line, exit 1, nothing written
  const dir = await Deno.makeTempDir({ prefix: "pbt_bad_" });
  try {
    const file = join(dir, "bad.json");
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        out: join(dir, "runs"),
        data: { train: [1], val: { holdout: 1000 } },
        train: {
          schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 100, cycles: 3 },
        },
        search: {
          stages: [{
            name: "a",
            space: { kind: "logUniform", min: 1e-4, max: 0.1, count: 8 },
            pbt: { interval: 10, quantile: 0.6 },
          }],
        },
      }),
    );
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "src/cli/train.ts", "--config", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(r.stderr).trim();
    assert.equal(r.code, 1, err);
    assert.match(
      err,
      /^error: config \S+bad\.json: search\.stages\.0\.pbt\.quantile must be <= 0\.5, got 0\.6$/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["bad.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
