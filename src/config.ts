/**
 * The experiment config: one schema that knows every key, its type, bounds and default. A bad
 * config gets one line naming the key and what is allowed.
 *
 * This module reads and validates configs; the schema is in `config/schema.ts`, the public types
 * in `config/types.ts` and the error messages in `config/messages.ts`, all re-exported here.
 *
 * @module
 */

import type { z } from "zod";
import { basename } from "node:path";
import { clip, shown, UserError } from "./errors.ts";
import { checkName } from "./io/names.ts";
import { describeIssue } from "./config/messages.ts";
import { configSchema, type scheduleSchema } from "./config/schema.ts";
import type { Config, ConfigOverrides, SpaceDim } from "./config/types.ts";
import { dimProblem, spaceDims, spaceProblem } from "./sweep/space.ts";
import { configValue, stageConfig } from "./sweep/hyper.ts";
import { configSteps, rungsProblem } from "./train/halving.ts";
import { pbtStageProblem } from "./sweep/pbt.ts";

export { configSchema, SPACE_DIMS, spaceSchema } from "./config/schema.ts";
export type {
  AroundDim,
  AroundDims,
  AroundSpace,
  AugmentConfig,
  Config,
  ConfigOverrides,
  DataConfig,
  DimSpec,
  FinalConfig,
  GridSpace,
  HalvingConfig,
  ListSpace,
  LogUniformSpace,
  ModelConfig,
  OptimizerConfig,
  PbtConfig,
  RandomSpace,
  SearchConfig,
  SpaceConfig,
  SpaceDim,
  SpaceDims,
  StageConfig,
  TrainConfig,
  TrainOverride,
  ValConfig,
  VariantConfig,
} from "./config/types.ts";

const FLAG_PATHS: Record<keyof ConfigOverrides, string[]> = {
  name: ["name"],
  seed: ["seed"],
  lambda: ["train", "lambda"],
  out: ["out"],
  data: ["data", "dir"],
};

/** The largest config file read, in bytes (the presets are about 1 KiB). */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** The deepest nesting of arrays and objects a config file may have (the schema needs 5). */
export const MAX_CONFIG_DEPTH = 64;

/** What a path is, for a message about a path that is not a regular file. */
function fileKind(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a named pipe";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

/** Read at most `limit` + 1 bytes of `path` (a file that grows past the limit is caught too). */
async function readAtMost(path: string, limit: number): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(limit + 1);
  let n = 0;
  while (n < buf.length) {
    const got = await file.read(buf.subarray(n));
    if (got === null) break;
    n += got;
  }
  return buf.subarray(0, n);
}

/** The deepest nesting of `[` and `{` outside strings (counted without recursion). */
function jsonDepth(text: string, stopAbove: number): number {
  let depth = 0, max = 0, inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
      if (max > stopAbove) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * Read, override and validate a config file. Every problem is a one-line {@link UserError}: a
 * path that is not a regular file (a directory, a device such as /dev/zero, a named pipe), a file
 * over {@link MAX_CONFIG_BYTES}, malformed JSON, nesting deeper than {@link MAX_CONFIG_DEPTH}, a
 * top level that is not an object, and every key the schema refuses.
 *
 * @example Load a preset, overriding λ and the output directory
 * ```ts
 * import { loadConfig } from "@webgpu-mlp/core";
 *
 * const cfg = await loadConfig("experiments/cyclic-1.json", { lambda: 0.01, out: "scratch" });
 * console.log(cfg.name, cfg.train.lambda); // "cyclic-1" 0.01
 * ```
 */
export async function loadConfig(path: string, overrides: ConfigOverrides = {}): Promise<Config> {
  const cannotRead = (e: unknown) =>
    e instanceof Deno.errors.NotFound
      ? new UserError(`config ${path} not found`)
      : new UserError(`config ${path} cannot be read: ${clip(String((e as Error).message), 120)}`);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw cannotRead(e);
  }
  if (!info.isFile) {
    throw new UserError(
      `config ${path} is ${fileKind(info)}, not a regular file: give the path of a JSON file`,
    );
  }
  const limit = `${MAX_CONFIG_BYTES / 1024 / 1024} MiB`;
  const tooBig = (size: string) =>
    new UserError(
      `config ${path} is ${size}, more than the ${limit} a config may have: is it the right file?`,
    );
  if (info.size > MAX_CONFIG_BYTES) throw tooBig(`${info.size} bytes`);
  let bytes: Uint8Array;
  try {
    bytes = await readAtMost(path, MAX_CONFIG_BYTES);
  } catch (e) {
    throw cannotRead(e);
  }
  if (bytes.length > MAX_CONFIG_BYTES) throw tooBig("larger than it was a moment ago");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UserError(`config ${path} is not UTF-8 text: give the path of a JSON file`);
  }
  if (jsonDepth(text, MAX_CONFIG_DEPTH) > MAX_CONFIG_DEPTH) {
    throw new UserError(
      `config ${path} nests arrays and objects deeper than ${MAX_CONFIG_DEPTH} levels: ` +
        `a config needs only a few`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const why = e instanceof RangeError ? "too deeply nested" : String((e as Error).message);
    throw new UserError(`config ${path} is not valid JSON: ${clip(why, 120)}`);
  }
  const fallbackName = basename(path).replace(/\.json$/i, "");
  return parseConfig(raw, path, overrides, fallbackName);
}

