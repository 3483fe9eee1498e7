/**
 * The public types of a validated config. They are written by hand, not derived with `z.infer`,
 * so that every key keeps its documentation; a compile-time check below makes sure they describe
 * exactly what the schema produces.
 *
 * @module
 */

import type { z } from "zod";
import type { Schedule } from "../train/schedule.ts";
import type { configSchema } from "./schema.ts";

/** Random augmentation of training samples (`data.augment`). */
export interface AugmentConfig {
  /** Mirror each training sample left-right with probability 1/2. */
  flip: boolean;
  /** Shift each training sample by up to this many pixels in x and y (0 … 31; 0 = off). */
  translate: number;
}

/** The validation split (`data.val`): exactly one of the two keys. */
export interface ValConfig {
  /** Training batch 1–5 (not among `data.train`) used as the validation set. */
  batch?: number;
  /** The last N samples of the concatenated training batches, held out. */
  holdout?: number;
}

/** Where the data comes from and how it is split (`data`). */
export interface DataConfig {
  /** CIFAR-10 directory (default: --data, $CIFAR10_DIR, or the usual places). */
  dir?: string;
  /** Training batches, 1–5, distinct. */
  train: number[];
  /** Validation split; absent = none. */
  val?: ValConfig;
  /** Evaluate the final model on test_batch.bin. */
  test: boolean;
  /** Random augmentation of training batches in the gather kernel. */
  augment?: AugmentConfig;
}

/** The network (`model`). */
export interface ModelConfig {
  /** Hidden layer sizes (each 1 … 8192); [] is softmax regression. */
  hidden: number[];
  /** Weight initialisation: N(0, sigma²), N(0, 1/n_in) or N(0, 2/n_in). */
  init: "gaussian" | "xavier" | "he";
  /** σ of the `gaussian` initialisation. */
  sigma: number;
  /** Batch normalisation on every hidden layer, or one flag per hidden layer. */
  bn: boolean | boolean[];
  /** Momentum α of BN's running statistics, in (0, 1). */
  bnAlpha: number;
  /** Apply the L2 term to BN's γ and β too. */
  bnL2: boolean;
  /** Dropout probability after each hidden ReLU (one for all, or one per hidden layer), in [0, 1). */
  dropout: number | number[];
}

/** The optimiser (`train.optimizer`). */
export type OptimizerConfig =
  | { kind: "sgd" }
  | {
    kind: "adam";
    /** First-moment decay, in [0, 1). */
    beta1: number;
    /** Second-moment decay, in [0, 1). */
    beta2: number;
    /** Added to √v̂, > 0. */
    eps: number;
  };

/** Training (`train`). */
export interface TrainConfig {
  /** Mini-batch size. */
  batchSize: number;
  /** L2 strength λ: cost = loss + λ·Σ‖W‖². */
  lambda: number;
  /** Learning-rate schedule. */
  schedule: Schedule;
  /** SGD (default) or Adam. */
  optimizer: OptimizerConfig;
  /** Steps between evaluations (default: 10 points per cycle, or one per epoch). */
  evalEvery?: number;
  /** Write weights.safetensors at the end. */
  checkpoint: boolean;
}

/** λ = 10^U(log10 min, log10 max), seeded. */
export interface LogUniformSpace {
  /** Space kind. */
  kind: "logUniform";
  /** Lower end of the range, > 0. */
  min: number;
  /** Upper end of the range, > min. */
  max: number;
  /** Number of λ values. */
  count: number;
  /** Seed of the draws. */
  seed: number;
}

/** Exactly these λ values. */
export interface ListSpace {
  /** Space kind. */
  kind: "list";
  /** λ values, each ≥ 0. */
  values: number[];
}

/** A hyperparameter a search space may span (see `SPACE_DIMS` in `schema.ts`). */
export type SpaceDim = "lambda" | "etaMax" | "etaMin" | "eta" | "sigma" | "dropout";

/**
 * One dimension of a search space: exactly one of `logUniform`, `uniform`, `list` or `grid`
 * (`grid` with `count`, and optionally `scale`).
 */
