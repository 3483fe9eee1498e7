/**
 * Reflection of a shader's GPU layout from its WGSL text: the one place where the layout of a
 * kernel's bindings and uniform structs is declared is the (preprocessed) shader itself.
 *
 * - **Structs** ({@link structLayout}): `struct Name { a: u32, b: f32, … }` whose fields are all
 *   scalars `u32`, `i32` or `f32`, 4 bytes each, at offsets 0, 4, 8, … in declaration order (the
 *   WGSL layout of such a struct). Any other field type, or a field attribute such as `@align`,
 *   is refused with an error naming the struct and the field.
 * - **Packing** ({@link packStruct}): values by field name, written as the declared type (u32 and
 *   i32 as integers in their range, f32 rounded to single precision). Every field must be given
 *   except padding fields, whose names start with `_` (written 0); a missing or unknown name is an
 *   error.
 * - **Bindings** ({@link reflectBindings}): the `@group(0) @binding(N) var<…> name: type;`
 *   declarations, each with its kind from the declaration: `var<storage, read>` (or
 *   `var<storage>`) `read`, `var<storage, read_write>` `write`, `var<uniform>` `uniform`, or
 *   `dynamic` for the step table (a uniform of type `Step`, bound with a dynamic offset),
 *   `texture_2d<f32>` `texture` (unfilterable float, read with textureLoad),
 *   `texture_storage_2d<rgba32float, write>` `storage-texture`, and
 *   `texture_storage_2d<rgba32float, read>` `read-texture`. Other declarations, other groups
 *   and duplicate binding numbers or names are errors.
 *
 * Comments are removed before parsing, so a declaration commented out does not count. Reflect the
 * preprocessed text of the variant being built (src/gpu/shaders.ts): `@if` blocks change which
 * declarations exist.
 *
 * @module
 */

/** A scalar type a reflected struct field may have. */
export type ScalarType = "u32" | "i32" | "f32";

/** One field of a reflected struct. */
export interface StructField {
  /** Field name; names starting with `_` are padding. */
  name: string;
  /** Declared scalar type. */
  type: ScalarType;
  /** Byte offset within the struct. */
  offset: number;
}

/** A struct of 4-byte scalars, as declared in WGSL. */
export interface StructLayout {
  /** The struct's name. */
  name: string;
  /** Its fields in declaration order. */
  fields: readonly StructField[];
  /** Size in bytes (4 per field). */
  size: number;
}

/** Kinds of binding a shader declares; see the module documentation. */
export type BindingKind =
  | "read"
  | "write"
  | "uniform"
  | "dynamic"
  | "texture"
  | "storage-texture"
  | "read-texture"
  | "uint-texture"
  | "read-uint-texture";

/** One `@group(0) @binding(N) var …;` declaration. */
export interface Binding {
  /** Binding number N. */
  binding: number;
  /** Variable name, the key its resource is given under. */
  name: string;
  /** What is bound there. */
  kind: BindingKind;
  /** Declared type, e.g. `array<vec4f>`, `Params`, `texture_2d<f32>`. */
  type: string;
}

/** The name of the struct a step-table binding has (shaders/step.wgsl). */
export const STEP_STRUCT = "Step";

const SCALARS = new Set<string>(["u32", "i32", "f32"]);

/** `code` without its `//` line comments and `/* … *\/` block comments. */
export function stripComments(code: string): string {
  return code.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, "");
}

