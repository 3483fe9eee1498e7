/**
 * update.wgsl (SGD and Adam) against its float64 twin, over several consecutive steps read from
 * different step-table records (t = 1, 2, 3, 10000, 100000, each with its own η), on awkward
 * lengths and on 2-D grids (forced with small `rowGroups`, and one buffer of more than 65535·256
 * floats). GPU and twin start from the same f32 data and then evolve independently; every step
 * compares θ, m and v. Padding entries (θ = g = 0) must stay exactly 0 in θ, m and v.
 *
 * Tolerances (f32 kernel vs float64 twin; each operation rounds to ~6e-8 relative, so these leave
 * a margin of 10–20× over the few roundings a step performs):
 *   v: 1e-5·v, relative (v is a positively weighted sum of g², no cancellation);
 *   m: 1e-5·m⁺, with m⁺ = β1·m⁺ + (1−β1)·|g| the same average over |g| (m itself may cancel to 0);
 *   θ: an absolute bound, accumulated over the steps because θ's error carries over:
 *      adam: += 1e-6·|θ| + 1e-5·η·(m⁺/c1)/(√v̂ + ε);   sgd: += 1e-6·(|θ| + η·|g|).
 * β, ε and η enter the twin as their f32 roundings, the values the kernel sees.
 */

import assert from "node:assert/strict";
import { pad4, stepTable, storageBuffer, writeBuffer } from "../src/gpu/buffers.ts";
import { runOps } from "../src/kernels/op.ts";
import { UPDATE_BLOCK, updateOp } from "../src/kernels/update.ts";
import { adamRef, sgdRef } from "../src/reference/update.ts";
import { assertClose, download, gpuDevice, randomArray, Rng, upload } from "./helpers.ts";

const f32 = Math.fround;

/** Consecutive steps: the step record's 0-based `step` (t = step + 1) and η. */
const STEPS = [
  { step: 0, eta: 1e-3 },
  { step: 1, eta: 0.05 },
  { step: 2, eta: 0.3 },
  { step: 9999, eta: 2e-3 },
  { step: 99999, eta: 1e-4 },
];

/** Padding entries of a length-n buffer: the last 3 (when n > 3) and every 97th from 50. */
function paddingOf(n: number): number[] {
  const pads = new Set<number>();
  for (let i = Math.max(n - 3, 1); i < n; i++) pads.add(i);
  for (let i = 50; i < n; i += 97) pads.add(i);
  return [...pads];
}

/** Random values in [-1, 1) (a θ or a gradient) with zeros on the padding. */
function padded(rng: Rng, n: number, pads: number[]): Float32Array<ArrayBuffer> {
  const g = randomArray(rng, n);
  for (const i of pads) g[i] = 0;
  return g;
}

function assertPaddingZero(pads: number[], arrays: Record<string, Float32Array>, what: string) {
  for (const [name, a] of Object.entries(arrays)) {
    for (const i of pads) assert.ok(a[i] === 0, `${what}: padding ${name}[${i}] = ${a[i]}`);
  }
}

interface Case {
  n: number;
  rowGroups?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Steps to run (a prefix of STEPS, or a selection for the large case). */
  steps?: number[];
}

const CASES: Case[] = [
  { n: 1 },
  { n: 7 },
  { n: 33 },
  { n: 100 },
  { n: 100, beta1: 0, beta2: 0.5, eps: 1e-3 },
  { n: UPDATE_BLOCK + 1, rowGroups: 1 },
  { n: 3072 * 52 + 3 },
  { n: 3072 * 52 + 3, rowGroups: 7 },
  { n: 65535 * 256 + 5, steps: [0, 3] },
];

