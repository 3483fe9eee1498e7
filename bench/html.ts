/**
 * The bench's HTML page: the report generator's self-contained, offline page shell
 * (`src/report/page.ts`: inlined chart.js, CSP) with bar charts of the work items, the ratios to
 * each peer, the FMA ceiling (the peak) and load costs, dispatches per step, kernel throughput
 * against the ceiling and the square product, the step breakdown and the sweep, plus tables.
 *
 * @module
 */

import { ReportBuilder } from "../src/report/builder.ts";
import { paletteColor } from "../src/report/charts.ts";
import { type Cell, escapeHtml, htmlCell, htmlTable, keyValueTable } from "../src/report/html.ts";
import { renderPage } from "../src/report/page.ts";
import {
  buildText,
  gridName,
  kernelTargetLines,
  LOAD_MEMORY_NAMES,
  peerLine,
  profileText,
  refusedLines,
  targetLines,
} from "./report.ts";
import type { StepComparison } from "./kernels.ts";
import type { BenchResults } from "./results.ts";
import { fmtMs, fmtRatio } from "./stats.ts";
import { itemLabel } from "./steps.ts";
import { sweepVariants } from "./sweep.ts";
import { tileName } from "./tiles.ts";

const OURS_COLOR = "#d62728";
/** Palette positions for peers (skipping the palette's red, which is ours). */
const PEER_SLOTS = [0, 1, 2, 4, 6, 8, 9, 5];

function peerColor(k: number): string {
  return paletteColor(PEER_SLOTS[k % PEER_SLOTS.length]);
}

function n(x: string): Cell {
  return htmlCell(escapeHtml(x), "n");
}

/** A time chart and (with peers) a ratio chart of the items of one kind. */
function itemCharts(
  b: ReportBuilder,
  items: BenchResults["items"],
  peers: string[],
  kind: "step" | "epoch",
): string {
  if (!items.length) return "";
  const categories = items.map((i) => itemLabel(i).replace(/^(step|epoch) /, ""));
  const unit = kind === "step" ? "ms per training step" : "ms per epoch";
  const times = b.figure(
    {
      title: `${kind === "step" ? "One training step" : "One epoch"}: median time (log scale)`,
      kind: "bar",
      x: { label: "net and batch" },
      y: { label: unit, type: "logarithmic", format: "plain" },
      categories,
      series: [
        {
          label: "this project",
          y: b.column(items.map((i) => i.ours.ms.median), `${kind}-ours`),
          color: OURS_COLOR,
        },
        ...peers.map((p, k) => ({
          label: p,
          y: b.column(items.map((i) => i.peers[p]?.ms?.median ?? null), `${kind}-${p}`),
          color: peerColor(k),
        })),
      ],
      legend: true,
      aspect: 1.6,
    },
    kind === "step"
      ? "Gather + forward + loss + backward + SGD with L2 of one batch; lower is better."
      : "Every batch of the training split once, in a fresh shuffle; lower is better.",
    `${kind}-times`,
  );
  const ratios = peers.length
    ? b.figure(
      {
        title: `${kind === "step" ? "Step" : "Epoch"}: peer time / this project's time (log scale)`,
        kind: "bar",
        x: { label: "net and batch" },
        y: { label: "ratio (> 1: this project is faster)", type: "logarithmic", format: "plain" },
        categories,
        series: [
          ...peers.map((p, k) => ({
            label: p,
            y: b.column(items.map((i) => i.peers[p]?.ratio?.median ?? null), `${kind}-ratio-${p}`),
            color: peerColor(k),
          })),
          {
            label: "parity",
            y: b.column(items.map(() => 1), `${kind}-one`),
            color: "#5f6368",
            type: "line" as const,
            dash: true,
          },
        ],
        legend: true,
        aspect: 1.6,
      },
      "Median over repetitions of (peer time / our time), each pair measured back to back in this run.",
      `${kind}-ratios`,
    )
    : "";
  return times + ratios;
}

