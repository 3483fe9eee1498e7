/**
 * Schemas of the files this tool writes and reads back: a run's `metrics.json`, a sweep's
 * `trials.jsonl` lines (and its shards' files) and its `sweep.json`. Each describes exactly what
 * the writer produces — including `null` where JSON.stringify wrote a NaN — so a damaged or foreign
 * record is refused with one line (`FILE: field must be …, got …`) before anything uses it. The
 * hand-written types in `src/train/metrics.ts` and `src/sweep/types.ts` are checked against these
 * schemas at compile time.
 *
 * @module
 */

import { z } from "zod";
import { clip, shown, UserError } from "../errors.ts";
import { getPath, isObject } from "./json.ts";
import { boundOf } from "../config/messages.ts";
import { PBT_DIMS } from "../config/schema.ts";
import type { Hyper, StageSummary, SweepSummary, TopEntry, TrialRecord } from "../sweep/types.ts";
import type {
  EnvInfo,
  EvalPoint,
  RunMetrics,
  SplitMetrics,
  TestMetrics,
  Timings,
} from "../train/metrics.ts";
import type { ProgressHeader, ProgressLine } from "../train/live.ts";
import type { PopulationProgress } from "../sweep/population.ts";

const count = () => z.number().int().min(0);
const nonNegative = () => z.number().min(0);
const fraction = () => z.number().min(0).max(1);
const seed = () => z.number().int().min(0).max(2 ** 32 - 1);
/** A number the writer does not check for NaN/Inf: JSON.stringify wrote those as null. */
const orNaN = <S extends z.ZodNumber>(s: S) => s.nullable().transform((v) => v ?? NaN);

const splitMetricsSchema = z.strictObject({
  loss: z.number(),
  cost: z.number(),
  accuracy: fraction(),
});

/** A diverged run without a healthy evaluation point records NaN (null) final metrics. */
const splitMetricsOrNaNSchema = z.strictObject({
  loss: orNaN(z.number()),
  cost: orNaN(z.number()),
  accuracy: orNaN(fraction()),
});

const evalPointSchema = z.strictObject({
  step: count(),
  epoch: nonNegative(),
  eta: nonNegative(),
  train: splitMetricsSchema,
  val: splitMetricsSchema.optional(),
});

const envInfoSchema = z.strictObject({
  adapter: z.strictObject({
    vendor: z.string(),
    architecture: z.string(),
    device: z.string(),
    description: z.string(),
  }),
  deno: z.strictObject({ deno: z.string(), v8: z.string(), typescript: z.string() }),
  os: z.string(),
  arch: z.string(),
  version: z.string(),
});

const timingsSchema = z.strictObject({
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  wallSeconds: nonNegative(),
  setupSeconds: nonNegative(),
  trainSeconds: nonNegative(),
  steps: count(),
  stepsPerSecond: nonNegative(),
  snapshots: z.strictObject({ count: z.number(), bytes: z.number(), seconds: z.number() })
    .optional(),
});

const testMetricsSchema = z.strictObject({
  // the test pass is not checked for NaN/Inf (its model's last evaluation was healthy)
  loss: orNaN(z.number()),
  accuracy: fraction(),
  confusion: z.array(z.array(count())),
  perClassAccuracy: z.array(fraction()),
});

const divergedSchema = z.strictObject({ step: count(), reason: z.string() });
/** Where successive halving stopped a model: its rung (1-based) and the rung's step. */
const stoppedSchema = z.strictObject({ rung: z.number().int().min(1), step: count() });

/** A trial's values per dimension of its space (`Hyper` in src/sweep/hyper.ts). */
const hyperSchema = z.strictObject({
  lambda: nonNegative().optional(),
  etaMax: z.number().positive().optional(),
  etaMin: z.number().positive().optional(),
  eta: z.number().positive().optional(),
  sigma: z.number().positive().optional(),
  dropout: z.number().min(0).lt(1).optional(),
});

/** Values of the hyperparameters PBT changes during training: a trial's values but σ. */
const pbtValuesSchema = hyperSchema.omit({ sigma: true });
/** How each value of an exploit came: `×f`, `up`/`down` in a list, or `resample`. */
const pbtHowSchema = z.strictObject({
  lambda: z.string().optional(),
  etaMax: z.string().optional(),
  etaMin: z.string().optional(),
  eta: z.string().optional(),
  dropout: z.string().optional(),
});
/** One exploit of a model of population-based training (`PbtEvent`; `from` a model index). */
const pbtEventSchema = z.strictObject({
  step: count(),
  from: count(),
  values: pbtValuesSchema,
  how: pbtHowSchema,
});

