/**
 * TensorBoard event files: a run's curves as scalars, and a sweep's trials for the HParams view.
 *
 * An event file is a TFRecord file ({@link frameRecords}) of serialised `tensorboard.Event`
 * protocol buffers, the first holding `file_version: "brain.Event:2"`. The few messages needed are
 * encoded here field by field with `@bufbuild/protobuf`'s `BinaryWriter`; each encoder cites its
 * message's .proto file and field numbers, as TensorBoard 2.21 ships them (the descriptors in
 * `tensorboard/compat/proto/*_pb2.py` and `tensorboard/plugins/hparams/*_pb2.py`). The HParams
 * summaries are laid out as `tensorboard/plugins/hparams/summary.py` writes them: tag
 * `_hparams_/experiment`, `_hparams_/session_start_info` or `_hparams_/session_end_info`, plugin
 * `hparams`, content a serialised `HParamsPluginData` of version 0, and an empty float tensor.
 *
 * Layout: a run directory gets one `events.out.tfevents.<start seconds>.<host>` beside its
 * metrics.json; a sweep directory gets one holding the HParams experiment, and one sub-directory
 * per trial (`<stage>-<index>`) holding that trial's curves, final metrics and session start/end.
 *
 * @module
 */

import { join } from "node:path";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import type { EvalPoint, RunMetrics } from "../train/metrics.ts";
import type { TrialRecord } from "../sweep/types.ts";
import { writeFileAtomic } from "./atomic.ts";
import type { HParamValue, SweepTrials } from "./hparams.ts";
import { UserError } from "../errors.ts";
import {
  entryKind,
  EVENTS_WRITER,
  isOwnEventsFile,
  markOwned,
  readMarker,
  removeTemporaries,
} from "./owned.ts";
import { frameRecords } from "./tfrecord.ts";

// ---------------------------------------------------------------------------------------------
// Protocol buffer encoders. proto3 leaves fields at their default value out, except members of a
// oneof, whose presence is what the reader looks at (a simple_value of 0 must be written).

type Build = (w: BinaryWriter) => void;

function encode(build: Build): Uint8Array {
  const w = new BinaryWriter();
  build(w);
  return w.finish();
}

function sub(w: BinaryWriter, field: number, bytes: Uint8Array): void {
  w.tag(field, WireType.LengthDelimited).bytes(bytes);
}

function str(w: BinaryWriter, field: number, s: string | undefined): void {
  if (s) w.tag(field, WireType.LengthDelimited).string(s);
}

function dbl(w: BinaryWriter, field: number, x: number | undefined): void {
  if (x !== undefined && x !== 0) w.tag(field, WireType.Bit64).double(x);
}

function enm(w: BinaryWriter, field: number, x: number | undefined): void {
  if (x) w.tag(field, WireType.Varint).int32(x);
}

/**
 * `google.protobuf.Value` (google/protobuf/struct.proto), oneof kind: null_value = 1 (enum, 0),
 * number_value = 2 (double), string_value = 3, bool_value = 4, list_value = 6.
 */
export function encodeValue(v: HParamValue | null): Uint8Array {
  return encode((w) => {
    if (v === null) w.tag(1, WireType.Varint).int32(0);
    else if (typeof v === "number") w.tag(2, WireType.Bit64).double(v);
    else if (typeof v === "string") w.tag(3, WireType.LengthDelimited).string(v);
    else w.tag(4, WireType.Varint).bool(v);
  });
}

/** `google.protobuf.ListValue` (google/protobuf/struct.proto): repeated Value values = 1. */
export function encodeListValue(values: HParamValue[]): Uint8Array {
  return encode((w) => values.forEach((v) => sub(w, 1, encodeValue(v))));
}

/**
 * `tensorboard.TensorProto` (tensorboard/compat/proto/tensor.proto) of an empty float tensor, the
 * `NULL_TENSOR` of tensorboard/plugins/hparams/metadata.py: dtype = 1 (DT_FLOAT = 1), tensor_shape
 * = 2 (`TensorShapeProto`, tensor_shape.proto: repeated Dim dim = 2; `Dim`: int64 size = 1, here 0).
 */
export const NULL_TENSOR: Uint8Array = encode((w) => {
  enm(w, 1, 1);
  sub(w, 2, encode((s) => sub(s, 2, new Uint8Array())));
});

/**
 * `tensorboard.SummaryMetadata` (tensorboard/compat/proto/summary.proto): plugin_data = 1, a
 * `SummaryMetadata.PluginData` of string plugin_name = 1 and bytes content = 2.
 */
