/**
 * Command-line flags of `deno task bench`.
 *
 * @module
 */

import { PEER_NAMES, type PeerName } from "./peers/registry.ts";

/** A bad command line (printed as one line, exit status 2). */
export class BenchArgsError extends Error {}

/** Sections a run can measure. */
export const SECTIONS = ["peak", "kernels", "steps", "epochs", "sweep", "tiles"] as const;
/** A section's name. */
export type Section = (typeof SECTIONS)[number];

/** Parsed flags. */
export interface BenchArgs {
  quick: boolean;
  sections: Section[];
  /** Peers to run (empty: none). */
  peers: PeerName[];
  write: boolean;
  outDir: string;
  dataDir?: string;
  /** Per-request peer timeout, seconds. */
  timeout: number;
  python: string;
  pythonPath: string | null;
  /** Interpreter of the torch-cuda peer (default: found, see findCudaPython). */
  pythonCuda?: string;
  /** Overrides of repetitions. */
  reps?: number;
  /** `--sweep`: the full sweep (both variants, n_s 100) instead of the default run's short one. */
  sweepFull: boolean;
  /** λ count and n_s of the sweep (n_s undefined: 100 with --sweep, 25 otherwise). */
  sweepModels: number;
  sweepStepSize?: number;
  help: boolean;
}

/** Usage text. */
export const USAGE = `deno task bench [flags]

Measures this project's WebGPU trainer: the adapter's peak (the FMA ceiling of a pure-FMA probe)
and the cost of a vec4 load from a texture, a storage buffer and workgroup memory, this project's
matmul on a square product, dispatches per training step, per-kernel GFLOP/s (against the ceiling),
workgroups and invocations and the share of a training step per kernel, ms per training step and
per epoch (3072-50-10 and 3072-50-50-10, batch 100 and 500). Writes
bench/results/<adapter>-<date>.json and .html.

  --quick            fewer repetitions and items, no sweep (well under a minute)
  --peers[=LIST]     also run the same work in the peers and print ratios peer/ours
                     (LIST: ${PEER_NAMES.join(",")}; default all)
  --sweep            the full λ-sweep benchmark: 16 models trained as one population vs one
                     by one, 200 steps each, training steps alone and through trainPopulation
                     (with evaluation); numpy too with --peers; and successive halving: 81 λ
                     over 3 cycles of n_s = 100 (81 → 27 → 9 models) against the same 81 trained
                     to the end, each search's best trained again and tested; and PBT
                     against random search at equal compute: 16 trials of (λ, η_max) over 6
                     cycles of n_s = 50, exploiting at each cycle end. Without
                     --sweep the default run times a short sweep (50 steps, training steps
                     only), a short halving (9 λ, 150 steps: 9 → 3 → 1) and a short PBT (8
                     trials, 156 steps)
  --tiles            tile sweep of every matmul shape (prints the best {tm,tn4,wg} per shape)
  --only=LIST        just these sections: ${SECTIONS.join(",")}
  --no-write         print only; write no files
  --out=DIR          where results go (default bench/results)
  --data=DIR         CIFAR-10 directory (default: found like the trainer finds it)
  --reps=N           repetitions of every measurement (default 7 steps, 3 epochs; quick 3/2)
  --sweep-models=N   models in the sweep (default 16)
  --sweep-ns=N       n_s of the sweep's cyclic schedule, 1 cycle = 2·n_s steps
                     (default 100 with --sweep, 25 in the default run)
  --timeout=S        seconds a peer may take per request before it is killed (default 300)
  --python=PATH      interpreter of the numpy and torch peers (default /usr/bin/python3)
  --python-pip=PATH  interpreter of the numpy-pip peer (default: python3 on PATH)
  --python-cuda=PATH interpreter of the torch-cuda peer (default: the first of python3 on PATH
                     and --python whose PyTorch sees a CUDA device)
  --help             this text`;

const VALUE_FLAGS = new Set([
  "only",
  "out",
  "data",
  "reps",
  "sweep-models",
  "sweep-ns",
  "timeout",
  "python",
  "python-pip",
  "python-cuda",
]);

function int(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new BenchArgsError(`--${name} needs an integer ≥ ${min}, got ${v}`);
  }
  return n;
}

function list<T extends string>(name: string, v: string, allowed: readonly T[]): T[] {
  const out = v.split(",").map((s) => s.trim()).filter((s) => s);
  for (const s of out) {
    if (!allowed.includes(s as T)) {
      throw new BenchArgsError(
        `--${name}: unknown ${JSON.stringify(s)} (choose from ${allowed.join(", ")})`,
      );
    }
  }
  return out as T[];
}

/** Parse argv; throws an Error with a one-line message on a bad flag. */
export function parseBenchArgs(argv: string[], pathPython: string | null): BenchArgs {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new BenchArgsError(`unexpected argument ${a} (see --help)`);
    const eq = a.indexOf("=");
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    let value: string | true = eq >= 0 ? a.slice(eq + 1) : true;
    if (value === true && VALUE_FLAGS.has(name)) {
      if (i + 1 >= argv.length) throw new BenchArgsError(`--${name} needs a value`);
      value = argv[++i];
    }
    flags.set(name, value);
  }
  const known = new Set([...VALUE_FLAGS, "quick", "peers", "sweep", "tiles", "no-write", "help"]);
  for (const name of flags.keys()) {
    if (!known.has(name)) throw new BenchArgsError(`unknown flag --${name} (see --help)`);
  }
  const str = (name: string) => {
    const v = flags.get(name);
    return typeof v === "string" ? v : undefined;
  };
  const peersFlag = flags.get("peers");
  const peers = peersFlag === undefined
    ? []
    : peersFlag === true
    ? [...PEER_NAMES]
    : list("peers", peersFlag, PEER_NAMES);
  let sections: Section[];
  const only = str("only");
  if (only) sections = list("only", only, SECTIONS);
  else if (flags.has("tiles")) sections = ["peak", "tiles"];
  else {
    sections = ["peak", "kernels", "steps", "epochs"];
    if (flags.has("sweep") || !flags.has("quick")) sections.push("sweep");
  }
  if (flags.has("tiles") && !sections.includes("tiles")) sections.push("tiles");
  if (only && flags.has("sweep") && !sections.includes("sweep")) sections.push("sweep");
  const reps = str("reps");
  return {
    quick: flags.has("quick"),
    sections,
    peers,
    write: !flags.has("no-write"),
    outDir: str("out") ?? "bench/results",
    dataDir: str("data"),
    timeout: str("timeout") ? int("timeout", str("timeout")!, 1) : 300,
    python: str("python") ?? "/usr/bin/python3",
    pythonPath: str("python-pip") ?? pathPython,
    pythonCuda: str("python-cuda"),
    reps: reps ? int("reps", reps, 1) : undefined,
    sweepModels: str("sweep-models") ? int("sweep-models", str("sweep-models")!, 1) : 16,
    sweepFull: flags.has("sweep"),
    sweepStepSize: str("sweep-ns") ? int("sweep-ns", str("sweep-ns")!, 1) : undefined,
    help: flags.has("help"),
  };
}
