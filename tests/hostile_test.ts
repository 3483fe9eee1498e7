/**
 * Hostile inputs: what a careless user or an attacker would try. Every case runs the real command
 * in a child process and asserts that it exits 1 with exactly one `error:` line on stderr (no
 * stack trace), that nothing trained (no progress line), and that nothing of the user's was
 * removed or changed: canary files above, beside and inside `--out` are checked after each case.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveDataDir } from "../src/data/data_dir.ts";
import { getGpu } from "../src/gpu/device.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DATA = resolveDataDir();
/** The adapter's binding limit, as preflight sees it (the smaller of the two limits). */
const BINDING_LIMIT = await (async () => {
  const gpu = await getGpu();
  return Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
})();

/** A tiny valid config; `patch` changes it. */
function config(patch: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "h",
    seed: 1,
    data: { train: [1], val: { holdout: 1000 }, test: false },
    model: { hidden: [8] },
    train: {
      batchSize: 100,
      lambda: 0.01,
      evalEvery: 20,
      schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 20, cycles: 1 },
    },
    ...patch,
  };
}

/** A scratch area: `top/canary.txt`, `top/out/canary.txt`, `top/out/user/keep.txt`. */
interface Area {
  top: string;
  out: string;
  /** Every canary file and its contents. */
  canaries: Map<string, string>;
}

async function area(): Promise<Area> {
  const top = await Deno.makeTempDir({ prefix: "hostile-" });
  const out = join(top, "out");
  await Deno.mkdir(join(out, "user"), { recursive: true });
  const canaries = new Map<string, string>([
    [join(top, "canary.txt"), "above --out"],
    [join(out, "canary.txt"), "beside the runs"],
    [join(out, "user", "keep.txt"), "a user's directory"],
  ]);
  for (const [f, text] of canaries) await Deno.writeTextFile(f, text);
  return { top, out, canaries };
}

async function checkCanaries(a: Area, what: string): Promise<void> {
  for (const [f, text] of a.canaries) {
    let got: string | null = null;
    try {
      got = await Deno.readTextFile(f);
    } catch {
      // removed
    }
    assert.equal(got, text, `${what}: canary ${f} was removed or changed`);
  }
}

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  script: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<Outcome> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "src", "cli", script), ...args],
    cwd,
    env: { CIFAR10_DIR: DATA, NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    // every case must fail fast: one that trains instead is killed (and fails its exit code)
    signal: AbortSignal.timeout(120_000),
  });
  const r = await cmd.output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** One hostile case: set up the area, give the command line, and say what the error must mention. */
interface Case {
  name: string;
  setup?: (a: Area) => Promise<string[]> | string[];
  script?: string;
  env?: Record<string, string>;
  /** A fragment the error line must contain. */
  expect: string | RegExp;
  /** Working directory (default: the area's top). */
  cwd?: (a: Area) => string;
}

async function writeConfig(a: Area, file: string, cfg: unknown): Promise<string> {
  const path = join(a.top, file);
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeTextFile(path, typeof cfg === "string" ? cfg : JSON.stringify(cfg));
  return path;
}

const train = (
  a: Area,
  path: string,
  ...more: string[]
) => ["--config", path, "--out", a.out, ...more];

/** A lock file in --out held by this (live) test process; a canary, so it must survive. */
async function liveLock(a: Area, name: string): Promise<void> {
  const stat = await Deno.readTextFile(`/proc/${Deno.pid}/stat`);
  const path = join(a.out, name);
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      format: "webgpu-mlp.lock/1",
      pid: Deno.pid,
      host: Deno.hostname(),
      start: stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19],
      ns: Deno.readLinkSync("/proc/self/ns/pid"),
      since: new Date().toISOString(),
      what: "training (the test process)",
    }),
  );
  a.canaries.set(path, await Deno.readTextFile(path));
}