for (const c of CASES) {
  const grid = c.rowGroups ? ` rowGroups=${c.rowGroups}` : "";
  const betas = c.beta1 !== undefined ? ` β=(${c.beta1}, ${c.beta2}) ε=${c.eps}` : "";
  const which = (c.steps ?? STEPS.map((_, k) => k)).map((k) => ({ record: k, ...STEPS[k] }));

  Deno.test(`update adam n=${c.n}${grid}${betas} matches float64 over ${which.length} steps`, async () => {
    const device = await gpuDevice();
    const rng = new Rng(c.n * 31 + (c.rowGroups ?? 0));
    const n = c.n, pads = paddingOf(n);
    const beta1 = c.beta1 ?? 0.9, beta2 = c.beta2 ?? 0.999, eps = c.eps ?? 1e-8;
    const hyper = { beta1: f32(beta1), beta2: f32(beta2), eps: f32(eps) };
    const theta32 = padded(rng, n, pads);
    const theta = Float64Array.from(theta32), m = new Float64Array(n), v = new Float64Array(n);
    const mAbs = new Float64Array(n), tolTheta = new Float64Array(n);
    const pBuf = upload(device, theta32);
    const gBuf = storageBuffer(device, n, "grad");
    const mBuf = storageBuffer(device, n, "m"), vBuf = storageBuffer(device, n, "v");
    const steps = stepTable(device, STEPS, "steps");
    const op = updateOp(device, {
      kind: "adam",
      param: pBuf,
      grad: gBuf,
      m: mBuf,
      v: vBuf,
      n,
      beta1,
      beta2,
      eps,
      steps,
      rowGroups: c.rowGroups,
    });
    if (c.rowGroups) assert.ok(op.workgroups[1] > 1, "the case should need several grid rows");
    for (const { record, step, eta } of which) {
      const g = padded(rng, n, pads);
      writeBuffer(device, gBuf, 0, g);
      await runOps(device, [op], record);
      const t = step + 1, etaF = f32(eta);
      adamRef(theta, g, m, v, { eta: etaF, t, ...hyper });
      const c1 = 1 - Math.pow(hyper.beta1, t), c2 = 1 - Math.pow(hyper.beta2, t);
      for (let i = 0; i < n; i++) {
        mAbs[i] = hyper.beta1 * mAbs[i] + (1 - hyper.beta1) * Math.abs(g[i]);
        tolTheta[i] += 1e-6 * Math.abs(theta[i]) +
          1e-5 * etaF * (mAbs[i] / c1) / (Math.sqrt(v[i] / c2) + hyper.eps);
      }
      const what = `adam n=${n} t=${t}`;
      const [gotT, gotM, gotV] = await Promise.all(
        [pBuf, mBuf, vBuf].map((b) => download(device, b, n)),
      );
      assertClose(gotV, v, (i) => 1e-5 * v[i] + 1e-30, `${what} v`);
      assertClose(gotM, m, (i) => 1e-5 * mAbs[i] + 1e-30, `${what} m`);
      assertClose(gotT, theta, (i) => tolTheta[i] + 1e-30, `${what} θ`);
      assertPaddingZero(pads, { θ: gotT, m: gotM, v: gotV }, what);
    }
  });

  if (c.beta1 !== undefined) continue;
  Deno.test(`update sgd n=${c.n}${grid} matches float64 over ${which.length} steps`, async () => {
    const device = await gpuDevice();
    const rng = new Rng(c.n * 17 + (c.rowGroups ?? 0));
    const n = c.n, pads = paddingOf(n);
    const theta32 = padded(rng, n, pads);
    const theta = Float64Array.from(theta32), tolTheta = new Float64Array(n);
    const pBuf = upload(device, theta32);
    const gBuf = storageBuffer(device, n, "grad");
    const steps = stepTable(device, STEPS, "steps");
    const op = updateOp(device, {
      kind: "sgd",
      param: pBuf,
      grad: gBuf,
      n,
      steps,
      rowGroups: c.rowGroups,
    });
    for (const { record, step, eta } of which) {
      const g = padded(rng, n, pads);
      writeBuffer(device, gBuf, 0, g);
      await runOps(device, [op], record);
      const etaF = f32(eta);
      sgdRef(theta, g, etaF);
      for (let i = 0; i < n; i++) {
        tolTheta[i] += 1e-6 * (Math.abs(theta[i]) + etaF * Math.abs(g[i]));
      }
      const what = `sgd n=${n} t=${step + 1}`;
      const got = await download(device, pBuf, n);
      assertClose(got, theta, (i) => tolTheta[i] + 1e-30, `${what} θ`);
      assertPaddingZero(pads, { θ: got }, what);
    }
  });
}

Deno.test("update: entries past n are left alone; n = 0 dispatches nothing", async () => {
  const device = await gpuDevice();
  const rng = new Rng(5);
  const n = 37, len = pad4(n) + 8;
  const theta = randomArray(rng, len), g = randomArray(rng, len);
  const pBuf = upload(device, theta), gBuf = upload(device, g);
  const mBuf = storageBuffer(device, len, "m"), vBuf = storageBuffer(device, len, "v");
  const steps = stepTable(device, [{ step: 0, eta: 0.1 }], "steps");
  for (const count of [n, 0]) {
    await runOps(device, [
      updateOp(device, { kind: "sgd", param: pBuf, grad: gBuf, n: count, steps }),
      updateOp(device, {
        kind: "adam",
        param: pBuf,
        grad: gBuf,
        m: mBuf,
        v: vBuf,
        n: count,
        steps,
      }),
    ]);
  }
  const [gotT, gotM] = await Promise.all([
    download(device, pBuf, len),
    download(device, mBuf, len),
  ]);
  for (let i = n; i < len; i++) {
    assert.equal(gotT[i], theta[i], `θ[${i}] changed`);
    assert.equal(gotM[i], 0, `m[${i}] changed`);
  }
  assert.notEqual(gotT[0], theta[0], "θ[0] should have moved");
});

Deno.test("update: invalid specifications are refused with the op's name", async () => {
  const device = await gpuDevice();
  const buf = (n: number) => storageBuffer(device, n, "b");
  const param = buf(8), grad = buf(8), m = buf(8), v = buf(8);
  const steps = stepTable(device, [{}], "steps");
  const base = { kind: "adam" as const, param, grad, m, v, n: 8, steps, label: "upd" };
  const refused = (extra: Record<string, unknown>, why: RegExp) =>
    assert.throws(() => updateOp(device, { ...base, ...extra }), why);
  refused({ m: undefined }, /^Error: upd: adam needs moment buffers/);
  refused({ v: undefined }, /adam needs moment buffers/);
  refused({ beta1: 1 }, /beta1 must lie in \[0, 1\)/);
  refused({ beta1: -0.1 }, /beta1 must lie in \[0, 1\)/);
  refused({ beta2: 0.99999999 }, /beta2 must lie in \[0, 1\) as an f32/);
  refused({ beta2: NaN }, /beta2/);
  refused({ eps: 0 }, /eps must be positive/);
  refused({ eps: 1e-50 }, /eps must be positive/);
  refused({ eps: Infinity }, /eps must be positive/);
  refused({ n: 9 }, /param holds 8 floats, fewer than n = 9/);
  refused({ n: 2.5 }, /non-negative integer/);
  refused({ grad: param }, /grad must be a buffer other than param/);
  refused({ v: m }, /must be distinct/);
  refused({ rowGroups: 0 }, /rowGroups/);
  refused({ rowGroups: 65536 }, /rowGroups/);
  refused({ kind: "rmsprop" }, /unknown kind/);
  // sgd ignores the Adam arguments.
  assert.equal(
    updateOp(device, { kind: "sgd", param, grad, n: 8, steps, beta1: 1, eps: 0 }).stepped,
    true,
  );
});
