/**
 * The bench's probes (shaders/probe.wgsl, bench/probes.ts) on small sizes: the FMA probe and each
 * load probe (sampled texture, read-only storage texture where WGSL has them, buffer, workgroup
 * memory, uniform buffer; with and without loads) write exactly what the CPU computes for every
 * invocation. No timing is asserted.
 */

import assert from "node:assert/strict";
import { runOps, workgroupSize } from "../src/kernels/op.ts";
import { READONLY_STORAGE_TEXTURES, wgslLanguageFeatures } from "../src/gpu/device.ts";
import {
  checkProbe,
  fmaExpected,
  LOAD_MEMORIES,
  loadExpected,
  PROBE_WG,
  ProbeResources,
} from "../bench/probes.ts";
import { gpuDevice } from "./helpers.ts";

for (const nacc of [8, 16, 32]) {
  Deno.test(`probe: fma_peak with ${nacc} accumulators matches the CPU`, async () => {
    const device = await gpuDevice();
    const r = new ProbeResources(device, 4);
    try {
      for (const iters of [0, 1, 7]) {
        const spec = { workgroups: 3, iters, nacc };
        const op = r.fmaOp(spec);
        assert.deepEqual(op.workgroupSize, [PROBE_WG, 1, 1]);
        assert.equal(op.cost.flops, 3 * PROBE_WG * iters * 4 * nacc * 8);
        await runOps(device, [op]);
        const c = await checkProbe(r, 3 * PROBE_WG, (g) => fmaExpected(spec, g));
        assert.ok(c.ok, `iters ${iters}: max rel. err ${c.maxRelErr}`);
        assert.equal(c.checked, 3 * PROBE_WG);
        assert.equal(c.maxRelErr, 0);
        // the check sees every iteration: one more would not match
        const off = await checkProbe(
          r,
          3 * PROBE_WG,
          (g) => fmaExpected({ ...spec, iters: iters + 1 }, g),
        );
        assert.ok(!off.ok);
      }
    } finally {
      r.destroy();
    }
  });
}

const memories = LOAD_MEMORIES.filter((m) =>
  m !== "storage-texture" || wgslLanguageFeatures().has(READONLY_STORAGE_TEXTURES)
);
for (const memory of memories) {
  for (const baseline of [false, true]) {
    Deno.test(`probe: load_probe ${memory}${baseline ? " baseline" : ""} matches the CPU`, async () => {
      const device = await gpuDevice();
      const r = new ProbeResources(device, 4);
      try {
        for (const iters of [1, 5, 33]) {
          const spec = { memory, baseline, workgroups: 4, iters };
          const op = r.loadOp(spec);
          assert.equal(op.cost.flops, 4 * 4 * PROBE_WG * iters * 4);
          await runOps(device, [op]);
          const c = await checkProbe(r, 4 * PROBE_WG, (g) => loadExpected(spec, g));
          assert.ok(c.ok, `iters ${iters}: max rel. err ${c.maxRelErr}`);
          assert.equal(c.maxRelErr, 0);
          const off = await checkProbe(
            r,
            4 * PROBE_WG,
            (g) => loadExpected({ ...spec, iters: iters - 1 }, g),
          );
          assert.ok(!off.ok, "one load fewer would not match");
        }
      } finally {
        r.destroy();
      }
    });
  }
}

Deno.test("Op.workgroupSize is the variant's @workgroup_size, from its constants or defaults", () => {
  assert.deepEqual(workgroupSize("matmul", "matmul_tn", { WG: 32, TM: 8 }), [32, 1, 1]);
  assert.deepEqual(workgroupSize("matmul", "matmul_nn"), [8, 1, 1]);
  assert.deepEqual(workgroupSize("gather", "gather"), [192, 1, 1]);
  assert.deepEqual(workgroupSize("probe", "load_probe", { WG: 16 }), [16, 1, 1]);
  assert.throws(() => workgroupSize("probe", "no_such_entry"), /no @workgroup_size on fn/);
});
