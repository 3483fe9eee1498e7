/**
 * The gradient audit (a gradcheck.json): a table of the relative errors of analytic gradients
 * against finite differences and of the GPU against the CPU, checked against the audit's
 * thresholds, and a log-scale chart of the same numbers.
 *
 * @module
 */

import type { GradcheckReport, GradcheckRow } from "../train/metrics.ts";
import { ReportBuilder } from "./builder.ts";
import { ALERT_COLOR } from "./charts.ts";
import { int, sci } from "./format.ts";
import { type Cell, escapeHtml, htmlCell, htmlTable, keyValueTable } from "./html.ts";
import { renderPage } from "./page.ts";

/** Whether a row passes the thresholds the audit asserts (centred and GPU errors). */
export function rowPasses(row: GradcheckRow, t: GradcheckReport["thresholds"]): boolean {
  const centredOk = Number.isFinite(row.centred) && row.centred <= t.centredMax;
  const gpuOk = row.gpu === null || (Number.isFinite(row.gpu) && row.gpu <= t.gpuMax);
  return centredOk && gpuOk;
}

function errCell(v: number | null, max: number, soft = false): Cell {
  if (v === null || v === undefined) return htmlCell("–", "n");
  const ok = Number.isFinite(v) && v <= max;
  return htmlCell(
    escapeHtml(sci(v)),
    ok ? "n" : `n ${soft ? "warn" : "fail"}`,
    `${ok ? "≤" : ">"} ${sci(max)}`,
  );
}

/** Short label of a row: net, λ when several, parameter. */
function rowLabel(row: GradcheckRow, showLambda: boolean): string {
  return `${row.net}${showLambda ? ` λ=${sci(row.lambda)}` : ""} ${row.param}`;
}

/** The gradient-audit section: settings, verdict, table and chart. */
export function renderGradcheckSection(b: ReportBuilder, gc: GradcheckReport): string {
  const t = gc.thresholds;
  const failing = gc.rows.filter((r) => !rowPasses(r, t)).length;
  const verdict = failing === 0
    ? `<p class="pass">All ${gc.rows.length} rows pass (centred ≤ ${
      escapeHtml(sci(t.centredMax))
    }, GPU ≤ ${escapeHtml(sci(t.gpuMax))}).</p>`
    : `<p class="alert">${failing} of ${gc.rows.length} rows exceed the thresholds (centred ≤ ${
      escapeHtml(sci(t.centredMax))
    }, GPU ≤ ${escapeHtml(sci(t.gpuMax))}).</p>`;
  const settings = keyValueTable([
    ["finite-difference step h", sci(gc.h)],
    ["samples × input dimensions", `${int(gc.samples)} × ${int(gc.dims)}`],
    ["ε in the relative error", sci(gc.eps)],
    ["GPU adapter", gc.adapter || "–"],
  ]);
  const rows = gc.rows.map((r) =>
    [
      r.net,
      htmlCell(escapeHtml(sci(r.lambda)), "n"),
      r.param,
      errCell(r.forward, t.forwardMax, true),
      errCell(r.centred, t.centredMax),
      errCell(r.gpu, t.gpuMax),
      rowPasses(r, t) ? htmlCell("pass", "pass") : htmlCell("FAIL", "fail"),
    ] as Cell[]
  );
  const table = htmlTable(
    [
      "network",
      htmlCell("λ", "n"),
      "parameter",
      htmlCell("forward diff.", "n"),
      htmlCell("centred diff.", "n"),
      htmlCell("GPU f32 vs CPU f64", "n"),
      "verdict",
    ],
    rows,
    "gradcheck",
  );
  const caption =
    "Max relative error |ga − gn| / max(ε, |ga| + |gn|) per parameter: float64 analytic gradients against forward and centred finite differences, and the GPU's float32 gradients against the CPU's float64 ones. Red: above the audit's threshold (amber for forward differences, which are only reported).";
  let chart = "";
  if (gc.rows.length > 0) {
    const lambdas = new Set(gc.rows.map((r) => r.lambda));
    const categories = gc.rows.map((r) => rowLabel(r, lambdas.size > 1));
    const pos = (v: number | null) => (v !== null && Number.isFinite(v) && v > 0 ? v : null);
    const n = gc.rows.length;
    const series = [
      {
        label: "forward",
        y: b.column(gc.rows.map((r) => pos(r.forward)), "gc.fwd"),
        color: "#b8bcc2",
      },
      {
        label: "centred",
        y: b.column(gc.rows.map((r) => pos(r.centred)), "gc.cen"),
        color: "#4e79a7",
      },
    ];
    if (gc.rows.some((r) => pos(r.gpu) !== null)) {
      series.push({
        label: "GPU vs CPU",
        y: b.column(gc.rows.map((r) => pos(r.gpu)), "gc.gpu"),
        color: "#f28e2b",
      });
    }
    chart = `<div class="grid wide">${
      b.figure(
        {
          title: "Relative gradient errors (log scale)",
          kind: "bar",
          x: { label: "network and parameter" },
          y: { label: "max relative error", type: "logarithmic", format: "sci" },
          categories,
          series: [
            ...series,
            {
              label: `centred threshold ${sci(t.centredMax)}`,
              y: b.column(Array(n).fill(t.centredMax), "gc.tc"),
              color: ALERT_COLOR,
              type: "line",
              dash: true,
            },
            {
              label: `GPU threshold ${sci(t.gpuMax)}`,
              y: b.column(Array(n).fill(t.gpuMax), "gc.tg"),
              color: "#a15c00",
              type: "line",
              dash: true,
            },
          ],
          legend: true,
          aspect: 2.8,
        },
        "The table's errors as bars on a log axis; the dashed lines are the thresholds. Bars must stay below their line. Zero errors are not drawn.",
        "gradcheck",
      )
    }</div>`;
  }
  return `${verdict}${settings}<div class="scroll">${table}</div><p class="sub">${
    escapeHtml(caption)
  }</p>${chart}`;
}

/** The complete HTML page of a standalone gradcheck.json. */
export function renderGradcheckReport(
  gc: GradcheckReport,
  source: string,
  opts: { generatedAt?: Date } = {},
): string {
  const b = new ReportBuilder();
  return renderPage({
    title: "Gradient audit",
    subtitleHtml: `from <code>${escapeHtml(source)}</code>`,
    bodyHtml: renderGradcheckSection(b, gc),
    builder: b,
    generatedAt: opts.generatedAt,
  });
}
