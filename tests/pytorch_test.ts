/**
 * A run's checkpoint read by PyTorch: `docs/pytorch_load.py` (the README's snippet, verbatim)
 * loads `weights.safetensors` without the safetensors package, builds the network as an
 * `nn.Sequential` (with `nn.BatchNorm1d` for BN layers), normalises `test_batch.bin` as the
 * checkpoint's metadata says and must reproduce the run's recorded test accuracy.
 *
 * Needs a Python with torch and numpy (`$PYTHON`, `python3`, or /usr/bin/python3, the first that
 * has both); without one the test says so in one line and is ignored.
 */

import { findPython } from "./python.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../src/config.ts";
import { resolveDataDir } from "../src/data/data_dir.ts";
import type { RunMetrics } from "../src/train/metrics.ts";
import { runExperiment } from "../src/train/run.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SCRIPT = join(ROOT, "docs", "pytorch_load.py");

const PY = await findPython("numpy, torch", "torch or numpy");
if (!PY.python) {
  console.warn(
    `pytorch_test: PyTorch test skipped: ${PY.why} (set PYTHON, or apt-get install ` +
      "python3-torch python3-numpy)",
  );
}

Deno.test("the README's PyTorch snippet is docs/pytorch_load.py, verbatim", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const script = await Deno.readTextFile(SCRIPT);
  assert.ok(readme.includes("```python\n" + script + "```\n"), "README holds the script verbatim");
});

Deno.test({
  name: "PyTorch reads a run's checkpoint and gets its test accuracy (with and without BN)",
  ignore: !PY.python,
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "pytorch_test_" });
    try {
      for (const bn of [false, true]) {
        const name = bn ? "bn" : "plain";
        const configPath = join(out, `${name}.json`);
        await Deno.writeTextFile(
          configPath,
          JSON.stringify({
            name,
            out,
            seed: 7,
            data: { dir: resolveDataDir(), train: [1], test: true },
            model: { hidden: [20], init: "he", bn },
            train: {
              batchSize: 100,
              lambda: 0.001,
              schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 150, cycles: 1 },
              evalEvery: 300,
            },
          }),
        );
        const cfg = parseConfig(JSON.parse(await Deno.readTextFile(configPath)), configPath);
        const { dir } = await runExperiment(cfg, { log: () => {}, report: false });
        const metrics = JSON.parse(
          await Deno.readTextFile(join(dir, "metrics.json")),
        ) as RunMetrics;
        const recorded = 100 * metrics.final.test!.accuracy;
        assert.ok(recorded > 25, `${name}: the run learnt something (${recorded} %)`);

        const py = await new Deno.Command(PY.python!, {
          args: [SCRIPT, dir, resolveDataDir()],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stdout = new TextDecoder().decode(py.stdout);
        const stderr = new TextDecoder().decode(py.stderr);
        assert.equal(py.code, 0, stderr);
        assert.equal(stderr, "", "no warnings");
        const m = /^test accuracy (\d+\.\d+)% \(10000 images\)$/.exec(stdout.trim());
        assert.ok(m, stdout);
        // 0.1 percentage points = 10 of the 10 000 test images. The GPU sums in float32 in its
        // own order (tiled products, blocked reductions) and PyTorch's CPU kernels in another,
        // so logits differ in their last bits and an image whose top two classes are within
        // that rounding can flip either way; any real mismatch (pixels in 0..1, the wrong
        // layout or BN convention) costs tens of points.
        assert.ok(
          Math.abs(Number(m[1]) - recorded) <= 0.1,
          `${name}: PyTorch ${m[1]} % vs metrics.json ${recorded.toFixed(2)} %`,
        );
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