function itemsSection(b: ReportBuilder, r: BenchResults): string {
  if (!r.items.length) return "";
  const peers = r.peers.filter((p) => p.status === "ok").map((p) => p.name);
  const charts = (["step", "epoch"] as const)
    .map((kind) => itemCharts(b, r.items.filter((i) => i.kind === kind), peers, kind))
    .join("");
  const table = htmlTable(
    ["work item", n("this project"), ...peers.map((p) => n(p))],
    r.items.map((it) => [
      itemLabel(it),
      n(`${fmtMs(it.ours.ms.median)} [${fmtMs(it.ours.ms.min)}–${fmtMs(it.ours.ms.max)}]`),
      ...peers.map((p) => {
        const x = it.peers[p];
        return x?.status === "ok"
          ? n(`${fmtMs(x.ms!.median)} (${fmtRatio(x.ratio!.median)})`)
          : n(x?.error ? "failed" : "–");
      }),
    ]),
  );
  return `<h2>Training steps and epochs</h2><div class="grid wide">${charts}</div>` +
    `<div class="scroll">${table}</div>` +
    `<p class="sub">Medians [min–max]; (ratio) = peer / this project, paired.</p>`;
}

function kernelsSection(b: ReportBuilder, r: BenchResults): string {
  if (!r.kernels) return "";
  const ks = r.kernels.results;
  const cats = ks.map((k) => k.label);
  const series = [
    { label: "GFLOP/s", y: b.column(ks.map((k) => k.gflops), "gflops"), color: paletteColor(0) },
  ];
  const ceiling = r.probes?.fma.gflops;
  if (ceiling) {
    series.push(
      {
        label: `FMA ceiling ${ceiling} (peak)`,
        y: b.column(ks.map(() => ceiling), "ceiling"),
        color: OURS_COLOR,
        type: "line",
        dash: true,
      } as typeof series[number],
    );
  }
  if (r.square) {
    series.push(
      {
        label: `square product ${r.square.gflops} (matmul ${r.square.size}³)`,
        y: b.column(ks.map(() => r.square!.gflops), "square"),
        color: "#5f6368",
        type: "line",
        dash: true,
      } as typeof series[number],
    );
  }
  const gflops = b.figure(
    {
      title: "Kernel throughput on its layer shape",
      kind: "bar",
      x: { label: "kernel" },
      y: { label: "GFLOP/s", type: "logarithmic", format: "plain" },
      categories: cats,
      series,
      legend: true,
      aspect: 1.8,
    },
    `Each dispatch of a ${r.kernels.net} training step at B=${r.kernels.batch}, timed alone (many dispatches in one pass).`,
    "gflops",
  );
  const bd = r.breakdown;
  const share = bd
    ? b.figure(
      {
        title: "Share of a training step per kernel",
        kind: "bar",
        x: { label: "kernel" },
        y: { label: "share of step", format: "percent", min: 0 },
        categories: bd.kernels.map((k) => k.label),
        series: [{
          label: "share",
          y: b.column(bd.kernels.map((k) => k.fraction), "share"),
          color: paletteColor(1),
        }],
        legend: false,
        aspect: 1.8,
      },
      bd.method === "timestamps"
        ? "Timestamp queries around one pass per dispatch, inside whole training steps."
        : bd.note
        ? `From the isolated kernel timings: ${bd.note}.`
        : "From the isolated kernel timings (the adapter has no timestamp queries).",
      "share",
    )
    : "";
  const frac = new Map(bd?.kernels.map((k) => [k.label, k.fraction]) ?? []);
  const pct = (x: number | null | undefined) =>
    typeof x === "number" ? `${(100 * x).toFixed(1)} %` : "–";
  const table = htmlTable(
    [
      "kernel",
      "shape",
      n("ms"),
      n("GFLOP/s"),
      n("GB/s"),
      n("of ceiling"),
      n("of square"),
      n("of step"),
      "workgroups × size",
      n("invocations"),
    ],
    ks.map((k) => [
      k.label,
      k.shape,
      n(k.ms.median.toPrecision(3)),
      n(k.gflops === null ? "–" : String(k.gflops)),
      n(k.gbps === null ? "–" : String(k.gbps)),
      n(pct(k.ofCeiling)),
      n(pct(k.ofSquare)),
      n(pct(frac.get(k.label))),
      gridName(k.workgroups, k.workgroupSize),
      n(String(k.invocations)),
    ]),
  );
  const pk = r.populationKernels;
  const population = pk
    ? `<p>One training step of ${pk.models} models as one population (layer 1's products wide):</p>` +
      `<div class="scroll">${
        htmlTable(
          [
            "kernel",
            "shape",
            n("ms"),
            n("GFLOP/s"),
            n("of ceiling"),
            "workgroups × size",
            n(
              "invocations",
            ),
          ],
          pk.results.map((k) => [
            k.label,
            k.shape,
            n(k.ms.median.toPrecision(3)),
            n(k.gflops === null ? "–" : String(k.gflops)),
            n(pct(k.ofCeiling)),
            gridName(k.workgroups, k.workgroupSize),
            n(String(k.invocations)),
          ]),
        )
      }</div>`
    : "";
  return `<h2>Kernels</h2><div class="grid">${gflops}${share}</div><div class="scroll">${table}</div>` +
    population;
}

