/**
 * TensorBoard event files: the TFRecord framing and the protocol buffers checked byte for byte
 * against vectors taken from TensorBoard itself (always run), then a real run and a real tiny
 * sweep read back by TensorBoard's own reader (`tests/tensorboard_read.py`: EventAccumulator, and
 * the hparams plugin's HParamsPluginData), every value compared with metrics.json and the trial
 * records: scalars as float32 (Math.fround of the recorded float64, exactly), steps and times
 * exactly.
 *
 * The read-back tests need a Python with tensorboard (`$PYTHON`, `python3` or /usr/bin/python3,
 * the first that has it); without one they say so in one line and are ignored.
 */

import { findPython } from "./python.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32c } from "@aws-crypto/crc32c";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { parseConfig } from "../src/config.ts";
import { resolveDataDir } from "../src/data/data_dir.ts";
import { readSweepTrials, type SweepTrials } from "../src/io/hparams.ts";
import { writeSweepLogs } from "../src/io/logs.ts";
import { markOwned, readMarker, replaceProblem } from "../src/io/owned.ts";
import { parseRecord, RUN_FORMAT } from "../src/io/records.ts";
import {
  encodeEvent,
  encodeSummary,
  eventsFile,
  eventsFileName,
  hostName,
  NULL_TENSOR,
  pointScalars,
  runEventsFile,
  runScalars,
  trialDirName,
  trialScalars,
  writeRunEvents,
  writeSweepEvents,
} from "../src/io/tensorboard.ts";
import {
  frameRecord,
  frameRecords,
  maskCrc,
  maskedCrc32c,
  parseRecords,
} from "../src/io/tfrecord.ts";
import { PROGRESS_FORMAT, type ProgressHeader, ProgressLog } from "../src/train/live.ts";
import { runSweep } from "../src/sweep/sweep.ts";
import type { TrialRecord } from "../src/sweep/types.ts";
import type { RunMetrics } from "../src/train/metrics.ts";
import { runExperiment } from "../src/train/run.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const READER = join(ROOT, "tests", "tensorboard_read.py");
const enc = new TextEncoder();
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

// ---------------------------------------------------------------------------------------------
// Always run: framing and encoding

