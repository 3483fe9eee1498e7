/**
 * `deno task train --config FILE [flags]`: train as the config says and write runs/<name>/.
 *
 * @module
 */

import { loadConfig } from "../config.ts";
import { UserError } from "../errors.ts";
import { runExperiment } from "../train/run.ts";
import { parseFlags, runMain } from "./main.ts";

/** Usage text of the command. */
export const USAGE = `usage: deno task train --config FILE [flags]

Train a multi-layer perceptron on CIFAR-10 with WebGPU as FILE (JSON) says; the run goes to
<out>/<name>/ (metrics.json, weights.safetensors, report.html).

  --config FILE   experiment config (see experiments/ and the README's config reference)
  --name NAME     run name (default: the config's name, else the file name)
  --out DIR       parent directory of runs (default: runs)
  --data DIR      CIFAR-10 directory (default: $CIFAR10_DIR or the usual places)
  --lambda X      L2 strength λ
  --seed N        seed of initialisation and shuffles
  --overwrite     replace an existing run directory
  --no-report     do not write report.html
  -h, --help      show this help`;

function number(flag: string, v: unknown, integer = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UserError(`--${flag} must be ${integer ? "an integer" : "a number"}, got "${v}"`);
  }
  return n;
}

/** Run the command with the given arguments. */
export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    config: { type: "string" },
    name: { type: "string" },
    out: { type: "string" },
    data: { type: "string" },
    lambda: { type: "string" },
    seed: { type: "string" },
    overwrite: { type: "boolean" },
    "no-report": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (typeof values.config !== "string") {
    throw new UserError("--config FILE is required (e.g. --config experiments/cyclic-1.json)");
  }
  const cfg = await loadConfig(values.config, {
    name: values.name as string | undefined,
    out: values.out as string | undefined,
    data: values.data as string | undefined,
    lambda: number("lambda", values.lambda),
    seed: number("seed", values.seed, true),
  });
  const controller = new AbortController();
  const onSigint = () => {
    console.error("interrupted: stopping at the next evaluation point (Ctrl-C again to abort)");
    Deno.removeSignalListener("SIGINT", onSigint);
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    await runExperiment(cfg, {
      overwrite: !!values.overwrite,
      report: !values["no-report"],
      signal: controller.signal,
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
}

if (import.meta.main) runMain(() => main(Deno.args));