function sweepSection(b: ReportBuilder, r: BenchResults): string {
  const s = r.sweep;
  if (!s) return "";
  const variants = sweepVariants(s);
  const peers = [...new Set(variants.flatMap(([, v]) => Object.keys(v.peers)))];
  const cats = variants.map(([name]) => name);
  const fig = b.figure(
    {
      title: `${s.config.lambdas.length} λ values, ${s.config.steps} steps each`,
      kind: "bar",
      x: { label: "variant" },
      y: { label: "seconds for all models", min: 0 },
      categories: cats,
      series: [
        {
          label: "one population",
          y: b.column(variants.map(([, v]) => v.population.median / 1000), "pop"),
          color: OURS_COLOR,
        },
        {
          label: "one by one",
          y: b.column(variants.map(([, v]) => v.sequential.median / 1000), "seq"),
          color: paletteColor(0),
        },
        ...peers.map((p, k) => ({
          label: `${p} one by one`,
          y: b.column(
            variants.map(([, v]) => (v.peers[p]?.ms?.median ?? NaN) / 1000),
            `sweep-${p}`,
          ),
          color: peerColor(k + 1),
        })),
      ],
      legend: true,
      aspect: 1.8,
    },
    "trainPopulation evaluates train and val at the start and the end; 'steps only' times the training steps alone.",
    "sweep",
  );
  const rows: Cell[][] = [];
  for (const [name, v] of variants) {
    rows.push([name, "one population (this project)", n(fmtMs(v.population.median)), n("1×")]);
    rows.push([
      name,
      "one by one (this project)",
      n(fmtMs(v.sequential.median)),
      n(fmtRatio(v.speedup.median)),
    ]);
    for (const [peer, p] of Object.entries(v.peers)) {
      rows.push([
        name,
        `${peer}, one by one`,
        n(p.status === "ok" ? fmtMs(p.ms!.median) : "failed"),
        n(p.status === "ok" ? fmtRatio(p.vsPopulation!.median) : "–"),
      ]);
    }
  }
  const table = htmlTable(["variant", "how", n("time, all models"), n("÷ population")], rows);
  return `<h2>λ sweep</h2><div class="grid">${fig}<div class="scroll">${table}` +
    `<p class="sub">Medians of ${s.config.reps}; ÷ population: paired ratio to this project's ` +
    `population time in the same round.</p></div></div>`;
}

