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

/**
 * One line about a population at an evaluation point: the best and median validation accuracy
 * (training accuracy without validation), the best model's λ (its value now, with PBT) and its
 * η where it differs from model 0's, and how many models diverged (and, with successive
 * halving, how many its rungs stopped).
 */
export function formatPopulation(stage: string, p: Progress, lambdas: number[]): string {
  const alive = p.points.map((pt, z) => ({ pt, z })).filter((e) => e.pt);
  const accs = alive.map((e) => e.pt!.val?.accuracy ?? e.pt!.train.accuracy);
  const bestAt = accs.indexOf(Math.max(...accs));
  const sorted = [...accs].sort((a, b) => a - b);
  const median = sorted.length ? sorted[Math.floor(sorted.length / 2)] : NaN;
  const head = `${stage} step ${String(p.step).padStart(String(p.total).length)}/${p.total} ${
    String(Math.floor((100 * p.step) / Math.max(1, p.total))).padStart(3)
  }%  η ${p.eta.toExponential(2)}`;
  const stopped = p.stopped ?? 0;
  const training = p.points.length - stopped;
  const body = alive.length
    ? `${training} models: val acc best ${(100 * accs[bestAt]).toFixed(1)}% (λ ${
      (p.lambdas?.[alive[bestAt].z] ?? lambdas[alive[bestAt].z]).toExponential(2)
    }${
      alive[bestAt].pt!.eta !== p.eta ? `, η ${alive[bestAt].pt!.eta.toExponential(2)}` : ""
    }) median ${(100 * median).toFixed(1)}%, ${training - alive.length} diverged` +
      (p.stopped !== undefined ? `, ${stopped} stopped` : "")
    : "all diverged";
  const tail = p.step > 0
    ? `${p.stepsPerSecond.toFixed(1)} steps/s  ETA ${formatDuration(p.remainingSeconds)}`
    : "start";
  return `${head} | ${body} | ${tail}`;
}
