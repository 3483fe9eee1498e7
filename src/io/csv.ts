/**
 * Tables for pandas and spreadsheets: a run's `curves.csv` (one row per evaluation point) and a
 * sweep's `trials.csv` (one row per trial).
 *
 * Numbers are written as JavaScript's shortest round-trip form (`String(x)`: `0.1164`, `1e-7`), so
 * parsing a cell as float64 gives back exactly the number of metrics.json (pandas: pass
 * `float_precision="round_trip"`; Python's `float()` always does). NaN is written `NaN` and
 * infinities `inf` / `-inf`, which pandas (by default) and `float()` read as such; an empty cell is
 * a value that is absent (a split the run has no data for, a metric a diverged trial lacks),
 * which pandas also reads as NaN. Strings follow RFC 4180: quoted (with `"` doubled) when they
 * hold a comma, a double quote, a line break or start or end with a space. Lines end in `\n`.
 *
 * @module
 */

import type { EvalPoint, RunMetrics } from "../train/metrics.ts";
import type { SweepTrials } from "./hparams.ts";
import { writeFileAtomic } from "./atomic.ts";

/** A cell: a number, a string, a boolean, or nothing (an empty cell). */
export type Cell = number | string | boolean | null | undefined;

/** A number as a CSV cell: the shortest string that parses back to it; `NaN`, `inf`, `-inf`. */
export function formatNumber(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (Object.is(x, -0)) return "-0";
  return String(x);
}

/** One cell, quoted as RFC 4180 says when it needs to be. */
export function csvCell(v: Cell): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return formatNumber(v);
  const s = String(v);
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** A table as CSV text: the header, then one line per row. */
export function csvTable(header: readonly string[], rows: Cell[][]): string {
  return [header.map(csvCell), ...rows.map((r) => r.map(csvCell))].map((r) => r.join(",") + "\n")
    .join("");
}

/** The columns of curves.csv. */
export const CURVE_COLUMNS: readonly string[] = [
  "step",
  "epoch",
  "eta",
  "train_loss",
  "train_cost",
  "train_accuracy",
  "val_loss",
  "val_cost",
  "val_accuracy",
];

/** One evaluation point as a row of {@link CURVE_COLUMNS} (empty val cells without a val split). */
export function curveRow(p: EvalPoint): Cell[] {
  return [
    p.step,
    p.epoch,
    p.eta,
    p.train.loss,
    p.train.cost,
    p.train.accuracy,
    p.val?.loss,
    p.val?.cost,
    p.val?.accuracy,
  ];
}

/** A run's curves.csv: one row per evaluation point. */
export function curvesCsv(m: Pick<RunMetrics, "curves">): string {
  return csvTable(CURVE_COLUMNS, m.curves.map(curveRow));
}

/** Write curves.csv into a run directory, atomically. */
export function writeCurvesCsv(path: string, m: Pick<RunMetrics, "curves">): Promise<void> {
  return writeFileAtomic(path, curvesCsv(m));
}

/** The columns of trials.csv after the hyperparameters (`lambda`, `stage`, `seed`, …). */
export const TRIAL_RESULT_COLUMNS: readonly string[] = [
  "status",
  "steps",
  "epochs",
  "final_train_loss",
  "final_train_cost",
  "final_train_accuracy",
  "final_val_loss",
  "final_val_cost",
  "final_val_accuracy",
  "best_val_accuracy",
  "best_val_step",
  "diverged_step",
  "diverged_reason",
  "shard",
];

/**
 * A sweep's trials.csv: columns `id`, `stage`, `index`, the other hyperparameters of
 * {@link SweepTrials} (`lambda`, `seed`, then any training key a stage changes), then
 * {@link TRIAL_RESULT_COLUMNS}; one row per trial, in stage order then index. `steps` and
 * `epochs` are those of the last evaluation point.
 */
export function trialsCsv(view: SweepTrials): string {
  const hp = view.hparams.map((h) => h.name).filter((n) => n !== "stage");
  const rows = view.trials.map((t): Cell[] => {
    const v = view.values.get(t.id) ?? {};
    const last = t.curves.at(-1);
    return [
      t.id,
      t.stage,
      t.index,
      ...hp.map((k) => v[k]),
      t.status,
      last?.step,
      last?.epoch,
      t.final?.train.loss,
      t.final?.train.cost,
      t.final?.train.accuracy,
      t.final?.val.loss,
      t.final?.val.cost,
      t.final?.val.accuracy,
      t.bestVal.accuracy >= 0 ? t.bestVal.accuracy : undefined,
      t.bestVal.accuracy >= 0 ? t.bestVal.step : undefined,
      t.diverged?.step,
      t.diverged?.reason,
      t.shard,
    ];
  });
  return csvTable(["id", "stage", "index", ...hp, ...TRIAL_RESULT_COLUMNS], rows);
}

/** Write a sweep's trials.csv, atomically. */
export function writeTrialsCsv(path: string, view: SweepTrials): Promise<void> {
  return writeFileAtomic(path, trialsCsv(view));
}