/** PBT against random search at equal compute: a table. */
function pbtSection(r: BenchResults): string {
  const p = r.pbt;
  if (!p) return "";
  const c = p.config;
  const best = (x: { trial: number; lambda: number; etaMax: number; valAccuracy: number }) =>
    `${(100 * x.valAccuracy).toFixed(2)} % (trial ${x.trial}, λ ${x.lambda.toExponential(2)}, ` +
    `η_max ${x.etaMax.toExponential(2)})`;
  const table = htmlTable(
    ["search", n("time"), n("model-steps"), "best validation accuracy", n("median")],
    [
      [
        "random search",
        n(`${p.randomSeconds.toFixed(1)} s`),
        n(String(p.modelSteps)),
        best(p.randomBest),
        n(`${(100 * p.median.random).toFixed(2)} %`),
      ],
      [
        "population-based training",
        n(`${p.pbtSeconds.toFixed(1)} s`),
        n(String(p.modelSteps)),
        best(p.pbtBest),
        n(`${(100 * p.median.pbt).toFixed(2)} %`),
      ],
    ],
  );
  return `<h2>Population-based training</h2><p class="sub">${
    escapeHtml(
      `${c.trials} trials of ${c.sizes.join("-")}, B=${c.batch}, ${c.steps} steps on ` +
        `${c.trainImages} images, λ and η_max log-uniform from seed ${c.seed}, exploits at ` +
        `${c.exploits.join(", ")} (quantile ${c.quantile}): ${p.copies} copies. PBT's best is ` +
        `${p.gainPoints.toFixed(2)} points from random search's at equal compute, in ` +
        `×${(p.pbtSeconds / p.randomSeconds).toFixed(2)} the time (one seed).`,
    )
  }</p><div class="scroll">${table}</div>`;
}

/** Successive halving against every trial to the end: a table. */
function ashaSection(r: BenchResults): string {
  const a = r.asha;
  if (!a) return "";
  const c = a.config;
  const best = (x: { trial: number; lambda: number; valAccuracy: number }) =>
    `${(100 * x.valAccuracy).toFixed(2)} % (trial ${x.trial}, λ ${x.lambda.toExponential(2)})`;
  const table = htmlTable(
    ["search", n("time"), n("model-steps"), "best validation accuracy"],
    [
      [
        "every trial to the end",
        n(`${a.fullSeconds.toFixed(1)} s`),
        n(String(a.modelSteps.full)),
        best(a.fullBest),
      ],
      [
        "successive halving",
        n(`${a.ashaSeconds.toFixed(1)} s`),
        n(String(a.modelSteps.asha)),
        best(a.ashaBest),
      ],
    ],
  );
  return `<h2>Successive halving</h2><p class="sub">${
    escapeHtml(
      `${c.lambdas.length} λ of ${c.sizes.join("-")}, B=${c.batch}, ${c.steps} steps on ` +
        `${c.trainImages} images, rungs at ${c.rungs.join(", ")}, η_r = ${c.reduction}: ` +
        `${a.population.join(" → ")} models. ${a.speedup.toFixed(2)}× faster; its best is ` +
        `${a.gapPoints.toFixed(2)} points below the full search's (within 0.5: ${
          a.within ? "yes" : "no"
        }); the survivors' curves equal the full run's: ${a.survivorsIdentical ? "yes" : "no"}.` +
        (a.test
          ? ` Each best trial trained as the final model, on the test set: full search ` +
            `${(100 * a.test.full).toFixed(2)} %, ASHA ${(100 * a.test.asha).toFixed(2)} % ` +
            `(within 0.5: ${a.test.within ? "yes" : "no"}).`
          : ""),
    )
  }</p><div class="scroll">${table}</div>`;
}

/** FMA ceiling, load costs and dispatches per step. */
function probesSection(r: BenchResults): string {
  const p = r.probes;
  let html = "";
  if (p) {
    const f = p.fma;
    const lanes = p.cpu ? `${p.cpu.lanes}-lane` : "";
    html += `<h2>Peak: the FMA ceiling, and what a load costs</h2>` +
      `<p>FMA ceiling <b>${f.gflops} GFLOP/s</b> (shaders/probe.wgsl <code>fma_peak</code>: ` +
      `${f.nacc} independent vec4 accumulators, ${f.workgroups} workgroups × ` +
      `${f.invocations / f.workgroups} invocations, ${f.ms.median.toPrecision(3)} ms; tried ` +
      `${escapeHtml(f.tried.map((t) => `${t.nacc}: ${t.gflops}`).join(", "))}; CPU check ` +
      `${f.check.ok ? "✓" : "✗"} on ${f.check.checked} invocations). One vec4 FMA: ` +
      `${f.nsPerFma} ns per invocation` +
      (p.cpu && f.nsPerFmaVector !== null
        ? `, ${f.nsPerFmaVector} ns per ${lanes} vector on one of ${p.cpu.threads} cores`
        : "") +
      (r.square
        ? `. This project's matmul on a square product (${r.square.size}³): ` +
          `${r.square.gflops} GFLOP/s.`
        : ".") +
      "</p>";
    html += `<div class="scroll">${
      htmlTable(
        [
          "memory",
          n("ns per invocation load"),
          ...(p.cpu ? [n(`ns per ${lanes} load (1 core)`)] : []),
          n("FMAs per load"),
          n("raw ns per load"),
          n("loads per dispatch"),
          n("ms (baseline)"),
          "CPU check",
        ],
        p.loads.map((l) => [
          LOAD_MEMORY_NAMES[l.memory],
          n(String(l.nsPerLoad)),
          ...(p.cpu ? [n(String(l.nsPerVectorLoad))] : []),
          n(String(l.fmasPerLoad)),
          n(String(l.nsPerLoadRaw)),
          n(String(l.loads)),
          n(`${l.ms.median.toPrecision(3)} (${l.baselineMs.median.toPrecision(3)})`),
          l.check.ok && l.baselineCheck.ok ? `✓ ${l.check.checked}` : "✗",
        ]),
      )
    }</div><p class="sub">Net cost: time with loads minus the baseline twin's (same address ` +
      "hash and adds, no load), over the loads; addresses hashed from the loop counter, so no " +
      "load is hoisted or merged. FMAs per load: that cost over one vec4 FMA at the ceiling.</p>";
  }
  if (r.dispatches?.length) {
    html += `<h2>Dispatches per training step</h2><div class="scroll">${
      htmlTable(
        ["net", n("per step"), n("per submission"), "kernels (workgroups × size = invocations)"],
        r.dispatches.map((d) => [
          `${d.net} B=${d.batch}`,
          n(String(d.perStep)),
          n(String(d.perSubmission)),
          d.ops.map((o) =>
            `${o.label} ${gridName(o.workgroups, o.workgroupSize)} = ${o.invocations}`
          ).join("; "),
        ]),
      )
    }</div>`;
  }
  if (r.tail?.length) {
    html += comparisonTable(
      "The tail against the products it replaces",
      r.tail.map((t) => ({ ...t, fused: "tail", apart: "products" })),
      "Whole training steps, with the top layers in one tail dispatch and with their products, " +
        "in alternating runs of steps (medians).",
    );
  }
  if (r.carry?.length) {
    html += comparisonTable(
      "The tail that gathers the next batch against the step's own gather",
      r.carry.map((c) => ({ ...c, fused: "carried", apart: "own" })),
      "Whole training steps, with the next step's batch gathered by the tail's dispatch and by " +
        "a gather dispatch of its own, in alternating runs of steps (medians).",
    );
  }
  if (r.images?.length) {
    html += comparisonTable(
      "Layer 1 reading the batch from the dataset's images against X gathered",
      r.images.map((c) => ({ ...c, fused: "images", apart: "gathered" })),
      "Whole training steps, with layer 1's products reading the normalised rows from the " +
        "dataset's images through the batch's indices and from X, gathered and copied into its " +
        "texture, in alternating runs of steps (medians).",
    );
  }
  return html;
}