/** `text` split at the commas outside `<…>` (type parameters such as `array<f32, 4>`). */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0, start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "<") depth++;
    else if (c === ">") depth--;
    else if (c === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/**
 * The layout of `struct name { … }` in `code`: its scalar fields at 4-byte offsets. Throws when
 * the struct is absent, declared twice, empty, or has a field that is not a plain `u32`, `i32` or
 * `f32`.
 */
export function structLayout(code: string, name: string): StructLayout {
  const text = stripComments(code);
  const found = [...text.matchAll(new RegExp(`\\bstruct\\s+${name}\\s*\\{([^}]*)\\}`, "g"))];
  if (found.length === 0) throw new Error(`no struct ${name} in the shader`);
  if (found.length > 1) throw new Error(`struct ${name} is declared ${found.length} times`);
  const body = found[0][1];
  if (body.includes("@")) throw new Error(`struct ${name}: field attributes are not supported`);
  const fields: StructField[] = [];
  const seen = new Set<string>();
  for (const part of splitTopLevel(body)) {
    const decl = part.trim();
    if (decl === "") continue;
    const m = /^(\w+)\s*:\s*(\S[\s\S]*)$/.exec(decl);
    if (!m) throw new Error(`struct ${name}: cannot read the field "${decl}"`);
    const field = m[1], type = m[2].replace(/\s+/g, "");
    if (!SCALARS.has(type)) {
      throw new Error(
        `struct ${name}: field ${field} has type ${type}; only u32, i32 and f32 fields ` +
          "(4 bytes each) are supported",
      );
    }
    if (seen.has(field)) throw new Error(`struct ${name}: field ${field} is declared twice`);
    seen.add(field);
    fields.push({ name: field, type: type as ScalarType, offset: 4 * fields.length });
  }
  if (fields.length === 0) throw new Error(`struct ${name} has no fields`);
  return { name, fields, size: 4 * fields.length };
}

/** Values of a struct's fields by name (padding fields `_…` may be left out). */
export type StructValues = Readonly<Record<string, number>>;

/**
 * Write `values` into `view` at byte `offset` as `layout` lays them out: u32 and i32 fields take
 * integers in their range, f32 fields any number (rounded to f32). Every field but padding (`_…`,
 * written 0) must be given, and no other name; errors name `what` (e.g. the kernel) and the field.
 */
export function packStructInto(
  layout: StructLayout,
  values: StructValues,
  view: DataView,
  offset = 0,
  what = `struct ${layout.name}`,
): void {
  const known = new Set(layout.fields.map((f) => f.name));
  for (const name of Object.keys(values)) {
    if (!known.has(name)) {
      throw new Error(
        `${what}: ${layout.name} has no field ${name} (fields: ${[...known].join(", ")})`,
      );
    }
  }
  for (const f of layout.fields) {
    const v = values[f.name];
    if (v === undefined) {
      if (f.name.startsWith("_")) {
        view.setUint32(offset + f.offset, 0, true);
        continue;
      }
      throw new Error(`${what}: no value for ${layout.name}.${f.name}`);
    }
    if (typeof v !== "number") {
      throw new Error(`${what}: ${layout.name}.${f.name} must be a number, got ${typeof v}`);
    }
    if (f.type === "f32") {
      view.setFloat32(offset + f.offset, v, true);
      continue;
    }
    const [lo, hi] = f.type === "u32" ? [0, 2 ** 32] : [-(2 ** 31), 2 ** 31];
    if (!Number.isInteger(v) || v < lo || v >= hi) {
      throw new Error(`${what}: ${layout.name}.${f.name} (${f.type}) cannot hold ${v}`);
    }
    if (f.type === "u32") view.setUint32(offset + f.offset, v, true);
    else view.setInt32(offset + f.offset, v, true);
  }
}

/** `values` packed as `layout` lays them out (see {@link packStructInto}), one u32 per field. */
export function packStruct(
  layout: StructLayout,
  values: StructValues,
  what?: string,
): Uint32Array {
  const out = new Uint32Array(layout.fields.length);
  packStructInto(layout, values, new DataView(out.buffer), 0, what);
  return out;
}

/** Kind of a binding from its address space (`storage, read`, `uniform`, …) and type. */
function bindingKind(space: string | undefined, type: string, name: string): BindingKind {
  const s = space?.replace(/\s+/g, "");
  if (s === "storage" || s === "storage,read") return "read";
  if (s === "storage,read_write") return "write";
  if (s === "uniform") return type === STEP_STRUCT ? "dynamic" : "uniform";
  if (s === undefined) {
    const t = type.replace(/\s+/g, "");
    if (t === "texture_2d<f32>") return "texture";
    if (t === "texture_storage_2d<rgba32float,write>") return "storage-texture";
    if (t === "texture_storage_2d<rgba32float,read>") return "read-texture";
    if (t === "texture_2d<u32>") return "uint-texture";
    if (t === "texture_storage_2d<rgba8uint,read>") return "read-uint-texture";
  }
  throw new Error(
    `binding ${name}: var${space === undefined ? "" : `<${space}>`} of type ${type} is not a ` +
      "supported kind (storage read or read_write, uniform, texture_2d<f32> or <u32>, " +
      "texture_storage_2d<rgba32float, write> or read, texture_storage_2d<rgba8uint, read>)",
  );
}

/**
 * The resource bindings `code` declares, in binding order, each with its kind (see the module
 * documentation). Throws on a group other than 0, a binding number or name used twice, or a
 * declaration of an unsupported kind.
 */
export function reflectBindings(code: string): Binding[] {
  const text = stripComments(code);
  const out: Binding[] = [];
  const re = /((?:@\w+\s*\(\s*\w+\s*\)\s*)+)var\s*(?:<([^>]*)>)?\s*(\w+)\s*:\s*([^;]+);/g;
  for (const m of text.matchAll(re)) {
    const [, attrs, space, name, rawType] = m;
    const attr = (a: string) => new RegExp(`@${a}\\s*\\(\\s*(\\w+)\\s*\\)`).exec(attrs)?.[1];
    const group = attr("group"), binding = attr("binding");
    if (group === undefined || binding === undefined) continue; // not a resource (no group)
    if (group !== "0") throw new Error(`binding ${name}: group ${group}; kernels use group 0 only`);
    const n = Number(binding);
    if (!Number.isInteger(n)) throw new Error(`binding ${name}: binding ${binding} not a number`);
    const type = rawType.trim();
    out.push({ binding: n, name, kind: bindingKind(space?.trim(), type, name), type });
  }
  out.sort((a, b) => a.binding - b.binding);
  for (let i = 1; i < out.length; i++) {
    if (out[i].binding === out[i - 1].binding) {
      throw new Error(
        `bindings ${out[i - 1].name} and ${out[i].name} share @binding(${out[i].binding})`,
      );
    }
  }
  const names = new Set<string>();
  for (const b of out) {
    if (names.has(b.name)) throw new Error(`binding name ${b.name} is declared twice`);
    names.add(b.name);
  }
  return out;
}

/** What a kernel's bind group is made of: its bindings and the structs of its uniforms. */
export interface ShaderLayout {
  /** The declared bindings, in binding order. */
  bindings: readonly Binding[];
  /**
   * The struct layout of each uniform binding of a struct type (the step table's included), by
   * variable name; a uniform array binding has none.
   */
  structs: ReadonlyMap<string, StructLayout>;
}

/**
 * The bindings of a kernel's preprocessed `code` and the struct layout of each uniform binding.
 * A kernel declares exactly one step-table binding (a uniform of type `Step`, shaders/step.wgsl):
 * `encodeOp` (src/kernels/op.ts) gives every op one dynamic offset. Throws when it declares none
 * or several, and on any error of {@link reflectBindings} or {@link structLayout}.
 */
export function shaderLayout(code: string): ShaderLayout {
  const bindings = reflectBindings(code);
  const steps = bindings.filter((b) => b.kind === "dynamic");
  if (steps.length !== 1) {
    throw new Error(
      `${steps.length} step-table bindings (var<uniform> …: ${STEP_STRUCT}); a kernel declares ` +
        "exactly one, set by encodeOp with a dynamic offset",
    );
  }
  const structs = new Map<string, StructLayout>();
  for (const b of bindings) {
    // a uniform of another type (a fixed-size array: `array<vec4f, 4096>`) has no struct to pack:
    // it is given a buffer
    if (b.kind === "dynamic" || (b.kind === "uniform" && !b.type.startsWith("array<"))) {
      structs.set(b.name, structLayout(code, b.type));
    }
  }
  return { bindings, structs };
}
