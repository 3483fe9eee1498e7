/**
 * What a run records about where it ran.
 *
 * @module
 */

import type { Gpu } from "./gpu/device.ts";
import type { EnvInfo } from "./train/metrics.ts";
import denoJson from "../deno.json" with { type: "json" };

/** This project's version, from deno.json. */
export const VERSION: string = denoJson.version;

/** Adapter, Deno and platform facts for metrics files. */
export function envInfo(gpu: Gpu): EnvInfo {
  return {
    adapter: gpu.adapter,
    deno: { deno: Deno.version.deno, v8: Deno.version.v8, typescript: Deno.version.typescript },
    os: Deno.build.os,
    arch: Deno.build.arch,
    version: VERSION,
  };
}