Deno.test("CRC-32C and TensorFlow's mask match known vectors", () => {
  // RFC 3720 (iSCSI) B.4 and the classic check value
  assert.equal(crc32c(enc.encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  // masked values computed by tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c
  assert.equal(maskedCrc32c(enc.encode("123456789")), 0xc78ab0e5);
  assert.equal(maskedCrc32c(new Uint8Array()), 0xa282ead8);
  assert.equal(maskCrc(0), 0xa282ead8);
  // rotation wraps to 32 bits, the sum too
  assert.equal(maskCrc(0xffffffff), (0xffffffff + 0xa282ead8) >>> 0);
});

Deno.test("a TFRecord is framed as TensorBoard's RecordWriter frames it, and parses back", () => {
  // bytes from tensorboard.summary.writer.record_writer.RecordWriter.write(b"hello") and (b"")
  assert.equal(hex(frameRecord(enc.encode("hello"))), "0500000000000000eab2043e68656c6c6fbb1f1c19");
  assert.equal(hex(frameRecord(new Uint8Array())), "000000000000000029039807d8ea82a2");
  const records = [
    enc.encode("hello"),
    new Uint8Array(),
    crypto.getRandomValues(new Uint8Array(999)),
  ];
  const file = new Uint8Array(records.map(frameRecord).flatMap((r) => [...r]));
  assert.deepEqual(parseRecords(file), records);
  const bad = file.slice();
  bad[21 + 16 + 12 + 5] ^= 1; // inside the third record's data (after 21 + 16 bytes and its header)
  assert.throws(() => parseRecords(bad), /data's CRC does not match/);
  bad.set(file);
  bad[0] ^= 1; // the first length
  assert.throws(() => parseRecords(bad), /length's CRC does not match/);
  assert.throws(() => parseRecords(file.subarray(0, file.length - 1)), /truncated/);
});

Deno.test("the hparams null tensor is metadata.NULL_TENSOR's serialisation", () => {
  // tensorboard.plugins.hparams.metadata.NULL_TENSOR.SerializeToString().hex()
  assert.equal(hex(NULL_TENSOR), "080112021200");
});

/** The fields of one encoded message, by number: varints, doubles, floats, bytes. */
function fields(bytes: Uint8Array): Map<number, (number | bigint | Uint8Array)[]> {
  const r = new BinaryReader(bytes);
  const out = new Map<number, (number | bigint | Uint8Array)[]>();
  while (r.pos < r.len) {
    const [no, type] = r.tag();
    const v = type === WireType.Varint
      ? BigInt(r.int64())
      : type === WireType.Bit64
      ? r.double()
      : type === WireType.Bit32
      ? r.float()
      : r.bytes();
    out.set(no, [...(out.get(no) ?? []), v]);
  }
  return out;
}

Deno.test("an event holds its time, step and summary at the event.proto field numbers", () => {
  const summary = encodeSummary([{ tag: "val/accuracy", simpleValue: 0.1 }, {
    tag: "eta",
    simpleValue: 0,
  }]);
  const e = fields(encodeEvent({ wallTime: 1.5e9 + 0.25, step: 300, summary }));
  assert.deepEqual(e.get(1), [1.5e9 + 0.25]); // wall_time
  assert.deepEqual(e.get(2), [300n]); // step
  const values = fields(e.get(5)![0] as Uint8Array).get(1)!; // Summary.value
  const [a, b] = values.map((v) => fields(v as Uint8Array));
  assert.equal(new TextDecoder().decode(a.get(1)![0] as Uint8Array), "val/accuracy");
  assert.deepEqual(a.get(2), [Math.fround(0.1)]); // simple_value, float32
  assert.deepEqual(b.get(2), [0], "a scalar of 0 is still written (oneof presence)");
  const first = fields(encodeEvent({ wallTime: 7, fileVersion: "brain.Event:2" }));
  assert.equal(first.get(2), undefined, "step 0 is left out, as proto3 does");
  assert.equal(new TextDecoder().decode(first.get(3)![0] as Uint8Array), "brain.Event:2");
  // a file's first event names its writer: source_metadata (10) { writer (1) }
  const head = fields(parseRecords(eventsFile(7, []))[0]);
  const writer = fields(head.get(10)![0] as Uint8Array).get(1)![0] as Uint8Array;
  assert.equal(new TextDecoder().decode(writer), "webgpu-mlp");
});

Deno.test("a user's event file in a run directory is theirs: kept, and --overwrite leaves the directory alone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tensorboard_test_" });
  try {
    await markOwned(dir, "run", "h");
    const m = fakeMetrics();
    await Deno.writeTextFile(join(dir, "metrics.json"), JSON.stringify(m));
    await writeRunEvents(dir, m, "h");
    assert.equal(replaceProblem(dir, "run"), null, "the tool's own event file is recognised");
    // TensorFlow 1 names its files exactly like the tool; PyTorch adds .<pid>.<n>
    for (const theirs of ["events.out.tfevents.1700000000.h", "events.out.tfevents.1.h.77.0"]) {
      await Deno.writeFile(join(dir, theirs), frameRecords([encodeEvent({ wallTime: 1 })]));
      await writeRunEvents(dir, m, "h");
      assert.ok((await Deno.stat(join(dir, theirs))).isFile, `${theirs} is not deleted`);
      assert.match(replaceProblem(dir, "run")!, /which the tool did not write/, theirs);
      await Deno.remove(join(dir, theirs));
    }
    assert.equal(replaceProblem(dir, "run"), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("event file names are TensorBoard's, deterministic and safe", () => {
  assert.equal(eventsFileName(1796125678.9, "vm"), "events.out.tfevents.1796125678.vm");
  assert.match(hostName(), /^[A-Za-z0-9][A-Za-z0-9._-]*$/);
  const m = fakeMetrics();
  const a = runEventsFile(m, "h"), b = runEventsFile(structuredClone(m), "h");
  assert.equal(a.name, `events.out.tfevents.${Date.parse(m.timings.startedAt) / 1000}.h`);
  assert.deepEqual(a.bytes, b.bytes);
  const events = parseRecords(a.bytes);
  assert.equal(events.length, 1 + m.curves.length + 1, "file version, points, test");
  assert.equal(trialDirName({ stage: "coarse", index: 12 }), "coarse-12");
});

/** A small metrics.json: two points (the second without val), test metrics. */
function fakeMetrics(): RunMetrics {
  return {
    timings: {
      startedAt: "2026-01-02T03:04:05.000Z",
      finishedAt: "2026-01-02T03:04:25.000Z",
      wallSeconds: 20,
      setupSeconds: 2,
      trainSeconds: 16,
      steps: 200,
      stepsPerSecond: 12.5,
    },
    curves: [
      {
        step: 0,
        epoch: 0,
        eta: 1e-5,
        train: { loss: 2.3, cost: 2.4, accuracy: 0.1 },
        val: { loss: 2.31, cost: 2.41, accuracy: 0.09 },
      },
      { step: 200, epoch: 2, eta: 0.1, train: { loss: 1.5, cost: 1.6, accuracy: 0.5 } },
    ],
    final: {
      train: { loss: 1.5, cost: 1.6, accuracy: 0.5 },
      test: { loss: 1.7, accuracy: 0.45, confusion: [], perClassAccuracy: [0.4, 0.5] },
    },
    classNames: ["cat", "dog"],
  } as unknown as RunMetrics;
}

Deno.test("a run's scalars: every point's tags, test at the last step, times from the timings", () => {
  const s = runScalars(fakeMetrics());
  assert.deepEqual(s.map((x) => x.step), [0, 200, 200]);
  const t0 = Date.parse("2026-01-02T03:04:05.000Z") / 1000;
  assert.deepEqual(s.map((x) => x.wallTime), [t0 + 2, t0 + 18, t0 + 20]);
  assert.deepEqual(s[1].scalars.map(([k]) => k), [
    "train/loss",
    "train/cost",
    "train/accuracy",
    "eta",
    "epoch",
  ]);
  assert.deepEqual(s[2].scalars, [
    ["test/loss", 1.7],
    ["test/accuracy", 0.45],
    ["test/class_accuracy/cat", 0.4],
    ["test/class_accuracy/dog", 0.5],
  ]);
});

Deno.test("a sweep's trial directories are the tool's only when marked and holding events alone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tensorboard_test_" });
  try {
    await markOwned(dir, "sweep", "h");
    const t: TrialRecord = {
      format: "webgpu-mlp.trial/1",
      id: "a/0",
      stage: "a",
      index: 0,
      lambda: 0.01,
      seed: 1,
      status: "completed",
      bestVal: { accuracy: 0.5, step: 10 },
      curves: fakeMetrics().curves,
      final: {
        train: { loss: 1, cost: 1.1, accuracy: 0.6 },
        val: { loss: 1.2, cost: 1.3, accuracy: 0.5 },
      },
    };
    const view: SweepTrials = {
      dir,
      name: "s",
      trials: [t],
      hparams: [{ name: "lambda", type: "number", values: [0.01], differs: false }],
      values: new Map([["a/0", { lambda: 0.01 }]]),
      time: 1.7e9,
    };
    // a directory in the way that the tool did not write is neither claimed nor removed
    await Deno.mkdir(join(dir, "a-0"));
    await assert.rejects(writeSweepEvents(view, "h"), /a-0 is in the way .* move it away/);
    assert.match(replaceProblem(dir, "sweep")!, /a-0, which the tool did not write/);
    await Deno.remove(join(dir, "a-0"));
    await writeSweepEvents(view, "h");
    const name = eventsFileName(1.7e9, "h");
    assert.deepEqual(readMarker(join(dir, "a-0"))?.kind, "trial");
    assert.ok((await Deno.stat(join(dir, "a-0", name))).isFile);
    assert.ok((await Deno.stat(join(dir, name))).isFile);
    assert.equal(replaceProblem(dir, "sweep"), null);
    // another session's file (another host or start) is replaced, not kept beside
    await Deno.writeFile(join(dir, "a-0", "events.out.tfevents.1.other"), eventsFile(1, []));
    await writeSweepEvents(view, "h");
    assert.deepEqual([...Deno.readDirSync(join(dir, "a-0"))].map((e) => e.name).sort(), [
      ".webgpu-mlp.json",
      name,
    ]);
    // another program's event file, named like one (PyTorch's SummaryWriter): kept, and foreign
    const theirs = "events.out.tfevents.1700000000.myhost.4242.0";
    await Deno.writeFile(join(dir, "a-0", theirs), frameRecords([new Uint8Array([9, 0, 0, 0])]));
    await writeSweepEvents(view, "h");
    assert.ok((await Deno.stat(join(dir, "a-0", theirs))).isFile, "a user's file is not deleted");
    assert.match(replaceProblem(dir, "sweep")!, /myhost\.4242\.0, which the tool did not write/);
    await Deno.remove(join(dir, "a-0", theirs));
    await Deno.writeTextFile(join(dir, "a-0", "notes.txt"), "mine");
    assert.match(replaceProblem(dir, "sweep")!, /notes\.txt, which the tool did not write/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// TensorBoard's own reader

const PY = await findPython(
  "tensorboard.backend.event_processing.event_accumulator",
  "tensorboard",
);
if (!PY.python) {
  console.warn(
    `tensorboard_test: TensorBoard read-back tests skipped: ${PY.why} (set PYTHON, or ` +
      "pip install tensorboard)",
  );
}

interface Read {
  files: string[];
  file_version: number;
  scalars: Record<string, [number, number, number][]>;
  hparams: Record<string, Record<string, unknown>>;
}

/** What TensorBoard reads from each directory. */
async function readWithTensorBoard(dirs: string[]): Promise<Record<string, Read>> {
  const out = await new Deno.Command(PY.python!, { args: [READER, ...dirs] }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `tensorboard_read.py failed:\n${err}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

interface Dashboard {
  experiment: { hparam_infos: unknown[] };
  session_groups: {
    session_groups: {
      name: string;
      hparams: Record<string, unknown>;
      sessions: { status: string }[];
      metric_values: { name: { tag: string }; value: number }[];
    }[];
  };
}

/** What TensorBoard's HParams dashboard gets for `logdir`, from the plugin's own handlers. */
async function hparamsView(logdir: string): Promise<Dashboard> {
  const out = await new Deno.Command(PY.python!, { args: [READER, "--hparams-view", logdir] })
    .output();
  assert.equal(out.code, 0, `tensorboard_read.py failed:\n${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Assert TensorBoard's scalars are exactly `expected` (float32 values, steps, times). */
function assertScalars(
  got: Read["scalars"],
  expected: { step: number; wallTime: number; scalars: [string, number][] }[],
  what: string,
): number {
  const want: Record<string, [number, number, number][]> = {};
  for (const s of expected) {
    for (const [tag, v] of s.scalars) (want[tag] ??= []).push([s.step, Math.fround(v), s.wallTime]);
  }
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: tags`);
  let n = 0;
  for (const [tag, points] of Object.entries(want)) {
    assert.deepEqual(got[tag], points, `${what}: ${tag}`);
    n += points.length;
  }
  return n;
}

Deno.test({
  name: "TensorBoard reads a real run's events: every value of metrics.json, as float32",
  ignore: !PY.python,
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "tensorboard_test_" });
    try {
      const cfg = parseConfig(
        {
          name: "tb",
          out,
          seed: 3,
          data: { dir: resolveDataDir(), train: [1], val: { holdout: 1000 }, test: true },
          model: { hidden: [16], init: "he" },
          train: {
            batchSize: 100,
            lambda: 0.002,
            schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 45, cycles: 1 },
            evalEvery: 30,
          },
        },
        "test",
      );
      const { dir } = await runExperiment(cfg, { log: () => {}, report: false });
      const m = parseRecord(
        RUN_FORMAT,
        JSON.parse(await Deno.readTextFile(join(dir, "metrics.json"))),
        "metrics.json",
      );
      const read = (await readWithTensorBoard([dir]))[dir];
      const start = Date.parse(m.timings.startedAt) / 1000;
      assert.deepEqual(read.files, [eventsFileName(start)]);
      assert.equal(read.file_version, 2);
      assert.deepEqual(read.hparams, {});
      // the expectation built from metrics.json by hand, not by the writer's own function
      const steps = m.timings.steps;
      const end = Date.parse(m.timings.finishedAt) / 1000;
      const expected = m.curves.map((p) => ({
        step: p.step,
        wallTime: Math.min(
          end,
          start + m.timings.setupSeconds + m.timings.trainSeconds * p.step / steps,
        ),
        scalars: [
          ["train/loss", p.train.loss],
          ["train/cost", p.train.cost],
          ["train/accuracy", p.train.accuracy],
          ["val/loss", p.val!.loss],
          ["val/cost", p.val!.cost],
          ["val/accuracy", p.val!.accuracy],
          ["eta", p.eta],
          ["epoch", p.epoch],
        ] as [string, number][],
      }));
      const test = m.final.test!;
      expected.push({
        step: m.curves.at(-1)!.step,
        wallTime: end,
        scalars: [
          ["test/loss", test.loss],
          ["test/accuracy", test.accuracy],
          ...m.classNames.map((c, i) =>
            [`test/class_accuracy/${c}`, test.perClassAccuracy[i]] as [string, number]
          ),
        ],
      });
      assert.deepEqual(runScalars(m), expected);
      const n = assertScalars(read.scalars, expected, "run");
      assert.equal(n, m.curves.length * 8 + 2 + m.classNames.length);
      assert.equal(m.curves.length, 4, "steps 0, 30, 60, 90");
      // the tool still owns the directory with its new files in it
      assert.equal(replaceProblem(dir, "run"), null);
      const csv = await Deno.readTextFile(join(dir, "curves.csv"));
      assert.equal(csv.split("\n").length, m.curves.length + 2);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "TensorBoard reads a real sweep: per-trial scalars and the HParams experiment and sessions",
  ignore: !PY.python,
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "tensorboard_test_" });
    try {
      const cfg = parseConfig(
        {
          name: "sw",
          out,
          seed: 5,
          data: { dir: resolveDataDir(), train: [1], val: { holdout: 1000 }, test: true },
          model: { hidden: [16], init: "xavier" },
          train: {
            batchSize: 100,
            schedule: { kind: "constant", eta: 0.1, epochs: 1 },
            evalEvery: 30,
          },
          search: {
            stages: [
              { name: "a", space: { kind: "list", values: [0.001, 50] } },
              { name: "b", space: { kind: "list", values: [0.003] }, train: { evalEvery: 45 } },
            ],
            seeds: "vary",
            final: {},
          },
        },
        "test",
      );
      await runSweep(cfg, { log: () => {}, report: false });
      const dir = join(out, "sw");
      await writeSweepLogs(dir);
      const view = readSweepTrials(dir);
      const trials: TrialRecord[] = view.trials;
      assert.deepEqual(trials.map((t) => [t.id, t.status]), [
        ["a/0", "completed"],
        ["a/1", "diverged"],
        ["b/0", "completed"],
      ]);
      const trialDirs = trials.map((t) => join(dir, trialDirName(t)));
      const read = await readWithTensorBoard([dir, ...trialDirs]);

      // the experiment, at the sweep's top level
      const top = read[dir];
      assert.deepEqual(top.files, [eventsFileName(view.time)]);
      assert.deepEqual(top.scalars, {});
      assert.deepEqual(Object.keys(top.hparams), ["_hparams_/experiment"]);
      const exp = top.hparams["_hparams_/experiment"].experiment as Record<string, unknown>;
      assert.equal(exp.name, "sw");
      assert.equal(exp.time_created_secs, view.time);
      assert.deepEqual(exp.hparam_infos, [
        {
          name: "lambda",
          display_name: "λ",
          type: "DATA_TYPE_FLOAT64",
          domain_interval: { min_value: 0.001, max_value: 50 },
          differs: true,
        },
        { name: "stage", type: "DATA_TYPE_STRING", domain_discrete: ["a", "b"], differs: true },
        { name: "seed", type: "DATA_TYPE_FLOAT64", domain_discrete: [5, 6], differs: true },
        {
          name: "train.evalEvery",
          type: "DATA_TYPE_FLOAT64",
          domain_discrete: [30, 45],
          differs: true,
        },
      ]);
      const metricTags = (exp.metric_infos as { name: { tag: string }; dataset_type: string }[])
        .map((mi) => [mi.name.tag, mi.dataset_type]);
      assert.deepEqual(metricTags, [
        ["final/val_accuracy", "DATASET_VALIDATION"],
        ["best/val_accuracy", "DATASET_VALIDATION"],
        ["final/val_loss", "DATASET_VALIDATION"],
        ["final/val_cost", "DATASET_VALIDATION"],
        ["final/train_accuracy", "DATASET_TRAINING"],
        ["final/train_loss", "DATASET_TRAINING"],
        ["final/train_cost", "DATASET_TRAINING"],
      ]);

      // each trial: session start (its hparams), scalars, session end (its status)
      const seeds = [5, 6, 5];
      trials.forEach((t, i) => {
        const r = read[trialDirs[i]];
        assert.deepEqual(r.files, [eventsFileName(view.time)]);
        assert.deepEqual(r.hparams["_hparams_/session_start_info"], {
          session_start_info: {
            hparams: {
              lambda: t.lambda,
              stage: t.stage,
              seed: seeds[i],
              "train.evalEvery": t.stage === "a" ? 30 : 45,
            },
            start_time_secs: view.time,
          },
        });
        assert.deepEqual(r.hparams["_hparams_/session_end_info"], {
          session_end_info: {
            status: t.status === "completed" ? "STATUS_SUCCESS" : "STATUS_FAILURE",
            end_time_secs: view.time,
          },
        });
        // by hand from the record
        const expected = t.curves.map((p) => ({
          step: p.step,
          wallTime: view.time,
          scalars: pointScalars(p),
        }));
        assert.deepEqual(
          expected[0].scalars.map(([k, v]) => [k, v]),
          [
            ["train/loss", t.curves[0].train.loss],
            ["train/cost", t.curves[0].train.cost],
            ["train/accuracy", t.curves[0].train.accuracy],
            ["val/loss", t.curves[0].val!.loss],
            ["val/cost", t.curves[0].val!.cost],
            ["val/accuracy", t.curves[0].val!.accuracy],
            ["eta", t.curves[0].eta],
            ["epoch", t.curves[0].epoch],
          ],
        );
        if (t.final) {
          expected.push({
            step: t.curves.at(-1)!.step,
            wallTime: view.time,
            scalars: [
              ["final/train_loss", t.final.train.loss],
              ["final/train_cost", t.final.train.cost],
              ["final/train_accuracy", t.final.train.accuracy],
              ["final/val_loss", t.final.val.loss],
              ["final/val_cost", t.final.val.cost],
              ["final/val_accuracy", t.final.val.accuracy],
            ],
          });
        }
        expected.push({
          step: t.bestVal.step,
          wallTime: view.time,
          scalars: [["best/val_accuracy", t.bestVal.accuracy]],
        });
        assert.deepEqual(trialScalars(t, view.time), expected);
        assertScalars(r.scalars, expected, t.id);
      });
      assert.equal(trials[1].final, undefined, "the diverged trial has no final metrics");
      assert.equal(read[trialDirs[1]].scalars["final/val_accuracy"], undefined);

      // what TensorBoard's HParams dashboard gets: one session group per trial, with its hparams,
      // status and metrics (the last value of each metric's tag)
      const dash = await hparamsView(dir);
      const byName = (infos: unknown[]) =>
        (infos as { name: string }[]).toSorted((a, b) => a.name < b.name ? -1 : 1);
      assert.deepEqual(byName(dash.experiment.hparam_infos), byName(exp.hparam_infos as unknown[]));
      const groups = dash.session_groups.session_groups;
      assert.deepEqual(groups.map((g) => g.name), trials.map(trialDirName));
      groups.forEach((g, i) => {
        const t = trials[i];
        assert.deepEqual(g.hparams, view.values.get(t.id));
        assert.deepEqual(g.sessions.map((x) => x.status), [
          t.status === "completed" ? "STATUS_SUCCESS" : "STATUS_FAILURE",
        ]);
        const metric = (tag: string) => g.metric_values.find((v) => v.name.tag === tag)?.value;
        assert.equal(metric("final/val_accuracy"), t.final && Math.fround(t.final.val.accuracy));
        assert.equal(metric("final/val_loss"), t.final && Math.fround(t.final.val.loss));
        assert.equal(metric("best/val_accuracy"), Math.fround(t.bestVal.accuracy));
      });

      // the final run inside the sweep has its own events; the tool still owns everything
      const fin = (await readWithTensorBoard([join(dir, "final")]))[join(dir, "final")];
      assert.ok(fin.scalars["test/accuracy"]?.length === 1);
      assert.equal(replaceProblem(dir, "sweep"), null);
      // writing again (a resumed sweep, a merge) gives the same files
      const before = await Deno.readFile(join(trialDirs[0], eventsFileName(view.time)));
      await writeSweepLogs(dir);
      assert.deepEqual(await Deno.readFile(join(trialDirs[0], eventsFileName(view.time))), before);
      assert.equal(replaceProblem(dir, "sweep"), null);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "a run in training: TensorBoard reads its event file as it grows, resumed without repeats",
  ignore: !PY.python,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "tb-live-" });
    const m = fakeMetrics();
    const header: ProgressHeader = {
      format: PROGRESS_FORMAT,
      name: "live",
      config: {},
      seed: 0,
      layerSizes: [3072, 10],
      lambda: 0,
      env: m.env,
      startedAt: m.timings.startedAt,
      totalSteps: 200,
      stepsPerEpoch: 100,
      lrSchedule: [] as [number, number][],
      classNames: [],
      dataSizes: { train: 100, val: 0, test: 0 },
    };
    const line = (i: number) => ({
      point: m.curves[i],
      elapsedSeconds: 1,
      stepsPerSecond: 1,
      remainingSeconds: 1,
    });
    const log = await ProgressLog.open(dir, header, []);
    log.append(line(0));
    let read = (await readWithTensorBoard([dir]))[dir];
    assert.deepEqual(read.scalars["train/loss"].map((s) => s[0]), [0], "the first point, live");
    log.append(line(1));
    read = (await readWithTensorBoard([dir]))[dir];
    assert.deepEqual(read.scalars["train/loss"].map((s) => s[0]), [0, 200]);
    log.close();
    // a resumed session starts the file again from the snapshot's points: one file, no repeats
    const again = await ProgressLog.open(
      dir,
      { ...header, startedAt: "2026-01-02T04:00:00.000Z" },
      [
        m.curves[0],
      ],
    );
    again.append(line(1));
    again.close();
    read = (await readWithTensorBoard([dir]))[dir];
    assert.equal(read.files.length, 1);
    assert.deepEqual(read.scalars["train/loss"].map((s) => [s[0], s[1]]), [
      [0, Math.fround(m.curves[0].train.loss)],
      [200, Math.fround(m.curves[1].train.loss)],
    ]);
    await Deno.remove(dir, { recursive: true });
  },
});
