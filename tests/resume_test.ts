/**
 * Kill anywhere, resume exactly: a short run (SGD; and Adam with batch normalisation, dropout and
 * augmentation) and a short sweep are killed with SIGKILL at several points and run again until
 * they finish; their metrics (timings and environment aside), checkpoints and trial records must
 * be bit-identical to uninterrupted runs. Ctrl-C and SIGTERM stop within a chunk of steps, keep a
 * resumable snapshot and exit 130 or 143; a second Ctrl-C aborts at once.
 */

import { scanRuns } from "../src/serve/scan.ts";
import { parseProgress, PROGRESS_FILE } from "../src/train/live.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveDataDir } from "../src/data/data_dir.ts";
import { decodeSafetensors } from "../src/io/safetensors.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DATA = resolveDataDir();

/** A child process of the train command, its output lines collected as they come. */
class Child {
  readonly lines: string[] = [];
  readonly status: Promise<Deno.CommandStatus>;
  #proc: Deno.ChildProcess;
  #waiters: { re: RegExp; resolve: () => void }[] = [];

  constructor(args: string[], env: Record<string, string> = {}) {
    this.#proc = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(ROOT, "src", "cli", "train.ts"), ...args],
      env: { CIFAR10_DIR: DATA, NO_COLOR: "1", WEBGPU_MLP_SNAPSHOT_SECONDS: "0.05", ...env },
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      let rest = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop()!;
        for (const line of parts) this.#line(line);
      }
      if (rest) this.#line(rest);
    };
    const pumped = Promise.all([pump(this.#proc.stdout), pump(this.#proc.stderr)]);
    this.status = pumped.then(() => this.#proc.status);
  }

  #line(line: string) {
    this.lines.push(line);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.re.test(line)) return true;
      w.resolve();
      return false;
    });
  }

  /** Resolves with true when a line matches, false when the process ends first. */
  waitFor(re: RegExp): Promise<boolean> {
    if (this.lines.some((l) => re.test(l))) return Promise.resolve(true);
    return Promise.race([
      new Promise<boolean>((resolve) => this.#waiters.push({ re, resolve: () => resolve(true) })),
      this.status.then(() => false),
    ]);
  }

  kill(signal: Deno.Signal) {
    try {
      this.#proc.kill(signal);
    } catch {
      // already gone
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runToEnd(args: string[]): Promise<string[]> {
  const c = new Child(args);
  const st = await c.status;
  assert.equal(st.code, 0, c.lines.join("\n"));
  return c.lines;
}

/** When to kill a process: after it has written `snapshots` snapshots (0: after its first
 * progress line), then `delay` ms more. */
interface Kill {
  snapshots: number;
  delay: number;
}

/** Resolves once the files in `watch` have been rewritten `n` times (mtime changes), or `done`. */
async function snapshotsWritten(watch: string[], n: number, done: () => boolean): Promise<void> {
  const mtime = (f: string) => {
    try {
      return Deno.statSync(f).mtime?.getTime() ?? 0;
    } catch {
      return 0;
    }
  };
  const seen = watch.map(mtime);
  let count = 0;
  while (count < n && !done()) {
    await sleep(5);
    watch.forEach((f, i) => {
      const t = mtime(f);
      if (t !== seen[i] && t !== 0) count++;
      seen[i] = t;
    });
  }
}

/**
 * Run `args` again and again, killing each process with SIGKILL as `plan[i]` says, until a
 * process finishes by itself. `watch` lists the snapshot files it writes. Returns the steps the
 * processes resumed at.
 */
async function killUntilDone(args: string[], plan: Kill[], watch: string[]): Promise<number[]> {
  const resumed: number[] = [];
  for (let i = 0;; i++) {
    assert.ok(i < plan.length + 5, "the run never finished");
    const c = new Child(args);
    let ended = false;
    c.status.then(() => ended = true);
    const k = plan[i];
    if (k !== undefined && await c.waitFor(/step\s+\d+\/\d+/)) {
      await snapshotsWritten(watch, k.snapshots, () => ended);
      await sleep(k.delay);
      c.kill("SIGKILL");
    }
    const st = await c.status;
    for (const l of c.lines) {
      const m = /resuming at step (\d+)/.exec(l);
      if (m) resumed.push(Number(m[1]));
    }
    if (st.success) return resumed;
    assert.ok(st.signal === "SIGKILL", `process ended with ${st.code}: ${c.lines.join("\n")}`);
  }
}

/** metrics.json without what may differ between sessions (timings, environment, paths). */
async function metricsOf(dir: string): Promise<unknown> {
  const m = JSON.parse(await Deno.readTextFile(join(dir, "metrics.json")));
  delete m.timings;
  delete m.env;
  delete m.config.out;
  delete m.config.data.dir;
  return m;
}

/** The checkpoint's tensors (its metadata names paths). */
async function tensorsOf(dir: string): Promise<Record<string, number[]>> {
  const { tensors } = decodeSafetensors(await Deno.readFile(join(dir, "weights.safetensors")), dir);
  return Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, [...t.data]]));
}

