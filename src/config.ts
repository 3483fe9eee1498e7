/**
 * The experiment config: one schema that knows every key, its type, bounds and default. A bad
 * config gets one line naming the key and what is allowed.
 *
 * @module
 */

import { z } from "zod";
import { basename } from "node:path";
import { clip, shown, UserError } from "./errors.ts";
import { checkName } from "./io/names.ts";
import { getPath } from "./io/json.ts";
import type { Schedule } from "./train/schedule.ts";

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);
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

const scheduleSchema = z.discriminatedUnion("kind", [cyclic, constant, stepDecay]);

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
const gridSpace = z.strictObject({
  kind: z.literal("grid"),
  min: z.number().min(0).finite(),
  max: z.number().min(0).finite(),
  count: int(1, 4096),
  /** `log`: geometric spacing (min > 0); `linear`: even spacing. */
  scale: z.enum(["log", "linear"]).default("log"),
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
});

/** A search space of λ values. */
export const spaceSchema = z.discriminatedUnion("kind", [
  logUniformSpace,
  listSpace,
  gridSpace,
  aroundSpace,
]);

/** Training keys a stage or the final training may override. */
const trainOverrideSchema = z.strictObject({
  batchSize: int(1, 65535).optional(),
  schedule: scheduleSchema.optional(),
  evalEvery: int(1).optional(),
});

const stageSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/).max(50),
  space: spaceSchema,
  /** How many of the best trials the stage's table lists (and later stages may use). */
  top: int(1, 100).default(3),
  train: trainOverrideSchema.optional(),
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
  /** After the last stage, train once more with its best λ (and report its test accuracy). */
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

/** Evenly spaced λ values, both ends included. */
export interface GridSpace {
  /** Space kind. */
  kind: "grid";
  /** First value (> 0 on a log grid). */
  min: number;
  /** Last value. */
  max: number;
  /** Number of values. */
  count: number;
  /** Geometric (`log`) or even (`linear`) spacing. */
  scale: "log" | "linear";
}

/** λ values around the best trials of an earlier stage. */
export interface AroundSpace {
  /** Space kind. */
  kind: "around";
  /** The stage whose best trials to search around. */
  stage: string;
  /** A previous sweep holding that stage (a name under `out`, or a path); absent: this sweep. */
  sweep?: string;
  /** How many of its best trials to use. */
  top: number;
  /** `range`: log-uniform over their span widened by `width`; `perturb`: each λ·10^U(±width). */
  mode: "range" | "perturb";
  /** Half-width in decades. */
  width: number;
  /** Values (per centre with `perturb`). */
  count: number;
  /** Seed of the draws. */
  seed: number;
}

/** A search space of λ values. */
export type SpaceConfig = LogUniformSpace | ListSpace | GridSpace | AroundSpace;

/** Training keys a search stage or the final training may override. */
export interface TrainOverride {
  /** Mini-batch size. */
  batchSize?: number;
  /** Learning-rate schedule. */
  schedule?: Schedule;
  /** Steps between evaluations. */
  evalEvery?: number;
}

/** One stage of a λ search. */
export interface StageConfig {
  /** Stage name (letters, digits, `._-`), unique in the config. */
  name: string;
  /** Where its λ values come from. */
  space: SpaceConfig;
  /** Rows of its top-k table (and trials later stages may search around). */
  top: number;
  /** Training keys this stage changes. */
  train?: TrainOverride;
}

/** The final training of a sweep, with the best λ of its last stage. */
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
  /** Train once more with the best λ of the last stage. */
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

const FLAG_PATHS: Record<keyof ConfigOverrides, string[]> = {
  name: ["name"],
  seed: ["seed"],
  lambda: ["train", "lambda"],
  out: ["out"],
  data: ["data", "dir"],
};

/** The largest config file read, in bytes (the presets are about 1 KiB). */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** The deepest nesting of arrays and objects a config file may have (the schema needs 5). */
export const MAX_CONFIG_DEPTH = 64;

/** What a path is, for a message about a path that is not a regular file. */
function fileKind(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a named pipe";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

/** Read at most `limit` + 1 bytes of `path` (a file that grows past the limit is caught too). */
async function readAtMost(path: string, limit: number): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(limit + 1);
  let n = 0;
  while (n < buf.length) {
    const got = await file.read(buf.subarray(n));
    if (got === null) break;
    n += got;
  }
  return buf.subarray(0, n);
}

