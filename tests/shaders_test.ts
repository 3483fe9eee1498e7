/**
 * The WGSL preprocessor of src/gpu/shaders.ts (includes, constant specialisation, `@if`/`@else`,
 * `@unroll`), one test per documented behaviour and error, and every shader variant the training
 * step, the evaluator and the bench build, compiled with no error and no warning.
 */

import assert from "node:assert/strict";
import { storageBuffer } from "../src/gpu/buffers.ts";
import {
  compiledModules,
  expandIncludes,
  preprocess,
  shaderSource,
  specialise,
  unroll,
} from "../src/gpu/shaders.ts";
import { matmulOp } from "../src/kernels/matmul.ts";
import { GpuParams } from "../src/model/gpu_params.ts";
import { Evaluator } from "../src/train/evaluate.ts";
import { trainingStep } from "../src/train/trainer.ts";
import { TILE_GRID } from "../bench/tiles.ts";
import { blankDataset, gpuDevice, representativeSpecs } from "./helpers.ts";

const files = (f: Record<string, string>) => (n: string) => {
  if (!(n in f)) throw new Error(`no file ${n}`);
  return f[n];
};

// ---- @include

Deno.test("shaders: @include replaces the line with the included file, recursively", () => {
  const read = files({
    main: "a\n// @include lib\nb\n",
    lib: "lib1\n// @include base\nlib2\n",
    base: "base\n",
  });
  assert.equal(expandIncludes("main", read), "a\nlib1\nbase\n\nlib2\n\nb\n");
});

Deno.test("shaders: a file included twice is inserted once; the second @include expands to nothing", () => {
  const read = files({
    main: "// @include random\nx\n// @include lib\ny\n// @include random\nz\n",
    lib: "// @include random\nlib\n",
    random: "R\n",
  });
  assert.equal(expandIncludes("main", read), "R\n\nx\n\nlib\n\ny\n\nz\n");
});

Deno.test("shaders: @include only at the start of its own line (trailing spaces allowed)", () => {
  const read = files({
    main: "  // @include lib\nx; // @include lib\n// @include lib  \n",
    lib: "L",
  });
  // the trailing white space, line break included, goes with the directive
  assert.equal(expandIncludes("main", read), "  // @include lib\nx; // @include lib\nL");
});

Deno.test("shaders: @include of a missing file fails with the reader's error", () => {
  assert.throws(
    () => expandIncludes("main", files({ main: "// @include nope\n" })),
    /no file nope/,
  );
});

Deno.test("shaders: shaderSource expands the real includes (random.wgsl into matmul and gather)", () => {
  for (const name of ["matmul", "gather"]) {
    const code = shaderSource(name);
    assert.ok(!/^\/\/ @include/m.test(code), name);
    assert.ok(code.includes("fn random3("), `${name} holds random.wgsl`);
    assert.equal(code.split("fn random3(").length, 2, `${name}: random.wgsl inserted once`);
    assert.equal(shaderSource(name), code, "cached");
  }
});

// ---- constant specialisation

const CONSTS = [
  "const TM: u32 = 8u; // rows",
  "const SCALE: f32 = 1.0;",
  "const OFF: i32 = -1i;",
  "const FLAG: bool = false;",
  "const H: f16 = 1h;",
  "  const INNER: u32 = 3u;",
  "fn f() -> u32 { return TM; }",
].join("\n");

Deno.test("shaders: specialise writes each value as a literal of the declared type", () => {
  const out = specialise(CONSTS, { TM: 4.7, SCALE: 0.5, OFF: -2.9, FLAG: true, H: 3 });
  assert.equal(
    out,
    [
      "const TM: u32 = 4u; // rows",
      "const SCALE: f32 = 0.5f;",
      "const OFF: i32 = -2i;",
      "const FLAG: bool = true;",
      "const H: f16 = 3u;", // any type but bool/f32/i32 gets a u32 literal
      "  const INNER: u32 = 3u;",
      "fn f() -> u32 { return TM; }",
    ].join("\n"),
  );
  assert.equal(specialise(CONSTS, { SCALE: 2, FLAG: 0 }).split("\n")[1], "const SCALE: f32 = 2f;");
  assert.equal(specialise(CONSTS, { FLAG: 0 }).split("\n")[3], "const FLAG: bool = false;");
});

