/**
 * The dashboard's pages: the index of a runs folder, a run's page and a sweep's page. Run and
 * sweep pages are the report's own pages (the same sections and chart code as `report.html`),
 * made live: a run still training is drawn from its progress log, with a progress line on top.
 * Each page comes with a fragment (title line, body, embedded data) that the live script swaps in
 * when the files change.
 *
 * @module
 */

import { join, sep } from "node:path";
import { ReportBuilder } from "../report/builder.ts";
import { duration, int, num, pct, sci } from "../report/format.ts";
import {
  type Cell,
  cspHash,
  escapeHtml,
  htmlCell,
  htmlTable,
  inlineScriptSource,
  offlineCsp,
} from "../report/html.ts";
import { type LoadedRun, loadRun, loadSweep } from "../report/load.ts";
import { documentHead, renderPage } from "../report/page.ts";
import { numCell, renderRunSections, runSummaryHtml, statusBadge } from "../report/run.ts";
import { renderSweepSections, sweepSubtitle } from "../report/sweep.ts";
import type { RunMetrics } from "../train/metrics.ts";
import type { ProgressLine } from "../train/live.ts";
import { PARTIAL_SUFFIX } from "../train/run.ts";
import { LIVE_SCRIPT } from "./live_client.ts";
import { isPopulationFile, type PopulationProgress } from "../sweep/population.ts";
import { DIM_INFO, dimsOf, type Hyper, SPACE_DIMS } from "../sweep/hyper.ts";
import { populationHyper } from "./population_values.ts";
import { liveOwner } from "../io/lock.ts";
import { populationSchema } from "../io/records.ts";
import { UserError } from "../errors.ts";
import {
  type Entry,
  entryKindOf,
  lockHeld,
  readJson,
  readProgress,
  runLockHeld,
  scanRuns,
  trialLines,
} from "./scan.ts";
import { exists } from "../io/exists.ts";

/** A page and the parts the live script swaps in. */
export interface Page {
  /** The whole document. */
  html: string;
  /** What an update carries. */
  fragment: { title: string; sub: string; main: string; data?: string };
}

const GENERATOR = "deno task serve";

function between(html: string, start: string, end: string): string {
  const a = html.indexOf(start);
  if (a < 0) return "";
  const b = html.indexOf(end, a + start.length);
  return b < 0 ? "" : html.slice(a + start.length, b);
}

/** The text `escapeHtml` (src/report/html.ts) turned into `html`. */
function unescapeHtml(html: string): string {
  return html.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => UNESCAPES[e]);
}
const UNESCAPES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'" };

/** Split a rendered report page into the parts a live update replaces. */
function fragmentOf(html: string): Page["fragment"] {
  return {
    // document.title takes text, not markup: the page's escaped title, unescaped
    title: unescapeHtml(between(html, "<title>", "</title>")),
    sub: between(html, '<p class="sub">', "</p>\n</header>"),
    main: between(html, "<main>\n", "\n</main>"),
    data: between(html, '<script type="application/json" id="report-data">', "</script>"),
  };
}

function live(events: string) {
  return { script: LIVE_SCRIPT, data: { events } };
}

