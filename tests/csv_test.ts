/**
 * CSV tables: numbers round-trip exactly, strings are quoted as RFC 4180 says, and a real run's
 * curves.csv and a real sweep's trials.csv, parsed back (by a small RFC 4180 parser here, and by
 * Python's csv module and float() when a python3 is at hand), give back every value of
 * metrics.json and the trial records.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseConfig } from "../src/config.ts";
import { resolveDataDir } from "../src/data/data_dir.ts";
import {
  type Cell,
  csvCell,
  csvTable,
  CURVE_COLUMNS,
  curvesCsv,
  formatNumber,
  TRIAL_RESULT_COLUMNS,
  trialsCsv,
} from "../src/io/csv.ts";
import { readSweepTrials } from "../src/io/hparams.ts";
import { writeSweepLogs } from "../src/io/logs.ts";
import { parseRecord, RUN_FORMAT } from "../src/io/records.ts";
import { runSweep } from "../src/sweep/sweep.ts";
import type { EvalPoint, RunMetrics } from "../src/train/metrics.ts";
import { runExperiment } from "../src/train/run.ts";

/** RFC 4180: fields separated by commas, records by line breaks, `"`-quoted fields with `""`. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [], field = "", i = 0, quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"', i += 2);
      else if (c === '"') (quoted = false, i++);
      else (field += c, i++);
    } else if (c === '"' && field === "") (quoted = true, i++);
    else if (c === ",") (row.push(field), field = "", i++);
    else if (c === "\n" || c === "\r") {
      row.push(field);
      rows.push(row);
      row = [], field = "";
      i += c === "\r" && text[i + 1] === "\n" ? 2 : 1;
    } else (field += c, i++);
  }
  assert.ok(!quoted, "unterminated quoted field");
  if (field !== "" || row.length) (row.push(field), rows.push(row));
  return rows;
}

/** A cell read back as pandas reads it by default: empty, NaN, inf → numbers; else a float or text. */
function readCell(s: string): number | string | null {
  if (s === "") return null;
  if (s === "NaN") return NaN;
  if (s === "inf") return Infinity;
  if (s === "-inf") return -Infinity;
  const x = Number(s);
  return Number.isNaN(x) ? s : x;
}

/** Rows of a CSV text as objects by header, cells read with {@link readCell}. */
function records(text: string): Record<string, number | string | null>[] {
  const [header, ...rows] = parseCsv(text);
  for (const r of rows) assert.equal(r.length, header.length, `row ${r.join(",")}`);
  return rows.map((r) => Object.fromEntries(header.map((h, i) => [h, readCell(r[i])])));
}

/** Python's csv module and float() on the same file, when a python3 is at hand (else null). */
async function pythonRead(path: string): Promise<Record<string, number | string | null>[] | null> {
  const script = [
    "import csv, json, math, sys",
    "def cell(s):",
    "    if s == '': return None",
    "    try: x = float(s)",
    "    except ValueError: return s",
    "    return x if math.isfinite(x) else str(x)",
    "with open(sys.argv[1], newline='') as f:",
    "    print(json.dumps([{k: cell(v) for k, v in r.items()} for r in csv.DictReader(f)]))",
  ].join("\n");
  for (const python of [Deno.env.get("PYTHON"), "python3", "/usr/bin/python3"]) {
    if (!python) continue;
    try {
      const out = await new Deno.Command(python, { args: ["-c", script, path] }).output();
      if (out.code !== 0) continue;
      const rows = JSON.parse(new TextDecoder().decode(out.stdout)) as Record<string, unknown>[];
      const special: Record<string, number> = { nan: NaN, inf: Infinity, "-inf": -Infinity };
      return rows.map((r) =>
        Object.fromEntries(
          Object.entries(r).map((
            [k, v],
          ) => [k, typeof v === "string" && v in special ? special[v] : v]),
        ) as Record<string, number | string | null>
      );
    } catch { /* not installed */ }
  }
  return null;
}

Deno.test("numbers are written so that parsing gives back the same float64", () => {
  const xs = [0, 1, -1, 0.1, 1e-5, 1e-7, 5e-324, 1.7976931348623157e308, 2 ** 53 + 2, 1 / 3];
  for (let i = 0; i < 5000; i++) {
    const bits = new Float64Array(crypto.getRandomValues(new Uint32Array(2)).buffer)[0];
    if (Number.isFinite(bits)) xs.push(bits);
    xs.push(Math.random() * 10 ** (Math.floor(Math.random() * 40) - 20));
  }
  for (const x of xs) assert.ok(Object.is(Number(formatNumber(x)), x), `${x} → ${formatNumber(x)}`);
  assert.equal(formatNumber(NaN), "NaN");
  assert.equal(formatNumber(Infinity), "inf");
  assert.equal(formatNumber(-Infinity), "-inf");
  assert.equal(formatNumber(-0), "-0");
  assert.equal(formatNumber(0.00001), "0.00001");
});

Deno.test("strings are quoted as RFC 4180 says, only when they need it, and parse back", () => {
  assert.equal(csvCell("coarse"), "coarse");
  assert.equal(csvCell("a,b"), '"a,b"');
  assert.equal(csvCell('say "hi"'), '"say ""hi"""');
  assert.equal(csvCell("two\nlines"), '"two\nlines"');
  assert.equal(csvCell(" padded"), '" padded"');
  assert.equal(csvCell(null), "");
  assert.equal(csvCell(undefined), "");
  assert.equal(csvCell(true), "true");
  const nasty = ["", "x", "a,b", '"', '""', "line\r\nbreak", "λ = 0.01", ", ,", "end "];
  const rows: Cell[][] = nasty.map((s, i) => [i, s, s.length]);
  const parsed = parseCsv(csvTable(["i", "s", "n"], rows));
  assert.deepEqual(parsed[0], ["i", "s", "n"]);
  assert.deepEqual(parsed.slice(1), nasty.map((s, i) => [String(i), s, String(s.length)]));
});

