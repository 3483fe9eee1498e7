/**
 * The table of a GPU check (bench/gpu/run.sh) against issue 14's targets for a real GPU, in
 * Markdown: `full.json` end to end under 1 s, the training step at least 2× PyTorch eager on
 * CUDA, a 16-λ population of full.json in at most 1.5× one run; with the dispatches per step,
 * each kernel's time, rate, workgroups and invocations, and the kernel tests' result line (from
 * gpu.log).
 * A missing file is reported as missing, not as a failure of the rest.
 *
 * Usage: `deno run -A bench/gpu/summary.ts DIR` (DIR: the check's output folder)
 *
 * @module
 */

import { join } from "node:path";

// deno-lint-ignore no-explicit-any
type Json = any;

function readJson(path: string): Json | null {
  try {
    return JSON.parse(Deno.readTextFileSync(path));
  } catch {
    return null;
  }
}

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/** The newest bench result (format webgpu-mlp.bench/…) in `dir`. */
function benchResult(dir: string): Json | null {
  const names = [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".json"))
    .map((e) => e.name).sort();
  for (const name of names.reverse()) {
    const j = readJson(join(dir, name));
    if (typeof j?.format === "string" && j.format.startsWith("webgpu-mlp.bench/")) return j;
  }
  return null;
}

const fmt = (x: number | undefined | null, digits = 3) =>
  x === undefined || x === null || !Number.isFinite(x) ? "—" : Number(x.toPrecision(digits));

/** Seconds end to end of the experiment `name` from times.txt (`name: exit N, S s end to end`). */
function wallOf(times: string | null, name: string): { exit: number; s: number } | null {
  const m = times?.match(new RegExp(`^${name}: exit (\\d+), ([\\d.]+) s`, "m"));
  return m ? { exit: Number(m[1]), s: Number(m[2]) } : null;
}

/** The summary of the check in `dir`, as Markdown lines. */
export function summary(dir: string): string[] {
  const out: string[] = [];
  const bench = benchResult(dir);
  const times = readText(join(dir, "times.txt"));
  const full = readJson(join(dir, "full.metrics.json"));
  const pop = readJson(join(dir, "population.sweep.json"));
  const log = readText(join(dir, "gpu.log"));
  const adapter = bench?.env?.adapter?.description || full?.env?.adapter?.description ||
    "(unknown adapter)";
  out.push(`# GPU check: ${adapter}`, "");
  out.push("| target | measured | met |", "|---|---|---|");
  const fw = wallOf(times, "full.json");
  const pw = wallOf(times, "full-population.json");
  const t = full?.timings;
  out.push(
    `| full.json end to end < 1 s | ${fw ? `${fmt(fw.s)} s (exit ${fw.exit})` : "missing"}` +
      (t
        ? `; training loop ${fmt(t.trainSeconds)} s, ${fmt(t.stepsPerSecond)} steps/s, setup ${
          fmt(t.setupSeconds)
        } s`
        : "") +
      ` | ${fw && fw.exit === 0 ? (fw.s < 1 ? "yes" : "no") : "—"} |`,
  );
  const step = bench?.items?.find((i: Json) => i.id === "step/3072-50-10/b100");
  const cuda = step?.peers?.["torch-cuda"];
  out.push(
    `| step 3072-50-10 B=100 ≥ 2× PyTorch eager CUDA | ` +
      (cuda?.status === "ok"
        ? `ours ${fmt(cuda.oursMs.median)} ms, torch-cuda ${fmt(cuda.ms.median)} ms: ${
          fmt(cuda.ratio.median)
        }×`
        : `torch-cuda ${cuda?.status ?? "missing"}${cuda?.reason ? ` (${cuda.reason})` : ""}`) +
      ` | ${cuda?.status === "ok" ? (cuda.ratio.median >= 2 ? "yes" : "no") : "—"} |`,
  );
  const ratio = fw && pw ? pw.s / fw.s : NaN;
  out.push(
    `| 16-λ population ≤ 1.5× one run | ${
      pw ? `${fmt(pw.s)} s (exit ${pw.exit}), ${fmt(ratio)}× full.json` : "missing"
    }${pop ? "" : " (no sweep.json)"} | ${
      Number.isFinite(ratio) ? (ratio <= 1.5 ? "yes" : "no") : "—"
    } |`,
  );
  out.push("");
  if (bench) {
    for (const d of bench.dispatches ?? []) {
      out.push(`- dispatches per step, ${d.net} B=${d.batch}: ${d.perStep}`);
    }
    for (const it of bench.items ?? []) {
      const peers = Object.entries(it.peers ?? {}).map(([name, p]: [string, Json]) =>
        p.status === "ok" ? `${name} ${fmt(p.ms.median)} ms (${fmt(p.ratio.median)}×)` : ""
      ).filter((s) => s).join(", ");
      out.push(`- ${it.id}: ours ${fmt(it.ours?.ms?.median)} ms${peers ? `; ${peers}` : ""}`);
    }
    const k = bench.kernels;
    if (k?.results) {
      out.push("", `Kernels of ${k.net} at B=${k.batch}:`, "");
      out.push(
        "| kernel | ms | GFLOP/s | workgroups × size | invocations |",
        "|---|---|---|---|---|",
      );
      for (const r of k.results) {
        out.push(
          `| ${r.label} | ${fmt(r.ms?.median)} | ${fmt(r.gflops)} | ${r.workgroups?.join("×")} × ${
            r.workgroupSize?.join("×")
          } | ${r.invocations} |`,
        );
      }
    }
    if (bench.sweep?.trainOnly) {
      const s = bench.sweep.trainOnly;
      out.push(
        "",
        `- bench population: one population ${fmt(s.population.median)} ms, one by one ${
          fmt(s.sequential.median)
        } ms (${fmt(s.speedup.median)}×)`,
      );
    }
  } else out.push("- no bench result");
  const result = log?.split("\n").reverse().find((l) =>
    /^(ok|FAILED) \| \d+ passed/.test(l.trim())
  );
  out.push("", `- kernel tests: ${result?.trim() ?? "no result line"}`);
  return out;
}

if (import.meta.main) {
  if (Deno.args.length !== 1) {
    console.error("error: usage: deno run -A bench/gpu/summary.ts DIR");
    Deno.exit(2);
  }
  console.log(summary(Deno.args[0]).join("\n"));
}
