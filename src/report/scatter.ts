/**
 * The sweep report's scatters of two hyperparameters: for every stage whose space searches two or
 * more dimensions, each trial placed by its values in two of them (the first two in
 * `SPACE_DIMS` order; one scatter per pair of the first three when it searches three or more),
 * coloured on a sequential scale by the validation accuracy the sweep ranks by (final or best),
 * with a colour bar and a tooltip naming the trial and every value it had. Diverged trials are red
 * crosses. Log-scaled dimensions (λ, η, σ) get log axes, dropout a linear one.
 *
 * @module
 */

import { DIM_INFO, dimsOf, SPACE_DIMS, type SpaceDim } from "../sweep/hyper.ts";
import type { TrialRecord } from "../sweep/types.ts";
import type { ReportBuilder } from "./builder.ts";
import { ALERT_COLOR, type AxisSpec, type SeriesSpec } from "./charts.ts";
import { int, num, pct, sci } from "./format.ts";
import { escapeHtml } from "./html.ts";
import type { LoadedSweep } from "./load.ts";
import { heading } from "./run.ts";

/** How a sweep ranks its trials: by their final or by their best validation accuracy. */
export type RankBy = "final" | "best";

/** The sequential colour scale (viridis, dark purple = low to yellow = high), as anchors. */
export const SEQUENTIAL = [
  "#440154",
  "#482878",
  "#3e4989",
  "#31688e",
  "#26828e",
  "#1f9e89",
  "#35b779",
  "#6ece58",
  "#b5de2b",
  "#fde725",
];

/** Fill of a point that has no value to colour it by. */
export const NO_VALUE_COLOR = "#bdbdbd";

/** Outline of the coloured points (keeps the yellow end visible on white). */
const OUTLINE = "#3c4043";

/** What each dimension is, for axis titles. */
const DIM_MEANING: Readonly<Record<SpaceDim, string>> = {
  lambda: "L2 strength",
  etaMax: "highest learning rate",
  etaMin: "lowest learning rate",
  eta: "learning rate",
  sigma: "initial weight scale",
  dropout: "dropout probability",
};

function hex(c: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)) as [number, number, number];
}

/**
 * The colour of `t` in [0, 1] on the {@link SEQUENTIAL} scale (clamped), as `#rrggbb`;
 * {@link NO_VALUE_COLOR} when `t` is not a finite number.
 */
export function sequentialColor(t: number): string {
  if (!Number.isFinite(t)) return NO_VALUE_COLOR;
  const f = Math.min(1, Math.max(0, t)) * (SEQUENTIAL.length - 1);
  const i = Math.min(SEQUENTIAL.length - 2, Math.floor(f));
  const a = hex(SEQUENTIAL[i]), b = hex(SEQUENTIAL[i + 1]);
  const w = f - i;
  return "#" + a.map((v, k) => Math.round(v + w * (b[k] - v)).toString(16).padStart(2, "0"))
    .join("");
}

/** How a sweep ranks its trials: its config's `search.rankBy` (the default, `final`, if unknown). */
export function sweepRankBy(sw: LoadedSweep): RankBy {
  return sw.rankBy ?? "final";
}

/** The metric a ranking rule reads, as captions name it. */
export function rankMetricName(rankBy: RankBy): string {
  return rankBy === "best" ? "best validation accuracy" : "final validation accuracy";
}

/** A trial's value of the metric its sweep ranks by (NaN when it has none: diverged, no final). */
export function rankMetric(t: TrialRecord, rankBy: RankBy): number {
  const v = rankBy === "best" ? t.bestVal?.accuracy : t.final?.val.accuracy;
  return typeof v === "number" && Number.isFinite(v) ? v : NaN;
}

/** The dimensions the trials have values of (those their stage searched), in `SPACE_DIMS` order. */
export function searchedDims(trials: TrialRecord[]): SpaceDim[] {
  return SPACE_DIMS.filter((d) => trials.some((t) => t.hyper?.[d] !== undefined));
}

/**
 * The pairs of dimensions to scatter (x, y): none for fewer than two, the first two for two, and
 * every pair of the first three for three or more.
 */
export function scatterPairs(dims: SpaceDim[]): [SpaceDim, SpaceDim][] {
  if (dims.length < 2) return [];
  if (dims.length === 2) return [[dims[0], dims[1]]];
  return [[dims[0], dims[1]], [dims[0], dims[2]], [dims[1], dims[2]]];
}

