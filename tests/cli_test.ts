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
  await write("huge.json", JSON.stringify(good).replace('"etaMax":0.1', '"etaMax":1e400'));
  await Deno.symlink(`${dir}/nowhere-at-all`, `${dir}/dangling`);
  const cases: [string[], RegExp][] = [
    [[], /--config FILE is required/],
    [["--config", "missing.json"], /config missing.json not found/],
    [["--config", "malformed.json"], /not valid JSON/],
    [["--config", "typo.json"], /unknown key "trian" \(did you mean "train"\?\)/],
    [["--config", "hidden.json"], /model\.hidden\.0 must be >= 1/],
    [["--config", "good.json", "--data", `${dir}/nowhere`], /nowhere/],
    [["--config", "good.json", "--lambda", "abc"], /--lambda must be a number/],
    [["--config", "good.json", "--bogus"], /unknown flag --bogus/],
    [["--config", "huge.json"], /etaMax must be .*got Infinity \(a number too large for a double/],
    [
      ["--config", "good.json", "--out", "dangling"],
      /dangling is a symbolic link to .*nowhere-at-all, which does not exist/,
    ],
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

Deno.test("eval: a device, a FIFO or a directory as checkpoint or data is one line, never read; --run and --checkpoint are one or the other", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cli_eval_files_" });
  try {
    const fifo = `${dir}/fifo`;
    assert.ok((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
    await Deno.symlink("/dev/zero", `${dir}/zero.safetensors`);
    const cases: [string[], RegExp][] = [
      [["--checkpoint", "/dev/zero"], /checkpoint \/dev\/zero is a device, not a regular file/],
      [["--checkpoint", `${dir}/zero.safetensors`], /zero\.safetensors is a device/],
      [["--checkpoint", fifo], /fifo is a FIFO, not a regular file/],
      [["--checkpoint", dir], /is a directory: pass --run DIR/],
      [["--run", dir, "--checkpoint", fifo], /give --run DIR or --checkpoint FILE, not both/],
      [["--run="], /--run is empty: give it a path/],
    ];
    for (const [args, pattern] of cases) {
      const t0 = performance.now();
      assertOneLineError(await run("eval", args), pattern);
      assert.ok(performance.now() - t0 < 60_000, `${args}: answered, not blocked`);
    }
    // a good checkpoint, then data files that are not files: refused before the GPU's work
    const t = (shape: number[], v: number) => ({
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v),
    });
    const ck = `${dir}/ok.safetensors`;
    await Deno.writeFile(
      ck,
      encodeSafetensors({
        "input.mean": t([3072], 120),
        "input.std": t([3072], 60),
        "fc1.weight": t([5, 3072], 0.01),
        "fc1.bias": t([5], 0),
        "fc2.weight": t([10, 5], 0.01),
        "fc2.bias": t([10], 0),
      }),
    );
    const data = `${dir}/data`;
    await Deno.mkdir(data);
    const real = resolveDataDir();
    for (const f of ["data_batch_1.bin", "test_batch.bin"]) {
      await Deno.symlink(`${real}/${f}`, `${data}/${f}`);
    }
    await Deno.symlink("/dev/zero", `${data}/zero.bin`);
    await Deno.symlink(fifo, `${data}/fifo.bin`);
    await Deno.symlink("/dev/zero", `${data}/batches.meta.txt`);
    for (
      const [file, pattern] of [
        ["zero.bin", /CIFAR-10 batch file .*zero\.bin is a device, not a regular file/],
        ["fifo.bin", /CIFAR-10 batch file .*fifo\.bin is a FIFO, not a regular file/],
        ["test_batch.bin", /class-name file .*batches\.meta\.txt is a device/],
      ] as const
    ) {
      assertOneLineError(
        await run("eval", ["--checkpoint", ck, "--data", data, "--file", file]),
        pattern,
      );
    }
    // finite weights whose products overflow float32: an error, not "loss NaN" and exit 0
    const huge = `${dir}/huge.safetensors`;
    await Deno.writeFile(
      huge,
      encodeSafetensors({
        "input.mean": t([3072], 0),
        "input.std": t([3072], 1),
        "fc1.weight": t([5, 3072], 3e38),
        "fc1.bias": t([5], 0),
        "fc2.weight": t([10, 5], 3e38),
        "fc2.bias": t([10], 0),
      }),
    );
    assertOneLineError(
      await run("eval", ["--checkpoint", huge]),
      /huge\.safetensors: the network's outputs overflow float32 on test_batch\.bin/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("eval preflight: a net wider than the adapter binds is one line naming the limit", async () => {
  const { evalFitProblem } = await import("../src/train/preflight.ts");
  const gpu = {
    limits: { maxStorageBufferBindingSize: 128 << 20, maxBufferSize: 256 << 20 },
  } as unknown as import("../src/gpu/device.ts").Gpu;
  assert.match(
    evalFitProblem(gpu, [3072, 11000, 10], 2000)!,
    /^W1 \(3072×11000\) needs 129 MiB, more than this adapter's maxStorageBufferBindingSize of 128 MiB: evaluate it on an adapter that binds more$/,
  );
  assert.match(evalFitProblem(gpu, [3072, 50, 20000, 10], 2000)!, /layer 2's activations/);
  assert.equal(evalFitProblem(gpu, [3072, 50, 10], 2000), null);
});

Deno.test("train on data found bad while loading (a label out of range): one line, no in-progress directory left", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cli_baddata_" });
  try {
    const data = `${dir}/data`;
    await Deno.mkdir(data);
    const real = resolveDataDir();
    await Deno.symlink(`${real}/batches.meta.txt`, `${data}/batches.meta.txt`);
    const batch = await Deno.readFile(`${real}/data_batch_1.bin`);
    batch[3073 * 17] = 12; // record 17's label
    await Deno.writeFile(`${data}/data_batch_1.bin`, batch);
    const cfg = {
      ...good,
      name: "bad",
      data: { train: [1], val: { holdout: 1000 }, test: false, dir: data },
    };
    await Deno.writeTextFile(`${dir}/bad.json`, JSON.stringify(cfg));
    const out = `${dir}/runs`;
    assertOneLineError(
      await run("train", ["--config", `${dir}/bad.json`, "--out", out, "--no-report"]),
      /record 17 has label 12/,
    );
    const left = [...Deno.readDirSync(out)].map((e) => e.name);
    assert.deepEqual(left.filter((n) => n.startsWith("bad")), [], `left: ${left}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
