/**
 * Resumable snapshots of a population in training: the raw contents of every GPU buffer that
 * carries state from one step to the next (weights, biases, batch normalisation's γ, β and running
 * statistics, Adam's moments), the step reached, and each model's curves so far — everything
 * else a step reads (shuffles, dropout masks, augmentation, η) is a function of the step. With
 * successive halving it also holds the population's members and the rungs passed: the buffers
 * are those of the compacted population of the members.
 *
 * On disk a snapshot is one safetensors file whose metadata holds the JSON state and a hash of
 * what it belongs to (the resolved config, and for sweeps the trials), written atomically.
 *
 * @module
 */

import { writeFileAtomicSync } from "../io/atomic.ts";
import { decodeSafetensors, encodeSafetensors, type Tensor } from "../io/safetensors.ts";
import { z } from "zod";
import { UserError } from "../errors.ts";
import { snapshotModelSchema } from "../io/records.ts";
import type { ModelResult } from "./trainer.ts";

/** Format tag of snapshot files. */
export const SNAPSHOT_FORMAT = "webgpu-mlp.snapshot/1";

/** The state of a population after `step` update steps. */
export interface Snapshot {
  /** Update steps done. */
  step: number;
  /** Seconds of training before this point (over all sessions), for the run's timings. */
  trainSeconds: number;
  /** Each model's curves, final metrics and divergence up to `step` (regular points only). */
  models: ModelResult[];
  /** Raw contents of the state buffers by label (see `stateBuffers` in trainer.ts). */
  buffers: Record<string, Float32Array>;
  /**
   * With halving: the models in the population (indices in the spec, increasing), whose blocks
   * the buffers hold in that order (absent: every model).
   */
  members?: number[];
  /** With halving: how many rungs the population has passed (absent: none). */
  rung?: number;
  /**
   * Fingerprint of the data trained on (`PreparedData.fingerprint`, src/train/run.ts): a resume
   * on other data is refused ({@link checkSnapshotData}). Absent in snapshots of earlier versions.
   */
  data?: string;
}

/**
 * Refuse to resume `stored` (the snapshot at `path`) on data other than what it was trained on:
 * its fingerprint against the data's now. A snapshot without one (an earlier version's) passes.
 */
export function checkSnapshotData(path: string, stored: Snapshot | undefined, data: string): void {
  if (stored?.data === undefined || stored.data === data) return;
  throw new UserError(
    `${path} was trained on other data than --data (or CIFAR10_DIR) gives now (fingerprint ` +
      `${stored.data.slice(0, 12)} against ${data.slice(0, 12)}): point it back at the data the ` +
      "run began with, or pass --restart to start afresh",
  );
}

/** SHA-256 (hex) of a value's JSON. */
export function hashOf(value: unknown): Promise<string> {
  return sha256Hex(new TextEncoder().encode(JSON.stringify(value)));
}

/** SHA-256 (hex) of bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Write a snapshot atomically to `path`, tagged with `hash`. The write is synchronous, so the time
 * a caller measures around it is its whole cost (encoding and writing).
 */
export function writeSnapshot(
  path: string,
  hash: string,
  s: Snapshot,
  /** What the snapshot is of, kept as JSON beside it (a sweep names its population's trials). */
  about: unknown = null,
): Promise<void> {
  const tensors: Record<string, Tensor> = {};
  for (const [name, data] of Object.entries(s.buffers)) {
    tensors[name] = { shape: [data.length], data };
  }
  const state = {
    step: s.step,
    trainSeconds: s.trainSeconds,
    models: s.models,
    ...(s.members ? { members: s.members, rung: s.rung ?? 0 } : {}),
    ...(s.data !== undefined ? { data: s.data } : {}),
  };
  try {
    writeFileAtomicSync(
      path,
      encodeSafetensors(tensors, {
        format: SNAPSHOT_FORMAT,
        hash,
        about: JSON.stringify(about),
        state: JSON.stringify(state),
      }),
    );
  } catch (e) {
    return Promise.reject(
      new UserError(`cannot write the snapshot ${path}: ${(e as Error).message.split("\n")[0]}`),
    );
  }
  return Promise.resolve();
}

/** A snapshot read back, with the hash it was tagged with. */
export interface StoredSnapshot {
  /** The hash given to {@link writeSnapshot}. */
  hash: string;
  /** What it is of, as given to {@link writeSnapshot} (null when not given or unreadable). */
  about: unknown;
  /** The state. */
  snapshot: Snapshot;
}

/**
 * Read the snapshot at `path`: null when there is none. A damaged file is a {@link UserError}
 * ending in `restart` (how to start afresh); callers compare the hash with their own.
 */
export async function readSnapshot(path: string, restart: string): Promise<StoredSnapshot | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new UserError(`${path} cannot be read (${(e as Error).message}): ${restart}`);
  }
  let decoded;
  try {
    decoded = decodeSafetensors(bytes, path);
  } catch (e) {
    throw new UserError(`${path} is damaged (${(e as Error).message}): ${restart}`);
  }
  const { tensors, metadata } = decoded;
  if (metadata.format !== SNAPSHOT_FORMAT || typeof metadata.hash !== "string") {
    throw new UserError(`${path} is not a snapshot of this tool: ${restart}`);
  }
  let state: {
    step: number;
    trainSeconds: number;
    models: ModelResult[];
    members?: unknown;
    rung?: unknown;
    data?: unknown;
  };
  try {
    state = JSON.parse(metadata.state);
  } catch {
    throw new UserError(`${path} is damaged (its state is not JSON): ${restart}`);
  }
  if (
    !Number.isInteger(state?.step) || state.step < 0 || !Array.isArray(state.models) ||
    typeof state.trainSeconds !== "number"
  ) {
    throw new UserError(`${path} is damaged (its state is incomplete): ${restart}`);
  }
  const halved = z.strictObject({
    members: z.array(z.number().int().min(0)).min(1).optional(),
    rung: z.number().int().min(0).optional(),
  }).safeParse({ members: state.members, rung: state.rung });
  if (!halved.success) {
    const issue = halved.error.issues[0];
    throw new UserError(
      `${path} is damaged (${issue.path.join(".")}: ${issue.message}): ${restart}`,
    );
  }
  const models = z.array(snapshotModelSchema).min(1).safeParse(state.models);
  if (!models.success) {
    const issue = models.error.issues[0];
    throw new UserError(
      `${path} is damaged (models.${issue.path.join(".")}: ${issue.message}): ${restart}`,
    );
  }
  const buffers: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(tensors)) buffers[name] = t.data;
  let about: unknown = null;
  try {
    about = JSON.parse(metadata.about ?? "null");
  } catch {
    // only informative
  }
  return {
    hash: metadata.hash,
    about,
    snapshot: {
      step: state.step,
      trainSeconds: state.trainSeconds,
      models: models.data as ModelResult[],
      buffers,
      ...(halved.data.members ? { members: halved.data.members, rung: halved.data.rung ?? 0 } : {}),
      ...(typeof state.data === "string" ? { data: state.data } : {}),
    },
  };
}
