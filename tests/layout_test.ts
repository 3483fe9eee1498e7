/**
 * GPU layouts reflected from WGSL (src/gpu/layout.ts), one test per documented behaviour and
 * error: struct parsing with offsets, packing by name and type, missing, unknown and padding
 * fields, non-scalar fields refused, each binding kind, and binding by name on a device (the
 * dynamic step binding, missing and unknown resources) in src/kernels/op.ts. Also: the step
 * table's encoding follows shaders/step.wgsl, and no shader declares its own `Step`.
 */

import assert from "node:assert/strict";
import { encodeSteps, STEP_STRIDE, stepStruct, storageBuffer } from "../src/gpu/buffers.ts";
import {
  packStruct,
  packStructInto,
  reflectBindings,
  shaderLayout,
  stripComments,
  structLayout,
} from "../src/gpu/layout.ts";
import { compileKernel, shaderSource } from "../src/gpu/shaders.ts";
import { bindResources } from "../src/kernels/op.ts";
import { gpuDevice } from "./helpers.ts";

const PARAMS = `
// a comment: struct Fake { x: vec4f }
struct Params {
  n: u32, // rows
  scale: f32, /* block comment */ shift: i32,
  _pad: u32,
}
struct Other { a: u32 }
`;

// ---- structs

Deno.test("layout: a struct's scalar fields at 4-byte offsets in declaration order", () => {
  const l = structLayout(PARAMS, "Params");
  assert.equal(l.name, "Params");
  assert.equal(l.size, 16);
  assert.deepEqual(l.fields, [
    { name: "n", type: "u32", offset: 0 },
    { name: "scale", type: "f32", offset: 4 },
    { name: "shift", type: "i32", offset: 8 },
    { name: "_pad", type: "u32", offset: 12 },
  ]);
  assert.deepEqual(structLayout(PARAMS, "Other").fields, [{ name: "a", type: "u32", offset: 0 }]);
});

Deno.test("layout: a missing, duplicated or empty struct is an error", () => {
  assert.throws(() => structLayout(PARAMS, "Nope"), /no struct Nope in the shader/);
  assert.throws(() => structLayout(PARAMS, "Fake"), /no struct Fake/); // only in a comment
  assert.throws(
    () => structLayout("struct A { x: u32 }\nstruct A { y: u32 }", "A"),
    /struct A is declared 2 times/,
  );
  assert.throws(() => structLayout("struct E {}", "E"), /struct E has no fields/);
  assert.throws(
    () => structLayout("struct D { x: u32, x: f32 }", "D"),
    /field x is declared twice/,
  );
});

Deno.test("layout: a non-scalar field or a field attribute is refused, naming the field", () => {
  for (const type of ["vec4f", "vec2<u32>", "array<f32, 4>", "f16", "bool", "atomic<u32>"]) {
    assert.throws(
      () => structLayout(`struct S { a: u32, b: ${type}, c: u32 }`, "S"),
      new RegExp(
        `struct S: field b has type ${type.replace(/[<>]/g, "\\$&").replace(/ /g, "")}; ` +
          "only u32, i32 and f32",
      ),
      type,
    );
  }
  assert.throws(
    () => structLayout("struct S { @align(16) a: u32 }", "S"),
    /struct S: field attributes are not supported/,
  );
});

// ---- packing

Deno.test("layout: packing writes u32, f32 and i32 values by field name", () => {
  const l = structLayout(PARAMS, "Params");
  const words = packStruct(l, { scale: 0.1, shift: -3, n: 4294967295 });
  const view = new DataView(words.buffer);
  assert.equal(words.length, 4);
  assert.equal(view.getUint32(0, true), 4294967295);
  assert.equal(view.getFloat32(4, true), Math.fround(0.1));
  assert.equal(view.getInt32(8, true), -3);
  // into a larger buffer at an offset, the rest untouched
  const big = new DataView(new ArrayBuffer(32));
  big.setUint32(28, 7, true);
  packStructInto(l, { n: 1, scale: 2, shift: 3 }, big, 12);
  assert.deepEqual(
    [big.getUint32(12, true), big.getFloat32(16, true), big.getInt32(20, true)],
    [1, 2, 3],
  );
  assert.equal(big.getUint32(28, true), 7);
});

