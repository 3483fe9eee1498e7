/**
 * Same-math check of the peers: from this project's initial parameters and on the trainer's own
 * shuffled batches (the gather kernel's permutation, computed on the CPU), a peer trains a few
 * steps and scores 1000 training samples; the trainer does the same on the GPU. The losses and
 * Σ‖W‖² must agree to float32 rounding, or the peer is not doing the same work.
 *
 * @module
 */

import { join } from "node:path";
import { normalise } from "../src/data/normalise.ts";
import { type Params, sumSquaredWeights } from "../src/model/init.ts";
import { evaluate } from "../src/reference/network.ts";
import { epochPermutation } from "../src/reference/shuffle.ts";
import type { PeerClient } from "./peers/client.ts";
import { BENCH_LAMBDA, BENCH_SCHEDULE, type BenchContext, BenchNet, benchSpec } from "./setup.ts";

/** Loss, accuracy and Σ‖W‖² on the first 1000 training samples after the check's steps. */
export interface VerifyScore {
  loss: number;
  accuracy: number;
  l2: number;
}

/** A prepared check: files for the peers and this project's score. */
export interface VerifyCase {
  sizes: number[];
  batch: number;
  steps: number;
  /** Arguments of the peers' `verify` request. */
  args: Record<string, unknown>;
  ours: VerifyScore;
}

/** A peer's verdict. */
export interface VerifyResult {
  steps: number;
  net: string;
  batch: number;
  ours: VerifyScore;
  peer?: VerifyScore;
  /** Largest relative difference of loss and Σ‖W‖². */
  maxRelDiff?: number;
  pass: boolean;
  error?: string;
}

/** Relative difference tolerated after the check's steps (float32 rounding, other orders). */
export const VERIFY_TOLERANCE = 2e-3;

const SAMPLES = 1000;

/** Train `steps` steps of one model on the GPU, and write its start and its batches to `dir`. */
export async function prepareVerify(
  ctx: BenchContext,
  dir: string,
  sizes: number[],
  batch: number,
  steps: number,
): Promise<VerifyCase> {
  const spec = benchSpec(ctx, sizes, batch, [BENCH_LAMBDA], BENCH_SCHEDULE);
  const net = new BenchNet(ctx, spec);
  try {
    const [initial] = await net.params.download();
    // the batches the gather kernel draws: positions of each epoch's Feistel permutation
    const n = ctx.train.train.n;
    const idx = new Uint32Array(steps * batch);
    let perm: Uint32Array | null = null, permEpoch = -1;
    for (let t = 0; t < steps; t++) {
      const epoch = Math.floor(t / net.stepsPerEpoch);
      if (epoch !== permEpoch) {
        perm = epochPermutation(n, spec.shuffleSeed, epoch);
        permEpoch = epoch;
      }
      const pos = (t % net.stepsPerEpoch) * batch;
      idx.set(perm!.subarray(pos, pos + batch), t * batch);
    }
    const init = join(dir, `verify-${sizes.join("-")}-b${batch}.init.f32`);
    const rows = join(dir, `verify-${sizes.join("-")}-b${batch}.idx.u32`);
    await Deno.writeFile(init, flatten(initial));
    await Deno.writeFile(rows, new Uint8Array(idx.buffer));
    net.t = 0;
    await net.runSteps(steps);
    const [trained] = await net.params.download();
    const X = normalise(
      ctx.data.cifar.train.images.subarray(0, SAMPLES * 3072),
      SAMPLES,
      ctx.data.stats,
    );
    const y = ctx.data.cifar.train.labels.subarray(0, SAMPLES);
    const e = evaluate(trained, X, y, SAMPLES, BENCH_LAMBDA);
    return {
      sizes,
      batch,
      steps,
      args: { sizes, batch, lam: BENCH_LAMBDA, schedule: BENCH_SCHEDULE, steps, init, idx: rows },
      ours: { loss: e.loss, accuracy: e.accuracy, l2: sumSquaredWeights(trained) },
    };
  } finally {
    net.destroy();
  }
}

/** W then b of every layer, float32, row-major (n_in × n_out). */
function flatten(p: Params): Uint8Array {
  const total = p.W.reduce((s, w) => s + w.length, 0) + p.b.reduce((s, b) => s + b.length, 0);
  const out = new Float32Array(total);
  let at = 0;
  p.W.forEach((w, l) => {
    out.set(w, at);
    at += w.length;
    out.set(p.b[l], at);
    at += p.b[l].length;
  });
  return new Uint8Array(out.buffer);
}

/** Ask a peer to run the check and compare. */
export async function verifyPeer(
  peer: PeerClient,
  c: VerifyCase,
  timeoutMs: number,
): Promise<VerifyResult> {
  const base = { steps: c.steps, net: c.sizes.join("-"), batch: c.batch, ours: c.ours };
  try {
    const p = await peer.request("verify", c.args, timeoutMs) as VerifyScore;
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
    const maxRelDiff = Math.max(rel(p.loss, c.ours.loss), rel(p.l2, c.ours.l2));
    return {
      ...base,
      peer: p,
      maxRelDiff: Number(maxRelDiff.toPrecision(3)),
      pass: maxRelDiff <= VERIFY_TOLERANCE,
    };
  } catch (e) {
    return { ...base, pass: false, error: (e as Error).message };
  }
}
