/**
 * The gradient audit: for several network depths and λ, the max relative error
 * |ga − gn| / max(eps, |ga| + |gn|) of
 *   (a) float64 analytic gradients against forward and centred finite differences, and
 *   (b) GPU float32 analytic gradients against float64 analytic ones,
 * per layer and parameter, on a few real samples reduced to their first `dims` dimensions.
 *
 * Parameters and inputs are rounded to float32 first, so that both sides of (b) differentiate
 * the same network and (b) measures the GPU's arithmetic alone.
 *
 * @module
 */

import { initParams, type Params } from "../model/init.ts";
import { gpuGradients } from "../train/gpu_grads.ts";
import type { GradcheckReport, GradcheckRow } from "../train/metrics.ts";
import { countSkipped, gradients, maxRelativeError, numericalGradients } from "./network.ts";
import { Rng } from "../model/rng.ts";

/** Options of {@link runGradcheck}. */
export interface GradcheckOptions {
  /** Inputs: n samples × dims (row-major) and their labels. */
  X: Float64Array;
  /** Class index of each of the `samples` rows, in [0, classes). */
  y: ArrayLike<number>;
  /** Rows of X: the samples the cost averages over. */
  samples: number;
  /** Columns of X: the audited networks' input dimension. */
  dims: number;
  /** Hidden-layer sizes of each audited network (the output layer has `classes` units). */
  nets?: number[][];
  /** Also audit each net with batch normalisation on every hidden layer (default true). */
  bn?: boolean;
  /** L2 strengths λ to audit each net at (default [0, 0.01]). */
  lambdas?: number[];
  /** Output units (default 10). */
  classes?: number;
  /** Finite-difference step (default 2e-5). */
  h?: number;
  /** Floor of the relative-error denominator, max(eps, |ga|+|gn|) (default 1e-4). */
  eps?: number;
  /** Seed of the weights and of the random biases, γ and β (default 1). */
  seed?: number;
  /** The GPU to audit (null: skip the GPU comparison). */
  device: GPUDevice | null;
  /** Adapter description recorded in the report (default empty). */
  adapter?: string;
}

/** Default audited hidden sizes: 2-, 3- and 4-layer nets. */
export const DEFAULT_NETS = [[50], [50, 50], [50, 30, 20]];

/** One audited network: hidden sizes, with or without batch normalisation on every hidden layer. */
export interface AuditedNet {
  hidden: number[];
  bn: boolean;
}

/**
 * Thresholds the audit asserts, with eps = 1e-4 in the relative error (entries smaller than that
 * are compared absolutely). Centred differences with h = 2e-5 balance truncation (∝ h²) against
 * float64 rounding of the cost (∝ 1/h) and land near 1e-7; forward differences carry an O(h)
 * truncation error and only catch gross mistakes; float32 GPU gradients sit near 1e-5–1e-4.
 */
export const THRESHOLDS = { centredMax: 1e-6, forwardMax: 1e-1, gpuMax: 1e-3 };

function f32(p: Params): Params {
  const r = (a: Float64Array) => a.map((v) => Math.fround(v));
  const out: Params = { sizes: p.sizes, W: p.W.map(r), b: p.b.map(r) };
  if (p.bn) {
    out.bn = p.bn.map((q) =>
      q && { gamma: r(q.gamma), beta: r(q.beta), mean: r(q.mean), variance: r(q.variance) }
    );
  }
  return out;
}

