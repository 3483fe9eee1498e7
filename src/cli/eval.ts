/**
 * `deno task eval --run runs/<name>`: evaluate a run's checkpoint on the test set.
 *
 * @module
 */

import { join } from "node:path";
import { resolveDataDir } from "../data/data_dir.ts";
import { UserError } from "../errors.ts";
import { getGpu } from "../gpu/device.ts";
import { evaluateCheckpoint, loadCheckpointFile, loadEvalData } from "../train/eval_checkpoint.ts";
import { parseFlags, runMain } from "./main.ts";

/** Usage text of the command. */
export const USAGE = `usage: deno task eval --run DIR [--checkpoint FILE] [--file NAME] [--data DIR]

Evaluate a trained network (DIR/weights.safetensors) on CIFAR-10's test batch with the GPU and
print its loss, accuracy and per-class accuracy.

  --run DIR          run directory (holds weights.safetensors)
  --checkpoint FILE  a checkpoint file instead of --run
  --file NAME        batch file to evaluate on (default test_batch.bin)
  --data DIR         CIFAR-10 directory
  -h, --help         show this help`;

/** Run the command with the given arguments. */
export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    run: { type: "string" },
    checkpoint: { type: "string" },
    file: { type: "string" },
    data: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  for (const flag of ["run", "checkpoint", "file", "data"] as const) {
    if (values[flag] === "") throw new UserError(`--${flag} is empty: give it a path`);
  }
  if (typeof values.checkpoint === "string" && typeof values.run === "string") {
    throw new UserError(
      "give --run DIR or --checkpoint FILE, not both (--run DIR reads DIR/weights.safetensors)",
    );
  }
  const ck = typeof values.checkpoint === "string"
    ? values.checkpoint
    : typeof values.run === "string"
    ? join(values.run, "weights.safetensors")
    : null;
  if (!ck) throw new UserError("give --run DIR (a finished run) or --checkpoint FILE");
  const file = (values.file as string | undefined) ?? "test_batch.bin";
  // Every problem of the checkpoint or the data is found before the GPU is touched.
  const checkpoint = await loadCheckpointFile(ck);
  const dataDir = resolveDataDir(values.data as string | undefined);
  const data = loadEvalData(dataDir, file);
  const gpu = await getGpu();
  const r = await evaluateCheckpoint(gpu, checkpoint, dataDir, file, data);
  if (!Number.isFinite(r.loss)) {
    // finite weights whose products overflow float32 (3e38 and up): no number here means anything
    throw new UserError(
      `${ck}: the network's outputs overflow float32 on ${file} (loss ${r.loss}): its weights are ` +
        "too large to evaluate; use the checkpoint of a run that did not diverge",
    );
  }
  console.log(
    `${ck}: ${r.sizes.join("-")} on ${file} (${r.samples} images) — ${gpu.adapter.description}`,
  );
  console.log(`loss ${r.loss.toFixed(4)}  accuracy ${(100 * r.accuracy).toFixed(2)}%`);
  const w = Math.max(...r.classNames.map((n) => n.length));
  r.classNames.forEach((name, i) => {
    console.log(`  ${name.padEnd(w)}  ${(100 * r.perClassAccuracy[i]).toFixed(1).padStart(5)}%`);
  });
}

if (import.meta.main) runMain(() => main(Deno.args));
