/**
 * The report of a sweep: validation accuracy against λ for every trial (coloured by stage,
 * diverged and stopped trials marked), the top-3 table of each stage (with every dimension its
 * space searched), for stages searching two or more dimensions scatters of two of them coloured
 * by validation accuracy (`scatter.ts`), the curves of the best trials overlaid, the rungs of
 * successive halving (a rung table and every trial's curve ending where it stopped), the
 * hyperparameters and lineage of population-based training (`pbt.ts`), the diverged trials, and the final training's full run report.
 *
 * @module
 */

import { basename } from "node:path";
import type { Hyper, StageSummary, TopEntry, TrialRecord } from "../sweep/types.ts";
import { DIM_INFO, SPACE_DIMS, type SpaceDim } from "../sweep/hyper.ts";
import { ReportBuilder } from "./builder.ts";
import { ALERT_COLOR, paletteColor, type SeriesSpec } from "./charts.ts";
import { duration, int, num, pct, prettyJson, sci } from "./format.ts";
import { type Cell, escapeHtml, htmlCell, htmlTable, keyValueTable } from "./html.ts";
import type { LoadedSweep } from "./load.ts";
import { renderPage } from "./page.ts";
import { curvesFigure, heading, numCell, renderRunSections, runSummaryHtml } from "./run.ts";
import { pbtSections } from "./pbt.ts";
import { hyperScatterSections, sweepRankBy } from "./scatter.ts";

/** Trials shown in the overlaid-curves figures. */
export const TOP_CURVES = 5;

/** A stage's summary: from sweep.json, or computed from its trials while the sweep runs. */
export function stageSummaries(sw: LoadedSweep): StageSummary[] {
  if (sw.summary) return sw.summary.stages;
  const names: string[] = [];
  for (const t of sw.trials) if (!names.includes(t.stage)) names.push(t.stage);
  return names.map((name) => {
    const trials = sw.trials.filter((t) => t.stage === name);
    return {
      name,
      space: {},
      trials: trials.length,
      completed: trials.filter((t) => t.status === "completed").length,
      diverged: trials.filter((t) => t.status === "diverged").length,
      ...(trials.some((t) => t.status === "stopped")
        ? { stopped: trials.filter((t) => t.status === "stopped").length }
        : {}),
      top: rankTrials(trials).slice(0, 3).map(topEntry),
    };
  });
}

/** Completed trials, best validation accuracy first (ties: smaller λ, then id). */
export function rankTrials(trials: TrialRecord[]): TrialRecord[] {
  const acc = (t: TrialRecord) =>
    Number.isFinite(t.bestVal?.accuracy) ? t.bestVal.accuracy : -Infinity;
  return trials
    .filter((t) => t.status === "completed")
    .sort((a, b) => acc(b) - acc(a) || a.lambda - b.lambda || a.id.localeCompare(b.id));
}

/** A trial as a top-table row. */
export function topEntry(t: TrialRecord): TopEntry {
  return {
    id: t.id,
    lambda: t.lambda,
    ...(t.hyper ? { hyper: t.hyper } : {}),
    bestValAccuracy: t.bestVal.accuracy,
    finalValAccuracy: t.final?.val.accuracy ?? NaN,
    finalValCost: t.final?.val.cost ?? NaN,
  };
}

/** Every stage's colour, by name. */
function stageColors(stages: StageSummary[], trials: TrialRecord[]): Map<string, string> {
  const colors = new Map<string, string>();
  for (const s of stages) if (!colors.has(s.name)) colors.set(s.name, paletteColor(colors.size));
  for (const t of trials) if (!colors.has(t.stage)) colors.set(t.stage, paletteColor(colors.size));
  return colors;
}

