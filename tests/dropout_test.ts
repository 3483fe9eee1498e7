/**
 * Dropout through the whole training path: runs are reproducible and train differently from plain
 * runs.
 */

import assert from "node:assert/strict";
import { cfgWith, train } from "./small_run.ts";

Deno.test("dropout: same seed reproduces the run, and it trains differently from no dropout", async () => {
  const a = await train(cfgWith({ dropout: 0.3 }));
  const b = await train(cfgWith({ dropout: 0.3 }));
  const plain = await train(cfgWith({ dropout: 0 }));
  assert.deepEqual(a.result.models[0].curves, b.result.models[0].curves);
  const last = (r: typeof a) => r.result.models[0].curves.at(-1)!.train.loss;
  assert.notEqual(last(a), last(plain));
  // evaluation is deterministic and dropout-free: the same weights give the same loss twice
  assert.equal(a.result.models[0].final!.train.loss, b.result.models[0].final!.train.loss);
  assert.ok(last(a) < a.result.models[0].curves[0].train.loss, "a dropout net still learns");
});
