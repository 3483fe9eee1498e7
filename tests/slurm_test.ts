/**
 * The Slurm array job, run for real: `experiments/jobs/sweep.slurm` is submitted with sbatch as a
 * 2-task array to a one-node Slurm cluster the test starts on this machine, each task trains its
 * shard of a tiny 4-trial sweep, and `deno task sweep --merge` must then hold every trial once.
 *
 * The cluster lives in a temporary directory: its own munge key and socket, a generated
 * slurm.conf used through SLURM_CONF (the system's /etc/slurm and /etc/munge are not touched),
 * free ports, state and spool directories. The test stops the munged, slurmctld and slurmd it
 * started (and any job process they left), and removes the directory, pass or fail.
 *
 * Needs slurm-wlm and munge. When they are missing and the test runs as root with apt-get (CI on
 * Debian/Ubuntu), it installs them (without starting their system services); otherwise it says so
 * in one line and is ignored.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveDataDir } from "../src/data/data_dir.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const JOB = "experiments/jobs/sweep.slurm";
const PACKAGES = ["slurm-wlm", "munge"];
const TOOLS = ["sbatch", "squeue", "scontrol", "scancel", "sinfo", "slurmctld", "slurmd", "munged"];
const SHARDS = 2;
const TRIALS = 4;

/** Absolute path of an executable on PATH (or in the sbin directories), or undefined. */
function which(name: string): string | undefined {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin", "/usr/bin"];
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      const st = Deno.statSync(join(dir, name));
      if (st.isFile && ((st.mode ?? 0) & 0o111)) return join(dir, name);
    } catch { /* not there */ }
  }
  return undefined;
}

const missing = () => TOOLS.filter((t) => !which(t));

/** Why the test cannot run here, or null. */
function skipReason(): string | null {
  const absent = missing();
  if (absent.length === 0) return null;
  const what = `${absent.join(", ")} not found (packages ${PACKAGES.join(" ")})`;
  const how = `run it as root on Debian/Ubuntu, where it installs them, or first run ` +
    `apt-get install --no-install-recommends ${PACKAGES.join(" ")}`;
  if (Deno.build.os !== "linux") return `${what}, and this is not Linux`;
  if (Deno.uid() !== 0) return `${what}, and this is not root, so it cannot install them: ${how}`;
  if (!which("apt-get")) return `${what}, and there is no apt-get to install them: ${how}`;
  return null;
}

const SKIP = skipReason();
if (SKIP) console.warn(`slurm_test: Slurm array job test skipped: ${SKIP}`);

const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tail = (text: string, lines = 30) => text.trimEnd().split("\n").slice(-lines).join("\n");

function readOr(path: string, fallback = "(no file)"): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return fallback;
  }
}

/** Run a command to completion; stdout and stderr together in `out`. */
async function sh(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(cmd, { args, ...opts, stdout: "piped", stderr: "piped" })
    .output();
  return { code: r.code, out: decode(r.stdout) + decode(r.stderr) };
}