/**
 * An axis title: `λ (L2 strength, log scale)`, `dropout (dropout probability)`; `short`, for
 * small figures: `λ (log scale)`, `dropout`.
 */
export function dimAxisLabel(d: SpaceDim, short = false): string {
  const info = DIM_INFO[d];
  const log = info.scale === "log";
  if (short) return log ? `${info.label} (log scale)` : info.label;
  return `${info.label} (${DIM_MEANING[d]}${log ? ", log scale" : ""})`;
}

/** A value as the report shows it: dropout plain, the others in short scientific notation. */
function valueText(d: SpaceDim, v: number): string {
  return d === "dropout" ? num(v) : sci(v);
}

/** Whether `v` can be placed on dimension `d`'s axis (a log axis takes only values > 0). */
function placeable(d: SpaceDim, v: number | undefined): v is number {
  return typeof v === "number" && Number.isFinite(v) && (DIM_INFO[d].scale === "linear" || v > 0);
}

/** The axis of a dimension over the values shown, padded so that no point sits on its edge. */
function dimAxis(d: SpaceDim, values: number[], short: boolean): AxisSpec {
  const lo = Math.min(...values), hi = Math.max(...values);
  const label = dimAxisLabel(d, short);
  if (DIM_INFO[d].scale === "log") {
    // a factor of 1.6 each side, as the λ plot pads its axis
    return {
      label,
      type: "logarithmic",
      format: "log10",
      min: lo / 1.6,
      max: hi * 1.6,
    };
  }
  const pad = hi > lo ? (hi - lo) * 0.06 : 0.05;
  return { label, type: "linear", format: "plain", min: lo - pad, max: hi + pad };
}

/** The tooltip of a trial: its id, its λ and every other value it had, its metric, its fate. */
function trialTooltip(t: TrialRecord, rankBy: RankBy): string[] {
  const dims = dimsOf(t.hyper ?? {}).filter((d) => d !== "lambda");
  const lines = [
    `trial ${t.id}`,
    `${DIM_INFO.lambda.label} ${sci(t.lambda)}`,
    ...dims.map((d) => `${DIM_INFO[d].label} ${valueText(d, t.hyper![d]!)}`),
  ];
  if (t.status === "diverged") {
    lines.push(`diverged${t.diverged ? ` at step ${int(t.diverged.step)}` : ""}`);
    lines.push(`best validation accuracy before: ${pct(t.bestVal?.accuracy)}`);
  } else {
    lines.push(`${rankMetricName(rankBy)} ${pct(rankMetric(t, rankBy))}`);
  }
  return lines;
}

/** A horizontal colour bar from `lo` to `hi` of the metric (trusted HTML). */
export function colorBarHtml(metric: string, lo: number, hi: number): string {
  const stops = SEQUENTIAL.map((c, i) =>
    `${c} ${((100 * i) / (SEQUENTIAL.length - 1)).toFixed(1)}%`
  )
    .join(", ");
  const label = `colour: ${metric}, ${pct(lo)} to ${pct(hi)}`;
  return `<div class="colorbar" role="img" aria-label="${escapeHtml(label)}" ` +
    `style="display:flex;align-items:center;gap:4px 8px;flex-wrap:wrap;font-size:.85rem;color:#5f6368;margin-top:4px">` +
    `<span>colour: ${escapeHtml(metric)}</span>` +
    `<span style="display:flex;align-items:center;gap:6px;white-space:nowrap">` +
    `<span class="n">${escapeHtml(pct(lo))}</span>` +
    `<span style="display:inline-block;width:160px;height:12px;border:1px solid #dadce0;` +
    `background:linear-gradient(to right, ${stops})"></span>` +
    `<span class="n">${escapeHtml(pct(hi))}</span></span></div>`;
}

/**
 * The scatter of one stage's trials over dimensions `x` and `y`, coloured by the metric the
 * sweep ranks by, with its colour bar; a note instead when no trial can be placed. `small`: one
 * of several side by side (squarer, with short axis titles).
 */
