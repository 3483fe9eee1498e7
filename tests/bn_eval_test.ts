/**
 * Batch normalisation through the whole training path: the GPU evaluation of a trained BN net uses
 * its running statistics exactly as the float64 reference does.
 */

import assert from "node:assert/strict";
import { evaluate } from "../src/reference/network.ts";
import { normalise } from "../src/data/normalise.ts";
import { cfgWith, train } from "./small_run.ts";

Deno.test("BN: GPU evaluation uses the running statistics, as the float64 reference does", async () => {
  const cfg = cfgWith({ bn: [true, true], bnAlpha: 0.8 });
  const { result, data } = await train(cfg);
  const p = result.params[0];
  assert.ok(p.bn?.[0] && p.bn[1], "BN parameters come back");
  assert.ok(p.bn![0]!.mean.some((m) => Math.abs(m) > 1e-3), "running means moved");
  assert.ok(p.bn![0]!.variance.some((v) => Math.abs(v - 1) > 1e-3), "running variances moved");
  const val = data.cifar.val!;
  const X = normalise(val.images, val.n, data.stats);
  const ref = evaluate(p, X, val.labels, val.n, cfg.train.lambda, { mode: "eval" });
  const gpu = result.models[0].final!.val!;
  assert.ok(Math.abs(gpu.loss - ref.loss) < 1e-4 * ref.loss, `val loss ${gpu.loss} vs ${ref.loss}`);
  assert.ok(
    Math.abs(gpu.accuracy - ref.accuracy) <= 2 / val.n,
    `val acc ${gpu.accuracy} vs ${ref.accuracy}`,
  );
  // on a small batch, its own statistics give other numbers than the running ones
  const few = X.subarray(0, 7 * 3072);
  const batchMode = evaluate(p, few, val.labels, 7, 0, { mode: "train" });
  const evalMode = evaluate(p, few, val.labels, 7, 0, { mode: "eval" });
  assert.ok(
    Math.abs(batchMode.loss - evalMode.loss) > 1e-3,
    "eval mode differs from batch statistics",
  );
  assert.ok(result.models[0].curves.at(-1)!.train.loss < result.models[0].curves[0].train.loss);
});
