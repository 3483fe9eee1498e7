/**
 * Realistic fake runs, sweeps, checkpoints and gradient audits for the report tests, written into
 * a temporary directory (nothing large is committed). Deterministic: every generator takes a seed.
 *
 * @module
 */

import { join } from "node:path";
import { encodeSafetensors, type Tensor } from "../src/io/safetensors.ts";
import { parseConfig } from "../src/config.ts";
import { topEntry, topK } from "../src/sweep/results.ts";
import { samplePoints } from "../src/sweep/space.ts";
import type { StageSummary, SweepSummary, TopEntry, TrialRecord } from "../src/sweep/types.ts";
import type {
  EnvInfo,
  EvalPoint,
  GradcheckReport,
  RunMetrics,
  Timings,
} from "../src/train/metrics.ts";
import { CIFAR10_CLASSES } from "../src/data/format.ts";

/** CIFAR-10 class names as batches.meta.txt lists them. */
export const CLASS_NAMES: string[] = [...CIFAR10_CLASSES];

/** A small seeded PRNG (mulberry32) returning numbers in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal sample. */
function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** A plausible environment block. */
export const ENV: EnvInfo = {
  adapter: {
    vendor: "nvidia",
    architecture: "hopper",
    device: "",
    description: "NVIDIA H100 80GB HBM3",
  },
  deno: { deno: "2.9.6", v8: "15.0.245.2-rusty", typescript: "6.0.3" },
  os: "linux",
  arch: "x86_64",
  version: "0.1.0",
};

/** Timings of a run of `steps` steps at `rate` steps/s. */
export function timings(steps: number, rate: number): Timings {
  const train = steps / rate;
  return {
    startedAt: "2025-11-23T10:00:00.000Z",
    finishedAt: new Date(Date.parse("2025-11-23T10:00:00.000Z") + (train + 3.2) * 1000)
      .toISOString(),
    wallSeconds: train + 3.2,
    setupSeconds: 2.9,
    trainSeconds: train,
    steps,
    stepsPerSecond: rate,
  };
}

/** Options of a fake run. */
export interface FakeRunOptions {
  name: string;
  /** Evaluation points (>= 2). */
  points: number;
  steps: number;
  lambda: number;
  seed: number;
  layerSizes: number[];
  /** Round metrics to float32 like GPU results (default true). */
  f32?: boolean;
  status?: RunMetrics["status"];
  /** Divergence at this fraction of training (status `diverged`). */
  divergeAt?: number;
  /** Write a checkpoint (default true). */
  checkpoint?: boolean;
  config?: unknown;
  classNames?: string[];
  /** Final quality, 0..1 (default 0.45 val accuracy). */
  quality?: number;
}

/** Learning curves that look like mini-batch GD on CIFAR-10. */
export function fakeCurves(o: FakeRunOptions): EvalPoint[] {
  const r = rng(o.seed * 7919 + 1);
  const q = o.quality ?? 0.45;
  const round = o.f32 === false ? (x: number) => x : Math.fround;
  const stepsPerEpoch = 450;
  const out: EvalPoint[] = [];
  const last = o.divergeAt !== undefined ? Math.floor((o.points - 1) * o.divergeAt) : o.points - 1;
  for (let i = 0; i <= last; i++) {
    const step = Math.round((i / (o.points - 1)) * o.steps);
    const t = step / o.steps;
    const g = 1 - Math.exp(-5 * t);
    const noise = () => gauss(r) * 0.008;
    const trainAcc = 0.1 + (q + 0.1) * g + noise();
    const valAcc = 0.1 + q * g - 0.01 * t + noise();
    const trainLoss = 2.303 - 0.95 * g + noise() * 3;
    const valLoss = 2.303 - 0.75 * g + 0.15 * t * t + noise() * 3;
    const reg = o.lambda * (60 + 40 * g);
    out.push({
      step,
      epoch: step / stepsPerEpoch,
      eta: round(0.001 + 0.099 * Math.abs(((step / 900) % 2) - 1)),
      train: { loss: round(trainLoss), cost: round(trainLoss + reg), accuracy: round(trainAcc) },
      val: { loss: round(valLoss), cost: round(valLoss + reg), accuracy: round(valAcc) },
    });
  }
  return out;
}