/** A {@link StepComparison} table: the fused way's dispatches and ms, the other way's, the ratio. */
function comparisonTable(
  title: string,
  rows: (StepComparison<string, string> & { fused: string; apart: string })[],
  caption: string,
): string {
  return `<h2>${escapeHtml(title)}</h2><div class="scroll">${
    htmlTable(
      ["net", n("dispatches"), n("ms per step"), n("without: dispatches"), n("ms"), n("speed-up")],
      rows.map((t) => [
        `${t.net} B=${t.batch}`,
        n(String(t.dispatches[t.fused])),
        n(t.ms[t.fused].toFixed(3)),
        n(String(t.dispatches[t.apart])),
        n(t.ms[t.apart].toFixed(3)),
        n(`${t.ratio.toFixed(2)}×`),
      ]),
    )
  }</div><p class="sub">${escapeHtml(caption)}</p>`;
}

function tilesSection(r: BenchResults): string {
  if (!r.tiles?.length) return "";
  const refused = refusedLines(r);
  const table = htmlTable(
    [
      "shape",
      "epilogue",
      "default",
      n("ms"),
      n("build ms"),
      "best",
      n("ms"),
      n("build ms"),
      n("speed-up"),
      "used by",
    ],
    r.tiles.map((t) => [
      `${t.variant} ${t.M}×${t.N}×${t.K}`,
      t.epilogue,
      tileName(t.default.tile),
      n(t.default.ms.median.toPrecision(3)),
      n(buildText(t.default)),
      tileName(t.best.tile),
      n(t.best.ms.median.toPrecision(3)),
      n(buildText(t.best)),
      n(fmtRatio(t.speedup)),
      t.uses.join("; "),
    ]),
  );
  return `<h2>Tile sweep</h2><div class="scroll">${table}</div>` +
    (refused.length ? `<ul>${refused.map((l) => `<li>${escapeHtml(l)}</li>`).join("")}</ul>` : "");
}