/** A directory that looks like a finished run of this tool (metrics.json with its format tag). */
async function fakeRun(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    join(dir, "metrics.json"),
    JSON.stringify({ format: "webgpu-mlp.run/1" }),
  );
}

const CASES: Case[] = [
  // --- names are paths ----------------------------------------------------------------------
  {
    name: "a config file called ...json gives the run name '..': refused, even with --overwrite",
    setup: async (a) => {
      const c = config();
      delete c.name;
      return train(a, await writeConfig(a, "out/...json", c), "--overwrite");
    },
    expect: "the run name taken from the file name",
  },
  {
    name: "--name ..",
    setup: async (a) =>
      train(a, await writeConfig(a, "c.json", config()), "--name", "..", "--overwrite"),
    expect: "invalid format",
  },
  {
    name: "--name ../escape",
    setup: async (a) => train(a, await writeConfig(a, "c.json", config()), "--name", "../escape"),
    expect: "invalid format",
  },
  {
    name: "--name report.html (one of the tool's own files)",
    setup: async (a) => train(a, await writeConfig(a, "c.json", config()), "--name", "report.html"),
    expect: "one of the tool's own files",
  },
  {
    name: "--name x.partial (the tool's in-progress suffix)",
    setup: async (a) => train(a, await writeConfig(a, "c.json", config()), "--name", "x.partial"),
    expect: ".partial",
  },
  {
    name: "a variant named report.html",
    setup: async (a) =>
      train(a, await writeConfig(a, "c.json", config({ variants: [{ name: "report.html" }] }))),
    expect: "variants.0.name",
  },
  {
    name: "a variant named final",
    setup: async (a) =>
      train(a, await writeConfig(a, "c.json", config({ variants: [{ name: "final" }] }))),
    expect: "one of the tool's own files",
  },
  {
    name: "two variants whose names differ only in case",
    setup: async (a) =>
      train(
        a,
        await writeConfig(a, "c.json", config({ variants: [{ name: "A" }, { name: "a" }] })),
      ),
    expect: "is used twice",
  },
  {
    name: "a name of 3000 characters is cut short in the message",
    setup: async (a) =>
      train(a, await writeConfig(a, "c.json", config()), "--name", "n".repeat(3000)),
    expect: "must have <= 100 characters",
  },
  // --- --overwrite replaces only the tool's own directories ---------------------------------
  {
    name: "--overwrite on a user's directory of the run's name",
    setup: async (a) =>
      train(a, await writeConfig(a, "c.json", config({ name: "user" })), "--overwrite"),
    expect: "was not written by this tool",
  },
  {
    name: "--overwrite when the run's name is a symbolic link to the user's directory",
    setup: async (a) => {
      await Deno.symlink(join(a.out, "user"), join(a.out, "h"));
      return train(a, await writeConfig(a, "c.json", config()), "--overwrite");
    },
    expect: "symbolic link",
  },
  {
    name: "an existing run without --overwrite",
    setup: async (a) => {
      await fakeRun(join(a.out, "h"));
      return train(a, await writeConfig(a, "c.json", config()));
    },
    expect: "already exists",
  },
  {
    name: "a user's directory named like the run's in-progress directory",
    setup: async (a) => {
      await Deno.mkdir(join(a.out, "h.partial"));
      await Deno.writeTextFile(join(a.out, "h.partial", "mine.txt"), "x");
      a.canaries.set(join(a.out, "h.partial", "mine.txt"), "x");
      return train(a, await writeConfig(a, "c.json", config()), "--restart");
    },
    expect: "was not written by this tool",
  },
  {
    name: "a sweep over a user's directory, with --overwrite",
    setup: async (a) =>
      train(
        a,
        await writeConfig(
          a,
          "c.json",
          config({
            name: "user",
            search: { stages: [{ name: "s", space: { kind: "list", values: [0.1] } }] },
          }),
        ),
        "--overwrite",
      ),
    expect: "not a sweep directory of this tool",
  },
  {
    name: "variants over a user's directory, with --overwrite",
    setup: async (a) =>
      train(
        a,
        await writeConfig(a, "c.json", config({ name: "user", variants: [{ name: "v" }] })),
        "--overwrite",
      ),
    expect: "was not written by this tool",
  },
  {
    name: "--overwrite on a run of this tool into which the user put a file",
    setup: async (a) => {
      await fakeRun(join(a.out, "h"));
      await Deno.writeTextFile(join(a.out, "h", "thesis.tex"), "mine");
      a.canaries.set(join(a.out, "h", "thesis.tex"), "mine");
      return train(a, await writeConfig(a, "c.json", config()), "--overwrite");
    },
    expect: "thesis.tex, which the tool did not write",
  },
  {
    name: "--overwrite of a run over a sweep directory of the same name",
    setup: async (a) => {
      const { markOwned } = await import("../src/io/owned.ts");
      await markOwned(join(a.out, "h"), "sweep", "0".repeat(64));
      await Deno.writeTextFile(join(a.out, "h", "trials.jsonl"), "");
      a.canaries.set(join(a.out, "h", "trials.jsonl"), "");
      return train(a, await writeConfig(a, "c.json", config()), "--overwrite");
    },
    expect: "holds a sweep, not a run",
  },
  // --- one process per directory ------------------------------------------------------------
  {
    name: "a run directory locked by a live process",
    setup: async (a) => {
      await liveLock(a, "h.lock");
      return train(a, await writeConfig(a, "c.json", config()));
    },
    expect: "is held by process",
  },
  {
    name: "a sweep --overwrite while one of its shards runs",
    setup: async (a) => {
      await liveLock(a, "sw.shard-2-of-2.lock");
      const c = config({
        name: "sw",
        search: { stages: [{ name: "s", space: { kind: "list", values: [0.1, 0.2] } }] },
      });
      return train(a, await writeConfig(a, "c.json", c), "--overwrite", "--shard", "1/2");
    },
    expect: "--overwrite would delete its results",
  },
  {
    name: "an unsharded sweep while one of its shards runs",
    setup: async (a) => {
      await liveLock(a, "sw.shard-1-of-2.lock");
      const c = config({
        name: "sw",
        search: { stages: [{ name: "s", space: { kind: "list", values: [0.1, 0.2] } }] },
      });
      return train(a, await writeConfig(a, "c.json", c));
    },
    expect: "an unsharded run would train its trials too",
  },
  // --- preflight ----------------------------------------------------------------------------
  // the binding limit differs between adapters (llvmpipe 128 MiB, SwiftShader 1 GiB): these cases
  // are sized from the adapter's own limit, so that each one exceeds it everywhere
  ...(BINDING_LIMIT < 256 * 2 ** 20
    ? [{
      name: "hidden [8192, 8192] exceeds the binding limit (W2 is 256 MiB)",
      setup: async (a: Area) =>
        train(a, await writeConfig(a, "c.json", config({ model: { hidden: [8192, 8192] } }))),
      expect: /W2 .* needs 256 MiB, more than this adapter's max\w+ of .*at most \d+ units fits/,
    }]
    : []),
  {
    name: "a layer whose activations exceed the binding limit",
    setup: async (a) => {
      // batch B of all 5 batches (minus 1000), hidden width h: B·h·4 bytes > the limit
      const B = 49000, h = Math.min(8192, Math.max(4096, Math.ceil(BINDING_LIMIT / (4 * B)) + 4));
      return train(
        a,
        await writeConfig(
          a,
          "c.json",
          config({
            data: { train: [1, 2, 3, 4, 5], val: { holdout: 1000 }, test: false },
            model: { hidden: [h] },
            train: { ...config().train as object, batchSize: B },
          }),
        ),
      );
    },
    expect: /layer 1's activations \(49000 rows .* more than this adapter's max\w+ of .* fits/,
  },
  ...(BINDING_LIMIT < 49000 * 3072 * 4
    ? [{
      name: "a batch of 49000 inputs exceeds the binding limit",
      setup: async (a: Area) =>
        train(
          a,
          await writeConfig(
            a,
            "c.json",
            config({
              data: { train: [1, 2, 3, 4, 5], val: { holdout: 1000 }, test: false },
              train: { ...config().train as object, batchSize: 49000 },
            }),
          ),
        ),
      expect: /the inputs \(49000 rows.*train\.batchSize of at most \d+ fits/,
    }]
    : []),
  {
    name: "--out pointing at a file",
    setup: async (a) => {
      const c = await writeConfig(a, "c.json", config());
      return ["--config", c, "--out", join(a.out, "canary.txt")];
    },
    expect: "is not a directory",
  },
  {
    name: "--out under a file",
    setup: async (a) => {
      const c = await writeConfig(a, "c.json", config());
      return ["--config", c, "--out", join(a.out, "canary.txt", "runs")];
    },
    expect: "is not a directory",
  },
  {
    name: "--out that cannot be written (/proc)",
    setup: async (
      a,
    ) => ["--config", await writeConfig(a, "c.json", config()), "--out", "/proc/webgpu-mlp-out"],
    expect: "cannot be written",
  },
  {
    name: "a symlink loop as --data",
    setup: async (a) => {
      await Deno.symlink(join(a.top, "loop2"), join(a.top, "loop1"));
      await Deno.symlink(join(a.top, "loop1"), join(a.top, "loop2"));
      return train(a, await writeConfig(a, "c.json", config()), "--data", join(a.top, "loop1"));
    },
    expect: "loop1",
  },
  {
    name: "a symlink loop in place of a batch file",
    setup: async (a) => {
      const d = join(a.top, "data");
      await Deno.mkdir(d);
      await Deno.copyFile(join(DATA, "data_batch_2.bin"), join(d, "data_batch_1.bin"));
      await Deno.symlink(join(d, "x"), join(d, "data_batch_2.bin"));
      await Deno.symlink(join(d, "data_batch_2.bin"), join(d, "x"));
      const c = config({ data: { train: [1], val: { batch: 2 }, test: false } });
      return train(a, await writeConfig(a, "c.json", c), "--data", d);
    },
    expect: "data_batch_2.bin",
  },
  {
    name: "--data pointing at a file",
    setup: async (a) =>
      train(a, await writeConfig(a, "c.json", config()), "--data", join(a.top, "canary.txt")),
    expect: "canary.txt",
  },
  {
    name: "a truncated batch file",
    setup: async (a) => {
      const d = join(a.top, "data");
      await Deno.mkdir(d);
      const bytes = await Deno.readFile(join(DATA, "data_batch_1.bin"));
      await Deno.writeFile(join(d, "data_batch_1.bin"), bytes.subarray(0, 3073 * 10 + 7));
      return train(a, await writeConfig(a, "c.json", config()), "--data", d);
    },
    expect: "whole number of 3073-byte records",
  },
  {
    name: "a constant schedule of 10^12 epochs",
    setup: async (a) =>
      train(
        a,
        await writeConfig(
          a,
          "c.json",
          config({
            train: { batchSize: 100, schedule: { kind: "constant", eta: 0.01, epochs: 1e12 } },
          }),
        ),
      ),
    expect: "update steps; at most",
  },
  {
    name: "evaluating every step of a 2-million-step schedule",
    setup: async (a) =>
      train(
        a,
        await writeConfig(
          a,
          "c.json",
          config({
            train: {
              batchSize: 100,
              evalEvery: 1,
              schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 1e6, cycles: 1 },
            },
          }),
        ),
      ),
    expect: "evaluation points",
  },
  {
    name: "a holdout that leaves no training samples",
    setup: async (a) =>
      train(
        a,
        await writeConfig(a, "c.json", config({ data: { train: [1], val: { holdout: 10000 } } })),
      ),
    expect: "leaves no training samples",
  },
  // --- config files -------------------------------------------------------------------------
  {
    name: "--config /dev/zero",
    setup: (a) => ["--config", "/dev/zero", "--out", a.out],
    expect: "not a regular file",
  },
  {
    name: "--config a directory",
    setup: (a) => ["--config", a.out, "--out", a.out],
    expect: "not a regular file",
  },
  {
    name: "a config nested 5000 deep",
    setup: async (a) =>
      train(a, await writeConfig(a, "c.json", `{"a":${"[".repeat(5000)}${"]".repeat(5000)}}`)),
    expect: "deeper than",
  },
  {
    name: "a config value of 900 kB is not echoed back",
    setup: async (a) =>
      train(a, await writeConfig(a, "c.json", config({ seed: "x".repeat(900_000) }))),
    expect: "characters",
  },
  {
    name: "a config of 2 MiB",
    setup: async (a) =>
      train(a, await writeConfig(a, "c.json", JSON.stringify(config()) + " ".repeat(2 * 2 ** 20))),
    expect: "MiB",
  },
  {
    name: "a config that is not JSON",
    setup: async (a) => train(a, await writeConfig(a, "c.json", "{ name: h }")),
    expect: "not valid JSON",
  },
  {
    name: "an unknown key",
    setup: async (a) => train(a, await writeConfig(a, "c.json", config({ nmae: "x" }))),
    expect: "unknown key",
  },
  // --- flags --------------------------------------------------------------------------------
  {
    name: "an unknown flag",
    setup: async (a) => train(a, await writeConfig(a, "c.json", config()), "--resume"),
    expect: "unknown flag",
  },
  {
    name: "--seed that is not an integer",
    setup: async (a) => train(a, await writeConfig(a, "c.json", config()), "--seed", "1.5"),
    expect: "--seed",
  },
  {
    name: "--shard 5/4",
    setup: async (a) =>
      train(
        a,
        await writeConfig(
          a,
          "c.json",
          config({ search: { stages: [{ name: "s", space: { kind: "list", values: [0.1] } }] } }),
        ),
        "--shard",
        "5/4",
      ),
    expect: "--shard 5/4",
  },
  {
    name: "WEBGPU_MLP_SNAPSHOT_SECONDS that is not a number",
    setup: async (a) => train(a, await writeConfig(a, "c.json", config())),
    env: { WEBGPU_MLP_SNAPSHOT_SECONDS: "soon" },
    expect: "WEBGPU_MLP_SNAPSHOT_SECONDS",
  },
  {
    name: "WEBGPU_MLP_TAIL that is neither 0 nor 1",
    setup: async (a) => train(a, await writeConfig(a, "c.json", config())),
    env: { WEBGPU_MLP_TAIL: "off" },
    expect: "WEBGPU_MLP_TAIL",
  },
  // --- files read back ----------------------------------------------------------------------
  {
    name: "a damaged snapshot of an interrupted run",
    setup: async (a) => {
      const c = await writeConfig(a, "c.json", config());
      const partial = join(a.out, "h.partial");
      await Deno.mkdir(partial);
      // the marker of the same config comes from a real (tiny) preflight-free write below
      const { configHash } = await import("../src/train/run.ts");
      const { loadConfig } = await import("../src/config.ts");
      const { markOwned } = await import("../src/io/owned.ts");
      await markOwned(partial, "partial", await configHash(await loadConfig(c, { out: a.out })));
      await Deno.writeFile(join(partial, "snapshot.safetensors"), new Uint8Array([1, 2, 3]));
      return train(a, c);
    },
    expect: "--restart",
  },
  {
    name: "an interrupted run of a different config",
    setup: async (a) => {
      const partial = join(a.out, "h.partial");
      const { markOwned } = await import("../src/io/owned.ts");
      await markOwned(partial, "partial", "0".repeat(64));
      return train(a, await writeConfig(a, "c.json", config()));
    },
    expect: "holds an interrupted run of a different config",
  },
  {
    name: "--merge of a shard line with the right tag but a wrong field",
    script: "sweep.ts",
    setup: async (a) => {
      const dir = join(a.out, "sw");
      await Deno.mkdir(dir);
      const { parseConfig } = await import("../src/config.ts");
      const cfg = parseConfig(
        config({
          name: "sw",
          out: a.out,
          search: { stages: [{ name: "s", space: { kind: "list", values: [0.1, 0.2] } }] },
        }),
        "test",
      );
      await Deno.writeTextFile(join(dir, "sweep.config.json"), JSON.stringify(cfg));
      await Deno.writeTextFile(
        join(dir, "trials.shard-1-of-2.jsonl"),
        JSON.stringify({
          format: "webgpu-mlp.trial/1",
          id: "s/0",
          stage: "s",
          index: 0,
          lambda: "x",
        }) + "\n",
      );
      a.canaries.set(
        join(dir, "trials.shard-1-of-2.jsonl"),
        await Deno.readTextFile(join(dir, "trials.shard-1-of-2.jsonl")),
      );
      return ["--merge", dir];
    },
    expect: /trials\.shard-1-of-2\.jsonl:1/,
  },
  {
    name: "--merge of a directory that is not a sweep",
    script: "sweep.ts",
    setup: (a) => ["--merge", join(a.out, "user")],
    expect: "is not a sweep directory",
  },
  // --- eval ---------------------------------------------------------------------------------
  {
    name: "eval of a checkpoint that does not exist",
    script: "eval.ts",
    setup: (a) => ["--checkpoint", join(a.out, "nope.safetensors")],
    expect: "not found",
  },
  {
    name: "eval of a file that is not a checkpoint",
    script: "eval.ts",
    setup: (a) => ["--checkpoint", join(a.out, "canary.txt")],
    expect: "canary.txt",
  },
];