/** λ (log axis) against best validation accuracy, one colour per stage, diverged trials marked. */
export function lambdaFigure(
  b: ReportBuilder,
  trials: TrialRecord[],
  colors: Map<string, string>,
): string {
  const plotted = trials.filter((t) => t.lambda > 0 && Number.isFinite(t.lambda));
  const omitted = trials.length - plotted.length;
  const series: SeriesSpec[] = [];
  for (const [stage, color] of colors) {
    const ts = plotted.filter((t) => t.stage === stage && t.status === "completed");
    if (ts.length === 0) continue;
    series.push({
      label: `stage ${stage}`,
      x: b.column(ts.map((t) => t.lambda), `sw.${stage}.lambda`),
      y: b.column(ts.map((t) => t.bestVal.accuracy), `sw.${stage}.acc`),
      color,
    });
  }
  const stopped = plotted.filter((t) => t.status === "stopped");
  if (stopped.length > 0) {
    series.push({
      label: "stopped at a rung",
      x: b.column(stopped.map((t) => t.lambda), "sw.stopped.lambda"),
      y: b.column(stopped.map((t) => t.bestVal.accuracy), "sw.stopped.acc"),
      color: STOPPED_COLOR,
      pointStyle: "circle",
      pointRadius: 3,
    });
  }
  const div = plotted.filter((t) => t.status === "diverged");
  if (div.length > 0) {
    series.push({
      label: "diverged",
      x: b.column(div.map((t) => t.lambda), "sw.div.lambda"),
      y: b.column(
        div.map((t) => Number.isFinite(t.bestVal?.accuracy) ? t.bestVal.accuracy : 0),
        "sw.div.acc",
      ),
      color: ALERT_COLOR,
      pointStyle: "crossRot",
      pointRadius: 7,
      width: 2,
    });
  }
  if (series.length === 0) return `<p class="note">No trial with λ > 0 to plot.</p>`;
  const lambdas = plotted.map((t) => t.lambda);
  // Pad the log axis by a factor of 1.6 each side so points at the extremes are not cut in half.
  const xMin = Math.min(...lambdas) / 1.6;
  const xMax = Math.max(...lambdas) * 1.6;
  return `<div class="grid wide">${
    b.figure(
      {
        title: "Validation accuracy against λ",
        kind: "scatter",
        x: {
          label: "λ (L2 strength, log scale)",
          type: "logarithmic",
          format: "log10",
          min: xMin,
          max: xMax,
        },
        y: { label: "best validation accuracy", format: "percent" },
        series,
        legend: true,
        aspect: 2.6,
      },
      `Each point is one trial: its λ and the highest validation accuracy it reached, coloured by search stage. Trials that successive halving stopped are grey, at their best accuracy up to their rung; diverged trials are red crosses at their best accuracy before divergence (0 when none).${
        omitted > 0 ? ` ${omitted} trial(s) with λ ≤ 0 cannot be placed on the log axis.` : ""
      }`,
      "lambda",
    )
  }</div>`;
}

/** The dimensions besides λ that the entries have values of, in `SPACE_DIMS` order. */
function otherDims(entries: { hyper?: Hyper }[]): SpaceDim[] {
  return SPACE_DIMS.filter((d) =>
    d !== "lambda" && entries.some((e) => e.hyper?.[d] !== undefined)
  );
}

/** The top-3 table of every stage: λ and every other dimension its space searched. */
export function topTables(stages: StageSummary[], level: number): string {
  return stages.map((s) => {
    const space = Object.keys(s.space ?? {}).length > 0
      ? ` · search space <code>${escapeHtml(JSON.stringify(s.space))}</code>`
      : "";
    const dims = otherDims(s.top);
    const rows: Cell[][] = s.top.slice(0, 3).map((e, i) => [
      numCell(String(i + 1)),
      htmlCell(`<code>${escapeHtml(e.id)}</code>`),
      numCell(sci(e.lambda)),
      ...dims.map((d) => numCell(e.hyper?.[d] === undefined ? "–" : dimText(d, e.hyper[d]!))),
      numCell(pct(e.bestValAccuracy), i === 0 ? "best" : ""),
      numCell(pct(e.finalValAccuracy)),
      numCell(num(e.finalValCost)),
    ]);
    const table = rows.length > 0
      ? htmlTable(
        [
          numCell("#"),
          "trial",
          numCell("λ"),
          ...dims.map((d) => numCell(DIM_INFO[d].label)),
          numCell("best val. acc."),
          numCell("final val. acc."),
          numCell("final val. cost"),
        ],
        rows,
      )
      : `<p class="note">No completed trial in this stage.</p>`;
    const stopped = s.stopped !== undefined ? `, ${int(s.stopped)} stopped at rungs` : "";
    return `${heading(level, `Stage ${escapeHtml(s.name)}: top 3`)}<p class="sub">${
      int(s.trials)
    } trials, ${int(s.completed)} completed, ${
      int(s.diverged)
    } diverged${stopped}${space}</p>${table}`;
  }).join("\n");
}