/** Validate a config value (already parsed JSON); `source` names it in messages. */
export function parseConfig(
  raw: unknown,
  source: string,
  overrides: ConfigOverrides = {},
  fallbackName = "run",
): Config {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    const got = Array.isArray(raw) ? "an array" : raw === null ? "null" : `a ${typeof raw}`;
    throw new UserError(`config ${source} must be a JSON object ({ … }), got ${got}`);
  }
  const value = structuredClone(raw) as Record<string, unknown>;
  const fromFlag = new Map<string, string>();
  for (const [flag, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    const p = FLAG_PATHS[flag as keyof ConfigOverrides];
    setPath(value, p, v);
    fromFlag.set(p.join("."), `--${flag}`);
  }
  const r = configSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new UserError(`config ${source}: ${describeIssue(issue, value, fromFlag)}`);
  }
  const cfg = { ...r.data, name: r.data.name ?? fallbackName } as Config;
  fillGridScale(cfg);
  if (r.data.name === undefined) {
    checkName(
      cfg.name,
      `config ${source}: the run name taken from the file name,`,
      `give the config a "name", or pass --name NAME`,
    );
  } else {
    checkName(
      cfg.name,
      `config ${source}: ${fromFlag.get("name") ?? "name"}`,
      `choose another name`,
    );
  }
  checkSemantics(cfg, source);
  return cfg;
}

function checkSemantics(cfg: Config, source: string): void {
  const train = cfg.data.train;
  if (new Set(train).size !== train.length) {
    throw new UserError(`config ${source}: data.train lists a batch twice (${train.join(", ")})`);
  }
  const val = cfg.data.val;
  if (val) {
    if ((val.batch === undefined) === (val.holdout === undefined)) {
      throw new UserError(
        `config ${source}: data.val needs exactly one of "batch" (1-5) or "holdout" (samples)`,
      );
    }
    if (val.batch !== undefined && train.includes(val.batch)) {
      throw new UserError(
        `config ${source}: data.val.batch ${val.batch} is also a training batch: pick another`,
      );
    }
  }
  const schedules: [string, z.infer<typeof scheduleSchema> | undefined][] = [
    ["train.schedule", cfg.train.schedule],
    ...(cfg.search?.stages ?? []).map((st, i) =>
      [`search.stages.${i}.train.schedule`, st.train?.schedule] as [
        string,
        z.infer<typeof scheduleSchema> | undefined,
      ]
    ),
    ["search.final.train.schedule", cfg.search?.final?.train?.schedule],
  ];
  for (const [at, s] of schedules) {
    if (s?.kind === "cyclic" && s.etaMin > s.etaMax) {
      throw new UserError(
        `config ${source}: ${at}.etaMin (${s.etaMin}) is larger than etaMax (${s.etaMax})`,
      );
    }
  }
  if (cfg.search) checkSearch(cfg, source);
  if (cfg.search && cfg.variants) {
    throw new UserError(
      `config ${source}: give "search" (a λ sweep) or "variants" (several runs), not both`,
    );
  }
  if (cfg.variants) {
    const names = cfg.variants.map((v) => v.name);
    names.forEach((n, i) =>
      checkName(n, `config ${source}: variants.${i}.name`, "choose another variant name")
    );
    const lower = names.map((n) => n.toLowerCase());
    const dup = names.find((n, i) => lower.indexOf(n.toLowerCase()) !== i);
    if (dup) {
      throw new UserError(
        `config ${source}: variants.${names.lastIndexOf(dup)}.name "${dup}" is used twice`,
      );
    }
    cfg.variants.forEach((_, i) => variantConfig(cfg, i, source));
  }
  const hidden = cfg.model.hidden.length;
  for (const key of ["bn", "dropout"] as const) {
    const v = cfg.model[key];
    if (Array.isArray(v) && v.length !== hidden) {
      const more = v.length > hidden;
      throw new UserError(
        `config ${source}: model.${key} has ${v.length} entries for ${hidden} hidden layers: ` +
          (more && key === "bn"
            ? "batch normalisation applies to hidden layers only, not to the output layer"
            : `give one per hidden layer, or a single ${
              key === "bn" ? "true/false" : "probability"
            }`),
      );
    }
  }
}

