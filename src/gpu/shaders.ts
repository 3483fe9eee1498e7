/**
 * Loading WGSL from `shaders/`, preprocessing it, and caching pipelines per device.
 *
 * Every file stays valid WGSL that can be read and checked on its own: the directives are line
 * comments, and the tunables are ordinary module-scope constants. Before compilation a shader goes
 * through three text passes, in this order:
 *
 * 1. **Includes** ({@link expandIncludes}, run by {@link shaderSource}): a line that is exactly
 *    `// @include other` (from its first column; trailing white space allowed, and blank lines
 *    right after it go with it) is replaced by the text of `shaders/other.wgsl`, itself expanded.
 *    Each file is inserted at most once per shader: a later `@include` of a file already inserted
 *    expands to nothing. The expanded source is cached per name for the life of the process.
 * 2. **Specialisation** ({@link specialise}): for each given constant, the first line starting
 *    `const NAME: T = …;` gets the value as a literal of its declared type: `true`/`false` for
 *    `bool`, `<n>f` for `f32`, a truncated `<n>i` for `i32`, and a truncated `<n>u` for any other
 *    type. A name the shader does not declare is an error. Then `// @if NAME` / `// @else` /
 *    `// @endif` lines (alone on their line, indentation allowed, nestable) keep or drop the lines
 *    between them by the value of the module-scope bool constant NAME after specialisation, for
 *    declarations that differ between variants (an operand bound as a buffer or as a texture),
 *    which a plain `if` on a constant cannot select. The directive lines themselves are dropped.
 *    An `@if` on a name that is not a `bool` constant with a literal value, an `@else` or
 *    `@endif` without `@if`, and an `@if` without `@endif` are errors; so is an `@if` on an
 *    unknown name inside a block already dropped.
 * 3. **Unrolling** ({@link unroll}): loops written exactly `for (var v = 0u; v < BOUND; v++) {` and
 *    marked `// @unroll` on the same line become BOUND copies of their body, each in its own
 *    braces, with the identifier `v` replaced by `0u`, `1u`, …. BOUND is a literal or a
 *    module-scope `u32` constant (whose value is a literal or one binary `a op b`, op one of
 *    `* / + -`, of literals and earlier such constants); anything else is an error, and so is a
 *    body that uses `break` or `continue`. Nested marked loops are expanded too. Some compilers
 *    (Mesa's lavapipe among them) leave such loops rolled, which turns a register tile into
 *    memory traffic and costs 3–4× on a matmul.
 *
 * {@link compileKernel} runs passes 2 and 3 ({@link preprocess}), reflects the bind-group layout from the
 * result (src/gpu/layout.ts) and builds a compute pipeline, once per device and (shader, entry
 * point, constants). {@link compiledModules} lists every module source it compiled, so a test can
 * check every variant the program builds.
 *
 * @module
 */

import { type Binding, type ShaderLayout, shaderLayout } from "./layout.ts";

const sources = new Map<string, string>();

/**
 * The text of shader `name` as `read` returns it, with each line `// @include other` replaced by
 * the (likewise expanded) text of `read("other")`, the first time `other` is included; later
 * includes of the same file expand to nothing.
 */
export function expandIncludes(name: string, read: (name: string) => string): string {
  const seen = new Set<string>();
  const load = (n: string): string =>
    read(n).replace(
      /^\/\/ @include (\w+)\s*$/gm,
      (_, inc: string) => seen.has(inc) ? "" : (seen.add(inc), load(inc)),
    );
  return load(name);
}

/**
 * Read `shaders/<name>.wgsl` (cached), with each `// @include other` line replaced by the text of
 * `shaders/other.wgsl` (once per file, however often it is asked for): see {@link expandIncludes}.
 */
export function shaderSource(name: string): string {
  let code = sources.get(name);
  if (code === undefined) {
    code = expandIncludes(
      name,
      (n) => Deno.readTextFileSync(new URL(`../../shaders/${n}.wgsl`, import.meta.url)),
    );
    sources.set(name, code);
  }
  return code;
}

/**
 * Values for module-scope constants: booleans and numbers, written as literals of the type the
 * declaration names (`bool`, `f32`, `i32`; `u32` otherwise).
 */
export type Constants = Record<string, number | boolean>;

/**
 * Replace `const NAME: T = …;` declarations with the given values (unknown names are an error;
 * see the module documentation for the literals written), then keep or drop the lines of
 * `// @if NAME` … `// @else` … `// @endif` blocks by the value of the bool constant NAME —
 * for declarations that differ between variants, such as an operand bound as a buffer or as a
 * texture, which a plain `if` on a constant cannot select.
 */