/** Run the audit and return its rows (one per network, λ and parameter). */
export async function runGradcheck(o: GradcheckOptions): Promise<GradcheckReport> {
  const h = o.h ?? 2e-5, eps = o.eps ?? 1e-4, classes = o.classes ?? 10;
  const X = o.X.map((v) => Math.fround(v));
  const rows: GradcheckRow[] = [];
  const rng = new Rng(o.seed ?? 1);
  const nets: AuditedNet[] = (o.nets ?? DEFAULT_NETS).flatMap((hidden) => [
    { hidden, bn: false },
    ...(o.bn === false ? [] : [{ hidden, bn: true }]),
  ]);
  for (const { hidden, bn } of nets) {
    const sizes = [o.dims, ...hidden, classes];
    for (const lambda of o.lambdas ?? [0, 0.01]) {
      const base = initParams(sizes, "he", 0, o.seed ?? 1, hidden.map(() => bn));
      // non-zero biases (and γ ≠ 1, β ≠ 0) exercise their gradients
      for (const b of base.b) for (let i = 0; i < b.length; i++) b[i] = 0.1 * rng.normal();
      for (const q of base.bn ?? []) {
        if (!q) continue;
        for (let j = 0; j < q.gamma.length; j++) {
          q.gamma[j] = 1 + 0.2 * rng.normal();
          q.beta[j] = 0.1 * rng.normal();
        }
      }
      const p = f32(base);
      const a = gradients(p, X, o.y, o.samples, lambda);
      const fwd = numericalGradients(p, X, o.y, o.samples, lambda, h, false);
      const cen = numericalGradients(p, X, o.y, o.samples, lambda, h, true);
      const gpu = o.device
        ? (await gpuGradients(o.device, [p], [lambda], X, o.y, o.samples))[0]
        : null;
      const net = sizes.join("-") + (bn ? " BN" : "");
      for (let l = 0; l < p.W.length; l++) {
        type Entry = [string, Float64Array, Float64Array, Float64Array, Float64Array | null];
        const entries: Entry[] = [[`W${l + 1}`, a.W[l], fwd.W[l], cen.W[l], gpu?.W[l] ?? null]];
        if (p.bn?.[l]) {
          entries.push(
            [
              `gamma${l + 1}`,
              a.gamma![l]!,
              fwd.gamma![l]!,
              cen.gamma![l]!,
              gpu?.gamma?.[l] ?? null,
            ],
            [`beta${l + 1}`, a.beta![l]!, fwd.beta![l]!, cen.beta![l]!, gpu?.beta?.[l] ?? null],
          );
        } else entries.push([`b${l + 1}`, a.b[l], fwd.b[l], cen.b[l], gpu?.b[l] ?? null]);
        for (const [name, ga, gf, gc, gg] of entries) {
          rows.push({
            net,
            lambda,
            param: name,
            forward: maxRelativeError(ga, gf, eps),
            centred: maxRelativeError(ga, gc, eps),
            gpu: gg ? maxRelativeError(gg, ga, eps) : null,
            skipped: countSkipped(gc),
            entries: ga.length,
          });
        }
      }
    }
  }
  return {
    format: "webgpu-mlp.gradcheck/1",
    h,
    samples: o.samples,
    dims: o.dims,
    eps,
    rows,
    thresholds: THRESHOLDS,
    adapter: o.adapter ?? "",
  };
}

/** Rows that break a threshold. */
export function gradcheckFailures(r: GradcheckReport): GradcheckRow[] {
  return r.rows.filter((row) =>
    !(row.centred <= r.thresholds.centredMax) || !(row.forward <= r.thresholds.forwardMax) ||
    (row.gpu !== null && !(row.gpu <= r.thresholds.gpuMax))
  );
}

/** The audit as a fixed-width text table. */
export function formatGradcheck(r: GradcheckReport): string {
  const head = ["net", "λ", "param", "entries", "kinks", "forward", "centred", "gpu f32"];
  const lines = r.rows.map((row) => [
    row.net,
    String(row.lambda),
    row.param,
    String(row.entries ?? ""),
    String(row.skipped ?? 0),
    row.forward.toExponential(2),
    row.centred.toExponential(2),
    row.gpu === null ? "-" : row.gpu.toExponential(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  return [fmt(head), fmt(widths.map((w) => "-".repeat(w))), ...lines.map(fmt)].join("\n");
}
