/**
 * Tests of the HTML report: safe embedding, data encoding, montage, input errors, output paths,
 * and — in headless Chromium with the network blocked — that every generated page renders without
 * console errors, with no empty chart, and makes no request. Full-page PNG screenshots are written
 * to `$TEST_OUT/report/` (with a copy of each page) or, without TEST_OUT, to a fresh temporary
 * directory whose path the test prints. Chromium: `$CHROMIUM_PATH` or /usr/bin/chromium; the
 * browser test is skipped without one (with one line saying so), unless `CI` or
 * `REPORT_REQUIRE_BROWSER=1` is set.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { loadChartJs } from "../src/report/chartjs.ts";
import { decodeColumn, encodeColumn } from "../src/report/columns.ts";
import { configDifferences } from "../src/report/compare.ts";
import { duration, pct, prettyJson, sci } from "../src/report/format.ts";
import {
  type Cell,
  cspHash,
  embedJson,
  escapeHtml,
  htmlCell,
  htmlTable,
  inlineScriptSource,
} from "../src/report/html.ts";
import { loadInput, loadSweep, parseTrials } from "../src/report/load.ts";
import {
  hyperScatterFigure,
  NO_VALUE_COLOR,
  scatterPairs,
  SEQUENTIAL,
  sequentialColor,
} from "../src/report/scatter.ts";
import { renderSweepSections } from "../src/report/sweep.ts";
import {
  COMPARE_FILE,
  defaultOutputPath,
  renderReport,
  renderRunReport,
  writeReport,
} from "../src/report/mod.ts";
import { firstLayerMontage, rescaleUnit } from "../src/report/montage.ts";
import { ReportBuilder } from "../src/report/builder.ts";
import { renderPage } from "../src/report/page.ts";
import { reportMain } from "../src/cli/report.ts";
import { assertUserError } from "./assert_user_error.ts";
import { Browser, fileUrl, findChromium, type PageVisit } from "./browser.ts";
import {
  CLASS_NAMES,
  EVIL,
  fakeGradcheck,
  fakeRunMetrics,
  writeFakeHalvingSweep,
  writeFakeHyperSweep,
  writeFakeRun,
  writeFakeSweep,
} from "./report_fixtures.ts";

/** Build every fixture under a fresh temporary directory. */
async function fixtures(): Promise<{ root: string; remove: () => Promise<void> }> {
  const root = await Deno.makeTempDir({ prefix: "report-test-" });
  const runs = join(root, "runs");
  await writeFakeRun(join(runs, "small"), {
    name: "small",
    points: 21,
    steps: 2000,
    lambda: 0.005,
    seed: 1,
    layerSizes: [3072, 50, 10],
    f32: false,
  });
  await Deno.writeTextFile(join(runs, "small", "gradcheck.json"), JSON.stringify(fakeGradcheck()));
  await writeFakeRun(join(runs, "big"), {
    name: "big-100k",
    points: 100_000,
    steps: 1_000_000,
    lambda: 0.001,
    seed: 2,
    layerSizes: [3072, 50, 50, 10],
  });
  await writeFakeRun(join(runs, "linear"), {
    name: "linear",
    points: 25,
    steps: 900,
    lambda: 0.1,
    seed: 3,
    layerSizes: [3072, 10],
    quality: 0.38,
  });
  await writeFakeRun(join(runs, "evil"), {
    name: EVIL,
    points: 12,
    steps: 500,
    lambda: 0,
    seed: 4,
    layerSizes: [3072, 20, 10],
    checkpoint: false,
    config: { note: EVIL, "</script>": "<img src=x onerror=alert(1)>", nested: { q: `"'\`` } },
    classNames: CLASS_NAMES.map((c, i) => (i === 3 ? `<img src=x onerror="window.__pwned=2">` : c)),
  });
  await writeFakeRun(join(runs, "diverged"), {
    name: "diverged-bn",
    points: 30,
    steps: 3000,
    lambda: 0.001,
    seed: 5,
    layerSizes: [3072, 50, 10],
    divergeAt: 0.6,
    config: {
      model: { layers: [3072, 50, 10], batchNorm: true, init: "xavier" },
      train: { batchSize: 100, epochs: 7, lambda: 0.001 },
    },
  });
  await writeFakeSweep(join(runs, "sweep"));
  await writeFakeHyperSweep(join(runs, "hyper-sweep"));
  await writeFakeHalvingSweep(join(runs, "asha"));
  await Deno.writeTextFile(join(root, "gradcheck.json"), JSON.stringify(fakeGradcheck()));
  return { root, remove: () => Deno.remove(root, { recursive: true }) };
}

Deno.test("escapeHtml escapes markup and quotes", () => {
  assert.equal(
    escapeHtml(`<a href="x">'&'</a>`),
    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
  );
});