/** A confusion matrix (1000 test images per class) with the given per-class accuracies. */
export function fakeConfusion(acc: number[], seed: number): number[][] {
  const r = rng(seed);
  return acc.map((a, i) => {
    const row = Array(acc.length).fill(0);
    row[i] = Math.round(1000 * a);
    for (let k = 0; k < 1000 - row[i]; k++) {
      let j = Math.floor(r() * (acc.length - 1));
      if (j >= i) j++;
      // cats and dogs, cars and trucks get confused more
      if ((i === 3 || i === 5) && r() < 0.4) j = i === 3 ? 5 : 3;
      if ((i === 1 || i === 9) && r() < 0.4) j = i === 1 ? 9 : 1;
      row[j]++;
    }
    return row;
  });
}

/** Fake metrics.json contents. */
export function fakeRunMetrics(o: FakeRunOptions): RunMetrics {
  const curves = fakeCurves(o);
  const names = o.classNames ?? CLASS_NAMES;
  const lastPt = curves[curves.length - 1];
  const base = [0.55, 0.6, 0.33, 0.28, 0.4, 0.36, 0.55, 0.52, 0.62, 0.54];
  const perClass = base.map((a) => a * ((o.quality ?? 0.45) / 0.475));
  const confusion = fakeConfusion(perClass, o.seed);
  const perClassAccuracy = confusion.map((row, i) => row[i] / 1000);
  const status = o.status ?? (o.divergeAt !== undefined ? "diverged" : "completed");
  const lr: [number, number][] = [];
  const n = Math.min(o.steps + 1, 2000);
  for (let i = 0; i < n; i++) {
    const step = Math.round((i / (n - 1)) * o.steps);
    lr.push([step, 1e-5 + (0.1 - 1e-5) * Math.abs(((step / 900) % 2) - 1)]);
  }
  return {
    format: "webgpu-mlp.run/1",
    name: o.name,
    status,
    config: o.config ?? {
      model: { layers: o.layerSizes, batchNorm: false, init: "he" },
      train: { batchSize: 100, epochs: Math.round(o.steps / 450), lambda: o.lambda },
      schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 900 },
      data: { dir: "data/cifar-10-batches-bin", val: 5000 },
    },
    seed: o.seed,
    layerSizes: o.layerSizes,
    lambda: o.lambda,
    env: ENV,
    timings: timings(lastPt.step, 812.5),
    lrSchedule: lr,
    curves,
    final: {
      train: lastPt.train,
      val: lastPt.val,
      test: status === "diverged" ? undefined : {
        loss: 1.55,
        accuracy: perClassAccuracy.reduce((a, b) => a + b, 0) / names.length,
        confusion,
        perClassAccuracy,
      },
    },
    classNames: names,
    dataSizes: { train: 45000, val: 5000, test: 10000 },
    diverged: status === "diverged"
      ? { step: lastPt.step + 50, reason: "NaN in training loss" }
      : undefined,
    checkpoint: o.checkpoint === false ? undefined : "weights.safetensors",
  };
}

/** Smooth coloured blobs, like trained first-layer filters: a [units, 3072] weight matrix. */
export function fakeFirstLayer(units: number, seed: number): Float32Array {
  const r = rng(seed);
  const w = new Float32Array(units * 3072);
  for (let u = 0; u < units; u++) {
    const blobs = Array.from({ length: 3 }, () => ({
      cx: r() * 32,
      cy: r() * 32,
      s: 3 + r() * 8,
      c: [gauss(r), gauss(r), gauss(r)],
    }));
    const fx = r() * 0.6;
    const phase = r() * 6.28;
    for (let ch = 0; ch < 3; ch++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          let v = 0.3 * Math.sin(fx * x + phase + ch);
          for (const b of blobs) {
            const d2 = (x - b.cx) ** 2 + (y - b.cy) ** 2;
            v += b.c[ch] * Math.exp(-d2 / (2 * b.s * b.s));
          }
          w[u * 3072 + ch * 1024 + y * 32 + x] = 0.01 * (v + 0.15 * gauss(r));
        }
      }
    }
  }
  return w;
}

/** A checkpoint for the given layer sizes (PyTorch nn.Linear names, plus input statistics). */
export function fakeCheckpoint(layerSizes: number[], seed: number): Uint8Array {
  const r = rng(seed + 99);
  const tensors: Record<string, Tensor> = {};
  for (let l = 1; l < layerSizes.length; l++) {
    const [inp, out] = [layerSizes[l - 1], layerSizes[l]];
    const data = l === 1 && inp === 3072
      ? fakeFirstLayer(out, seed)
      : Float32Array.from({ length: out * inp }, () => gauss(r) * 0.05);
    tensors[`fc${l}.weight`] = { shape: [out, inp], data };
    tensors[`fc${l}.bias`] = { shape: [out], data: new Float32Array(out) };
  }
  tensors["input.mean"] = { shape: [3072], data: new Float32Array(3072).fill(0.47) };
  tensors["input.std"] = { shape: [3072], data: new Float32Array(3072).fill(0.25) };
  return encodeSafetensors(tensors, { format: "pt" });
}

