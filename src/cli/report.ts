/**
 * `deno task report` — write the HTML report of a run, a sweep or a gradcheck.json, or compare
 * several runs on one page.
 *
 * ```sh
 * deno task report runs/<name>                      # -> runs/<name>/report.html
 * deno task report runs/<sweep>                     # -> runs/<sweep>/report.html
 * deno task report runs/a runs/b --out compare.html # several runs side by side
 * deno task report path/to/gradcheck.json           # -> path/to/gradcheck.html
 * ```
 *
 * @module
 */

import { UserError } from "../errors.ts";
import { COMPARE_FILE, writeReport } from "../report/mod.ts";
import { parseFlags, runMain } from "./main.ts";

/** Usage text. */
export const USAGE = `usage: deno task report <input>... [--out FILE]

Writes one self-contained HTML page (works offline) of chart.js figures.

inputs:
  runs/<name>          a run directory (metrics.json) -> runs/<name>/report.html
  runs/<sweep>         a sweep directory (sweep.json, trials.jsonl) -> runs/<sweep>/report.html
  FILE.json            a gradcheck.json (-> FILE.html beside it), metrics.json or sweep.json
  several runs         compared on one page (a sweep stands for its final run) -> ./${COMPARE_FILE}

options:
  -o, --out FILE       output file (default: as above)
  -h, --help           show this help`;

/** Parse the arguments, write the report and print its path; returns the path (none for --help). */
export async function reportMain(args: string[]): Promise<string | undefined> {
  const { values, positionals } = parseFlags(args, {
    out: { type: "string", short: "o" },
    help: { type: "boolean", short: "h" },
  }, { allowPositionals: true });
  if (values.help) {
    console.log(USAGE);
    return undefined;
  }
  if (positionals.length === 0) {
    throw new UserError(
      "no input: give a run directory, a sweep directory or a gradcheck.json (see --help)",
    );
  }
  const out = await writeReport(positionals, {
    out: typeof values.out === "string" ? values.out : undefined,
  });
  console.log(`wrote ${out}`);
  return out;
}

if (import.meta.main) {
  await runMain(async () => {
    await reportMain(Deno.args);
  });
}