Deno.test("shaders: specialise with no constants leaves a shader without directives unchanged", () => {
  assert.equal(specialise(CONSTS, {}), CONSTS);
});

Deno.test("shaders: specialising an unknown constant throws", () => {
  assert.throws(() => specialise(CONSTS, { NOPE: 1 }), /shader has no constant NOPE to specialise/);
  // only module-scope declarations from the first column count
  assert.throws(() => specialise(CONSTS, { INNER: 1 }), /no constant INNER/);
  // a prefix of a declared name is not that name
  assert.throws(() => specialise(CONSTS, { T: 1 }), /no constant T /);
});

Deno.test("shaders: specialise rewrites only the first declaration of a name", () => {
  assert.equal(
    specialise("const A: u32 = 1u;\nconst A: u32 = 2u;", { A: 9 }),
    "const A: u32 = 9u;\nconst A: u32 = 2u;",
  );
});

// ---- @if / @else / @endif

const COND = [
  "const A: bool = true;",
  "const B: bool = false;",
  "// @if A",
  "a1",
  "  // @if B",
  "  ab",
  "  // @else",
  "  a-not-b",
  "  // @endif",
  "// @else",
  "not-a",
  "// @endif",
  "end",
].join("\n");

Deno.test("shaders: @if/@else keep one branch and drop the directive lines", () => {
  assert.equal(
    specialise("const A: bool = false;\n// @if A\nyes\n// @else\nno\n// @endif\nend", {}),
    "const A: bool = false;\nno\nend",
  );
  assert.equal(
    specialise("const A: bool = false;\n// @if A\nyes\n// @endif\nend", { A: true }),
    "const A: bool = true;\nyes\nend",
  );
});

Deno.test("shaders: nested @if blocks (indented directives), all four combinations", () => {
  const keep = (A: boolean, B: boolean) => specialise(COND, { A, B }).split("\n").slice(2);
  assert.deepEqual(keep(true, true), ["a1", "  ab", "end"]);
  assert.deepEqual(keep(true, false), ["a1", "  a-not-b", "end"]);
  assert.deepEqual(keep(false, true), ["not-a", "end"]);
  assert.deepEqual(keep(false, false), ["not-a", "end"]);
});

Deno.test("shaders: @if errors: unknown or non-bool name, unbalanced directives", () => {
  const t = (code: string, re: RegExp) => assert.throws(() => specialise(code, {}), re);
  t("// @if X\n// @endif", /@if X: no bool constant of that name/);
  t("const X: u32 = 1u;\n// @if X\n// @endif", /@if X: no bool constant/);
  // also inside a block that is dropped anyway
  t("const A: bool = false;\n// @if A\n// @if X\n// @endif\n// @endif", /@if X: no bool/);
  t("// @else", /@else without @if/);
  t("// @endif", /@endif without @if/);
  t("const A: bool = true;\n// @if A\nx", /@if without @endif/);
  t(COND.replace("// @endif\nend", "end"), /@if without @endif/);
});

// ---- @unroll

Deno.test("shaders: @unroll expands a loop over a literal or a u32 constant", () => {
  assert.equal(
    unroll("for (var i = 0u; i < 3u; i++) { // @unroll\n  s += a[i] * ki;\n}"),
    "{  s += a[0u] * ki;\n}\n{  s += a[1u] * ki;\n}\n{  s += a[2u] * ki;\n}",
  );
  const code = "const N: u32 = 2u;\nfor (var j = 0u; j < N; j++) { // @unroll\nf(j);\n}";
  assert.equal(unroll(code), "const N: u32 = 2u;\n{f(0u);\n}\n{f(1u);\n}");
  // unmarked loops stay rolled
  const rolled = "for (var j = 0u; j < 2u; j++) {\nf(j);\n}";
  assert.equal(unroll(rolled), rolled);
});

