/**
 * Search spaces over several hyperparameters: the λ forms draw exactly what they drew before; a
 * grid over dims is their product; random draws are reproducible and within bounds; around
 * searches every dimension; trials that differ in what a population shares train apart; every
 * bad space gets one line naming the key; and a tiny sweep over λ × η_max trains, records,
 * tabulates and finishes with the best trial's values.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Config, parseConfig, type SpaceConfig } from "../src/config.ts";
import { UserError } from "../src/errors.ts";
import { trialsCsv } from "../src/io/csv.ts";
import { readSweepTrials } from "../src/io/hparams.ts";
import { parseRecord, RUN_FORMAT, TRIAL_FORMAT } from "../src/io/records.ts";
import { topTables } from "../src/report/sweep.ts";
import {
  groupPopulations,
  type Hyper,
  PER_MODEL_DIMS,
  populationKey,
  withHyper,
} from "../src/sweep/hyper.ts";
import { formatTop, readTrials } from "../src/sweep/results.ts";
import { samplePoints, sampleSpace } from "../src/sweep/space.ts";
import { centrePoints, planStage, runSweep, SWEEP_CONFIG } from "../src/sweep/sweep.ts";
import type { SweepSummary, TrialRecord } from "../src/sweep/types.ts";
import { populationSpec } from "../src/train/run.ts";
import { learningRate, type Schedule } from "../src/train/schedule.ts";

const cyclic = { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 20, cycles: 1 };

/** A small sweep config (9000 / 1000 samples of batch 1, 3072-16-10, 40 steps) with `search`. */
function sweepConfig(
  out: string,
  search: Record<string, unknown>,
  more: { model?: Record<string, unknown>; schedule?: Record<string, unknown> } = {},
): Config {
  return parseConfig(
    {
      name: "s",
      out,
      seed: 5,
      data: { train: [1], val: { holdout: 1000 }, test: false },
      model: { hidden: [16], init: "xavier", ...more.model },
      train: { batchSize: 100, schedule: more.schedule ?? cyclic, evalEvery: 20 },
      search,
    },
    "test.json",
  );
}

/** A config whose one stage has `space`. */
function oneStage(space: unknown, more: Parameters<typeof sweepConfig>[2] = {}): Config {
  return sweepConfig("/tmp/unused", { stages: [{ name: "a", space }] }, more);
}

/** The points the first stage of `cfg` plans (its trials' values). */
function points(cfg: Config, centres: Hyper[] = []): Hyper[] {
  return planStage(cfg, cfg.search!.stages[0], centres).map((p) => p.hyper ?? { lambda: p.lambda });
}

// What the λ spaces drew before spaces had dimensions (the old sampleSpace, for these seeds).
const BEFORE = {
  coarse: [
    0.0018811523928846002,
    0.03610569815169307,
    0.0007626577223114406,
    0.0002581492059706281,
    0.00022173694806683383,
    0.001029133884647399,
    0.002774240429819397,
    0.0001174953629903952,
    0.004734798594985906,
    0.013304120089572062,
    0.0003428117228912403,
    0.07140068593897306,
  ],
  seed3: [
    0.014369587137782493,
    0.0014104208302111356,
    0.005642879833583107,
    0.0002785210193143128,
    0.00787616335093832,
  ],
  seed0: [
    0.03527083983657611,
    0.000011217600155455954,
    0.000013492380585407484,
    0.000012520804667849163,
  ],
  grid: [
    0.0001,
    0.00026826957952797245,
    0.0007196856730011522,
    0.0019306977288832496,
    0.005179474679231213,
    0.013894954943731374,
    0.03727593720314938,
    0.1,
  ],
  linear: [0, 0.025, 0.05, 0.07500000000000001, 0.1],
  range: [
    0.0012209290765081674,
    0.0032570277888878166,
    0.0007465872273247529,
    0.00039616122720451406,
    0.00474696206261538,
    0.0013823804548509754,
    0.00020825987472918286,
    0.0002976056080990701,
    0.004593680126275211,
    0.0003796451631590156,
    0.003060918766635087,
    0.001890479140364102,
  ],
  perturb: [
    0.00044293245338059543,
    0.0023765774142429333,
    0.0005786215520619444,
    0.005863024691545324,
    0.005810461597883592,
    0.009273570147303702,
  ],
};

