/**
 * Several runs side by side: a summary table, their learning curves overlaid (one colour per run,
 * legend by run name), learning-rate schedules, per-class test accuracy, and the configuration
 * keys in which the runs differ — the view the batch-norm and initialisation experiments need.
 *
 * @module
 */

import type { RunMetrics } from "../train/metrics.ts";
import { ReportBuilder } from "./builder.ts";
import { paletteColor, type SeriesSpec } from "./charts.ts";
import { hasFinite } from "./columns.ts";
import { duration, int, num, pct, sci } from "./format.ts";
import { type Cell, escapeHtml, htmlCell, htmlTable } from "./html.ts";
import type { LoadedRun } from "./load.ts";
import { renderPage } from "./page.ts";
import {
  classNamesOf,
  curvesFigure,
  heading,
  layersText,
  type MetricKey,
  numCell,
  statusBadge,
} from "./run.ts";

/** One run of a comparison and its legend label. */
export interface CompareEntry {
  /** Legend label (the run name, made unique). */
  label: string;
  /** The run. */
  run: LoadedRun;
}

/** Legend labels: run names, with the directory added where names repeat. */
export function compareLabels(runs: LoadedRun[]): string[] {
  const names = runs.map((r) => r.metrics.name);
  return runs.map((r, i) =>
    names.filter((n) => n === names[i]).length > 1 ? `${names[i]} (${r.dir})` : names[i]
  );
}

/** Flatten a config to `dotted.path → JSON` leaves (arrays are leaves). */
export function flattenConfig(value: unknown, prefix = "", out = new Map<string, string>()) {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0 && prefix) out.set(prefix, "{}");
    for (const [k, v] of entries) flattenConfig(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix || "(config)", JSON.stringify(value) ?? "undefined");
  }
  return out;
}

/** Config keys whose values differ between runs, with each run's value (`–` when absent). */
export function configDifferences(configs: unknown[]): { key: string; values: string[] }[] {
  const flat = configs.map((c) => flattenConfig(c));
  const keys = [...new Set(flat.flatMap((f) => [...f.keys()]))].sort();
  return keys
    .map((key) => ({ key, values: flat.map((f) => f.get(key) ?? "–") }))
    .filter((d) => new Set(d.values).size > 1);
}

/** Index of the largest finite value, or -1. */
function argmax(xs: (number | undefined)[]): number {
  let best = -1;
  xs.forEach((x, i) => {
    if (typeof x === "number" && Number.isFinite(x) && (best < 0 || x > (xs[best] as number))) {
      best = i;
    }
  });
  return best;
}

/** The comparison summary table. */
export function compareTable(entries: CompareEntry[]): string {
  const ms = entries.map((e) => e.run.metrics);
  const bestVal = argmax(ms.map((m) => m.final.val?.accuracy));
  const bestTest = argmax(ms.map((m) => m.final.test?.accuracy));
  const rows: Cell[][] = entries.map((e, i) => {
    const m = e.run.metrics;
    return [
      htmlCell(`<span style="color:${paletteColor(i)}">■</span> ${escapeHtml(e.label)}`),
      htmlCell(statusBadge(m.status)),
      layersText(m.layerSizes),
      numCell(sci(m.lambda)),
      numCell(String(m.seed)),
      numCell(int(m.timings?.steps)),
      numCell(pct(m.final.train.accuracy)),
      numCell(pct(m.final.val?.accuracy), i === bestVal ? "best" : ""),
      numCell(pct(m.final.test?.accuracy), i === bestTest ? "best" : ""),
      numCell(num(m.final.val?.loss)),
      numCell(duration(m.timings?.wallSeconds)),
      numCell(num(m.timings?.stepsPerSecond, 4)),
    ];
  });
  return `<div class="scroll">${
    htmlTable(
      [
        "run",
        "status",
        "layers",
        numCell("λ"),
        numCell("seed"),
        numCell("steps"),
        numCell("train acc."),
        numCell("val. acc."),
        numCell("test acc."),
        numCell("val. loss"),
        numCell("duration"),
        numCell("steps/s"),
      ],
      rows,
    )
  }</div>`;
}

/** Cost, loss and accuracy curves of every run overlaid (validation solid, training dashed). */
export function overlaidCurves(b: ReportBuilder, entries: CompareEntry[]): string {
  const steps = entries.map((e, i) =>
    b.column(e.run.metrics.curves.map((p) => p.step), `r${i}.step`)
  );
  const figure = (key: MetricKey, title: string, label: string) => {
    const series: SeriesSpec[] = [];
    entries.forEach((e, i) => {
      const m: RunMetrics = e.run.metrics;
      const val = m.curves.map((p) => p.val?.[key]);
      const train = m.curves.map((p) => p.train?.[key]);
      const hasVal = hasFinite(val);
      if (hasVal) {
        series.push({
          label: e.label,
          x: steps[i],
          y: b.column(val, `r${i}.val.${key}`),
          color: paletteColor(i),
          group: e.label,
        });
      }
      if (hasFinite(train)) {
        series.push({
          label: `${e.label} (training)`,
          x: steps[i],
          y: b.column(train, `r${i}.train.${key}`),
          color: paletteColor(i),
          dash: true,
          width: 1.2,
          group: e.label,
          legend: !hasVal,
        });
      }
    });
    return curvesFigure(b, {
      title,
      metric: key,
      label,
      series,
      aspect: 1.35,
      caption:
        `${title} of every run: validation solid, training dashed, one colour per run. Click a run in the legend to hide or show both of its curves.`,
      idHint: `compare ${key}`,
    });
  };
  return `<div class="grid">${figure("cost", "Cost", "cost")}${
    figure("loss", "Loss", "cross-entropy loss")
  }${figure("accuracy", "Accuracy", "accuracy")}</div>`;
}