Deno.test("table cells from parsed JSON are never treated as markup", () => {
  const hostile = JSON.parse('{"html": "<b>x</b>", "className": "n"}') as unknown as Cell;
  const out = htmlTable(["h"], [[hostile, "<i>", htmlCell("<em>ok</em>", "n")]]);
  assert.ok(!out.includes("<b>") && !out.includes("<i>"));
  assert.ok(out.includes('<td class="n"><em>ok</em></td>'));
});

Deno.test("embedJson cannot close a script element and round-trips", () => {
  const value = { name: EVIL, list: ["</SCRIPT>", "<!--", "\u2029", 1.5] };
  const s = embedJson(value);
  assert.ok(!/<\/script/i.test(s) && !s.includes("<!--") && !s.includes("<"));
  assert.ok(!s.includes("\u2028") && !s.includes("\u2029"));
  assert.deepEqual(JSON.parse(s), value);
});

Deno.test("inlineScriptSource neutralises </script> and drops source maps", () => {
  const js = `var s = "</script><!--";\n//# sourceMappingURL=chart.umd.js.map`;
  const out = inlineScriptSource(js);
  assert.ok(!/<\/script/i.test(out) && !out.includes("<!--") && !out.includes("sourceMappingURL"));
  assert.equal(new Function(`${out}; return s;`)(), "</script><!--");
  assert.match(cspHash("x"), /^'sha256-[A-Za-z0-9+/]+=*'$/);
});

Deno.test("chart.js UMD build is found in node_modules and inlinable", () => {
  const c = loadChartJs();
  assert.ok(c.source.length > 100_000, c.path);
  assert.match(c.version, /^4\./);
  assert.ok(!/<\/script/i.test(inlineScriptSource(c.source)));
});

Deno.test("columns encode losslessly as float32 or float64, missing values as NaN", () => {
  const f32 = encodeColumn([0, 1, 2.5, Math.fround(0.1), null, undefined]);
  assert.equal(f32.dtype, "f32");
  assert.deepEqual(Array.from(decodeColumn(f32)), [0, 1, 2.5, Math.fround(0.1), NaN, NaN]);
  const f64 = encodeColumn([0.1, 1e-300]);
  assert.equal(f64.dtype, "f64");
  assert.deepEqual(Array.from(decodeColumn(f64)), [0.1, 1e-300]);
});

Deno.test("montage rescales each unit by its own min/max and keeps planar RGB", () => {
  assert.deepEqual(Array.from(rescaleUnit([-2, 0, 2, NaN])), [0, 128, 255, 0]);
  assert.deepEqual(Array.from(rescaleUnit([3, 3])), [128, 128]);
  const w = new Float32Array(2 * 3072);
  for (let i = 0; i < 3072; i++) w[i] = i; // unit 0: ramp over R, G, B planes
  w.fill(-1, 3072); // unit 1: constant
  const hidden = firstLayerMontage(
    {
      "fc1.weight": { shape: [2, 3072], data: w },
      "fc2.weight": { shape: [10, 2], data: new Float32Array(20) },
    },
    CLASS_NAMES,
  );
  assert.ok(hidden.ok);
  assert.equal(hidden.kind, "hidden");
  assert.equal(hidden.pixels[0], 0);
  assert.equal(hidden.pixels[3071], 255);
  assert.equal(hidden.pixels[3072], 128);
  assert.equal(hidden.labels, undefined);
  const templates = firstLayerMontage({
    "fc1.weight": { shape: [10, 3072], data: new Float32Array(30720) },
  }, CLASS_NAMES);
  assert.ok(templates.ok);
  assert.equal(templates.kind, "templates");
  assert.deepEqual(templates.labels, CLASS_NAMES);
  const capped = firstLayerMontage(
    { "fc1.weight": { shape: [300, 3072], data: new Float32Array(300 * 3072) } },
    [],
    256,
  );
  assert.ok(capped.ok);
  assert.equal(capped.units, 256);
  assert.equal(capped.totalUnits, 300);
  const small = firstLayerMontage({
    "fc1.weight": { shape: [50, 20], data: new Float32Array(1000) },
  }, []);
  assert.ok(!small.ok);
  assert.match(small.reason, /\[50, 20\]/);
});

Deno.test("formatting helpers", () => {
  assert.equal(pct(0.4567), "45.67 %");
  assert.equal(pct(undefined), "–");
  assert.equal(sci(0), "0");
  assert.equal(sci(0.05), "0.05");
  assert.equal(sci(0.005), "0.005");
  assert.equal(sci(2.5e-5), "2.50e-5");
  assert.equal(duration(754), "12 min 34 s");
  assert.equal(duration(3.21), "3.2 s");
  const cfg = {
    layers: [3072, 50, 10],
    s: "a  ] [ b",
    nested: [{ x: 1 }],
    long: Array(50).fill(0.25),
  };
  const pretty = prettyJson(cfg);
  assert.ok(pretty.includes('"layers": [3072, 50, 10]'));
  assert.deepEqual(JSON.parse(pretty), cfg);
});

