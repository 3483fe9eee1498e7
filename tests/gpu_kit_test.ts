// The GPU check's own tools (bench/gpu): synthetic CIFAR-10 that the loader reads as it reads the
// real files, and the summary table against the targets, from the files a check leaves.
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeSynthetic } from "../bench/gpu/synthetic.ts";
import { summary } from "../bench/gpu/summary.ts";
import { readBatchFile, readClassNames } from "../src/data/files.ts";
import { BATCH_FILES, CIFAR10_CLASSES } from "../src/data/format.ts";

Deno.test("synthetic CIFAR-10: the official layout, read by the loader, labels 0..9", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeSynthetic(dir, 3);
    for (const name of BATCH_FILES) {
      const batch = readBatchFile(join(dir, name));
      assert.equal(batch.labels.length, 10_000);
      assert.equal(batch.images.length, 10_000 * 3072);
      assert.ok(batch.labels.every((y) => y < 10));
      // every class appears: the labels are not constant
      assert.equal(new Set(batch.labels).size, 10);
    }
    assert.deepEqual(readClassNames(dir), [...CIFAR10_CLASSES]);
    assert.match(await Deno.readTextFile(join(dir, "README.txt")), /timing only/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("synthetic CIFAR-10: the same bytes for the same seed, others for another", async () => {
  const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir(), await Deno.makeTempDir()];
  try {
    await writeSynthetic(dirs[0], 1);
    await writeSynthetic(dirs[1], 1);
    await writeSynthetic(dirs[2], 2);
    const read = (d: string) => Deno.readFile(join(d, "data_batch_3.bin"));
    const [a, b, c] = await Promise.all(dirs.map(read));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    // the six files differ from one another
    assert.notDeepEqual(await Deno.readFile(join(dirs[0], "data_batch_1.bin")), a);
  } finally {
    for (const d of dirs) await Deno.remove(d, { recursive: true });
  }
});

Deno.test("GPU check summary: each target met or not from the check's files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "times.txt"),
      "full.json: exit 0, 0.80 s end to end\nfull-population.json: exit 0, 1.60 s end to end\n",
    );
    await Deno.writeTextFile(
      join(dir, "full.metrics.json"),
      JSON.stringify({ timings: { trainSeconds: 0.5, stepsPerSecond: 18000, setupSeconds: 0.2 } }),
    );
    const ms = (median: number) => ({ median });
    await Deno.writeTextFile(
      join(dir, "gpu-2026-12-02.json"),
      JSON.stringify({
        format: "webgpu-mlp.bench/2",
        env: { adapter: { description: "NVIDIA H200" } },
        dispatches: [{ net: "3072-50-10", batch: 100, perStep: 4 }],
        items: [{
          id: "step/3072-50-10/b100",
          ours: { ms: ms(0.05) },
          peers: {
            "torch-cuda": { status: "ok", ms: ms(0.15), oursMs: ms(0.05), ratio: ms(3) },
          },
        }],
        kernels: {
          net: "3072-50-10",
          batch: 100,
          results: [{
            label: "forward1",
            ms: ms(0.01),
            gflops: 3000,
            workgroups: [64, 1, 1],
            workgroupSize: [256, 1, 1],
            invocations: 16384,
          }],
        },
      }),
    );
    await Deno.writeTextFile(join(dir, "gpu.log"), "ok | 12 passed | 0 failed (3s)\n");
    const text = summary(dir).join("\n");
    assert.match(text, /# GPU check: NVIDIA H200/);
    assert.match(text, /full\.json end to end < 1 s \| 0\.8 s \(exit 0\).* \| yes \|/);
    assert.match(text, /PyTorch eager CUDA \| ours 0\.05 ms, torch-cuda 0\.15 ms: 3× \| yes \|/);
    // 1.6 s against 0.8 s: 2× one run, over the 1.5× target
    assert.match(
      text,
      /16-λ population ≤ 1\.5× one run \| 1\.6 s \(exit 0\), 2× full\.json.* \| no \|/,
    );
    assert.match(text, /\| forward1 \| 0\.01 \| 3000 \| 64×1×1 × 256×1×1 \| 16384 \|/);
    assert.match(text, /kernel tests: ok \| 12 passed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("GPU check summary: missing files are reported, not fatal", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = summary(dir).join("\n");
    assert.match(text, /full\.json end to end < 1 s \| missing \| — \|/);
    assert.match(text, /torch-cuda missing/);
    assert.match(text, /no bench result/);
    assert.match(text, /kernel tests: no result line/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