async function assertSameRun(a: string, b: string, what: string) {
  assert.deepEqual(await metricsOf(b), await metricsOf(a), `${what}: metrics.json`);
  assert.deepEqual(await tensorsOf(b), await tensorsOf(a), `${what}: weights`);
}

function runConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "r",
    seed: 5,
    data: { train: [1], val: { holdout: 1000 }, test: true },
    model: { hidden: [16] },
    // 600 steps, evaluated every 300: chunks end at 250 and 550 too, where timed snapshots fall
    train: {
      batchSize: 100,
      lambda: 0.005,
      evalEvery: 300,
      schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 300, cycles: 1 },
    },
    ...extra,
  };
}

/** Start `cfg` into `out`, Ctrl-C it half a second into training, and expect exit 130. */
async function interrupt(cfg: string, out: string): Promise<void> {
  const c = new Child(["--config", cfg, "--out", out]);
  assert.ok(await c.waitFor(/^step\s+0\//));
  await sleep(500);
  c.kill("SIGINT");
  assert.equal((await c.status).code, 130, c.lines.join("\n"));
}

/** 1200 steps, evaluated every 300: a Ctrl-C soon after the start lands far from the end. */
function longConfig(): Record<string, unknown> {
  return runConfig({
    train: {
      ...(runConfig().train as object),
      schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 600, cycles: 1 },
    },
  });
}

async function writeJson(path: string, value: unknown): Promise<string> {
  await Deno.writeTextFile(path, JSON.stringify(value));
  return path;
}

const variants: [string, Record<string, unknown>][] = [
  ["SGD", {}],
  ["Adam, BN, dropout, augmentation", {
    data: {
      train: [1],
      val: { holdout: 1000 },
      test: true,
      augment: { flip: true, translate: 2 },
    },
    model: { hidden: [16, 12], bn: [true, false], dropout: 0.2 },
    train: {
      ...(runConfig().train as object),
      optimizer: { kind: "adam" },
      schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.005, stepSize: 300, cycles: 1 },
    },
  }],
];

for (const [what, extra] of variants) {
  Deno.test({
    name: `a run (${what}) killed with SIGKILL at several points ends bit-identical`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const top = await Deno.makeTempDir({ prefix: "resume-" });
      const cfg = await writeJson(join(top, "r.json"), runConfig(extra));
      await runToEnd(["--config", cfg, "--out", join(top, "ref")]);
      // kills right after a snapshot, while one is being written, and during the last phase
      // (test evaluation, checkpoint, report, commit)
      const resumed = await killUntilDone(
        ["--config", cfg, "--out", join(top, "killed")],
        [
          { snapshots: 1, delay: 0 },
          { snapshots: 0, delay: 150 },
          { snapshots: 2, delay: 1 },
          { snapshots: 1, delay: 400 },
          { snapshots: 1, delay: 1200 },
          { snapshots: 1, delay: 2000 },
        ],
        [join(top, "killed", "r.partial", "snapshot.safetensors")],
      );
      assert.ok(resumed.some((s) => s > 0), `resumed at ${resumed}: no kill fell after a snapshot`);
      await assertSameRun(join(top, "ref", "r"), join(top, "killed", "r"), what);
      const left = [...Deno.readDirSync(join(top, "killed"))].map((e) => e.name).sort();
      assert.deepEqual(left, ["r"], "no in-progress directory, lock or temporary file is left");
      await Deno.remove(top, { recursive: true });
    },
  });
}

