/**
 * `deno task train --config FILE [flags]`: train as the config says and write runs/<name>/.
 * A config with a `search` block is a λ sweep (`deno task sweep` is the same command, which also
 * merges sharded sweeps).
 *
 * @module
 */

import { loadConfig } from "../config.ts";
import { UserError } from "../errors.ts";
import { runExperiment } from "../train/run.ts";
import { runVariants } from "../train/variants.ts";
import { resolveShard } from "../sweep/shard.ts";
import { mergeSweep, runSweep } from "../sweep/sweep.ts";
import { parseFlags, runMain } from "./main.ts";
import { onStopSignals } from "./signals.ts";

/** Usage text of the command. */
export const USAGE = `usage: deno task train --config FILE [flags]
       deno task sweep --config FILE [--shard i/n] [flags]
       deno task sweep --merge DIR

Train a multi-layer perceptron on CIFAR-10 with WebGPU as FILE (JSON) says; the run goes to
<out>/<name>/ (metrics.json, weights.safetensors, report.html). A config with a "search" block
is a λ sweep: its trials train as populations of models at once, results go to
<out>/<name>/trials.jsonl and sweep.json, and running the same command again resumes it.

  --config FILE   experiment config (see experiments/ and the README's config reference)
  --name NAME     run name (default: the config's name, else the file name)
  --out DIR       parent directory of runs (default: runs)
  --data DIR      CIFAR-10 directory (default: $CIFAR10_DIR or the usual places)
  --lambda X      L2 strength λ (single runs)
  --seed N        seed of initialisation and shuffles
  --overwrite     replace an existing run or sweep directory (only one this tool wrote)
  --restart       discard the snapshot of an interrupted run (or population) and start afresh
  --no-report     do not write report.html
  --shard i/n     train the i-th of n shares of a sweep's trials (also read from Slurm's
                  SLURM_ARRAY_TASK_ID/COUNT, or Kubernetes' JOB_COMPLETION_INDEX with --shards)
  --shards N      number of shards, for Kubernetes Indexed Jobs (or SWEEP_SHARDS)
  --merge DIR     merge the shards' results in sweep directory DIR into trials.jsonl + sweep.json
  -h, --help      show this help`;

function number(flag: string, v: unknown, integer = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UserError(`--${flag} must be ${integer ? "an integer" : "a number"}, got "${v}"`);
  }
  return n;
}

/** Run the command with the given arguments; `sweep` insists on a sweep config. */
export async function main(args: string[], sweep = false): Promise<void> {
  const { values } = parseFlags(args, {
    config: { type: "string" },
    name: { type: "string" },
    out: { type: "string" },
    data: { type: "string" },
    lambda: { type: "string" },
    seed: { type: "string" },
    overwrite: { type: "boolean" },
    restart: { type: "boolean" },
    "no-report": { type: "boolean" },
    shard: { type: "string" },
    shards: { type: "string" },
    merge: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (typeof values.merge === "string") {
    if (values.config !== undefined) {
      throw new UserError("--merge DIR takes no --config: the directory knows its sweep");
    }
    await mergeSweep(values.merge);
    return;
  }
  if (typeof values.config !== "string") {
    throw new UserError(
      `--config FILE is required (e.g. --config experiments/${sweep ? "coarse" : "cyclic-1"}.json)`,
    );
  }
  const cfg = await loadConfig(values.config, {
    name: values.name as string | undefined,
    out: values.out as string | undefined,
    data: values.data as string | undefined,
    lambda: number("lambda", values.lambda),
    seed: number("seed", values.seed, true),
  });
  const shards = number("shards", values.shards, true);
  if (shards !== undefined && shards < 1) {
    throw new UserError(`--shards must be at least 1, got ${shards}`);
  }
  const shard = cfg.search ? resolveShard(values.shard as string | undefined, shards) : null;
  if (!cfg.search) {
    if (sweep) {
      throw new UserError(
        `${values.config} has no "search" block: it is a single run (deno task train)`,
      );
    }
    if (values.shard !== undefined) {
      throw new UserError(`--shard applies to sweeps; ${values.config} is a single run`);
    }
  }
  if (cfg.search && values.lambda !== undefined) {
    throw new UserError(`--lambda does not apply to a sweep: λ comes from its search stages`);
  }
  const stop = onStopSignals();
  try {
    const common = {
      overwrite: !!values.overwrite,
      restart: !!values.restart,
      report: !values["no-report"],
      signal: stop.signal,
      snapshotSeconds: snapshotSeconds(),
    };
    const interrupted = cfg.search
      ? (await runSweep(cfg, { ...common, shard })) === null && stop.signal.aborted
      : cfg.variants
      ? (await runVariants(cfg, common)).interrupted
      : (await runExperiment(cfg, common)).interrupted;
    // a run that finished although a stop was asked for ends normally
    if (interrupted) Deno.exitCode = stop.exitCode() ?? 130;
  } finally {
    stop.dispose();
  }
}

/** `WEBGPU_MLP_SNAPSHOT_SECONDS`: seconds of training between timed snapshots (default 30). */
function snapshotSeconds(): number | undefined {
  const v = Deno.env.get("WEBGPU_MLP_SNAPSHOT_SECONDS");
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    throw new UserError(`WEBGPU_MLP_SNAPSHOT_SECONDS="${v}" must be a positive number of seconds`);
  }
  return n;
}

if (import.meta.main) runMain(() => main(Deno.args));