/** The deepest nesting of `[` and `{` outside strings (counted without recursion). */
function jsonDepth(text: string, stopAbove: number): number {
  let depth = 0, max = 0, inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
      if (max > stopAbove) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * Read, override and validate a config file. Every problem is a one-line {@link UserError}: a
 * path that is not a regular file (a directory, a device such as /dev/zero, a named pipe), a file
 * over {@link MAX_CONFIG_BYTES}, malformed JSON, nesting deeper than {@link MAX_CONFIG_DEPTH}, a
 * top level that is not an object, and every key the schema refuses.
 */
export async function loadConfig(path: string, overrides: ConfigOverrides = {}): Promise<Config> {
  const cannotRead = (e: unknown) =>
    e instanceof Deno.errors.NotFound
      ? new UserError(`config ${path} not found`)
      : new UserError(`config ${path} cannot be read: ${clip(String((e as Error).message), 120)}`);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw cannotRead(e);
  }
  if (!info.isFile) {
    throw new UserError(
      `config ${path} is ${fileKind(info)}, not a regular file: give the path of a JSON file`,
    );
  }
  const limit = `${MAX_CONFIG_BYTES / 1024 / 1024} MiB`;
  const tooBig = (size: string) =>
    new UserError(
      `config ${path} is ${size}, more than the ${limit} a config may have: is it the right file?`,
    );
  if (info.size > MAX_CONFIG_BYTES) throw tooBig(`${info.size} bytes`);
  let bytes: Uint8Array;
  try {
    bytes = await readAtMost(path, MAX_CONFIG_BYTES);
  } catch (e) {
    throw cannotRead(e);
  }
  if (bytes.length > MAX_CONFIG_BYTES) throw tooBig("larger than it was a moment ago");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UserError(`config ${path} is not UTF-8 text: give the path of a JSON file`);
  }
  if (jsonDepth(text, MAX_CONFIG_DEPTH) > MAX_CONFIG_DEPTH) {
    throw new UserError(
      `config ${path} nests arrays and objects deeper than ${MAX_CONFIG_DEPTH} levels: ` +
        `a config needs only a few`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const why = e instanceof RangeError ? "too deeply nested" : String((e as Error).message);
    throw new UserError(`config ${path} is not valid JSON: ${clip(why, 120)}`);
  }
  const fallbackName = basename(path).replace(/\.json$/i, "");
  return parseConfig(raw, path, overrides, fallbackName);
}

/** Validate a config value (already parsed JSON); `source` names it in messages. */
export function parseConfig(
  raw: unknown,
  source: string,
  overrides: ConfigOverrides = {},
  fallbackName = "run",
): Config {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    const got = Array.isArray(raw) ? "an array" : raw === null ? "null" : `a ${typeof raw}`;
    throw new UserError(`config ${source} must be a JSON object ({ … }), got ${got}`);
  }
  const value = structuredClone(raw) as Record<string, unknown>;
  const fromFlag = new Map<string, string>();
  for (const [flag, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    const p = FLAG_PATHS[flag as keyof ConfigOverrides];
    setPath(value, p, v);
    fromFlag.set(p.join("."), `--${flag}`);
  }
  const r = configSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new UserError(`config ${source}: ${describeIssue(issue, value, fromFlag)}`);
  }
  const cfg = { ...r.data, name: r.data.name ?? fallbackName } as Config;
  if (r.data.name === undefined) {
    checkName(
      cfg.name,
      `config ${source}: the run name taken from the file name,`,
      `give the config a "name", or pass --name NAME`,
    );
  } else {
    checkName(
      cfg.name,
      `config ${source}: ${fromFlag.get("name") ?? "name"}`,
      `choose another name`,
    );
  }
  checkSemantics(cfg, source);
  return cfg;
}

