/**
 * The report of one training run: learning curves (cost, loss, accuracy), the learning-rate
 * schedule, final accuracies, first-layer weights, the test confusion matrix, the gradient audit
 * when present, and the run's metadata.
 *
 * @module
 */

import { CIFAR10_CLASSES } from "../data/format.ts";
import type { EvalPoint, RunMetrics, SplitMetrics } from "../train/metrics.ts";
import { ReportBuilder } from "./builder.ts";
import { ALERT_COLOR, type SeriesSpec, TEST_COLOR, TRAIN_COLOR, VAL_COLOR } from "./charts.ts";
import { hasFinite } from "./columns.ts";
import { duration, int, num, pct, prettyJson, sci } from "./format.ts";
import { renderGradcheckSection } from "./gradcheck.ts";
import { type Cell, escapeHtml, htmlCell, htmlTable, keyValueTable } from "./html.ts";
import type { LoadedRun } from "./load.ts";
import { firstLayerMontage, montageSpec } from "./montage.ts";
import { renderPage } from "./page.ts";

/** Curves with more evaluation points than this get a note about decimation. */
const DECIMATION_NOTE_POINTS = 2000;

/** A heading of the given level. */
export function heading(level: number, text: string, id?: string): string {
  const l = Math.min(6, Math.max(1, level));
  return `<h${l}${id ? ` id="${escapeHtml(id)}"` : ""}>${text}</h${l}>`;
}

/** A status badge (`completed`, `diverged`, `interrupted`; `running` on live pages). */
export function statusBadge(status: string): string {
  const cls = ["completed", "diverged", "interrupted", "running"].includes(status)
    ? status
    : "interrupted";
  return `<span class="badge ${cls}">${escapeHtml(status)}</span>`;
}

/** A right-aligned numeric table cell. */
export function numCell(text: string, extraClass = ""): Cell {
  return htmlCell(escapeHtml(text), `n${extraClass ? " " + extraClass : ""}`);
}

/** The class names of a run (CIFAR-10's when none are recorded). */
export function classNamesOf(m: RunMetrics): string[] {
  return m.classNames.length > 0 ? m.classNames.map(String) : [...CIFAR10_CLASSES];
}

/** Layer sizes as `3072-50-10`. */
export function layersText(sizes: number[]): string {
  return sizes.length > 0 ? sizes.join("-") : "–";
}

/** One-line summary of a run for the page header. */
export function runSummaryHtml(m: RunMetrics): string {
  const parts = [
    statusBadge(m.status),
    `layers ${escapeHtml(layersText(m.layerSizes))}`,
    `λ = ${escapeHtml(sci(m.lambda))}`,
    `seed ${escapeHtml(String(m.seed))}`,
  ];
  const t = m.timings;
  if (t) {
    parts.push(
      `${escapeHtml(int(t.steps))} steps in ${escapeHtml(duration(t.trainSeconds))} (${
        escapeHtml(num(t.stepsPerSecond, 3))
      } steps/s)`,
    );
  }
  if (m.final.test) {
    parts.push(`test accuracy <strong>${escapeHtml(pct(m.final.test.accuracy))}</strong>`);
  }
  return parts.join(" · ");
}

/** A metric of a split: cost, loss or accuracy. */
export type MetricKey = keyof SplitMetrics;

/** A figure of metric curves against update steps, drawn by {@link curvesFigure}. */
export interface CurvesSpec {
  /** Title above the chart. */
  title: string;
  /** The metric the curves show: accuracy on a percent axis, cost and loss plain. */
  metric: MetricKey;
  /** Title of the y axis. */
  label: string;
  /** The curves. */
  series: SeriesSpec[];
  /** Width / height of the plot. */
  aspect: number;
  /** Caption under the chart. */
  caption: string;
  /** Readable base of the figure's DOM id. */
  idHint: string;
}

/** A line figure of curves against update steps, with a legend; "" when there is no series. */
export function curvesFigure(b: ReportBuilder, spec: CurvesSpec): string {
  if (spec.series.length === 0) return "";
  return b.figure(
    {
      title: spec.title,
      kind: "line",
      x: { label: "update step" },
      y: { label: spec.label, format: spec.metric === "accuracy" ? "percent" : "plain" },
      series: spec.series,
      legend: true,
      aspect: spec.aspect,
    },
    spec.caption,
    spec.idHint,
  );
}

