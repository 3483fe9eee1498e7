/**
 * webgpu-mlp: train multi-layer perceptrons on CIFAR-10 with WebGPU compute shaders, from Deno.
 *
 * The command-line tasks (`deno task train`, `sweep`, `eval`, `gradcheck`, `report`, `data`,
 * `bench`) are thin wrappers over this API:
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
 * schedules, the population trainer, evaluation), and experiments (configs, runs, sweeps,
 * variants, reports).
 *
 * @module
 */

// configs, runs, sweeps and variants
export {
  type AroundDim,
  type AroundDims,
  type AroundSpace,
  type AugmentConfig,
  type Config,
  type ConfigOverrides,
  type DataConfig,
  type DimSpec,
  type FinalConfig,
  type GridSpace,
  type HalvingConfig,
  type ListSpace,
  loadConfig,
  type LogUniformSpace,
  type ModelConfig,
  type OptimizerConfig,
  parseConfig,
  type PbtConfig,
  type RandomSpace,
  type SearchConfig,
  SPACE_DIMS,
  type SpaceConfig,
  type SpaceDim,
  type SpaceDims,
  type StageConfig,
  type TrainConfig,
  type TrainOverride,
  type ValConfig,
  type VariantConfig,
  variantConfig,
} from "./src/config.ts";
export { UserError } from "./src/errors.ts";
export {
  prepareData,
  type PreparedData,
  runExperiment,
  type RunOptions,
  type RunOutcome,
} from "./src/train/run.ts";
export {
  readSnapshot,
  type Snapshot,
  type StoredSnapshot,
  writeSnapshot,
} from "./src/train/snapshot.ts";
export { maxPopulation, type Preflight, preflight } from "./src/train/preflight.ts";
export { acquireLock, type Lock, type LockInfo } from "./src/io/lock.ts";
export { checkName, nameProblem, RESERVED_NAMES } from "./src/io/names.ts";
export { runVariants } from "./src/train/variants.ts";
export { mergeSweep, runSweep, type SweepOptions } from "./src/sweep/sweep.ts";
export { parseShard, resolveShard, type Shard } from "./src/sweep/shard.ts";
export type {
  PbtTrialEvent,
  StageSummary,
  SweepSummary,
  TopEntry,
  TrialRecord,
} from "./src/sweep/types.ts";
export {
  DIM_INFO,
  type DimInfo,
  groupPopulations,
  type Hyper,
  PER_MODEL_DIMS,
  populationKey,
} from "./src/sweep/hyper.ts";
export { samplePoints } from "./src/sweep/space.ts";
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
export {
  acquireGpu,
  type AcquireOptions,
  type AdapterSummary,
  getGpu,
  type Gpu,
  type KernelProfile,
  READONLY_STORAGE_TEXTURES,
  type TextureReads,
  textureReads,
  textureReadsOf,
} from "./src/gpu/device.ts";

// data
export { resolveDataDir } from "./src/data/data_dir.ts";
export { type Split, type SplitSpec } from "./src/data/splits.ts";
export { normalisationStats, type NormStats } from "./src/data/normalise.ts";
export { type Cifar10, loadCifar10 } from "./src/data/cifar10.ts";
export { type Batch } from "./src/data/format.ts";
export { downloadCifar10, type DownloadOptions } from "./src/data/download.ts";
export {
  datasetImages,
  type DatasetPart,
  IMAGES_PER_TEXTURE_ROW,
  type ResidentDataset,
  type SplitRange,
  uploadDataset,
} from "./src/data/resident.ts";

// model
export { type BnParams, initParams, type InitScheme, type Params } from "./src/model/init.ts";
export { type GpuBn, GpuParams, type LayerLayout } from "./src/model/gpu_params.ts";
export {
  type Checkpoint,
  CHECKPOINT_FORMAT,
  decodeCheckpoint,
  encodeCheckpoint,
  INPUT_METADATA,
} from "./src/model/checkpoint.ts";
export { Rng } from "./src/model/rng.ts";

// training
export {
  type ExploitEvent,
  type ModelResult,
  type PopulationSpec,
  type Progress,
  type RungEvent,
  type TrainData,
  trainDataOf,
  type TrainOptions,
  trainPopulation,
  type TrainResult,
} from "./src/train/trainer.ts";
export {
  DEFAULT_REDUCTION,
  defaultRungs,
  type HalvingSpec,
  keepCount,
  selectModels,
  survivors,
} from "./src/train/halving.ts";
export { BlockCopier, encodeCompaction } from "./src/train/compact.ts";
export {
  exploit,
  exploitSteps,
  PBT_DIMS,
  type PbtDim,
  type PbtDimName,
  type PbtEvent,
  type PbtMove,
  type PbtSpec,
  type PbtValues,
  quantileCount,
  valuesOf,
  withValues,
} from "./src/train/pbt.ts";
export {
  type ConstantSchedule,
  type CyclicSchedule,
  learningRate,
  type Schedule,
  type StepDecaySchedule,
  totalSteps,
} from "./src/train/schedule.ts";
export { type EvalRequest, Evaluator, type SlotSums } from "./src/train/evaluate.ts";
export {
  type CheckpointEval,
  type EvalData,
  evaluateCheckpoint,
  loadCheckpointFile,
  loadEvalData,
} from "./src/train/eval_checkpoint.ts";
export {
  type AdamState,
  adamStep,
  type BackwardOptions,
  backwardPass,
  type BackwardTarget,
  createGrads,
  createWorkspace,
  type ForwardOptions,
  forwardPass,
  type GradBuffers,
  lossOf,
  type NetOptions,
  type Workspace,
  type WorkspaceOptions,
} from "./src/train/graph.ts";
export type { Augment, BnDropout, DropoutTable } from "./src/nn/shared.ts";

// float64 reference and the gradient audit
export {
  type BnCache,
  type CostOptions,
  evaluate,
  type Forward,
  forward,
  gradients,
  type Grads,
  numericalGradients,
} from "./src/reference/network.ts";
export { type GradcheckOptions, runGradcheck } from "./src/reference/gradcheck.ts";

// kernels (advanced: build your own dispatches)
export {
  type Epilogue,
  type ImagesOperand,
  matmulOp,
  type MatmulSpec,
  type MatmulVariant,
  type Operand,
  type TextureOperand,
  type Tile,
} from "./src/kernels/matmul.ts";
export { type GatherSpec } from "./src/kernels/gather.ts";
export { type TailGather } from "./src/kernels/tail.ts";
export {
  type BufferCopy,
  type Copy,
  encodeOp,
  type Op,
  type OpCost,
  OpEncoder,
  runOps,
  type TextureCopy,
} from "./src/kernels/op.ts";
export {
  kernel,
  LONG_ROWS,
  type Matrix,
  matrix,
  type MatrixOptions,
  type Node,
  type PlacedOps,
  type PlacementOptions,
  placeOps,
  product,
  type ProductSpec,
  storageOf,
  writeRows,
} from "./src/kernels/placement.ts";

// reports
export { writeReport, type WriteReportOptions } from "./src/report/mod.ts";