/** Validation accuracy and cost curves of the best trials, overlaid. */
export function topCurvesFigures(b: ReportBuilder, trials: TrialRecord[]): string {
  const top = rankTrials(trials).slice(0, TOP_CURVES).filter((t) => t.curves.length > 0);
  if (top.length === 0) return `<p class="note">No completed trial has curves to show.</p>`;
  const fig = (key: "accuracy" | "cost", title: string, label: string) => {
    const series: SeriesSpec[] = [];
    top.forEach((t, i) => {
      const ys = t.curves.map((p) => p.val?.[key]);
      if (!ys.some((v) => typeof v === "number" && Number.isFinite(v))) return;
      series.push({
        label: `#${i + 1} ${t.id} (λ=${sci(t.pbt?.end.lambda ?? t.lambda)})`,
        x: b.column(t.curves.map((p) => p.step), `tr.${t.id}.step`),
        y: b.column(ys, `tr.${t.id}.${key}`),
        color: paletteColor(i),
      });
    });
    return curvesFigure(b, {
      title,
      metric: key,
      label,
      series,
      aspect: 1.5,
      caption:
        `Validation ${key} of the ${top.length} best trials (by best validation accuracy, all stages), against update steps.`,
      idHint: `top ${key}`,
    });
  };
  return `<div class="grid wide">${
    fig("accuracy", "Best trials: validation accuracy", "validation accuracy")
  }${fig("cost", "Best trials: validation cost", "validation cost")}</div>`;
}

/** Colour of the trials successive halving stopped. */
export const STOPPED_COLOR = "#9a9a9a";

/** The rungs of a stage: from its summary, or (while it runs) where its trials were stopped. */
function stageRungs(stage: StageSummary | undefined, trials: TrialRecord[]): number[] {
  if (stage?.halving) return stage.halving.rungs;
  const steps = new Map<number, number>();
  for (const t of trials) if (t.stopped) steps.set(t.stopped.rung, t.stopped.step);
  return [...steps.entries()].sort((a, b) => a[0] - b[0]).map(([, step]) => step);
}

/** One row per rung: how many trials were training there, how many went on, which stopped. */
export function rungTable(rungs: number[], trials: TrialRecord[]): string {
  const rows: Cell[][] = rungs.map((step, i) => {
    const rung = i + 1;
    const training = trials.filter((t) =>
      !(t.stopped && t.stopped.rung < rung) && !(t.diverged && t.diverged.step < step)
    );
    const stopped = training.filter((t) => t.stopped?.rung === rung);
    const diverged = training.filter((t) => t.diverged && t.diverged.step <= step);
    const ids = stopped.map((t) => t.id);
    const shown = ids.length > 24 ? [...ids.slice(0, 24), `… ${ids.length - 24} more`] : ids;
    return [
      numCell(String(rung)),
      numCell(int(step)),
      numCell(int(training.length)),
      numCell(int(training.length - stopped.length - diverged.length)),
      numCell(int(stopped.length)),
      shown.length ? htmlCell(shown.map((id) => `<code>${escapeHtml(id)}</code>`).join(" ")) : "–",
    ];
  });
  return htmlTable(
    [
      numCell("rung"),
      numCell("step"),
      numCell("training"),
      numCell("went on"),
      numCell("stopped"),
      "trials stopped",
    ],
    rows,
  );
}

/**
 * Every trial of a halving stage: its validation accuracy against update steps, the trials
 * that ran to the end in colour, those a rung stopped in grey (ending at their rung), the rungs
 * as dashed lines.
 */
export function rungFigure(
  b: ReportBuilder,
  stage: string,
  rungs: number[],
  trials: TrialRecord[],
): string {
  const series: SeriesSpec[] = [];
  const values: number[] = [];
  const ranked = rankTrials(trials);
  const completed = ranked.filter((t) => t.curves.length > 0);
  completed.forEach((t, i) => {
    const ys = t.curves.map((p) => p.val?.accuracy ?? NaN);
    values.push(...ys.filter(Number.isFinite));
    const own = completed.length <= 10;
    series.push({
      label: own ? `${t.id} (λ=${sci(t.lambda)})` : "ran to the end",
      x: b.column(t.curves.map((p) => p.step), `rung.${t.id}.step`),
      y: b.column(ys, `rung.${t.id}.acc`),
      color: own ? paletteColor(i) : paletteColor(0),
      width: 2,
      ...(own ? {} : { group: "completed", legend: i === 0 }),
    });
  });
  rungs.forEach((_, r) => {
    const out = trials.filter((t) => t.stopped?.rung === r + 1 && t.curves.length > 0);
    out.forEach((t, i) => {
      const ys = t.curves.map((p) => p.val?.accuracy ?? NaN);
      values.push(...ys.filter(Number.isFinite));
      series.push({
        label: `stopped at rung ${r + 1}`,
        x: b.column(t.curves.map((p) => p.step), `rung.${t.id}.step`),
        y: b.column(ys, `rung.${t.id}.acc`),
        color: STOPPED_COLOR,
        width: 1,
        group: `rung-${r + 1}`,
        legend: i === 0,
      });
    });
  });
  if (series.length === 0) return `<p class="note">No trial of this stage has curves yet.</p>`;
  const lo = Math.min(...values), hi = Math.max(...values);
  rungs.forEach((step, r) => {
    series.push({
      label: "rungs",
      x: b.column([step, step], `rung.${stage}.${r}.x`),
      y: b.column([lo, hi], `rung.${stage}.${r}.y`),
      color: ALERT_COLOR,
      dash: true,
      width: 1,
      group: "rungs",
      legend: r === 0,
    });
  });
  return `<div class="grid wide">${
    b.figure(
      {
        title: `Stage ${stage}: validation accuracy of every trial`,
        kind: "line",
        x: { label: "update step" },
        y: { label: "validation accuracy", format: "percent" },
        series,
        legend: true,
        aspect: 2.6,
      },
      `Each line is one trial of stage ${stage}: its validation accuracy at each evaluation point. Grey lines are trials that successive halving stopped: they end at the rung (dashed) where they ranked below the ⌈n/η_r⌉ that went on. Coloured lines ran to the end.`,
      `rungs ${stage}`,
    )
  }</div>`;
}