Deno.test({
  name: `hostile inputs: ${CASES.length} cases, each one error line, nothing trained, nothing lost`,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    assert.ok(CASES.length >= 40, `at least 40 cases (${CASES.length})`);
    // run four at a time; report each as its own step
    const outcomes = new Map<string, Promise<{ a: Area; r: Outcome }>>();
    const queue = [...CASES];
    const running: Promise<void>[] = [];
    const start = (c: Case) => {
      const p = (async () => {
        const a = await area();
        const args = c.setup ? await c.setup(a) : [];
        const r = await run(c.script ?? "train.ts", args, c.cwd?.(a) ?? a.top, c.env);
        return { a, r };
      })();
      outcomes.set(c.name, p);
      return p.then(() => {}, () => {});
    };
    while (queue.length || running.length) {
      while (queue.length && running.length < 4) {
        const pr = start(queue.shift()!);
        running.push(pr);
        pr.then(() => running.splice(running.indexOf(pr), 1));
      }
      await Promise.race(running);
    }
    for (const c of CASES) {
      await t.step(c.name, async () => {
        const { a, r } = await outcomes.get(c.name)!;
        const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
        const what = `${c.name}: exit ${r.code}, stderr ${JSON.stringify(r.stderr.slice(0, 600))}`;
        assert.equal(r.code, 1, what);
        assert.equal(lines.length, 1, what);
        assert.match(lines[0], /^error: /, what);
        assert.ok(lines[0].length <= 500, `${what}: the line is ${lines[0].length} characters`);
        assert.doesNotMatch(r.stderr, /\n\s+at /, what);
        if (typeof c.expect === "string") assert.ok(lines[0].includes(c.expect), what);
        else assert.match(lines[0], c.expect, what);
        assert.doesNotMatch(r.stdout, /^step /m, `${c.name}: it trained`);
        await checkCanaries(a, c.name);
        await Deno.remove(a.top, { recursive: true });
      });
    }
  },
});
