/**
 * `deno task gradcheck`: the gradient audit table on real CIFAR-10 samples.
 *
 * @module
 */

import { resolveDataDir } from "../data/data_dir.ts";
import { normalisationStats } from "../data/normalise.ts";
import { loadCifar10 } from "../data/cifar10.ts";
import { UserError } from "../errors.ts";
import { getGpu } from "../gpu/device.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import { outputFileProblem } from "../io/owned.ts";
import {
  DEFAULT_NETS,
  formatGradcheck,
  gradcheckFailures,
  runGradcheck,
} from "../reference/gradcheck.ts";
import { parseFlags, runMain } from "./main.ts";

/** Usage text of the command. */
export const USAGE =
  `usage: deno task gradcheck [--samples N] [--dims D] [--h H] [--out FILE] [--data DIR]

Check analytic gradients against finite differences (float64) and the GPU's float32 gradients
against float64, per layer and parameter, for 2-, 3- and 4-layer nets with λ = 0 and λ = 0.01,
on the first N training images reduced to their first D dimensions.

  --samples N   samples (default 20)
  --dims D      input dimensions kept (default 20)
  --h H         finite-difference step (default 2e-5)
  --out FILE    also write the report as JSON (the HTML report shows it)
  --data DIR    CIFAR-10 directory
  -h, --help    show this help`;

function positiveInt(flag: string, v: unknown, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new UserError(`--${flag} must be an integer in 1..${max}, got "${v}"`);
  }
  return n;
}

/** Run the command with the given arguments. */
export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    samples: { type: "string" },
    dims: { type: "string" },
    h: { type: "string" },
    out: { type: "string" },
    data: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const samples = positiveInt("samples", values.samples, 20, 1000);
  const dims = positiveInt("dims", values.dims, 20, 3072);
  const h = values.h === undefined ? 2e-5 : Number(values.h);
  if (!(h > 0 && h < 1)) throw new UserError(`--h must be a number in (0, 1), got "${values.h}"`);
  const out = typeof values.out === "string" ? values.out : undefined;
  // before the audit: where its file goes (never over a file the tool did not write)
  const outProblem = () => out === undefined ? null : outputFileProblem(out, "gradcheck", "--out");
  const outAtStart = outProblem();
  if (outAtStart) throw new UserError(outAtStart);
  const dir = resolveDataDir(values.data as string | undefined);
  const { train } = await loadCifar10(dir, { train: [1], val: { none: true }, test: false });
  const stats = normalisationStats(train);
  const X = new Float64Array(samples * dims);
  for (let i = 0; i < samples; i++) {
    for (let d = 0; d < dims; d++) {
      X[i * dims + d] = (train.images[i * 3072 + d] - stats.mean[d]) / stats.std[d];
    }
  }
  const gpu = await getGpu();
  console.log(
    `gradient audit: ${samples} samples of data_batch_1, first ${dims} dims, h = ${h.toExponential()}, ` +
      `nets ${
        DEFAULT_NETS.map((n) => [dims, ...n, 10].join("-")).join(", ")
      } — ${gpu.adapter.description}`,
  );
  const report = await runGradcheck({
    X,
    y: train.labels.subarray(0, samples),
    samples,
    dims,
    h,
    device: gpu.device,
    adapter: gpu.adapter.description,
  });
  console.log(formatGradcheck(report));
  if (out !== undefined) {
    const problem = outProblem(); // again: the audit took a while
    if (problem) throw new UserError(problem);
    try {
      await writeJsonAtomic(out, report);
    } catch (e) {
      throw new UserError(
        `${out}: cannot write the audit (${(e as Error).message.split("\n")[0]})`,
      );
    }
  }
  const bad = gradcheckFailures(report);
  const t = report.thresholds;
  if (bad.length > 0) {
    throw new UserError(
      `${bad.length} rows exceed the thresholds (centred ≤ ${t.centredMax}, forward ≤ ${t.forwardMax}, gpu ≤ ${t.gpuMax}): ` +
        bad.map((r) => `${r.net} λ=${r.lambda} ${r.param}`).join(", "),
    );
  }
  console.log(
    `all ${report.rows.length} rows within thresholds: centred ≤ ${t.centredMax}, forward ≤ ${t.forwardMax}, gpu ≤ ${t.gpuMax}`,
  );
}

if (import.meta.main) runMain(() => main(Deno.args));