/** The rungs of every stage that halved: its rung table and its trials' curves. */
export function halvingSections(
  b: ReportBuilder,
  stages: StageSummary[],
  trials: TrialRecord[],
  level: number,
): string {
  const names = stages.filter((s) => s.halving || s.stopped !== undefined).map((s) => s.name);
  for (const t of trials) if (t.stopped && !names.includes(t.stage)) names.push(t.stage);
  return names.map((name) => {
    const stage = stages.find((s) => s.name === name);
    const ts = trials.filter((t) => t.stage === name);
    const rungs = stageRungs(stage, ts);
    const how = stage?.halving
      ? ` · rungs at steps ${rungs.map(int).join(", ")}, η_r = ${num(stage.halving.reduction)}`
      : "";
    return `${heading(level, `Stage ${escapeHtml(name)}: successive halving`)}<p class="sub">${
      int(ts.filter((t) => t.status === "stopped").length)
    } of ${int(ts.length)} trials stopped at rungs${escapeHtml(how)}</p>${rungTable(rungs, ts)}${
      rungFigure(b, name, rungs, ts)
    }`;
  }).join("\n");
}

/** Table of the diverged trials. */
export function divergedTable(trials: TrialRecord[]): string {
  const div = trials.filter((t) => t.status === "diverged");
  if (div.length === 0) return `<p>No trial diverged.</p>`;
  const dims = otherDims(div);
  return htmlTable(
    [
      "trial",
      "stage",
      numCell("λ"),
      ...dims.map((d) => numCell(DIM_INFO[d].label)),
      numCell("seed"),
      numCell("step"),
      "reason",
    ],
    div.map((t) => [
      htmlCell(`<code>${escapeHtml(t.id)}</code>`),
      t.stage,
      numCell(sci(t.lambda)),
      ...dims.map((d) => numCell(t.hyper?.[d] === undefined ? "–" : dimText(d, t.hyper[d]!))),
      numCell(String(t.seed)),
      numCell(t.diverged ? int(t.diverged.step) : "–"),
      t.diverged?.reason ?? "–",
    ]),
  );
}

/** The sweep's metadata (environment, timings, config). */
export function sweepMetadata(sw: LoadedSweep): string {
  const s = sw.summary;
  const a = s?.env?.adapter;
  const d = s?.env?.deno;
  const t = s?.timings;
  const rows: [string, Cell][] = [
    ["sweep", s?.name ?? basename(sw.dir)],
    ["directory", sw.dir],
    ["trials recorded", int(sw.trials.length)],
    [
      "WebGPU adapter",
      a
        ? [a.vendor, a.architecture, a.device, a.description].filter((x) => x).join(" · ") || "–"
        : "–",
    ],
    ["Deno", d ? `${d.deno} (V8 ${d.v8}, TypeScript ${d.typescript})` : "–"],
    ["platform", s?.env ? `${s.env.os} ${s.env.arch}` : "–"],
    ["started / finished", t ? `${t.startedAt} / ${t.finishedAt}` : "–"],
    ["duration", t ? duration(t.wallSeconds) : "–"],
    ["update steps", t ? `${int(t.steps)} (${num(t.stepsPerSecond, 4)} steps/s)` : "–"],
  ];
  const config = s
    ? `<details><summary>Sweep configuration</summary><pre>${
      escapeHtml(prettyJson(s.config))
    }</pre></details>`
    : "";
  return keyValueTable(rows) + config;
}

