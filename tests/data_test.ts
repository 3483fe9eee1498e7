/**
 * Tests of src/data/ (the file format, reading the files, finding the data directory, splits,
 * normalisation and loadCifar10) against the real CIFAR-10 copy, found the way the product finds it
 * (`resolveDataDir()`: `$CIFAR10_DIR`, `./data/cifar-10` or the user cache), and of its error
 * messages against small broken files, symbolic link loops and unreadable paths written to a
 * temporary directory.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { CIFAR10_CLASSES, IMAGE_BYTES, parseClassNames, RECORD_BYTES } from "../src/data/format.ts";
import { readBatchFile, readClassNames } from "../src/data/files.ts";
import { resolveDataDir } from "../src/data/data_dir.ts";
import { type Split, type SplitSpec, validateSplitSpec } from "../src/data/splits.ts";
import { normalisationStats, normalise } from "../src/data/normalise.ts";
import { loadCifar10 } from "../src/data/cifar10.ts";
import { assertUserError } from "./assert_user_error.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));
const DATA = resolveDataDir();

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cifar10_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("readBatchFile reads the real batches: sizes, labels, pixels", () => {
  const raw = Deno.readFileSync(join(DATA, "data_batch_1.bin"));
  const b1 = readBatchFile(join(DATA, "data_batch_1.bin"));
  assert.equal(b1.labels.length, 10000);
  assert.equal(b1.images.length, 10000 * IMAGE_BYTES);
  assert.deepEqual([...b1.labels.subarray(0, 10)], [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]);
  // Record 0 and record 9999 are copied unchanged (R plane, G plane, B plane).
  assert.deepEqual(b1.images.subarray(0, IMAGE_BYTES), raw.subarray(1, RECORD_BYTES));
  assert.deepEqual(
    b1.images.subarray(9999 * IMAGE_BYTES),
    raw.subarray(9999 * RECORD_BYTES + 1),
  );
  assert.equal(b1.labels[9999], raw[9999 * RECORD_BYTES]);

  const test = readBatchFile(join(DATA, "test_batch.bin"));
  assert.equal(test.labels.length, 10000);
  assert.deepEqual([...test.labels.subarray(0, 10)], [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]);
});

Deno.test("readClassNames reads batches.meta.txt", () => {
  assert.deepEqual(readClassNames(DATA), CIFAR10_CLASSES);
});

Deno.test("loadCifar10 with a holdout: 45000/5000/10000, val = the last 5000 samples", async () => {
  const d = await loadCifar10(DATA, { train: [1, 2, 3, 4, 5], val: { holdout: 5000 }, test: true });
  assert.equal(d.train.n, 45000);
  assert.equal(d.train.images.length, 45000 * IMAGE_BYTES);
  assert.equal(d.train.labels.length, 45000);
  assert.ok(d.val !== null && d.test !== null);
  assert.equal(d.val.n, 5000);
  assert.equal(d.val.images.length, 5000 * IMAGE_BYTES);
  assert.equal(d.test.n, 10000);
  assert.deepEqual(d.classNames, CIFAR10_CLASSES);

  const b1 = readBatchFile(join(DATA, "data_batch_1.bin"));
  const b5 = readBatchFile(join(DATA, "data_batch_5.bin"));
  // Train starts with batch 1 and ends with the first 5000 samples of batch 5.
  assert.deepEqual(d.train.labels.subarray(0, 10000), b1.labels);
  assert.deepEqual(d.train.images.subarray(0, IMAGE_BYTES), b1.images.subarray(0, IMAGE_BYTES));
  assert.deepEqual(d.train.labels.subarray(40000), b5.labels.subarray(0, 5000));
  assert.deepEqual(
    d.train.images.subarray(44999 * IMAGE_BYTES),
    b5.images.subarray(4999 * IMAGE_BYTES, 5000 * IMAGE_BYTES),
  );
  // Val is the last 5000 samples of batch 5.
  assert.deepEqual(d.val.labels, b5.labels.subarray(5000));
  assert.deepEqual(d.val.images, b5.images.subarray(5000 * IMAGE_BYTES));
  assert.deepEqual([...d.test.labels.subarray(0, 10)], [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]);

  // The official training set has exactly 5000 images per class.
  const counts = new Array(10).fill(0);
  for (const l of d.train.labels) counts[l]++;
  for (const l of d.val.labels) counts[l]++;
  assert.deepEqual(counts, new Array(10).fill(5000));

  // Channel means of CIFAR-10 training images are about (125.3, 123.0, 113.9) grey levels.
  const stats = normalisationStats(d.train);
  const plane = (c: number) => stats.mean.subarray(c * 1024, (c + 1) * 1024);
  const avg = (a: Float32Array) => a.reduce((s, x) => s + x, 0) / a.length;
  assert.ok(Math.abs(avg(plane(0)) - 125.3) < 1, `R mean ${avg(plane(0))}`);
  assert.ok(Math.abs(avg(plane(1)) - 123.0) < 1, `G mean ${avg(plane(1))}`);
  assert.ok(Math.abs(avg(plane(2)) - 113.9) < 1, `B mean ${avg(plane(2))}`);
  for (const s of stats.std) assert.ok(s > 40 && s < 90, `std ${s}`);
});

Deno.test("loadCifar10 with a val batch, without val, and holdout in the order given", async () => {
  const a = await loadCifar10(DATA, { train: [1, 2], val: { batch: 3 }, test: false });
  assert.equal(a.train.n, 20000);
  assert.equal(a.test, null);
  assert.ok(a.val !== null);
  assert.equal(a.val.n, 10000);
  const b2 = readBatchFile(join(DATA, "data_batch_2.bin"));
  const b3 = readBatchFile(join(DATA, "data_batch_3.bin"));
  assert.deepEqual(a.val.labels, b3.labels);
  assert.deepEqual(a.val.images, b3.images);
  assert.deepEqual(a.train.labels.subarray(10000), b2.labels);

  const b = await loadCifar10(DATA, { train: [2], val: { none: true }, test: false });
  assert.equal(b.train.n, 10000);
  assert.equal(b.val, null);
  assert.deepEqual(b.train.images, b2.images);

  // Batches are concatenated in the order listed; the holdout is the tail of that sequence.
  const b1 = readBatchFile(join(DATA, "data_batch_1.bin"));
  const c = await loadCifar10(DATA, { train: [2, 1], val: { holdout: 10 }, test: false });
  assert.equal(c.train.n, 19990);
  assert.ok(c.val !== null);
  assert.equal(c.val.n, 10);
  assert.deepEqual(c.train.labels.subarray(0, 10000), b2.labels);
  assert.deepEqual(c.val.labels, b1.labels.subarray(9990));
  assert.deepEqual(c.val.images, b1.images.subarray(9990 * IMAGE_BYTES));
});

Deno.test("normalisationStats matches a direct float64 computation; zero std becomes 1", () => {
  const b1 = readBatchFile(join(DATA, "data_batch_1.bin"));
  const n = 37;
  const images = b1.images.slice(0, n * IMAGE_BYTES);
  for (let i = 0; i < n; i++) images[i * IMAGE_BYTES + 5] = 77; // a constant dimension
  const split: Split = { images, labels: b1.labels.slice(0, n), n };
  const stats = normalisationStats(split);
  assert.equal(stats.mean.length, IMAGE_BYTES);
  assert.equal(stats.std.length, IMAGE_BYTES);
  for (let d = 0; d < IMAGE_BYTES; d++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += images[i * IMAGE_BYTES + d];
    const mean = sum / n;
    let sq = 0;
    for (let i = 0; i < n; i++) sq += (images[i * IMAGE_BYTES + d] - mean) ** 2;
    const std = Math.sqrt(sq / n); // population std
    assert.equal(stats.mean[d], Math.fround(mean), `mean[${d}]`);
    const expectedStd = std === 0 ? 1 : std;
    assert.ok(
      Math.abs(stats.std[d] - expectedStd) <= 1e-6 * expectedStd,
      `std[${d}] ${stats.std[d]} vs ${expectedStd}`,
    );
  }
  assert.equal(stats.mean[5], 77);
  assert.equal(stats.std[5], 1);

  const x = normalise(images, n, stats);
  assert.equal(x.length, n * IMAGE_BYTES);
  for (const i of [0, 17, n - 1]) {
    for (const d of [0, 5, 1023, 1024, 3071]) {
      const raw = images[i * IMAGE_BYTES + d];
      assert.equal(x[i * IMAGE_BYTES + d], Math.fround((raw - stats.mean[d]) / stats.std[d]));
    }
  }
  assert.equal(x[5], 0); // (77 - 77) / 1
  // Normalised dimensions have mean ~0 and (where not constant) variance ~1.
  for (const d of [0, 100, 2000]) {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      s += x[i * IMAGE_BYTES + d];
      s2 += x[i * IMAGE_BYTES + d] ** 2;
    }
    assert.ok(Math.abs(s / n) < 1e-5, `mean of normalised dim ${d}: ${s / n}`);
    assert.ok(Math.abs(s2 / n - 1) < 1e-4, `variance of normalised dim ${d}: ${s2 / n}`);
  }
});

Deno.test("missing directory and missing files give clear errors", async () => {
  await withTempDir(async (dir) => {
    const missing = join(dir, "nope");
    await assertUserError(
      () => loadCifar10(missing, { train: [1], val: { none: true }, test: false }),
      /data directory .*nope not found: pass --data DIR, set CIFAR10_DIR, or run `deno task data`/,
    );
    await assertUserError(
      () => readBatchFile(join(dir, "data_batch_1.bin")),
      /batch file .*data_batch_1\.bin not found/,
    );
    await assertUserError(() => readBatchFile(dir), /is a directory/);
    await assertUserError(() => readClassNames(dir), /batches\.meta\.txt not found/);
    // A directory with the class names but no batch files.
    await Deno.writeTextFile(join(dir, "batches.meta.txt"), CIFAR10_CLASSES.join("\n") + "\n");
    await assertUserError(
      () => loadCifar10(dir, { train: [1], val: { none: true }, test: false }),
      /data_batch_1\.bin not found/,
    );
  });
});

Deno.test("truncated, empty and wrong-label batch files give clear errors", async () => {
  await withTempDir(async (dir) => {
    const raw = await Deno.readFile(join(DATA, "data_batch_1.bin"));
    const truncated = join(dir, "data_batch_1.bin");
    await Deno.writeFile(truncated, raw.subarray(0, 2 * RECORD_BYTES + 100));
    await assertUserError(
      () => readBatchFile(truncated),
      /is 6246 bytes, expected a positive multiple of 3073 .*truncated or wrong-size file/,
    );
    const empty = join(dir, "empty.bin");
    await Deno.writeFile(empty, new Uint8Array(0));
    await assertUserError(() => readBatchFile(empty), /is 0 bytes/);

    const bad = raw.slice(0, 3 * RECORD_BYTES);
    bad[RECORD_BYTES] = 12; // label of record 1
    const badPath = join(dir, "data_batch_2.bin");
    await Deno.writeFile(badPath, bad);
    await assertUserError(() => readBatchFile(badPath), /record 1 has label 12, expected 0\.\.9/);

    // The same checks apply when loading splits.
    await Deno.writeTextFile(join(dir, "batches.meta.txt"), CIFAR10_CLASSES.join("\n") + "\n");
    await assertUserError(
      () => loadCifar10(dir, { train: [2], val: { none: true }, test: false }),
      /data_batch_2\.bin: record 1 has label 12/,
    );
    await assertUserError(
      () => loadCifar10(dir, { train: [1], val: { none: true }, test: false }),
      /data_batch_1\.bin is 6246 bytes/,
    );
    // A short but well-formed file loads (3 records).
    await Deno.writeFile(join(dir, "data_batch_3.bin"), raw.subarray(0, 3 * RECORD_BYTES));
    const d = await loadCifar10(dir, { train: [3], val: { holdout: 1 }, test: false });
    assert.equal(d.train.n, 2);
    assert.equal(d.val?.n, 1);
    assert.deepEqual([...d.train.labels, ...d.val!.labels], [6, 9, 9]);
  });
});

Deno.test("bad class-name files give clear errors", async () => {
  assert.deepEqual(parseClassNames("a\r\nb\r\nc\r\nd\r\ne\r\nf\r\ng\r\nh\r\ni\r\nj\r\n\r\n", "x"), [
    ..."abcdefghij",
  ]);
  await withTempDir(async (dir) => {
    const path = join(dir, "batches.meta.txt");
    await Deno.writeTextFile(path, CIFAR10_CLASSES.slice(0, 9).join("\n") + "\n\n");
    await assertUserError(() => readClassNames(dir), /must hold 10 non-empty class names.*found 9/);
    await Deno.writeTextFile(
      path,
      [...CIFAR10_CLASSES.slice(0, 4), "", ...CIFAR10_CLASSES.slice(4)].join("\n"),
    );
    await assertUserError(() => readClassNames(dir), /line 5 is empty/);
    await Deno.writeTextFile(path, [...CIFAR10_CLASSES, "extra"].join("\n"));
    await assertUserError(() => readClassNames(dir), /found 11/);
  });
});

Deno.test("bad split specs give clear errors", async () => {
  const cases: [unknown, RegExp][] = [
    [{ train: [], val: { none: true }, test: false }, /at least one batch/],
    [{ train: [0], val: { none: true }, test: false }, /train batch 0 is not a training batch/],
    [{ train: [6], val: { none: true }, test: false }, /train batch 6 .*use 1\.\.5/],
    [{ train: [1.5], val: { none: true }, test: false }, /train batch 1\.5/],
    [{ train: [1, 2, 1], val: { none: true }, test: false }, /train batch 1 is listed twice/],
    [{ train: [1, 2], val: { batch: 2 }, test: false }, /val batch 2 is also a train batch/],
    [{ train: [1], val: { batch: 7 }, test: false }, /val batch 7 .*use 1\.\.5/],
    [{ train: [1], val: { holdout: 0 }, test: false }, /holdout 0 is out of range.*1 to 9999/],
    [{ train: [1], val: { holdout: 10000 }, test: false }, /holdout 10000 is out of range/],
    [{ train: [1], val: { holdout: 2.5 }, test: false }, /holdout 2\.5 is out of range/],
    [{ train: [1], val: {}, test: false }, /val split must be/],
  ];
  for (const [spec, pattern] of cases) {
    await assertUserError(() => validateSplitSpec(spec as SplitSpec), pattern);
    await assertUserError(() => loadCifar10(DATA, spec as SplitSpec), pattern);
  }
  // Valid specs pass.
  validateSplitSpec({ train: [1, 2, 3, 4, 5], val: { holdout: 49999 }, test: true });
  validateSplitSpec({ train: [5], val: { batch: 1 }, test: false });
});

Deno.test("resolveDataDir: flag, CIFAR10_DIR, ./data, user cache; never ../shared", async () => {
  // Environment and working directory are per process: exercise them in a child process so
  // that tests running in parallel are not affected.
  await withTempDir(async (dir) => {
    const script = join(dir, "probe.ts");
    const moduleUrl = new URL("../src/data/data_dir.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { resolveDataDir, userCacheDataDir } from ${JSON.stringify(moduleUrl)};
const run = (flag) => { try { return resolveDataDir(flag); } catch (e) { return "error: " + e.message; } };
const out = {};
const [work, cache, withData, empty] = Deno.args;
Deno.chdir(work);
Deno.env.delete("CIFAR10_DIR");
Deno.env.set("XDG_CACHE_HOME", cache);
out.cacheDir = userCacheDataDir();
out.none = run();
Deno.mkdirSync(work + "/../shared/data/cifar-10", { recursive: true });
Deno.writeFileSync(work + "/../shared/data/cifar-10/data_batch_1.bin", new Uint8Array(0));
out.shared = run();
Deno.mkdirSync(cache + "/webgpu-mlp/cifar-10", { recursive: true });
Deno.writeFileSync(cache + "/webgpu-mlp/cifar-10/data_batch_1.bin", new Uint8Array(0));
out.cache = run();
Deno.mkdirSync(work + "/data/cifar-10", { recursive: true });
Deno.writeFileSync(work + "/data/cifar-10/data_batch_1.bin", new Uint8Array(0));
out.local = run();
out.flag = run(withData);
out.flagMissing = run(work + "/missing");
out.flagEmpty = run(empty);
Deno.env.set("CIFAR10_DIR", withData);
out.env = run();
out.flagBeatsEnv = run(work + "/data/cifar-10");
Deno.env.set("CIFAR10_DIR", work + "/missing");
out.envMissing = run();
Deno.env.delete("CIFAR10_DIR");
Deno.env.delete("XDG_CACHE_HOME");
out.homeCache = userCacheDataDir();
console.log(JSON.stringify(out));
`,
    );
    const work = join(dir, "work");
    const cache = join(dir, "cache");
    const empty = join(dir, "empty");
    await Deno.mkdir(join(work, "sub"), { recursive: true });
    await Deno.mkdir(empty);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", script, join(work, "sub"), cache, DATA, empty],
      cwd: ROOT,
      env: { HOME: join(dir, "home") },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    const sub = join(work, "sub");
    assert.equal(r.cacheDir, join(cache, "webgpu-mlp", "cifar-10"));
    // Nothing anywhere: one line naming the places tried and what to do.
    assert.match(r.none, /^error: CIFAR-10 not found \(tried /);
    assert.ok(r.none.includes(join(sub, "data", "cifar-10")), r.none);
    assert.ok(r.none.includes(join(cache, "webgpu-mlp", "cifar-10")), r.none);
    assert.ok(!r.none.includes("shared"), r.none);
    assert.match(r.none, /run `deno task data`, pass --data DIR, or set CIFAR10_DIR$/);
    // A copy beside the checkout (../shared/data/cifar-10) is not the product's business: a
    // user's machine has no such place, so it is neither used nor named.
    assert.equal(r.shared, r.none);
    // The child runs in work/sub: ./data/cifar-10 beats the cache.
    assert.equal(r.cache, join(cache, "webgpu-mlp", "cifar-10"));
    assert.equal(r.local, join(sub, "data", "cifar-10"));
    assert.equal(r.flag, DATA);
    assert.match(r.flagMissing, /^error: data directory .*missing \(from --data\) not found/);
    assert.match(r.flagEmpty, /^error: data directory .*empty \(from --data\) has no data_batch_1/);
    assert.equal(r.env, DATA);
    assert.equal(r.flagBeatsEnv, join(sub, "data", "cifar-10"));
    assert.match(r.envMissing, /^error: data directory .*missing \(from CIFAR10_DIR\) not found/);
    assert.equal(r.homeCache, join(dir, "home", ".cache", "webgpu-mlp", "cifar-10"));
  });
});

/** Run a command-line tool of src/cli in a child process, with `env` added to the environment. */
async function runCli(script: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "src", "cli", `${script}.ts`), ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** The CLI's answer: exit 1 and exactly one stderr line `error: …` matching `pattern`. */
function assertCliError(r: { code: number; stderr: string }, pattern: RegExp): void {
  const lines = r.stderr.trim().split("\n").filter((l) => !/^(Download|Warning)/.test(l));
  assert.equal(r.code, 1, r.stderr);
  assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], pattern);
  assert.ok(!/\n\s+at /.test(r.stderr), `stack trace: ${r.stderr}`);
}

