/**
 * WebGPU adapter and device acquisition, with the limits a run needs, error capture and a
 * one-line explanation when no adapter exists.
 *
 * @module
 */

import { clip, UserError } from "../errors.ts";

/**
 * Which kernel selection products use (see `MatmulSpec.profile` in src/kernels/matmul.ts): `cpu`
 * for CPU rasterisers (llvmpipe, lavapipe, SwiftShader), whose few cores want few, fat
 * invocations with big register tiles each running a whole dot product; `gpu` for real GPUs,
 * which want workgroups of 64–256 invocations, thousands of them in flight, and long dot products
 * split across the invocations of a workgroup.
 */
export type KernelProfile = "cpu" | "gpu";

/** Adapters that are CPU rasterisers: texel loads are cheap there, and few invocations pay. */
const CPU_ADAPTER = /llvmpipe|lavapipe|swiftshader/i;

/** Adapter facts recorded with every run. */
export interface AdapterSummary {
  /** `GPUAdapterInfo.vendor`, e.g. `nvidia` (empty when the adapter does not say). */
  vendor: string;
  /** `GPUAdapterInfo.architecture` (empty when unknown). */
  architecture: string;
  /** `GPUAdapterInfo.device`: vendor-specific device id or name (empty when unknown). */
  device: string;
  /** `GPUAdapterInfo.description`: human-readable adapter name, used in logs. */
  description: string;
}

/** An acquired device plus what we learned about the adapter. */
export interface Gpu {
  /** The WebGPU device every buffer and pipeline is created on. */
  device: GPUDevice;
  /** Vendor, architecture, device and description strings of the adapter (empty when unknown). */
  adapter: AdapterSummary;
  /** Limits granted to the device. */
  limits: GPUSupportedLimits;
  /** Whether timestamp queries are enabled on this device. */
  timestamps: boolean;
  /**
   * Whether to feed layer 1's products through textures: on for CPU rasterisers (llvmpipe,
   * lavapipe, SwiftShader), where texel loads cost a fraction of buffer loads and the products
   * ran 1.15–1.3× faster; off elsewhere until measured. `WEBGPU_MLP_TEXTURES=0|1` overrides (any
   * other value is a `UserError`).
   */
  prefersTextures: boolean;
  /** How kernels read texture operands on this device ({@link textureReads}). */
  textureReads: TextureReads;
  /**
   * The kernel selection of this adapter's products: `cpu` on CPU rasterisers (the adapters
   * {@link Gpu.prefersTextures} recognises), `gpu` elsewhere. `WEBGPU_MLP_KERNELS=cpu|gpu`
   * overrides; textures stay as `WEBGPU_MLP_TEXTURES` (or the adapter) says either way.
   */
  kernelProfile: KernelProfile;
  /**
   * Whether training steps fuse their top layers into one tail dispatch where they fit (see
   * {@link tailChoice}): on by default, `WEBGPU_MLP_TAIL=0` turns it off.
   */
  fuseTail: boolean;
  /**
   * Whether a tail that can carries the next step's gather (src/kernels/placement.ts); default
   * true. Tests and the bench set false to compare; `WEBGPU_MLP_TAIL=0` turns it off with the tail.
   */
  fuseGather?: boolean;
  /**
   * Whether layer 1's products may read the batch straight from the dataset's images where
   * placement can (src/kernels/placement.ts, `PlacementOptions.images`); default true. Tests and
   * the bench set false to compare; `WEBGPU_MLP_TEXTURES=0` turns it off with the textures.
   */
  fuseImages?: boolean;
  /** Throws if the device was lost or an uncaptured validation/OOM error has occurred (the first one seen, on every later call too). */
  check(): void;
  /** Release the device. */
  destroy(): void;
}

/** Options for {@link acquireGpu}. */
export interface AcquireOptions {
  /** Ask for the adapter's maximum storage-binding and buffer sizes (default true). */
  maxLimits?: boolean;
  /** Enable the timestamp-query feature when the adapter has it (default false). */
  timestamps?: boolean;
}

const NO_ADAPTER =
  "no WebGPU adapter found: install a GPU driver, or Mesa for software rendering " +
  "(Debian/Ubuntu: `apt-get install -y libegl-mesa0 mesa-vulkan-drivers`), then retry";

let shared: Promise<Gpu> | null = null;

/**
 * Get the process-wide GPU device, creating it on first use. Tests and the CLI share one device:
 * creating devices is slow on software adapters.
 *
 * @example Print the adapter the process uses
 * ```ts
 * import { getGpu } from "@webgpu-mlp/core";
 *
 * const gpu = await getGpu();
 * console.log(gpu.adapter.description, gpu.limits.maxStorageBufferBindingSize);
 * ```
 */
export function getGpu(options: AcquireOptions = {}): Promise<Gpu> {
  if (!shared) {
    let acquired: Gpu | null = null;
    shared = acquireGpu(options).then((gpu) => acquired = gpu);
    // Release the device before the process tears down: test processes that exited holding
    // their devices (one per test module) aborted now and then in the driver's exit handlers
    // ("double free or corruption") after every test had passed.
    globalThis.addEventListener("unload", () => {
      try {
        acquired?.destroy();
      } catch {
        // already lost or destroyed
      }
    });
  }
  return shared;
}

