/**
 * Sharding a sweep across machines: shard i of n trains the trials whose index within their stage
 * is ≡ i (mod n). The shard comes from `--shard i/n`, or from a Slurm array job
 * (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN) or a Kubernetes Indexed Job
 * (JOB_COMPLETION_INDEX, with the count from `--shards N` or SWEEP_SHARDS).
 *
 * @module
 */

import { UserError } from "../errors.ts";

/** One shard: `index` is 0-based; `label` is the 1-based `i/n` users write. */
export interface Shard {
  /** This shard's number, 0-based. */
  index: number;
  /** Number of shards. */
  count: number;
  /** `i/n` with i 1-based, as users write it. */
  label: string;
}

function make(index: number, count: number): Shard {
  return { index, count, label: `${index + 1}/${count}` };
}

/** Parse `i/n` (1 ≤ i ≤ n). */
export function parseShard(spec: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  if (!m) {
    throw new UserError(`--shard "${spec}" is not i/n (e.g. --shard 2/4 for the second of four)`);
  }
  const i = Number(m[1]), n = Number(m[2]);
  if (n < 1) {
    throw new UserError(`--shard ${spec}: there must be at least 1 shard (i/n with 1 ≤ i ≤ n)`);
  }
  if (i < 1 || i > n) {
    throw new UserError(
      `--shard ${spec}: the shard number must be between 1 and ${n} (i/n with 1 ≤ i ≤ n)`,
    );
  }
  return make(i - 1, n);
}

function envInt(env: Record<string, string | undefined>, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UserError(`${name}="${v}" is not a whole number`);
  return n;
}

/**
 * The shard of this process: the flag wins; else Slurm's array variables; else Kubernetes'
 * JOB_COMPLETION_INDEX with a count; else none (the whole sweep).
 */
export function resolveShard(
  flag: string | undefined,
  shardsFlag: number | undefined,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Shard | null {
  if (flag !== undefined) return parseShard(flag);
  const slurmId = envInt(env, "SLURM_ARRAY_TASK_ID");
  if (slurmId !== undefined) {
    const count = envInt(env, "SLURM_ARRAY_TASK_COUNT");
    if (count === undefined || count < 1) {
      throw new UserError(
        "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: submit with sbatch --array",
      );
    }
    const index = slurmId - (envInt(env, "SLURM_ARRAY_TASK_MIN") ?? 0);
    if (index < 0 || index >= count) {
      throw new UserError(
        `SLURM_ARRAY_TASK_ID ${slurmId} is outside the array (min ${
          env.SLURM_ARRAY_TASK_MIN ?? 0
        }, count ${count}): use a contiguous --array range`,
      );
    }
    return make(index, count);
  }
  const k8s = envInt(env, "JOB_COMPLETION_INDEX");
  if (k8s !== undefined) {
    const count = shardsFlag ?? envInt(env, "SWEEP_SHARDS");
    if (count === undefined || count < 1) {
      throw new UserError(
        "JOB_COMPLETION_INDEX is set but the shard count is not: pass --shards N (= the Job's completions) or set SWEEP_SHARDS",
      );
    }
    if (k8s >= count) {
      throw new UserError(`JOB_COMPLETION_INDEX ${k8s} is not below the shard count ${count}`);
    }
    return make(k8s, count);
  }
  if (shardsFlag !== undefined) {
    // a count with no index would train every trial, as if unsharded, on each of N machines
    throw new UserError(
      `--shards ${shardsFlag} needs the shard's index from the Job (JOB_COMPLETION_INDEX, set by ` +
        "an Indexed Kubernetes Job): outside one, pass --shard i/n",
    );
  }
  return null;
}

/** Whether the shard trains trial `index` of a stage. */
export function ownsTrial(shard: Shard | null, index: number): boolean {
  return shard === null || index % shard.count === shard.index;
}

/** The trials file a shard appends to (the plain one when unsharded). */
export function trialsFile(shard: Shard | null): string {
  return shard === null
    ? "trials.jsonl"
    : `trials.shard-${shard.index + 1}-of-${shard.count}.jsonl`;
}