Deno.test("resolveDataDir: a symbolic link loop under --data or CIFAR10_DIR is one line", async () => {
  await withTempDir(async (dir) => {
    const loop = join(dir, "loop");
    await Deno.symlink(join(dir, "loop2"), loop);
    await Deno.symlink(loop, join(dir, "loop2"));
    const loopMessage = (path: string, source: string) =>
      new RegExp(
        `data directory ${path} \\(from ${source}\\) cannot be read: a symbolic link on the way ` +
          "loops \\(too many levels of symbolic links\\); fix or remove the link, or ",
      );
    await assertUserError(() => resolveDataDir(loop), loopMessage(loop, "--data"));
    await assertUserError(
      () => resolveDataDir(join(loop, "x")),
      loopMessage(`${loop}/x`, "--data"),
    );
    // A directory whose data_batch_1.bin is the loop: the file is named.
    const inner = join(dir, "inner");
    await Deno.mkdir(inner);
    await Deno.symlink(loop, join(inner, "data_batch_1.bin"));
    await assertUserError(
      () => resolveDataDir(inner),
      /CIFAR-10 batch file .*inner\/data_batch_1\.bin cannot be read: a symbolic link .* loops/,
    );
    // Through the command line, from either source: one line, exit 1, no stack trace.
    assertCliError(await runCli("gradcheck", ["--data", loop]), loopMessage(loop, "--data"));
    assertCliError(
      await runCli("gradcheck", [], { CIFAR10_DIR: loop }),
      new RegExp(loopMessage(loop, "CIFAR10_DIR").source + "set CIFAR10_DIR to the directory"),
    );
  });
});

