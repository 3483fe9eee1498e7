/**
 * Loading WGSL from `shaders/`, specialising its `const` parameters, and caching pipelines so
 * each (shader, constants, entry point) is compiled once per device.
 *
 * A shader file declares its tunables as ordinary module-scope constants, e.g.
 * `const TM: u32 = 8u;`. {@link specialise} rewrites those lines, so every file stays valid WGSL
 * that can be read and checked on its own.
 *
 * @module
 */

const sources = new Map<string, string>();

/** Read `shaders/<name>.wgsl` (cached). */
export function shaderSource(name: string): string {
  let code = sources.get(name);
  if (code === undefined) {
    code = Deno.readTextFileSync(new URL(`../../shaders/${name}.wgsl`, import.meta.url));
    sources.set(name, code);
  }
  return code;
}

/** Values for module-scope constants: numbers become `u32` literals unless the type says f32/i32. */
export type Constants = Record<string, number | boolean>;

/** Replace `const NAME: T = …;` declarations with the given values; unknown names are an error. */
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
    const code = specialise(shaderSource(name), constants);
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

/** Kinds of binding a kernel declares, in binding order. */
export type BindingKind = "read" | "write" | "uniform" | "dynamic";

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
        buffer: k === "read"
          ? { type: "read-only-storage" as const }
          : k === "write"
          ? { type: "storage" as const }
          : { type: "uniform" as const, hasDynamicOffset: k === "dynamic" },
      })),
    });
    perDevice.set(key, l);
  }
  return l;
}
