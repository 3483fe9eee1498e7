/**
 * webgpu-mlp: train multi-layer perceptrons on CIFAR-10 with WebGPU compute shaders, from Deno.
 *
 * The command-line tasks (`deno task train`, `eval`, `gradcheck`, `report`, `data`, `bench`) are
 * thin wrappers over this API:
 *
 * ```ts
 * import { loadConfig, runExperiment } from "./mod.ts";
 * const cfg = await loadConfig("experiments/cyclic-1.json");
 * const { dir, metrics } = await runExperiment(cfg);
 * console.log(dir, metrics.final.test?.accuracy);
 * ```
 *
 * Layers of the library, from the bottom: GPU plumbing (`getGpu`, buffers, pipelines), kernels
 * (one WGSL file each in `shaders/`, a TypeScript wrapper in `src/kernels/`, a float64 twin in
 * `src/reference/`), the model (parameters, initialisation, checkpoints), training (graph,
 * schedules, the population trainer, evaluation), and experiments (configs, runs, reports).
 *
 * @module
 */

// configs and runs
export {
  type Config,
  type ConfigOverrides,
  configSchema,
  loadConfig,
  parseConfig,
} from "./src/config.ts";
export { UserError } from "./src/errors.ts";
export { prepareData, runExperiment, type RunOptions } from "./src/train/run.ts";
export type {
  EnvInfo,
  EvalPoint,
  GradcheckReport,
  GradcheckRow,
  RunMetrics,
  SplitMetrics,
  TestMetrics,
  Timings,
} from "./src/train/metrics.ts";

// GPU plumbing
export { acquireGpu, getGpu, type Gpu } from "./src/gpu/device.ts";

// data
export {
  type Cifar10,
  loadCifar10,
  normalisationStats,
  resolveDataDir,
  type Split,
  type SplitSpec,
} from "./src/data/cifar10.ts";
export { downloadCifar10 } from "./src/data/download.ts";
export { type ResidentDataset, uploadDataset } from "./src/data/resident.ts";

// model
export { initParams, type InitScheme, type Params } from "./src/model/init.ts";
export { GpuParams } from "./src/model/gpu_params.ts";
export { type Checkpoint, decodeCheckpoint, encodeCheckpoint } from "./src/model/checkpoint.ts";
export { Rng } from "./src/model/rng.ts";

// training
export {
  type PopulationSpec,
  type TrainData,
  trainPopulation,
  type TrainResult,
} from "./src/train/trainer.ts";
export { learningRate, type Schedule, totalSteps } from "./src/train/schedule.ts";
export { Evaluator } from "./src/train/evaluate.ts";
export { evaluateCheckpoint } from "./src/train/eval_checkpoint.ts";

// float64 reference and the gradient audit
export { evaluate, forward, gradients, numericalGradients } from "./src/reference/network.ts";
export { runGradcheck } from "./src/reference/gradcheck.ts";

// kernels (advanced: build your own dispatches)
export {
  type Epilogue,
  matmulOp,
  type MatmulSpec,
  type MatmulVariant,
} from "./src/kernels/matmul.ts";
export { encodeOp, type Op, runOps } from "./src/kernels/op.ts";

// reports
export { writeReport } from "./src/report/mod.ts";
