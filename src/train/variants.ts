/**
 * Several runs from one config (`variants`): each variant overrides some keys and becomes a run
 * directory <out>/<name>/<variant>/; variants that differ only in λ and initialisation (init,
 * σ) train together as one population. A comparison report of all of them goes to
 * <out>/<name>/report.html — the view of the batch-norm and initialisation-sensitivity studies.
 *
 * @module
 */

import { join } from "node:path";
import { bnLayers, type Config, variantConfig } from "../config.ts";
import { initParams } from "../model/init.ts";
import { writeReport } from "../report/mod.ts";
import type { RunMetrics } from "./metrics.ts";
import { formatDuration, formatPopulation } from "./progress.ts";
import { UserError } from "../errors.ts";
import { readJsonIfExists } from "../io/json.ts";
import { parseRecord, RUN_FORMAT } from "../io/records.ts";
import { acquireLock } from "../io/lock.ts";
import {
  entryKind,
  markOwned,
  ownedKind,
  readMarker,
  removeOwned,
  removeTemporaries,
  replaceProblem,
} from "../io/owned.ts";
import { checkOutDir, preflight } from "./preflight.ts";
import { checkSnapshotData, readSnapshot, writeSnapshot } from "./snapshot.ts";
import { ProgressLog } from "./live.ts";
import {
  appendPoint,
  configHash,
  PARTIAL_SUFFIX,
  populationSpec,
  prepareData,
  type PreparedData,
  progressHeader,
  removeLeftovers,
  runMetrics,
  type RunOptions,
  writeRunDir,
} from "./run.ts";
import { trainDataOf, trainPopulation } from "./trainer.ts";

