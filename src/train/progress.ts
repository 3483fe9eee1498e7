/**
 * Console progress lines for training.
 *
 * @module
 */

import type { EvalPoint } from "./metrics.ts";
import type { Progress } from "./trainer.ts";

/** Seconds as m:ss or h:mm:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return (h > 0 ? `${h}:` : "") + `${mm}:${String(r).padStart(2, "0")}`;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The metrics part of a line for one model's point. */
export function formatPoint(p: EvalPoint): string {
  let line = `train loss ${p.train.loss.toFixed(3)} cost ${p.train.cost.toFixed(3)} acc ${
    pct(p.train.accuracy)
  }`;
  if (p.val) {
    line += ` | val loss ${p.val.loss.toFixed(3)} cost ${p.val.cost.toFixed(3)} acc ${
      pct(p.val.accuracy)
    }`;
  }
  return line;
}

/** One progress line: step/total, epoch, η, metrics, speed and time left. */
export function formatProgress(p: Progress, model = 0): string {
  const width = String(p.total).length;
  const head = `step ${String(p.step).padStart(width)}/${p.total} ${
    String(Math.floor((100 * p.step) / Math.max(1, p.total))).padStart(3)
  }%  ep ${p.epoch.toFixed(1).padStart(5)}  η ${p.eta.toExponential(2)}`;
  const point = p.points[model];
  const body = point ? formatPoint(point) : "diverged";
  const tail = p.step > 0
    ? `${p.stepsPerSecond.toFixed(0)} steps/s  ETA ${formatDuration(p.remainingSeconds)}`
    : "start";
  return `${head} | ${body} | ${tail}`;
}
