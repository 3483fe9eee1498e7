/**
 * Collects what one report page needs while its sections are rendered: unique DOM ids, the
 * embedded data columns, the figure and montage specifications. Sections return HTML strings;
 * `pageData()` is the JSON the page's script reads.
 *
 * @module
 */

import type { FigureSpec, MontageSpec } from "./charts.ts";
import { ColumnStore, type EncodedColumn, type MaybeNumber } from "./columns.ts";
import { escapeHtml } from "./html.ts";

/** The JSON embedded in a page (`<script type="application/json" id="report-data">`). */
export interface PageData {
  /** Format tag of the embedded data. */
  format: "webgpu-mlp.report/1";
  /** Data columns by key. */
  columns: Record<string, EncodedColumn>;
  /** Charts, in page order. */
  figures: FigureSpec[];
  /** Weight montages, in page order. */
  montages: MontageSpec[];
}

/** Accumulates figures, montages and data for one page. */
export class ReportBuilder {
  /** The page's data columns. */
  readonly store: ColumnStore = new ColumnStore();
  /** Figures in page order. */
  readonly figures: FigureSpec[] = [];
  /** Montages in page order. */
  readonly montages: MontageSpec[] = [];
  #ids = new Map<string, number>();

  /** A DOM id unique within the page, readable from `hint`. */
  uid(hint: string): string {
    const base =
      hint.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40) ||
      "x";
    const n = this.#ids.get(base) ?? 0;
    this.#ids.set(base, n + 1);
    return n === 0 ? base : `${base}-${n + 1}`;
  }

  /** Store a data column; returns its key for `SeriesSpec.x`/`y`. */
  column(values: ArrayLike<MaybeNumber>, hint?: string): string {
    return this.store.add(values, hint);
  }

  /**
   * Register a figure and return its HTML (title, canvas, caption); `belowHtml` (trusted,
   * already-escaped HTML, such as a colour bar) goes between the canvas and the caption.
   */
  figure(
    spec: Omit<FigureSpec, "id">,
    caption: string,
    idHint: string = spec.title,
    belowHtml = "",
  ): string {
    const id = this.uid(`fig-${idHint}`);
    this.figures.push({ ...spec, id });
    return `<figure class="fig" id="${id}">` +
      `<div class="fig-title">${escapeHtml(spec.title)}</div>` +
      `<div class="chart-box"><canvas role="img" aria-label="${
        escapeHtml(spec.title)
      }"></canvas></div>` + belowHtml +
      `<figcaption>${escapeHtml(caption)}</figcaption></figure>`;
  }

  /** Register a montage and return its HTML (title, canvas, caption). */
  montage(spec: Omit<MontageSpec, "id">, title: string, caption: string): string {
    const id = this.uid(`montage-${title}`);
    this.montages.push({ ...spec, id });
    return `<figure class="fig montage">` +
      `<div class="fig-title">${escapeHtml(title)}</div>` +
      `<canvas id="${id}" role="img" aria-label="${escapeHtml(title)}"></canvas>` +
      `<figcaption>${escapeHtml(caption)}</figcaption></figure>`;
  }

  /** The JSON the page's script reads. */
  pageData(): PageData {
    return {
      format: "webgpu-mlp.report/1",
      columns: this.store.columns,
      figures: this.figures,
      montages: this.montages,
    };
  }
}