Deno.test("layout: packing without a value for a field is an error naming it", () => {
  const l = structLayout(PARAMS, "Params");
  assert.throws(
    () => packStruct(l, { n: 1, shift: 0 }, "k"),
    /^Error: k: no value for Params\.scale$/,
  );
});

Deno.test("layout: packing a name the struct does not declare is an error", () => {
  const l = structLayout(PARAMS, "Params");
  assert.throws(
    () => packStruct(l, { n: 1, scale: 1, shift: 0, scal: 2 }, "k"),
    /k: Params has no field scal \(fields: n, scale, shift, _pad\)/,
  );
});

Deno.test("layout: padding fields (_…) are written 0 and may be left out or given", () => {
  const l = structLayout(PARAMS, "Params");
  assert.equal(packStruct(l, { n: 1, scale: 1, shift: 1 })[3], 0);
  assert.equal(packStruct(l, { n: 1, scale: 1, shift: 1, _pad: 9 })[3], 9);
});

Deno.test("layout: integers out of their type's range, or not integers, are refused", () => {
  const l = structLayout(PARAMS, "Params");
  const ok = { n: 0, scale: 0, shift: 0 };
  for (
    const [field, v] of [["n", -1], ["n", 2 ** 32], ["n", 1.5], ["shift", 2 ** 31], [
      "shift",
      NaN,
    ]] as const
  ) {
    assert.throws(
      () => packStruct(l, { ...ok, [field]: v }),
      new RegExp(`Params\\.${field} \\((u32|i32)\\) cannot hold`),
      `${field} = ${v}`,
    );
  }
  assert.equal(packStruct(l, { ...ok, shift: -(2 ** 31) })[2], 2 ** 31);
});

// ---- bindings

const BINDINGS = `
struct Params { n: u32 }
// @include step
struct Step { step: u32 }
@group(0) @binding(5) var<uniform> st: Step;
@group(0) @binding(0) var<storage, read> a: array<vec4f>;
@group(0) @binding(1) var<storage> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<atomic<u32>>;
@binding(3) @group(0) var<uniform> p: Params;
@group(0) @binding(4) var t: texture_2d<f32>;
@group(0) @binding(6) var o: texture_storage_2d<rgba32float, write>;
@group(0) @binding(8) var r: texture_storage_2d<rgba32float, read>;
@group(0) @binding(9) var u: texture_2d<u32>;
@group(0) @binding(10) var i: texture_storage_2d<rgba8uint, read>;
// @group(0) @binding(7) var<storage, read> commented: array<f32>;
var<workgroup> part: array<f32, 64>;
const X: u32 = 1u;
`;

Deno.test("layout: each binding kind from its declaration, in binding order", () => {
  assert.deepEqual(reflectBindings(BINDINGS), [
    { binding: 0, name: "a", kind: "read", type: "array<vec4f>" },
    { binding: 1, name: "b", kind: "read", type: "array<f32>" },
    { binding: 2, name: "c", kind: "write", type: "array<atomic<u32>>" },
    { binding: 3, name: "p", kind: "uniform", type: "Params" },
    { binding: 4, name: "t", kind: "texture", type: "texture_2d<f32>" },
    { binding: 5, name: "st", kind: "dynamic", type: "Step" },
    {
      binding: 6,
      name: "o",
      kind: "storage-texture",
      type: "texture_storage_2d<rgba32float, write>",
    },
    { binding: 8, name: "r", kind: "read-texture", type: "texture_storage_2d<rgba32float, read>" },
    { binding: 9, name: "u", kind: "uint-texture", type: "texture_2d<u32>" },
    {
      binding: 10,
      name: "i",
      kind: "read-uint-texture",
      type: "texture_storage_2d<rgba8uint, read>",
    },
  ]);
});