/** Write a run directory (metrics.json and, unless disabled, weights.safetensors). */
export async function writeFakeRun(dir: string, o: FakeRunOptions): Promise<RunMetrics> {
  await Deno.mkdir(dir, { recursive: true });
  const m = fakeRunMetrics(o);
  await Deno.writeTextFile(join(dir, "metrics.json"), JSON.stringify(m, null, 2));
  if (o.checkpoint !== false) {
    await Deno.writeFile(join(dir, "weights.safetensors"), fakeCheckpoint(o.layerSizes, o.seed));
  }
  return m;
}

/** A gradient audit with one failing GPU row. */
export function fakeGradcheck(): GradcheckReport {
  const rows: GradcheckReport["rows"] = [];
  const r = rng(5);
  const nets: [string, string[]][] = [
    ["20-50-10", ["W1", "b1", "W2", "b2"]],
    ["20-50-50-10 BN", ["W1", "b1", "gamma1", "beta1", "W2", "b2", "W3", "b3"]],
  ];
  for (const [net, params] of nets) {
    for (const lambda of [0, 0.1]) {
      for (const param of params) {
        rows.push({
          net,
          lambda,
          param,
          forward: 10 ** (-6.5 + r()),
          centred: 10 ** (-10 + 2 * r()),
          gpu: 10 ** (-6 + r()),
        });
      }
    }
  }
  rows[5].gpu = 3.2e-3; // one failing row, rendered in red
  rows[2].gpu = null;
  return {
    format: "webgpu-mlp.gradcheck/1",
    h: 1e-5,
    samples: 5,
    dims: 20,
    eps: 1e-10,
    rows,
    thresholds: { centredMax: 1e-6, forwardMax: 1e-4, gpuMax: 1e-3 },
    adapter: "nvidia hopper (NVIDIA H100 80GB HBM3)",
  };
}

/** Write a sweep: two stages, one diverged trial, sweep.json, and the final training's run. */
export async function writeFakeSweep(dir: string): Promise<SweepSummary> {
  await Deno.mkdir(dir, { recursive: true });
  const r = rng(11);
  const trials: TrialRecord[] = [];
  const stage = (name: string, lambdas: number[]) =>
    lambdas.forEach((lambda, index) => {
      const seed = 100 + trials.length;
      const diverged = name === "coarse" && index === lambdas.length - 1;
      const quality = 0.44 - 0.5 * Math.abs(Math.log10(lambda) + 2.7) ** 2 / 10 + r() * 0.01;
      const curves = fakeCurves({
        name: `${name}/${index}`,
        points: 15,
        steps: 1800,
        lambda,
        seed,
        layerSizes: [3072, 50, 10],
        quality,
        divergeAt: diverged ? 0.3 : undefined,
      });
      let best = curves[0];
      for (const p of curves) if (p.val!.accuracy > best.val!.accuracy) best = p;
      const last = curves[curves.length - 1];
      trials.push({
        format: "webgpu-mlp.trial/1",
        id: `${name}/${index}`,
        stage: name,
        index,
        lambda,
        seed,
        status: diverged ? "diverged" : "completed",
        bestVal: { accuracy: best.val!.accuracy, step: best.step },
        final: diverged ? undefined : { train: last.train, val: last.val! },
        curves,
        diverged: diverged
          ? { step: last.step + 120, reason: "Inf in validation cost" }
          : undefined,
      });
    });
  stage("coarse", Array.from({ length: 8 }, (_, i) => 10 ** (-5 + (4 * i) / 7)));
  stage("fine", Array.from({ length: 6 }, () => 10 ** (-3.5 + 1.5 * r())));
  await Deno.writeTextFile(
    join(dir, "trials.jsonl"),
    trials.map((t) => JSON.stringify(t)).join("\n") + "\n",
  );
  const top = (name: string): TopEntry[] =>
    trials
      .filter((t) => t.stage === name && t.status === "completed")
      .sort((a, b) => b.bestVal.accuracy - a.bestVal.accuracy)
      .slice(0, 3)
      .map(topEntry);
  const stages: StageSummary[] = [
    { name: "coarse", space: { kind: "log-uniform-grid", min: 1e-5, max: 0.1, n: 8 } },
    { name: "fine", space: { kind: "log-uniform-random", min: 10 ** -3.5, max: 0.01, n: 6 } },
  ].map((s) => {
    const ts = trials.filter((t) => t.stage === s.name);
    return {
      ...s,
      trials: ts.length,
      completed: ts.filter((t) => t.status === "completed").length,
      diverged: ts.filter((t) => t.status === "diverged").length,
      top: top(s.name),
    };
  });
  const bestLambda = stages[1].top[0].lambda;
  const finalRun = await writeFakeRun(join(dir, "final"), {
    name: "lambda-sweep-final",
    points: 40,
    steps: 4500,
    lambda: bestLambda,
    seed: 7,
    layerSizes: [3072, 50, 10],
    quality: 0.5,
  });
  const summary: SweepSummary = {
    format: "webgpu-mlp.sweep/1",
    name: "lambda-sweep",
    config: { stages: stages.map((s) => ({ name: s.name, space: s.space })), steps: 1800 },
    env: ENV,
    timings: timings(14 * 1800 + 4500, 790),
    stages,
    final: { lambda: bestLambda, run: "final", testAccuracy: finalRun.final.test!.accuracy },
  };
  await Deno.writeTextFile(join(dir, "sweep.json"), JSON.stringify(summary, null, 2));
  return summary;
}