export function encodeSummaryMetadata(pluginName: string, content: Uint8Array): Uint8Array {
  return encode((w) =>
    sub(
      w,
      1,
      encode((p) => {
        str(p, 1, pluginName);
        if (content.length) p.tag(2, WireType.LengthDelimited).bytes(content);
      }),
    )
  );
}

/** One `Summary.Value`: a scalar, or a tensor with metadata. */
export type SummaryValue =
  | { tag: string; simpleValue: number }
  | { tag: string; tensor: Uint8Array; metadata: Uint8Array };

/**
 * `tensorboard.Summary` (tensorboard/compat/proto/summary.proto): repeated Value value = 1, each a
 * `Summary.Value` of string tag = 1, oneof value { float simple_value = 2; TensorProto tensor = 8 }
 * and SummaryMetadata metadata = 9. A scalar is stored as float32 (its value, Math.fround).
 */
export function encodeSummary(values: SummaryValue[]): Uint8Array {
  return encode((w) => {
    for (const v of values) {
      sub(
        w,
        1,
        encode((x) => {
          str(x, 1, v.tag);
          if ("simpleValue" in v) x.tag(2, WireType.Bit32).float(Math.fround(v.simpleValue));
          else {
            sub(x, 8, v.tensor);
            sub(x, 9, v.metadata);
          }
        }),
      );
    }
  });
}

/** What one `Event` holds: a file version or a summary, at a step and time. */
export interface EventFields {
  /** Seconds since the epoch (double). */
  wallTime: number;
  /** The step (int64). */
  step?: number;
  /** `brain.Event:2` in a file's first event. */
  fileVersion?: string;
  /** An encoded `Summary`. */
  summary?: Uint8Array;
  /** `source_metadata.writer`: the program that wrote the file (in its first event). */
  writer?: string;
}

/**
 * `tensorboard.Event` (tensorboard/compat/proto/event.proto): double wall_time = 1, int64 step = 2,
 * oneof what { string file_version = 3; Summary summary = 5 }, SourceMetadata source_metadata = 10
 * (`string writer = 1`).
 */
export function encodeEvent(e: EventFields): Uint8Array {
  return encode((w) => {
    dbl(w, 1, e.wallTime);
    if (e.step) w.tag(2, WireType.Varint).int64(e.step);
    if (e.fileVersion !== undefined) w.tag(3, WireType.LengthDelimited).string(e.fileVersion);
    if (e.summary) sub(w, 5, e.summary);
    if (e.writer !== undefined) sub(w, 10, encode((m) => str(m, 1, e.writer)));
  });
}

/** `tensorboard.hparams.DataType` (tensorboard/plugins/hparams/api.proto). */
export const DataType = { STRING: 1, BOOL: 2, FLOAT64: 3 } as const;
/** `tensorboard.hparams.Status` (api.proto). */
export const Status = { SUCCESS: 1, FAILURE: 2, RUNNING: 3 } as const;
/** `tensorboard.hparams.DatasetType` (api.proto). */
export const DatasetType = { TRAINING: 1, VALIDATION: 2 } as const;

/** A hyperparameter of an experiment. */
export interface HParamInfo {
  /** The key of the hyperparameter in each session's hparams. */
  name: string;
  /** What the dashboard shows instead of the name. */
  displayName?: string;
  /** A longer description. */
  description?: string;
  /** A {@link DataType}. */
  type: number;
  /** The values it takes (a discrete domain)… */
  domainDiscrete?: HParamValue[];
  /** …or the interval they lie in. */
  domainInterval?: { min: number; max: number };
  /** True when the sessions do not all share one value. */
  differs?: boolean;
}

/**
 * `tensorboard.hparams.HParamInfo` (tensorboard/plugins/hparams/api.proto): string name = 1,
 * display_name = 2, description = 3, DataType type = 4, oneof domain { ListValue domain_discrete =
 * 5; Interval domain_interval = 6 } (`Interval`: double min_value = 1, max_value = 2), bool
 * differs = 7.
 */
export function encodeHParamInfo(h: HParamInfo): Uint8Array {
  return encode((w) => {
    str(w, 1, h.name);
    str(w, 2, h.displayName);
    str(w, 3, h.description);
    enm(w, 4, h.type);
    if (h.domainDiscrete) sub(w, 5, encodeListValue(h.domainDiscrete));
    else if (h.domainInterval) {
      sub(
        w,
        6,
        encode((i) => {
          i.tag(1, WireType.Bit64).double(h.domainInterval!.min);
          i.tag(2, WireType.Bit64).double(h.domainInterval!.max);
        }),
      );
    }
    if (h.differs) w.tag(7, WireType.Varint).bool(true);
  });
}