Deno.test({
  name: "Ctrl-C stops within a chunk, records interrupted, exits 130; the same command resumes it",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const top = await Deno.makeTempDir({ prefix: "sigint-" });
    // one evaluation in the middle of 1200 steps: Ctrl-C lands far from it
    const long = runConfig({
      train: {
        ...(runConfig().train as object),
        evalEvery: 1200,
        schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 600, cycles: 1 },
      },
    });
    const cfg = await writeJson(join(top, "r.json"), long);
    await runToEnd(["--config", cfg, "--out", join(top, "ref")]);
    const c = new Child(["--config", cfg, "--out", join(top, "int")]);
    assert.ok(await c.waitFor(/^step\s+0\//));
    await sleep(300);
    c.kill("SIGINT");
    const st = await c.status;
    assert.equal(st.code, 130, c.lines.join("\n"));
    const partial = join(top, "int", "r.partial");
    const m = JSON.parse(await Deno.readTextFile(join(partial, "metrics.json")));
    assert.equal(m.status, "interrupted");
    const last = m.curves.at(-1).step;
    assert.ok(last > 0 && last < 1200, `evaluated once at the step reached (${last})`);
    assert.ok(c.lines.some((l) => /interrupted at step \d+\/1200/.test(l)), c.lines.join("\n"));
    await Deno.stat(join(partial, "snapshot.safetensors"));
    const again = await runToEnd(["--config", cfg, "--out", join(top, "int")]);
    assert.ok(again.some((l) => l.includes(`resuming at step ${last}`)), again.join("\n"));
    await assertSameRun(join(top, "ref", "r"), join(top, "int", "r"), "after Ctrl-C");
    await Deno.remove(top, { recursive: true });
  },
});

