/**
 * `deno task bench --quick --no-write` runs end to end on this adapter and prints its tables
 * (a smoke test: speed itself is never asserted); the tile grid offers only tiles that compile.
 */

import assert from "node:assert/strict";
import { TILE_GRID, tileRefusal, tileSweep } from "../bench/tiles.ts";
import { openContext } from "../bench/setup.ts";
import { GpuTimer } from "../bench/timing.ts";
import { type KernelResult, measureSquare } from "../bench/kernels.ts";
import { kernelTargetLines } from "../bench/report.ts";
import { renderBenchHtml } from "../bench/html.ts";
import type { BenchResults } from "../bench/results.ts";
import { fmtMs, fmtRatio } from "../bench/stats.ts";
import { LONG_ROWS } from "../src/kernels/placement.ts";
import { selectTile } from "../src/kernels/matmul.ts";
import { READONLY_STORAGE_TEXTURES, wgslLanguageFeatures } from "../src/gpu/device.ts";

Deno.test("bench --quick runs and prints the probes, dispatches and step tables", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/bench.ts", "--quick", "--no-write"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(text, /step 3072-50-10 B=100/);
  assert.match(text, /GFLOP\/s/);
  assert.match(text, /peak = FMA ceiling: [\d.]+ GFLOP\/s .*CPU check ✓/);
  assert.match(text, /square product: [\d.]+ GFLOP\/s/);
  for (
    const memory of [
      "texel \\(rgba32float\\)",
      ...(wgslLanguageFeatures().has(READONLY_STORAGE_TEXTURES)
        ? ["storage texel \\(read-only\\)"]
        : []),
      "storage buffer",
      "workgroup memory",
      "uniform buffer",
    ]
  ) {
    assert.match(text, new RegExp(`^${memory}\\s+[\\d.]+\\s.*✓ \\d+$`, "m"));
  }
  assert.match(
    text,
    /Dispatches per training step: 3072-50-10 B=100: \d+.*3072-50-50-10 B=100: \d+/,
  );
  // the fusions against the steps without them, each net: dispatches, ms, and the ratio
  for (
    const [net, fused] of [
      ["3072-50-10", "the tail"],
      ["3072-50-50-10", "carried"],
      ["3072-50-10", "images"],
    ]
  ) {
    assert.match(
      text,
      new RegExp(
        `^  ${net}: \\d+ dispatches [\\d.]+ ms, \\d+ dispatches [\\d.]+ ms: ${fused} [\\d.]+× as fast$`,
        "m",
      ),
    );
  }
  assert.match(text, /of ceiling\s+of square\s+of step\s+workgroups × size\s+invocations/);
  assert.match(text, /^forward1\s.*\d+×1×1 × \d+\s+\d+$/m);
  assert.match(text, /Kernels of one training step of 16 models as one population, 3072-50-10/);
  assert.match(text, /nn 100×3072·3072×830/);
  assert.match(text, /Targets of the dispatches and kernels \(this run\):/);
  assert.match(text, /2-layer step in ≤ 4 dispatches: \d+ [✓✗]/);
  assert.match(text, /16-model weight gradient ≥ 40 GFLOP\/s: [\d.]+ [✓✗]/);
});

Deno.test("bench: each dispatch and kernel target is met or not by this run's numbers", () => {
  const kernel = (label: string, gflops: number) => ({ label, gflops }) as KernelResult;
  const r = {
    items: [{ id: "step/3072-50-10/b100", ours: { ms: { median: 2.2 } } }],
    dispatches: [{ perStep: 4 }, { perStep: 7 }],
    square: { size: 1024, gflops: 65.2 },
    kernels: { results: [kernel("forward1", 43.2), kernel("backward_weights1", 28.5)] },
    populationKernels: {
      models: 16,
      results: [kernel("forward1", 59), kernel("backward_weights1", 35)],
    },
    sweep: { config: { lambdas: Array(16).fill(0) }, trainOnly: { speedup: { median: 2.18 } } },
  } as unknown as BenchResults;
  assert.deepEqual(kernelTargetLines(r), [
    "2-layer step in ≤ 4 dispatches: 4 ✓",
    "3-layer step in ≤ 6 dispatches: 7 ✗",
    "layer 1's weight gradient ≥ 30 GFLOP/s: 28.5 ✗",
    "square product 1024³ ≥ 40 GFLOP/s: 65.2 ✓",
    "16-model forward product ≥ 40 GFLOP/s: 59 ✓",
    "16-model weight gradient ≥ 40 GFLOP/s: 35 ✗",
    "layer 1's forward ≥ 37 GFLOP/s: 43.2 ✓",
    `2-layer step ≤ 2.3 ms: ${fmtMs(2.2)} ✓`,
    `16-model population ≥ 3× one by one: ${fmtRatio(2.18)} ✗`,
  ]);
  // what a run did not measure is left out
  assert.deepEqual(kernelTargetLines({ items: [] } as unknown as BenchResults), []);
});

