/**
 * Figure specifications: a small, JSON-serialisable description of each chart that the page's
 * script turns into a chart.js configuration. Data are referenced by column keys (see
 * `columns.ts`), so a series shared by several figures is embedded once.
 *
 * @module
 */

/** How tick labels and tooltips format an axis's values. */
export type AxisFormat = "plain" | "percent" | "log10" | "sci";

/** One axis of a figure. */
export interface AxisSpec {
  /** Axis title shown beside the axis. */
  label: string;
  /** Scale type; line and scatter x axes default to `linear`, bar x axes are `category`. */
  type?: "linear" | "logarithmic" | "category";
  /** Fixed lower bound (default: from the data). */
  min?: number;
  /** Fixed upper bound (default: from the data). */
  max?: number;
  /** Tick and tooltip format (default `plain`). */
  format?: AxisFormat;
}

/** One data series (a chart.js dataset). */
export interface SeriesSpec {
  /** Legend and tooltip label. */
  label: string;
  /** Column key of the x values (line and scatter figures). */
  x?: string;
  /** Column key of the y values (for bar figures: one value per category). */
  y: string;
  /** CSS colour of the line, points or bars. */
  color: string;
  /** Dashed line. */
  dash?: boolean;
  /** Connect the points with a line (default: true for line figures, false for scatter). */
  line?: boolean;
  /** Point radius in CSS pixels (default 0 for line figures, 3.5 for scatter). */
  pointRadius?: number;
  /** chart.js point style, e.g. `circle`, `crossRot`, `triangle`. */
  pointStyle?: string;
  /** Line width in CSS pixels. */
  width?: number;
  /** In a bar figure, draw this series as a line instead (e.g. a threshold). */
  type?: "line" | "bar";
  /** Legend group: clicking a legend entry toggles every series of its group. */
  group?: string;
  /** Show this series in the legend (default true). */
  legend?: boolean;
  /**
   * A fill colour per point, aligned with the `x`/`y` columns (scatter figures): the points are
   * filled with these, `color` draws their outline.
   */
  pointColors?: string[];
  /**
   * Tooltip lines per point, aligned with the `x`/`y` columns (line and scatter figures): the
   * first line is the tooltip's title, the others its body (in place of the series label and y).
   */
  tooltips?: string[][];
}

/** One chart. */
export interface FigureSpec {
  /** DOM id of the `<figure>` that holds the canvas. */
  id: string;
  /** Title (also shown in the HTML above the chart). */
  title: string;
  /** Chart type: lines against a linear x, points, or bars over categories. */
  kind: "line" | "scatter" | "bar";
  /** The horizontal axis. */
  x: AxisSpec;
  /** The vertical axis. */
  y: AxisSpec;
  /** The data series. */
  series: SeriesSpec[];
  /** Category labels of a bar figure's x axis. */
  categories?: string[];
  /** Show the legend (default true when there are several series). */
  legend?: boolean;
  /** Width / height of the plot (default 1.6). */
  aspect?: number;
}

/** A montage of small RGB images drawn on a canvas by the page. */
export interface MontageSpec {
  /** DOM id of the `<canvas>`. */
  id: string;
  /** Number of images. */
  units: number;
  /** Image width in pixels. */
  width: number;
  /** Image height in pixels. */
  height: number;
  /** Images per row. */
  cols: number;
  /** Integer upscaling factor of each image. */
  scale: number;
  /** Optional label under each image. */
  labels?: string[];
  /** Base64 of the bytes: per image, the R plane, then G, then B, each row-major, 0–255. */
  b64: string;
}

/** Colour-blind-friendly categorical palette (Tableau 10). */
export const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#59a14f",
  "#e15759",
  "#76b7b2",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#7f7f7f",
];

/** Colour of training-set series. */
export const TRAIN_COLOR = "#4e79a7";
/** Colour of validation-set series. */
export const VAL_COLOR = "#f28e2b";
/** Colour of test-set series. */
export const TEST_COLOR = "#59a14f";
/** Colour that marks divergence and failures. */
export const ALERT_COLOR = "#d62728";

/** The i-th palette colour (cycling). */
export function paletteColor(i: number): string {
  return PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length];
}