Deno.test("resolveDataDir: a file instead of a directory under --data or CIFAR10_DIR is one line", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "cifar-10-binary.tar.gz");
    await Deno.writeFile(file, new Uint8Array(10));
    const message = (source: string) =>
      new RegExp(`data directory ${file} \\(from ${source}\\) is a file, not a directory: `);
    await assertUserError(() => resolveDataDir(file), message("--data"));
    await assertUserError(
      () => loadCifar10(file, { train: [1], val: { none: true }, test: false }),
      /data directory .*tar\.gz is a file, not a directory: pass --data the directory/,
    );
    assertCliError(await runCli("gradcheck", ["--data", file]), message("--data"));
    assertCliError(await runCli("gradcheck", [], { CIFAR10_DIR: file }), message("CIFAR10_DIR"));
  });
});

Deno.test("resolveDataDir: an unreadable data directory is one line", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await Deno.mkdir(data);
    await Deno.writeFile(join(data, "data_batch_1.bin"), new Uint8Array(0));
    // Deno's own read permission: a child allowed to read nothing.
    const probe = join(dir, "probe.ts");
    const moduleUrl = new URL("../src/data/data_dir.ts", import.meta.url).href;
    await Deno.writeTextFile(
      probe,
      `import { resolveDataDir } from ${JSON.stringify(moduleUrl)};
try { resolveDataDir(Deno.args[0]); } catch (e) { console.log(e.name + ": " + e.message); }`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-env", "--no-config", probe, data],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.match(
      new TextDecoder().decode(out.stdout).trim(),
      /^UserError: data directory .*data \(from --data\) cannot be read: Deno was not granted read access to it; run with --allow-read/,
    );
    // The operating system's permissions. Root reads everything, so as root the probe runs in a
    // new user namespace (`unshare -U`), where root's files are no longer root's.
    await Deno.chmod(data, 0o000);
    try {
      const asRoot = Deno.uid() === 0;
      const cmd = asRoot ? "unshare" : Deno.execPath();
      const args = ["run", "-A", "--no-config", probe, data];
      let res: Deno.CommandOutput | null = null;
      try {
        res = await new Deno.Command(cmd, {
          args: asRoot ? ["-U", Deno.execPath(), ...args] : args,
          stdout: "piped",
          stderr: "piped",
        }).output();
      } catch { /* no unshare */ }
      const text = res ? new TextDecoder().decode(res.stdout).trim() : "";
      if (asRoot && (res === null || res.code !== 0 || !text.startsWith("UserError"))) {
        console.warn(
          "data_test: permission-denied case skipped: running as root and `unshare -U` is " +
            "not available here",
        );
        return;
      }
      assert.equal(res?.code, 0, res ? new TextDecoder().decode(res.stderr) : "");
      assert.match(
        text,
        /^UserError: CIFAR-10 batch file .*data\/data_batch_1\.bin cannot be read: permission denied; make it readable \(chmod u\+r, and u\+x for directories\), or pass --data the directory/,
      );
    } finally {
      await Deno.chmod(data, 0o755);
    }
  });
});

