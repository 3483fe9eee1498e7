/**
 * The config schema: every key of a config file, its type, bounds and default. Parsing, the
 * checks between keys and the one-line messages live in `../config.ts` and `./messages.ts`.
 *
 * @module
 */

import { z } from "zod";

// the bounds before the integer check: 1e20 as a seed is "≤ 4294967295", not the safe-integer bound
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().min(min).max(max).int();
const positive = () => z.number().positive().finite();

const cyclic = z.strictObject({
  kind: z.literal("cyclic"),
  /** Lowest and highest learning rate of the triangle. */
  etaMin: positive(),
  etaMax: positive(),
  /** n_s: steps from etaMin to etaMax. */
  stepSize: int(1),
  cycles: int(1),
});
const constant = z.strictObject({
  kind: z.literal("constant"),
  eta: positive(),
  epochs: int(1),
});
const stepDecay = z.strictObject({
  kind: z.literal("stepDecay"),
  eta: positive(),
  /** Factor applied every `every` epochs, in (0, 1]. */
  decay: z.number().gt(0).max(1),
  every: int(1),
  epochs: int(1),
});

/** A learning-rate schedule: cyclic, constant or step decay. */
export const scheduleSchema = z.discriminatedUnion("kind", [cyclic, constant, stepDecay]);

const valSchema = z.strictObject({
  /** Use training batch N (1–5, not among `train`) as the validation set… */
  batch: int(1, 5).optional(),
  /** …or hold out the last N samples of the training batches. */
  holdout: int(1).optional(),
});

const augmentSchema = z.strictObject({
  /** Mirror each training sample left-right with probability 1/2. */
  flip: z.boolean().default(false),
  /** Shift each training sample by up to this many pixels in x and y (0 = off). */
  translate: int(0, 31).default(0),
});

const dataSchema = z.strictObject({
  /** CIFAR-10 directory (default: --data, $CIFAR10_DIR, or the usual places). */
  dir: z.string().min(1).optional(),
  /** Training batches, 1–5. */
  train: z.array(int(1, 5)).min(1).max(5),
  /** Validation split; absent = none. */
  val: valSchema.optional(),
  /** Evaluate the final model on test_batch. */
  test: z.boolean().default(true),
  /** Random augmentation of training batches, done in the gather kernel. */
  augment: augmentSchema.optional(),
});

const modelSchema = z.strictObject({
  /** Hidden layer sizes; [] is softmax regression. */
  hidden: z.array(int(1, 8192)).max(64).default([50]),
  init: z.enum(["gaussian", "xavier", "he"]).default("xavier"),
  /** Standard deviation of the `gaussian` initialisation. */
  sigma: positive().default(0.01),
  /** Batch normalisation: true for every hidden layer, or one flag per hidden layer. */
  bn: z.union([z.boolean(), z.array(z.boolean()).max(64)]).default(false),
  /** Running mean/variance update: avg = α·avg + (1−α)·batch, α in (0, 1). */
  bnAlpha: z.number().gt(0).lt(1).default(0.9),
  /** Apply the L2 term to BN's γ and β too. */
  bnL2: z.boolean().default(false),
  /** Dropout probability after each hidden layer's ReLU: one value, or one per hidden layer. */
  dropout: z.union([z.number().min(0).lt(1), z.array(z.number().min(0).lt(1)).max(64)]).default(0),
});

const optimizerSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("sgd") }),
  z.strictObject({
    kind: z.literal("adam"),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.999),
    eps: positive().default(1e-8),
  }),
]);

const trainSchema = z.strictObject({
  batchSize: int(1, 65535).default(100),
  /** L2 strength λ: cost = loss + λ·Σ‖W‖². */
  lambda: z.number().min(0).finite().default(0),
  schedule: scheduleSchema,
  /** Plain mini-batch SGD, or Adam with bias correction. */
  optimizer: optimizerSchema.default({ kind: "sgd" }),
  /** Evaluate every this many steps (default: 10 points per cycle, or once per epoch). */
  evalEvery: int(1).optional(),
  /** Write runs/<name>/weights.safetensors at the end. */
  checkpoint: z.boolean().default(true),
});

const logUniformSpace = z.strictObject({
  kind: z.literal("logUniform"),
  /** λ = 10^U(log10 min, log10 max). */
  min: positive(),
  max: positive(),
  count: int(1, 4096),
  seed: int(0, 2 ** 32 - 1).default(0),
});
const listSpace = z.strictObject({
  kind: z.literal("list"),
  values: z.array(z.number().min(0).finite()).min(1).max(4096),
});
/** The hyperparameters a search space may span, in the order their values are drawn. */
export const SPACE_DIMS = ["lambda", "etaMax", "etaMin", "eta", "sigma", "dropout"] as const;
/** The dimensions population-based training can change during training (σ is fixed at init). */
export const PBT_DIMS = ["lambda", "etaMax", "etaMin", "eta", "dropout"] as const;