Deno.test("layout: unsupported kinds, other groups and reused numbers or names are errors", () => {
  const bad: [string, RegExp][] = [
    ["@group(0) @binding(0) var s: sampler;", /binding s: var of type sampler is not a supported/],
    [
      "@group(0) @binding(0) var t: texture_2d<i32>;",
      /binding t: var of type texture_2d<i32> is not/,
    ],
    [
      "@group(0) @binding(0) var t: texture_storage_2d<rgba8unorm, write>;",
      /texture_storage_2d<rgba8unorm, write> is not/,
    ],
    ["@group(0) @binding(0) var<private> x: u32;", /binding x: var<private> of type u32/],
    ["@group(1) @binding(0) var<uniform> p: P;", /binding p: group 1; kernels use group 0 only/],
    [
      "@group(0) @binding(0) var<uniform> p: P;\n@group(0) @binding(0) var<uniform> q: P;",
      /bindings p and q share @binding\(0\)/,
    ],
    [
      "@group(0) @binding(0) var<uniform> p: P;\n@group(0) @binding(1) var<uniform> p: P;",
      /binding name p is declared twice/,
    ],
  ];
  for (const [code, re] of bad) assert.throws(() => reflectBindings(code), re, code);
});

Deno.test("layout: a kernel's layout has one dynamic step binding and its uniforms' structs", () => {
  const l = shaderLayout(BINDINGS);
  assert.deepEqual(l.bindings.filter((b) => b.kind === "dynamic").map((b) => b.name), ["st"]);
  assert.deepEqual([...l.structs.keys()], ["p", "st"]);
  assert.deepEqual(l.structs.get("st")!.fields, [{ name: "step", type: "u32", offset: 0 }]);
  assert.throws(
    () => shaderLayout(BINDINGS.replace("var<uniform> st: Step;", "var<uniform> st: Params;")),
    /0 step-table bindings \(var<uniform> …: Step\); a kernel declares exactly one/,
  );
  assert.throws(
    () => shaderLayout(BINDINGS + "@group(0) @binding(11) var<uniform> st2: Step;"),
    /2 step-table bindings/,
  );
  assert.throws(
    () => shaderLayout(BINDINGS.replace("struct Params { n: u32 }", "struct Params { n: vec2u }")),
    /struct Params: field n has type vec2u/,
  );
  // a uniform array (a table a kernel reads whole) has no struct: it is bound to a buffer
  const table = shaderLayout(
    BINDINGS + "@group(0) @binding(11) var<uniform> table: array<vec4f, 64>;",
  );
  assert.deepEqual(table.bindings.find((b) => b.name === "table")?.kind, "uniform");
  assert.deepEqual([...table.structs.keys()], ["p", "st"]);
});

Deno.test("layout: comments are stripped before reflection", () => {
  assert.equal(stripComments("a // b\nc /* d\ne */ f"), "a \nc   f");
});

// ---- the step table

Deno.test("layout: one Step struct, in shaders/step.wgsl; every shader includes it", () => {
  const step = shaderSource("step");
  assert.deepEqual(stepStruct().fields.map((f) => f.name), [
    "step",
    "epoch",
    "pos",
    "eta",
    "base",
    "rows",
    "slot",
    "record",
    "models",
    "next",
    "nextEpoch",
    "nextPos",
  ]);
  assert.equal(stepStruct().size, 48);
  assert.deepEqual(structLayout(step, "Step"), stepStruct());
  for (const e of Deno.readDirSync(new URL("../shaders/", import.meta.url))) {
    const name = e.name.replace(/\.wgsl$/, "");
    // includes of their own: the step's fields reach gather_row through its hosts
    if (["step", "random", "eta", "gather_row"].includes(name)) continue;
    const raw = Deno.readTextFileSync(new URL(`../shaders/${e.name}`, import.meta.url));
    assert.ok(!/struct Step\b/.test(raw), `${e.name} declares its own Step`);
    assert.match(raw, /^\/\/ @include step$/m, e.name);
    assert.deepEqual(structLayout(shaderSource(name), "Step"), stepStruct(), name);
  }
});