/**
 * Write a sweep whose one stage halved: 9 trials, rungs at steps 600 and 1200 of 1800 with
 * η_r = 3 (9 → 3 → 1), the stopped trials' curves ending at their rung.
 */
export async function writeFakeHalvingSweep(dir: string): Promise<SweepSummary> {
  await Deno.mkdir(dir, { recursive: true });
  const rungs = [600, 1200];
  const lambdas = Array.from({ length: 9 }, (_, i) => 10 ** (-5 + i / 2));
  const quality = lambdas.map((l) => 0.44 - 0.5 * Math.abs(Math.log10(l) + 2.7) ** 2 / 10);
  // by quality: the best 3 pass rung 1, the best of them rung 2
  const order = [...lambdas.keys()].sort((a, b) => quality[b] - quality[a]);
  const trials: TrialRecord[] = lambdas.map((lambda, index) => {
    const rank = order.indexOf(index);
    const rung = rank >= 3 ? 1 : rank >= 1 ? 2 : 0;
    const all = fakeCurves({
      name: `asha/${index}`,
      points: 13,
      steps: 1800,
      lambda,
      seed: 300 + index,
      layerSizes: [3072, 50, 10],
      quality: quality[index],
    });
    const curves = rung ? all.filter((p) => p.step <= rungs[rung - 1]) : all;
    let best = curves[0];
    for (const p of curves) if (p.val!.accuracy > best.val!.accuracy) best = p;
    const last = curves[curves.length - 1];
    return {
      format: "webgpu-mlp.trial/1",
      id: `asha/${index}`,
      stage: "asha",
      index,
      lambda,
      seed: 5,
      status: rung ? "stopped" : "completed",
      bestVal: { accuracy: best.val!.accuracy, step: best.step },
      final: { train: last.train, val: last.val! },
      curves,
      ...(rung ? { stopped: { rung, step: rungs[rung - 1] } } : {}),
    };
  });
  await Deno.writeTextFile(
    join(dir, "trials.jsonl"),
    trials.map((t) => JSON.stringify(t)).join("\n") + "\n",
  );
  const summary: SweepSummary = {
    format: "webgpu-mlp.sweep/1",
    name: "asha-sweep",
    config: { stages: [{ name: "asha", halving: { rungs, reduction: 3 } }] },
    env: ENV,
    timings: timings(9 * 600 + 3 * 600 + 600, 500),
    stages: [{
      name: "asha",
      space: { kind: "list", values: lambdas },
      trials: 9,
      completed: 1,
      diverged: 0,
      stopped: 8,
      halving: { rungs, reduction: 3 },
      top: trials.filter((t) => t.status === "completed").map(topEntry),
    }],
  };
  await Deno.writeTextFile(join(dir, "sweep.json"), JSON.stringify(summary, null, 2));
  return summary;
}

/** A name with every character that could break out of HTML or a script element. */
export const EVIL = `evil</script><script>window.__pwned=1</script>"'<b>&amp;<!-- \u2028`;

/**
 * The config of {@link writeFakeHyperSweep}: stage `coarse` searches λ and η_max (12 random
 * points), stage `fine` λ, η_max and σ (8 points).
 */