/**
 * The full config of variant i: the base config with the variant's keys, validated like any
 * config (so an override that breaks a bound is reported at load time).
 */
export function variantConfig(cfg: Config, i: number, source = "config"): Config {
  const v = cfg.variants![i];
  const merged = {
    ...cfg,
    name: v.name,
    out: `${cfg.out}/${cfg.name}`,
    seed: v.seed ?? cfg.seed,
    model: { ...cfg.model, ...v.model },
    train: { ...cfg.train, ...v.train },
    variants: undefined,
  };
  try {
    return parseConfig(merged, `${source} (variant ${v.name})`);
  } catch (e) {
    if (e instanceof UserError) throw new UserError(e.message.replace(/^config /, ""));
    throw e;
  }
}

/** Per hidden layer: whether it has batch normalisation. */
export function bnLayers(cfg: Config): boolean[] {
  const bn = cfg.model.bn;
  return cfg.model.hidden.map((_, l) => (Array.isArray(bn) ? bn[l] : bn));
}

/** Per hidden layer: its dropout probability. */
export function dropoutLayers(cfg: Config): number[] {
  const d = cfg.model.dropout;
  return cfg.model.hidden.map((_, l) => (Array.isArray(d) ? d[l] : d));
}

function checkSearch(cfg: Config, source: string): void {
  const search = cfg.search!;
  const seen: string[] = [];
  // the dimensions each stage searches (null: those of a stage in another sweep, read later)
  const dimsOfStage = new Map<string, SpaceDim[] | null>();
  search.stages.forEach((stage, i) => {
    const at = `search.stages.${i}`;
    if (seen.includes(stage.name)) {
      throw new UserError(
        `config ${source}: ${at}.name "${stage.name}" is used by an earlier stage`,
      );
    }
    const sp = stage.space;
    if (sp.kind === "around" && sp.sweep === undefined && !seen.includes(sp.stage)) {
      throw new UserError(
        `config ${source}: ${at}.space.stage ${
          shown(sp.stage)
        } is not an earlier stage of this config` +
          (seen.length ? ` (earlier: ${seen.join(", ")})` : "") +
          `; name one, or give "sweep": "runs/<previous sweep>"`,
      );
    }
    const around = sp.kind === "around" && !sp.sweep ? dimsOfStage.get(sp.stage)! : null;
    const problem = spaceProblem(sp, stageConfig(cfg, stage), around);
    if (problem) throw new UserError(`config ${source}: ${at}.${problem}`);
    if (sp.kind === "around" && !sp.sweep && sp.dims && around) {
      // a dimension the stage around did not search is taken from what that stage trained with
      const src = stageConfig(cfg, search.stages.find((s) => s.name === sp.stage)!);
      for (const d of spaceDims(sp)!) {
        if (!around.includes(d) && configValue(src, d) === undefined) {
          throw new UserError(
            `config ${source}: ${at}.space.dims.${d}: stage ${sp.stage} neither searched ${d} ` +
              `nor trained with one (its schedule is ${src.train.schedule.kind}), so there is ` +
              `nothing to search around`,
          );
        }
      }
    }
    if (stage.halving) {
      const scfg = stageConfig(cfg, stage);
      const problem = rungsProblem(stage.halving.rungs, scfg.train.schedule, configSteps(scfg));
      if (problem) throw new UserError(`config ${source}: ${at}.${problem}`);
    }
    const pbtProblem = pbtStageProblem(stage, cfg);
    if (pbtProblem) throw new UserError(`config ${source}: ${at}.${pbtProblem}`);
    dimsOfStage.set(stage.name, spaceDims(sp) ?? around);
    seen.push(stage.name);
  });
  const last = dimsOfStage.get(search.stages.at(-1)!.name);
  const finalSchedule = search.final?.train?.schedule;
  if (finalSchedule && last) {
    for (const d of last) {
      const p = dimProblem(d, { ...cfg, train: { ...cfg.train, schedule: finalSchedule } });
      if (p) {
        throw new UserError(
          `config ${source}: search.final.train.schedule: the last stage searches ${d}, ` +
            `so the final training takes its best value, but ${p}`,
        );
      }
    }
  }
}

/** A λ grid's spacing defaults to `log` (a grid over `dims` spaces each dimension itself). */
function fillGridScale(cfg: Config): void {
  for (const stage of cfg.search?.stages ?? []) {
    const sp = stage.space;
    if (sp.kind === "grid" && !sp.dims && sp.scale === undefined) sp.scale = "log";
  }
}

function setPath(obj: Record<string, unknown>, path: string[], v: unknown): void {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof o[k] !== "object" || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[path[path.length - 1]] = v;
}