/** One model's state in a snapshot (`ModelResult` of the trainer, before its test). */
export const snapshotModelSchema = z.strictObject({
  curves: z.array(evalPointSchema),
  final: z.strictObject({ train: splitMetricsSchema, val: splitMetricsSchema.optional() })
    .nullable(),
  diverged: divergedSchema.optional(),
  stopped: stoppedSchema.optional(),
  lineage: z.array(pbtEventSchema).optional(),
});

/** A file name inside a directory: no separator, not hidden, not `.` or `..`. */
const plainName = () => z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._-]*$/);

/** `metrics.json` of a run directory, as `runMetrics` in src/train/run.ts writes it. */
export const runMetricsSchema = z.strictObject({
  format: z.literal("webgpu-mlp.run/1"),
  name: z.string(),
  status: z.enum(["completed", "diverged", "interrupted"]),
  config: z.unknown(),
  seed: seed(),
  layerSizes: z.array(z.number().int().min(1)).min(2),
  lambda: nonNegative(),
  env: envInfoSchema,
  timings: timingsSchema,
  lrSchedule: z.array(z.tuple([count(), nonNegative()])),
  curves: z.array(evalPointSchema),
  final: z.strictObject({
    train: splitMetricsOrNaNSchema,
    val: splitMetricsSchema.optional(),
    test: testMetricsSchema.optional(),
  }),
  classNames: z.array(z.string()),
  dataSizes: z.strictObject({ train: count(), val: count(), test: count() }),
  diverged: divergedSchema.optional(),
  // a name inside the run directory (the writer's is weights.safetensors), never a path
  checkpoint: plainName().optional(),
}).superRefine((m, ctx) => {
  if ((m.status === "diverged") !== (m.diverged !== undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["diverged"],
      message: m.diverged
        ? `must be absent when status is ${JSON.stringify(m.status)}`
        : `is missing (a diverged run records where it diverged)`,
    });
  }
  const t = m.final.train;
  if (m.status !== "diverged" && [t.loss, t.cost, t.accuracy].some(Number.isNaN)) {
    ctx.addIssue({
      code: "custom",
      path: ["final", "train"],
      message: `holds null: only a diverged run has no final metrics`,
    });
  }
});

/** One line of `trials.jsonl` (or of a shard's file), as `trialRecord` in src/sweep/sweep.ts writes it. */
export const trialRecordSchema = z.strictObject({
  format: z.literal("webgpu-mlp.trial/1"),
  id: z.string(),
  stage: z.string().min(1),
  index: count(),
  lambda: nonNegative(),
  hyper: hyperSchema.optional(),
  seed: seed(),
  status: z.enum(["completed", "diverged", "stopped"]),
  bestVal: z.strictObject({ accuracy: fraction(), step: count() }),
  curves: z.array(evalPointSchema),
  final: z.strictObject({ train: splitMetricsSchema, val: splitMetricsSchema }).optional(),
  diverged: divergedSchema.optional(),
  stopped: stoppedSchema.optional(),
  pbt: z.strictObject({
    lineage: z.array(z.strictObject({
      step: count(),
      from: z.string(),
      values: pbtValuesSchema,
      how: pbtHowSchema,
    })),
    end: hyperSchema,
    checkpoint: plainName().optional(),
  }).optional(),
  shard: z.string().regex(/^[1-9]\d*\/[1-9]\d*$/).optional(),
}).superRefine((t, ctx) => {
  const id = `${t.stage}/${t.index}`;
  if (t.id !== id) {
    ctx.addIssue({
      code: "custom",
      path: ["id"],
      message: `must be its stage and index, ${shown(id)}, got ${shown(t.id)}`,
    });
  }
  if (t.hyper?.lambda !== undefined && t.hyper.lambda !== t.lambda) {
    ctx.addIssue({
      code: "custom",
      path: ["hyper", "lambda"],
      message: `must be the trial's lambda, ${t.lambda}, got ${t.hyper.lambda}`,
    });
  }
  if ((t.status === "diverged") !== (t.diverged !== undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["diverged"],
      message: t.diverged
        ? `must be absent when status is "completed"`
        : `is missing (a diverged trial records where it diverged)`,
    });
  }
  if ((t.status === "stopped") !== (t.stopped !== undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["stopped"],
      message: t.stopped
        ? `must be absent when status is ${JSON.stringify(t.status)}`
        : `is missing (a stopped trial records the rung that stopped it)`,
    });
  }
  if (t.stopped && t.curves.some((p) => p.step > t.stopped!.step)) {
    ctx.addIssue({
      code: "custom",
      path: ["curves"],
      message: `go past step ${t.stopped.step}, where the trial was stopped`,
    });
  }
  if (t.status === "diverged" && t.final) {
    ctx.addIssue({
      code: "custom",
      path: ["final"],
      message: `must be absent in a diverged trial`,
    });
  }
});