export function hyperSweepConfig(rankBy: "final" | "best" = "final"): Record<string, unknown> {
  return {
    name: "hyper-sweep",
    seed: 5,
    data: { train: [1], val: { holdout: 1000 }, test: false },
    model: { hidden: [50], init: "gaussian", sigma: 0.01 },
    train: {
      batchSize: 100,
      schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 300, cycles: 1 },
      evalEvery: 60,
    },
    search: {
      stages: [
        {
          name: "coarse",
          space: {
            kind: "random",
            count: 12,
            seed: 3,
            dims: { lambda: { logUniform: [1e-5, 1e-1] }, etaMax: { logUniform: [1e-3, 1e-1] } },
          },
        },
        {
          name: "fine",
          space: {
            kind: "random",
            count: 8,
            seed: 4,
            dims: {
              lambda: { logUniform: [1e-4, 1e-2] },
              etaMax: { logUniform: [5e-3, 5e-2] },
              sigma: { logUniform: [1e-3, 1e-1] },
            },
          },
        },
      ],
      population: 4,
      rankBy,
    },
  };
}

/**
 * Write a sweep over several hyperparameters ({@link hyperSweepConfig}): every trial with its
 * values in `hyper` as the sweep plans them, the coarse trial with the highest η_max diverged;
 * `sweep.config.json` always, `sweep.json` unless `summary` is false (a sweep still running).
 */
export async function writeFakeHyperSweep(
  dir: string,
  opts: { summary?: boolean; rankBy?: "final" | "best" } = {},
): Promise<TrialRecord[]> {
  await Deno.mkdir(dir, { recursive: true });
  const raw = hyperSweepConfig(opts.rankBy);
  const cfg = parseConfig(raw, "hyper-sweep.json");
  const r = rng(23);
  const trials: TrialRecord[] = [];
  for (const st of cfg.search!.stages) {
    const points = samplePoints(st.space);
    const highest = Math.max(...points.map((p) => p.etaMax!));
    points.forEach((hyper, index) => {
      const seed = cfg.seed;
      const diverged = st.name === "coarse" && hyper.etaMax === highest;
      const quality = 0.46 - 0.012 * (Math.log10(hyper.lambda!) + 2.7) ** 2 -
        0.03 * (Math.log10(hyper.etaMax!) + 1.6) ** 2 -
        (hyper.sigma ? 0.01 * (Math.log10(hyper.sigma) + 2) ** 2 : 0) + r() * 0.01;
      const curves = fakeCurves({
        name: `${st.name}/${index}`,
        points: 11,
        steps: 600,
        lambda: hyper.lambda!,
        seed: seed + trials.length,
        layerSizes: [3072, 50, 10],
        quality,
        divergeAt: diverged ? 0.4 : undefined,
      });
      let best = curves[0];
      for (const p of curves) if (p.val!.accuracy > best.val!.accuracy) best = p;
      const last = curves[curves.length - 1];
      trials.push({
        format: "webgpu-mlp.trial/1",
        id: `${st.name}/${index}`,
        stage: st.name,
        index,
        lambda: hyper.lambda!,
        hyper,
        seed,
        status: diverged ? "diverged" : "completed",
        bestVal: { accuracy: best.val!.accuracy, step: best.step },
        ...(diverged ? {} : { final: { train: last.train, val: last.val! } }),
        curves,
        ...(diverged ? { diverged: { step: last.step + 60, reason: "NaN in training loss" } } : {}),
      });
    });
  }
  await Deno.writeTextFile(join(dir, "sweep.config.json"), JSON.stringify(raw, null, 2));
  await Deno.writeTextFile(
    join(dir, "trials.jsonl"),
    trials.map((t) => JSON.stringify(t)).join("\n") + "\n",
  );
  if (opts.summary === false) return trials;
  const stages: StageSummary[] = cfg.search!.stages.map((st) => {
    const ts = trials.filter((t) => t.stage === st.name);
    return {
      name: st.name,
      space: { ...st.space },
      trials: ts.length,
      completed: ts.filter((t) => t.status === "completed").length,
      diverged: ts.filter((t) => t.status === "diverged").length,
      top: topK(ts, 3, cfg.search!.rankBy),
    };
  });
  const summary: SweepSummary = {
    format: "webgpu-mlp.sweep/1",
    name: "hyper-sweep",
    config: cfg,
    env: ENV,
    timings: timings(trials.length * 600, 790),
    stages,
  };
  await Deno.writeTextFile(join(dir, "sweep.json"), JSON.stringify(summary, null, 2));
  return trials;
}