/**
 * The value of an override variable among `allowed` (unset or empty: undefined); anything else is
 * a {@link UserError} naming the variable and the values it takes.
 */
export function envChoice<T extends string>(
  name: string,
  allowed: readonly T[],
  value: string | undefined = envValue(name),
): T | undefined {
  if (value === undefined || value === "") return undefined;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UserError(
    `${name}=${clip(JSON.stringify(value), 40)} is not one of ${
      allowed.join(", ")
    } (unset it for the adapter's default)`,
  );
}

/** The overrides {@link adapterChoices} reads (default: the environment's). */
export interface AdapterOverrides {
  /** `WEBGPU_MLP_TEXTURES`: `0` or `1` (unset: the adapter decides). */
  textures?: string;
  /** `WEBGPU_MLP_KERNELS`: `cpu` or `gpu` (unset: the adapter decides). */
  kernels?: string;
}

/**
 * What an adapter described as `description` gets: textures for layer 1's products and the
 * `cpu` kernel profile on CPU rasterisers, buffers and the `gpu` profile elsewhere, each unless
 * its override says otherwise. A bad override value is a {@link UserError}.
 */
export function adapterChoices(
  description: string,
  overrides: AdapterOverrides = {
    textures: envValue("WEBGPU_MLP_TEXTURES"),
    kernels: envValue("WEBGPU_MLP_KERNELS"),
  },
): { prefersTextures: boolean; kernelProfile: KernelProfile } {
  const textures = envChoice("WEBGPU_MLP_TEXTURES", ["0", "1"], overrides.textures);
  const kernels = envChoice("WEBGPU_MLP_KERNELS", ["cpu", "gpu"], overrides.kernels);
  const cpu = CPU_ADAPTER.test(description);
  return {
    prefersTextures: textures === undefined ? cpu : textures === "1",
    kernelProfile: kernels ?? (cpu ? "cpu" : "gpu"),
  };
}

/**
 * Whether training steps fuse their top layers into one tail dispatch where it fits
 * (`src/kernels/tail.ts`): yes unless `override` (default `WEBGPU_MLP_TAIL`) is `0`; `1` or unset
 * keeps it, anything else is a {@link UserError}. The tail saves 2 dispatches a step (5 with two
 * layers), which is what bounds a small net's step on a GPU; on llvmpipe its workgroup per model
 * ran 4–11 % slower than the products it replaces (see the README), so there `0` is faster. The
 * results are the same bits either way.
 *
 * @example Train without the tail
 * ```sh
 * WEBGPU_MLP_TAIL=0 deno task train --config experiments/cyclic-1.json
 * ```
 */
export function tailChoice(override: string | undefined = envValue("WEBGPU_MLP_TAIL")): boolean {
  return envChoice("WEBGPU_MLP_TAIL", ["0", "1"], override) !== "0";
}

/**
 * How kernels read rgba32float texture operands: `storage`, bound as read-only storage textures
 * (`texture_storage_2d<rgba32float, read>`), or `sampled`, bound as sampled textures
 * (`texture_2d<f32>`); `textureLoad` either way, the same values to the bit. Measured on
 * 2026-12-02: on Mesa's llvmpipe (over GL and as lavapipe) a storage-texture load costs about half
 * a sampled one, and layer 1's forward product ran 1.6–1.9× faster, its weight gradient 1.5–1.7×;
 * on SwiftShader storage reads were 1.3× slower.
 */
export type TextureReads = "storage" | "sampled";

/** The WGSL language feature that allows read-only storage textures. */
export const READONLY_STORAGE_TEXTURES = "readonly_and_readwrite_storage_textures";

/** Adapters whose texture operands are read as storage textures by default (measured faster). */
const STORAGE_READS_ADAPTER = /llvmpipe|lavapipe/i;

/**
 * How an adapter described as `description` reads texture operands: `storage` on llvmpipe and
 * lavapipe where WGSL has {@link READONLY_STORAGE_TEXTURES} (in `features`), `sampled` elsewhere
 * (SwiftShader, where they measured slower, and every other adapter until measured).
 * `WEBGPU_MLP_TEXTURE_READS=storage|sampled` (`override`) decides instead; `storage` without the
 * feature, or any other value, is a {@link UserError}.
 */
export function textureReads(
  description: string,
  override: string | undefined = envValue("WEBGPU_MLP_TEXTURE_READS"),
  features: ReadonlySet<string> = wgslLanguageFeatures(),
): TextureReads {
  const choice = envChoice("WEBGPU_MLP_TEXTURE_READS", ["storage", "sampled"], override);
  const available = features.has(READONLY_STORAGE_TEXTURES);
  if (choice === "storage" && !available) {
    throw new UserError(
      `WEBGPU_MLP_TEXTURE_READS=storage: this WebGPU's WGSL lacks ${READONLY_STORAGE_TEXTURES} ` +
        "(unset it, or set it to sampled)",
    );
  }
  return choice ?? (available && STORAGE_READS_ADAPTER.test(description) ? "storage" : "sampled");
}