const topEntrySchema = z.strictObject({
  id: z.string(),
  lambda: nonNegative(),
  hyper: hyperSchema.optional(),
  bestValAccuracy: fraction(),
  finalValAccuracy: fraction(),
  finalValCost: z.number(),
});

const stageSummarySchema = z.strictObject({
  name: z.string(),
  space: z.record(z.string(), z.unknown()),
  trials: count(),
  completed: count(),
  diverged: count(),
  stopped: count().optional(),
  halving: z.strictObject({ rungs: z.array(count()), reduction: z.number().gt(1) }).optional(),
  pbt: z.strictObject({
    steps: z.array(count()),
    quantile: z.number().gt(0).max(0.5),
    perturb: z.array(z.number().gt(0)),
    resample: fraction(),
    dims: z.array(z.enum(PBT_DIMS)),
  }).optional(),
  top: z.array(topEntrySchema),
});

/** `sweep.json` of a sweep directory, as `writeSummary` in src/sweep/sweep.ts writes it. */
export const sweepSummarySchema = z.strictObject({
  format: z.literal("webgpu-mlp.sweep/1"),
  name: z.string(),
  config: z.unknown(),
  env: envInfoSchema,
  timings: timingsSchema,
  stages: z.array(stageSummarySchema),
  final: z.strictObject({
    lambda: nonNegative(),
    hyper: hyperSchema.optional(),
    // a directory inside the sweep's (the writer's is final), never a path
    run: plainName(),
    testAccuracy: fraction(),
  }).optional(),
});

/** The header line of a run's `progress.jsonl`, as `trainRun` in src/train/run.ts writes it. */
export const progressHeaderSchema = z.strictObject({
  format: z.literal("webgpu-mlp.progress/1"),
  name: z.string(),
  config: z.unknown(),
  seed: seed(),
  layerSizes: z.array(z.number().int().min(1)).min(2),
  lambda: nonNegative(),
  env: envInfoSchema,
  startedAt: z.iso.datetime(),
  totalSteps: count(),
  stepsPerEpoch: count(),
  lrSchedule: z.array(z.tuple([count(), nonNegative()])),
  classNames: z.array(z.string()),
  dataSizes: z.strictObject({ train: count(), val: count(), test: count() }),
});

/** A pace of a progress line: NaN where JSON.stringify wrote null, or where the line has none. */
const pace = () => nonNegative().nullable().optional().transform((v) => v ?? NaN);

/**
 * A further line of a progress log: an evaluation point and the pace when it was reached (null
 * at the first point; absent in the points a resumed run's log starts with, written from its
 * snapshot).
 */
export const progressLineSchema = z.strictObject({
  point: evalPointSchema,
  elapsedSeconds: pace(),
  stepsPerSecond: pace(),
  remainingSeconds: pace(),
});

/** A sweep's `population.json` (or a shard's), as `trainChunk` in src/sweep/sweep.ts writes it. */
export const populationSchema = z.strictObject({
  format: z.literal("webgpu-mlp.population/1"),
  stage: z.string(),
  trials: z.array(z.string()).min(1),
  lambdas: z.array(nonNegative()),
  step: count(),
  totalSteps: count(),
  stepsPerSecond: orNaN(nonNegative()),
  remainingSeconds: orNaN(nonNegative()),
  val: z.array(fraction().nullable()),
  updatedAt: z.iso.datetime(),
}).refine((p) => p.lambdas.length === p.trials.length && p.val.length === p.trials.length, {
  message: "must give one λ and one validation accuracy per trial",
});

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
// The hand-written, documented types must describe exactly what the schemas accept.
const _typesMatchSchemas: [
  Same<z.infer<typeof splitMetricsSchema>, SplitMetrics>,
  Same<z.infer<typeof evalPointSchema>, EvalPoint>,
  Same<z.infer<typeof envInfoSchema>, EnvInfo>,
  Same<z.infer<typeof timingsSchema>, Timings>,
  Same<z.infer<typeof testMetricsSchema>, TestMetrics>,
  Same<z.infer<typeof runMetricsSchema>, RunMetrics>,
  Same<z.infer<typeof hyperSchema>, Hyper>,
  Same<z.infer<typeof trialRecordSchema>, TrialRecord>,
  Same<z.infer<typeof topEntrySchema>, TopEntry>,
  Same<z.infer<typeof stageSummarySchema>, StageSummary>,
  Same<z.infer<typeof sweepSummarySchema>, SweepSummary>,
  Same<z.infer<typeof progressHeaderSchema>, ProgressHeader>,
  Same<z.output<typeof progressLineSchema>, ProgressLine>,
  Same<z.output<typeof populationSchema>, PopulationProgress>,
] = [true, true, true, true, true, true, true, true, true, true, true, true, true, true];
void _typesMatchSchemas;