/** A metric of an experiment: a scalar tag of the session runs (`group` a sub-directory of them). */
export interface MetricInfo {
  /** The scalar's tag. */
  tag: string;
  /** The sub-directory of each session's run holding it (empty: the run itself). */
  group?: string;
  /** What the dashboard shows instead of the tag. */
  displayName?: string;
  /** A longer description. */
  description?: string;
  /** A {@link DatasetType}. */
  datasetType?: number;
}

/**
 * `tensorboard.hparams.MetricInfo` (api.proto): MetricName name = 1 (`MetricName`: string group =
 * 1, tag = 2), string display_name = 3, description = 4, DatasetType dataset_type = 5.
 */
export function encodeMetricInfo(m: MetricInfo): Uint8Array {
  return encode((w) => {
    sub(
      w,
      1,
      encode((n) => {
        str(n, 1, m.group);
        str(n, 2, m.tag);
      }),
    );
    str(w, 3, m.displayName);
    str(w, 4, m.description);
    enm(w, 5, m.datasetType);
  });
}

/** What an HParams experiment says. */
export interface Experiment {
  /** Its name. */
  name?: string;
  /** A description (markdown). */
  description?: string;
  /** Who ran it. */
  user?: string;
  /** When it was created, in seconds since the epoch. */
  timeCreatedSecs?: number;
  /** Its hyperparameters. */
  hparamInfos: HParamInfo[];
  /** Its metrics. */
  metricInfos: MetricInfo[];
}

/**
 * `tensorboard.hparams.Experiment` (api.proto): string description = 1, user = 2, double
 * time_created_secs = 3, repeated HParamInfo hparam_infos = 4, repeated MetricInfo metric_infos =
 * 5, string name = 6.
 */
export function encodeExperiment(e: Experiment): Uint8Array {
  return encode((w) => {
    str(w, 1, e.description);
    str(w, 2, e.user);
    dbl(w, 3, e.timeCreatedSecs);
    e.hparamInfos.forEach((h) => sub(w, 4, encodeHParamInfo(h)));
    e.metricInfos.forEach((m) => sub(w, 5, encodeMetricInfo(m)));
    str(w, 6, e.name);
  });
}

/**
 * `tensorboard.hparams.SessionStartInfo` (tensorboard/plugins/hparams/plugin_data.proto):
 * map<string, google.protobuf.Value> hparams = 1 (entries: string key = 1, Value value = 2),
 * string model_uri = 2, monitor_url = 3, group_name = 4, double start_time_secs = 5.
 */
export function encodeSessionStartInfo(s: {
  hparams: Record<string, HParamValue>;
  modelUri?: string;
  monitorUrl?: string;
  groupName?: string;
  startTimeSecs?: number;
}): Uint8Array {
  return encode((w) => {
    for (const [key, value] of Object.entries(s.hparams)) {
      sub(
        w,
        1,
        encode((e) => {
          e.tag(1, WireType.LengthDelimited).string(key);
          sub(e, 2, encodeValue(value));
        }),
      );
    }
    str(w, 2, s.modelUri);
    str(w, 3, s.monitorUrl);
    str(w, 4, s.groupName);
    dbl(w, 5, s.startTimeSecs);
  });
}

/**
 * `tensorboard.hparams.SessionEndInfo` (plugin_data.proto): Status status = 1, double
 * end_time_secs = 2.
 */
export function encodeSessionEndInfo(s: { status: number; endTimeSecs?: number }): Uint8Array {
  return encode((w) => {
    enm(w, 1, s.status);
    dbl(w, 2, s.endTimeSecs);
  });
}

/**
 * `tensorboard.hparams.HParamsPluginData` (plugin_data.proto): int32 version = 1 (0, TensorBoard's
 * PLUGIN_DATA_VERSION, so left out), oneof data { Experiment experiment = 2; SessionStartInfo
 * session_start_info = 3; SessionEndInfo session_end_info = 4 }; the arguments are encoded messages.
 */
export function encodeHParamsPluginData(
  data: { experiment: Uint8Array } | { sessionStartInfo: Uint8Array } | {
    sessionEndInfo: Uint8Array;
  },
): Uint8Array {
  return encode((w) => {
    if ("experiment" in data) sub(w, 2, data.experiment);
    else if ("sessionStartInfo" in data) sub(w, 3, data.sessionStartInfo);
    else sub(w, 4, data.sessionEndInfo);
  });
}