Deno.test("layout: encodeSteps puts every field at its Step offset, of its type, 0 when absent", () => {
  const data = encodeSteps([
    {
      step: 1,
      epoch: 2,
      pos: 3,
      eta: 0.1,
      base: 5,
      rows: 6,
      slot: 7,
      record: 8,
      models: 10,
      next: 1,
      nextEpoch: 12,
      nextPos: 13,
    },
    { rows: 9, eta: undefined },
  ]);
  assert.equal(data.byteLength, 2 * STEP_STRIDE);
  const view = new DataView(data);
  for (const f of stepStruct().fields) {
    const got = f.type === "f32" ? view.getFloat32(f.offset, true) : view.getUint32(f.offset, true);
    const want = {
      step: 1,
      epoch: 2,
      pos: 3,
      eta: Math.fround(0.1),
      base: 5,
      rows: 6,
      slot: 7,
      record: 8,
      models: 10,
      next: 1,
      nextEpoch: 12,
      nextPos: 13,
    };
    assert.equal(got, want[f.name as keyof typeof want], f.name);
    const second = view.getUint32(STEP_STRIDE + f.offset, true);
    assert.equal(second, f.name === "rows" ? 9 : 0, f.name);
  }
  assert.throws(
    () => encodeSteps([{ stpe: 1 } as unknown as { step: number }]),
    /step record 0: Step has no field stpe/,
  );
});

// ---- binding by name on a device

Deno.test("layout: a kernel's bind group from resources by name; the step binding is dynamic, 48 bytes", async () => {
  const device = await gpuDevice();
  const k = compileKernel(device, "softmax_ce", "softmax_ce", { TRAIN: false, WG: 64 });
  assert.deepEqual(k.bindings.map((b) => `${b.binding}:${b.name}:${b.kind}`), [
    "0:S:write",
    "1:labels:read",
    "2:stats:write",
    "3:p:uniform",
    "4:st:dynamic",
  ]);
  assert.equal(k.structs.get("st")!.size, 48);
  assert.deepEqual(k.structs.get("p")!.fields.map((f) => f.name), [
    "R",
    "Z",
    "C",
    "ld",
    "zStride",
    "scale",
    "_a",
    "_b",
  ]);
  const buf = (n: string) => storageBuffer(device, 64, n);
  // the step table: a 2-record table; a 32-byte binding at a dynamic offset of 256 validates
  const steps = device.createBuffer({
    size: 2 * STEP_STRIDE,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const resources = {
    S: buf("S"),
    labels: buf("labels"),
    stats: buf("stats"),
    p: { R: 1, Z: 1, C: 4, ld: 4, zStride: 4, scale: 1 },
    st: steps,
  };
  device.pushErrorScope("validation");
  const group = bindResources(device, k, "t", resources);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(k.pipeline);
  pass.setBindGroup(0, group, [STEP_STRIDE]);
  pass.dispatchWorkgroups(1);
  pass.end();
  device.queue.submit([enc.finish()]);
  assert.equal(await device.popErrorScope(), null);
});

Deno.test("layout: a missing, unknown or mismatched resource is an error naming the kernel", async () => {
  const device = await gpuDevice();
  const k = compileKernel(device, "copy", "buffer_to_texture", { WG: 64 });
  const src = storageBuffer(device, 16, "src");
  const dst = device.createTexture({
    size: [1, 1],
    format: "rgba32float",
    usage: GPUTextureUsage.STORAGE_BINDING,
  });
  const p = { width: 1, height: 1, ld4: 1, quads: 1 };
  const st = storageBuffer(device, 64, "st");
  const where = /^Error: c \(shader copy, buffer_to_texture\): /;
  const fails = (r: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => bindResources(device, k, "c", r as never), (e: Error) => {
      assert.match(String(e), where);
      assert.match(e.message, re);
      return true;
    });
  fails({ src, dst, p }, /no resource for binding st \(dynamic\)/);
  fails(
    { src, dst, p, st, extra: src },
    /no binding extra in the shader \(bindings: src, dst, p, st\)/,
  );
  fails({ src: dst, dst, p, st }, /binding src \(read\) needs a buffer/);
  fails({ src, dst: src, p, st }, /binding dst \(storage-texture\) needs a texture/);
  fails({ src, dst, p: { width: 1 }, st }, /no value for Params\.height/);
  fails({ src, dst, p, st: { step: 1 } }, /binding st \(dynamic\) needs a buffer, not values/);
});