export interface DimSpec {
  /** Random draws 10^U(log10 min, log10 max) from [min, max], min > 0. */
  logUniform?: [number, number];
  /** Random draws U(min, max). */
  uniform?: [number, number];
  /** Exactly these values (a random space draws one of them, each equally likely). */
  list?: number[];
  /** `count` evenly spaced values from min to max, both included. */
  grid?: [number, number];
  /** Number of values of a `grid`. */
  count?: number;
  /** Spacing of a `grid`: geometric (`log`, the default; min > 0) or even (`linear`). */
  scale?: "log" | "linear";
}

/** The dimensions of a space, by name: each one a {@link DimSpec}. */
export interface SpaceDims {
  /** L2 strength λ (≥ 0). */
  lambda?: DimSpec;
  /** Highest η of a cyclic schedule (> 0). */
  etaMax?: DimSpec;
  /** Lowest η of a cyclic schedule (> 0). */
  etaMin?: DimSpec;
  /** η of a constant or step-decay schedule (> 0). */
  eta?: DimSpec;
  /** σ of the gaussian initialisation (> 0). */
  sigma?: DimSpec;
  /** Dropout probability of every hidden layer, in [0, 1). */
  dropout?: DimSpec;
}

/**
 * Evenly spaced λ values, both ends included (`min`, `max`, `count`, `scale`), or the Cartesian
 * product of `dims`, each a `list` or a `grid`: exactly one of the two forms.
 */
export interface GridSpace {
  /** Space kind. */
  kind: "grid";
  /** First λ (> 0 on a log grid). */
  min?: number;
  /** Last λ. */
  max?: number;
  /** Number of λ values. */
  count?: number;
  /** Geometric (`log`) or even (`linear`) spacing of λ; `parseConfig` fills in `log`. */
  scale?: "log" | "linear";
  /** The dimensions whose product the grid is (the first varies slowest, in `SPACE_DIMS` order). */
  dims?: SpaceDims;
}

/** `count` points drawn at random, every dimension independently, seeded. */
export interface RandomSpace {
  /** Space kind. */
  kind: "random";
  /** Number of points (trials). */
  count: number;
  /** Seed of the draws. */
  seed: number;
  /** The dimensions drawn. */
  dims: SpaceDims;
}

/** How far an around space searches in one dimension. */
export interface AroundDim {
  /** Half-width: decades on a log scale (default: the space's `width`); own units for dropout. */
  width?: number;
}

/** The dimensions an around space searches, by name. */
export interface AroundDims {
  /** L2 strength λ (log scale). */
  lambda?: AroundDim;
  /** Highest η of a cyclic schedule (log scale). */
  etaMax?: AroundDim;
  /** Lowest η of a cyclic schedule (log scale). */
  etaMin?: AroundDim;
  /** η of a constant or step-decay schedule (log scale). */
  eta?: AroundDim;
  /** σ of the gaussian initialisation (log scale). */
  sigma?: AroundDim;
  /** Dropout probability (linear scale: its width is required). */
  dropout?: AroundDim;
}

/** Points around the best trials of an earlier stage. */
export interface AroundSpace {
  /** Space kind. */
  kind: "around";
  /** The stage whose best trials to search around. */
  stage: string;
  /** A previous sweep holding that stage (a name under `out`, or a path); absent: this sweep. */
  sweep?: string;
  /** How many of its best trials to use. */
  top: number;
  /**
   * `range`: uniform (in log space for log-scaled dimensions) over their span widened by
   * `width`; `perturb`: each centre moved by U(±width) in every dimension, `count` per centre.
   */
  mode: "range" | "perturb";
  /** Half-width in decades (of every log-scaled dimension without its own). */
  width: number;
  /** Points (per centre with `perturb`). */
  count: number;
  /** Seed of the draws. */
  seed: number;
  /** The dimensions to search in (default: those of `stage`), each with an optional width. */
  dims?: AroundDims;
}

/** A search space: of λ values, or of points over several hyperparameters. */
export type SpaceConfig = LogUniformSpace | ListSpace | GridSpace | AroundSpace | RandomSpace;

/** Training keys a search stage or the final training may override. */
export interface TrainOverride {
  /** Mini-batch size. */
  batchSize?: number;
  /** Learning-rate schedule. */
  schedule?: Schedule;
  /** Steps between evaluations. */
  evalEvery?: number;
}

/**
 * Successive halving of a stage's populations (`search.stages[i].halving`): at each rung the
 * models are ranked by validation accuracy and only the ⌈n/reduction⌉ best go on.
 */