// ---------------------------------------------------------------------------------------------
// Event files

/** The file version TensorBoard expects in a file's first event. */
export const FILE_VERSION = "brain.Event:2";

/** The hparams plugin's tags (tensorboard/plugins/hparams/metadata.py). */
export const HPARAMS_TAGS = {
  experiment: "_hparams_/experiment",
  sessionStart: "_hparams_/session_start_info",
  sessionEnd: "_hparams_/session_end_info",
} as const;

/** File names TensorBoard reads as event files, as this tool writes them. */
export const EVENTS_FILE_PATTERN: RegExp = /^events\.out\.tfevents\.\d+\.[A-Za-z0-9._-]+$/;

/** Scalars logged at one step. */
export interface ScalarStep {
  /** The training step. */
  step: number;
  /** Seconds since the epoch. */
  wallTime: number;
  /** Tag and value pairs. */
  scalars: [string, number][];
}

/** The machine's name as a file-name part: letters, digits, `.`, `_` and `-` (else `localhost`). */
export function hostName(): string {
  let host = "";
  try {
    host = Deno.hostname();
  } catch {
    // no --allow-sys
  }
  const safe = host.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[._-]+/, "").slice(0, 64);
  return safe || "localhost";
}

/** `events.out.tfevents.<whole seconds>.<host>`, TensorBoard's naming. */
export function eventsFileName(seconds: number, host: string = hostName()): string {
  return `events.out.tfevents.${Math.max(0, Math.floor(seconds))}.${host}`;
}

/** One HParams summary, as an encoded Summary. */
function hparamsSummary(tag: string, pluginData: Uint8Array): Uint8Array {
  return encodeSummary([{
    tag,
    tensor: NULL_TENSOR,
    metadata: encodeSummaryMetadata("hparams", pluginData),
  }]);
}

/**
 * The bytes of an event file: the file-version event at `start` (naming this tool as its writer,
 * which is how the tool tells its own event files from a user's: `isOwnEventsFile`), then `events`.
 */
export function eventsFile(start: number, events: EventFields[]): Uint8Array {
  return frameRecords([
    encodeEvent({ wallTime: start, fileVersion: FILE_VERSION, writer: EVENTS_WRITER }),
    ...events.map(encodeEvent),
  ]);
}

function scalarEvents(steps: ScalarStep[]): EventFields[] {
  return steps.filter((s) => s.scalars.length > 0).map((s) => ({
    wallTime: s.wallTime,
    step: s.step,
    summary: encodeSummary(s.scalars.map(([tag, simpleValue]) => ({ tag, simpleValue }))),
  }));
}

/**
 * Tags of one evaluation point: `train/loss`, `train/cost`, `train/accuracy`, the same for `val/`
 * when the run has a validation split, `eta` (the learning rate of the step) and `epoch`.
 */
export function pointScalars(p: EvalPoint): [string, number][] {
  const out: [string, number][] = [];
  for (const split of ["train", "val"] as const) {
    const m = p[split];
    if (!m) continue;
    out.push([`${split}/loss`, m.loss], [`${split}/cost`, m.cost], [
      `${split}/accuracy`,
      m.accuracy,
    ]);
  }
  out.push(["eta", p.eta], ["epoch", p.epoch]);
  return out;
}

/**
 * A run's scalars: every evaluation point ({@link pointScalars}), and the test metrics (`test/loss`,
 * `test/accuracy`, `test/class_accuracy/<class>`) at the last step when the run has them. Times
 * are spread from `timings.startedAt` over the training time in proportion to the step, so the
 * file is the same for the same metrics.json.
 */
export function runScalars(m: RunMetrics): ScalarStep[] {
  const start = Date.parse(m.timings.startedAt) / 1000;
  const end = Date.parse(m.timings.finishedAt) / 1000;
  const steps = Math.max(m.timings.steps, 1);
  const at = (step: number) =>
    Math.min(end, start + m.timings.setupSeconds + m.timings.trainSeconds * step / steps);
  const out: ScalarStep[] = m.curves.map((p) => ({
    step: p.step,
    wallTime: at(p.step),
    scalars: pointScalars(p),
  }));
  const test = m.final.test;
  if (test) {
    const scalars: [string, number][] = [["test/loss", test.loss], [
      "test/accuracy",
      test.accuracy,
    ]];
    test.perClassAccuracy.forEach((a, i) =>
      scalars.push([`test/class_accuracy/${m.classNames[i] ?? i}`, a])
    );
    out.push({ step: m.curves.at(-1)?.step ?? m.timings.steps, wallTime: end, scalars });
  }
  return out;
}