Deno.test("the λ spaces draw exactly what they drew before, and record trials as before", () => {
  const cases: [unknown, number[], number[]?][] = [
    [{ kind: "logUniform", min: 1e-5, max: 1e-1, count: 12, seed: 1 }, BEFORE.coarse],
    [{ kind: "logUniform", min: 1e-4, max: 1e-1, count: 5, seed: 3 }, BEFORE.seed3],
    [{ kind: "logUniform", min: 1e-5, max: 1e-1, count: 4 }, BEFORE.seed0],
    [{ kind: "grid", min: 1e-4, max: 1e-1, count: 8 }, BEFORE.grid],
    [{ kind: "grid", min: 0, max: 0.1, count: 5, scale: "linear" }, BEFORE.linear],
    [{ kind: "list", values: [0, 0.001, 0.1] }, [0, 0.001, 0.1]],
  ];
  for (const [space, want] of cases) {
    const cfg = oneStage(space);
    assert.deepEqual(sampleSpace(cfg.search!.stages[0].space), want, JSON.stringify(space));
    const plan = planStage(cfg, cfg.search!.stages[0], []);
    assert.deepEqual(plan.map((p) => p.lambda), want);
    // recorded as before: no hyper, and the λ grid's spacing filled in as the schema did
    assert.ok(plan.every((p) => p.hyper === undefined));
  }
  assert.equal((oneStage(cases[3][0]).search!.stages[0].space as { scale: string }).scale, "log");
  const around = (mode: string, width: number, top: number, count: number, seed: number) =>
    ({ kind: "around", stage: "c", top, mode, width, count, seed }) as SpaceConfig;
  assert.deepEqual(
    sampleSpace(around("range", 0.25, 3, 12, 2), [4.74e-3, 3.43e-4, 7.63e-4]),
    BEFORE.range,
  );
  assert.deepEqual(sampleSpace(around("perturb", 0.5, 2, 3, 4), [1e-3, 1e-2]), BEFORE.perturb);
  // the same λs written as spaces over dims
  assert.deepEqual(
    points(oneStage({
      kind: "random",
      count: 12,
      seed: 1,
      dims: { lambda: { logUniform: [1e-5, 1e-1] } },
    })).map((p) => p.lambda),
    BEFORE.coarse,
  );
  assert.deepEqual(
    points(oneStage({ kind: "grid", dims: { lambda: { grid: [1e-4, 1e-1], count: 8 } } })),
    BEFORE.grid.map((lambda) => ({ lambda })),
  );
});

Deno.test("a grid over two dimensions is their product, the first dimension varying slowest", () => {
  const cfg = oneStage({
    kind: "grid",
    dims: {
      etaMax: { list: [0.02, 0.05, 0.1] },
      lambda: { grid: [1e-3, 1e-1], count: 3 },
    },
  });
  const got = points(cfg);
  const lambdas = [1e-3, 0.01, 0.1].map((x) =>
    got.find((p) => Math.abs(p.lambda! / x - 1) < 1e-12)!.lambda!
  );
  const want: Hyper[] = [];
  // dims run in SPACE_DIMS order (lambda before etaMax), whatever order the config names them in
  for (const lambda of lambdas) {
    for (const etaMax of [0.02, 0.05, 0.1]) want.push({ lambda, etaMax });
  }
  assert.deepEqual(got, want);
  const plan = planStage(cfg, cfg.search!.stages[0], []);
  assert.deepEqual(plan.map((p) => p.id), want.map((_, i) => `a/${i}`));
  assert.ok(plan.every((p) => p.lambda === p.hyper!.lambda));
});

