/**
 * The gradient audit on real CIFAR-10 samples: 2-, 3- and 4-layer nets without and with batch
 * normalisation, λ = 0 and 0.01, every row (W, b, γ, β) within the thresholds (centred float64
 * ≤ 1e-6, GPU float32 vs float64 ≤ 1e-3). Also: the audit catches a wrong gradient, and skips
 * entries whose perturbation crosses a ReLU kink.
 */

import assert from "node:assert/strict";
import { resolveDataDir } from "../src/data/data_dir.ts";
import { normalisationStats } from "../src/data/normalise.ts";
import { loadCifar10 } from "../src/data/cifar10.ts";
import { gradcheckFailures, runGradcheck, THRESHOLDS } from "../src/reference/gradcheck.ts";
import { gradients, maxRelativeError, numericalGradients } from "../src/reference/network.ts";
import { gpuDevice } from "./helpers.ts";

async function realSamples(n: number, d: number) {
  const { train } = await loadCifar10(resolveDataDir(), {
    train: [1],
    val: { none: true },
    test: false,
  });
  const stats = normalisationStats(train);
  const X = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) {
      X[i * d + k] = (train.images[i * 3072 + k] - stats.mean[k]) / stats.std[k];
    }
  }
  return { X, y: train.labels.subarray(0, n) };
}

Deno.test("gradient audit on real data: every row within the thresholds", async () => {
  const { X, y } = await realSamples(20, 20);
  const report = await runGradcheck({ X, y, samples: 20, dims: 20, device: await gpuDevice() });
  // per λ: (W, b) per layer without BN; with BN (W, γ, β) per hidden layer and (W, b) at the top
  assert.equal(report.rows.length, 2 * (2 * (2 + 3 + 4) + (5 + 8 + 11)));
  for (const p of ["gamma1", "beta1", "gamma3", "beta3"]) {
    assert.ok(report.rows.some((r) => r.net.endsWith("BN") && r.param === p), `rows for ${p}`);
  }
  assert.deepEqual(gradcheckFailures(report), []);
  for (const row of report.rows) {
    assert.ok(
      row.centred <= THRESHOLDS.centredMax,
      `${row.net} ${row.param} centred ${row.centred}`,
    );
    assert.ok(
      row.gpu !== null && row.gpu <= THRESHOLDS.gpuMax,
      `${row.net} ${row.param} gpu ${row.gpu}`,
    );
    assert.ok((row.skipped ?? 0) < (row.entries ?? 1), "most entries are checked");
  }
});

Deno.test("the audit's measure catches a wrong gradient", async () => {
  const { X, y } = await realSamples(3, 12);
  const { initParams } = await import("../src/model/init.ts");
  const p = initParams([12, 8, 10], "he", 0, 3);
  const a = gradients(p, X, y, 3, 0.01);
  const c = numericalGradients(p, X, y, 3, 0.01, 3e-5, true);
  assert.ok(maxRelativeError(a.W[0], c.W[0], 1e-4) <= 1e-6);
  const wrong = a.W[0].map((v, i) => (i === 5 ? v * 1.01 + 1e-3 : v)); // one entry off
  assert.ok(maxRelativeError(wrong, c.W[0], 1e-4) > 1e-3);
  const missingL2 = gradients(p, X, y, 3, 0).W[1]; // forgot 2λW
  assert.ok(maxRelativeError(missingL2, c.W[1], 1e-4) > 1e-3);
});

Deno.test("entries whose perturbation crosses a ReLU kink are skipped, not failed", async () => {
  const { initParams } = await import("../src/model/init.ts");
  const p = initParams([2, 2, 3], "he", 0, 1);
  // hidden unit 0 has pre-activation exactly 1e-7 for the single sample: any step of 1e-4 on its
  // bias crosses the kink
  p.W[0].set([0, 0, 0, 0]);
  p.b[0].set([1e-7, 0.5]);
  const g = numericalGradients(p, [1, 1], [0], 1, 0, 1e-4, true);
  assert.ok(Number.isNaN(g.b[0][0]), "kink entry skipped");
  assert.ok(Number.isFinite(g.b[0][1]), "smooth entry kept");
  assert.ok(Number.isFinite(maxRelativeError(gradients(p, [1, 1], [0], 1, 0).b[0], g.b[0])));
});

Deno.test("gradcheck --out: refused before the audit over a file the tool did not write; its own file replaced", async () => {
  const { main } = await import("../src/cli/gradcheck.ts");
  const { assertUserError } = await import("./assert_user_error.ts");
  const dir = await Deno.makeTempDir({ prefix: "gradcheck-out-" });
  try {
    const mine = `${dir}/user.json`;
    await Deno.writeTextFile(mine, '{"mine": true}\n');
    await assertUserError(
      () => main(["--samples", "2", "--dims", "3", "--out", mine]),
      /user\.json exists and is not a gradient audit this tool wrote, so it is left alone/,
    );
    assert.equal(await Deno.readTextFile(mine), '{"mine": true}\n');
    await assertUserError(
      () => main(["--samples", "2", "--dims", "3", "--out", dir]),
      /is a directory: --out names the file of a gradient audit/,
    );
    await assertUserError(
      () => main(["--samples", "2", "--dims", "3", "--out", `${mine}/x.json`]),
      /user\.json is a file, not a folder/,
    );
    // a new file under new folders, then the tool's own file replaced by the next audit
    const out = `${dir}/a/b/gradcheck.json`;
    for (let i = 0; i < 2; i++) {
      // 2 samples are too few for BN's thresholds: the audit writes its file, then says so
      await main(["--samples", "2", "--dims", "3", "--out", out]).catch((e) => {
        if (!/rows exceed the thresholds/.test((e as Error).message)) throw e;
      });
      const report = JSON.parse(await Deno.readTextFile(out));
      assert.equal(report.format, "webgpu-mlp.gradcheck/1");
      assert.equal(report.dims, 3);
    }
    assert.deepEqual([...Deno.readDirSync(`${dir}/a/b`)].map((e) => e.name), ["gradcheck.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