/** sh, and fail with the command's output unless it exits with 0. */
async function must(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<string> {
  const r = await sh(cmd, args, opts);
  assert.equal(r.code, 0, `${cmd} ${args.join(" ")} exited with ${r.code}:\n${tail(r.out)}`);
  return r.out;
}

/** apt-get install the packages, updating the package lists first when that fails. */
async function install(): Promise<void> {
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const args = ["install", "-y", "-q", "--no-install-recommends", ...PACKAGES];
  // The packages' postinst scripts start munged, slurmctld and slurmd as system services where
  // a service manager runs; the test wants only its own daemons, and nothing left running
  // afterwards. A policy-rc.d that denies every start (the Debian convention, also what Docker
  // images ship) stops that, while the install lasts, unless one is there already.
  const policy = "/usr/sbin/policy-rc.d";
  let wrote = false;
  try {
    Deno.writeTextFileSync(
      policy,
      "#!/bin/sh\n# tests/slurm_test.ts, while it installs slurm-wlm and munge\nexit 101\n",
      { createNew: true, mode: 0o755 },
    );
    wrote = true;
  } catch { /* one exists: it decides */ }
  try {
    const t0 = performance.now();
    let r = await sh("apt-get", args, { env });
    if (r.code !== 0) {
      await must("apt-get", ["update", "-q"], { env });
      r = await sh("apt-get", args, { env });
    }
    assert.equal(r.code, 0, `apt-get install ${PACKAGES.join(" ")} failed:\n${tail(r.out)}`);
    console.log(
      `slurm_test: installed ${PACKAGES.join(" ")} in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
  } finally {
    if (wrote) Deno.removeSync(policy);
  }
  assert.deepEqual(missing(), [], "every Slurm and munge tool is there after the install");
}

/** A port nobody listens on now (the default 6817/6818 may belong to a real cluster). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

interface Daemon {
  name: string;
  child: Deno.ChildProcess;
  log: string;
  exited: boolean;
}

/** Start a daemon in the foreground, its stdout and stderr appended to `<dir>/<name>.log`. */
function startDaemon(dir: string, name: string, args: string[], env: Record<string, string>) {
  const log = join(dir, `${name}.log`);
  // exec: the pid of the child is the daemon's own
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", 'log=$1; shift; exec "$@" >>"$log" 2>&1', "sh", log, which(name)!, ...args],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const d: Daemon = { name, child, log, exited: false };
  child.status.then(() => d.exited = true);
  return d;
}

/** SIGTERM, then SIGKILL after 10 s; waits for it to exit. */
async function stopDaemon(d: Daemon): Promise<void> {
  const kill = (sig: Deno.Signal) => {
    try {
      d.child.kill(sig);
    } catch { /* already gone */ }
  };
  if (!d.exited) kill("SIGTERM");
  for (let i = 0; i < 100 && !d.exited; i++) await sleep(100);
  if (!d.exited) kill("SIGKILL");
  await d.child.status;
}

/** Processes whose environment holds `marker` (only this test's daemons and jobs carry it). */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/environ`).split("\0").includes(marker)) {
        pids.push(Number(e.name));
      }
    } catch { /* gone, or not readable */ }
  }
  return pids;
}