export function specialise(code: string, constants: Constants): string {
  for (const [name, value] of Object.entries(constants)) {
    const re = new RegExp(`^const ${name}\\s*:\\s*(\\w+)\\s*=\\s*[^;]+;`, "m");
    const m = code.match(re);
    if (!m) throw new Error(`shader has no constant ${name} to specialise`);
    const type = m[1];
    let literal: string;
    if (type === "bool") literal = value ? "true" : "false";
    else if (type === "f32") literal = `${Number(value)}f`;
    else if (type === "i32") literal = `${Math.trunc(Number(value))}i`;
    else literal = `${Math.trunc(Number(value))}u`;
    code = code.replace(re, `const ${name}: ${type} = ${literal};`);
  }
  return conditionals(code);
}

/** Resolve `// @if NAME` / `// @else` / `// @endif` blocks (nestable) by bool constants. */
function conditionals(code: string): string {
  const bools = new Map<string, boolean>();
  for (const m of code.matchAll(/^const (\w+)\s*:\s*bool\s*=\s*(true|false);/gm)) {
    bools.set(m[1], m[2] === "true");
  }
  const out: string[] = [];
  const stack: { keep: boolean }[] = [];
  const active = () => stack.every((s) => s.keep);
  for (const line of code.split("\n")) {
    const t = line.trim();
    const m = /^\/\/ @if (\w+)$/.exec(t);
    if (m) {
      const v = bools.get(m[1]);
      if (v === undefined) throw new Error(`@if ${m[1]}: no bool constant of that name`);
      stack.push({ keep: v });
    } else if (t === "// @else") {
      const top = stack.at(-1);
      if (!top) throw new Error("@else without @if");
      top.keep = !top.keep;
    } else if (t === "// @endif") {
      if (!stack.pop()) throw new Error("@endif without @if");
    } else if (active()) out.push(line);
  }
  if (stack.length) throw new Error("@if without @endif");
  return out.join("\n");
}

/** Integer values of module-scope `const NAME: u32 = …;` declarations (literals, or NAME op literal). */
function moduleConstants(code: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of code.matchAll(/^const (\w+)\s*:\s*u32\s*=\s*([^;]+);/gm)) {
    const v = evalConst(m[2], out);
    if (v !== null) out.set(m[1], v);
  }
  return out;
}

function evalConst(expr: string, known: Map<string, number>): number | null {
  const term = (t: string): number | null => {
    t = t.trim();
    if (/^\d+u?$/.test(t)) return parseInt(t);
    return known.get(t) ?? null;
  };
  const m = /^(.+?)\s*([*/+-])\s*(.+)$/.exec(expr.trim());
  if (!m) return term(expr);
  const a = term(m[1]), b = term(m[3]);
  if (a === null || b === null) return null;
  switch (m[2]) {
    case "*":
      return a * b;
    case "/":
      return Math.floor(a / b);
    case "+":
      return a + b;
    default:
      return a - b;
  }
}

/**
 * Expand every `for (var v = 0u; v < BOUND; v++) { // @unroll` loop into BOUND copies of its body
 * with `v` replaced by `0u`, `1u`, …; BOUND is a literal or a module-scope u32 constant. Nested
 * marked loops are expanded too. Bodies must not `break` or `continue`.
 */
export function unroll(code: string): string {
  const consts = moduleConstants(code);
  const re = /for \(var (\w+) = 0u; \1 < (\w+); \1\+\+\) \{ *\/\/ @unroll *\n?/;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    const [head, v, boundName] = m;
    const bound = evalConst(boundName, consts);
    if (bound === null) throw new Error(`@unroll: ${boundName} is not a u32 constant`);
    let depth = 1, end = m.index + head.length;
    for (; end < code.length && depth > 0; end++) {
      if (code[end] === "{") depth++;
      else if (code[end] === "}") depth--;
    }
    const body = code.slice(m.index + head.length, end - 1);
    if (/\b(break|continue)\b/.test(body)) {
      throw new Error("@unroll: loop body uses break/continue");
    }
    const ident = new RegExp(`\\b${v}\\b`, "g");
    const copies = Array.from({ length: bound }, (_, k) => `{${body.replace(ident, `${k}u`)}}`);
    code = code.slice(0, m.index) + copies.join("\n") + code.slice(end);
  }
  return code;
}

/**
 * Specialise `code` with `constants`, then expand its `@unroll` loops: the text {@link compileKernel}
 * compiles.
 */
