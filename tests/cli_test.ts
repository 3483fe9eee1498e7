/**
 * The command-line tools on bad input: one `error:` line on stderr, a non-zero exit, no stack
 * trace, and nothing written; eval refuses broken checkpoints before any GPU work.
 */

import assert from "node:assert/strict";
import { resolveDataDir } from "../src/data/data_dir.ts";
import { encodeSafetensors } from "../src/io/safetensors.ts";

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

Deno.test("eval refuses a broken checkpoint in one line, before touching the GPU", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cli_eval_" });
  try {
    const t = (shape: number[], value: number) => ({
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value),
    });
    const net = (hidden: number) => ({
      "input.mean": t([3072], 120),
      "input.std": t([3072], 60),
      "fc1.weight": t([hidden, 3072], 0.01),
      "fc1.bias": t([hidden], 0),
      "fc2.weight": t([10, hidden], 0.01),
      "fc2.bias": t([10], 0),
    });
    const zeroUnits = net(0);
    const withNaN = net(5);
    withNaN["fc1.weight"].data[7] = NaN;
    const zeroStd = net(5);
    zeroStd["input.std"].data[3] = 0;
    const files: [string, Uint8Array, RegExp][] = [
      [
        "zero.safetensors",
        encodeSafetensors(zeroUnits),
        /fc1\.weight has shape \[0,3072\]: a dimension of 0 \(a layer of 0 units\)/,
      ],
      [
        "nan.safetensors",
        encodeSafetensors(withNaN),
        /fc1\.weight holds NaN at \[0, 7\]: the network diverged or the file is corrupt/,
      ],
      [
        "std.safetensors",
        encodeSafetensors(zeroStd),
        /input\.std\[3\] is 0: inputs are divided by input\.std/,
      ],
      [
        "cut.safetensors",
        encodeSafetensors(net(5)).subarray(0, 1000),
        /is not a valid safetensors file: .*truncated/,
      ],
    ];
    for (const [name, bytes, pattern] of files) {
      const path = `${dir}/${name}`;
      await Deno.writeFile(path, bytes);
      // With no WebGPU adapter at all: the checkpoint's problem is what is reported.
      for (const env of [undefined, { DENO_WEBGPU_BACKEND: "dx12" }]) {
        const r = await run("eval", ["--checkpoint", path], undefined, env);
        assert.equal(r.code, 1, r.stderr);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, `exactly one line on stderr, got: ${r.stderr}`);
        assert.ok(lines[0].startsWith(`error: ${path}`), lines[0]);
        assert.match(lines[0], pattern);
        assert.ok(!/\bat .*:\d+:\d+/.test(r.stderr), `no stack trace: ${r.stderr}`);
        assert.equal(r.stdout, "");
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