Deno.test("bench tile grid: every tile it offers can be built; tn refuses tm not a multiple of 4 with the reason", () => {
  for (const variant of ["nn", "nt", "tn"] as const) {
    for (const tm of TILE_GRID.tm) {
      for (const tn4 of TILE_GRID.tn4) {
        for (const wg of TILE_GRID.wg) {
          assert.equal(tileRefusal(variant, { tm, tn4, wg }, 256), null, `${variant} ${tm}`);
        }
      }
    }
  }
  // nn and nt build tm < 4 (their modules leave out matmul_tn, see TN_TILE in matmul.wgsl)
  for (const variant of ["nn", "nt"] as const) {
    assert.equal(tileRefusal(variant, { tm: 2, tn4: 1, wg: 8 }, 256), null, variant);
  }
  assert.match(tileRefusal("tn", { tm: 2, tn4: 1, wg: 8 }, 256)!, /multiple of 4/);
  assert.match(tileRefusal("tn", { tm: 6, tn4: 1, wg: 8 }, 256)!, /multiple of 4/);
  assert.match(tileRefusal("nn", { tm: 4, tn4: 1, wg: 512 }, 256)!, /exceeds/);
});

Deno.test("bench tile sweep: times each product on the operands the trainer gives it here, with its build time", async () => {
  const ctx = await openContext([1]);
  const timer = new GpuTimer(ctx.gpu);
  const lines: string[] = [];
  const effort = { quickMs: 1, finalMs: 1, finalists: 1, reps: 1 };
  const grid = { tm: [16], tn4: [2], wg: [8] };
  try {
    const shapes = await tileSweep(
      ctx,
      timer,
      [[3072, 50, 10]],
      [100],
      { ...grid, ...effort },
      (l) => lines.push(l),
    );
    const bw1 = shapes.find((s) => s.variant === "tn" && s.M === 3072);
    assert.ok(bw1, "layer 1's weight gradient is swept");
    // on an adapter that loads texels faster (llvmpipe), layer 1 reads X and G as textures and
    // keeps W₁'s texture copy current: the sweep must time that, not a buffer-only stand-in
    const kind = ctx.gpu.prefersTextures ? "texture" : "buffer";
    assert.equal(
      bw1.operands,
      `A ${kind}, B ${kind}, C buffer`,
    );
    for (const s of shapes) {
      assert.ok(s.default.buildMs > 0 && s.best.buildMs > 0, `${s.variant} ${s.M}: build time`);
      for (const g of s.grid) assert.ok(g[4] > 0, `grid entry ${g} has its build time`);
    }
    assert.match(lines.join("\n"), /built in \d+ → \d+ ms/);
  } finally {
    timer.destroy();
    ctx.data.dataset.destroy();
  }
});

Deno.test("bench square product: A and B live where the trainer's placement would put them", async () => {
  const ctx = await openContext([1]);
  const timer = new GpuTimer(ctx.gpu);
  try {
    const once = { minMs: 1, reps: 1, tiles: [] };
    // from LONG_ROWS floats a row an adapter that prefers textures reads both as textures, as
    // layer 1's X and W₁; its kernel profile's tile for the size is always among those tried
    const other = { tm: 4, tn4: 1, wg: 8 };
    const long = await measureSquare(ctx, timer, {
      ...once,
      tiles: [other],
      fromSize: LONG_ROWS,
      maxSize: LONG_ROWS,
    });
    assert.equal(long.size, LONG_ROWS);
    assert.equal(long.operands, ctx.gpu.prefersTextures ? "textures" : "buffers");
    const selected = selectTile(ctx.gpu.kernelProfile, "nn", LONG_ROWS, LONG_ROWS, LONG_ROWS);
    assert.deepEqual(long.tried.map((t) => t.tile), [selected, other]);
    assert.ok(long.gflops > 0);
    // shorter rows stay in buffers everywhere
    const short = await measureSquare(ctx, timer, { ...once, fromSize: 512, maxSize: 512 });
    assert.equal(short.size, 512);
    assert.equal(short.operands, "buffers");
    assert.deepEqual(short.tried.map((t) => t.operands), ["buffers"]);
  } finally {
    timer.destroy();
    ctx.data.dataset.destroy();
  }
});

Deno.test("bench HTML of a recorded run lists the population's kernels and every target", async () => {
  const r = JSON.parse(
    await Deno.readTextFile("bench/results/llvmpipe-2026-12-02T181440.json"),
  ) as BenchResults;
  const html = renderBenchHtml(r);
  assert.match(html, /One training step of 16 models as one population/);
  assert.match(html, /nn 100×3072·3072×830/);
  for (const line of kernelTargetLines(r)) {
    assert.ok(html.includes(line.replaceAll("'", "&#39;")) || html.includes(line), line);
  }
});

Deno.test("bench HTML shows the tail and the carried gather against the steps without them", async () => {
  const r = JSON.parse(
    await Deno.readTextFile("bench/results/llvmpipe-2026-12-03T091747.json"),
  ) as BenchResults;
  const html = renderBenchHtml(r);
  assert.match(html, /The tail against the products it replaces/);
  assert.match(html, /The tail that gathers the next batch against the step&#39;s own gather/);
  // each comparison row: the fused way's dispatches and ms, the other way's, the speed-up
  for (
    const c of [
      ...r.tail!.map((t) => [t.dispatches.tail, t.ms.tail, t.ratio]),
      ...r.carry!.map((t) => [t.dispatches.carried, t.ms.carried, t.ratio]),
    ]
  ) {
    assert.ok(html.includes(`${c[1].toFixed(3)}`), `ms ${c[1]}`);
    assert.ok(html.includes(`${c[2].toFixed(2)}×`), `ratio ${c[2]}`);
  }
  assert.ok(r.carry!.every((c) => c.dispatches.carried < c.dispatches.own));
});
