/**
 * Robust summaries of repeated timings: medians (never means), extremes, and ratios of paired
 * samples taken back to back, which cancel slow drifts in machine load.
 *
 * @module
 */

/** Median, extremes and count of a sample. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
  /** The samples, in measurement order. */
  samples: number[];
}

/** The median of `xs` (NaN when empty). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Summarise a sample (rounded to 4 significant digits for the JSON). */
export function summarise(xs: readonly number[]): Summary {
  const r = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(4)) : v);
  return {
    median: r(median(xs)),
    min: r(xs.length ? Math.min(...xs) : NaN),
    max: r(xs.length ? Math.max(...xs) : NaN),
    n: xs.length,
    samples: xs.map(r),
  };
}

/**
 * Summary of the pairwise ratios `num[i] / den[i]` of samples measured back to back (the median of
 * the ratios, not the ratio of the medians).
 */
export function pairedRatio(num: readonly number[], den: readonly number[]): Summary {
  const n = Math.min(num.length, den.length);
  const ratios: number[] = [];
  for (let i = 0; i < n; i++) if (den[i] > 0) ratios.push(num[i] / den[i]);
  return summarise(ratios);
}

/** A duration in milliseconds with 3 significant digits: `0.412 ms`, `12.3 ms`, `4.21 s`. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return "–";
  if (ms >= 10000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Number(ms.toPrecision(3))} ms`;
}

/** A ratio as `12.3×` (3 significant digits). */
export function fmtRatio(x: number): string {
  return Number.isFinite(x) ? `${Number(x.toPrecision(3))}×` : "–";
}