Deno.test("random draws are reproducible from the seed and within their bounds", () => {
  const space = (seed: number) => ({
    kind: "random",
    count: 200,
    seed,
    dims: {
      lambda: { logUniform: [1e-5, 1e-1] },
      etaMax: { uniform: [0.02, 0.2] },
      sigma: { list: [1e-3, 1e-2, 1e-1] },
      dropout: { grid: [0, 0.5], count: 3, scale: "linear" },
    },
  });
  const model = { init: "gaussian" };
  const a = points(oneStage(space(7), { model })), b = points(oneStage(space(7), { model }));
  assert.deepEqual(a, b);
  assert.notDeepEqual(points(oneStage(space(8), { model })), a);
  for (const p of a) {
    assert.deepEqual(Object.keys(p), ["lambda", "etaMax", "sigma", "dropout"]);
    assert.ok(p.lambda! >= 1e-5 && p.lambda! < 1e-1, `λ ${p.lambda}`);
    assert.ok(p.etaMax! >= 0.02 && p.etaMax! < 0.2, `etaMax ${p.etaMax}`);
    assert.ok([1e-3, 1e-2, 1e-1].includes(p.sigma!));
    assert.ok([0, 0.25, 0.5].includes(p.dropout!));
  }
  // log-uniform: about as many draws per decade; every list value drawn
  const decades = [0, 0, 0, 0];
  for (const p of a) decades[Math.floor(Math.log10(p.lambda!) + 5)]++;
  assert.ok(decades.every((n) => n > 25), `draws per decade ${decades}`);
  assert.equal(new Set(a.map((p) => p.sigma)).size, 3);
  assert.equal(new Set(a.map((p) => p.dropout)).size, 3);
});

Deno.test("around searches every dimension: λ and η in log space, dropout on its own scale", () => {
  const centres: Hyper[] = [
    { lambda: 1e-3, etaMax: 0.05, dropout: 0.2 },
    { lambda: 1e-2, etaMax: 0.1, dropout: 0.3 },
  ];
  // stage f searches around stage c, in λ, η_max and dropout
  const cfgOf = (mode: string) =>
    sweepConfig("/tmp/unused", {
      stages: [
        {
          name: "c",
          space: {
            kind: "random",
            count: 4,
            dims: { lambda: { logUniform: [1e-4, 1e-1] }, etaMax: { list: [0.05, 0.1] } },
          },
        },
        {
          name: "f",
          space: {
            kind: "around",
            stage: "c",
            mode,
            width: 0.5,
            count: 50,
            seed: 3,
            dims: { lambda: {}, etaMax: { width: 0.1 }, dropout: { width: 0.1 } },
          },
        },
      ],
    });
  const space = (mode: string) => cfgOf(mode).search!.stages[1].space;
  const range = samplePoints(space("range"), centres);
  assert.equal(range.length, 50);
  for (const p of range) {
    assert.ok(p.lambda! >= 1e-3 * 10 ** -0.5 && p.lambda! <= 1e-2 * 10 ** 0.5, `λ ${p.lambda}`);
    assert.ok(p.etaMax! >= 0.05 * 10 ** -0.1 && p.etaMax! <= 0.1 * 10 ** 0.1, `η ${p.etaMax}`);
    assert.ok(p.dropout! >= 0.1 - 1e-12 && p.dropout! <= 0.4 + 1e-12, `dropout ${p.dropout}`);
  }
  // spread over the whole widened span, not only between the centres
  assert.ok(range.some((p) => p.lambda! < 1e-3) && range.some((p) => p.lambda! > 1e-2));
  const perturb = samplePoints(space("perturb"), centres);
  assert.equal(perturb.length, 100); // count per centre
  perturb.forEach((p, i) => {
    const c = centres[Math.floor(i / 50)];
    assert.ok(
      Math.abs(Math.log10(p.lambda! / c.lambda!)) <= 0.5,
      `λ ${p.lambda} around ${c.lambda}`,
    );
    assert.ok(Math.abs(Math.log10(p.etaMax! / c.etaMax!)) <= 0.1);
    assert.ok(Math.abs(p.dropout! - c.dropout!) <= 0.1 + 1e-12);
  });
  // the same seed, the same points; clamped into dropout's bounds
  assert.deepEqual(samplePoints(space("perturb"), centres), perturb);
  const low = samplePoints(space("perturb"), [{ lambda: 1e-3, etaMax: 0.05, dropout: 0 }]);
  assert.ok(low.every((p) => p.dropout! >= 0) && low.some((p) => p.dropout === 0));
  // the centres are the top trials of c as points: dropout, which c did not search, is what c
  // trained with (0); the planned trials carry all three values
  const cfg = cfgOf("range");
  const top = [
    { id: "c/2", lambda: 1e-3, hyper: { lambda: 1e-3, etaMax: 0.1 } },
    { id: "c/0", lambda: 1e-2, hyper: { lambda: 1e-2, etaMax: 0.05 } },
  ].map((t) => ({ ...t, bestValAccuracy: 0.5, finalValAccuracy: 0.5, finalValCost: 1 }));
  const got = centrePoints(cfg, cfg.search!.stages[1], top);
  assert.deepEqual(got, [
    { lambda: 1e-3, etaMax: 0.1, dropout: 0 },
    { lambda: 1e-2, etaMax: 0.05, dropout: 0 },
  ]);
  const plan = planStage(cfg, cfg.search!.stages[1], got);
  assert.equal(plan.length, 50);
  assert.ok(plan.every((p) => Object.keys(p.hyper!).join() === "lambda,etaMax,dropout"));
  assert.ok(plan.every((p) => p.hyper!.dropout! <= 0.1 && p.lambda === p.hyper!.lambda));
});

