/**
 * HTML reports: one self-contained, offline page of chart.js figures for a run, a sweep, a
 * gradient audit, or several runs side by side.
 *
 * ```ts
 * import { writeReport } from "@webgpu-mlp/core";
 * await writeReport(["runs/baseline"]); // -> runs/baseline/report.html
 * await writeReport(["runs/bn", "runs/no-bn"], { out: "compare.html" });
 * ```
 *
 * @module
 */

import { basename, dirname, extname, join } from "node:path";
import { UserError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { outputFileProblem } from "../io/owned.ts";
import { renderCompareReport } from "./compare.ts";
import { renderGradcheckReport } from "./gradcheck.ts";
import { type LoadedRun, loadInput, type ReportInput } from "./load.ts";
import { renderRunReport } from "./run.ts";
import { renderSweepReport } from "./sweep.ts";

export { renderCompareReport } from "./compare.ts";
export { renderGradcheckReport } from "./gradcheck.ts";
export { loadInput, loadRun, loadSweep } from "./load.ts";
export type { LoadedRun, LoadedSweep, ReportInput } from "./load.ts";
export { renderRunReport } from "./run.ts";
export { renderSweepReport } from "./sweep.ts";

/** File name of a run's or sweep's report inside its directory. */
export const REPORT_FILE = "report.html";
/** Default output, in the current directory, of a report on several inputs. */
export const COMPARE_FILE = "compare.html";

/** Options of `writeReport`. */
export interface WriteReportOptions {
  /** Output file. Default: see `defaultOutputPath`. */
  out?: string;
  /** Time shown in the page footer (default: now). */
  generatedAt?: Date;
  /**
   * The directory a single run input is shown as (default: where it was read): a run written
   * into a temporary directory before it is committed names its final place.
   */
  shownAs?: string;
}

/**
 * Where a report goes when `--out` is not given: `<dir>/report.html` for a run or sweep directory
 * (also when given its metrics.json or sweep.json), `<name>.html` beside a standalone gradcheck
 * JSON file (`gradcheck.json` → `gradcheck.html`), and `compare.html` in the current directory for
 * several inputs.
 */
export function defaultOutputPath(inputs: ReportInput[]): string {
  if (inputs.length !== 1) return COMPARE_FILE;
  const input = inputs[0];
  switch (input.kind) {
    case "run":
      return join(input.run.dir, REPORT_FILE);
    case "sweep":
      return join(input.sweep.dir, REPORT_FILE);
    case "gradcheck": {
      const base = basename(input.path, extname(input.path));
      return join(dirname(input.path), `${base}.html`);
    }
  }
}

/** The run a comparison shows for an input: a run, or a sweep's final training. */
function comparedRun(input: ReportInput): LoadedRun {
  if (input.kind === "run") return input.run;
  if (input.kind === "sweep") {
    if (input.sweep.finalRun) return input.sweep.finalRun;
    throw new UserError(
      `${input.path}: a sweep without a final training run cannot be compared with other runs`,
    );
  }
  throw new UserError(
    `${input.path}: a gradcheck file cannot be compared with runs; report it on its own`,
  );
}

/** Render the HTML of a report on the given loaded inputs (one page, not written). */
export function renderReport(inputs: ReportInput[], opts: { generatedAt?: Date } = {}): string {
  if (inputs.length === 0) throw new UserError("no input given");
  if (inputs.length > 1) return renderCompareReport(inputs.map(comparedRun), opts);
  const input = inputs[0];
  switch (input.kind) {
    case "run":
      return renderRunReport(input.run, opts);
    case "sweep":
      return renderSweepReport(input.sweep, opts);
    case "gradcheck":
      return renderGradcheckReport(input.gradcheck, input.path, opts);
  }
}

/**
 * Write the HTML report of one run directory, sweep directory or gradcheck.json, or of several runs
 * compared (a sweep stands for its final training), atomically. Returns the path written.
 * Problems with the inputs throw `UserError` with a one-line message.
 *
 * @example Compare two runs in one page
 * ```ts
 * import { writeReport } from "@webgpu-mlp/core";
 *
 * const path = await writeReport(["runs/cyclic-1", "runs/cyclic-3"], { out: "compare.html" });
 * console.log(`open ${path}`);
 * ```
 */
export async function writeReport(
  inputs: string[],
  opts: WriteReportOptions = {},
): Promise<string> {
  if (inputs.length === 0) {
    throw new UserError("no input: give a run directory, a sweep directory or a gradcheck.json");
  }
  const loaded = await Promise.all(inputs.map((p) => loadInput(p)));
  if (opts.shownAs !== undefined) {
    for (const l of loaded) {
      if (l.kind === "run") {
        l.run.dir = opts.shownAs;
        l.path = opts.shownAs;
      }
    }
  }
  const out = opts.out ?? defaultOutputPath(loaded);
  const problem = outputFileProblem(out, "report", "--out");
  if (problem) throw new UserError(problem);
  const html = renderReport(loaded, { generatedAt: opts.generatedAt });
  try {
    await writeFileAtomic(out, html);
  } catch (e) {
    throw new UserError(`${out}: cannot write the report (${(e as Error).message.split("\n")[0]})`);
  }
  return out;
}