/** Variants that can share a population: everything but name, λ, init and σ is equal. */
export function groupVariants(configs: Config[]): Config[][] {
  const groups = new Map<string, Config[]>();
  for (const c of configs) {
    const key = JSON.stringify({
      ...c,
      name: "",
      model: { ...c.model, init: "", sigma: 0 },
      train: { ...c.train, lambda: 0 },
    });
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  return [...groups.values()];
}

/** Train every variant of `cfg` and write their run directories and a comparison report. */
export async function runVariants(
  cfg: Config,
  options: RunOptions = {},
): Promise<{ dir: string; runs: RunMetrics[]; interrupted: boolean }> {
  const log = options.log ?? ((l: string) => console.log(l));
  const dir = join(cfg.out, cfg.name);
  const configs = cfg.variants!.map((_, i) => variantConfig(cfg, i));
  const groups = groupVariants(configs);
  const hash = await configHash(cfg);
  await checkOutDir(cfg.out);
  checkVariantsDir(dir, hash, configs, !!options.overwrite);
  const { maxModels } = await preflight(cfg, configs, Math.max(...groups.map((g) => g.length)));
  const lock = await acquireLock(`${dir}.lock`, `training ${dir}`);
  try {
    const resuming = checkVariantsDir(dir, hash, configs, !!options.overwrite);
    if (!resuming && entryKind(dir) !== "none") {
      await removeOwned(dir, "variants", "use --name NEW");
    }
    await markOwned(dir, "variants", hash);
    // what a kill left: temporaries of the population snapshots, half-committed variant runs
    await removeTemporaries(dir, null);
    for (const c of configs) await removeLeftovers(join(dir, c.name), "");
    return await trainVariants(cfg, dir, configs, split(groups, maxModels, log), options, log);
  } finally {
    await lock.release();
  }
}

/** Groups of at most `max` models (a population that does not fit the adapter is split). */
function split(groups: Config[][], max: number, log: (l: string) => void): Config[][] {
  const out: Config[][] = [];
  for (const g of groups) {
    if (g.length > max) {
      log(
        `${
          g.map((c) => c.name).join(" + ")
        }: ${g.length} models do not fit one population on this ` +
          `adapter (at most ${max}): training populations of ${max}`,
      );
    }
    for (let i = 0; i < g.length; i += max) out.push(g.slice(i, i + max));
  }
  return out;
}

/**
 * Check the variants directory: false when it is new (or to be replaced with --overwrite), true
 * when it holds an unfinished set of the same config, to resume; otherwise a one-line error.
 */
function checkVariantsDir(
  dir: string,
  hash: string,
  configs: Config[],
  overwrite: boolean,
): boolean {
  const kind = entryKind(dir);
  if (kind === "none") return false;
  const marker = readMarker(dir);
  const done = configs.every((c) => isRun(join(dir, c.name)));
  if (
    kind === "dir" && marker?.kind === "variants" && marker.config === hash && !done && !overwrite
  ) {
    return true;
  }
  if (!overwrite) {
    throw new UserError(
      `${dir} already exists` +
        (marker?.kind === "variants" && marker.config !== hash ? " (a different config)" : "") +
        `: pass --overwrite to replace it, or --name NEW`,
    );
  }
  const problem = replaceProblem(dir, "variants");
  if (problem) throw new UserError(`${problem}: use --name NEW`);
  return false;
}

function isRun(dir: string): boolean {
  return entryKind(dir) === "dir" && ownedKind(dir) === "run";
}

async function trainVariants(
  cfg: Config,
  dir: string,
  configs: Config[],
  groups: Config[][],
  options: RunOptions,
  log: (l: string) => void,
): Promise<{ dir: string; runs: RunMetrics[]; interrupted: boolean }> {
  log(
    `${cfg.name}: ${configs.length} variants in ${groups.length} population${
      groups.length > 1 ? "s" : ""
    }: ` +
      groups.map((g) => g.map((c) => c.name).join(" + ")).join(" | "),
  );
  const t0 = performance.now();
  const dataCache = new Map<string, PreparedData>();
  const runs: RunMetrics[] = [];
  let interrupted = false;
  for (const [gi, group] of groups.entries()) {
    const names = group.map((c) => c.name);
    // a run committed just before a kill may have left its progress log: it goes
    for (const c of group) {
      const partial = join(dir, c.name) + PARTIAL_SUFFIX;
      if (isRun(join(dir, c.name)) && ownedKind(partial) === "partial") {
        await removeOwned(partial, "partial", "remove it by hand");
      }
    }
    if (group.every((c) => isRun(join(dir, c.name)))) {
      for (const c of group) {
        const m = readJsonIfExists(
          join(dir, c.name, "metrics.json"),
          (value, source) => parseRecord(RUN_FORMAT, value, source),
        );
        if (m) runs.push(m);
      }
      log(`${names.join(" + ")}: already trained`);
      continue;
    }
    const first = group[0];
    const dataKey = JSON.stringify(first.data);
    let data = dataCache.get(dataKey);
    if (!data) dataCache.set(dataKey, data = await prepareData(first));
    const lambdas = group.map((c) => c.train.lambda);
    const spec = populationSpec(first, data.cifar.train.n, lambdas, group.map((c) => c.seed));
    const initial = group.map((c) =>
      initParams(spec.sizes, c.model.init, c.model.sigma, c.seed, bnLayers(c))
    );
    const snapshotFile = join(dir, `.snapshot-${gi}.safetensors`);
    const snapHash = await configHash(cfg, names);
    const hint = `pass --restart to train this population afresh`;
    const stored = options.restart ? null : await readSnapshot(snapshotFile, hint);
    if (stored && stored.hash !== snapHash) {
      throw new UserError(`${snapshotFile} holds a snapshot of other variants: ${hint}`);
    }
    checkSnapshotData(snapshotFile, stored?.snapshot, data.fingerprint);
    if (stored) log(`${names.join("+")}: resuming at step ${stored.snapshot.step}`);
    const startedAt = new Date(), tg = performance.now();
    // each variant's progress log, in its in-progress directory, for deno task serve
    const logs: ProgressLog[] = [];
    for (const [z, c] of group.entries()) {
      const partial = join(dir, c.name) + PARTIAL_SUFFIX;
      if (entryKind(partial) === "none") await markOwned(partial, "partial", snapHash);
      else if (replaceProblem(partial, "partial") !== null) {
        throw new UserError(
          `${partial} is in the way of variant ${c.name}'s progress log and was not written by this tool: move it away`,
        );
      }
      const header = progressHeader(c, data, spec, z, startedAt);
      logs.push(await ProgressLog.open(partial, header, stored?.snapshot.models[z].curves));
    }
    const result = await trainPopulation(
      data.gpu,
      trainDataOf(data.dataset),
      spec,
      {
        initial,
        signal: options.signal,
        resume: stored?.snapshot,
        onSnapshot: (snap) =>
          writeSnapshot(snapshotFile, snapHash, { ...snap, data: data.fingerprint }),
        snapshotSeconds: options.snapshotSeconds,
        onEval: (p) => {
          log(formatPopulation(names.join("+"), p, lambdas));
          logs.forEach((l, z) => appendPoint(l, p, z));
        },
      },
    ).finally(() => logs.forEach((l) => l.close()));
    if (result.interrupted) {
      interrupted = true;
      log(
        `${cfg.name}: interrupted at step ${result.steps}/${result.totalSteps} of ${
          names.join(" + ")
        }; ` +
          `run the same command to resume`,
      );
      break;
    }
    for (let z = 0; z < group.length; z++) {
      const c = group[z];
      const metrics = runMetrics(c, data, spec, result, startedAt, tg, z);
      await writeRunDir(join(dir, c.name), metrics, result, data.stats, c, {
        z,
        report: options.report !== false,
      });
      await removeOwned(join(dir, c.name) + PARTIAL_SUFFIX, "partial", "remove it by hand");
      runs.push(metrics);
      const m = result.models[z];
      log(
        `${c.name}: ` +
          (m.diverged
            ? `diverged at step ${m.diverged.step}`
            : `val accuracy ${(100 * (m.final?.val?.accuracy ?? NaN)).toFixed(2)}%` +
              (m.test ? `, test accuracy ${(100 * m.test.accuracy).toFixed(2)}%` : "")),
      );
    }
    await Deno.remove(snapshotFile).catch(() => {});
  }
  for (const d of dataCache.values()) d.dataset.destroy();
  if (interrupted) return { dir, runs, interrupted };
  if (options.report !== false) {
    await writeReport(configs.map((c) => join(dir, c.name)).filter((d) => isRun(d)), {
      out: join(dir, "report.html"),
    });
  }
  log(
    `${cfg.name}: ${runs.length} runs in ${
      formatDuration((performance.now() - t0) / 1000)
    } → ${dir}`,
  );
  return { dir, runs, interrupted };
}