async function until<T>(
  what: string,
  seconds: number,
  probe: () => Promise<T | undefined>,
  explain: () => string,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not after ${seconds} s\n${explain()}`);
    await sleep(250);
  }
}

/** One line of `scontrol -o show job`, the fields the test reads. */
interface Task {
  task: string;
  state: string;
  exit: string;
  reason: string;
}

const TERMINAL = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "NODE_FAIL",
  "OUT_OF_MEMORY",
  "PREEMPTED",
  "BOOT_FAIL",
  "DEADLINE",
]);

Deno.test({
  name: "sweep.slurm as a 2-task array on a real one-node Slurm: every trial once after --merge",
  ignore: SKIP !== null,
  fn: async () => {
    if (missing().length > 0) await install();
    const t0 = performance.now();
    const dir = await Deno.makeTempDir({ prefix: "slurm_test_" });
    // munged wants every directory above its socket searchable by all
    await Deno.chmod(dir, 0o755);
    const conf = join(dir, "slurm.conf");
    const env = { SLURM_CONF: conf };
    const daemons: Daemon[] = [];
    let jobId: string | undefined;
    const logs = () =>
      daemons.map((d) => `--- ${d.name}.log\n${tail(readOr(d.log), 15)}`).join("\n");
    try {
      // munge: a key of this cluster's own, a socket in the directory
      const key = join(dir, "munge.key"), socket = join(dir, "munge.socket");
      Deno.writeFileSync(key, crypto.getRandomValues(new Uint8Array(128)), { mode: 0o600 });
      daemons.push(startDaemon(dir, "munged", [
        "--foreground",
        `--key-file=${key}`,
        `--socket=${socket}`,
        `--pid-file=${join(dir, "munged.pid")}`,
        `--seed-file=${join(dir, "munged.seed")}`,
        `--log-file=${join(dir, "munged.file.log")}`,
      ], env));
      await until("munged's socket", 20, () => {
        if (daemons[0].exited) throw new Error(`munged exited\n${logs()}`);
        try {
          return Promise.resolve(Deno.statSync(socket).isSocket ? true : undefined);
        } catch {
          return Promise.resolve(undefined);
        }
      }, logs);

      // slurm.conf: this machine as it is (slurmd -C: CPUs, sockets, cores, memory)
      const node = (await must(which("slurmd")!, ["-C"])).split("\n").find((l) =>
        l.startsWith("NodeName=")
      );
      assert.ok(node, "slurmd -C prints a NodeName line");
      const host = /^NodeName=(\S+)/.exec(node)![1];
      for (const d of ["state", "spool"]) await Deno.mkdir(join(dir, d));
      await Deno.writeTextFile(
        conf,
        [
          "ClusterName=slurmtest",
          `SlurmctldHost=${host}(127.0.0.1)`,
          `SlurmctldPort=${freePort()}`,
          `SlurmdPort=${freePort()}`,
          "SlurmUser=root",
          "SlurmdUser=root",
          "AuthType=auth/munge",
          `AuthInfo=socket=${socket}`,
          "CredType=cred/munge",
          `StateSaveLocation=${join(dir, "state")}`,
          `SlurmdSpoolDir=${join(dir, "spool")}`,
          `SlurmctldPidFile=${join(dir, "slurmctld.pid")}`,
          `SlurmdPidFile=${join(dir, "slurmd.pid")}`,
          // no cgroups: processes tracked through /proc, tasks not bound (works in containers)
          "ProctrackType=proctrack/linuxproc",
          "TaskPlugin=task/none",
          "JobAcctGatherType=jobacct_gather/none",
          "AccountingStorageType=accounting_storage/none",
          "JobCompType=jobcomp/none",
          "SelectType=select/cons_tres",
          "SelectTypeParameters=CR_Core",
          "SchedulerType=sched/builtin",
          "MpiDefault=none",
          "MailProg=/bin/true",
          "ReturnToService=2",
          // finished jobs stay visible to scontrol for 10 minutes (there is no accounting database)
          "MinJobAge=600",
          `${node.trim()} NodeAddr=127.0.0.1 State=UNKNOWN`,
          `PartitionName=test Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
          "",
        ].join("\n"),
      );
      daemons.push(startDaemon(dir, "slurmctld", ["-D"], env));
      daemons.push(startDaemon(dir, "slurmd", ["-D"], env));
      await until("node idle in sinfo", 60, async () => {
        if (daemons.some((d) => d.exited)) throw new Error(`a daemon exited\n${logs()}`);
        const r = await sh("sinfo", ["-h", "-N", "-n", host, "-o", "%T"], { env });
        return r.code === 0 && r.out.trim() === "idle" ? true : undefined;
      }, logs);
      const up = performance.now();

      // the sweep: 4 λ, one training batch, 200 images held out, 40 steps
      const out = join(dir, "runs");
      const config = join(dir, "sweep.json");
      await Deno.writeTextFile(
        config,
        JSON.stringify({
          name: "sl",
          out,
          seed: 5,
          data: { dir: resolveDataDir(), train: [1], val: { holdout: 200 }, test: false },
          model: { hidden: [8] },
          train: {
            batchSize: 100,
            schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 20, cycles: 1 },
            evalEvery: 20,
          },
          search: {
            stages: [{ name: "a", space: { kind: "grid", min: 1e-4, max: 1e-1, count: TRIALS } }],
          },
        }),
      );
      // the job file's defaults (4 CPUs, a GPU, 2 h, logs in runs/) overridden on the command line
      const submitted = await must("sbatch", [
        "--parsable",
        `--array=1-${SHARDS}`,
        "--cpus-per-task=1",
        "--gres=none",
        "--time=00:10:00",
        `--output=${join(dir, "slurm-%A_%a.log")}`,
        `--export=ALL,CONFIG=${config},DENO=${Deno.execPath()}`,
        JOB,
      ], { env, cwd: ROOT });
      jobId = submitted.trim().split(";")[0];
      assert.match(jobId, /^\d+$/, `sbatch --parsable printed ${submitted}`);
      const jobLog = (i: number) => join(dir, `slurm-${jobId}_${i}.log`);
      const jobLogs = () =>
        Array.from(
          { length: SHARDS },
          (_, i) => `--- task ${i + 1}\n${tail(readOr(jobLog(i + 1)), 15)}`,
        ).join("\n") + "\n" + logs();

      let tasks: Task[] = [];
      await until(`job ${jobId}'s ${SHARDS} tasks finished`, 300, async () => {
        const r = await sh("scontrol", ["-o", "show", "job", jobId!], { env });
        if (r.code !== 0) return undefined;
        tasks = r.out.trim().split("\n").map((l) => ({
          task: /\bArrayTaskId=(\S+)/.exec(l)?.[1] ?? "?",
          state: /\bJobState=(\S+)/.exec(l)?.[1] ?? "?",
          exit: /\bExitCode=(\S+)/.exec(l)?.[1] ?? "?",
          reason: /\bReason=(\S+)/.exec(l)?.[1] ?? "?",
        }));
        return tasks.length === SHARDS && tasks.every((t) => TERMINAL.has(t.state))
          ? true
          : undefined;
      }, () => JSON.stringify(tasks) + "\n" + jobLogs());
      const ran = performance.now();
      for (const t of tasks) {
        assert.ok(
          t.state === "COMPLETED" && t.exit === "0:0",
          `task ${t.task}: ${t.state}, exit ${t.exit}, reason ${t.reason}\n${jobLogs()}`,
        );
      }

      // each task trained its share, and only that
      const sweep = join(out, "sl");
      const ids = (file: string) =>
        readOr(file, "").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
      for (let i = 1; i <= SHARDS; i++) {
        const log = readOr(jobLog(i));
        assert.match(
          log,
          new RegExp(
            `${TRIALS} trials, ${TRIALS / SHARDS} on shard ${i}/${SHARDS}, 0 already done`,
          ),
          `task ${i}'s log:\n${log}`,
        );
        assert.ok(log.includes(`trials.shard-${i}-of-${SHARDS}.jsonl`), log);
        const mine = ids(join(sweep, `trials.shard-${i}-of-${SHARDS}.jsonl`));
        assert.deepEqual(
          mine.map((t) => t.id).sort(),
          Array.from({ length: TRIALS }, (_, k) => `a/${k}`).filter((_, k) => k % SHARDS === i - 1),
          `shard ${i}'s trials`,
        );
        assert.ok(mine.every((t) => t.shard === `${i}/${SHARDS}`));
      }

      const merge = await sh(Deno.execPath(), ["run", "-A", "src/cli/sweep.ts", "--merge", sweep], {
        cwd: ROOT,
      });
      assert.equal(merge.code, 0, merge.out);
      const merged = ids(join(sweep, "trials.jsonl"));
      assert.equal(merged.length, TRIALS, `trials.jsonl holds ${merged.length} lines`);
      assert.deepEqual(
        merged.map((t) => t.id).sort(),
        Array.from({ length: TRIALS }, (_, k) => `a/${k}`),
      );
      assert.ok(merged.every((t) => t.status === "completed"), JSON.stringify(merged));
      const summary = JSON.parse(await Deno.readTextFile(join(sweep, "sweep.json")));
      assert.deepEqual(
        summary.stages.map((s: { name: string; trials: number; completed: number }) => [
          s.name,
          s.trials,
          s.completed,
        ]),
        [["a", TRIALS, TRIALS]],
      );
      console.log(
        `slurm_test: cluster up in ${((up - t0) / 1000).toFixed(1)} s, array job ran in ${
          ((ran - up) / 1000).toFixed(1)
        } s, merged in ${((performance.now() - ran) / 1000).toFixed(1)} s`,
      );
    } finally {
      if (jobId && daemons.every((d) => !d.exited)) {
        await sh("scancel", [jobId], { env });
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          const r = await sh("squeue", ["-h", "-j", jobId], { env });
          if (r.code !== 0 || r.out.trim() === "") break;
          await sleep(250);
        }
      }
      for (const d of [...daemons].reverse()) await stopDaemon(d);
      // Job steps (slurmstepd and the job's processes) outlive slurmd by design: whatever still
      // carries this cluster's SLURM_CONF is this test's and goes too.
      const marker = `SLURM_CONF=${conf}`;
      let left = processesWith(marker);
      for (const pid of left) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      for (let i = 0; i < 50 && left.length > 0; i++) {
        await sleep(100);
        left = processesWith(marker);
      }
      await Deno.remove(dir, { recursive: true });
      assert.deepEqual(left, [], "no process of the test's cluster is left");
    }
  },
});