Deno.test({
  name: "SIGTERM stops like Ctrl-C, with exit 143, and the run resumes to the end",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const top = await Deno.makeTempDir({ prefix: "sigterm-" });
    const cfg = await writeJson(join(top, "r.json"), longConfig());
    const c = new Child(["--config", cfg, "--out", join(top, "o")]);
    assert.ok(await c.waitFor(/^step\s+0\//));
    c.kill("SIGTERM");
    assert.equal((await c.status).code, 143, c.lines.join("\n"));
    assert.ok(c.lines.some((l) => /interrupted at step \d+\/1200/.test(l)), c.lines.join("\n"));
    await runToEnd(["--config", cfg, "--out", join(top, "o")]);
    await Deno.stat(join(top, "o", "r", "weights.safetensors"));
    await Deno.remove(top, { recursive: true });
  },
});

Deno.test({
  name: "a second Ctrl-C aborts at once with 130, without waiting for the steps in flight",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const top = await Deno.makeTempDir({ prefix: "sigint2-" });
    // a wide layer and large batches: each chunk of 10 steps takes seconds, so the graceful stop
    // after the first Ctrl-C is still waiting for the GPU when the second one comes
    const heavy = runConfig({
      data: { train: [1], val: { holdout: 1000 }, test: false },
      model: { hidden: [256] },
      train: {
        batchSize: 1000,
        evalEvery: 10,
        schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.01, stepSize: 50, cycles: 1 },
      },
    });
    const cfg = await writeJson(join(top, "r.json"), heavy);
    const d = new Child(["--config", cfg, "--out", join(top, "o")]);
    assert.ok(await d.waitFor(/^step\s+0\//));
    d.kill("SIGINT");
    assert.ok(await d.waitFor(/^SIGINT: stopping/), d.lines.join("\n"));
    d.kill("SIGINT");
    const st = await d.status;
    assert.equal(st.code, 130, d.lines.join("\n"));
    assert.ok(d.lines.some((l) => l.includes("aborting now")), d.lines.join("\n"));
    assert.ok(!d.lines.some((l) => /interrupted at step/.test(l)), "it did not wait to stop");
    await Deno.remove(top, { recursive: true });
  },
});

Deno.test({
  name: "a sweep killed with SIGKILL at several points ends with the same trials and final run",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const top = await Deno.makeTempDir({ prefix: "resume-sweep-" });
    const sweep = runConfig({
      name: "sw",
      data: { train: [1], val: { holdout: 1000 }, test: false },
      train: {
        ...(runConfig().train as object),
        evalEvery: 100,
        schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 150, cycles: 1 },
      },
      search: {
        population: 2,
        stages: [
          { name: "a", space: { kind: "list", values: [0.0001, 0.003, 0.05] } },
          {
            name: "b",
            space: { kind: "around", stage: "a", top: 1, count: 2, width: 0.3, seed: 2 },
          },
        ],
        final: {},
      },
    });
    const cfg = await writeJson(join(top, "sw.json"), sweep);
    await runToEnd(["--config", cfg, "--out", join(top, "ref")]);
    const dir = join(top, "killed", "sw");
    const resumed = await killUntilDone(
      ["--config", cfg, "--out", join(top, "killed")],
      [
        { snapshots: 1, delay: 0 },
        { snapshots: 2, delay: 30 },
        { snapshots: 3, delay: 0 },
        { snapshots: 1, delay: 300 },
        { snapshots: 4, delay: 0 },
        { snapshots: 2, delay: 800 },
        { snapshots: 1, delay: 1500 },
        { snapshots: 3, delay: 10 },
      ],
      [join(dir, ".snapshot.safetensors"), join(dir, "final.partial", "snapshot.safetensors")],
    );
    assert.ok(resumed.some((s) => s > 0), `resumed at ${resumed}`);
    const trials = async (d: string) =>
      (await Deno.readTextFile(join(d, "sw", "trials.jsonl"))).trim().split("\n").map((l) =>
        JSON.parse(l)
      ).sort((x, y) => (x.id < y.id ? -1 : 1));
    assert.deepEqual(await trials(join(top, "killed")), await trials(join(top, "ref")));
    const stages = async (d: string) =>
      JSON.parse(await Deno.readTextFile(join(d, "sw", "sweep.json"))).stages;
    assert.deepEqual(await stages(join(top, "killed")), await stages(join(top, "ref")));
    await assertSameRun(
      join(top, "ref", "sw", "final"),
      join(top, "killed", "sw", "final"),
      "final",
    );
    const left = [...Deno.readDirSync(join(top, "killed", "sw"))].filter((e) =>
      /snapshot|\.partial|\.lock|tmp-/.test(e.name)
    );
    assert.deepEqual(left, [], "no snapshot, lock or temporary file is left");
    // a kill between recording the last population and removing its snapshot leaves the snapshot:
    // the same command, with nothing left to train, removes it
    await Deno.copyFile(join(cfg), join(dir, ".snapshot.safetensors"));
    await runToEnd(["--config", cfg, "--out", join(top, "killed")]);
    await assert.rejects(Deno.stat(join(dir, ".snapshot.safetensors")), Deno.errors.NotFound);
    await Deno.remove(top, { recursive: true });
  },
});

Deno.test({
  name: "killed after the commit, before the in-progress directory went: the leftover is removed",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const top = await Deno.makeTempDir({ prefix: "leftover-" });
    const cfg = await writeJson(join(top, "r.json"), longConfig());
    const out = join(top, "o");
    // an interrupted run, then the same run to the end: copy its partial aside in between
    await interrupt(cfg, out);
    await Deno.mkdir(join(top, "saved"));
    for (const e of Deno.readDirSync(join(out, "r.partial"))) {
      await Deno.copyFile(join(out, "r.partial", e.name), join(top, "saved", e.name));
    }
    await runToEnd(["--config", cfg, "--out", out]);
    await Deno.rename(join(top, "saved"), join(out, "r.partial"));
    const d = new Child(["--config", cfg, "--out", out]);
    const st = await d.status;
    assert.equal(st.code, 1);
    assert.ok(
      d.lines.some((l) => /^error: run directory .* already exists/.test(l)),
      d.lines.join("\n"),
    );
    const left = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    assert.deepEqual(left, ["r"], "the stale in-progress directory is gone, the run is kept");
    await Deno.remove(top, { recursive: true });
  },
});