const deviceReads = new WeakMap<GPUDevice, TextureReads>();

/**
 * How kernels built on `device` read texture operands: the {@link Gpu.textureReads} of the
 * {@link acquireGpu} that created it, `sampled` for a device made elsewhere. Kernel builders read
 * this; a texture without `STORAGE_BINDING` usage is read sampled whatever it says.
 */
export function textureReadsOf(device: GPUDevice): TextureReads {
  return deviceReads.get(device) ?? "sampled";
}

/**
 * Whether a kernel binds `texture` as a read-only storage texture: when it reads textures so
 * (`reads`) and the texture allows it (`STORAGE_BINDING` usage); otherwise it samples it.
 */
export function readsAsStorage(reads: TextureReads, texture: GPUTexture | null): boolean {
  return reads === "storage" && !!texture &&
    (texture.usage & GPUTextureUsage.STORAGE_BINDING) !== 0;
}

/** The WGSL language features of this process's WebGPU (`navigator.gpu.wgslLanguageFeatures`). */
export function wgslLanguageFeatures(): ReadonlySet<string> {
  const gpu = (navigator as { gpu?: { wgslLanguageFeatures?: ReadonlySet<string> } }).gpu;
  return gpu?.wgslLanguageFeatures ?? new Set();
}

function envValue(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no env permission
  }
}

/**
 * Mesa's EGL prints "error: XDG_RUNTIME_DIR is invalid" on stderr when the variable is unset
 * (containers, CI), which reads like a failure of ours. Give it a private directory first.
 */
function quietMesa(): void {
  if (Deno.build.os !== "linux") return;
  try {
    if (Deno.env.get("XDG_RUNTIME_DIR")) return;
    const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/webgpu-mlp-runtime-${Deno.uid() ?? 0}`;
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch {
    // no env or write permission: Mesa only warns
  }
}

/** Request an adapter and a device with the limits this project needs. */
export async function acquireGpu(options: AcquireOptions = {}): Promise<Gpu> {
  quietMesa();
  adapterChoices(""); // a bad override fails before an adapter is requested
  if (!("gpu" in navigator) || !navigator.gpu) throw new UserError(NO_ADAPTER);
  textureReads(""); // likewise (after the check above: no WebGPU at all says so first)
  const fuseTail = tailChoice();
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new UserError(NO_ADAPTER);
  const info = adapter.info;
  const summary: AdapterSummary = {
    vendor: String(info.vendor ?? ""),
    architecture: String(info.architecture ?? ""),
    device: String(info.device ?? ""),
    description: String(info.description ?? ""),
  };
  const a = adapter.limits;
  const requiredLimits: Record<string, number> = {};
  if (options.maxLimits !== false) {
    requiredLimits.maxStorageBufferBindingSize = a.maxStorageBufferBindingSize;
    requiredLimits.maxBufferSize = a.maxBufferSize;
    // a tail that carries the gather binds up to 14 (src/kernels/tail.ts); SwiftShader has 10
    requiredLimits.maxStorageBuffersPerShaderStage = Math.min(
      a.maxStorageBuffersPerShaderStage,
      16,
    );
    requiredLimits.maxComputeWorkgroupsPerDimension = a.maxComputeWorkgroupsPerDimension;
    requiredLimits.maxComputeInvocationsPerWorkgroup = a.maxComputeInvocationsPerWorkgroup;
    requiredLimits.maxComputeWorkgroupSizeX = a.maxComputeWorkgroupSizeX;
    requiredLimits.maxComputeWorkgroupStorageSize = a.maxComputeWorkgroupStorageSize;
    requiredLimits.maxDynamicUniformBuffersPerPipelineLayout =
      a.maxDynamicUniformBuffersPerPipelineLayout;
  }
  const requiredFeatures: GPUFeatureName[] = [];
  const timestamps = !!options.timestamps && adapter.features.has("timestamp-query");
  if (timestamps) requiredFeatures.push("timestamp-query");
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  } catch (e) {
    throw new UserError(`the WebGPU adapter (${summary.description}) refused a device: ${e}`);
  }
  let failure: string | null = null;
  device.addEventListener("uncapturederror", (ev: Event) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    failure ??= `GPU error: ${
      err.message.split("\n").filter((l) => l.trim()).slice(0, 6).join(" | ")
    }`;
  });
  let destroyed = false;
  device.lost.then((info) => {
    if (!destroyed) failure ??= `GPU device lost (${info.reason}): ${info.message}`;
  });
  const { prefersTextures, kernelProfile } = adapterChoices(summary.description);
  const reads = textureReads(summary.description);
  deviceReads.set(device, reads);
  return {
    device,
    adapter: summary,
    limits: device.limits,
    timestamps,
    prefersTextures,
    textureReads: reads,
    kernelProfile,
    fuseTail,
    check() {
      if (failure) throw new Error(failure);
    },
    destroy() {
      destroyed = true;
      device.destroy();
    },
  };
}
