/**
 * Safe HTML building blocks: escaping text for HTML, embedding JSON and scripts in `<script>`
 * elements so that no data (a run name, a config string) can close the element or inject markup,
 * and the Content-Security-Policy hashes that let only the page's own scripts run.
 *
 * @module
 */

import { createHash } from "node:crypto";

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escape text for use in HTML element content or a quoted attribute value. */
export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/**
 * Serialise `value` as JSON that is safe inside `<script type="application/json">`: `<`, `>` and
 * `&` become `\u003c`, `\u003e`, `\u0026` (so neither `</script>` nor `<!--` can appear), and the
 * line separators U+2028/U+2029 are escaped too. `JSON.parse` of the element's text gives the value
 * back unchanged. Non-finite numbers become `null`, as with `JSON.stringify`.
 */
export function embedJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/**
 * Prepare JavaScript source for an inline `<script>` element: removes `sourceMappingURL` comments
 * (a browser's developer tools would try to fetch the map) and neutralises any `</script` or `<!--`
 * sequence (`<\/script`, `<\!--` mean the same inside JS strings, regular expressions and comments).
 */
export function inlineScriptSource(js: string): string {
  return js
    .replace(/^\s*\/\/[#@]\s*sourceMappingURL=.*$/gm, "")
    .replace(/<\/(script)/gi, "<\\/$1")
    .replace(/<!--/g, "<\\!--")
    .trimEnd();
}

/** The CSP source expression (`'sha256-…'`) that allows exactly this inline script text. */
export function cspHash(scriptText: string): string {
  return `'sha256-${createHash("sha256").update(scriptText, "utf8").digest("base64")}'`;
}

/**
 * A Content-Security-Policy for an offline report: nothing may be fetched (no network, no other
 * file), only the inline scripts with the given hashes may run, inline styles and `data:` images
 * are allowed. `connectSelf` lets the page's scripts fetch from its own origin (live pages).
 */
export function offlineCsp(scriptHashes: string[], opts: { connectSelf?: boolean } = {}): string {
  return [
    "default-src 'none'",
    ...opts.connectSelf ? ["connect-src 'self'"] : [],
    `script-src ${scriptHashes.join(" ")}`,
    "style-src 'unsafe-inline'",
    "img-src data: blob:",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
}

/**
 * A table cell holding trusted, already-escaped HTML. Only code can create one (`htmlCell`):
 * an object parsed from a JSON input is never mistaken for markup.
 */
export class HtmlCell {
  constructor(
    /** The cell's HTML. */
    readonly html: string,
    /** CSS class of the cell. */
    readonly className = "",
    /** Tooltip text (escaped when rendered). */
    readonly title = "",
  ) {}
}

/** A cell of trusted HTML (escape any data inside it yourself). */
export function htmlCell(html: string, className = "", title = ""): HtmlCell {
  return new HtmlCell(html, className, title);
}

/** A table cell: text (always escaped) or trusted HTML. */
export type Cell = string | number | HtmlCell;

/** Render one table cell. */
function cellHtml(cell: Cell, tag: "td" | "th"): string {
  if (cell instanceof HtmlCell) {
    const cls = cell.className ? ` class="${escapeHtml(cell.className)}"` : "";
    const title = cell.title ? ` title="${escapeHtml(cell.title)}"` : "";
    return `<${tag}${cls}${title}>${cell.html}</${tag}>`;
  }
  return `<${tag}>${escapeHtml(cell)}</${tag}>`;
}

/** Render a table with a header row and body rows; `className` is added to the `<table>`. */
export function htmlTable(head: Cell[], rows: Cell[][], className = ""): string {
  const cls = className ? ` class="${escapeHtml(className)}"` : "";
  const thead = `<thead><tr>${head.map((c) => cellHtml(c, "th")).join("")}</tr></thead>`;
  const tbody = rows.map((r) => `<tr>${r.map((c) => cellHtml(c, "td")).join("")}</tr>`).join("\n");
  return `<table${cls}>${thead}<tbody>\n${tbody}\n</tbody></table>`;
}

/** Render a two-column key/value table (keys escaped; values escaped unless `HtmlCell`s). */
export function keyValueTable(rows: [string, Cell][], className = "kv"): string {
  const body = rows
    .map(([k, v]) => `<tr><th scope="row">${escapeHtml(k)}</th>${cellHtml(v, "td")}</tr>`)
    .join("\n");
  return `<table class="${escapeHtml(className)}"><tbody>\n${body}\n</tbody></table>`;
}