Deno.test("every dimension is per model: a stage's trials share populations, cut at the population size", () => {
  assert.deepEqual([...PER_MODEL_DIMS].sort(), [
    "dropout",
    "eta",
    "etaMax",
    "etaMin",
    "lambda",
    "seed",
    "sigma",
  ]);
  const t = (lambda: number, etaMax: number, seed = 0, dropout?: number) => ({
    hyper: { lambda, etaMax, ...(dropout === undefined ? {} : { dropout }) },
    seed,
    name: `${lambda}/${etaMax}/${seed}/${dropout}`,
  });
  assert.equal(populationKey(t(1e-3, 0.1)), populationKey(t(1e-2, 0.05, 7)));
  assert.equal(populationKey(t(1e-3, 0.1, 0, 0.2)), populationKey(t(1e-3, 0.1, 0, 0.3)));
  const trials = [t(1, 0.1), t(2, 0.05, 0, 0.2), t(3, 0.1, 1), t(4, 0.05), t(5, 0.3), t(6, 0.2)];
  // in trial order, cut at the population size
  assert.deepEqual(
    groupPopulations(trials, 4).map((g) => g.map((x) => x.hyper.lambda)),
    [[1, 2, 3, 4], [5, 6]],
  );
  assert.deepEqual(groupPopulations(trials, 2), groupPopulations([...trials], 2));
});

Deno.test("a trial's η, σ and dropout reach the population it trains in", () => {
  const cfg = oneStage({ kind: "list", values: [0] }, {
    model: { hidden: [16, 8], init: "gaussian" },
  });
  const spec = populationSpec(
    withHyper(cfg, { lambda: 0.5, etaMax: 0.07, etaMin: 1e-4, sigma: 0.02, dropout: 0.3 }),
    9000,
    [0.5],
    [5],
  );
  assert.deepEqual(spec.schedule, { ...cyclic, etaMax: 0.07, etaMin: 1e-4 });
  assert.equal(spec.sigma, 0.02);
  assert.deepEqual(spec.net?.dropout, [0.3, 0.3]);
  const constant = oneStage({ kind: "list", values: [0] }, {
    schedule: { kind: "stepDecay", eta: 0.1, decay: 0.5, every: 1, epochs: 2 },
  });
  const s2 = populationSpec(withHyper(constant, { eta: 0.03 }), 9000, [0], [5]);
  assert.deepEqual(s2.schedule, { kind: "stepDecay", eta: 0.03, decay: 0.5, every: 1, epochs: 2 });
  // nothing to apply: the very same config
  assert.equal(withHyper(cfg, {}), cfg);
});

