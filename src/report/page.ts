/**
 * The page shell: one self-contained HTML document with the style sheet, the embedded data, the
 * inlined chart.js build and the page script. A Content-Security-Policy forbids every fetch
 * (the page works offline by construction) and lets only these exact scripts run (by hash), so even
 * markup that slipped through escaping could not execute.
 *
 * @module
 */

import type { ReportBuilder } from "./builder.ts";
import { loadChartJs } from "./chartjs.ts";
import { CLIENT_SCRIPT } from "./client.ts";
import { cspHash, embedJson, escapeHtml, inlineScriptSource, offlineCsp } from "./html.ts";

/** The page's style sheet: light, readable, printable. */
export const STYLE = `
:root { --fg: #1f2328; --muted: #5f6368; --line: #dadce0; --bad: #c62828; --good: #2e7d32;
  --warn: #a15c00; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; padding-bottom: 8px; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.6rem; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .6rem; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
p { margin: .4rem 0 .8rem; }
.sub { color: var(--muted); margin: 0 0 8px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(330px, 1fr)); gap: 18px 26px; }
.grid.wide { grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); }
.fig { margin: 0 0 8px; min-width: 0; break-inside: avoid; }
.fig-title { font-weight: 600; margin-bottom: 4px; }
.chart-box { position: relative; width: 100%; min-width: 0; }
figcaption { color: var(--muted); font-size: .85rem; margin-top: 4px; }
.montage canvas { display: block; max-width: 100%; height: auto; image-rendering: pixelated;
  border: 1px solid var(--line); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .88rem; margin: .4rem 0 1rem; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
thead th { border-bottom: 2px solid #b8bcc2; white-space: nowrap; }
.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.kv th { font-weight: 600; color: var(--muted); white-space: nowrap; }
.kv td { overflow-wrap: anywhere; }
table.confusion td, table.confusion th { padding: 3px 6px; text-align: right; }
table.confusion td.cm { min-width: 3.4em; font-variant-numeric: tabular-nums; }
pre { background: #f6f8fa; border: 1px solid var(--line); padding: 8px 12px; font-size: .8rem;
  max-height: 520px; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .92em; }
.badge { display: inline-block; font-size: .75rem; font-weight: 600; padding: 0 8px;
  border: 1px solid; border-radius: 10px; vertical-align: middle; }
.badge.completed, .pass { color: var(--good); }
.badge.diverged, .fail { color: var(--bad); }
.badge.interrupted, .warn { color: var(--warn); }
.badge.running { color: #1a73e8; }
.fail { font-weight: 600; }
.best { font-weight: 700; }
.note { background: #fff8e1; border-left: 4px solid #f2b600; padding: 6px 12px; }
.alert { background: #fdecea; border-left: 4px solid var(--bad); padding: 6px 12px; }
footer { color: var(--muted); font-size: .8rem; padding-top: 12px; padding-bottom: 24px;
  border-top: 1px solid var(--line); margin-top: 2.5rem; }
@media print {
  body { font-size: 10.5pt; }
  header, main, footer { max-width: none; padding: 0; }
  h2, h3 { break-after: avoid; }
  .fig, table { break-inside: avoid; }
  pre { max-height: none; }
}
@page { margin: 14mm; }
`;

/** What a page shows. */
export interface PageOptions {
  /** Document title (browser tab, first heading). */
  title: string;
  /** HTML below the title in the header (already escaped). */
  subtitleHtml?: string;
  /** The page body (already escaped HTML). */
  bodyHtml: string;
  /** The figures, montages and data the body refers to. */
  builder: ReportBuilder;
  /** Generation time shown in the footer (default: now). */
  generatedAt?: Date;
  /** The command named in the footer as the page's generator (default `deno task report`). */
  generator?: string;
  /** A live page (`deno task serve`): see {@link LivePage}. */
  live?: LivePage;
}

/**
 * What makes a page live: one more script (allowed by its hash) and requests back to the page's
 * own origin (`connect-src 'self'`, for its event stream); nothing else is loosened.
 */
export interface LivePage {
  /** The script's source, run after the page's own script. */
  script: string;
  /** Attributes of `<body>` for the script to read (names without `data-`). */
  data?: Record<string, string>;
}

/** The document's start, up to `</head>`: its policy, title and the style sheet. */
export function documentHead(title: string, csp: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<meta name="generator" content="webgpu-mlp report">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>`;
}

/** Assemble a complete, self-contained HTML document. */
export function renderPage(opts: PageOptions): string {
  const chartjs = loadChartJs();
  const chartScript = "\n" + inlineScriptSource(chartjs.source) + "\n";
  const clientScript = inlineScriptSource(CLIENT_SCRIPT) + "\n";
  const liveScript = opts.live ? inlineScriptSource(opts.live.script) + "\n" : null;
  const hashes = [chartScript, clientScript, ...liveScript ? [liveScript] : []].map(cspHash);
  const csp = offlineCsp(hashes, { connectSelf: !!opts.live });
  const bodyData = Object.entries(opts.live?.data ?? {})
    .map(([k, v]) => ` data-${k.replace(/[^a-z0-9-]/g, "")}="${escapeHtml(v)}"`).join("");
  const when = (opts.generatedAt ?? new Date()).toISOString().replace("T", " ").slice(0, 19);
  const version = chartjs.version ? ` ${chartjs.version}` : "";
  return `${documentHead(opts.title, csp)}
<body${bodyData}>
<header>
<h1>${escapeHtml(opts.title)}</h1>
${opts.subtitleHtml ? `<p class="sub">${opts.subtitleHtml}</p>` : ""}
</header>
<main>
${opts.bodyHtml}
</main>
<footer>Generated ${escapeHtml(when)} UTC by <code>${
    escapeHtml(opts.generator ?? "deno task report")
  }</code> (webgpu-mlp).
${
    opts.live
      ? `Live: chart.js${
        escapeHtml(version)
      } (MIT licence) is inlined; updates come from this server only, and the page makes no other request.`
      : `Self-contained: chart.js${
        escapeHtml(version)
      } (MIT licence) is inlined; the page makes no network request.`
  } Hover a chart for values; click a legend entry to hide or show its series.</footer>
<script type="application/json" id="report-data">${embedJson(opts.builder.pageData())}</script>
<script>${chartScript}</script>
<script>${clientScript}</script>
${liveScript ? `<script>${liveScript}</script>\n` : ""}</body>
</html>
`;
}