function checkSemantics(cfg: Config, source: string): void {
  const train = cfg.data.train;
  if (new Set(train).size !== train.length) {
    throw new UserError(`config ${source}: data.train lists a batch twice (${train.join(", ")})`);
  }
  const val = cfg.data.val;
  if (val) {
    if ((val.batch === undefined) === (val.holdout === undefined)) {
      throw new UserError(
        `config ${source}: data.val needs exactly one of "batch" (1-5) or "holdout" (samples)`,
      );
    }
    if (val.batch !== undefined && train.includes(val.batch)) {
      throw new UserError(
        `config ${source}: data.val.batch ${val.batch} is also a training batch: pick another`,
      );
    }
  }
  const schedules: [string, z.infer<typeof scheduleSchema> | undefined][] = [
    ["train.schedule", cfg.train.schedule],
    ...(cfg.search?.stages ?? []).map((st, i) =>
      [`search.stages.${i}.train.schedule`, st.train?.schedule] as [
        string,
        z.infer<typeof scheduleSchema> | undefined,
      ]
    ),
    ["search.final.train.schedule", cfg.search?.final?.train?.schedule],
  ];
  for (const [at, s] of schedules) {
    if (s?.kind === "cyclic" && s.etaMin > s.etaMax) {
      throw new UserError(
        `config ${source}: ${at}.etaMin (${s.etaMin}) is larger than etaMax (${s.etaMax})`,
      );
    }
  }
  if (cfg.search) checkSearch(cfg.search, source);
  if (cfg.search && cfg.variants) {
    throw new UserError(
      `config ${source}: give "search" (a λ sweep) or "variants" (several runs), not both`,
    );
  }
  if (cfg.variants) {
    const names = cfg.variants.map((v) => v.name);
    names.forEach((n, i) =>
      checkName(n, `config ${source}: variants.${i}.name`, "choose another variant name")
    );
    const lower = names.map((n) => n.toLowerCase());
    const dup = names.find((n, i) => lower.indexOf(n.toLowerCase()) !== i);
    if (dup) {
      throw new UserError(
        `config ${source}: variants.${names.lastIndexOf(dup)}.name "${dup}" is used twice`,
      );
    }
    cfg.variants.forEach((_, i) => variantConfig(cfg, i, source));
  }
  const hidden = cfg.model.hidden.length;
  for (const key of ["bn", "dropout"] as const) {
    const v = cfg.model[key];
    if (Array.isArray(v) && v.length !== hidden) {
      const more = v.length > hidden;
      throw new UserError(
        `config ${source}: model.${key} has ${v.length} entries for ${hidden} hidden layers: ` +
          (more && key === "bn"
            ? "batch normalisation applies to hidden layers only, not to the output layer"
            : `give one per hidden layer, or a single ${
              key === "bn" ? "true/false" : "probability"
            }`),
      );
    }
  }
}

/**
 * The full config of variant i: the base config with the variant's keys, validated like any
 * config (so an override that breaks a bound is reported at load time).
 */
export function variantConfig(cfg: Config, i: number, source = "config"): Config {
  const v = cfg.variants![i];
  const merged = {
    ...cfg,
    name: v.name,
    out: `${cfg.out}/${cfg.name}`,
    seed: v.seed ?? cfg.seed,
    model: { ...cfg.model, ...v.model },
    train: { ...cfg.train, ...v.train },
    variants: undefined,
  };
  try {
    return parseConfig(merged, `${source} (variant ${v.name})`);
  } catch (e) {
    if (e instanceof UserError) throw new UserError(e.message.replace(/^config /, ""));
    throw e;
  }
}

/** Per hidden layer: whether it has batch normalisation. */
export function bnLayers(cfg: Config): boolean[] {
  const bn = cfg.model.bn;
  return cfg.model.hidden.map((_, l) => (Array.isArray(bn) ? bn[l] : bn));
}

/** Per hidden layer: its dropout probability. */
export function dropoutLayers(cfg: Config): number[] {
  const d = cfg.model.dropout;
  return cfg.model.hidden.map((_, l) => (Array.isArray(d) ? d[l] : d));
}

function checkSearch(search: NonNullable<Config["search"]>, source: string): void {
  const seen: string[] = [];
  search.stages.forEach((stage, i) => {
    const at = `search.stages.${i}`;
    if (seen.includes(stage.name)) {
      throw new UserError(
        `config ${source}: ${at}.name "${stage.name}" is used by an earlier stage`,
      );
    }
    const sp = stage.space;
    if (sp.kind === "logUniform" || sp.kind === "grid") {
      if (!(sp.min < sp.max) && !(sp.kind === "grid" && sp.count === 1 && sp.min === sp.max)) {
        throw new UserError(
          `config ${source}: ${at}.space is an empty or inverted range (min ${sp.min}, max ${sp.max}): min must be below max`,
        );
      }
      if (sp.kind === "grid" && sp.scale === "log" && sp.min <= 0) {
        throw new UserError(
          `config ${source}: ${at}.space.min must be > 0 on a log grid (got ${sp.min})`,
        );
      }
    }
    if (sp.kind === "around" && sp.sweep === undefined && !seen.includes(sp.stage)) {
      throw new UserError(
        `config ${source}: ${at}.space.stage ${
          shown(sp.stage)
        } is not an earlier stage of this config` +
          (seen.length ? ` (earlier: ${seen.join(", ")})` : "") +
          `; name one, or give "sweep": "runs/<previous sweep>"`,
      );
    }
    seen.push(stage.name);
  });
}