Deno.test("shaders: @unroll bounds from constant expressions (literal and earlier constants)", () => {
  const code = [
    "const TM: u32 = 8u;",
    "const TM4: u32 = TM / 4u;",
    "const TN: u32 = 3u * 2u;",
    "const ALL: u32 = TM4 + TN;",
    "for (var i = 0u; i < ALL; i++) { // @unroll",
    "g(i);",
    "}",
  ].join("\n");
  const out = unroll(code);
  assert.equal(
    out.match(/g\(\d+u\)/g)?.join(","),
    "g(0u),g(1u),g(2u),g(3u),g(4u),g(5u),g(6u),g(7u)",
  );
});

Deno.test("shaders: nested @unroll loops all expand, each copy in its own braces", () => {
  const code = [
    "for (var r = 0u; r < 2u; r++) { // @unroll",
    "  for (var c = 0u; c < 2u; c++) { // @unroll",
    "    acc[r][c] += a[r] * b[c];",
    "  }",
    "}",
  ].join("\n");
  const out = unroll(code);
  assert.ok(!out.includes("for"), out);
  assert.deepEqual(out.match(/acc\[\du\]\[\du\]/g), [
    "acc[0u][0u]",
    "acc[0u][1u]",
    "acc[1u][0u]",
    "acc[1u][1u]",
  ]);
  assert.equal(out.split("{").length, out.split("}").length);
});

Deno.test("shaders: @unroll refuses break/continue and bounds that are not u32 constants", () => {
  const loop = (bound: string, body: string) =>
    `for (var i = 0u; i < ${bound}; i++) { // @unroll\n${body}\n}`;
  assert.throws(() => unroll(loop("4u", "if (x) { break; }")), /@unroll: loop body uses break/);
  assert.throws(() => unroll(loop("4u", "continue;")), /loop body uses break\/continue/);
  assert.throws(() => unroll(loop("n", "f(i);")), /@unroll: n is not a u32 constant/);
  assert.throws(
    () => unroll("const K: i32 = 4i;\n" + loop("K", "f(i);")),
    /@unroll: K is not a u32 constant/,
  );
  // a bound whose value needs more than one operator is not evaluated
  assert.throws(
    () => unroll("const K: u32 = 1u + 2u + 3u;\n" + loop("K", "f(i);")),
    /K is not a u32 constant/,
  );
});

Deno.test("shaders: preprocess is specialise then unroll (a specialised bound unrolls)", () => {
  const code = "const T: u32 = 1u;\nfor (var i = 0u; i < T; i++) { // @unroll\nf(i);\n}";
  assert.equal(preprocess(code, { T: 3 }), unroll(specialise(code, { T: 3 })));
  assert.equal(preprocess(code, { T: 3 }).match(/f\(\du\)/g)?.length, 3);
});

// ---- every variant the program builds compiles cleanly

/** Compile each source; the messages of each (error, warning, info) as lines, labelled. */
async function compile(device: GPUDevice, sources: Map<string, string>) {
  const messages = new Map<string, string[]>();
  device.pushErrorScope("validation");
  for (const [code, what] of sources) {
    const info = await device.createShaderModule({ code, label: what }).getCompilationInfo();
    if (info.messages.length) {
      messages.set(
        what,
        info.messages.map((m) => `${m.type} at ${m.lineNum}:${m.linePos}: ${m.message}`),
      );
    }
  }
  const error = await device.popErrorScope();
  return { messages, error };
}

