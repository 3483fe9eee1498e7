/**
 * Loading WGSL from `shaders/`, specialising its `const` parameters, and caching pipelines so
 * each (shader, constants, entry point) is compiled once per device.
 *
 * A shader file declares its tunables as ordinary module-scope constants, e.g.
 * `const TM: u32 = 8u;`. {@link specialise} rewrites those lines, so every file stays valid WGSL
 * that can be read and checked on its own.
 *
 * Loops over register tiles are written as loops and marked `// @unroll`; {@link unroll} expands
 * them before compilation. Some compilers (Mesa's lavapipe among them) leave such loops rolled,
 * which turns a register tile into memory traffic and costs 3–4× on a matmul.
 *
 * @module
 */

const sources = new Map<string, string>();

/**
 * Read `shaders/<name>.wgsl` (cached), with each `// @include other` line replaced by the text of
 * `shaders/other.wgsl` (once per file, however often it is asked for).
 */
export function shaderSource(name: string): string {
  let code = sources.get(name);
  if (code === undefined) {
    const seen = new Set<string>();
    const load = (n: string): string =>
      Deno.readTextFileSync(new URL(`../../shaders/${n}.wgsl`, import.meta.url)).replace(
        /^\/\/ @include (\w+)\s*$/gm,
        (_, inc: string) => seen.has(inc) ? "" : (seen.add(inc), load(inc)),
      );
    code = load(name);
    sources.set(name, code);
  }
  return code;
}

/** Values for module-scope constants: numbers become `u32` literals unless the type says f32/i32. */
export type Constants = Record<string, number | boolean>;

/**
 * Replace `const NAME: T = …;` declarations with the given values (unknown names are an error),
 * then keep or drop the lines of `// @if NAME` … `// @else` … `// @endif` blocks by the value of
 * the bool constant NAME — for declarations that differ between variants, such as an operand
 * bound as a buffer or as a texture, which a plain `if` on a constant cannot select.
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

const cache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/**
 * A compute pipeline for `shaders/<name>.wgsl` with the given constants and entry point, built once
 * per device and reused afterwards.
 */
export function pipeline(
  device: GPUDevice,
  name: string,
  entryPoint: string,
  layout: GPUBindGroupLayout,
  constants: Constants = {},
): GPUComputePipeline {
  let perDevice = cache.get(device);
  if (!perDevice) cache.set(device, perDevice = new Map());
  const key = `${name}|${entryPoint}|${JSON.stringify(constants)}`;
  let p = perDevice.get(key);
  if (!p) {
    const code = unroll(specialise(shaderSource(name), constants));
    const module = device.createShaderModule({ code, label: name });
    p = device.createComputePipeline({
      label: `${name}:${entryPoint}`,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint },
    });
    perDevice.set(key, p);
  }
  return p;
}

/**
 * Kinds of binding a kernel declares, in binding order: storage buffers (`read`, `write`),
 * uniform buffers (`uniform`, `dynamic` with a dynamic offset), a sampled float texture read with
 * textureLoad (`texture`), and a write-only rgba32float storage texture (`storage-texture`).
 */
export type BindingKind = "read" | "write" | "uniform" | "dynamic" | "texture" | "storage-texture";

const layouts = new WeakMap<GPUDevice, Map<string, GPUBindGroupLayout>>();

/** A bind-group layout for a list of buffer bindings (cached per device and signature). */
export function bindLayout(device: GPUDevice, kinds: BindingKind[]): GPUBindGroupLayout {
  let perDevice = layouts.get(device);
  if (!perDevice) layouts.set(device, perDevice = new Map());
  const key = kinds.join(",");
  let l = perDevice.get(key);
  if (!l) {
    l = device.createBindGroupLayout({
      entries: kinds.map((k, binding) => ({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        ...(k === "texture"
          ? { texture: { sampleType: "unfilterable-float" as const } }
          : k === "storage-texture"
          ? { storageTexture: { access: "write-only" as const, format: "rgba32float" as const } }
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