/** All sections of a sweep's report. */
export function renderSweepSections(b: ReportBuilder, sw: LoadedSweep): string {
  const stages = stageSummaries(sw);
  const colors = stageColors(stages, sw.trials);
  const parts: string[] = sw.notes.map((n) => `<p class="note">${escapeHtml(n)}</p>`);
  parts.push(heading(2, "λ against validation accuracy"));
  parts.push(
    sw.trials.length > 0
      ? lambdaFigure(b, sw.trials, colors)
      : `<p class="note">No trial records.</p>`,
  );
  const scatters = hyperScatterSection(b, stages, sw);
  if (scatters) parts.push(scatters);
  parts.push(heading(2, "Best trials of each stage"), topTables(stages, 3));
  if (sw.trials.length > 0) {
    parts.push(heading(2, "Curves of the best trials"), topCurvesFigures(b, sw.trials));
    const halving = halvingSections(b, stages, sw.trials, 3);
    if (halving) parts.push(heading(2, "Successive halving"), halving);
    const pbt = pbtSections(b, stages, sw.trials, 3);
    if (pbt) parts.push(heading(2, "Population-based training"), pbt);
    parts.push(heading(2, "Diverged trials"), divergedTable(sw.trials));
  }
  const fin = sw.summary?.final;
  if (fin) {
    parts.push(heading(2, `Final training with ${escapeHtml(valuesText(fin.lambda, fin.hyper))}`));
    if (sw.finalRun) {
      parts.push(
        `<p class="sub">Run <code>${escapeHtml(sw.finalRun.metrics.name)}</code> · ${
          runSummaryHtml(sw.finalRun.metrics)
        }</p>`,
      );
      parts.push(renderRunSections(b, sw.finalRun, 3));
    } else {
      parts.push(
        `<p>Test accuracy ${
          escapeHtml(pct(fin.testAccuracy))
        }; its run directory was not found.</p>`,
      );
    }
  }
  parts.push(heading(2, "Sweep metadata"), sweepMetadata(sw));
  return parts.join("\n");
}

/**
 * The scatters of two hyperparameters coloured by validation accuracy, for the stages that
 * search two or more dimensions ("" when none does; see `scatter.ts`).
 */
export function hyperScatterSection(
  b: ReportBuilder,
  stages: StageSummary[],
  sw: LoadedSweep,
): string {
  const body = hyperScatterSections(b, stages.map((s) => s.name), sw.trials, sweepRankBy(sw), 3);
  return body ? [heading(2, "Hyperparameters against each other"), body].join("\n") : "";
}

/** The one-line summary under a sweep page's title. */
export function sweepSubtitle(sw: LoadedSweep): string {
  const stages = stageSummaries(sw);
  const div = sw.trials.filter((t) => t.status === "diverged").length;
  const stopped = sw.trials.filter((t) => t.status === "stopped").length;
  const parts = [
    `${int(sw.trials.length)} trials in ${stages.length} stage${stages.length === 1 ? "" : "s"}`,
    `${int(div)} diverged`,
    ...(stopped ? [`${int(stopped)} stopped at rungs`] : []),
  ];
  const best = rankTrials(sw.trials)[0];
  if (best) {
    parts.push(
      `best ${valuesText(best.lambda, best.hyper)} (validation ${pct(best.bestVal.accuracy)})`,
    );
  }
  if (sw.summary?.final) parts.push(`final test accuracy ${pct(sw.summary.final.testAccuracy)}`);
  if (sw.summary?.timings) parts.push(duration(sw.summary.timings.wallSeconds));
  return escapeHtml(parts.join(" · "));
}

/** A value of a dimension as the report's tables show it. */
function dimText(d: SpaceDim, v: number): string {
  return d === "dropout" ? num(v) : sci(v);
}

/** `λ = 1.0e-3, η_max = 5.0e-2`: λ and the other values of a trial. */
function valuesText(lambda: number, hyper: Hyper | undefined): string {
  return [
    `λ = ${sci(lambda)}`,
    ...otherDims([{ hyper }]).map((d) => `${DIM_INFO[d].label} = ${dimText(d, hyper![d]!)}`),
  ].join(", ");
}

/** The complete HTML page of a sweep. */
export function renderSweepReport(sw: LoadedSweep, opts: { generatedAt?: Date } = {}): string {
  const b = new ReportBuilder();
  const body = renderSweepSections(b, sw);
  return renderPage({
    title: `Sweep ${sw.summary?.name ?? basename(sw.dir)}`,
    subtitleHtml: sweepSubtitle(sw),
    bodyHtml: body,
    builder: b,
    generatedAt: opts.generatedAt,
  });
}