/** The complete HTML page of a bench result. */
export function renderBenchHtml(r: BenchResults): string {
  const b = new ReportBuilder();
  const adapter = r.env.adapter.description || r.env.adapter.vendor;
  const env = keyValueTable([
    [
      "adapter",
      `${adapter} (backend ${r.env.backend}, timestamps ${r.env.timestamps ? "yes" : "no"})`,
    ],
    ["kernels", profileText(r).replace(/^kernels: /, "")],
    ["CPU", `${r.env.cpuModel} × ${r.env.cpus}`],
    ["Deno", `${r.env.deno.deno} (V8 ${r.env.deno.v8})`],
    [
      "load average",
      `${r.env.loadavg.start.map((x) => x.toFixed(2)).join(" ")} → ${
        (r.env.loadavg.end ?? []).map((x) => x.toFixed(2)).join(" ")
      }`,
    ],
    [
      "data",
      `CIFAR-10 batch ${r.env.trainBatches.join(",")} (${r.env.trainSamples} samples per epoch)`,
    ],
    [
      "peak (FMA ceiling)",
      r.probes ? `${r.probes.fma.gflops} GFLOP/s (shaders/probe.wgsl fma_peak)` : "–",
    ],
    [
      "square product",
      r.square
        ? `${r.square.gflops} GFLOP/s (matmul nn ${r.square.size}³, ${tileName(r.square.tile)}, ` +
          `A and B ${r.square.operands === "textures" ? "as textures" : "in buffers"})`
        : "–",
    ],
    ["run", `${r.seconds ?? "?"} s, flags ${r.argv.join(" ") || "(none)"}`],
  ]);
  const targets = [...targetLines(r), ...kernelTargetLines(r)];
  const peers = r.peers.length
    ? `<h2>Peers</h2><ul>${r.peers.map((p) => `<li>${escapeHtml(peerLine(p))}</li>`).join("")}</ul>`
    : "";
  const body = env +
    (targets.length
      ? `<h2>Targets</h2><ul>${targets.map((t) => `<li>${escapeHtml(t)}</li>`).join("")}</ul>`
      : "") +
    probesSection(r) + itemsSection(b, r) + kernelsSection(b, r) + sweepSection(b, r) +
    ashaSection(r) + pbtSection(r) + tilesSection(r) + peers;
  return renderPage({
    title: `Benchmark — ${adapter}`,
    subtitleHtml: `webgpu-mlp <code>deno task bench</code>, ${
      escapeHtml(r.date.slice(0, 19).replace("T", " "))
    } UTC`,
    bodyHtml: body,
    builder: b,
    generatedAt: new Date(r.date),
    generator: "deno task bench",
  });
}