/** A run's event file: its name and bytes ({@link runScalars}). */
export function runEventsFile(m: RunMetrics, host?: string): { name: string; bytes: Uint8Array } {
  const start = Date.parse(m.timings.startedAt) / 1000;
  return {
    name: eventsFileName(start, host),
    bytes: eventsFile(start, scalarEvents(runScalars(m))),
  };
}

/**
 * Write `bytes` as event file `name` in `dir` atomically, and remove the other event files this
 * tool wrote there (an earlier session's, named by its own start), so a directory holds one; an
 * event file of another program is left alone.
 */
async function replaceEventsFile(dir: string, name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await removeTemporaries(dir, [name]);
  await writeFileAtomic(path, bytes);
  for (const e of Deno.readDirSync(dir)) {
    if (
      e.isFile && e.name !== name && EVENTS_FILE_PATTERN.test(e.name) &&
      isOwnEventsFile(join(dir, e.name))
    ) {
      await Deno.remove(join(dir, e.name)).catch(() => {});
    }
  }
  return path;
}

/**
 * Start the event file of a run in training in its in-progress directory `dir`: the file-version
 * event and the scalars of the points already reached (a resumed run's), replacing any earlier
 * session's file; later points are appended with {@link pointRecord}. Returns its path.
 */
export function startRunEvents(
  dir: string,
  startSeconds: number,
  done: EvalPoint[],
  host?: string,
): Promise<string> {
  const steps = done.map((p) => ({
    step: p.step,
    wallTime: startSeconds,
    scalars: pointScalars(p),
  }));
  return replaceEventsFile(
    dir,
    eventsFileName(startSeconds, host),
    eventsFile(startSeconds, scalarEvents(steps)),
  );
}

/** One evaluation point's scalars as a framed record, to append to a live event file. */
export function pointRecord(p: EvalPoint, wallTime: number): Uint8Array {
  const [event] = scalarEvents([{ step: p.step, wallTime, scalars: pointScalars(p) }]);
  return frameRecords([encodeEvent(event)]);
}

/** Write a run's event file into its directory `dir` (beside metrics.json); returns its path. */
export function writeRunEvents(dir: string, m: RunMetrics, host?: string): Promise<string> {
  const { name, bytes } = runEventsFile(m, host);
  return replaceEventsFile(dir, name, bytes);
}

// ---------------------------------------------------------------------------------------------
// Sweeps

/** The sub-directory of a sweep holding trial `t`'s events: `<stage>-<index>`. */
export function trialDirName(t: Pick<TrialRecord, "stage" | "index">): string {
  const stage = t.stage.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[._-]/, "_");
  return `${stage}-${t.index}`;
}

/** The metrics of the HParams view, each a scalar of every trial's events. */
export const SWEEP_METRICS: readonly MetricInfo[] = [
  {
    tag: "final/val_accuracy",
    displayName: "final val accuracy",
    datasetType: DatasetType.VALIDATION,
  },
  {
    tag: "best/val_accuracy",
    displayName: "best val accuracy",
    datasetType: DatasetType.VALIDATION,
  },
  { tag: "final/val_loss", displayName: "final val loss", datasetType: DatasetType.VALIDATION },
  { tag: "final/val_cost", displayName: "final val cost", datasetType: DatasetType.VALIDATION },
  {
    tag: "final/train_accuracy",
    displayName: "final train accuracy",
    datasetType: DatasetType.TRAINING,
  },
  { tag: "final/train_loss", displayName: "final train loss", datasetType: DatasetType.TRAINING },
  { tag: "final/train_cost", displayName: "final train cost", datasetType: DatasetType.TRAINING },
];

/**
 * A trial's scalars: its evaluation points ({@link pointScalars}); `final/{train,val}_{loss,cost,
 * accuracy}` at its last step when it completed; `best/val_accuracy` at the step it was reached.
 * A trial records no times: every scalar is dated `time`.
 */
