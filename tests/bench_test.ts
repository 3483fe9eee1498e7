/**
 * `deno task bench --quick --no-write` runs end to end on this adapter and prints its tables
 * (a smoke test: speed itself is never asserted).
 */

import assert from "node:assert/strict";

Deno.test("bench --quick runs and prints the step table", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/bench.ts", "--quick", "--no-write"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(text, /step 3072-50-10 B=100/);
  assert.match(text, /GFLOP\/s/);
});
