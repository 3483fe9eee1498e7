/**
 * The console report at the end of a bench run: the FMA ceiling (the peak) and load costs, the
 * square product, dispatches per step, kernels (GFLOP/s, share of the ceiling, workgroups and
 * invocations), step breakdown, work items with each peer's median and paired ratio, the sweep,
 * the tile sweep (with the tiles refused and why), the peers' facts, and the targets.
 *
 * @module
 */

import type { BenchResults, PeerRecord } from "./results.ts";
import { fmtMs, fmtRatio } from "./stats.ts";
import { itemLabel } from "./steps.ts";
import { sweepVariants } from "./sweep.ts";
import { ashaLines } from "./asha.ts";
import { pbtLines } from "./pbt.ts";
import { tileName } from "./tiles.ts";
import type { LoadMemory } from "./probes.ts";
import type { KernelResult } from "./kernels.ts";

/**
 * Render rows as an aligned text table: the first column and those listed in `left` are
 * left-aligned, the rest (numbers) right-aligned.
 */
export function textTable(head: string[], rows: string[][], left: number[] = []): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const isLeft = (i: number) => i === 0 || left.includes(i);
  const line = (r: string[]) =>
    r.map((c, i) => (isLeft(i) ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ").trimEnd();
  return [line(head), w.map((n) => "─".repeat(n)).join("  "), ...rows.map(line)].join("\n");
}

const pct = (x: number | null | undefined) =>
  typeof x === "number" && Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : "–";

/** One line about a peer: versions, BLAS kernel and threads, or why it did not run. */
export function peerLine(p: PeerRecord): string {
  if (p.status !== "ok") return `${p.name}: ${p.status} — ${p.reason ?? ""}`;
  const h = p.hello ?? {};
  const parts: string[] = [];
  if (h.python) parts.push(`python ${h.python}`);
  if (h.numpy) parts.push(`numpy ${h.numpy}`);
  if (h.torch) parts.push(`torch ${h.torch} (${h.threads} threads, ${h.torch_blas ?? "?"})`);
  if (h.tfjs) parts.push(`tfjs ${h.tfjs} ${h.backend}`);
  if (h.simd !== undefined) {
    parts.push(`SIMD ${h.simd ? "on" : "off"}, threads ${h.wasmThreads ? "on" : "off"}`);
  }
  if (h.adapter) parts.push(`adapter ${h.adapter}`);
  const ob = h.blas?.openblas;
  if (ob) {
    const pools = h.blas?.threadpools;
    const threads = Array.isArray(pools)
      ? pools.find((t) => t.internal_api === "openblas")?.num_threads
      : undefined;
    parts.push(`OpenBLAS ${ob.core}${threads ? ` ×${threads} threads` : ""} (${ob.library})`);
  } else if (h.blas) parts.push(`BLAS ${JSON.stringify(h.blas.numpy_build ?? {})}`);
  if (h.cuda_device) parts.push(`CUDA ${h.cuda_device}`);
  for (const v of p.verify ?? []) {
    parts.push(
      `same math ${v.net}: ${
        v.error ? `error (${v.error})` : `${v.pass ? "✓" : "✗"} (max rel. diff ${v.maxRelDiff})`
      }`,
    );
  }
  return `${p.name}: ${parts.join(", ")}${p.seconds ? `; ${p.seconds} s` : ""}`;
}

/** The kernel profile and the placement of layer 1's operands of a result, in words. */
export function profileText(r: BenchResults): string {
  const textures = r.env.textures === undefined
    ? ""
    : `; layer 1 from ${
      r.env.textures ? `textures (read ${r.env.textureReads ?? "sampled"})` : "buffers"
    }`;
  return `kernels: ${r.env.kernels ?? "cpu"} profile${textures}`;
}

/** Print the whole report. */
export function printReport(r: BenchResults, log: (line: string) => void): void {
  const adapter = r.env.adapter.description || r.env.adapter.vendor;
  log("");
  log(`════ webgpu-mlp bench — ${adapter} — ${r.date.slice(0, 19).replace("T", " ")} UTC ════`);
  log(profileText(r));
  for (const line of probeLines(r)) log(line);
  if (r.kernels) {
    const frac = new Map(r.breakdown?.kernels.map((k) => [k.label, k.fraction]) ?? []);
    log("");
    log(
      `Kernels of one training step, ${r.kernels.net} at B=${r.kernels.batch} ` +
        `(ms per dispatch, median of ${r.kernels.results[0]?.ms.n ?? 0}; share of step by ${
          r.breakdown?.method ?? "–"
        })`,
    );
    log(textTable(
      [
        "kernel",
        "shape",
        "ms",
        "GFLOP/s",
        "GB/s",
        "of ceiling",
        "of square",
        "of step",
        "workgroups × size",
        "invocations",
      ],
      r.kernels.results.map((k) => [
        k.label,
        k.shape,
        k.ms.median.toPrecision(3),
        k.gflops === null ? "–" : String(k.gflops),
        k.gbps === null ? "–" : String(k.gbps),
        pct(k.ofCeiling),
        pct(k.ofSquare),
        pct(frac.get(k.label)),
        gridName(k.workgroups, k.workgroupSize),
        String(k.invocations),
      ]),
      [1, 8],
    ));
    if (r.breakdown) {
      log(
        `sum of kernels per step: ${fmtMs(r.breakdown.stepMs)} (${r.breakdown.method})` +
          (r.breakdown.stepWallMs
            ? `; whole step in one pass: ${fmtMs(r.breakdown.stepWallMs)}`
            : "") +
          (r.breakdown.note ? ` (${r.breakdown.note})` : ""),
      );
    }
  }
  if (r.populationKernels) {
    const pk = r.populationKernels;
    log("");
    log(
      `Kernels of one training step of ${pk.models} models as one population, ${pk.net} at ` +
        `B=${pk.batch} (ms per dispatch, median of ${pk.results[0]?.ms.n ?? 0})`,
    );
    log(textTable(
      ["kernel", "shape", "ms", "GFLOP/s", "of ceiling", "workgroups × size", "invocations"],
      pk.results.map((k) => [
        k.label,
        k.shape,
        k.ms.median.toPrecision(3),
        k.gflops === null ? "–" : String(k.gflops),
        pct(k.ofCeiling),
        gridName(k.workgroups, k.workgroupSize),
        String(k.invocations),
      ]),
      [1, 5],
    ));
  }
  if (r.items.length) {
    const peers = r.peers.filter((p) => p.status !== "skipped").map((p) => p.name);
    log("");
    log(
      "Training steps and epochs: median time; (ratio) = peer / this project, median of pairs " +
        "measured back to back; > 1 means this project is faster",
    );
    log(textTable(
      ["work item", "this project", ...peers],
      r.items.map((it) => [
        itemLabel(it) + (it.kind === "epoch" ? ` (${it.ours.steps} steps)` : ""),
        fmtMs(it.ours.ms.median),
        ...peers.map((p) => {
          const x = it.peers[p];
          if (!x || x.status !== "ok") return "failed";
          return `${fmtMs(x.ms!.median)} (${fmtRatio(x.ratio!.median)})`;
        }),
      ]),
    ));
  }
  if (r.sweep) {
    const s = r.sweep;
    const c = s.config;
    log("");
    log(
      `λ sweep: ${c.lambdas.length} models of ${
        c.sizes.join("-")
      }, B=${c.batch}, ${c.steps} steps ` +
        `each (cyclic n_s=${c.schedule.stepSize}); median of ${c.reps}`,
    );
    const rows: string[][] = [];
    for (const [name, v] of sweepVariants(s)) {
      rows.push([`${name}: one population`, fmtMs(v.population.median), "1×"]);
      rows.push([`${name}: one by one`, fmtMs(v.sequential.median), fmtRatio(v.speedup.median)]);
      for (const [peer, p] of Object.entries(v.peers)) {
        rows.push([
          `${name}: ${peer} one by one`,
          p.status === "ok" ? fmtMs(p.ms!.median) : "failed",
          p.status === "ok" ? fmtRatio(p.vsPopulation!.median) : "–",
        ]);
      }
    }
    log(textTable(["variant", "time (all models)", "÷ our population (paired)"], rows));
  }
  if (r.asha) {
    log("");
    for (const line of ashaLines(r.asha)) log(line);
  }
  if (r.pbt) {
    log("");
    for (const line of pbtLines(r.pbt)) log(line);
  }
  if (r.tiles?.length) {
    log("");
    log(
      "Tile sweep: best {tm, tn4, wg} per matmul shape (median ms per dispatch; build ms: " +
        "its shader compile and one dispatch)",
    );
    log(textTable(
      [
        "shape",
        "epilogue",
        "default",
        "ms",
        "build ms",
        "best",
        "ms",
        "build ms",
        "speed-up",
        "used by",
      ],
      r.tiles.map((t) => [
        `${t.variant} ${t.M}×${t.N}×${t.K}`,
        t.epilogue,
        tileName(t.default.tile),
        t.default.ms.median.toPrecision(3),
        buildText(t.default),
        tileName(t.best.tile),
        t.best.ms.median.toPrecision(3),
        buildText(t.best),
        fmtRatio(t.speedup),
        t.uses.map((u) => u.replace(/ of /, "@").replace(/ at /, " ")).join("; "),
      ]),
      [1, 2, 5, 9],
    ));
    for (const line of refusedLines(r)) log(line);
  }
  if (r.peers.length) {
    log("");
    log("Peers:");
    for (const p of r.peers) log(`  ${peerLine(p)}`);
  }
  const targets = targetLines(r);
  if (targets.length) {
    log("");
    log("Targets (2-layer step, B=100):");
    for (const t of targets) log(`  ${t}`);
  }
  const own = kernelTargetLines(r);
  if (own.length) {
    log("");
    log("Targets of the dispatches and kernels (this run):");
    for (const t of own) log(`  ${t}`);
  }
}

/** How the load-cost tables name each kind of memory. */
export const LOAD_MEMORY_NAMES: Record<LoadMemory, string> = {
  texture: "texel (rgba32float)",
  "storage-texture": "storage texel (read-only)",
  buffer: "storage buffer",
  workgroup: "workgroup memory",
  uniform: "uniform buffer",
};

/** A tile's build time (its shader compile and one dispatch) in ms; `–` in results that lack it. */
export function buildText(t: { buildMs?: number }): string {
  return t.buildMs === undefined ? "–" : String(t.buildMs);
}

/** `13×1×1 × 8`: a workgroup grid and the workgroup size (a single dimension when 1-D). */
export function gridName(g: readonly number[], size: readonly number[]): string {
  const dims = (d: readonly number[]) => (d[1] === 1 && d[2] === 1 ? `${d[0]}` : d.join("×"));
  return `${g.join("×")} × ${dims(size)}`;
}

/** Tiles the sweep refused (could not build or run), grouped by reason, one line each. */
export function refusedLines(r: BenchResults): string[] {
  const byReason = new Map<string, Set<string>>();
  for (const t of r.tiles ?? []) {
    for (const x of t.refused ?? []) {
      const key = `${x.reason}`;
      if (!byReason.has(key)) byReason.set(key, new Set());
      byReason.get(key)!.add(`${t.variant} ${tileName(x.tile)}`);
    }
  }
  return [...byReason].map(([reason, tiles]) =>
    `refused (${tiles.size}): ${[...tiles].join(", ")} — ${reason}`
  );
}

/** The probe lines: FMA ceiling, square product, load costs, dispatches per step. */
export function probeLines(r: BenchResults): string[] {
  const out: string[] = [];
  const p = r.probes;
  if (p) {
    const f = p.fma;
    out.push(
      `peak = FMA ceiling: ${f.gflops} GFLOP/s (shaders/probe.wgsl fma_peak: ${f.nacc} vec4 ` +
        `accumulators, ${f.workgroups} workgroups × ${f.invocations / f.workgroups}, ` +
        `${f.ms.median.toPrecision(3)} ms; CPU check ${f.check.ok ? "✓" : "✗"} on ` +
        `${f.check.checked} invocations; tried ${
          f.tried.map((t) => `${t.nacc}: ${t.gflops}`).join(", ")
        })`,
    );
    const lanes = p.cpu ? `${p.cpu.lanes}-lane` : "";
    out.push(
      `  one vec4 FMA: ${f.nsPerFma} ns per invocation` +
        (p.cpu && f.nsPerFmaVector !== null
          ? `, ${f.nsPerFmaVector} ns per ${lanes} vector on one of ${p.cpu.threads} cores`
          : ""),
    );
  }
  if (r.square) {
    const s = r.square;
    const of = p ? ` = ${pct(s.gflops / p.fma.gflops)} of the ceiling` : "";
    out.push(
      `square product: ${s.gflops} GFLOP/s${of} (this project's matmul nn ${s.size}³, tile ` +
        `${tileName(s.tile)}, A and B ${s.operands === "textures" ? "as textures" : "in buffers"})`,
    );
  }
  if (p?.loads.length) {
    out.push("");
    out.push(
      "Cost of one vec4 load (net of the probe's address hash and adds: raw − baseline; " +
        "addresses hashed from the loop counter, so nothing is hoisted or merged)",
    );
    out.push(textTable(
      [
        "memory",
        "ns per inv. load",
        ...(p.cpu ? [`ns per ${p.cpu.lanes}-lane load (1 core)`] : []),
        "FMAs per load",
        "raw ns per load",
        "loads per dispatch",
        "ms (baseline)",
        "CPU check",
      ],
      p.loads.map((l) => [
        LOAD_MEMORY_NAMES[l.memory],
        String(l.nsPerLoad),
        ...(p.cpu ? [String(l.nsPerVectorLoad)] : []),
        String(l.fmasPerLoad),
        String(l.nsPerLoadRaw),
        String(l.loads),
        `${l.ms.median.toPrecision(3)} (${l.baselineMs.median.toPrecision(3)})`,
        l.check.ok && l.baselineCheck.ok ? `✓ ${l.check.checked}` : "✗",
      ]),
    ));
  }
  if (r.dispatches?.length) {
    out.push("");
    out.push(
      "Dispatches per training step: " +
        r.dispatches.map((d) =>
          `${d.net} B=${d.batch}: ${d.perStep}` +
          (d.perSubmission ? ` (+${d.perSubmission} per submission)` : "")
        ).join("; "),
    );
    // the kernel table shows the grids of the net it times; the others' grids here
    const timed = r.kernels ? `${r.kernels.net}/${r.kernels.batch}` : "";
    for (const d of r.dispatches.filter((d) => `${d.net}/${d.batch}` !== timed)) {
      out.push(`${d.net} B=${d.batch}, per dispatch:`);
      out.push(textTable(
        ["kernel", "workgroups × size", "invocations"],
        d.ops.map((o) => [o.label, gridName(o.workgroups, o.workgroupSize), String(o.invocations)]),
        [1],
      ));
    }
  }
  return out;
}

/**
 * This adapter's targets for dispatches and kernels, each met (✓) or not (✗) in this run: a
 * 2-layer step in at most 4 dispatches and a 3-layer one in at most 6; layer 1's weight gradient at
 * 30 GFLOP/s or more, the square product at 40, a population's wide products at 40, layer 1's
 * forward at 37; the 2-layer step at 2.3 ms or less; a 16-model population 3× faster than its models
 * one by one. A target this run did not measure is left out.
 */
export function kernelTargetLines(r: BenchResults): string[] {
  const out: string[] = [];
  const mark = (ok: boolean) => (ok ? "✓" : "✗");
  const [two, three] = r.dispatches ?? [];
  if (two) out.push(`2-layer step in ≤ 4 dispatches: ${two.perStep} ${mark(two.perStep <= 4)}`);
  if (three) {
    out.push(`3-layer step in ≤ 6 dispatches: ${three.perStep} ${mark(three.perStep <= 6)}`);
  }
  const rate = (ks: KernelResult[] | undefined, prefix: string) =>
    ks?.find((k) => k.label.startsWith(prefix))?.gflops ?? null;
  const at = (what: string, gflops: number | null, goal: number) => {
    if (gflops !== null) out.push(`${what} ≥ ${goal} GFLOP/s: ${gflops} ${mark(gflops >= goal)}`);
  };
  at("layer 1's weight gradient", rate(r.kernels?.results, "backward_weights1"), 30);
  at(`square product ${r.square?.size}³`, r.square?.gflops ?? null, 40);
  const pk = r.populationKernels;
  if (pk) {
    at(`${pk.models}-model forward product`, rate(pk.results, "forward1"), 40);
    at(`${pk.models}-model weight gradient`, rate(pk.results, "backward_weights1"), 40);
  }
  at("layer 1's forward", rate(r.kernels?.results, "forward1"), 37);
  const step = r.items.find((i) => i.id === "step/3072-50-10/b100")?.ours.ms.median;
  if (step !== undefined) out.push(`2-layer step ≤ 2.3 ms: ${fmtMs(step)} ${mark(step <= 2.3)}`);
  const speedup = r.sweep?.trainOnly?.speedup.median;
  if (speedup !== undefined) {
    out.push(
      `${r.sweep!.config.lambdas.length}-model population ≥ 3× one by one: ${fmtRatio(speedup)} ${
        mark(speedup >= 3)
      }`,
    );
  }
  return out;
}

/** The benchmark issue's targets, checked against the paired ratios of this run. */
export function targetLines(r: BenchResults): string[] {
  const item = r.items.find((i) => i.id === "step/3072-50-10/b100");
  if (!item) return [];
  const out: string[] = [];
  const tf = item.peers["tfjs-webgpu"];
  if (tf?.status === "ok") {
    const x = tf.ratio!.median;
    out.push(`≥ 50× faster than tfjs-webgpu: ${fmtRatio(x)} ${x >= 50 ? "✓" : "✗"}`);
  }
  for (const name of ["numpy", "numpy-pip"]) {
    const np = item.peers[name];
    if (np?.status !== "ok") continue;
    const slower = 1 / np.ratio!.median;
    out.push(
      `within 3× of ${name} float32: this project takes ${fmtRatio(slower)} ${name}'s time ` +
        `${slower <= 3 ? "✓" : "✗"}`,
    );
  }
  return out;
}
