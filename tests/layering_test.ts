/**
 * Layering: production code never imports the float64 twins in `src/reference/` (the oracle).
 * Definitions both sides need live in `src/nn/shared.ts`.
 */

import assert from "node:assert/strict";
import { relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

const SRC = new URL("../src/", import.meta.url);
const ROOT = fromFileUrl(new URL("../", import.meta.url));

/**
 * Files allowed to import `src/reference/`: the twins themselves, and the gradient audit's CLI
 * (`deno task gradcheck`), whose whole job is to compare the GPU against the float64 oracle.
 */
const ALLOWED = ["src/reference/", "src/cli/gradcheck.ts"];

function* tsFiles(dir: URL): Generator<URL> {
  for (const e of Deno.readDirSync(dir)) {
    const u = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) yield* tsFiles(u);
    else if (e.name.endsWith(".ts")) yield u;
  }
}

/** Relative specifiers of every static import/export-from and dynamic import in `code`. */
function importSpecifiers(code: string): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(/\bfrom\s*["']([^"']+)["']|\bimport\s*\(?\s*["']([^"']+)["']/g)) {
    out.push(m[1] ?? m[2]);
  }
  return out;
}

Deno.test("layering: import scan sees static, re-export, side-effect and dynamic imports", () => {
  const code = [
    `import { a } from "../reference/a.ts";`,
    `export { b } from './b.ts';`,
    `import "./c.ts";`,
    `const d = await import("../reference/d.ts");`,
    `import type {\n  E,\n} from "./e.ts";`,
  ].join("\n");
  assert.deepEqual(importSpecifiers(code), [
    "../reference/a.ts",
    "./b.ts",
    "./c.ts",
    "../reference/d.ts",
    "./e.ts",
  ]);
});

Deno.test("layering: no production module under src/ imports src/reference/", () => {
  const offenders: string[] = [];
  let scanned = 0;
  for (const file of tsFiles(SRC)) {
    const rel = relative(ROOT, fromFileUrl(file)).replaceAll("\\", "/");
    if (ALLOWED.some((a) => a.endsWith("/") ? rel.startsWith(a) : rel === a)) continue;
    scanned++;
    for (const spec of importSpecifiers(Deno.readTextFileSync(file))) {
      if (!spec.startsWith(".")) continue;
      const target = relative(ROOT, fromFileUrl(new URL(spec, file))).replaceAll("\\", "/");
      if (target.startsWith("src/reference/")) offenders.push(`${rel} imports ${spec}`);
    }
  }
  assert.deepEqual(offenders, []);
  if (scanned < 50) throw new Error(`only ${scanned} files scanned: is src/ where it should be?`);
});
