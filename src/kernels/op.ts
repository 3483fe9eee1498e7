/**
 * A prepared kernel dispatch: pipeline, bind group and grid built once, encoded many times.
 *
 * Kernels are built with {@link kernelOp}: the shader's declarations (reflected from its
 * preprocessed code, see src/gpu/layout.ts) decide the binding numbers and kinds, and resources
 * are given by the shader's variable names. A uniform binding takes its struct's values by field
 * name, packed and uploaded here:
 *
 * ```ts ignore
 * return kernelOp(device, {
 *   shader: "softmax_ce", entryPoint: "softmax_ce", constants: { TRAIN: true, WG }, label,
 *   resources: { S: scores, labels, stats, p: { R, Z, C, ld, zStride, scale }, st: noSteps(device) },
 *   workgroups: [groups, Z, 1], stepped: false, cost,
 * });
 * ```
 *
 * @module
 */

import { STEP_STRIDE, uniformBuffer } from "../gpu/buffers.ts";
import { packStruct, stripComments, type StructValues } from "../gpu/layout.ts";
import {
  compileKernel,
  type Constants,
  type Kernel,
  shaderSource,
  specialise,
} from "../gpu/shaders.ts";

/**
 * Nominal work of one dispatch, declared by the kernel builder from its spec: floating-point
 * operations and bytes moved (each operand read or written once), for throughput tables.
 */
export interface OpCost {
  /** Floating-point operations (≥ 0). */
  flops: number;
  /** Bytes read plus bytes written. */
  bytes: number;
  /** The shape in words, e.g. `nn 100×3072·3072×50`. */
  shape: string;
}

/** One dispatch, ready to encode. */
export interface Op {
  /** Debug label of the bind group, also used in errors (e.g. `matmul_nn`, `gather_train`). */
  label: string;
  /** The specialised compute pipeline. */
  pipeline: GPUComputePipeline;
  /**
   * Bind group 0: the kernel's resources at the bindings its shader declares, among them one step
   * table binding (`st: Step`, dynamic offset) wherever the shader declares it.
   */
  bindGroup: GPUBindGroup;
  /** Workgroup grid (x, y, z); a zero dimension makes {@link encodeOp} skip the dispatch. */
  workgroups: [number, number, number];
  /** Invocations per workgroup (x, y, z): the entry point's `@workgroup_size` in this variant. */
  workgroupSize: [number, number, number];
  /**
   * The op reads a step-table record: encode it with the record's index. Every kernel declares
   * one dynamic-offset step binding; ops that ignore it are encoded at offset 0.
   */
  stepped: boolean;
  /** Nominal work of the dispatch. */
  cost: OpCost;
  /**
   * After the dispatch, copies of what it wrote, in order (commands of the encoder, outside any
   * pass): set by src/kernels/placement.ts on a kernel that writes its buffer while the readers
   * read a texture copy. Such an op is encoded with an {@link OpEncoder}, which ends the pass for
   * the copies; {@link encodeOp} refuses it.
   */
  copies?: Copy[];
  /**
   * After those, copies that are not this op's work but the step's: on a step's last op, the
   * next step's batch moved into place (a tail that carries the gather, placement.ts). Encoded as
   * `copies` are; per-kernel timings leave them out.
   */
  moves?: Copy[];
}

/** A copy after a dispatch: a buffer into a texture, or a buffer into another. */
export type Copy = TextureCopy | BufferCopy;

/** A copy of the first `size` bytes of one buffer into another. */
export interface BufferCopy {
  /** The buffer written by the op. */
  src: GPUBuffer;
  /** The buffer its readers read. */
  dst: GPUBuffer;
  /** Bytes (a multiple of 4). */
  size: number;
}

/**
 * A copy of a buffer into an rgba32float texture, one texel per quad, row by row of the texture:
 * texel (x, y) = floats 4(y·width + x)..+3 of the buffer. Texture rows are `4·width` floats apart
 * in the buffer (a multiple of 256 bytes: width a multiple of 16, as `copyBufferToTexture`
 * demands). Where that is not a row of the matrix, the matrix's rows straddle texture rows (a
 * wrapped texture: `Matrix.wrap` in src/kernels/placement.ts, `TextureOperand.ld` in
 * src/kernels/matmul.ts).
 */
export interface TextureCopy {
  /** The buffer written by the op. */
  src: GPUBuffer;
  /** The texture its readers read. */
  dst: GPUTexture;
  /** Texels per texture row. */
  width: number;
  /** Whole texture rows. */
  height: number;
  /** Texels of one more, partial row after them (default 0), copied by a second command. */
  rest?: number;
}