/** The one-line message `f` throws (a UserError). */
function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${(e as Error).stack}`);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    return e.message;
  }
  throw new Error("no error");
}

Deno.test("bad spaces get one line naming the key", () => {
  const at = "config test.json: search.stages.0.space";
  const bad = (space: unknown, re: RegExp, more: Parameters<typeof sweepConfig>[2] = {}) =>
    assert.match(message(() => oneStage(space, more)), re);
  const q = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const random = (dims: unknown) => ({ kind: "random", count: 4, dims });
  bad(
    random({}),
    new RegExp(`^${q(at)}\\.dims names no dimension: give one or more of lambda, etaMax`),
  );
  bad(
    random({ lamda: { list: [1] } }),
    /unknown key "search\.stages\.0\.space\.dims\.lamda" \(did you mean "lambda"\?\); allowed here: lambda, etaMax, etaMin, eta, sigma, dropout$/,
  );
  bad(
    random({ etaMax: { list: [0.1] } }),
    new RegExp(`^${q(at)}\\.dims\\.etaMax: a constant schedule has no etaMax \\(it has eta\\)$`),
    { schedule: { kind: "constant", eta: 0.1, epochs: 1 } },
  );
  bad(
    random({ eta: { list: [0.1] } }),
    new RegExp(
      `^${q(at)}\\.dims\\.eta: a cyclic schedule has no eta \\(it has etaMax and etaMin\\)$`,
    ),
  );
  bad(
    random({ lambda: { logUniform: [1e-1, 1e-3] } }),
    new RegExp(
      `^${
        q(at)
      }\\.dims\\.lambda\\.logUniform is an empty or inverted range \\[0\\.1, 0\\.001\\]: min must be below max$`,
    ),
  );
  bad(
    random({ etaMax: { uniform: [0.2, 0.1] } }),
    /space\.dims\.etaMax\.uniform is an empty or inverted range/,
  );
  bad(
    random({ lambda: { logUniform: [0, 1e-1] } }),
    new RegExp(`^${q(at)}\\.dims\\.lambda\\.logUniform: a log scale needs min > 0, got 0`),
  );
  bad(
    { kind: "grid", dims: { lambda: { grid: [0, 0.1], count: 3 } } },
    /space\.dims\.lambda\.grid: a log scale needs min > 0, got 0 \(or "scale": "linear"\)$/,
  );
  bad(
    random({ dropout: { list: [0.1, 1] } }),
    new RegExp(`^${q(at)}\\.dims\\.dropout\\.list\\.1 must be in \\[0, 1\\) \\(dropout\\), got 1$`),
  );
  bad(
    random({ dropout: { uniform: [-0.1, 0.5] } }),
    /space\.dims\.dropout\.uniform\.0 must be in \[0, 1\)/,
  );
  bad(
    random({ etaMax: { list: [-0.1] } }),
    /space\.dims\.etaMax\.list\.0 must be > 0 \(etaMax\), got -0\.1$/,
  );
  bad(
    {
      kind: "grid",
      dims: { lambda: { grid: [1e-5, 1], count: 100 }, etaMax: { grid: [1e-3, 1e-1], count: 50 } },
    },
    new RegExp(`^${q(at)} is a grid of 5000 points \\(100 × 50\\), more than 4096`),
  );
  bad(
    { kind: "grid", dims: { lambda: { logUniform: [1e-5, 1] } } },
    /space\.dims\.lambda\.logUniform: a grid takes list and grid dimensions; for random draws use "kind": "random"$/,
  );
  bad(
    { kind: "grid", min: 1e-3, dims: { lambda: { list: [1] } } },
    new RegExp(`^${q(at)} gives both dims and min`),
  );
  bad({ kind: "grid", min: 1e-3, max: 1e-1 }, new RegExp(`^${q(at)}\\.count is missing`));
  bad(
    random({ lambda: { list: [1e-3], logUniform: [1e-3, 1] } }),
    /space\.dims\.lambda needs exactly one of logUniform, uniform, list, grid \(got logUniform and list\)$/,
  );
  bad(random({ lambda: {} }), /space\.dims\.lambda needs exactly one of .* \(got none\)$/);
  bad(random({ lambda: { grid: [1e-3, 1] } }), /space\.dims\.lambda\.grid needs a count$/);
  bad(random({ lambda: { list: [1], count: 2 } }), /space\.dims\.lambda\.count belongs to a grid/);
  bad(
    random({ sigma: { list: [0.1] } }),
    /space\.dims\.sigma: model\.init is "xavier", which does not use sigma: set model\.init to "gaussian"$/,
  );
  bad(
    random({ dropout: { list: [0.1] } }),
    /space\.dims\.dropout: the network has no hidden layer/,
    {
      model: { hidden: [] },
    },
  );
  bad(
    random({ etaMax: { list: [1e-6, 0.1] } }),
    /space\.dims\.etaMax goes down to 0\.000001, below etaMin 0\.00001: a cyclic schedule needs etaMin ≤ etaMax$/,
  );
  assert.match(
    message(() => oneStage({ kind: "random", count: 0, dims: { lambda: { list: [1] } } })),
    /search\.stages\.0\.space\.count must be >= 1, got 0$/,
  );
  // around: its dimensions, a linear one's width, a dimension the stage around lacks
  const stages = (second: unknown, first: unknown = random({ lambda: { list: [1e-3] } })) =>
    sweepConfig("/tmp/unused", {
      stages: [{ name: "c", space: first }, { name: "f", space: second }],
    });
  const around = (dims?: unknown) => ({
    kind: "around",
    stage: "c",
    count: 2,
    ...(dims ? { dims } : {}),
  });
  assert.match(
    message(() => stages(around({ dropout: {} }))),
    /search\.stages\.1\.space\.dims\.dropout\.width is missing: dropout is searched around on a linear scale/,
  );
  assert.match(
    message(() => stages(around({}))),
    /search\.stages\.1\.space\.dims names no dimension/,
  );
  assert.match(
    message(() => stages(around(), random({ eta: { list: [0.1] } }))),
    /search\.stages\.0\.space\.dims\.eta: a cyclic schedule has no eta/,
  );
  assert.match(
    message(() => stages(around({ bogus: {} }))),
    /unknown key "search\.stages\.1\.space\.dims\.bogus"/,
  );
  // the final training must be able to take the last stage's best value
  assert.match(
    message(() =>
      sweepConfig("/tmp/unused", {
        stages: [{ name: "a", space: random({ etaMax: { list: [0.1] } }) }],
        final: { train: { schedule: { kind: "constant", eta: 0.1, epochs: 1 } } },
      })
    ),
    /^config test\.json: search\.final\.train\.schedule: the last stage searches etaMax, so the final training takes its best value, but a constant schedule has no etaMax/,
  );
});

/** Lines of a sweep's log. */
function logger(): { lines: string[]; log: (l: string) => void } {
  const lines: string[] = [];
  return { lines, log: (l) => lines.push(l) };
}

Deno.test("a tiny sweep over λ × η_max: trials carry both, train as one population with per-model η, the final training takes the best η", async () => {
  const out = await Deno.makeTempDir({ prefix: "sweep_space_test_" });
  try {
    const search = {
      stages: [{
        name: "g",
        space: {
          kind: "grid",
          dims: { lambda: { list: [1e-3, 1e-2] }, etaMax: { list: [0.01, 0.05] } },
        },
        top: 4,
      }],
      population: 8,
      final: {},
    };
    const cfg = sweepConfig(out, search);
    const { lines, log } = logger();
    const summary = (await runSweep(cfg, { log, report: false }))!;
    const dir = join(out, "s");
    // one population: λ and η_max are both per model
    const populations = lines.filter((l) => l.includes("models at once"));
    assert.deepEqual(populations, ["g: training 4 models at once (trials 0, 1, 2, 3)"]);
    // every trial records both values, and trained with its η_max (the peak of the cycle)
    const trials = [...readTrials(dir).values()].sort((a, b) => a.index - b.index);
    assert.deepEqual(trials.map((t) => t.hyper), [
      { lambda: 1e-3, etaMax: 0.01 },
      { lambda: 1e-3, etaMax: 0.05 },
      { lambda: 1e-2, etaMax: 0.01 },
      { lambda: 1e-2, etaMax: 0.05 },
    ]);
    for (const t of trials) {
      assert.equal(t.lambda, t.hyper!.lambda);
      // the point at step 20 reports the η of the step before the peak of its own triangle
      const peak = t.curves.find((p) => p.step === 20)!;
      const want = learningRate({ ...cyclic, etaMax: t.hyper!.etaMax! } as Schedule, 19, 90);
      assert.ok(
        Math.abs(peak.eta - want) < 1e-12,
        `${t.id}: η ${peak.eta} at step 20, want ${want}`,
      );
      assert.deepEqual(parseRecord(TRIAL_FORMAT, JSON.parse(JSON.stringify(t)), "t"), t);
    }
    // the η groups really trained differently; the λs within a group too
    assert.notEqual(trials[0].final!.val.loss, trials[1].final!.val.loss);
    assert.notEqual(trials[0].final!.val.loss, trials[2].final!.val.loss);
    // the top table (console, sweep.json, report) shows both dimensions
    const top = summary.stages[0].top;
    assert.equal(top.length, 4);
    for (const e of top) assert.deepEqual(e.hyper, trials.find((t) => t.id === e.id)!.hyper);
    const table = lines.find((l) => l.startsWith("top 4 of stage g:"))!;
    assert.equal(table, formatTop("g", top));
    assert.match(table, /1\. λ \d\.\d{3}e-\d {2}η_max \d\.\d{3}e-\d {2}val acc final/);
    const saved = JSON.parse(Deno.readTextFileSync(join(dir, "sweep.json"))) as SweepSummary;
    assert.deepEqual(saved.stages[0].top, top);
    const html = topTables(summary.stages, 3);
    assert.match(html, /η_max/);
    assert.ok(html.includes(top[0].id));
    // trials.csv has a column per dimension
    const csv = trialsCsv(readSweepTrials(dir)).trim().split("\n");
    assert.equal(csv[0].split(",").slice(0, 6).join(","), "id,stage,index,lambda,seed,etaMax");
    assert.equal(Deno.readTextFileSync(join(dir, "trials.csv")).trim().split("\n")[0], csv[0]);
    for (const t of trials) {
      const row = csv.find((r) => r.startsWith(`${t.id},`))!.split(",");
      assert.deepEqual(row.slice(3, 6).map(Number), [t.lambda, t.seed, t.hyper!.etaMax]);
    }
    // the final training took the best trial's λ and η_max
    const best = top[0];
    assert.deepEqual(summary.final!.hyper, best.hyper);
    assert.equal(summary.final!.lambda, best.lambda);
    const final = parseRecord(
      RUN_FORMAT,
      JSON.parse(Deno.readTextFileSync(join(dir, "final", "metrics.json"))),
      "final",
    );
    const finalCfg = final.config as Config;
    assert.equal(final.lambda, best.lambda);
    assert.equal(
      finalCfg.train.schedule.kind === "cyclic" && finalCfg.train.schedule.etaMax,
      best.hyper!.etaMax,
    );
    assert.ok(
      lines.some((l) =>
        l.startsWith(`final training with the best λ ${best.lambda.toExponential(3)}  η_max`)
      ),
    );
    // running it again finds everything done, the final training included
    const again = logger();
    await runSweep(cfg, { log: again.log, report: false });
    assert.ok(again.lines.some((l) => /4 trials, 4 already done/.test(l)));
    assert.ok(again.lines.some((l) => /^final training with .* already done$/.test(l)));
    // a later sweep around this one's top 2 searches both dimensions, from their values
    const fine = (schedule?: Record<string, unknown>) =>
      parseConfig({
        ...JSON.parse(Deno.readTextFileSync(join(dir, SWEEP_CONFIG))),
        name: "fine",
        ...(schedule ? { train: { ...cfg.train, schedule } } : {}),
        search: {
          stages: [{
            name: "f",
            space: { kind: "around", sweep: "s", stage: "g", top: 2, mode: "perturb", count: 3 },
          }],
        },
      }, "fine.json");
    const fcfg = fine();
    const centres = centrePoints(fcfg, fcfg.search!.stages[0], top.slice(0, 2));
    assert.deepEqual(centres, top.slice(0, 2).map((e) => e.hyper));
    const around = planStage(fcfg, fcfg.search!.stages[0], centres);
    assert.equal(around.length, 6);
    assert.ok(around.every((p) => Object.keys(p.hyper!).join() === "lambda,etaMax"));
    // …and one whose schedule has no η_max is refused before any work
    await assert.rejects(
      () => runSweep(fine({ kind: "constant", eta: 0.05, epochs: 1 }), { log: () => {} }),
      (e: Error) =>
        e instanceof UserError &&
        /^search\.stages\.0\.space searches around stage g, which searched etaMax: a constant schedule has no etaMax/
          .test(e.message),
    );
    assert.ok(!Deno.readDirSync(out).some((e) => e.name === "fine"));
    // a resumed sweep whose space changed is refused in one line, before any work
    const changed = sweepConfig(out, {
      ...search,
      stages: [{
        ...search.stages[0],
        space: {
          ...search.stages[0].space,
          dims: { lambda: { list: [1e-3, 1e-2] }, etaMax: { list: [0.01, 0.1] } },
        },
      }],
    });
    await assert.rejects(
      () => runSweep(changed, { log: () => {} }),
      (e: Error) =>
        e instanceof UserError && !e.message.includes("\n") &&
        /holds a sweep of a different config: pass --overwrite/.test(e.message),
    );
    // …and so is a recorded trial whose values are not the planned ones
    const file = join(dir, "trials.jsonl");
    const text = Deno.readTextFileSync(file);
    const tampered = text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as TrialRecord);
    tampered.find((t) => t.id === "g/1")!.hyper!.etaMax = 0.07;
    Deno.writeTextFileSync(file, tampered.map((t) => JSON.stringify(t)).join("\n") + "\n");
    await assert.rejects(
      () => runSweep(cfg, { log: () => {} }),
      (e: Error) =>
        e instanceof UserError && !e.message.includes("\n") &&
        /^trial g\/1 of \S+ was trained with λ 1\.000e-3 {2}η_max 7\.000e-2 \(seed 5\), but the search space now gives λ 1\.000e-3 {2}η_max 5\.000e-2 \(seed 5\): the space changed/
          .test(e.message),
    );
    Deno.writeTextFileSync(file, text);
    assert.ok(Deno.statSync(join(dir, SWEEP_CONFIG)).isFile);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a sweep of a λ space records its trials as before: λ alone, no hyper", async () => {
  const out = await Deno.makeTempDir({ prefix: "sweep_space_test_" });
  try {
    const cfg = sweepConfig(out, {
      stages: [{
        name: "a",
        space: { kind: "logUniform", min: 1e-4, max: 1e-1, count: 3, seed: 3 },
      }],
      population: 2,
    });
    const { lines, log } = logger();
    const summary = (await runSweep(cfg, { log, report: false }))!;
    const trials = [...readTrials(join(out, "s")).values()].sort((a, b) => a.index - b.index);
    assert.deepEqual(trials.map((t) => t.lambda), BEFORE.seed3.slice(0, 3));
    assert.ok(trials.every((t) => !("hyper" in t)), "no hyper in a λ space's records");
    assert.ok(summary.stages[0].top.every((e) => !("hyper" in e)));
    // populations as before: in trial order, cut at search.population, nothing shared to name
    assert.deepEqual(lines.filter((l) => l.includes("models at once")), [
      "a: training 2 models at once (trials 0, 1)",
      "a: training 1 models at once (trials 2)",
    ]);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