export interface HalvingConfig {
  /**
   * Update steps at which to rank and cut, increasing, each before the last step (default: the
   * end of each cycle but the last; required for schedules that are not cyclic).
   */
  rungs?: number[];
  /** η_r > 1: of n models, ⌈n/η_r⌉ (at least 1) go on at a rung (default 3). */
  reduction: number;
}

/**
 * Population-based training of a stage's populations (`search.stages[i].pbt`): every
 * `interval` steps the models are ranked by validation accuracy, the bottom quantile copies
 * the state of models of the top quantile and goes on with values explored from theirs.
 */
export interface PbtConfig {
  /** Update steps between exploits (every multiple of it before the last step). */
  interval: number;
  /** Fraction of the population that copies at each exploit, in (0, 0.5] (default 0.25). */
  quantile: number;
  /** Factors a perturbation multiplies a value by, each > 0 (default [0.8, 1.2]). */
  perturb: number[];
  /** Probability in [0, 1] that a value is redrawn from the space instead (default 0.25). */
  resample: number;
  /** Seed of the exploit draws (default 0). */
  seed: number;
  /** The dimensions of the space to explore (default: each one but σ, fixed at initialisation). */
  dims?: ("lambda" | "etaMax" | "etaMin" | "eta" | "dropout")[];
}

/** One stage of a λ search. */
export interface StageConfig {
  /** Stage name (letters, digits, `._-`), unique in the config. */
  name: string;
  /** Where its trials' λ (and other hyperparameters) come from. */
  space: SpaceConfig;
  /** Rows of its top-k table (and trials later stages may search around). */
  top: number;
  /** Training keys this stage changes. */
  train?: TrainOverride;
  /** Successive halving inside the stage's populations. */
  halving?: HalvingConfig;
  /** Population-based training of the stage's populations (not with `halving`). */
  pbt?: PbtConfig;
}

/** The final training of a sweep, with the best trial of its last stage (every dimension). */
export interface FinalConfig {
  /** Data of the final training (default: the sweep's). */
  data?: { train?: number[]; val?: ValConfig };
  /** Training keys it changes. */
  train?: TrainOverride;
}

/** A λ sweep (`search`). */
export interface SearchConfig {
  /** Stages, in order. */
  stages: StageConfig[];
  /** Models trained at once, at most. */
  population: number;
  /** `same`: every trial starts from the config's seed; `vary`: trial i uses seed + i. */
  seeds: "same" | "vary";
  /** Rank trials by their final or best validation accuracy. */
  rankBy: "final" | "best";
  /** Train once more with the best trial of the last stage (its λ and every other dimension). */
  final?: FinalConfig;
}

/** One run of a multi-run config (`variants`): a name and the keys it changes. */
export interface VariantConfig {
  /** Variant name: its run goes to <out>/<name>/<variant>/. */
  name: string;
  /** Seed of this variant. */
  seed?: number;
  /** Model keys it changes. */
  model?: Partial<ModelConfig>;
  /** Training keys it changes. */
  train?: Partial<Omit<TrainConfig, "checkpoint">>;
}

/** A validated config with every default filled in (the file's shape, see the README). */
export interface Config {
  /** Run name: the output goes to <out>/<name>. */
  name: string;
  /** Seed of the initialisation, shuffles, dropout and augmentation. */
  seed: number;
  /** Parent directory of run directories. */
  out: string;
  /** Data and splits. */
  data: DataConfig;
  /** The network. */
  model: ModelConfig;
  /** Training. */
  train: TrainConfig;
  /** A λ search: the config is a sweep. */
  search?: SearchConfig;
  /** Several runs from one config. */
  variants?: VariantConfig[];
}

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
// The hand-written types above must describe exactly what the schema produces.
const _configMatchesSchema: Same<
  z.infer<typeof configSchema>,
  Omit<Config, "name"> & { name?: string }
> = true;
void _configMatchesSchema;

/** Values given on the command line, which win over the file. */
export interface ConfigOverrides {
  /** `--name`: the run name (`name`). */
  name?: string;
  /** `--seed`: seed of initialisation and shuffles (`seed`). */
  seed?: number;
  /** `--lambda`: L2 strength λ (`train.lambda`). */
  lambda?: number;
  /** `--out`: parent directory of run directories (`out`). */
  out?: string;
  /** `--data`: the CIFAR-10 directory (`data.dir`). */
  data?: string;
}