export function trialScalars(t: TrialRecord, time: number): ScalarStep[] {
  const out: ScalarStep[] = t.curves.map((p) => ({
    step: p.step,
    wallTime: time,
    scalars: pointScalars(p),
  }));
  const last = t.curves.at(-1)?.step ?? 0;
  if (t.final) {
    const scalars: [string, number][] = [];
    for (const split of ["train", "val"] as const) {
      for (const k of ["loss", "cost", "accuracy"] as const) {
        scalars.push([`final/${split}_${k}`, t.final[split][k]]);
      }
    }
    out.push({ step: last, wallTime: time, scalars });
  }
  if (t.bestVal.accuracy >= 0) {
    out.push({
      step: t.bestVal.step,
      wallTime: time,
      scalars: [["best/val_accuracy", t.bestVal.accuracy]],
    });
  }
  return out;
}

/** The HParams experiment of a sweep: its hyperparameters and {@link SWEEP_METRICS}. */
export function sweepExperiment(view: SweepTrials): Experiment {
  return {
    name: view.name,
    description: `λ sweep ${view.name}: ${view.trials.length} trials`,
    timeCreatedSecs: view.time,
    hparamInfos: view.hparams.map((h) => {
      const numbers = h.values.filter((v): v is number => typeof v === "number");
      return {
        name: h.name,
        displayName: h.name === "lambda" ? "λ" : undefined,
        type: h.type === "number"
          ? DataType.FLOAT64
          : h.type === "bool"
          ? DataType.BOOL
          : DataType.STRING,
        ...(h.type === "number"
          ? h.name === "lambda"
            ? { domainInterval: { min: Math.min(...numbers), max: Math.max(...numbers) } }
            : { domainDiscrete: [...numbers].sort((a, b) => a - b) }
          : { domainDiscrete: h.values }),
        differs: h.differs,
      };
    }),
    metricInfos: [...SWEEP_METRICS],
  };
}

/** The event file of one trial: its hparams (session start), scalars and status (session end). */
export function trialEventsFile(
  view: SweepTrials,
  t: TrialRecord,
  host?: string,
): { name: string; bytes: Uint8Array } {
  const time = view.time;
  const start: EventFields = {
    wallTime: time,
    summary: hparamsSummary(
      HPARAMS_TAGS.sessionStart,
      encodeHParamsPluginData({
        sessionStartInfo: encodeSessionStartInfo({
          hparams: view.values.get(t.id) ?? {},
          startTimeSecs: time,
        }),
      }),
    ),
  };
  const end: EventFields = {
    wallTime: time,
    step: t.curves.at(-1)?.step ?? 0,
    summary: hparamsSummary(
      HPARAMS_TAGS.sessionEnd,
      encodeHParamsPluginData({
        sessionEndInfo: encodeSessionEndInfo({
          status: t.status === "completed" ? Status.SUCCESS : Status.FAILURE,
          endTimeSecs: time,
        }),
      }),
    ),
  };
  return {
    name: eventsFileName(time, host),
    bytes: eventsFile(time, [start, ...scalarEvents(trialScalars(t, time)), end]),
  };
}

/** The sweep's own event file: the HParams experiment ({@link sweepExperiment}). */
export function experimentEventsFile(
  view: SweepTrials,
  host?: string,
): { name: string; bytes: Uint8Array } {
  const experiment: EventFields = {
    wallTime: view.time,
    summary: hparamsSummary(
      HPARAMS_TAGS.experiment,
      encodeHParamsPluginData({ experiment: encodeExperiment(sweepExperiment(view)) }),
    ),
  };
  return { name: eventsFileName(view.time, host), bytes: eventsFile(view.time, [experiment]) };
}

/**
 * Write a sweep's TensorBoard files into its directory: the experiment at the top, one
 * sub-directory per trial ({@link trialDirName}, marked as the tool's) with its events. Call it
 * holding the sweep's lock, as for its other files.
 */
export async function writeSweepEvents(view: SweepTrials, host?: string): Promise<void> {
  const config = readMarker(view.dir)?.config ?? "";
  for (const t of view.trials) {
    const dir = join(view.dir, trialDirName(t));
    const kind = entryKind(dir);
    if (kind === "none") await markOwned(dir, "trial", config);
    else if (kind !== "dir" || readMarker(dir)?.kind !== "trial") {
      throw new UserError(
        `${dir} is in the way of trial ${t.id}'s TensorBoard events and was not written by this tool: move it away`,
      );
    }
    await removeTemporaries(dir, null);
    const { name, bytes } = trialEventsFile(view, t, host);
    await replaceEventsFile(dir, name, bytes);
  }
  const { name, bytes } = experimentEventsFile(view, host);
  await replaceEventsFile(view.dir, name, bytes);
}
