/**
 * The files for watching and analysing runs with other tools, written beside the tool's own
 * records: TensorBoard event files and CSV tables.
 *
 * - A run directory (and a run's in-progress directory): `events.out.tfevents.<s>.<host>` and
 *   `curves.csv`, from its metrics.json ({@link writeRunLogs}).
 * - A sweep directory: `events.out.tfevents.<s>.<host>` (the HParams experiment), one
 *   `<stage>-<index>/` per trial with its events, and `trials.csv`, from what the directory holds
 *   ({@link writeSweepLogs}).
 *
 * @module
 */

import { join } from "node:path";
import type { RunMetrics } from "../train/metrics.ts";
import { writeCurvesCsv, writeTrialsCsv } from "./csv.ts";
import { readSweepTrials } from "./hparams.ts";
import { removeTemporaries } from "./owned.ts";
import { writeRunEvents, writeSweepEvents } from "./tensorboard.ts";

/** A run's curves table. */
export const CURVES_CSV = "curves.csv";
/** A sweep's trials table. */
export const TRIALS_CSV = "trials.csv";

/**
 * Write a run's event file and curves.csv into `dir`, the directory of its metrics.json (the
 * run's temporary directory before it is committed, or its in-progress directory).
 */
export async function writeRunLogs(dir: string, metrics: RunMetrics): Promise<void> {
  await writeRunEvents(dir, metrics);
  await writeCurvesCsv(join(dir, CURVES_CSV), metrics);
}

/**
 * Write a sweep's TensorBoard files and trials.csv from what its directory `dir` holds (its
 * sweep.config.json, trials files and marker): call it after the sweep writes sweep.json, holding
 * the sweep's lock. Every file is rewritten whole, so calling it again (a resumed sweep, a merge)
 * brings them up to date.
 */
export async function writeSweepLogs(dir: string): Promise<void> {
  const view = readSweepTrials(dir);
  await writeSweepEvents(view);
  await removeTemporaries(dir, [TRIALS_CSV]);
  await writeTrialsCsv(join(dir, TRIALS_CSV), view);
}
