/**
 * `deno task bench`: how fast this project's WebGPU trainer is, kernel by kernel and step by step,
 * and — with `--peers` — next to numpy, PyTorch and TensorFlow.js doing the same work in the same
 * run. See `bench/args.ts` for the flags and the README's Benchmarks section for the peers.
 *
 * @module
 */

import { cpus } from "node:os";
import { UserError } from "../src/errors.ts";
import type { Gpu, KernelProfile } from "../src/gpu/device.ts";
import { type BenchArgs, BenchArgsError, parseBenchArgs, USAGE } from "./args.ts";
import { renderBenchHtml } from "./html.ts";
import {
  compareSteps,
  measureKernels,
  measureSquare,
  stepBreakdown,
  stepDispatches,
} from "./kernels.ts";
import { measureProbes } from "./probes.ts";
import type { PeerClient } from "./peers/client.ts";
import { writePeerData } from "./peers/data.ts";
import { which } from "./peers/registry.ts";
import { runPeers } from "./peers/run.ts";
import { printReport } from "./report.ts";
import { type BenchResults, resultBase, writeResults } from "./results.ts";
import { BENCH_LAMBDA, BenchNet, benchSpec, netName, openContext } from "./setup.ts";
import { itemLabel, OursRunner, type StepOptions, workItems } from "./steps.ts";
import { logLambdas, measureSweep, type SweepConfig } from "./sweep.ts";
import { type AshaConfig, measureAsha } from "./asha.ts";
import { measurePbt, type PbtBenchConfig } from "./pbt.ts";
import { TILE_GRID, tileSweep } from "./tiles.ts";
import { fmtMs } from "./stats.ts";
import { GpuTimer } from "./timing.ts";
import { prepareVerify, type VerifyCase } from "./verify.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";

const NET2 = [3072, 50, 10];
const NET3 = [3072, 50, 50, 10];

function log(line: string): void {
  console.log(line);
}

/** The kernel profile and operand placement in use, for the log. */
function profileLine(gpu: Gpu): string {
  const forced = Deno.env.get("WEBGPU_MLP_KERNELS") ? " (WEBGPU_MLP_KERNELS)" : "";
  return `kernels: ${gpu.kernelProfile} profile${forced}, layer 1 from ${
    gpu.prefersTextures ? `textures (read ${gpu.textureReads})` : "buffers"
  }`;
}

/** Measurement effort of a run; the square product's tiles follow the kernel profile. */
function settings(args: BenchArgs, profile: KernelProfile) {
  const q = args.quick;
  const steps: StepOptions = {
    stepReps: args.reps ?? (q ? 3 : 7),
    epochReps: args.reps ?? (q ? 2 : 3),
    targetMs: q ? 150 : 400,
  };
  return {
    steps,
    nets: [NET2, NET3],
    batches: [100, 500],
    epochNets: q ? [NET2] : [NET2, NET3],
    epochBatches: q ? [100] : [100, 500],
    kernels: { targetMs: q ? 80 : 200, reps: args.reps ?? (q ? 3 : 5) },
    breakdown: { steps: q ? 5 : 20, reps: q ? 2 : 3 },
    probes: {
      workgroups: 1024,
      minMs: 20,
      reps: args.reps ?? (q ? 3 : 5),
      nacc: q ? [16] : [8, 16, 32],
      samples: q ? 256 : 1024,
    },
    square: {
      minMs: q ? 30 : 50,
      maxSize: q ? 512 : 4096,
      reps: q ? 2 : 3,
      // the gpu profile: its own selection for each size (gpuTile), nothing else
      tiles: profile === "gpu" ? [] : q ? [{ tm: 8, tn4: 2, wg: 8 }] : [
        { tm: 8, tn4: 2, wg: 8 },
        { tm: 8, tn4: 4, wg: 64 },
        { tm: 4, tn4: 4, wg: 64 },
        { tm: 4, tn4: 2, wg: 32 },
      ],
    },
    tiles: {
      ...TILE_GRID,
      quickMs: q ? 20 : 50,
      finalMs: q ? 60 : 150,
      finalists: q ? 3 : 5,
      reps: args.reps ?? (q ? 3 : 5),
    },
    sweep: {
      sizes: NET2,
      batch: 100,
      lambdas: logLambdas(args.sweepModels),
      schedule: {
        kind: "cyclic" as const,
        etaMin: 1e-5,
        etaMax: 0.1,
        stepSize: args.sweepStepSize ?? (args.sweepFull ? 100 : 25),
        cycles: 1,
      },
      reps: args.reps ?? 3,
      variants: args.sweepFull ? ["steps", "trainPopulation"] : ["steps"],
    } satisfies SweepConfig,
    // successive halving against every trial to the end: 9 → 3 → 1 models over 3 short cycles
    // by default (about half a minute here), 81 → 27 → 9 over 3 cycles of n_s = 100 with --sweep
    asha: {
      sizes: NET2,
      batch: 100,
      lambdas: logLambdas(args.sweepFull ? 81 : 9),
      schedule: {
        kind: "cyclic" as const,
        etaMin: 1e-5,
        etaMax: 0.1,
        stepSize: args.sweepFull ? 100 : 25,
        cycles: 3,
      },
      reduction: 3,
      trainImages: 10000,
    } satisfies AshaConfig,
    // PBT against random search at equal compute: 8 trials over 6 short cycles by default,
    // 16 over 6 cycles of n_s = 50 with --sweep, exploiting at the end of each cycle but the
    // last (where every model's η is η_min, so that the ranking compares like with like)
    pbt: {
      sizes: NET2,
      batch: 100,
      trials: args.sweepFull ? 16 : 8,
      lambdaRange: [1e-5, 1e-1],
      etaMaxRange: [0.01, 0.2],
      seed: 1,
      schedule: {
        kind: "cyclic" as const,
        etaMin: 1e-5,
        etaMax: 0.1,
        stepSize: args.sweepFull ? 50 : 13,
        cycles: 6,
      },
      interval: args.sweepFull ? 100 : 26,
      quantile: 0.25,
      trainImages: 10000,
    } satisfies PbtBenchConfig,
    peerTimeoutS: args.timeout,
    verifySteps: 20,
  };
}