/** Encode `op` into a compute pass; `record` selects the step-table record for stepped ops. */
export function encodeOp(pass: GPUComputePassEncoder, op: Op, record = 0): void {
  if (op.copies?.length || op.moves?.length) {
    throw new Error(`${op.label} ends in a copy: encode it with an OpEncoder`);
  }
  dispatch(pass, op, record);
}

/** Set the pipeline and bind group of `op` and dispatch it (its copies are the caller's). */
function dispatch(pass: GPUComputePassEncoder, op: Op, record: number): void {
  pass.setPipeline(op.pipeline);
  pass.setBindGroup(0, op.bindGroup, [op.stepped ? record * STEP_STRIDE : 0]);
  const [x, y, z] = op.workgroups;
  if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
}

/**
 * Encodes ops in order into the compute passes of one command encoder: one pass as long as it
 * can, ended after an op with {@link Op.copies} (copies are encoder commands) and opened again
 * by the next op. Commands of the encoder's own (copies, query resolves) go after {@link end}.
 *
 * @example A chunk of training steps, then the evaluation, in one submission
 * ```ts ignore
 * const enc = device.createCommandEncoder();
 * const ops = new OpEncoder(enc);
 * for (const op of prologue) ops.encode(op);
 * for (let t = 0; t < steps; t++) for (const op of stepOps) ops.encode(op, t);
 * ops.end();
 * device.queue.submit([enc.finish()]);
 * ```
 */
export class OpEncoder {
  readonly #enc: GPUCommandEncoder;
  readonly #begin: () => GPUComputePassEncoder;
  #pass: GPUComputePassEncoder | null = null;

  /**
   * Encode into `enc`; `begin` opens each pass (default a plain `beginComputePass`; the bench
   * gives one with timestamp writes).
   */
  constructor(enc: GPUCommandEncoder, begin?: () => GPUComputePassEncoder) {
    this.#enc = enc;
    this.#begin = begin ?? (() => enc.beginComputePass());
  }

  /** Encode `op` with step record `record` (see {@link encodeOp}), then its copies, if any. */
  encode(op: Op, record = 0): void {
    dispatch(this.#pass ??= this.#begin(), op, record);
    const copies = [...op.copies ?? [], ...op.moves ?? []];
    if (!copies.length) return;
    this.end();
    for (const copy of copies) {
      if ("size" in copy) this.#enc.copyBufferToBuffer(copy.src, 0, copy.dst, 0, copy.size);
      else this.#copyToTexture(copy);
    }
  }

  #copyToTexture(copy: TextureCopy): void {
    if (copy.height > 0) {
      this.#enc.copyBufferToTexture(
        { buffer: copy.src, bytesPerRow: copy.width * 16, rowsPerImage: copy.height },
        { texture: copy.dst },
        [copy.width, copy.height],
      );
    }
    if (copy.rest) {
      this.#enc.copyBufferToTexture(
        { buffer: copy.src, offset: copy.width * copy.height * 16 },
        { texture: copy.dst, origin: [0, copy.height] },
        [copy.rest, 1],
      );
    }
  }

  /** Encode each of `ops` with step record `record`. */
  encodeAll(ops: readonly Op[], record = 0): void {
    for (const op of ops) this.encode(op, record);
  }

  /** End the open pass, if any. */
  end(): void {
    this.#pass?.end();
    this.#pass = null;
  }
}

/** Encode ops in order, submit, and wait for the GPU (for tests and tools). */
export async function runOps(device: GPUDevice, ops: Op[], record = 0): Promise<void> {
  const enc = device.createCommandEncoder();
  const encoder = new OpEncoder(enc);
  encoder.encodeAll(ops, record);
  encoder.end();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
}

/**
 * What a binding is given: a buffer (storage, uniform, or the step table), a texture (sampled or
 * storage), or for a uniform binding the values of its struct by field name.
 */
export type Resource = GPUBuffer | GPUTexture | StructValues;

/**
 * Bind group 0 of `k` from resources by variable name. Buffers bind whole, except the step table,
 * bound at offset 0 with the size of one `Step` record (the dynamic offset selects the record);
 * textures bind as their default view; values for a uniform binding are packed by its struct
 * (padding `_…` fields 0) into a fresh uniform buffer labelled `<label>.<name>`. A binding the
 * shader declares without a resource, a resource the shader does not declare, and a resource of
 * the wrong sort are errors naming `label` and the shader.
 */