export function preprocess(code: string, constants: Constants = {}): string {
  return unroll(specialise(code, constants));
}

/** A compiled kernel: its pipeline and the bind-group layout reflected from its code. */
export interface Kernel extends ShaderLayout {
  /** The shader's name (`shaders/<name>.wgsl`). */
  name: string;
  /** The entry point of the pipeline. */
  entryPoint: string;
  /** The compute pipeline, built with {@link Kernel.layout}. */
  pipeline: GPUComputePipeline;
  /** Bind group 0's layout: one entry per declared binding, of the declared kind. */
  layout: GPUBindGroupLayout;
}

const cache = new WeakMap<GPUDevice, Map<string, Kernel>>();

/** A shader module {@link compileKernel} compiled: its shader, entry point, constants and code. */
export interface CompiledModule {
  /** The shader's name (`shaders/<name>.wgsl`). */
  name: string;
  /** The entry point of the pipeline built from it. */
  entryPoint: string;
  /** The constants it was specialised with. */
  constants: Constants;
  /** The WGSL handed to `createShaderModule`. */
  code: string;
}

const compiled = new WeakMap<GPUDevice, CompiledModule[]>();

/** Every shader module {@link compileKernel} has compiled on `device` so far, in order (one each). */
export function compiledModules(device: GPUDevice): readonly CompiledModule[] {
  return compiled.get(device) ?? [];
}

/**
 * The kernel of `shaders/<name>.wgsl` with the given constants and entry point, built once per
 * device and (shader, entry point, constants) and reused afterwards. Its bind-group layout is
 * reflected from the preprocessed code of this variant ({@link shaderLayout}: `@if` blocks decide
 * which declarations exist), with the struct layout of every uniform binding.
 */
export function compileKernel(
  device: GPUDevice,
  name: string,
  entryPoint: string,
  constants: Constants = {},
): Kernel {
  let perDevice = cache.get(device);
  if (!perDevice) cache.set(device, perDevice = new Map());
  const key = `${name}|${entryPoint}|${JSON.stringify(constants)}`;
  let k = perDevice.get(key);
  if (!k) {
    const code = preprocess(shaderSource(name), constants);
    let reflected: ShaderLayout;
    try {
      reflected = shaderLayout(code);
    } catch (e) {
      throw new Error(`shader ${name} (${entryPoint}): ${(e as Error).message}`);
    }
    const { bindings, structs } = reflected;
    let list = compiled.get(device);
    if (!list) compiled.set(device, list = []);
    list.push({ name, entryPoint, constants: { ...constants }, code });
    const layout = bindGroupLayout(device, bindings);
    const module = device.createShaderModule({ code, label: name });
    const pipeline = device.createComputePipeline({
      label: `${name}:${entryPoint}`,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint },
    });
    k = { name, entryPoint, pipeline, layout, bindings, structs };
    perDevice.set(key, k);
  }
  return k;
}

const layouts = new WeakMap<GPUDevice, Map<string, GPUBindGroupLayout>>();

/**
 * A bind-group layout for reflected bindings (cached per device and signature): storage buffers
 * read-only or read-write, uniform buffers (the step table's with a dynamic offset), sampled
 * unfilterable-float textures, and write-only and read-only rgba32float storage textures.
 */
function bindGroupLayout(device: GPUDevice, bindings: readonly Binding[]): GPUBindGroupLayout {
  let perDevice = layouts.get(device);
  if (!perDevice) layouts.set(device, perDevice = new Map());
  const key = bindings.map((b) => `${b.binding}:${b.kind}`).join(",");
  let l = perDevice.get(key);
  if (!l) {
    l = device.createBindGroupLayout({
      entries: bindings.map(({ binding, kind: k }) => ({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        ...(k === "texture"
          ? { texture: { sampleType: "unfilterable-float" as const } }
          : k === "storage-texture"
          ? { storageTexture: { access: "write-only" as const, format: "rgba32float" as const } }
          : k === "read-texture"
          ? { storageTexture: { access: "read-only" as const, format: "rgba32float" as const } }
          : k === "uint-texture"
          ? { texture: { sampleType: "uint" as const } }
          : k === "read-uint-texture"
          ? { storageTexture: { access: "read-only" as const, format: "rgba8uint" as const } }
          : {
            buffer: k === "read"
              ? { type: "read-only-storage" as const }
              : k === "write"
              ? { type: "storage" as const }
              : { type: "uniform" as const, hasDynamicOffset: k === "dynamic" },
          }),
      })),
    });
    perDevice.set(key, l);
  }
  return l;
}
