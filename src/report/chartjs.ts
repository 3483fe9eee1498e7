/**
 * Locate and read chart.js's UMD build from the npm package (node_modules), to inline it into
 * report pages. The bare specifier `chart.js` is mapped in deno.json; Deno installs it into
 * `node_modules/` on the first run that sees the (never executed) dynamic import below.
 *
 * @module
 */

import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { UserError } from "../errors.ts";

/** The inlinable chart.js build and where it came from. */
export interface ChartJsSource {
  /** The UMD script (defines the global `Chart`). */
  source: string;
  /** Package version from its package.json (empty if unreadable). */
  version: string;
  /** Absolute path of the file read. */
  path: string;
}

/**
 * Never called: keeps `chart.js` in Deno's module graph, so that `deno run`/`deno test` with
 * `"nodeModulesDir": "auto"` install the package into node_modules before the report reads it.
 */
export const keepChartJsInstalled = (): Promise<unknown> => import("chart.js");

const UMD_FILES = ["chart.umd.min.js", "chart.umd.js"];

/** Directories that may hold the package's `dist/` files, most specific first. */
function candidateDistDirs(): string[] {
  const dirs: string[] = [];
  try {
    const url = import.meta.resolve("chart.js");
    if (url.startsWith("file:")) {
      const dir = dirname(fromFileUrl(url));
      dirs.push(dir, join(dir, "dist"));
    }
  } catch { /* not resolvable this way */ }
  if (import.meta.url.startsWith("file:")) {
    try {
      const require = createRequire(import.meta.url);
      dirs.push(dirname(require.resolve("chart.js")));
    } catch { /* not installed where Node resolution looks */ }
  }
  const roots = [Deno.cwd()];
  if (import.meta.url.startsWith("file:")) roots.push(dirname(fromFileUrl(import.meta.url)));
  for (const root of roots) {
    let dir = resolve(root);
    for (;;) {
      dirs.push(join(dir, "node_modules", "chart.js", "dist"));
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  return dirs;
}

let cached: ChartJsSource | undefined;

/**
 * Read chart.js's UMD build (cached after the first call). Throws a `UserError` telling the user to
 * run `deno install` when the package is not in node_modules.
 */
export function loadChartJs(): ChartJsSource {
  if (cached) return cached;
  for (const dir of candidateDistDirs()) {
    for (const file of UMD_FILES) {
      const path = join(dir, file);
      let source: string;
      try {
        source = Deno.readTextFileSync(path);
      } catch {
        continue;
      }
      if (!source.includes("Chart")) continue;
      let version = "";
      try {
        version = JSON.parse(Deno.readTextFileSync(join(dir, "..", "package.json"))).version ?? "";
      } catch { /* version is informational only */ }
      cached = { source, version, path };
      return cached;
    }
  }
  throw new UserError(
    "chart.js not found in node_modules (needed to inline it into the report): run `deno install`",
  );
}