export function bindResources(
  device: GPUDevice,
  k: Kernel,
  label: string,
  resources: Readonly<Record<string, Resource | undefined>>,
): GPUBindGroup {
  const where = `${label} (shader ${k.name}, ${k.entryPoint})`;
  const declared = new Set(k.bindings.map((b) => b.name));
  for (const name of Object.keys(resources)) {
    if (!declared.has(name)) {
      throw new Error(
        `${where}: no binding ${name} in the shader (bindings: ${[...declared].join(", ")})`,
      );
    }
  }
  const entries = k.bindings.map(({ binding, name, kind }): GPUBindGroupEntry => {
    const r = resources[name];
    if (r === undefined) throw new Error(`${where}: no resource for binding ${name} (${kind})`);
    const texture = kind === "texture" || kind === "storage-texture" || kind === "read-texture" ||
      kind === "uint-texture" || kind === "read-uint-texture";
    if (texture !== r instanceof GPUTexture) {
      throw new Error(
        `${where}: binding ${name} (${kind}) needs a ${texture ? "texture" : "buffer"}`,
      );
    }
    if (r instanceof GPUTexture) return { binding, resource: r.createView() };
    if (r instanceof GPUBuffer) {
      return kind === "dynamic"
        ? { binding, resource: { buffer: r, offset: 0, size: k.structs.get(name)!.size } }
        : { binding, resource: { buffer: r } };
    }
    const struct = k.structs.get(name);
    if (kind !== "uniform" || !struct) {
      throw new Error(`${where}: binding ${name} (${kind}) needs a buffer, not values`);
    }
    const data = packStruct(struct, r, where);
    return { binding, resource: { buffer: uniformBuffer(device, data, `${label}.${name}`) } };
  });
  return device.createBindGroup({ label, layout: k.layout, entries });
}

/** Everything {@link kernelOp} needs: the kernel variant, its resources, grid and cost. */
export interface KernelOpSpec {
  /** Shader file `shaders/<shader>.wgsl`. */
  shader: string;
  /** Its entry point. */
  entryPoint: string;
  /** Constants the variant is specialised with. */
  constants?: Constants;
  /** The op's label. */
  label: string;
  /** Resources by the shader's variable names (see {@link bindResources}). */
  resources: Readonly<Record<string, Resource | undefined>>;
  /** Workgroup grid. */
  workgroups: [number, number, number];
  /** Whether the op reads its step-table record. */
  stepped: boolean;
  /** Nominal work. */
  cost: OpCost;
}

/** Build an op: the (cached) kernel variant, its bind group from named resources, grid and cost. */
export function kernelOp(device: GPUDevice, s: KernelOpSpec): Op {
  const k = compileKernel(device, s.shader, s.entryPoint, s.constants);
  return {
    label: s.label,
    pipeline: k.pipeline,
    bindGroup: bindResources(device, k, s.label, s.resources),
    workgroups: s.workgroups,
    workgroupSize: workgroupSize(s.shader, s.entryPoint, s.constants),
    stepped: s.stepped,
    cost: s.cost,
  };
}

const sizes = new Map<string, [number, number, number]>();

/**
 * The `@workgroup_size(x[, y[, z]])` of `entryPoint` in `shaders/<shader>.wgsl` specialised with
 * `constants` (cached): each argument a literal or a module-scope constant with a literal value.
 */
export function workgroupSize(
  shader: string,
  entryPoint: string,
  constants: Constants = {},
): [number, number, number] {
  const key = `${shader}|${entryPoint}|${JSON.stringify(constants)}`;
  let size = sizes.get(key);
  if (!size) {
    const code = stripComments(specialise(shaderSource(shader), constants));
    const m = new RegExp(`@workgroup_size\\s*\\(([^)]*)\\)[^;{}]*?\\bfn\\s+${entryPoint}\\b`)
      .exec(code);
    if (!m) throw new Error(`shader ${shader}: no @workgroup_size on fn ${entryPoint}`);
    const dims = m[1].split(",").map((t) => t.trim()).filter((t) => t).map((t) => {
      const lit = /^(\d+)[ui]?$/.exec(t) ??
        (/^\w+$/.test(t)
          ? new RegExp(`^const ${t}\\s*:\\s*\\w+\\s*=\\s*(\\d+)[ui]?\\s*;`, "m").exec(code)
          : null);
      if (!lit) {
        throw new Error(`shader ${shader} (${entryPoint}): workgroup size ${t} not a literal`);
      }
      return Number(lit[1]);
    });
    size = [dims[0], dims[1] ?? 1, dims[2] ?? 1];
    sizes.set(key, size);
  }
  return size;
}

/** Largest workgroup count per grid dimension every WebGPU device supports. */
export const MAX_GROUPS = 65535;

/** Check a grid dimension against the WebGPU limit, naming the op. */
export function checkGroups(label: string, n: number): number {
  if (n > MAX_GROUPS) throw new Error(`${label}: ${n} workgroups exceed ${MAX_GROUPS}`);
  return n;
}

/** Bytes of one f32 (or u32) element, for costs. */
export const F32 = 4;

/** ` ×Z` for a batched shape (Z > 1), else nothing. */
export function timesZ(Z: number): string {
  return Z > 1 ? ` ×${Z}` : "";
}
