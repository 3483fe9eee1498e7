/**
 * Multi-run configs: variants differing only in λ and initialisation share a population, every
 * variant gets a complete run directory, and one comparison report covers them all.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseConfig, variantConfig } from "../src/config.ts";
import { UserError } from "../src/errors.ts";
import { groupVariants, runVariants } from "../src/train/variants.ts";
import type { RunMetrics } from "../src/train/metrics.ts";

function config(out: string) {
  return parseConfig(
    {
      name: "sens",
      out,
      seed: 4,
      data: { train: [1], val: { holdout: 1000 }, test: true },
      model: { hidden: [16, 16], init: "gaussian" },
      train: {
        batchSize: 100,
        lambda: 0.005,
        schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 100, cycles: 1 },
        evalEvery: 100,
      },
      variants: [
        { name: "bn-1e-1", model: { bn: true, sigma: 1e-1 } },
        { name: "bn-1e-4", model: { bn: true, sigma: 1e-4 } },
        { name: "nobn-1e-1", model: { sigma: 1e-1 } },
        { name: "nobn-1e-4", model: { sigma: 1e-4 } },
      ],
    },
    "test",
  );
}

Deno.test("variants: grouped into populations, every run written, a comparison report", async () => {
  const out = await Deno.makeTempDir();
  const cfg = config(out);
  const configs = cfg.variants!.map((_, i) => variantConfig(cfg, i));
  assert.deepEqual(groupVariants(configs).map((g) => g.map((c) => c.name)), [
    ["bn-1e-1", "bn-1e-4"],
    ["nobn-1e-1", "nobn-1e-4"],
  ]);
  const lines: string[] = [];
  const { dir, runs } = await runVariants(cfg, { log: (l) => lines.push(l) });
  assert.equal(runs.length, 4);
  for (const name of ["bn-1e-1", "bn-1e-4", "nobn-1e-1", "nobn-1e-4"]) {
    const m = JSON.parse(Deno.readTextFileSync(join(dir, name, "metrics.json"))) as RunMetrics;
    assert.equal(m.name, name);
    assert.equal(m.status, "completed");
    assert.ok(m.final.test, "test metrics");
  }
  const byName = Object.fromEntries(runs.map((r) => [r.name, r]));
  // the known outcome, in miniature: with BN even σ = 1e-4 learns; without it, it does not
  assert.ok(byName["bn-1e-4"].final.val!.accuracy > 0.18);
  assert.ok(byName["nobn-1e-4"].final.val!.accuracy < 0.13);
  assert.ok((await Deno.stat(join(dir, "report.html"))).size > 1000);
  await Deno.remove(out, { recursive: true });
});

Deno.test("variants: a bad override is reported at load time with the variant's name", () => {
  const bad = {
    data: { train: [1] },
    train: { schedule: { kind: "constant", eta: 0.1, epochs: 1 } },
    variants: [{ name: "a", model: { sigma: -1 } }],
  };
  assert.throws(
    () => parseConfig(bad, "x.json"),
    (e: Error) => e instanceof UserError && /variants\.0\.model\.sigma must be > 0/.test(e.message),
  );
  const dup = { ...bad, variants: [{ name: "a" }, { name: "a" }] };
  assert.throws(() => parseConfig(dup, "x.json"), /used twice/);
  const both = {
    ...bad,
    variants: [{ name: "a" }],
    search: { stages: [{ name: "s", space: { kind: "list", values: [0] } }] },
  };
  assert.throws(() => parseConfig(both, "x.json"), /not both/);
});