const METRIC_FIGURES: { key: MetricKey; title: string; label: string; caption: string }[] = [
  {
    key: "cost",
    title: "Cost",
    label: "cost",
    caption:
      "Cost = mean cross-entropy + λ·Σ‖W‖² on the full training and validation sets, against update steps. With λ > 0 it lies above the loss.",
  },
  {
    key: "loss",
    title: "Loss",
    label: "cross-entropy loss",
    caption:
      "Mean cross-entropy loss (without the L2 term) on the full training and validation sets. A widening gap between the curves means over-fitting.",
  },
  {
    key: "accuracy",
    title: "Accuracy",
    label: "accuracy",
    caption:
      "Fraction of correctly classified images on the full training and validation sets (chance is 10 % for CIFAR-10).",
  },
];

function splitValue(p: EvalPoint, split: "train" | "val", key: MetricKey): number | undefined {
  const s = p[split];
  return s ? s[key] : undefined;
}

/** Min and max of the finite values of several arrays. */
function finiteRange(arrays: (number | undefined)[][]): [number, number] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of arrays) {
    for (const v of a) {
      if (typeof v === "number" && Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  return lo <= hi ? [lo, hi] : undefined;
}

/** The three learning-curve figures (cost, loss, accuracy: train vs validation). */
export function curveFigures(b: ReportBuilder, m: RunMetrics): string {
  if (m.curves.length === 0) return `<p class="note">No evaluation point was recorded.</p>`;
  const steps = b.column(m.curves.map((p) => p.step), "step");
  const figs = METRIC_FIGURES.map((f) => {
    const train = m.curves.map((p) => splitValue(p, "train", f.key));
    const val = m.curves.map((p) => splitValue(p, "val", f.key));
    const series: SeriesSpec[] = [];
    if (hasFinite(train)) {
      series.push({
        label: "training",
        x: steps,
        y: b.column(train, `train.${f.key}`),
        color: TRAIN_COLOR,
      });
    }
    if (hasFinite(val)) {
      series.push({
        label: "validation",
        x: steps,
        y: b.column(val, `val.${f.key}`),
        color: VAL_COLOR,
      });
    }
    const range = finiteRange([train, val]);
    if (m.diverged && range) {
      series.push({
        label: `diverged (step ${m.diverged.step})`,
        x: b.column([m.diverged.step, m.diverged.step], "diverged.x"),
        y: b.column(range, "diverged.y"),
        color: ALERT_COLOR,
        dash: true,
        width: 1.2,
      });
    }
    return curvesFigure(b, {
      title: f.title,
      metric: f.key,
      label: f.label,
      series,
      aspect: 1.35,
      caption: f.caption,
      idHint: `${m.name} ${f.title}`,
    });
  });
  const many = m.curves.length > DECIMATION_NOTE_POINTS
    ? `<p class="sub">${
      escapeHtml(int(m.curves.length))
    } evaluation points: the charts draw a min–max decimation (every peak and dip kept); the page holds all points.</p>`
    : "";
  return `<div class="grid">${figs.join("\n")}</div>${many}`;
}

/**
 * The learning-rate schedule figure: a linear y axis, so a cyclical schedule shows its triangles
 * as the classic figures do; a log axis only for schedules that decay over several decades
 * (step decay).
 */
export function lrFigure(b: ReportBuilder, m: RunMetrics): string {
  const pts = m.lrSchedule.filter((p) => Array.isArray(p) && p.length >= 2);
  const etas = pts.map((p) => p[1]);
  if (!hasFinite(etas)) return `<p class="note">No learning-rate schedule was recorded.</p>`;
  const positive = etas.filter((e) => Number.isFinite(e) && e > 0);
  const kind = (m.config as { train?: { schedule?: { kind?: string } } })?.train?.schedule?.kind;
  const log = kind === "stepDecay" && positive.length === etas.length &&
    Math.max(...positive) / Math.min(...positive) >= 100;
  return `<div class="grid wide">${
    b.figure(
      {
        title: "Learning-rate schedule",
        kind: "line",
        x: { label: "update step" },
        y: { label: "learning rate η", type: log ? "logarithmic" : "linear", format: "sci" },
        series: [{
          label: "η",
          x: b.column(pts.map((p) => p[0]), "lr.step"),
          y: b.column(etas, "lr.eta"),
          color: "#6a3d9a",
        }],
        legend: false,
        aspect: 3.4,
      },
      `Learning rate η used at each update step${log ? " (log scale)" : ""}${
        pts.length >= 2000 ? ", sampled to at most ~2000 points" : ""
      }.`,
      `${m.name} lr`,
    )
  }</div>`;
}

/** The final train/validation/test metrics table. */
export function finalTable(m: RunMetrics): string {
  const rows: Cell[][] = [];
  const add = (name: string, s: Partial<SplitMetrics> | undefined, n: number | undefined) => {
    if (!s) return;
    rows.push([
      name,
      numCell(pct(s.accuracy), "best"),
      numCell(num(s.loss)),
      numCell(s.cost === undefined ? "–" : num(s.cost)),
      numCell(int(n)),
    ]);
  };
  add("training", m.final.train, m.dataSizes?.train);
  add("validation", m.final.val, m.dataSizes?.val);
  add("test", m.final.test, m.dataSizes?.test);
  return htmlTable(
    ["split", numCell("accuracy"), numCell("loss"), numCell("cost"), numCell("images")],
    rows,
    "final",
  );
}

/** Background colour of a confusion-matrix cell holding `frac` of its row. */
function cellColor(frac: number, diagonal: boolean): string {
  const a = Math.max(0, Math.min(1, frac));
  const rgb = diagonal ? "46, 125, 50" : "198, 40, 40";
  return `rgba(${rgb}, ${(diagonal ? a : Math.min(1, a * 2.5)).toFixed(3)})`;
}

/** The confusion matrix as a colour-coded table (rows: true class, columns: predicted). */
export function confusionTable(confusion: number[][], names: string[]): string {
  const k = confusion.length;
  const label = (i: number) => names[i] ?? `class ${i}`;
  const head = [
    `<th>true ↓ / predicted →</th>`,
    ...Array.from({ length: k }, (_, j) => `<th>${escapeHtml(label(j))}</th>`),
    `<th>total</th><th>accuracy</th>`,
  ].join("");
  const rows = confusion.map((row, i) => {
    const total = row.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
    const cells = row.map((c, j) => {
      const frac = total > 0 ? c / total : 0;
      const bg = cellColor(frac, i === j);
      const dark = (i === j ? frac : frac * 2.5) > 0.55;
      const title = `true ${label(i)}, predicted ${label(j)}: ${c} (${pct(frac, 1)} of the row)`;
      return `<td class="cm" style="background:${bg};${dark ? "color:#fff;" : ""}" title="${
        escapeHtml(title)
      }">${escapeHtml(int(c))}</td>`;
    }).join("");
    const acc = total > 0 ? row[i] / total : NaN;
    return `<tr><th>${escapeHtml(label(i))}</th>${cells}<td class="n">${
      escapeHtml(int(total))
    }</td>` +
      `<td class="n">${escapeHtml(pct(acc, 1))}</td></tr>`;
  }).join("\n");
  return `<div class="scroll"><table class="confusion"><thead><tr>${head}</tr></thead><tbody>\n${rows}\n</tbody></table></div>`;
}

/** Confusion matrix and per-class accuracy of the test set. */
export function testSection(b: ReportBuilder, m: RunMetrics, level: number): string {
  const test = m.final.test;
  if (!test) return "";
  const names = classNamesOf(m);
  const out = [heading(level, "Test set: confusion matrix and per-class accuracy")];
  if (Array.isArray(test.confusion) && test.confusion.length > 0) {
    out.push(confusionTable(test.confusion, names));
    out.push(
      `<p class="sub">Rows are the true classes, columns the predicted ones; each cell counts test images. Green: correct (darker = higher recall); red: confusions (darker = more frequent).</p>`,
    );
  }
  if (Array.isArray(test.perClassAccuracy) && hasFinite(test.perClassAccuracy)) {
    const k = test.perClassAccuracy.length;
    const categories = Array.from({ length: k }, (_, i) => names[i] ?? `class ${i}`);
    out.push(
      `<div class="grid wide">${
        b.figure(
          {
            title: "Per-class test accuracy",
            kind: "bar",
            x: { label: "class" },
            y: { label: "accuracy", min: 0, max: 1, format: "percent" },
            categories,
            series: [
              {
                label: "per-class accuracy",
                y: b.column(test.perClassAccuracy, "perclass"),
                color: TEST_COLOR,
              },
              {
                label: `overall ${pct(test.accuracy)}`,
                y: b.column(Array(k).fill(test.accuracy), "overall"),
                color: "#3c4043",
                type: "line",
                dash: true,
              },
            ],
            legend: true,
            aspect: 3,
          },
          "Accuracy on the test images of each true class (the confusion matrix's diagonal over its row sums); the dashed line is the overall test accuracy.",
          `${m.name} per-class`,
        )
      }</div>`,
    );
  }
  return out.join("\n");
}

/** The first-layer weight montage, or a note saying why there is none. */
export function weightsSection(b: ReportBuilder, run: LoadedRun, level: number): string {
  const title = heading(level, "First-layer weights");
  if (!run.weights) {
    return `${title}<p class="note">${escapeHtml(run.weightsNote ?? "No checkpoint.")}</p>`;
  }
  const m = firstLayerMontage(run.weights, classNamesOf(run.metrics));
  if (!m.ok) return `${title}<p class="note">${escapeHtml(m.reason)}</p>`;
  const what = m.kind === "templates"
    ? "Class templates of this one-layer network: row c of W (fc1.weight) as a 32×32 RGB image, the pattern whose dot product with a (normalised) image scores class c."
    : `Weights of the first layer's hidden units: each row of fc1.weight (3072 values) drawn as a 32×32 RGB image${
      m.units < m.totalUnits
        ? ` (the first ${m.units} of ${m.totalUnits} units)`
        : ` (${m.units} units)`
    }.`;
  return title + b.montage(
    montageSpec(m),
    m.kind === "templates"
      ? "Class templates (fc1.weight)"
      : "Hidden units of layer 1 (fc1.weight)",
    `${what} Each image is rescaled to [0, 1] by its own minimum and maximum.`,
  );
}

/** Adapter description as one line. */
function adapterText(m: RunMetrics): string {
  const a = m.env?.adapter;
  if (!a) return "–";
  return [a.vendor, a.architecture, a.device, a.description].filter((s) => s).join(" · ") || "–";
}

/** The metadata table (config, seed, adapter, versions, timings). */
export function metadataTable(run: LoadedRun): string {
  const m = run.metrics;
  const t = m.timings;
  const d = m.env?.deno;
  const rows: [string, Cell][] = [
    ["run", m.name],
    ["directory", run.dir],
    ["status", htmlCell(statusBadge(m.status))],
    ["layer sizes", layersText(m.layerSizes)],
    ["λ (L2)", sci(m.lambda)],
    ["seed", String(m.seed)],
    [
      "data (train / val / test)",
      m.dataSizes
        ? `${int(m.dataSizes.train)} / ${int(m.dataSizes.val)} / ${int(m.dataSizes.test)}`
        : "–",
    ],
    ["WebGPU adapter", adapterText(m)],
    ["Deno", d ? `${d.deno} (V8 ${d.v8}, TypeScript ${d.typescript})` : "–"],
    ["platform", m.env ? `${m.env.os} ${m.env.arch}` : "–"],
    ["project version", m.env?.version ?? "–"],
    ["started / finished", t ? `${t.startedAt} / ${t.finishedAt}` : "–"],
    [
      "duration",
      t
        ? `${duration(t.wallSeconds)} total (setup ${duration(t.setupSeconds)}, training ${
          duration(t.trainSeconds)
        })`
        : "–",
    ],
    ["update steps", t ? `${int(t.steps)} (${num(t.stepsPerSecond, 4)} steps/s)` : "–"],
    ["checkpoint", m.checkpoint ?? "–"],
  ];
  if (m.diverged) rows.push(["diverged", `at step ${m.diverged.step}: ${m.diverged.reason}`]);
  return keyValueTable(rows) +
    `<details open><summary>Configuration (as resolved for this run)</summary><pre>${
      escapeHtml(prettyJson(m.config))
    }</pre></details>`;
}

/** Every section of a run's report, with subsection headings at `level`. */
export function renderRunSections(b: ReportBuilder, run: LoadedRun, level = 2): string {
  const m = run.metrics;
  const parts: string[] = [];
  if (m.status === "diverged") {
    parts.push(
      `<p class="alert">Training diverged${
        m.diverged
          ? ` at step ${escapeHtml(m.diverged.step)}: ${escapeHtml(m.diverged.reason)}`
          : ""
      } (NaN or Inf seen; training stopped).</p>`,
    );
  } else if (m.status === "interrupted") {
    parts.push(`<p class="note">This run was interrupted before it finished.</p>`);
  }
  parts.push(heading(level, "Final accuracy"), finalTable(m));
  parts.push(heading(level, "Learning curves"), curveFigures(b, m));
  parts.push(heading(level, "Learning-rate schedule"), lrFigure(b, m));
  parts.push(weightsSection(b, run, level));
  parts.push(testSection(b, m, level));
  if (run.gradcheck) {
    parts.push(heading(level, "Gradient audit"), renderGradcheckSection(b, run.gradcheck));
  }
  parts.push(heading(level, "Run metadata"), metadataTable(run));
  return parts.join("\n");
}

/** The complete HTML page of one run. */
export function renderRunReport(run: LoadedRun, opts: { generatedAt?: Date } = {}): string {
  const b = new ReportBuilder();
  const body = renderRunSections(b, run, 2);
  return renderPage({
    title: `Run ${run.metrics.name}`,
    subtitleHtml: runSummaryHtml(run.metrics),
    bodyHtml: body,
    builder: b,
    generatedAt: opts.generatedAt,
  });
}
