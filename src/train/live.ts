/**
 * The progress log of a run in training: `progress.jsonl` in its in-progress directory, which
 * `deno task serve` follows to draw the run live. The first line is a header (what the run is);
 * each further line is one evaluation point, appended as soon as its metrics are read back. On
 * resume the file is rewritten (atomically) from the snapshot's curves, so it never holds a point
 * twice. A reader must ignore a last line without its newline: it may be half written. Beside it,
 * the run's TensorBoard event file grows with the same points, so `tensorboard --logdir` follows
 * the run live too (the committed run directory gets the whole file, test metrics included).
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { pointRecord, startRunEvents } from "../io/tensorboard.ts";
import { progressHeaderSchema, progressLineSchema } from "../io/records.ts";
import type { EnvInfo, EvalPoint } from "./metrics.ts";

/** File name of the progress log in an in-progress directory. */
export const PROGRESS_FILE = "progress.jsonl";

/** Format tag of a progress log's header. */
export const PROGRESS_FORMAT = "webgpu-mlp.progress/1";

/** The first line of a progress log: what is being trained. */
export interface ProgressHeader {
  /** Format tag. */
  format: typeof PROGRESS_FORMAT;
  /** Run name. */
  name: string;
  /** The resolved config. */
  config: unknown;
  /** Seed of the initialisation. */
  seed: number;
  /** Layer sizes: input dimension, hidden sizes…, classes. */
  layerSizes: number[];
  /** L2 strength λ. */
  lambda: number;
  /** Adapter, Deno version and platform. */
  env: EnvInfo;
  /** When this session of training started (ISO 8601). */
  startedAt: string;
  /** Update steps the schedule asks for. */
  totalSteps: number;
  /** Steps per epoch. */
  stepsPerEpoch: number;
  /** Learning rate over the run: [step, eta] pairs. */
  lrSchedule: [number, number][];
  /** Class names. */
  classNames: string[];
  /** Sizes of the splits used. */
  dataSizes: { train: number; val: number; test: number };
}

/**
 * One further line: an evaluation point and the run's pace when it was reached. The points a
 * resumed run's log starts with (from its snapshot) carry no pace: read back, it is NaN.
 */
export interface ProgressLine {
  /** The point, as it will appear in metrics.json's curves. */
  point: EvalPoint;
  /** Seconds since this session's training loop started. */
  elapsedSeconds: number;
  /** Mean steps per second of this session. */
  stepsPerSecond: number;
  /** Estimated seconds left. */
  remainingSeconds: number;
}

/** Appends a run's evaluation points to its progress log. */
export class ProgressLog {
  readonly path: string;
  #file: Deno.FsFile | null = null;
  #events: Deno.FsFile | null = null;

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Start the log in `dir` with its header and the points already reached (a resumed run's
   * curves), replacing any earlier log atomically.
   */
  static async open(
    dir: string,
    header: ProgressHeader,
    done: EvalPoint[] = [],
  ): Promise<ProgressLog> {
    const log = new ProgressLog(join(dir, PROGRESS_FILE));
    const lines = [JSON.stringify(header), ...done.map((point) => JSON.stringify({ point }))];
    await writeFileAtomic(log.path, lines.join("\n") + "\n");
    log.#file = await Deno.open(log.path, { append: true });
    // TensorBoard follows the run too: its event file grows with the same points
    const events = await startRunEvents(dir, Date.parse(header.startedAt) / 1000, done);
    log.#events = await Deno.open(events, { append: true });
    return log;
  }

  /** Append one line (one write call, so a reader sees it whole or not at all, or cut short). */
  append(line: ProgressLine): void {
    if (this.#file) writeAll(this.#file, new TextEncoder().encode(JSON.stringify(line) + "\n"));
    if (this.#events) writeAll(this.#events, pointRecord(line.point, Date.now() / 1000));
  }

  /** Close the files. */
  close(): void {
    this.#file?.close();
    this.#events?.close();
    this.#file = this.#events = null;
  }
}

function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
}

/** A progress log read back: its header and its whole lines (a partial last line is ignored). */
export interface ReadProgress {
  header: ProgressHeader;
  lines: ProgressLine[];
  /** A whole line that is not a progress line was met: the log is read no further. */
  damaged?: boolean;
}

/**
 * Parse a progress log's text; null when it has no whole, valid header. A line that is not a
 * valid progress line ends the log there (see {@link appendProgress}).
 */
export function parseProgress(text: string): ReadProgress | null {
  const first = text.indexOf("\n");
  if (first < 0) return null;
  let value: unknown;
  try {
    value = JSON.parse(text.slice(0, first));
  } catch {
    return null;
  }
  const header = progressHeaderSchema.safeParse(value);
  if (!header.success) return null;
  const log: ReadProgress = { header: header.data as ProgressHeader, lines: [] };
  appendProgress(log, text.slice(first + 1));
  return log;
}

/**
 * Add to `log` the whole lines of `text`, the log's text after what was parsed so far; the part
 * after the last newline (a line being written) is ignored. The first line that does not parse
 * or is not a valid progress line marks the log damaged and ends it: nothing after it is added.
 */
export function appendProgress(log: ReadProgress, text: string): void {
  const end = text.lastIndexOf("\n");
  if (log.damaged || end < 0) return;
  for (const raw of text.slice(0, end).split("\n")) {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      log.damaged = true;
      return;
    }
    const line = progressLineSchema.safeParse(value);
    if (!line.success) {
      log.damaged = true;
      return;
    }
    log.lines.push(line.data);
  }
}