function eventsUrl(page: "run" | "sweep" | "index", path: string): string {
  return `/events/${page}/${path.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * The metrics of a run still in training (or interrupted), as far as its progress log goes; null
 * when it has no readable log.
 */
export function liveMetrics(partialDir: string, running: boolean): RunMetrics | null {
  const log = readProgress(partialDir);
  if (!log) return null;
  const h = log.header;
  const points = log.lines.map((l) => l.point);
  const last = log.lines.at(-1);
  const paced = pacedLine(log.lines);
  const now = new Date();
  const trainSeconds = paced?.elapsedSeconds ?? 0;
  return {
    format: "webgpu-mlp.run/1",
    name: h.name,
    // not a status a file holds: the page shows the run as it is now
    status: (running ? "running" : "interrupted") as RunMetrics["status"],
    config: h.config,
    seed: h.seed,
    layerSizes: h.layerSizes,
    lambda: h.lambda,
    env: h.env,
    timings: {
      startedAt: h.startedAt,
      finishedAt: now.toISOString(),
      wallSeconds: (now.getTime() - Date.parse(h.startedAt)) / 1000,
      setupSeconds: 0,
      trainSeconds,
      steps: last?.point.step ?? 0,
      stepsPerSecond: paced?.stepsPerSecond ?? 0,
    },
    lrSchedule: h.lrSchedule,
    curves: points,
    final: last
      ? { train: last.point.train, ...(last.point.val ? { val: last.point.val } : {}) }
      : { train: { loss: NaN, cost: NaN, accuracy: NaN } },
    classNames: h.classNames,
    dataSizes: h.dataSizes,
  };
}

/** The latest line that carries a pace (a resumed run's first lines carry none). */
function pacedLine(lines: ProgressLine[]): ProgressLine | undefined {
  return lines.findLast((l) => Number.isFinite(l.stepsPerSecond));
}

function progressNote(partialDir: string, running: boolean): string {
  const log = readProgress(partialDir);
  const last = log?.lines.at(-1);
  const total = log?.header.totalSteps ?? 0;
  if (!log || !last) {
    return `<p class="note">${
      running ? "Training has started" : "Interrupted"
    }: no evaluation point yet.</p>`;
  }
  const step = last.point.step;
  const pace = Number.isFinite(last.stepsPerSecond)
    ? `, ${last.stepsPerSecond.toFixed(0)} steps/s, about ${duration(last.remainingSeconds)} left`
    : "";
  const what = running
    ? `Training: step ${int(step)}/${int(total)} (${pct(step / Math.max(1, total), 0)})${pace}.`
    : `Interrupted at step ${int(step)}/${int(total)}: run the same command to resume.`;
  return `<p class="note">${escapeHtml(what)}${
    running ? " The page grows as evaluation points arrive." : ""
  }</p>`;
}

/** How the dashboard reads a run's files: no link followed, no checkpoint over 1 GiB. */
const LOAD = { followLinks: false, maxCheckpointBytes: 1 << 30 };

/** A message with the served folder's own path left out (a page names paths below it). */
function below(root: string, message: string): string {
  return message.split(root + sep).join("");
}

/** A page that says why a run or sweep cannot be shown (its files are damaged or foreign). */
function problemPage(title: string, message: string, events: string): Page {
  const html = renderPage({
    title,
    subtitleHtml: statusBadge("damaged"),
    bodyHtml: `<p class="note">${escapeHtml(message)}</p>`,
    builder: new ReportBuilder(),
    generator: GENERATOR,
    live: live(events),
  });
  return { html, fragment: fragmentOf(html) };
}

/** The page of the run at `path` (committed, or still in its in-progress directory); null if none. */
export async function runPage(root: string, path: string): Promise<Page | null> {
  const dir = join(root, path);
  let run: LoadedRun;
  let note = "";
  if (entryKindOf(dir) === "run") {
    try {
      run = await loadRun(dir, LOAD);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      const message = below(root, e.message);
      return problemPage(`Run ${path.split("/").at(-1)}`, message, eventsUrl("run", path));
    }
  } else {
    const partial = dir + PARTIAL_SUFFIX;
    const running = runLockHeld(dir);
    const metrics = liveMetrics(partial, running);
    if (!metrics) return null;
    run = {
      dir,
      metrics,
      weightsNote: "The run is still training: its weights are shown once it has finished.",
    };
    note = progressNote(partial, running);
  }
  const b = new ReportBuilder();
  let body = note + renderRunSections(b, run, 2);
  // a run still training has no final model yet: its table is of the latest evaluation point
  if (note) body = body.replace(">Final accuracy</h2>", ">Latest evaluation</h2>");
  const html = renderPage({
    title: `Run ${run.metrics.name}`,
    subtitleHtml: runSummaryHtml(run.metrics),
    bodyHtml: body,
    builder: b,
    generator: GENERATOR,
    live: live(eventsUrl("run", path)),
  });
  return { html, fragment: fragmentOf(html) };
}

/** The page of the sweep at `path`; null if none. */
export async function sweepPage(root: string, path: string): Promise<Page | null> {
  const dir = join(root, path);
  if (entryKindOf(dir) !== "sweep") return null;
  const running = lockHeld(dir, true);
  const b = new ReportBuilder();
  const title = `Sweep ${path.split("/").at(-1)}`;
  let sw;
  try {
    sw = await loadSweep(dir, LOAD);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    // no trial recorded yet (what is training, if anything), or a damaged file (which)
    const none = !(await exists(join(dir, "sweep.json"))) && trialLines(dir).length === 0;
    const html = renderPage({
      title,
      subtitleHtml: running ? "running" : none ? "no trial recorded" : statusBadge("damaged"),
      bodyHtml: `<p class="note">${
        !none
          ? escapeHtml(below(root, e.message))
          : running
          ? "The sweep is running: trials appear as they finish."
          : "No trial is recorded yet."
      }</p>` + populationsTable(dir),
      builder: b,
      generator: GENERATOR,
      live: live(eventsUrl("sweep", path)),
    });
    return { html, fragment: fragmentOf(html) };
  }
  const note = running
    ? `<p class="note">The sweep is running: trials appear as they finish.</p>` +
      populationsTable(dir)
    : "";
  const body = note + renderSweepSections(b, sw);
  const html = renderPage({
    title: sw.summary ? `Sweep ${sw.summary.name}` : title,
    subtitleHtml: sweepSubtitle(sw),
    bodyHtml: body,
    builder: b,
    generator: GENERATOR,
    live: live(eventsUrl("sweep", path)),
  });
  return { html, fragment: fragmentOf(html) };
}

/**
 * The populations in training in a sweep directory, as a table: one per process whose lock is
 * live (a killed shard's file is left behind; it is not shown as training).
 */
function populationsTable(dir: string): string {
  const rows: Cell[][] = [];
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(dir)].filter((e) => e.isFile && isPopulationFile(e.name))
      .map((e) => e.name).sort();
  } catch {
    return "";
  }
  const models: string[] = [];
  for (const name of names) {
    const shard = name.slice("population".length, -".json".length);
    if (!liveOwner(`${dir}${shard}.lock`)) continue;
    const parsed = populationSchema.safeParse(readJson(join(dir, name)));
    if (!parsed.success) continue;
    const p = parsed.data;
    let top = -1;
    for (let z = 0; z < p.val.length; z++) {
      const v = p.val[z];
      if (v !== null && (top < 0 || v > p.val[top]!)) top = z;
    }
    const hyper = populationHyper(dir, p.stage, p.trials);
    models.push(populationModels(p, hyper));
    rows.push([
      p.stage,
      `${p.trials.length} (${p.trials[0]} … ${p.trials.at(-1)})`,
      `${int(p.step)}/${int(p.totalSteps)} (${pct(p.step / Math.max(1, p.totalSteps), 0)})`,
      Number.isFinite(p.stepsPerSecond)
        ? `${p.stepsPerSecond.toFixed(1)} steps/s, ${duration(p.remainingSeconds)} left`
        : "–",
      top >= 0
        ? `${pct(p.val[top]!)} (${p.trials[top]}: ${
          modelValues(p.lambdas[top], hyper?.[top] ?? null).join(", ")
        })`
        : "–",
    ]);
  }
  if (rows.length === 0) return "";
  return `<h2>Training now</h2>` +
    htmlTable(["stage", "trials", "step", "pace", "best val accuracy so far"], rows) +
    models.join("");
}

/** Models of a population listed, at most (the best by their latest validation accuracy). */
export const MODELS_SHOWN = 12;

/** `λ 1.00e-3`, `η_max 0.05`…: a model's λ and its other values, as the dashboard shows them. */
function modelValues(lambda: number, hyper: Hyper | null): string[] {
  return [
    `λ ${sci(lambda)}`,
    ...dimsOf(hyper ?? {}).filter((d) => d !== "lambda").map((d) =>
      `${DIM_INFO[d].label} ${d === "dropout" ? num(hyper![d]!) : sci(hyper![d]!)}`
    ),
  ];
}

/**
 * The models of a population in training: each trial with its λ and its value in every other
 * dimension its stage searches (`hyper`, one per trial, from {@link populationHyper}; null when
 * unknown: λ alone), and its latest validation accuracy; the {@link MODELS_SHOWN} best of them.
 */
function populationModels(p: PopulationProgress, hyper: (Hyper | null)[] | null): string {
  const dims = SPACE_DIMS.filter((d) => d !== "lambda" && hyper?.some((h) => h?.[d] !== undefined));
  const order = p.trials.map((_, z) => z).sort((a, b) =>
    (p.val[b] ?? -1) - (p.val[a] ?? -1) || a - b
  );
  const shown = order.slice(0, MODELS_SHOWN);
  const rows: Cell[][] = shown.map((z) => [
    htmlCell(`<code>${escapeHtml(p.trials[z])}</code>`),
    numCell(sci(p.lambdas[z])),
    ...dims.map((d) => {
      const v = hyper?.[z]?.[d];
      return numCell(v === undefined ? "–" : d === "dropout" ? num(v) : sci(v));
    }),
    numCell(p.val[z] === null ? "–" : pct(p.val[z])),
  ]);
  const what = shown.length < p.trials.length
    ? `the ${shown.length} best of its ${p.trials.length} models by latest validation accuracy`
    : `its ${p.trials.length} model${p.trials.length === 1 ? "" : "s"}`;
  return `<p class="sub">${escapeHtml(`Stage ${p.stage} at step ${int(p.step)}: ${what}.`)}</p>` +
    htmlTable(
      [
        "trial",
        numCell("λ"),
        ...dims.map((d) => numCell(DIM_INFO[d].label)),
        numCell("latest val accuracy"),
      ],
      rows,
    );
}

function ageText(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

/** The index table of the entries. */
export function indexMain(root: string, entries: Entry[]): string {
  if (entries.length === 0) {
    return `<p class="note">No runs or sweeps under ${escapeHtml(root)} yet. ` +
      `Start one (<code>deno task train --config experiments/cyclic-1.json</code>): it appears here as it trains.</p>`;
  }
  const rows = entries.map((e) => {
    const href = `/${e.kind}/${e.path.split("/").map(encodeURIComponent).join("/")}`;
    const progress = !e.progress
      ? "–"
      : e.kind === "sweep"
      ? `${int(e.progress.done)} trials`
      : e.progress.total
      ? `${int(e.progress.done)}/${int(e.progress.total)} steps`
      : `${int(e.progress.done)} steps`;
    return [
      htmlLink(href, e.path),
      e.kind,
      htmlStatus(e.status),
      progress,
      e.bestVal === null ? "–" : pct(e.bestVal),
      ageText(e.ageSeconds),
    ];
  });
  return htmlTable(
    ["run or sweep", "kind", "status", "progress", "best val accuracy", "updated"],
    rows,
  );
}

function htmlLink(href: string, text: string) {
  return htmlCell(`<a href="${escapeHtml(href)}">${escapeHtml(text)}</a>`);
}

function htmlStatus(status: string) {
  return htmlCell(statusBadge(status));
}

/** The index page of the runs folder. */
export function indexPage(root: string, shownAs = root): Page {
  const main = indexMain(shownAs, scanRuns(root));
  const script = inlineScriptSource(LIVE_SCRIPT) + "\n";
  const csp = offlineCsp([cspHash(script)], { connectSelf: true });
  const title = `Runs in ${shownAs}`;
  const html = `${documentHead(title, csp)}
<body data-events="/events/index/">
<header>
<h1>${escapeHtml(title)}</h1>
<p class="sub">Every run and sweep below this folder, live. Served by <code>${GENERATOR}</code>.</p>
</header>
<main>
${main}
</main>
<script>${script}</script>
</body>
</html>
`;
  return {
    html,
    fragment: { title, sub: between(html, '<p class="sub">', "</p>\n</header>"), main },
  };
}