function setPath(obj: Record<string, unknown>, path: string[], v: unknown): void {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof o[k] !== "object" || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[path[path.length - 1]] = v;
}

/** The keys an object schema allows at `path` of `value` (following unions by `kind`). */
function allowedKeys(path: PropertyKey[], value: unknown): string[] {
  // deno-lint-ignore no-explicit-any
  let s: any = configSchema;
  for (let i = 0; i <= path.length; i++) {
    while (s?._zod?.def?.innerType) s = s._zod.def.innerType; // optional / default
    if (s?._zod?.def?.type === "union") {
      const kind = (getPath(value, path.slice(0, i)) as { kind?: unknown })?.kind;
      // deno-lint-ignore no-explicit-any
      s = s._zod.def.options.find((o: any) => o.shape?.kind?._zod?.def?.values?.includes(kind));
    }
    if (i === path.length) break;
    const k = path[i];
    if (s?._zod?.def?.type === "array") s = s._zod.def.element;
    else s = s?.shape?.[k as string];
  }
  return s?.shape ? Object.keys(s.shape) : [];
}

function describeIssue(
  issue: z.core.$ZodIssue,
  value: unknown,
  fromFlag: Map<string, string>,
): string {
  const at = issue.path.map(String).join(".");
  const flag = fromFlag.get(at);
  const where = (clip(at, 80) || "(top level)") + (flag ? ` (from ${flag})` : "");
  const got = getPath(value, issue.path);
  const gotText = shown(got);
  switch (issue.code) {
    case "unrecognized_keys": {
      const allowed = allowedKeys(issue.path, value);
      const key = issue.keys[0];
      const guess = key.length <= 100 ? closest(key, allowed) : null;
      const prefix = clip(at ? `${at}.${key}` : key);
      const more = issue.keys.length > 1 ? ` (and ${issue.keys.length - 1} more)` : "";
      return `unknown key ${JSON.stringify(prefix)}${more}` +
        (guess ? ` (did you mean "${guess}"?)` : "") + `; allowed here: ${allowed.join(", ")}`;
    }
    case "invalid_type":
      if (got === undefined) return `${where} is missing (expected ${issue.expected})`;
      return `${where} must be ${
        issue.expected === "int" ? "an integer" : `a ${issue.expected}`
      }, got ${gotText}`;
    case "invalid_value":
      return `${where} must be one of ${
        issue.values.map((v) => JSON.stringify(v)).join(", ")
      }, got ${gotText}`;
    case "invalid_union":
      if ("discriminator" in issue && issue.discriminator) {
        const options = (issue as unknown as { options: unknown[] }).options;
        return `${where} must be one of ${
          options.map((v) => JSON.stringify(v)).join(", ")
        }, got ${gotText}`;
      }
      return `${where} has an unexpected shape (${gotText})`;
    case "too_small":
    case "too_big": {
      const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
      const op = issue.code === "too_small"
        ? (issue.inclusive ? ">=" : ">")
        : (issue.inclusive ? "<=" : "<");
      if (issue.origin === "array") {
        return `${where} must have ${op} ${bound} entries, got ${gotText}`;
      }
      if (issue.origin === "string") return `${where} must have ${op} ${bound} characters`;
      return `${where} must be ${op} ${bound}, got ${gotText}`;
    }
    case "invalid_format":
      return `${where} has an invalid format (${gotText}): use letters, digits, ".", "_" and "-"`;
    default:
      return `${where}: ${clip(issue.message, 80)}`;
  }
}

/** The candidate nearest to `word` by edit distance, if close enough to be a likely typo. */
function closest(word: string, candidates: string[]): string | null {
  let best: string | null = null, bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = t;
    }
  }
  return prev[b.length];
}
