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
import {
  checkRunDir,
  populationSpec,
  prepareData,
  type PreparedData,
  runMetrics,
  type RunOptions,
  writeRunDir,
} from "./run.ts";
import { trainPopulation } from "./trainer.ts";

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
): Promise<{ dir: string; runs: RunMetrics[] }> {
  const log = options.log ?? ((l: string) => console.log(l));
  const dir = join(cfg.out, cfg.name);
  await checkRunDir(dir, !!options.overwrite);
  const configs = cfg.variants!.map((_, i) => variantConfig(cfg, i));
  const groups = groupVariants(configs);
  log(
    `${cfg.name}: ${configs.length} variants in ${groups.length} population${
      groups.length > 1 ? "s" : ""
    }: ` +
      groups.map((g) => g.map((c) => c.name).join(" + ")).join(" | "),
  );
  const t0 = performance.now();
  const dataCache = new Map<string, PreparedData>();
  const runs: RunMetrics[] = [];
  for (const group of groups) {
    const first = group[0];
    const dataKey = JSON.stringify(first.data);
    let data = dataCache.get(dataKey);
    if (!data) dataCache.set(dataKey, data = await prepareData(first));
    const lambdas = group.map((c) => c.train.lambda);
    const spec = populationSpec(first, data.cifar.train.n, lambdas, group.map((c) => c.seed));
    const initial = group.map((c) =>
      initParams(spec.sizes, c.model.init, c.model.sigma, c.seed, bnLayers(c))
    );
    const startedAt = new Date(), tg = performance.now();
    const names = group.map((c) => c.name);
    const result = await trainPopulation(
      data.gpu,
      {
        dataset: data.dataset,
        train: data.dataset.splits.train,
        val: data.dataset.splits.val ?? null,
        test: data.dataset.splits.test ?? null,
      },
      spec,
      {
        initial,
        signal: options.signal,
        onEval: (p) => log(formatPopulation(names.join("+"), p, lambdas)),
      },
    );
    for (let z = 0; z < group.length; z++) {
      const c = group[z];
      const metrics = runMetrics(c, data, spec, result, startedAt, tg, z);
      await writeRunDir(join(dir, c.name), metrics, result, data.stats, c, z);
      if (options.report !== false) await writeReport([join(dir, c.name)]);
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
    if (result.interrupted) break;
  }
  for (const d of dataCache.values()) d.dataset.destroy();
  if (options.report !== false) {
    await writeReport(configs.map((c) => join(dir, c.name)).filter((d) => existsDir(d)), {
      out: join(dir, "report.html"),
    });
  }
  log(
    `${cfg.name}: ${runs.length} runs in ${
      formatDuration((performance.now() - t0) / 1000)
    } → ${dir}`,
  );
  return { dir, runs };
}

function existsDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}