const interval = () => z.tuple([z.number().finite(), z.number().finite()]);
/**
 * One dimension of a search space: exactly one of `logUniform`, `uniform` (random draws from
 * [min, max]), `list` (these values), `grid` (`count` values from min to max, `scale` log or
 * linear). The combinations are checked with the other keys in `../config.ts`.
 */
const dimSchema = z.strictObject({
  logUniform: interval().optional(),
  uniform: interval().optional(),
  list: z.array(z.number().finite()).min(1).max(4096).optional(),
  grid: interval().optional(),
  count: int(1, 4096).optional(),
  scale: z.enum(["log", "linear"]).optional(),
});
const dimsSchema = z.strictObject({
  /** L2 strength λ (≥ 0). */
  lambda: dimSchema.optional(),
  /** Highest η of a cyclic schedule (> 0). */
  etaMax: dimSchema.optional(),
  /** Lowest η of a cyclic schedule (> 0). */
  etaMin: dimSchema.optional(),
  /** η of a constant or step-decay schedule (> 0). */
  eta: dimSchema.optional(),
  /** σ of the gaussian initialisation (> 0). */
  sigma: dimSchema.optional(),
  /** Dropout probability of every hidden layer, in [0, 1). */
  dropout: dimSchema.optional(),
});
/** An around space's dimension: how far to search around the centres' value. */
const aroundDimSchema = z.strictObject({
  /** Half-width: decades on a log scale; the dimension's own units on a linear one (dropout). */
  width: positive().max(10).optional(),
});
const aroundDimsSchema = z.strictObject({
  lambda: aroundDimSchema.optional(),
  etaMax: aroundDimSchema.optional(),
  etaMin: aroundDimSchema.optional(),
  eta: aroundDimSchema.optional(),
  sigma: aroundDimSchema.optional(),
  dropout: aroundDimSchema.optional(),
});

const randomSpace = z.strictObject({
  kind: z.literal("random"),
  /** Points drawn, each dimension independently. */
  count: int(1, 4096),
  seed: int(0, 2 ** 32 - 1).default(0),
  dims: dimsSchema,
});
/**
 * A grid: of λ alone (`min`, `max`, `count`, `scale`), or the Cartesian product of `dims`, each a
 * `list` or a `grid`. `scale` is filled in (`log`) for the λ form by `parseConfig`.
 */
const gridSpace = z.strictObject({
  kind: z.literal("grid"),
  min: z.number().min(0).finite().optional(),
  max: z.number().min(0).finite().optional(),
  count: int(1, 4096).optional(),
  /** `log`: geometric spacing (min > 0); `linear`: even spacing. */
  scale: z.enum(["log", "linear"]).optional(),
  dims: dimsSchema.optional(),
});
const aroundSpace = z.strictObject({
  kind: z.literal("around"),
  /** The stage whose top trials to search around: earlier in this config, or in `sweep`. */
  stage: z.string().min(1),
  /** A previous sweep holding that stage: its name under `out`, or a path (default: this sweep). */
  sweep: z.string().min(1).optional(),
  top: int(1, 100).default(3),
  /**
   * `range`: log-uniform over [min(top)·10^-width, max(top)·10^width];
   * `perturb`: each top λ times 10^U(-width, width), count per top λ.
   */
  mode: z.enum(["range", "perturb"]).default("range"),
  /** Half-width in decades (log10 units). */
  width: positive().max(10).default(0.5),
  count: int(1, 4096),
  seed: int(0, 2 ** 32 - 1).default(0),
  /** The dimensions to search around (default: those of `stage`), each with its own width. */
  dims: aroundDimsSchema.optional(),
});

/** A search space: λ values (`logUniform`, `list`, `grid`), or points over several dimensions. */
export const spaceSchema = z.discriminatedUnion("kind", [
  logUniformSpace,
  listSpace,
  gridSpace,
  aroundSpace,
  randomSpace,
]);

/** Training keys a stage or the final training may override. */
const trainOverrideSchema = z.strictObject({
  batchSize: int(1, 65535).optional(),
  schedule: scheduleSchema.optional(),
  evalEvery: int(1).optional(),
});

/**
 * Successive halving of a stage's populations: at each rung (an update step) the worst models
 * stop and the ⌈n/reduction⌉ best go on. Rungs default to the end of each cycle but the last
 * of a cyclic schedule; the checks against the schedule are in `../config.ts`.
 */