/** A kind of file: its format tag, what to call it in messages, and its schema. */
export interface RecordFormat<T> {
  /** The `format` field every record of this kind carries. */
  tag: string;
  /** How messages name it: `not <what>`. */
  what: string;
  /** Its full schema. */
  schema: z.ZodType<T>;
}

/** A run's `metrics.json`. */
export const RUN_FORMAT: RecordFormat<RunMetrics> = {
  tag: "webgpu-mlp.run/1",
  what: "a run's metrics.json",
  schema: runMetricsSchema,
};

/** One line of a trials file. */
export const TRIAL_FORMAT: RecordFormat<TrialRecord> = {
  tag: "webgpu-mlp.trial/1",
  what: "a trial record",
  schema: trialRecordSchema,
};

/** A sweep's `sweep.json`. */
export const SWEEP_FORMAT: RecordFormat<SweepSummary> = {
  tag: "webgpu-mlp.sweep/1",
  what: "a sweep.json",
  schema: sweepSummarySchema,
};

/**
 * Validate a parsed record against its format. A value without the format's tag is "not <what>";
 * a tagged value with a bad field names the field and what was expected: `SOURCE: lambda must be
 * a number, got "x"`. `source` is the file (and line) the value came from.
 */
export function parseRecord<T>(format: RecordFormat<T>, value: unknown, source: string): T {
  if (!isObject(value) || value.format !== format.tag) {
    const tag = isObject(value) ? shown(value.format ?? null) : "(not a JSON object)";
    throw new UserError(
      `${source}: not ${format.what} (format ${tag}, expected ${JSON.stringify(format.tag)})`,
    );
  }
  const r = format.schema.safeParse(value);
  if (!r.success) {
    throw new UserError(`${source}: ${describeRecordIssue(r.error.issues[0], value)}`);
  }
  return r.data;
}

function article(expected: string): string {
  if (expected === "int") return "an integer";
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

/** One issue of a record as "field must be …, got …" (values cut short). */
export function describeRecordIssue(issue: z.core.$ZodIssue, value: unknown): string {
  const at = clip(issue.path.map(String).join("."), 80) || "the record";
  const got = getPath(value, issue.path);
  switch (issue.code) {
    case "invalid_type":
      if (got === undefined) {
        return issue.expected === "nonoptional"
          ? `${at} is missing`
          : `${at} is missing (expected ${article(issue.expected)})`;
      }
      return `${at} must be ${article(issue.expected)}, got ${shown(got)}`;
    case "unrecognized_keys": {
      const key = clip(issue.path.length ? `${at}.${issue.keys[0]}` : issue.keys[0]);
      const more = issue.keys.length > 1 ? ` (and ${issue.keys.length - 1} more)` : "";
      return `unknown field ${JSON.stringify(key)}${more}: this tool does not write it`;
    }
    case "invalid_value": {
      const values = issue.values.map((v) => JSON.stringify(v));
      return `${at} must be ${
        values.length === 1 ? values[0] : `one of ${values.join(", ")}`
      }, got ${shown(got)}`;
    }
    case "too_small":
    case "too_big": {
      const { op, bound } = boundOf(issue);
      if (issue.origin === "array") {
        return `${at} must have ${op} ${bound} entries, got ${(got as unknown[]).length}`;
      }
      if (issue.origin === "string") {
        return `${at} must have ${op} ${bound} characters, got ${shown(got)}`;
      }
      return `${at} must be ${op} ${bound}, got ${shown(got)}`;
    }
    case "invalid_format":
      return `${at} must be ${
        issue.format === "regex" ? `like ${issue.pattern}` : `an ${issue.format}`
      } string, got ${shown(got)}`;
    case "custom":
      return `${at} ${issue.message}`;
    default:
      return `${at}: ${clip(issue.message, 80)}`;
  }
}
