/**
 * The command-line tools on bad input: one `error:` line on stderr, a non-zero exit, no stack
 * trace, and nothing written.
 */

import assert from "node:assert/strict";
import { resolveDataDir } from "../src/data/cifar10.ts";

async function run(script: string, args: string[], cwd?: string, env?: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${Deno.cwd()}/src/cli/${script}.ts`, ...args],
    cwd,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function assertOneLineError(r: { code: number; stderr: string }, pattern: RegExp) {
  assert.notEqual(r.code, 0);
  const lines = r.stderr.trim().split("\n").filter((l) => !/^(Download|Warning)/.test(l));
  assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], pattern);
}

const good = {
  data: { train: [1], val: { batch: 2 } },
  train: { schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 5, cycles: 1 } },
};

Deno.test("train: bad configs, data and flags give one line and write nothing", async () => {
  const dir = await Deno.makeTempDir();
  const write = (name: string, v: unknown) =>
    Deno.writeTextFile(`${dir}/${name}`, typeof v === "string" ? v : JSON.stringify(v));
  await write("malformed.json", "{ nope");
  await write("typo.json", { ...good, trian: {} });
  await write("hidden.json", { ...good, model: { hidden: [0] } });
  await write("good.json", good);
  await write("bigbatch.json", { ...good, train: { ...good.train, batchSize: 20000 } });
  const cases: [string[], RegExp][] = [
    [[], /--config FILE is required/],
    [["--config", "missing.json"], /config missing.json not found/],
    [["--config", "malformed.json"], /not valid JSON/],
    [["--config", "typo.json"], /unknown key "trian" \(did you mean "train"\?\)/],
    [["--config", "hidden.json"], /model\.hidden\.0 must be >= 1/],
    [["--config", "good.json", "--data", `${dir}/nowhere`], /nowhere/],
    [["--config", "good.json", "--lambda", "abc"], /--lambda must be a number/],
    [["--config", "good.json", "--bogus"], /unknown flag --bogus/],
    [
      ["--config", "bigbatch.json", "--data", resolveDataDir()],
      /batchSize 20000 is larger than the training set \(10000/,
    ],
  ];
  for (const [args, pattern] of cases) {
    assertOneLineError(await run("train", args, dir), pattern);
  }
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n === "runs"), []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("eval and gradcheck: bad input gives one line", async () => {
  assertOneLineError(await run("eval", ["--run", "/nonexistent/run"]), /checkpoint .* not found/);
  assertOneLineError(await run("eval", []), /give --run DIR/);
  assertOneLineError(await run("gradcheck", ["--samples", "0"]), /--samples must be an integer/);
});

Deno.test("no WebGPU adapter: one line saying how to get one", async () => {
  // a backend this platform does not have leaves no adapter
  const r = await run("gradcheck", [], undefined, { DENO_WEBGPU_BACKEND: "dx12" });
  assertOneLineError(r, /no WebGPU adapter found: install a GPU driver, or Mesa/);
});
