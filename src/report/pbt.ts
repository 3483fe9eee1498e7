/**
 * The population-based training part of a sweep's report, per PBT stage: each explored
 * hyperparameter of every trial over training (a step line changing at its exploits), every
 * trial's validation accuracy with its exploits marked, the best trial's ancestry (whose state
 * it carries, over which steps), and the table of every exploit.
 *
 * @module
 */

import type { StageSummary, TrialRecord } from "../sweep/types.ts";
import { DIM_INFO, type SpaceDim } from "../sweep/hyper.ts";
import type { PbtDimName } from "../train/pbt.ts";
import type { ReportBuilder } from "./builder.ts";
import { type AxisSpec, paletteColor, type SeriesSpec } from "./charts.ts";
import { int, num, pct } from "./format.ts";
import { escapeHtml, htmlCell, htmlTable } from "./html.ts";
import { heading, numCell } from "./run.ts";

/** Rows of the exploit table shown (the rest are counted). */
export const MAX_EXPLOIT_ROWS = 200;

/** Trials drawn in their own colour (the rest in grey). */
const OWN_COLORS = 10;

const GREY = "#b0b0b0";

/** A trial's value of `d` at the start (its planned value). */
function startValue(t: TrialRecord, d: PbtDimName): number | undefined {
  return d === "lambda" ? (t.hyper?.lambda ?? t.lambda) : t.hyper?.[d as SpaceDim];
}

/** The dimensions a PBT stage explored: from its summary, or from its trials' exploits. */
function exploredDims(stage: StageSummary | undefined, trials: TrialRecord[]): PbtDimName[] {
  if (stage?.pbt) return stage.pbt.dims;
  const dims = new Set<PbtDimName>();
  for (const t of trials) {
    for (const e of t.pbt?.lineage ?? []) {
      for (const d of Object.keys(e.values)) dims.add(d as PbtDimName);
    }
  }
  return [...dims];
}

/** A trial's value of `d` over training: [step, value] at the start and at each change. */
export function valueSteps(t: TrialRecord, d: PbtDimName, last: number): [number, number][] {
  const v0 = startValue(t, d);
  if (v0 === undefined) return [];
  const out: [number, number][] = [[0, v0]];
  for (const e of t.pbt?.lineage ?? []) {
    const v = e.values[d];
    if (v === undefined) continue;
    out.push([e.step, out.at(-1)![1]], [e.step, v]);
  }
  out.push([last, out.at(-1)![1]]);
  return out;
}

/**
 * Whose state a trial carries, newest first: the trial itself from its last exploit, then the
 * trial it copied there over the steps before, and so on back to step 0.
 */
export function ancestry(
  t: TrialRecord,
  byId: Map<string, TrialRecord>,
): { id: string; from: number; to: number }[] {
  const out: { id: string; from: number; to: number }[] = [];
  let cur: TrialRecord | undefined = t;
  let to = t.curves.at(-1)?.step ?? 0;
  // a source never copied at the step it was copied (top and bottom are disjoint)
  while (cur && out.length <= byId.size) {
    const e = (cur.pbt?.lineage ?? []).filter((x) => x.step <= to).at(-1);
    out.push({ id: cur.id, from: e?.step ?? 0, to });
    if (!e) break;
    to = e.step;
    cur = byId.get(e.from);
  }
  return out;
}

