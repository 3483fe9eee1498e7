/** The config schema: presets parse; every kind of bad input gets one line naming the key. */

import assert from "node:assert/strict";
import { loadConfig, parseConfig } from "../src/config.ts";
import { clipMessage, MAX_MESSAGE_CHARS } from "../src/cli/main.ts";
import { UserError } from "../src/errors.ts";
import { cfgWith } from "./small_run.ts";

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
  // a seed past the safe integers names the seed's own bound, as one just past it does
  for (const seed of [1e20, 2 ** 32]) {
    assert.match(
      message(() => parseConfig({ ...base, seed }, "x.json")),
      /^config x\.json: seed must be <= 4294967295, got /,
    );
  }
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

/** The UserError `loadConfig(path)` rejects with (one line), or a failure. */
async function loadMessage(path: string): Promise<string> {
  try {
    await loadConfig(path);
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    assert.ok(!e.message.includes("\n"), "one line");
    return e.message;
  }
  throw new Error(`loadConfig(${path}) did not fail`);
}

Deno.test("a config path that is not a regular file is refused without reading it", async () => {
  // /dev/zero would never end; a FIFO would block until someone writes
  assert.match(await loadMessage("/dev/zero"), /\/dev\/zero is a character device, not a regular/);
  const dir = await Deno.makeTempDir();
  try {
    assert.match(await loadMessage(dir), /is a directory, not a regular file: give the path/);
    const fifo = `${dir}/pipe.json`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.equal(made.code, 0);
    assert.match(await loadMessage(fifo), /pipe\.json is a named pipe, not a regular file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a config file over 1 MiB is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const big = `${dir}/big.json`;
    await Deno.writeTextFile(big, `{"name": "${"x".repeat(2 * 1024 * 1024)}"}`);
    const m = await loadMessage(big);
    assert.match(m, /big\.json is 2097164 bytes, more than the 1 MiB a config may have/);
    assert.ok(m.length < 300, m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("JSON nested deeper than 64 levels is refused, also when it is not even valid", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const deep = `${dir}/deep.json`;
    await Deno.writeTextFile(deep, "[".repeat(5000));
    assert.match(await loadMessage(deep), /deep\.json nests arrays and objects deeper than 64/);
    await Deno.writeTextFile(deep, `{"a": ${"[".repeat(5000)}${"]".repeat(5000)}}`);
    assert.match(await loadMessage(deep), /deeper than 64 levels/);
    // brackets inside strings do not count, and 64 levels are still read (then judged by the schema)
    await Deno.writeTextFile(
      deep,
      JSON.stringify({ ...base, name: "a" }).slice(0, -1) +
        `, "x": ${"[".repeat(63)}"[[[[{{{{\\"["${"]".repeat(63)}}`,
    );
    assert.match(await loadMessage(deep), /unknown key "x"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a top level that is not an object is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const [text, got] of [["[1, 2]", "an array"], ["null", "null"], ['"cfg"', "a string"]]) {
      await Deno.writeTextFile(`${dir}/top.json`, text);
      assert.match(
        await loadMessage(`${dir}/top.json`),
        new RegExp(`top\\.json must be a JSON object \\(\\{ … \\}\\), got ${got}$`),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a key or value of 3 MB is cut short in the one-line error", async () => {
  const huge = "x".repeat(3_000_000);
  const short = (m: string) => {
    assert.ok(m.length < 500, `${m.length} characters: ${m.slice(0, 200)}…`);
    assert.match(m, /… \(\d+ characters\)/);
  };
  const key = message(() => parseConfig({ ...base, [huge]: 1 }, "x.json"));
  short(key);
  assert.match(key, /unknown key "xxxx+… \(3000000 characters\)"; allowed here: name, seed/);
  const value = message(() =>
    parseConfig({ ...base, train: { ...base.train, lambda: huge } }, "x.json")
  );
  short(value);
  assert.match(value, /train\.lambda must be a number, got "xxxx+… \(3000002 characters\)/);
  short(message(() => parseConfig(base, "x.json", { name: `${huge}/` })));
  short(
    message(() => parseConfig({ ...base, train: { ...base.train, schedule: huge } }, "x.json")),
  );
  const stage = message(() =>
    parseConfig({
      ...base,
      data: { train: [1], val: { batch: 2 } },
      search: { stages: [{ name: "f", space: { kind: "around", stage: huge, count: 2 } }] },
    }, "x.json")
  );
  short(stage);
  assert.match(stage, /space\.stage "xxx+… \(3000002 characters\) is not an earlier stage/);
  // and from a file (under the size limit)
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/k.json`,
      JSON.stringify({ ...base, model: { ["y".repeat(900_000)]: [1] } }),
    );
    const m = await loadMessage(`${dir}/k.json`);
    short(m);
    assert.match(m, /unknown key "model\.yyy+… \(900006 characters\)"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the CLI prints at most 400 characters of any error, keeping its start and end", () => {
  const long = `start ${"z".repeat(10_000)} end: fix it like this`;
  const m = clipMessage(long);
  assert.ok(m.length <= MAX_MESSAGE_CHARS, `${m.length}`);
  assert.ok(m.startsWith("start z") && m.endsWith("end: fix it like this") && m.includes(" … "));
  assert.equal(clipMessage("short"), "short");
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