export function hyperScatterFigure(
  b: ReportBuilder,
  stage: string,
  trials: TrialRecord[],
  x: SpaceDim,
  y: SpaceDim,
  rankBy: RankBy,
  small = false,
): string {
  const placed = trials.filter((t) => placeable(x, t.hyper?.[x]) && placeable(y, t.hyper?.[y]));
  const omitted = trials.length - placed.length;
  const title = `${DIM_INFO[y].label} against ${DIM_INFO[x].label}`;
  if (placed.length === 0) {
    return `<p class="note">${
      escapeHtml(`Stage ${stage}, ${title}: no trial with values of both to plot.`)
    }</p>`;
  }
  const metric = rankMetricName(rankBy);
  const completed = placed.filter((t) => t.status === "completed");
  const diverged = placed.filter((t) => t.status === "diverged");
  const scores = completed.map((t) => rankMetric(t, rankBy));
  const finite = scores.filter((v) => Number.isFinite(v));
  const lo = finite.length ? Math.min(...finite) : NaN;
  const hi = finite.length ? Math.max(...finite) : NaN;
  const at = (v: number) => hi > lo ? (v - lo) / (hi - lo) : 0.5;
  const key = `sc.${stage}.${x}.${y}`;
  const series: SeriesSpec[] = [];
  if (completed.length > 0) {
    series.push({
      label: `trials (colour: ${metric})`,
      x: b.column(completed.map((t) => t.hyper![x]!), `${key}.x`),
      y: b.column(completed.map((t) => t.hyper![y]!), `${key}.y`),
      color: OUTLINE,
      pointColors: scores.map((v) => sequentialColor(at(v))),
      tooltips: completed.map((t) => trialTooltip(t, rankBy)),
      pointRadius: 5,
      width: 0.8,
      legend: false,
    });
  }
  if (diverged.length > 0) {
    series.push({
      label: "diverged",
      x: b.column(diverged.map((t) => t.hyper![x]!), `${key}.div.x`),
      y: b.column(diverged.map((t) => t.hyper![y]!), `${key}.div.y`),
      color: ALERT_COLOR,
      tooltips: diverged.map((t) => trialTooltip(t, rankBy)),
      pointStyle: "crossRot",
      pointRadius: 7,
      width: 2,
    });
  }
  const caption = `Each point is one trial of stage ${stage}, placed by its ${
    DIM_INFO[x].label
  } and ${
    DIM_INFO[y].label
  } and coloured by its ${metric} (the accuracy the sweep ranks trials by), from dark purple (lowest) to yellow (highest). Diverged trials are red crosses. Hover a point for the trial and all its values.${
    omitted > 0
      ? ` ${omitted} trial(s) without a value in both, or with a value ≤ 0 on a log axis, are not shown.`
      : ""
  }${
    completed.length > finite.length
      ? ` ${completed.length - finite.length} completed trial(s) without a ${metric} are grey.`
      : ""
  }`;
  return b.figure(
    {
      title,
      kind: "scatter",
      x: dimAxis(x, placed.map((t) => t.hyper![x]!), small),
      y: dimAxis(y, placed.map((t) => t.hyper![y]!), small),
      series,
      legend: diverged.length > 0,
      aspect: small ? 1.25 : 2,
    },
    caption,
    `scatter ${stage} ${x} ${y}`,
    finite.length ? colorBarHtml(metric, lo, hi) : "",
  );
}

/**
 * The scatters of every stage that searches two or more dimensions (stages in `stages` order,
 * then any other stage the trials name), each under a heading of level `level`; "" when no
 * stage does (a sweep over one dimension per stage shows only the λ plot).
 */
export function hyperScatterSections(
  b: ReportBuilder,
  stages: string[],
  trials: TrialRecord[],
  rankBy: RankBy,
  level: number,
): string {
  const names = [...stages];
  for (const t of trials) if (!names.includes(t.stage)) names.push(t.stage);
  const parts: string[] = [];
  for (const name of names) {
    const ts = trials.filter((t) => t.stage === name);
    const dims = searchedDims(ts);
    const pairs = scatterPairs(dims);
    if (pairs.length === 0) continue;
    const more = dims.length > 3
      ? ` It also searches ${
        dims.slice(3).map((d) => DIM_INFO[d].label).join(", ")
      }: the tooltips give those values.`
      : "";
    parts.push(
      heading(
        level,
        `Stage ${escapeHtml(name)}: ${
          escapeHtml(dims.slice(0, 3).map((d) => DIM_INFO[d].label).join(" × "))
        }`,
      ),
      `<p class="sub">${
        escapeHtml(
          `${int(ts.length)} trials over ${dims.length} dimensions (${
            dims.map((d) => DIM_INFO[d].label).join(", ")
          }).${more}`,
        )
      }</p>`,
      `<div class="grid${pairs.length === 1 ? " wide" : ""}">${
        pairs.map(([x, y]) => hyperScatterFigure(b, name, ts, x, y, rankBy, pairs.length > 1))
          .join("")
      }</div>`,
    );
  }
  return parts.join("\n");
}