Deno.test({
  name: "a snapshot that does not fit the run is refused with one line naming --restart",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const top = await Deno.makeTempDir({ prefix: "badsnap-" });
    const cfg = await writeJson(join(top, "r.json"), longConfig());
    const out = join(top, "o");
    await interrupt(cfg, out);
    const file = join(out, "r.partial", "snapshot.safetensors");
    const { readSnapshot, writeSnapshot } = await import("../src/train/snapshot.ts");
    const stored = (await readSnapshot(file, ""))!;
    delete stored.snapshot.buffers.b1;
    await writeSnapshot(file, stored.hash, stored.snapshot);
    const d = new Child(["--config", cfg, "--out", out]);
    assert.equal((await d.status).code, 1);
    const errors = d.lines.filter((l) => l.startsWith("error:"));
    assert.equal(errors.length, 1, d.lines.join("\n"));
    assert.match(errors[0], /does not fit this run \(b1: no bytes.*--restart/);
    assert.ok(!d.lines.some((l) => /^\s+at /.test(l)), "no stack trace");
    await runToEnd(["--config", cfg, "--out", out, "--restart"]);
    await Deno.remove(top, { recursive: true });
  },
});

Deno.test({
  name: "variants interrupted in their second population resume it and end bit-identical",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const top = await Deno.makeTempDir({ prefix: "resume-variants-" });
    // two populations: {a, b} differ in λ only; c has another width
    const cfg = await writeJson(
      join(top, "v.json"),
      runConfig({
        name: "v",
        variants: [
          { name: "a", train: { lambda: 0.001 } },
          { name: "b", train: { lambda: 0.01 } },
          { name: "c", model: { hidden: [12] } },
        ],
      }),
    );
    await runToEnd(["--config", cfg, "--out", join(top, "ref")]);
    const c = new Child(["--config", cfg, "--out", join(top, "int")]);
    assert.ok(await c.waitFor(/^c step\s+0\//));
    await snapshotsWritten([join(top, "int", "v", ".snapshot-1.safetensors")], 1, () => false);
    c.kill("SIGKILL");
    await c.status;
    // the dashboard sees the committed variants and the one killed in training, with its points
    const seen = scanRuns(join(top, "int")).map((e) => [e.path, e.status]);
    assert.deepEqual(seen, [["v/a", "completed"], ["v/b", "completed"], ["v/c", "interrupted"]]);
    const log = parseProgress(
      await Deno.readTextFile(join(top, "int", "v", "c.partial", PROGRESS_FILE)),
    );
    assert.ok(log && log.lines.length >= 1, "c's progress log holds its points so far");
    const again = await runToEnd(["--config", cfg, "--out", join(top, "int")]);
    assert.ok(again.some((l) => l.includes("a + b: already trained")), again.join("\n"));
    assert.ok(again.some((l) => /^c: resuming at step [1-9]/.test(l)), again.join("\n"));
    for (const v of ["a", "b", "c"]) {
      await assertSameRun(join(top, "ref", "v", v), join(top, "int", "v", v), `variant ${v}`);
    }
    const left = [...Deno.readDirSync(join(top, "int", "v"))].map((e) => e.name).sort();
    assert.deepEqual(left, [".webgpu-mlp.json", "a", "b", "c", "report.html"]);
    await Deno.remove(top, { recursive: true });
  },
});

Deno.test("leftovers of a killed commit are removed; a user's copies of the run named like them are not", async () => {
  const { markOwned } = await import("../src/io/owned.ts");
  const { removeLeftovers } = await import("../src/train/run.ts");
  const top = await Deno.makeTempDir({ prefix: "leftovers-" });
  try {
    const dir = join(top, "tiny");
    const copies = ["", ".old-1", ".old-2", ".old-123-abcdef12", ".tmp-5-0123abcd", ".tmp-77"];
    for (const c of copies) await markOwned(dir + c, "run", "h");
    await removeLeftovers(dir, "h");
    assert.deepEqual(
      [...Deno.readDirSync(top)].map((e) => e.name).sort(),
      ["tiny", "tiny.old-1", "tiny.old-2", "tiny.tmp-77"],
    );
  } finally {
    await Deno.remove(top, { recursive: true });
  }
});

Deno.test({
  name: "a run interrupted on one copy of the data does not resume on other data",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const top = await Deno.makeTempDir({ prefix: "otherdata-" });
    try {
      // the same files but batch 1 cut to 5000 of its records: another training set
      const other = join(top, "data");
      await Deno.mkdir(other);
      for (const f of ["batches.meta.txt", "test_batch.bin"]) {
        await Deno.symlink(join(DATA, f), join(other, f));
      }
      const batch = await Deno.readFile(join(DATA, "data_batch_1.bin"));
      await Deno.writeFile(join(other, "data_batch_1.bin"), batch.subarray(0, 3073 * 5000));
      const cfg = await writeJson(join(top, "r.json"), longConfig());
      const out = join(top, "o");
      const c = new Child(["--config", cfg, "--out", out]);
      assert.ok(await c.waitFor(/^step\s+0\//));
      c.kill("SIGINT");
      assert.equal((await c.status).code, 130, c.lines.join("\n"));
      const d = new Child(["--config", cfg, "--out", out], { CIFAR10_DIR: other });
      assert.equal((await d.status).code, 1, d.lines.join("\n"));
      assert.match(
        d.lines.join("\n"),
        /^error: .*r\.partial\/snapshot\.safetensors was trained on other data than --data \(or CIFAR10_DIR\) gives now .*--restart/m,
      );
      // on the data it began with, it resumes to the end
      const lines = await runToEnd(["--config", cfg, "--out", out]);
      assert.ok(lines.some((l) => /resuming at step [1-9]/.test(l)), lines.join("\n"));
    } finally {
      await Deno.remove(top, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a snapshot whose state is past its schedule or holds no models is refused as damaged, in one line",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { encodeSafetensors } = await import("../src/io/safetensors.ts");
    const top = await Deno.makeTempDir({ prefix: "badstate-" });
    try {
      const cfg = await writeJson(join(top, "r.json"), longConfig());
      const out = join(top, "o");
      const c = new Child(["--config", cfg, "--out", out]);
      assert.ok(await c.waitFor(/^step\s+0\//));
      c.kill("SIGINT");
      assert.equal((await c.status).code, 130, c.lines.join("\n"));
      const file = join(out, "r.partial", "snapshot.safetensors");
      const { tensors, metadata } = decodeSafetensors(await Deno.readFile(file));
      const state = JSON.parse(metadata.state);
      for (
        const [edit, pattern] of [
          [{ step: 99999 }, /step 99999 past the schedule's 1200/],
          [{ models: [] }, /is damaged \(models\.: .*\): pass --restart/],
        ] as const
      ) {
        await Deno.writeFile(
          file,
          encodeSafetensors(tensors, { ...metadata, state: JSON.stringify({ ...state, ...edit }) }),
        );
        const d = new Child(["--config", cfg, "--out", out]);
        assert.equal((await d.status).code, 1, d.lines.join("\n"));
        const errors = d.lines.filter((l) => l.startsWith("error:"));
        assert.equal(errors.length, 1, d.lines.join("\n"));
        assert.match(errors[0], /damaged/);
        assert.match(errors[0], pattern);
        assert.ok(!d.lines.some((l) => /^\s+at /.test(l)), "no stack trace");
      }
    } finally {
      await Deno.remove(top, { recursive: true });
    }
  },
});