Deno.test("configDifferences lists only differing keys", () => {
  const d = configDifferences([
    { model: { bn: true, layers: [1, 2] }, seed: 1 },
    { model: { bn: false, layers: [1, 2] }, seed: 1, extra: "x" },
  ]);
  assert.deepEqual(d, [
    { key: "extra", values: ["–", '"x"'] },
    { key: "model.bn", values: ["true", "false"] },
  ]);
});

Deno.test("input errors are one-line UserErrors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "report-err-" });
  try {
    await assertUserError(
      () => writeReport([join(dir, "nope")]),
      /nope: no such file or directory/,
    );
    await assertUserError(() => writeReport([dir]), /not a run or sweep directory/);
    await assertUserError(() => writeReport([]), /no input/);
    const run = join(dir, "run");
    await Deno.mkdir(run);
    await Deno.writeTextFile(join(run, "metrics.json"), '{"format": "webgpu-mlp.run/1", ');
    await assertUserError(() => writeReport([run]), /metrics\.json: malformed JSON/);
    await Deno.writeTextFile(join(run, "metrics.json"), '{"format": "other/1"}');
    await assertUserError(
      () => writeReport([run]),
      /not a run's metrics\.json \(format "other\/1"/,
    );
    const m = fakeRunMetrics({
      name: "x",
      points: 3,
      steps: 10,
      lambda: 0,
      seed: 1,
      layerSizes: [3072, 10],
    });
    await Deno.writeTextFile(join(run, "metrics.json"), JSON.stringify({ ...m, curves: "no" }));
    await assertUserError(
      () => writeReport([run]),
      /metrics\.json: curves must be an array, got "no"$/,
    );
    const other = join(dir, "x.json");
    await Deno.writeTextFile(other, "[1, 2]");
    await assertUserError(
      () => writeReport([other]),
      /not a metrics\.json, sweep\.json or gradcheck\.json/,
    );
    const gc = join(dir, "gradcheck.json");
    await Deno.writeTextFile(gc, JSON.stringify(fakeGradcheck()));
    await Deno.writeTextFile(join(run, "metrics.json"), JSON.stringify(m));
    await assertUserError(
      () => writeReport([run, gc], { out: join(dir, "c.html") }),
      /gradcheck file cannot be compared/,
    );
    assert.throws(
      () => parseTrials('{"format": "webgpu-mlp.trial/1"}\nnot json\n', "t.jsonl"),
      /t\.jsonl:1/,
    );
    assert.throws(() => parseTrials('{"a":1}\n{}\n', "t.jsonl"), /t\.jsonl:1: not a trial record/);
    const notes: string[] = [];
    assert.deepEqual(parseTrials('{"format": "webgpu', "t.jsonl", notes), []);
    assert.equal(notes.length, 1); // an unterminated last line is being written: skipped
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("default output paths and atomic writes", async () => {
  const { root, remove } = await fixtures();
  try {
    const runs = join(root, "runs");
    const run = await loadInput(join(runs, "small"));
    const sweep = await loadInput(join(runs, "sweep"));
    const gc = await loadInput(join(root, "gradcheck.json"));
    const viaFile = await loadInput(join(runs, "small", "metrics.json"));
    assert.equal(defaultOutputPath([run]), join(runs, "small", "report.html"));
    assert.equal(defaultOutputPath([viaFile]), join(runs, "small", "report.html"));
    assert.equal(defaultOutputPath([sweep]), join(runs, "sweep", "report.html"));
    assert.equal(defaultOutputPath([gc]), join(root, "gradcheck.html"));
    assert.equal(defaultOutputPath([run, sweep]), COMPARE_FILE);
    assert.equal(await writeReport([join(runs, "small")]), join(runs, "small", "report.html"));
    const out = join(root, "cmp", "compare.html");
    assert.equal(await writeReport([join(runs, "small"), join(runs, "sweep")], { out }), out);
    const leftovers = [...Deno.readDirSync(join(root, "cmp"))].map((e) => e.name);
    assert.deepEqual(leftovers, ["compare.html"]); // no temp file left behind
  } finally {
    await remove();
  }
});

Deno.test("a report replaces only a report the tool wrote: never a user's file, a run's files, a directory or a link", async () => {
  const { root, remove } = await fixtures();
  try {
    const small = join(root, "runs", "small");
    const refused = async (out: string | undefined, pattern: RegExp) => {
      const before = entryBytes(out ?? join(small, "report.html"));
      await assertUserError(() => writeReport([small], { out }), pattern);
      assert.deepEqual(entryBytes(out ?? join(small, "report.html")), before, `${out} untouched`);
    };
    // a user's own file, at --out and at the default path
    const thesis = join(root, "thesis.tex");
    await Deno.writeTextFile(thesis, "my thesis\n");
    await refused(thesis, /thesis\.tex exists and is not an HTML report this tool wrote.*--out/);
    await Deno.writeTextFile(join(small, "report.html"), "<html>my notes</html>");
    await refused(undefined, /report\.html exists and is not an HTML report this tool wrote/);
    await Deno.remove(join(small, "report.html"));
    // a run's own metrics, a directory, a link, a folder that is a file
    await refused(join(small, "metrics.json"), /metrics\.json exists and is not an HTML report/);
    await refused(
      join(root, "runs"),
      /runs is a directory: --out names the file of an HTML report/,
    );
    await Deno.symlink(thesis, join(root, "link.html"));
    await refused(join(root, "link.html"), /link\.html is a symbolic link/);
    await refused(join(thesis, "x.html"), /thesis\.tex is a file, not a folder/);
    // its own report it replaces, there and at a new path under new folders
    const out = join(root, "new", "dir", "page.html");
    assert.equal(await writeReport([small], { out }), out);
    assert.equal(await writeReport([small], { out }), out);
    assert.equal(await writeReport([small]), join(small, "report.html"));
    assert.equal(await writeReport([small]), join(small, "report.html"));
  } finally {
    await remove();
  }
});

/** The bytes at `path` (null when there is nothing, "link"/"dir" for those), to see it unchanged. */
function entryBytes(path: string): string | null {
  try {
    const st = Deno.lstatSync(path);
    if (st.isSymlink) return `link ${Deno.readLinkSync(path)}`;
    if (st.isDirectory) return `dir ${[...Deno.readDirSync(path)].map((e) => e.name).sort()}`;
    return new TextDecoder().decode(Deno.readFileSync(path));
  } catch {
    return null;
  }
}

Deno.test("page is self-contained and embeds hostile strings inertly", async () => {
  const { root, remove } = await fixtures();
  try {
    const evil = await loadInput(join(root, "runs", "evil"));
    assert.equal(evil.kind, "run");
    const html = renderReport([evil]);
    assert.equal((html.match(/<script/g) ?? []).length, 3); // data, chart.js, page script
    assert.ok(!html.includes("<script>window.__pwned"));
    assert.ok(!html.includes("<img src=x"));
    assert.ok(html.includes("Content-Security-Policy"));
    assert.match(html, /default-src &#39;none&#39;/);
    const markup = html.replace(/<script[\s\S]*?<\/script>/g, "").replace(/="[^"]*"/g, '=""');
    assert.ok(!/<[a-z][^>]*\s(src|href|srcset)\s*=/i.test(markup), "no element loads anything");
    const data = html.match(
      /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/,
    );
    assert.ok(data);
    const parsed = JSON.parse(data[1]);
    assert.equal(parsed.format, "webgpu-mlp.report/1");
    assert.ok(parsed.figures.length > 0);
    if (evil.kind === "run") {
      assert.ok(!evil.run.weights && evil.run.weightsNote, "missing checkpoint gives a note");
      assert.ok(renderRunReport(evil.run).includes(escapeHtml(evil.run.weightsNote!)));
    }
  } finally {
    await remove();
  }
});

/** The h2 and h3 headings of a page, in order. */
function headings(html: string): string[] {
  return [...html.matchAll(/<h([23])[^>]*>([^<]*)<\/h\1>/g)].map((m) => `h${m[1]} ${m[2]}`);
}

/** The number of values of a figure's data column. */
function columnLength(b: ReportBuilder, key: string | undefined): number {
  return b.store.columns[key!].n;
}

Deno.test("sweep report over two and three hyperparameters: a scatter per pair, coloured by accuracy", async () => {
  const root = await Deno.makeTempDir({ prefix: "report-hyper-" });
  try {
    const dir = join(root, "hs");
    const trials = await writeFakeHyperSweep(dir);
    const sw = await loadSweep(dir);
    assert.equal(sw.rankBy, "final");
    const b = new ReportBuilder();
    const html = renderSweepSections(b, sw);
    assert.deepEqual(headings(html).slice(0, 4), [
      "h2 λ against validation accuracy",
      "h2 Hyperparameters against each other",
      "h3 Stage coarse: λ × η_max",
      "h3 Stage fine: λ × η_max × σ",
    ]);
    const scatters = b.figures.filter((f) => f.id.startsWith("fig-scatter"));
    assert.deepEqual(
      scatters.map((f) => [f.title, f.x.label, f.y.label, f.x.type, f.y.type]),
      [
        [
          "η_max against λ",
          "λ (L2 strength, log scale)",
          "η_max (highest learning rate, log scale)",
          "logarithmic",
          "logarithmic",
        ],
        ["η_max against λ", "λ (log scale)", "η_max (log scale)", "logarithmic", "logarithmic"],
        ["σ against λ", "λ (log scale)", "σ (log scale)", "logarithmic", "logarithmic"],
        ["σ against η_max", "η_max (log scale)", "σ (log scale)", "logarithmic", "logarithmic"],
      ],
    );
    // stage coarse: its 12 trials, 11 coloured by final validation accuracy and 1 diverged
    const [main, div] = scatters[0].series;
    assert.equal(scatters[0].series.length, 2);
    assert.equal(main.label, "trials (colour: final validation accuracy)");
    assert.equal(columnLength(b, main.x), 11);
    assert.equal(columnLength(b, main.y), 11);
    assert.equal(main.pointColors?.length, 11);
    assert.equal(div.label, "diverged");
    assert.equal(columnLength(b, div.x), 1);
    const coarse = trials.filter((t) => t.stage === "coarse" && t.status === "completed");
    assert.deepEqual(main.tooltips!.map((l) => l[0]), coarse.map((t) => `trial ${t.id}`));
    assert.ok(main.tooltips![0].some((l) => l.startsWith("η_max ")), main.tooltips![0].join());
    const finals = coarse.map((t) => t.final!.val.accuracy);
    const best = finals.indexOf(Math.max(...finals)), worst = finals.indexOf(Math.min(...finals));
    assert.equal(main.pointColors![best], SEQUENTIAL.at(-1));
    assert.equal(main.pointColors![worst], SEQUENTIAL[0]);
    assert.ok(div.tooltips![0].some((l) => l.startsWith("diverged at step")));
    assert.ok(html.includes(`colour: final validation accuracy, ${pct(Math.min(...finals))} to`));
    // stage fine: 8 trials in each of its three scatters, nothing diverged
    for (const f of scatters.slice(1)) {
      assert.deepEqual(f.series.map((s) => columnLength(b, s.x)), [8]);
      assert.equal(f.legend, false);
    }
    // the diverged table names the trial's η_max
    assert.match(html, /<th class="n">η_max<\/th><th class="n">seed<\/th>/);

    // ranked by the best accuracy (read from sweep.config.json while the sweep runs)
    const dir2 = join(root, "hs-best");
    await writeFakeHyperSweep(dir2, { summary: false, rankBy: "best" });
    const sw2 = await loadSweep(dir2);
    assert.equal(sw2.rankBy, "best");
    const b2 = new ReportBuilder();
    renderSweepSections(b2, sw2);
    const s2 = b2.figures.find((f) => f.id.startsWith("fig-scatter"))!.series[0];
    assert.equal(s2.label, "trials (colour: best validation accuracy)");
    const bests = coarse.map((t) => t.bestVal.accuracy);
    assert.equal(s2.pointColors![bests.indexOf(Math.max(...bests))], SEQUENTIAL.at(-1));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("hyperparameter scatters: dropout on a linear axis, λ = 0 left off a log one, colours", () => {
  const base = {
    format: "webgpu-mlp.trial/1" as const,
    stage: "s",
    seed: 1,
    status: "completed" as const,
    bestVal: { accuracy: 0.4, step: 10 },
    curves: [],
  };
  const split = (accuracy: number) => ({ loss: 1, cost: 1, accuracy });
  const trials = [[0.01, 0.1, 0.3], [0, 0.5, 0.4], [0.001, 0, 0.5]].map((
    [lambda, dropout, a],
    i,
  ) => ({
    ...base,
    id: `s/${i}`,
    index: i,
    lambda,
    hyper: { lambda, dropout },
    final: { train: split(a), val: split(a) },
  }));
  const b = new ReportBuilder();
  const html = hyperScatterFigure(b, "s", trials, "lambda", "dropout", "final");
  const f = b.figures[0];
  assert.equal(f.y.label, "dropout (dropout probability)");
  assert.equal(f.y.type, "linear");
  assert.ok(f.y.min! < 0 && f.y.max! > 0.1, `${f.y.min} ${f.y.max}`);
  assert.equal(columnLength(b, f.series[0].x), 2);
  assert.match(html, /1 trial\(s\) without a value in both, or with a value ≤ 0 on a log axis/);
  assert.deepEqual(scatterPairs(["lambda"]), []);
  assert.deepEqual(scatterPairs(["lambda", "sigma", "dropout", "etaMax"]), [
    ["lambda", "sigma"],
    ["lambda", "dropout"],
    ["sigma", "dropout"],
  ]);
  assert.equal(sequentialColor(0), SEQUENTIAL[0]);
  assert.equal(sequentialColor(1), SEQUENTIAL.at(-1));
  assert.equal(sequentialColor(2), SEQUENTIAL.at(-1));
  assert.equal(sequentialColor(NaN), NO_VALUE_COLOR);
  assert.match(sequentialColor(0.5), /^#[0-9a-f]{6}$/);
});

Deno.test("a sweep over λ alone: its report has no scatter of hyperparameters, as before", async () => {
  const { root, remove } = await fixtures();
  try {
    const sw = await loadSweep(join(root, "runs", "sweep"));
    const b = new ReportBuilder();
    const html = renderSweepSections(b, sw);
    assert.deepEqual(headings(html).filter((h) => h.startsWith("h2")), [
      "h2 λ against validation accuracy",
      "h2 Best trials of each stage",
      "h2 Curves of the best trials",
      "h2 Diverged trials",
      `h2 Final training with λ = ${sci(sw.summary!.final!.lambda)}`,
      "h2 Sweep metadata",
    ]);
    assert.ok(!b.figures.some((f) => f.id.startsWith("fig-scatter")));
    assert.ok(!html.includes("colorbar"));
    assert.deepEqual(b.figures.slice(0, 3).map((f) => f.title), [
      "Validation accuracy against λ",
      "Best trials: validation accuracy",
      "Best trials: validation cost",
    ]);
  } finally {
    await remove();
  }
});

Deno.test("CLI: --help, unknown flags and missing inputs", async () => {
  assert.equal(await reportMain(["--help"]), undefined);
  await assertUserError(() => reportMain(["--frobnicate"]), /unknown flag --frobnicate/);
  await assertUserError(() => reportMain(["a", "--out"]), /--out needs a value/);
  await assertUserError(() => reportMain([]), /no input/);
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/report.ts", "definitely/missing/run"],
    cwd: new URL("..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stderr } = await cmd.output();
  assert.equal(code, 1);
  const err = new TextDecoder().decode(stderr).trim();
  assert.equal(err, "error: definitely/missing/run: no such file or directory");
});

// ---------------------------------------------------------------------------------------------
// Headless browser

const chromium = findChromium();
const browserRequired = Deno.env.get("CI") !== undefined ||
  Deno.env.get("REPORT_REQUIRE_BROWSER") === "1";
// An ignored test only adds to the "ignored" count: say once why this one is.
if (!chromium && !browserRequired) {
  console.warn(
    "report_test: browser test skipped: no Chromium (set CHROMIUM_PATH or apt-get install chromium)",
  );
}

/** Where screenshots and the generated pages go ($TEST_OUT/report, else a temp dir). */
async function outputDir(): Promise<string> {
  const base = Deno.env.get("TEST_OUT");
  const dir = base ? join(base, "report") : await Deno.makeTempDir({ prefix: "report-screens-" });
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}

interface ReportState {
  charts: {
    id: string;
    title: string;
    datasets: { label: string; points: number; total: number }[];
  }[];
  montages: { id: string; units: number; width: number; height: number; inked: number }[];
  errors: string[];
  pwned: unknown;
  h1: string;
  ready: string;
}

const STATE =
  `({ ...window.__report, pwned: window.__pwned, h1: document.querySelector("h1").textContent,
  ready: document.body.dataset.ready })`;

/** Shows the tooltip of the first point of every hyperparameter scatter and reads it back. */
const TOOLTIP_PROBE = `(() => Array.from(document.querySelectorAll("figure.fig"))
  .filter((fig) => fig.id.startsWith("fig-scatter"))
  .map((fig) => {
    const chart = Chart.getChart(fig.querySelector("canvas"));
    const el = chart.getDatasetMeta(0).data[0];
    chart.tooltip.setActiveElements([{ datasetIndex: 0, index: 0 }], { x: el.x, y: el.y });
    chart.update();
    return {
      id: fig.id,
      title: chart.tooltip.title,
      body: chart.tooltip.body.map((b) => b.lines),
      colors: new Set(chart.data.datasets[0].backgroundColor).size,
      axes: [chart.scales.x.type, chart.options.scales.x.title.text, chart.scales.y.type,
        chart.options.scales.y.title.text],
    };
  }))()`;

/** The checks every report page must pass. */
function assertRendered(v: PageVisit, name: string): ReportState {
  assert.deepEqual(v.errors, [], `${name}: console or page errors`);
  assert.deepEqual(v.blocked, [], `${name}: the page tried to reach the network`);
  assert.ok(v.requests.every((u) => u.startsWith("file:")), `${name}: requests ${v.requests}`);
  assert.ok(v.ready, `${name}: page never signalled readiness`);
  const s = v.value as ReportState;
  assert.deepEqual(s.errors, []);
  for (const c of s.charts) {
    assert.ok(c.datasets.length > 0, `${name}: chart ${c.id} has no dataset`);
    for (const d of c.datasets) {
      assert.ok(d.points > 0 && d.total > 0, `${name}: chart ${c.id} series "${d.label}" is empty`);
    }
  }
  for (const m of s.montages) {
    assert.ok(
      m.units > 0 && m.inked > m.width * m.height * 0.3,
      `${name}: montage ${m.id} is blank`,
    );
  }
  return s;
}

Deno.test({
  name: "reports render in headless Chromium, offline, without errors or empty charts",
  ignore: !chromium && !browserRequired,
  fn: async (t) => {
    const { root, remove } = await fixtures();
    const out = await outputDir();
    console.log(`report test output (screenshots, pages): ${out}`);
    const browser = await Browser.launch(chromium);
    try {
      const runs = join(root, "runs");
      const open = async (html: string, name: string) => {
        const v = await browser.visit(fileUrl(html), {
          evaluate: STATE,
          screenshotPath: join(out, `${name}.png`),
        });
        if (Deno.env.get("TEST_OUT")) await Deno.copyFile(html, join(out, `${name}.html`));
        return assertRendered(v, name);
      };

      await t.step("the network blocker sees and blocks external requests", async () => {
        const canary = join(root, "canary.html");
        await Deno.writeTextFile(
          canary,
          `<!DOCTYPE html><body><img src="https://cdn.example.com/x.png">` +
            `<script>fetch("http://example.org/chart.js").catch(() => {});` +
            `document.body.dataset.ready = "1";</script></body>`,
        );
        const v = await browser.visit(fileUrl(canary));
        assert.ok(v.blocked.some((u) => u.startsWith("https://cdn.example.com/")), `${v.blocked}`);
        assert.ok(v.blocked.some((u) => u.startsWith("http://example.org/")), `${v.blocked}`);
        assert.ok(v.errors.length > 0, "blocked loads are reported as errors");
      });

      await t.step("the checks catch a broken figure and an empty chart", async () => {
        const b = new ReportBuilder();
        const empty = b.column([NaN, NaN], "empty");
        const body = b.figure(
          {
            title: "Empty",
            kind: "line",
            x: { label: "x" },
            y: { label: "y" },
            series: [{ label: "nothing", x: empty, y: empty, color: "#000" }],
          },
          "An empty chart.",
        ) + b.figure(
          {
            title: "Broken",
            kind: "line",
            x: { label: "x" },
            y: { label: "y" },
            series: [{ label: "missing", x: "nope", y: "nope", color: "#000" }],
          },
          "A figure whose data column is missing.",
        );
        const html = join(root, "broken.html");
        await Deno.writeTextFile(html, renderPage({ title: "broken", bodyHtml: body, builder: b }));
        const v = await browser.visit(fileUrl(html), { evaluate: STATE });
        assert.ok(v.ready);
        assert.ok(v.errors.some((e) => e.includes("missing data column nope")), `${v.errors}`);
        assert.throws(() => assertRendered(v, "broken"), /console or page errors/);
        assert.throws(
          () => assertRendered({ ...v, errors: [], value: { ...v.value, errors: [] } }, "broken"),
          /chart fig-empty series "nothing" is empty/,
        );
      });

      await t.step("run report", async () => {
        const s = await open(await writeReport([join(runs, "small")]), "run-small");
        assert.equal(s.h1, "Run small");
        const titles = s.charts.map((c) => c.title);
        for (
          const want of [
            "Cost",
            "Loss",
            "Accuracy",
            "Learning-rate schedule",
            "Per-class test accuracy",
          ]
        ) {
          assert.ok(titles.includes(want), `missing chart ${want}: ${titles}`);
        }
        assert.ok(
          titles.includes("Relative gradient errors (log scale)"),
          "gradcheck in a run dir",
        );
        const acc = s.charts.find((c) => c.title === "Accuracy")!;
        assert.deepEqual(acc.datasets.map((d) => [d.label, d.total]), [["training", 21], [
          "validation",
          21,
        ]]);
        assert.equal(s.montages.length, 1);
        assert.equal(s.montages[0].units, 50);
      });

      await t.step("100k-point run is decimated for display, data kept", async () => {
        const s = await open(await writeReport([join(runs, "big")]), "run-100k");
        const loss = s.charts.find((c) => c.title === "Loss")!;
        for (const d of loss.datasets) {
          assert.equal(d.total, 100_000);
          assert.ok(d.points < 10_000, `drew ${d.points} points: not decimated`);
        }
      });

      await t.step("one-layer network shows class templates", async () => {
        const s = await open(await writeReport([join(runs, "linear")]), "run-linear");
        assert.equal(s.montages[0].units, 10);
      });

      await t.step("hostile names and configs are shown as text, never run", async () => {
        const s = await open(await writeReport([join(runs, "evil")]), "run-evil");
        assert.equal(s.pwned, undefined);
        assert.equal(s.h1, `Run ${EVIL}`);
        assert.equal(s.montages.length, 0);
      });

      await t.step("diverged run", async () => {
        const s = await open(await writeReport([join(runs, "diverged")]), "run-diverged");
        const cost = s.charts.find((c) => c.title === "Cost")!;
        assert.ok(cost.datasets.some((d) => d.label.startsWith("diverged")));
      });

      await t.step("sweep report", async () => {
        const s = await open(await writeReport([join(runs, "sweep")]), "sweep");
        assert.equal(s.h1, "Sweep lambda-sweep");
        const lambda = s.charts.find((c) => c.title === "Validation accuracy against λ")!;
        assert.deepEqual(lambda.datasets.map((d) => [d.label, d.total]), [
          ["stage coarse", 7],
          ["stage fine", 6],
          ["diverged", 1],
        ]);
        const top = s.charts.find((c) => c.title === "Best trials: validation accuracy")!;
        assert.equal(top.datasets.length, 5);
        assert.ok(s.charts.some((c) => c.title === "Accuracy"), "final run's curves included");
      });

      await t.step("sweep report over two and three hyperparameters", async () => {
        const html = await writeReport([join(runs, "hyper-sweep")]);
        const s = await open(html, "sweep-hyper");
        const scatters = s.charts.filter((c) => c.id.startsWith("fig-scatter"));
        assert.deepEqual(scatters.map((c) => c.title), [
          "η_max against λ",
          "η_max against λ",
          "σ against λ",
          "σ against η_max",
        ]);
        assert.deepEqual(scatters[0].datasets.map((d) => [d.label, d.total, d.points]), [
          ["trials (colour: final validation accuracy)", 11, 11],
          ["diverged", 1, 1],
        ]);
        for (const c of scatters.slice(1)) assert.deepEqual(c.datasets.map((d) => d.total), [8]);
        // the tooltip of a point names its trial and values; the points are coloured one by one
        const v = await browser.visit(fileUrl(html), { evaluate: TOOLTIP_PROBE });
        assert.deepEqual(v.errors, []);
        const probe = v.value as {
          id: string;
          title: string[];
          body: string[][];
          colors: number;
          axes: string[];
        }[];
        assert.equal(probe.length, 4);
        assert.deepEqual(probe[0].title, ["trial coarse/0"]);
        assert.ok(probe[0].body[0].some((l) => l.startsWith("η_max ")), probe[0].body[0].join());
        assert.ok(probe[0].colors > 3, `${probe[0].colors} distinct colours`);
        assert.deepEqual(probe[0].axes, [
          "logarithmic",
          "λ (L2 strength, log scale)",
          "logarithmic",
          "η_max (highest learning rate, log scale)",
        ]);
      });

      await t.step("sweep report with successive halving: the rungs drawn", async () => {
        const s = await open(await writeReport([join(runs, "asha")]), "sweep-asha");
        assert.equal(s.h1, "Sweep asha-sweep");
        const rungs = s.charts.find((c) =>
          c.title === "Stage asha: validation accuracy of every trial"
        )!;
        // the trial that ran to the end (13 points), 6 stopped at rung 1 (step 600: 5 points), 2
        // at rung 2 (step 1200: 9 points), and the two rungs as lines
        const labels = rungs.datasets.map((d) => [d.label.replace(/ \(λ=.*/, ""), d.total]);
        assert.deepEqual(labels, [
          ["asha/5", 13],
          ...Array(6).fill(["stopped at rung 1", 5]),
          ...Array(2).fill(["stopped at rung 2", 9]),
          ["rungs", 2],
          ["rungs", 2],
        ]);
        const lambda = s.charts.find((c) => c.title === "Validation accuracy against λ")!;
        assert.deepEqual(lambda.datasets.map((d) => [d.label, d.total]), [
          ["stage asha", 1],
          ["stopped at a rung", 8],
        ]);
      });

      await t.step("comparison of several runs", async () => {
        const html = join(out, "compare-src.html");
        await writeReport(
          [join(runs, "small"), join(runs, "diverged"), join(runs, "linear"), join(runs, "sweep")],
          { out: html },
        );
        const s = await open(html, "compare");
        const acc = s.charts.find((c) => c.title === "Accuracy")!;
        assert.deepEqual(
          acc.datasets.filter((d) => !d.label.endsWith("(training)")).map((d) => d.label),
          ["small", "diverged-bn", "linear", "lambda-sweep-final"],
        );
        await Deno.remove(html);
      });

      await t.step("standalone gradcheck.json", async () => {
        const s = await open(await writeReport([join(root, "gradcheck.json")]), "gradcheck");
        assert.equal(s.h1, "Gradient audit");
        assert.equal(s.charts.length, 1);
      });
    } catch (e) {
      console.error(browser.stderr().slice(-3000));
      throw e;
    } finally {
      await browser.close();
      await remove();
    }
  },
});
