/** Adam (with augmentation) through the whole training path: it trains on the GPU. */

import assert from "node:assert/strict";
import { cfgWith, train } from "./small_run.ts";

Deno.test("Adam and augmentation train on the GPU", async () => {
  const adam = await train(cfgWith({}, {
    optimizer: { kind: "adam" },
    schedule: { kind: "constant", eta: 1e-3, epochs: 1 },
    evalEvery: 90,
  }, { augment: { flip: true, translate: 3 } }));
  const c = adam.result.models[0].curves;
  assert.ok(
    c.at(-1)!.train.loss < c[0].train.loss - 0.2,
    `Adam loss ${c[0].train.loss} → ${c.at(-1)!.train.loss}`,
  );
  assert.ok(c.at(-1)!.val!.accuracy > 0.25);
});
