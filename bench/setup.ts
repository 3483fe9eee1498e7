/**
 * What every benchmark shares: the GPU (with timestamp queries when the adapter has them), the
 * CIFAR-10 splits resident on it, and "bench nets": a population's parameters plus the trainer's
 * own training-step dispatches (`trainingStep(...).ops`), ready to be encoded many times.
 *
 * @module
 */

import { parseConfig } from "../src/config.ts";
import { getGpu, type Gpu, type KernelProfile } from "../src/gpu/device.ts";
import { OpEncoder } from "../src/kernels/op.ts";
import { GpuParams } from "../src/model/gpu_params.ts";
import { initParams } from "../src/model/init.ts";
import { populationSpec, prepareData, type PreparedData } from "../src/train/run.ts";
import type { Schedule } from "../src/train/schedule.ts";
import {
  type PopulationSpec,
  STEP_CHUNK,
  type TrainData,
  type TrainingStep,
  trainingStep,
  writeStepChunk,
} from "../src/train/trainer.ts";

/** The learning-rate schedule of step and epoch timings (η changes every step, as in training). */
export const BENCH_SCHEDULE: Schedule = {
  kind: "cyclic",
  etaMin: 1e-5,
  etaMax: 0.1,
  stepSize: 500,
  cycles: 1,
};

/** L2 strength of step and epoch timings. */
export const BENCH_LAMBDA = 0.01;

/** GPU and data of a benchmark run. */
export interface BenchContext {
  gpu: Gpu;
  data: PreparedData;
  /** Training split (the epoch) and validation split, resident on the GPU. */
  train: TrainData;
  /** CIFAR-10 training batches that form the epoch. */
  trainBatches: number[];
}

/** Acquire the GPU (timestamps on when available) and load train batches + val batch 2. */
export async function openContext(trainBatches: number[], dataDir?: string): Promise<BenchContext> {
  // first call decides the device options: ask for timestamp queries before prepareData does
  const gpu = await getGpu({ timestamps: true });
  const val = [1, 2, 3, 4, 5].find((b) => !trainBatches.includes(b));
  const cfg = parseConfig(
    {
      data: {
        dir: dataDir,
        train: trainBatches,
        val: val ? { batch: val } : undefined,
        test: false,
      },
      train: { schedule: BENCH_SCHEDULE },
    },
    "bench",
  );
  const data = await prepareData(cfg);
  const splits = data.dataset.splits;
  return {
    gpu,
    data,
    train: { dataset: data.dataset, train: splits.train, val: splits.val ?? null, test: null },
    trainBatches,
  };
}

/** Short name of a layer-size list: `3072-50-10`. */
export function netName(sizes: readonly number[]): string {
  return sizes.join("-");
}

/** A population spec for the benchmark nets (the config defaults: Xavier init, seed 0). */
export function benchSpec(
  ctx: BenchContext,
  sizes: number[],
  batchSize: number,
  lambdas: number[],
  schedule: Schedule = BENCH_SCHEDULE,
  evalEvery?: number,
): PopulationSpec {
  const cfg = parseConfig(
    {
      data: { train: ctx.trainBatches, test: false },
      model: { hidden: sizes.slice(1, -1) },
      train: { batchSize, schedule, evalEvery },
    },
    "bench",
  );
  return populationSpec(cfg, ctx.train.train.n, lambdas, lambdas.map((_, i) => i));
}

/** A population on the GPU with its training-step dispatches, stepping through epochs. */
export class BenchNet {
  readonly ctx: BenchContext;
  readonly spec: PopulationSpec;
  readonly params: GpuParams;
  readonly step: TrainingStep;
  readonly stepsPerEpoch: number;
  /** Index of the next step to run (selects the epoch's permutation and the batch position). */
  t = 0;

  constructor(
    ctx: BenchContext,
    spec: PopulationSpec,
    opts: { tail?: boolean; gather?: boolean; images?: boolean; profile?: KernelProfile } = {},
  ) {
    this.ctx = ctx;
    this.spec = spec;
    const device = ctx.gpu.device;
    this.params = new GpuParams(device, spec.sizes, spec.lambdas);
    spec.seeds.forEach((seed, z) =>
      this.params.upload(z, initParams(spec.sizes, spec.init, spec.sigma, seed))
    );
    this.step = trainingStep(this.params, ctx.train, spec, {
      textures: ctx.gpu.prefersTextures,
      tail: opts.tail ?? ctx.gpu.fuseTail,
      gather: opts.gather ?? ctx.gpu.fuseGather,
      images: opts.images ?? ctx.gpu.fuseImages,
      profile: opts.profile ?? ctx.gpu.kernelProfile,
    });
    this.stepsPerEpoch = Math.floor(ctx.train.train.n / spec.batchSize);
  }

  /**
   * Encode `n` whole training steps (at most {@link STEP_CHUNK} per submission, as the trainer
   * does), submit, and wait once for the GPU. Returns the wall time in milliseconds.
   */
  async runSteps(n: number): Promise<number> {
    const device = this.ctx.gpu.device;
    const t0 = performance.now();
    for (let done = 0; done < n;) {
      const k = Math.min(STEP_CHUNK, n - done);
      this.encodeChunk(k);
      done += k;
    }
    await device.queue.onSubmittedWorkDone();
    const ms = performance.now() - t0;
    this.ctx.gpu.check();
    return ms;
  }

  /** Run one whole epoch from its first step (a fresh shuffle); returns the wall time in ms. */
  runEpoch(): Promise<number> {
    this.t = Math.ceil(this.t / this.stepsPerEpoch) * this.stepsPerEpoch;
    return this.runSteps(this.stepsPerEpoch);
  }

  /** Write the step table for the next `k` steps and submit them as one compute pass. */
  private encodeChunk(k: number): void {
    const device = this.ctx.gpu.device;
    writeStepChunk(this.params, this.step.steps, this.spec, this.stepsPerEpoch, this.t, this.t + k);
    const enc = device.createCommandEncoder();
    const ops = new OpEncoder(enc);
    ops.encodeAll(this.step.prologue);
    for (let s = 0; s < k; s++) ops.encodeAll(this.step.ops, s);
    ops.end();
    device.queue.submit([enc.finish()]);
    this.t += k;
  }

  /** Free the GPU buffers. */
  destroy(): void {
    this.step.destroy();
    this.params.destroy();
  }
}
