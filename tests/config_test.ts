/** The config schema: presets parse; every kind of bad input gets one line naming the key. */

import assert from "node:assert/strict";
import { loadConfig, parseConfig } from "../src/config.ts";
import { UserError } from "../src/errors.ts";

const base = {
  data: { train: [1], val: { batch: 2 } },
  train: {
    batchSize: 100,
    lambda: 0.01,
    schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 500, cycles: 1 },
  },
};

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    assert.ok(!e.message.includes("\n"), "one line");
    return e.message;
  }
  throw new Error("no error");
}

Deno.test("every preset in experiments/ is a valid config", async () => {
  let n = 0;
  for await (const f of Deno.readDir("experiments")) {
    if (!f.name.endsWith(".json")) continue;
    const cfg = await loadConfig(`experiments/${f.name}`);
    assert.equal(typeof cfg.name, "string");
    n++;
  }
  assert.ok(n >= 3);
});

Deno.test("defaults are filled in and flags override the file", () => {
  const cfg = parseConfig(base, "x.json", { lambda: 0.5, seed: 7, name: "n" }, "x");
  assert.equal(cfg.train.lambda, 0.5);
  assert.equal(cfg.seed, 7);
  assert.equal(cfg.name, "n");
  assert.deepEqual(cfg.model.hidden, [50]);
  assert.equal(cfg.data.test, true);
  assert.equal(parseConfig(base, "x.json", {}, "fallback").name, "fallback");
});

Deno.test("misspelt keys name the key, suggest the right one and list the allowed ones", () => {
  const m = message(() => parseConfig({ ...base, train: { ...base.train, lamda: 1 } }, "x.json"));
  assert.match(m, /unknown key "train.lamda" \(did you mean "lambda"\?\); allowed here: .*lambda/);
  const m2 = message(() =>
    parseConfig({
      ...base,
      train: { ...base.train, schedule: { ...base.train.schedule, stepsize: 5 } },
    }, "x.json")
  );
  assert.match(m2, /train\.schedule\.stepsize.*did you mean "stepSize"/);
  assert.match(message(() => parseConfig({ ...base, bogus: 1 }, "x.json")), /unknown key "bogus"/);
});

Deno.test("missing, wrongly typed and out-of-range values are named with their bounds", () => {
  assert.match(message(() => parseConfig({ data: base.data }, "x.json")), /train is missing/);
  assert.match(
    message(() => parseConfig({ ...base, model: { hidden: [50, 0] } }, "x.json")),
    /model\.hidden\.1 must be >= 1, got 0/,
  );
  assert.match(
    message(() => parseConfig({ ...base, model: { hidden: [-3] } }, "x.json")),
    /model\.hidden\.0 must be >= 1/,
  );
  assert.match(
    message(() => parseConfig({ ...base, train: { ...base.train, batchSize: 2.5 } }, "x.json")),
    /train\.batchSize must be an integer, got 2\.5/,
  );
  assert.match(
    message(() => parseConfig(base, "x.json", { lambda: -1 })),
    /train\.lambda \(from --lambda\) must be >= 0/,
  );
  assert.match(
    message(() => parseConfig({ ...base, model: { init: "glorot" } }, "x.json")),
    /model\.init must be one of "gaussian", "xavier", "he", got "glorot"/,
  );
  assert.match(
    message(() =>
      parseConfig({ ...base, train: { ...base.train, schedule: { kind: "cosine" } } }, "x.json")
    ),
    /train\.schedule\.kind must be one of "cyclic", "constant", "stepDecay"/,
  );
  assert.match(
    message(() =>
      parseConfig({
        ...base,
        train: { ...base.train, schedule: { ...base.train.schedule, etaMin: 1, etaMax: 0.1 } },
      }, "x.json")
    ),
    /etaMin \(1\) is larger than etaMax/,
  );
  assert.match(
    message(() => parseConfig({ ...base, data: { train: [1, 6] } }, "x.json")),
    /data\.train\.1 must be <= 5/,
  );
  assert.match(
    message(() => parseConfig({ ...base, data: { train: [1, 1] } }, "x.json")),
    /lists a batch twice/,
  );
  assert.match(
    message(() => parseConfig({ ...base, data: { train: [1, 2], val: { batch: 2 } } }, "x.json")),
    /also a training batch/,
  );
  assert.match(
    message(() => parseConfig({ ...base, data: { train: [1], val: {} } }, "x.json")),
    /exactly one of "batch"/,
  );
  assert.match(
    message(() => parseConfig({ ...base, name: "../x" }, "x.json")),
    /name has an invalid format/,
  );
  assert.match(message(() => parseConfig([1, 2], "x.json")), /must be a JSON object/);
});

Deno.test("unreadable and malformed files get one line", async () => {
  const dir = await Deno.makeTempDir();
  const bad = `${dir}/bad.json`;
  await Deno.writeTextFile(bad, '{ "data": { "train": [1] }, ');
  await assert.rejects(
    () => loadConfig(bad),
    (e: Error) => e instanceof UserError && /is not valid JSON/.test(e.message),
  );
  await assert.rejects(
    () => loadConfig(`${dir}/none.json`),
    (e: Error) => /not found/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});