async function main(): Promise<void> {
  const args = parseBenchArgs(Deno.args, which("python3"));
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const t0 = performance.now();
  const started = new Date();
  const loadStart = Deno.loadavg();
  const has = (s: string) => args.sections.includes(s as never);
  log(
    `bench: sections ${args.sections.join(", ")}${args.quick ? " (quick)" : ""}` +
      (args.peers.length ? `; peers ${args.peers.join(", ")}` : ""),
  );
  if (loadStart[0] > cpus().length * 0.5) {
    log(
      `note: load average ${
        loadStart[0].toFixed(2)
      } on ${cpus().length} CPUs — other work is running; ` +
        `absolute times will be noisy (ratios are paired to limit the effect)`,
    );
  }
  // the epoch of a real run (40 000 images resident, as in training); --quick loads one batch
  const ctx = await openContext(args.quick ? [1] : [1, 2, 3, 4], args.dataDir);
  const gpu = ctx.gpu;
  const opts = settings(args, gpu.kernelProfile);
  log(
    `adapter: ${gpu.adapter.description || gpu.adapter.vendor} (timestamps: ${
      gpu.timestamps ? "yes" : "no"
    }); ${profileLine(gpu)}; ` +
      `${ctx.train.train.n} training samples (batch ${ctx.trainBatches.join(",")}), val ${
        ctx.train.val?.n ?? 0
      }`,
  );
  const timer = new GpuTimer(gpu);
  const ours = new OursRunner(ctx);
  const results: BenchResults = {
    format: "webgpu-mlp.bench/2",
    date: started.toISOString(),
    argv: [...Deno.args],
    mode: { quick: args.quick, sections: [...args.sections], peers: [...args.peers] },
    env: {
      adapter: gpu.adapter,
      timestamps: gpu.timestamps,
      kernels: gpu.kernelProfile,
      textures: gpu.prefersTextures,
      textureReads: gpu.textureReads,
      backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default",
      deno: Deno.version,
      os: Deno.build.os,
      arch: Deno.build.arch,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "",
      loadavg: { start: loadStart },
      trainBatches: ctx.trainBatches,
      trainSamples: ctx.train.train.n,
    },
    settings: opts as unknown as Record<string, unknown>,
    items: [],
    peers: [],
  };
  let peerData: Awaited<ReturnType<typeof writePeerData>> | null = null;
  try {
    if (has("peak")) {
      log("peak: FMA ceiling and vec4 load costs (shaders/probe.wgsl), checked against the CPU…");
      const p = await measureProbes(timer, gpu.adapter.description, opts.probes);
      results.probes = p;
      log(
        `  FMA ceiling ${p.fma.gflops} GFLOP/s (${p.fma.nacc} accumulators; ` +
          p.fma.tried.map((t) => `${t.nacc}: ${t.gflops}`).join(", ") + ")",
      );
      for (const l of p.loads) {
        log(
          `  ${l.memory.padEnd(9)} ${l.nsPerLoad} ns per load (${l.fmasPerLoad} FMAs; raw ` +
            `${l.nsPerLoadRaw} ns)`,
        );
      }
      log("square: matmul nn with this project's kernel…");
      results.square = await measureSquare(ctx, timer, opts.square);
      log(
        `  ${results.square.size}³: ${results.square.gflops} GFLOP/s ` +
          `(${results.square.ms.median} ms)`,
      );
    }
    if (has("kernels")) {
      results.dispatches = [];
      for (const sizes of [NET2, NET3]) {
        const net = await ours.net(workItems([sizes], [100], [], [])[0]);
        results.dispatches.push(stepDispatches(net));
      }
      log(
        "dispatches per training step (B=100): " +
          results.dispatches.map((d) => `${d.net} ${d.perStep}`).join(", "),
      );
      // the same steps as the other profile would build them (built, not run)
      const other: KernelProfile = gpu.kernelProfile === "gpu" ? "cpu" : "gpu";
      results.dispatchesOther = { profile: other, nets: [] };
      for (const sizes of [NET2, NET3]) {
        const net = new BenchNet(ctx, benchSpec(ctx, sizes, 100, [BENCH_LAMBDA]), {
          profile: other,
        });
        results.dispatchesOther.nets.push({ net: netName(sizes), perStep: net.step.ops.length });
        net.destroy();
      }
      log(
        `dispatches per training step under the ${other} profile (B=100): ` +
          results.dispatchesOther.nets.map((d) => `${d.net} ${d.perStep}`).join(", "),
      );
      const runs = { steps: args.quick ? 50 : 200, reps: args.quick ? 3 : 7 };
      log("tail: the step with its top layers in one dispatch, against the products it replaces…");
      results.tail = [];
      for (const sizes of [NET2, NET3]) {
        const c = await compareSteps(ctx, sizes, 100, runs, ["tail", { tail: true }], [
          "products",
          { tail: false },
        ]);
        results.tail.push(c);
        log(
          `  ${c.net}: ${c.dispatches.tail} dispatches ${c.ms.tail.toFixed(3)} ms, ` +
            `${c.dispatches.products} dispatches ${c.ms.products.toFixed(3)} ms: ` +
            `the tail ${c.ratio.toFixed(2)}× as fast`,
        );
      }
      log("carry: the step whose tail gathers the next batch, against the step with its own…");
      results.carry = [];
      for (const sizes of [NET2, NET3]) {
        const c = await compareSteps(ctx, sizes, 100, runs, ["carried", { gather: true }], [
          "own",
          { gather: false },
        ]);
        results.carry.push(c);
        log(
          `  ${c.net}: ${c.dispatches.carried} dispatches ${c.ms.carried.toFixed(3)} ms, ` +
            `${c.dispatches.own} dispatches ${c.ms.own.toFixed(3)} ms: ` +
            `carried ${c.ratio.toFixed(2)}× as fast`,
        );
      }
      log("images: the step reading the batch from the dataset's images, against X gathered…");
      results.images = [];
      for (const sizes of [NET2, NET3]) {
        const c = await compareSteps(ctx, sizes, 100, runs, ["images", { images: true }], [
          "gathered",
          { images: false },
        ]);
        results.images.push(c);
        log(
          `  ${c.net}: ${c.dispatches.images} dispatches ${c.ms.images.toFixed(3)} ms, ` +
            `${c.dispatches.gathered} dispatches ${c.ms.gathered.toFixed(3)} ms: ` +
            `images ${c.ratio.toFixed(2)}× as fast`,
        );
      }
      log("kernels: each dispatch of a 3072-50-10 training step at B=100…");
      const item = workItems([NET2], [100], [], [])[0];
      const net = await ours.net(item);
      const ks = await measureKernels(net, timer, opts.kernels, {
        ceiling: results.probes?.fma.gflops ?? null,
        square: results.square?.gflops ?? null,
      });
      results.kernels = { net: "3072-50-10", batch: 100, results: ks };
      for (const k of ks) {
        log(
          `  ${k.label.padEnd(18)} ${k.ms.median.toPrecision(3).padStart(7)} ms  ` +
            `${k.gflops === null ? "" : `${k.gflops} GFLOP/s`}`,
        );
      }
      const bd = await stepBreakdown(net, timer, ks, opts.breakdown.steps, opts.breakdown.reps);
      results.breakdown = { ...bd, net: "3072-50-10", batch: 100 };
      const models = opts.sweep.lambdas.length;
      log(`kernels: each dispatch of a ${models}-model population's step, 3072-50-10 at B=100…`);
      const pop = new BenchNet(ctx, benchSpec(ctx, NET2, 100, opts.sweep.lambdas));
      try {
        const pks = await measureKernels(pop, timer, opts.kernels, {
          ceiling: results.probes?.fma.gflops ?? null,
          square: results.square?.gflops ?? null,
        });
        results.populationKernels = { net: "3072-50-10", batch: 100, models, results: pks };
        for (const k of pks) {
          log(
            `  ${k.label.padEnd(18)} ${k.ms.median.toPrecision(3).padStart(7)} ms  ` +
              `${k.gflops === null ? "" : `${k.gflops} GFLOP/s`}`,
          );
        }
      } finally {
        pop.destroy();
      }
    }
    const items = workItems(
      has("steps") ? opts.nets : [],
      opts.batches,
      has("epochs") ? opts.epochNets : [],
      opts.epochBatches,
    );
    if (items.length) log("steps and epochs (this project)…");
    for (const item of items) {
      const r = await ours.measure(item, opts.steps);
      results.items.push({ ...item, ours: r, peers: {} });
      log(
        `  ${itemLabel(item).padEnd(30)} ${fmtMs(r.ms.median)}` +
          (item.kind === "step" ? ` (${r.steps} steps per rep)` : ` (${r.steps} steps)`),
      );
    }
    if (results.breakdown) {
      const s = results.items.find((i) => i.id === "step/3072-50-10/b100");
      if (s) results.breakdown.stepWallMs = s.ours.ms.median;
    }
    let sweepPeers: PeerClient[] = [];
    if (args.peers.length) {
      peerData = await writePeerData(ctx.data, cpus().length);
      log(`peers: same work, paired with ours rep by rep (data in ${peerData.dir})`);
      const checks: VerifyCase[] = [];
      for (const sizes of opts.nets) {
        checks.push(await prepareVerify(ctx, peerData.dir, sizes, 100, opts.verifySteps));
      }
      const r = await runPeers(results.items, ours, {
        peers: args.peers,
        python: { system: args.python, path: args.pythonPath, cuda: args.pythonCuda },
        dataDir: peerData.dir,
        steps: opts.steps,
        requestMs: opts.peerTimeoutS * 1000,
        keepForSweep: has("sweep"),
        checks,
      }, log);
      results.peers = r.records;
      sweepPeers = r.sweepPeers;
    }
    if (has("sweep")) {
      const c = opts.sweep;
      log(
        `sweep: ${c.lambdas.length} λ as one population vs one by one, ` +
          `${2 * c.schedule.stepSize} steps each (${
            sweepPeers.map((p) => p.name).join(", ") || "no peers"
          })…`,
      );
      try {
        results.sweep = await measureSweep(ctx, c, sweepPeers, opts.peerTimeoutS * 1000, log);
      } finally {
        for (const p of sweepPeers) await p.close();
      }
      const a = opts.asha;
      log(
        `ASHA: ${a.lambdas.length} λ to the end vs with successive halving, ` +
          `${2 * a.schedule.stepSize * a.schedule.cycles} steps…`,
      );
      results.asha = await measureAsha(ctx, a, log);
      const p = opts.pbt;
      log(
        `PBT: ${p.trials} trials as a random search vs with PBT, ` +
          `${2 * p.schedule.stepSize * p.schedule.cycles} steps each…`,
      );
      results.pbt = await measurePbt(ctx, p, log);
    }
    if (has("tiles")) {
      log("tiles: every matmul shape × the tile grid…");
      const batches = args.quick ? [100] : opts.batches;
      results.tiles = await tileSweep(ctx, timer, [NET2, NET3], batches, opts.tiles, log);
    }
  } finally {
    await peerData?.remove();
    ours.destroy();
    timer.destroy();
  }
  results.env.loadavg.end = Deno.loadavg();
  results.seconds = Math.round((performance.now() - t0) / 100) / 10;
  printReport(results, log);
  if (args.write) {
    const base = resultBase(args.outDir, gpu.adapter, started);
    await writeResults(`${base}.json`, results);
    let html = "";
    try {
      html = renderBenchHtml(results);
    } catch (e) {
      log(`html: not written (${(e as Error).message})`);
    }
    if (html) await writeFileAtomic(`${base}.html`, html);
    log(`wrote ${base}.json${html ? ` and ${base}.html` : ""}`);
  }
  log(`bench: done in ${results.seconds} s`);
}

if (import.meta.main) {
  try {
    await main();
    Deno.exit(0);
  } catch (e) {
    if (e instanceof UserError || e instanceof BenchArgsError) {
      console.error(`bench: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