Deno.test("shaders: every variant of training steps, evaluators and bench compiles cleanly", async () => {
  const device = await gpuDevice();
  const { dataset, train } = blankDataset(device);
  const before = compiledModules(device).length;
  // the matmuls of the bench's tile sweep: one model's SGD step without BN or dropout, from buffers
  let benchSweep = 0;
  // both kernel profiles: the gpu one's split kernels (workgroup memory, barriers) too
  for (const { spec, bnL2 } of representativeSpecs()) {
    for (const profile of ["cpu", "gpu"] as const) {
      for (const textures of [false, true]) {
        const params = new GpuParams(device, spec.sizes, spec.lambdas, spec.bn);
        const step = trainingStep(params, { dataset, train, val: null, test: null }, spec, {
          textures,
          profile,
        });
        if (!benchSweep) benchSweep = compiledModules(device).length;
        const evaluator = new Evaluator(params, dataset, { train, test: train }, 3, {
          bnL2,
          textures,
          profile,
          rows: 3,
        });
        step.destroy();
        evaluator.destroy();
        params.destroy();
      }
    }
  }
  dataset.destroy();
  // the bench's peak product: a plain nn store from buffers (its tiles are in the grid below)
  const [a, b, c] = ["A", "B", "C"].map((x) => storageBuffer(device, 64, `peak.${x}`));
  matmulOp(device, {
    variant: "nn",
    M: 8,
    N: 8,
    K: 8,
    a: { buffer: a, ld: 8 },
    b: { buffer: b, ld: 8 },
    c: { buffer: c, ld: 8 },
  });
  for (const x of [a, b, c]) x.destroy();

  const all = compiledModules(device);
  const built = all.slice(before);
  const kinds = new Set(built.map((m) => `${m.name}:${m.entryPoint}`));
  for (
    const k of [
      "gather:gather",
      "matmul:matmul_nn",
      "matmul:matmul_nt",
      "matmul:matmul_tn",
      "matmul:matmul_nn_split",
      "matmul:matmul_nt_split",
      "matmul:matmul_tn_split",
      "softmax_ce:softmax_ce",
      "update:adam",
      "copy:buffer_to_texture",
      "reduce:reduce_rows",
      "tail:tail",
    ]
  ) assert.ok(kinds.has(k), `${k} built (have ${[...kinds].join(", ")})`);
  assert.ok([...kinds].some((k) => k.startsWith("batchnorm:")), "batchnorm built");

  // everything the program built (the pipeline cache may already hold some from this process)
  const programs = new Map<string, string>(
    all.map((m) => [m.code, `${m.name}:${m.entryPoint} ${JSON.stringify(m.constants)}`]),
  );
  const strict = await compile(device, programs);
  assert.deepEqual([...strict.messages], []);
  assert.equal(strict.error, null, strict.error?.message);

  // the bench's tile sweep (and peak): those matmul variants with every tile of the grid
  const sweep = new Map<string, Record<string, number | boolean>>();
  for (const m of [...all.slice(before, benchSweep), all.at(-1)!]) {
    if (m.name !== "matmul") continue;
    const { TM: _tm, TN4: _tn4, WG: _wg, ...rest } = m.constants;
    sweep.set(`${m.entryPoint} ${JSON.stringify(rest)}`, rest);
  }
  // forward1 and backward_weights1 (layer 2 runs in the tail) and the peak product
  assert.ok(sweep.size >= 3, `${sweep.size} swept products`);
  const raw = shaderSource("matmul");
  const grid = new Map<string, string>();
  for (const [key, rest] of sweep) {
    for (const tm of TILE_GRID.tm) {
      if (key.startsWith("matmul_tn") && tm % 4 !== 0) continue; // tryOp skips these
      for (const tn4 of TILE_GRID.tn4) {
        for (const wg of TILE_GRID.wg) {
          const code = preprocess(raw, { TM: tm, TN4: tn4, WG: wg, ...rest });
          if (!programs.has(code)) grid.set(code, `${key} tile ${tm}x${tn4}x${wg}`);
        }
      }
    }
  }
  const swept = await compile(device, grid);
  // every tile the bench's grid offers compiles (tm not a multiple of 4 is refused for tn, see
  // tileRefusal in bench/tiles.ts)
  assert.deepEqual([...swept.messages], []);
  console.log(`${programs.size} built variants and ${grid.size} bench tile variants compiled`);
});