Deno.test("curves.csv leaves a split's cells empty when the point has none", () => {
  const curves: EvalPoint[] = [
    { step: 0, epoch: 0, eta: 1e-5, train: { loss: 2.3, cost: 2.4, accuracy: 0.1 } },
    {
      step: 90,
      epoch: 1.5,
      eta: 0.1,
      train: { loss: 1.5, cost: NaN, accuracy: 0.5 },
      val: { loss: Infinity, cost: 1.25, accuracy: 0.45 },
    },
  ];
  const text = curvesCsv({ curves });
  assert.equal(
    text,
    "step,epoch,eta,train_loss,train_cost,train_accuracy,val_loss,val_cost,val_accuracy\n" +
      "0,0,0.00001,2.3,2.4,0.1,,,\n" +
      "90,1.5,0.1,1.5,NaN,0.5,inf,1.25,0.45\n",
  );
});

/** Assert curves.csv rows are exactly the curves of metrics.json. */
function assertCurves(rows: Record<string, number | string | null>[], curves: EvalPoint[]): void {
  assert.equal(rows.length, curves.length);
  rows.forEach((r, i) => {
    const p = curves[i];
    assert.deepEqual(Object.keys(r), [...CURVE_COLUMNS]);
    assert.deepEqual(r, {
      step: p.step,
      epoch: p.epoch,
      eta: p.eta,
      train_loss: p.train.loss,
      train_cost: p.train.cost,
      train_accuracy: p.train.accuracy,
      val_loss: p.val?.loss ?? null,
      val_cost: p.val?.cost ?? null,
      val_accuracy: p.val?.accuracy ?? null,
    });
  });
}

Deno.test("a real run's curves.csv gives back every value of its metrics.json", async () => {
  const out = await Deno.makeTempDir({ prefix: "csv_test_" });
  try {
    const cfg = parseConfig(
      {
        name: "csv",
        out,
        seed: 9,
        data: { dir: resolveDataDir(), train: [1], val: { holdout: 1000 }, test: false },
        model: { hidden: [12], init: "he" },
        train: {
          batchSize: 100,
          lambda: 0.001,
          schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 30, cycles: 1 },
          evalEvery: 20,
          checkpoint: false,
        },
      },
      "test",
    );
    const { dir } = await runExperiment(cfg, { log: () => {}, report: false });
    const m: RunMetrics = parseRecord(
      RUN_FORMAT,
      JSON.parse(await Deno.readTextFile(join(dir, "metrics.json"))),
      "metrics.json",
    );
    const path = join(dir, "curves.csv");
    const text = await Deno.readTextFile(path);
    assert.equal(text, curvesCsv(m));
    assertCurves(records(text), m.curves);
    const py = await pythonRead(path);
    if (py) assertCurves(py, m.curves);
    else console.warn("csv_test: no python3: curves.csv checked by the test's own parser only");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a real sweep's trials.csv gives back every trial record", async () => {
  const out = await Deno.makeTempDir({ prefix: "csv_test_" });
  try {
    const cfg = parseConfig(
      {
        name: "sw",
        out,
        seed: 5,
        data: { dir: resolveDataDir(), train: [1], val: { holdout: 1000 }, test: false },
        model: { hidden: [12], init: "xavier" },
        train: {
          batchSize: 100,
          schedule: { kind: "constant", eta: 0.1, epochs: 1 },
          evalEvery: 45,
        },
        search: {
          stages: [
            { name: "a", space: { kind: "list", values: [0.001, 50] } },
            { name: "b", space: { kind: "list", values: [0.002] }, train: { batchSize: 150 } },
          ],
        },
      },
      "test",
    );
    await runSweep(cfg, { log: () => {}, report: false });
    const dir = join(out, "sw");
    await writeSweepLogs(dir);
    const view = readSweepTrials(dir);
    const path = join(dir, "trials.csv");
    const text = await Deno.readTextFile(path);
    assert.equal(text, trialsCsv(view));
    const expected = view.trials.map((t) => ({
      id: t.id,
      stage: t.stage,
      index: t.index,
      lambda: t.lambda,
      seed: t.seed,
      "train.batchSize": t.stage === "b" ? 150 : 100,
      status: t.status,
      steps: t.curves.at(-1)!.step,
      epochs: t.curves.at(-1)!.epoch,
      final_train_loss: t.final?.train.loss ?? null,
      final_train_cost: t.final?.train.cost ?? null,
      final_train_accuracy: t.final?.train.accuracy ?? null,
      final_val_loss: t.final?.val.loss ?? null,
      final_val_cost: t.final?.val.cost ?? null,
      final_val_accuracy: t.final?.val.accuracy ?? null,
      best_val_accuracy: t.bestVal.accuracy,
      best_val_step: t.bestVal.step,
      diverged_step: t.diverged?.step ?? null,
      diverged_reason: t.diverged?.reason ?? null,
      shard: null,
    }));
    assert.deepEqual(view.trials.map((t) => t.status), ["completed", "diverged", "completed"]);
    assert.deepEqual(
      Object.keys(expected[0]),
      ["id", "stage", "index", "lambda", "seed", "train.batchSize", ...TRIAL_RESULT_COLUMNS],
    );
    assert.deepEqual(records(text), expected);
    const py = await pythonRead(path);
    if (py) assert.deepEqual(py, expected);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