Deno.test("readBatchFile and loadCifar10: a batch file behind a symbolic link loop is one line", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "batches.meta.txt"), CIFAR10_CLASSES.join("\n") + "\n");
    const raw = await Deno.readFile(join(DATA, "data_batch_1.bin"));
    await Deno.writeFile(join(dir, "data_batch_1.bin"), raw.subarray(0, 3 * RECORD_BYTES));
    await Deno.symlink(join(dir, "b"), join(dir, "a"));
    await Deno.symlink(join(dir, "a"), join(dir, "b"));
    await Deno.symlink(join(dir, "a"), join(dir, "data_batch_2.bin"));
    await Deno.symlink(join(dir, "a"), join(dir, "test_batch.bin"));
    const loop =
      /CIFAR-10 batch file .*data_batch_2\.bin cannot be read: a symbolic link on the way loops \(too many levels of symbolic links\); fix or remove the link/;
    await assertUserError(() => readBatchFile(join(dir, "data_batch_2.bin")), loop);
    await assertUserError(
      () => loadCifar10(dir, { train: [2], val: { none: true }, test: false }),
      loop,
    );
    await assertUserError(
      () => loadCifar10(dir, { train: [1], val: { batch: 2 }, test: false }),
      loop,
    );
    await assertUserError(
      () => loadCifar10(dir, { train: [1], val: { none: true }, test: true }),
      /test_batch\.bin cannot be read: a symbolic link on the way loops/,
    );
    // The class-name file too.
    await Deno.remove(join(dir, "batches.meta.txt"));
    await Deno.symlink(join(dir, "a"), join(dir, "batches.meta.txt"));
    await assertUserError(
      () => readClassNames(dir),
      /class-name file .*batches\.meta\.txt cannot be read: a symbolic link on the way loops/,
    );
  });
});