const halvingSchema = z.strictObject({
  /** Update steps at which to rank and cut, increasing, each before the last step. */
  rungs: z.array(int(1)).min(1).max(1000).optional(),
  /** η_r > 1: keep ⌈n/η_r⌉ of n models (at least 1) at each rung. */
  reduction: z.number().gt(1).finite().default(3),
});

/**
 * Population-based training of a stage's populations: every `interval` steps the bottom
 * quantile copies the state of models of the top one and explores new values (see
 * src/train/pbt.ts); the checks against the schedule and the space are in `../config.ts`.
 */
const pbtSchema = z.strictObject({
  /** Update steps between two exploits (each at an evaluation point before the last step). */
  interval: int(1),
  /** Fraction replaced at each exploit, in (0, 0.5]. */
  quantile: z.number().gt(0).max(0.5).default(0.25),
  /** Factors a perturbation multiplies a value by (one drawn each time), each > 0. */
  perturb: z.array(z.number().gt(0).finite()).min(1).max(16).default([0.8, 1.2]),
  /** Probability that a value is redrawn from the space instead of perturbed. */
  resample: z.number().min(0).max(1).default(0.25),
  /** Seed of the exploit draws. */
  seed: int(0, 2 ** 32 - 1).default(0),
  /** The dimensions of the space to explore (default: each one but σ). */
  dims: z.array(z.enum(PBT_DIMS)).min(1).max(PBT_DIMS.length).optional(),
});

const stageSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/).max(50),
  space: spaceSchema,
  /** How many of the best trials the stage's table lists (and later stages may use). */
  top: int(1, 100).default(3),
  train: trainOverrideSchema.optional(),
  /** Successive halving inside the stage's populations. */
  halving: halvingSchema.optional(),
  /** Population-based training of the stage's populations. */
  pbt: pbtSchema.optional(),
});

const finalSchema = z.strictObject({
  /** Data of the final training (default: the sweep's data). */
  data: z.strictObject({
    train: z.array(int(1, 5)).min(1).max(5).optional(),
    val: valSchema.optional(),
  }).optional(),
  train: trainOverrideSchema.optional(),
});

const searchSchema = z.strictObject({
  stages: z.array(stageSchema).min(1).max(20),
  /** Models trained at once, at most (a stage with more trials runs in several populations). */
  population: int(1, 4096).default(16),
  /** `same`: every trial starts from the config's seed; `vary`: trial i uses seed + i. */
  seeds: z.enum(["same", "vary"]).default("same"),
  /** Rank trials by their final or their best validation accuracy. */
  rankBy: z.enum(["final", "best"]).default("final"),
  /** After the last stage, train once more with its best trial's values (and report its test accuracy). */
  final: finalSchema.optional(),
});

/** One variant of a multi-run config: a name and the keys it changes. */
const variantSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/).max(100),
  seed: int(0, 2 ** 32 - 1).optional(),
  model: z.strictObject({
    hidden: z.array(int(1, 8192)).max(64).optional(),
    init: z.enum(["gaussian", "xavier", "he"]).optional(),
    sigma: positive().optional(),
    bn: z.union([z.boolean(), z.array(z.boolean()).max(64)]).optional(),
    bnAlpha: z.number().gt(0).lt(1).optional(),
    bnL2: z.boolean().optional(),
    dropout: z.union([z.number().min(0).lt(1), z.array(z.number().min(0).lt(1)).max(64)])
      .optional(),
  }).optional(),
  train: z.strictObject({
    lambda: z.number().min(0).finite().optional(),
    batchSize: int(1, 65535).optional(),
    schedule: scheduleSchema.optional(),
    optimizer: optimizerSchema.optional(),
    evalEvery: int(1).optional(),
  }).optional(),
});

/** The config schema. */
export const configSchema = z.strictObject({
  /** Run name: the output goes to <out>/<name>. Default: the config file's name. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/).max(100).optional(),
  /** Seed of the initialisation and of the shuffles. */
  seed: int(0, 2 ** 32 - 1).default(0),
  /** Parent directory of run directories. */
  out: z.string().min(1).default("runs"),
  data: dataSchema,
  model: modelSchema.default({
    hidden: [50],
    init: "xavier",
    sigma: 0.01,
    bn: false,
    bnAlpha: 0.9,
    bnL2: false,
    dropout: 0,
  }),
  train: trainSchema,
  /** A λ search: the config is a sweep. */
  search: searchSchema.optional(),
  /**
   * Several runs from one config: each variant overrides some keys and writes <out>/<name>/<variant>/;
   * variants that differ only in λ, seed-free initialisation (init, sigma) train as one population.
   */
  variants: z.array(variantSchema).min(1).max(64).optional(),
});