/** One PBT stage's section. */
function stageSection(
  b: ReportBuilder,
  name: string,
  stage: StageSummary | undefined,
  trials: TrialRecord[],
  level: number,
): string {
  const last = Math.max(0, ...trials.map((t) => t.curves.at(-1)?.step ?? 0));
  const ranked = [...trials].sort((a, b) =>
    (b.final?.val.accuracy ?? -1) - (a.final?.val.accuracy ?? -1) || a.id.localeCompare(b.id)
  );
  const color = (i: number) => (i < OWN_COLORS ? paletteColor(i) : GREY);
  const events = trials.flatMap((t) => (t.pbt?.lineage ?? []).map((e) => ({ t, e })))
    .sort((a, b) => a.e.step - b.e.step || a.t.index - b.t.index);
  const dims = exploredDims(stage, trials);
  const figures: string[] = [];
  for (const d of dims) {
    const series: SeriesSpec[] = [];
    ranked.forEach((t, i) => {
      const pts = valueSteps(t, d, last);
      if (pts.length === 0) return;
      series.push({
        label: i < OWN_COLORS ? t.id : "other trials",
        x: b.column(pts.map((p) => p[0]), `pbt.${t.id}.${d}.x`),
        y: b.column(pts.map((p) => p[1]), `pbt.${t.id}.${d}.y`),
        color: color(i),
        width: i === 0 ? 3 : 1.5,
        ...(i < OWN_COLORS ? {} : { group: "others", legend: i === OWN_COLORS }),
      });
    });
    if (series.length === 0) continue;
    const label = DIM_INFO[d].label;
    figures.push(b.figure(
      {
        title: `Stage ${name}: ${label} over training`,
        kind: "line",
        x: { label: "update step" },
        y: DIM_INFO[d].scale === "log" ? logAxis(label, valuesOf(ranked, d)) : { label },
        series,
        legend: true,
        aspect: 2,
      },
      `Each line is one trial's ${label}: its planned value from step 0, changing at each exploit where it copied a better trial and explored from that trial's value. Trials are coloured by final validation accuracy, best first (thickest).`,
      `pbt ${name} ${d}`,
    ));
  }
  const acc: SeriesSpec[] = [];
  ranked.forEach((t, i) => {
    if (t.curves.length === 0) return;
    acc.push({
      label: i < OWN_COLORS ? t.id : "other trials",
      x: b.column(t.curves.map((p) => p.step), `pbt.${t.id}.acc.x`),
      y: b.column(t.curves.map((p) => p.val?.accuracy ?? NaN), `pbt.${t.id}.acc.y`),
      color: color(i),
      width: i === 0 ? 3 : 1.5,
      ...(i < OWN_COLORS ? {} : { group: "others", legend: i === OWN_COLORS }),
    });
  });
  if (events.length > 0) {
    const steps = events.map(({ e }) => e.step);
    const ys = events.map(({ t, e }) =>
      t.curves.find((p) => p.step === e.step)?.val?.accuracy ?? NaN
    );
    acc.push({
      label: "exploits (the trial's accuracy before it copied)",
      x: b.column(steps, `pbt.${name}.copies.x`),
      y: b.column(ys, `pbt.${name}.copies.y`),
      color: "#d62728",
      line: false,
      pointRadius: 4,
      pointStyle: "crossRot",
      tooltips: events.map(({ t, e }) => [`${t.id} copied ${e.from} at step ${e.step}`]),
    });
  }
  if (acc.length > 0) {
    figures.push(b.figure(
      {
        title: `Stage ${name}: validation accuracy of every trial`,
        kind: "line",
        x: { label: "update step" },
        y: { label: "validation accuracy", format: "percent" },
        series: acc,
        legend: true,
        aspect: 2,
      },
      `Each line is one trial's validation accuracy. A cross marks an exploit: the trial ranked in the bottom quantile there and took the state of a trial of the top quantile, so its line continues from that trial's accuracy.`,
      `pbt ${name} accuracy`,
    ));
  }
  const byId = new Map(trials.map((t) => [t.id, t]));
  const best = ranked[0];
  const chain = best ? ancestry(best, byId) : [];
  const lineage = chain.length
    ? `<p>Ancestry of the best trial <code>${escapeHtml(best.id)}</code> (${
      pct(best.final?.val.accuracy ?? NaN)
    } final validation accuracy): ${
      chain.map((c) => `<code>${escapeHtml(c.id)}</code> (steps ${int(c.from)}–${int(c.to)})`).join(
        " ← ",
      )
    }.</p>`
    : "";
  const kept = trials.filter((t) => t.pbt?.checkpoint).map((t) =>
    `<code>${escapeHtml(t.pbt!.checkpoint!)}</code> (trial <code>${escapeHtml(t.id)}</code>)`
  );
  const weights = kept.length
    ? `<p>Weights of the best member as trained: ${
      kept.join(", ")
    } — <code>deno task eval --checkpoint FILE</code> ` +
      `evaluates them on the test set.</p>`
    : "";
  const shown = events.slice(0, MAX_EXPLOIT_ROWS);
  const table = events.length
    ? htmlTable(
      [numCell("step"), "trial", "copied", ...dims.map((d) => numCell(DIM_INFO[d].label)), "how"],
      shown.map(({ t, e }) => [
        numCell(int(e.step)),
        htmlCell(`<code>${escapeHtml(t.id)}</code>`),
        htmlCell(`copied ${escapeHtml(e.from)}`),
        ...dims.map((d) => numCell(e.values[d] === undefined ? "–" : valueText(d, e.values[d]!))),
        dims.map((d) => `${DIM_INFO[d].label} ${e.how[d] ?? "–"}`).join(", "),
      ]),
    ) + (events.length > shown.length
      ? `<p class="note">… and ${
        int(events.length - shown.length)
      } more exploits (in trials.jsonl).</p>`
      : "")
    : `<p class="note">No trial copied another.</p>`;
  const p = stage?.pbt;
  const how = p
    ? ` · exploits at steps ${p.steps.map(int).join(", ")}; quantile ${num(p.quantile)}, ` +
      `factors ${p.perturb.map((f) => num(f)).join(", ")}, resample ${num(p.resample)}`
    : "";
  return `${heading(level, `Stage ${escapeHtml(name)}: population-based training`)}<p class="sub">${
    int(events.length)
  } copies among ${int(trials.length)} trials${
    escapeHtml(how)
  }</p>${lineage}${weights}<div class="grid wide">${figures.join("")}</div>${table}`;
}

/** Every value of `d` the trials took (positive ones), for a log axis's bounds. */
function valuesOf(trials: TrialRecord[], d: PbtDimName): number[] {
  return trials.flatMap((t) => valueSteps(t, d, 0).map((p) => p[1])).filter((v) => v > 0);
}

/** A log axis padded by a factor of 1.6 each side, as the sweep's λ plot pads its axis. */
function logAxis(label: string, values: number[]): AxisSpec {
  if (values.length === 0) return { label, type: "logarithmic", format: "log10" };
  return {
    label: `${label} (log scale)`,
    type: "logarithmic",
    format: "log10",
    min: Math.min(...values) / 1.6,
    max: Math.max(...values) * 1.6,
  };
}

function valueText(d: PbtDimName, v: number): string {
  return d === "dropout" ? num(v) : v.toExponential(3);
}

/** The PBT sections of a sweep's report (empty when no stage trained with PBT). */
export function pbtSections(
  b: ReportBuilder,
  stages: StageSummary[],
  trials: TrialRecord[],
  level: number,
): string {
  const names = stages.filter((s) => s.pbt).map((s) => s.name);
  for (const t of trials) if (t.pbt && !names.includes(t.stage)) names.push(t.stage);
  return names.map((name) =>
    stageSection(
      b,
      name,
      stages.find((s) => s.name === name),
      trials.filter((t) => t.stage === name),
      level,
    )
  ).join("\n");
}