/** Learning-rate schedules overlaid. */
export function overlaidLr(b: ReportBuilder, entries: CompareEntry[]): string {
  const series: SeriesSpec[] = [];
  entries.forEach((e, i) => {
    const pts = e.run.metrics.lrSchedule.filter((p) => Array.isArray(p) && p.length >= 2);
    if (!hasFinite(pts.map((p) => p[1]))) return;
    series.push({
      label: e.label,
      x: b.column(pts.map((p) => p[0]), `r${i}.lr.step`),
      y: b.column(pts.map((p) => p[1]), `r${i}.lr.eta`),
      color: paletteColor(i),
    });
  });
  if (series.length === 0) return "";
  return `<div class="grid wide">${
    b.figure(
      {
        title: "Learning-rate schedules",
        kind: "line",
        x: { label: "update step" },
        y: { label: "learning rate η", format: "sci" },
        series,
        legend: true,
        aspect: 3.4,
      },
      "Learning rate η at each update step, one colour per run.",
      "compare lr",
    )
  }</div>`;
}

/** Per-class test accuracy of every run, as grouped bars. */
export function perClassBars(b: ReportBuilder, entries: CompareEntry[]): string {
  const withTest = entries.map((e, i) => ({ e, i })).filter(({ e }) =>
    Array.isArray(e.run.metrics.final.test?.perClassAccuracy) &&
    hasFinite(e.run.metrics.final.test!.perClassAccuracy)
  );
  if (withTest.length === 0) return "";
  const names = classNamesOf(withTest[0].e.run.metrics);
  const k = Math.max(...withTest.map(({ e }) => e.run.metrics.final.test!.perClassAccuracy.length));
  return `<div class="grid wide">${
    b.figure(
      {
        title: "Per-class test accuracy",
        kind: "bar",
        x: { label: "class" },
        y: { label: "test accuracy", min: 0, max: 1, format: "percent" },
        categories: Array.from({ length: k }, (_, j) => names[j] ?? `class ${j}`),
        series: withTest.map(({ e, i }) => ({
          label: e.label,
          y: b.column(e.run.metrics.final.test!.perClassAccuracy, `r${i}.perclass`),
          color: paletteColor(i),
        })),
        legend: true,
        aspect: 3,
      },
      "Test accuracy of each true class, one bar per run.",
      "compare perclass",
    )
  }</div>`;
}

/** Table of the config keys in which the runs differ. */
export function configDiffTable(entries: CompareEntry[]): string {
  const diffs = configDifferences(entries.map((e) => e.run.metrics.config));
  if (diffs.length === 0) return `<p>The runs' configurations are identical.</p>`;
  return `<div class="scroll">${
    htmlTable(
      ["config key", ...entries.map((e) => e.label)],
      diffs.map((
        d,
      ) => [
        htmlCell(`<code>${escapeHtml(d.key)}</code>`),
        ...d.values.map((v) => (htmlCell(`<code>${escapeHtml(v)}</code>`))),
      ]),
    )
  }</div>`;
}

/** All sections of a comparison. */
export function renderCompareSections(b: ReportBuilder, entries: CompareEntry[]): string {
  return [
    heading(2, "Summary"),
    compareTable(entries),
    heading(2, "Learning curves"),
    overlaidCurves(b, entries),
    heading(2, "Learning-rate schedules"),
    overlaidLr(b, entries) || `<p class="note">No learning-rate schedule was recorded.</p>`,
    heading(2, "Per-class test accuracy"),
    perClassBars(b, entries) || `<p class="note">No run has test-set results.</p>`,
    heading(2, "Configuration differences"),
    configDiffTable(entries),
  ].join("\n");
}

/** The complete HTML page comparing several runs. */
export function renderCompareReport(runs: LoadedRun[], opts: { generatedAt?: Date } = {}): string {
  const labels = compareLabels(runs);
  const entries = runs.map((run, i) => ({ label: labels[i], run }));
  const b = new ReportBuilder();
  return renderPage({
    title: `Comparison of ${runs.length} runs`,
    subtitleHtml: entries.map((e) => `<code>${escapeHtml(e.label)}</code>`).join(" · "),
    bodyHtml: renderCompareSections(b, entries),
    builder: b,
    generatedAt: opts.generatedAt,
  });
}
