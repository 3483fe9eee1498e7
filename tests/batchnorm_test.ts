/**
 * batchnorm.wgsl against its float64 twins on awkward shapes (R ∈ {1, 7, 33, 100, 500},
 * n ∈ {1, 7, 33, 50}, Z ∈ {1, 3}, ld with trailing padding): training forward over several steps
 * (Ẑ in place, H, running statistics, 1/√(v+ε)), dropout masks, evaluation from the running
 * statistics, backward in both modes with and without L2, untouched padding, a centred
 * finite-difference check of dZ, dγ, dβ through the batch statistics, validation errors and
 * the R = 20000 row limit.
 *
 * Tolerances (float32 kernel vs float64 twin). Columns get offsets up to 1.5 and spreads down to
 * 0.2, so centring loses up to κ_j = max(1, mean_i|Z_ij|·s_j) digits; with blocked sums the
 * float32 statistics are good to a few ε·κ_j (ε = 6e-8):
 *   Ẑ:        1e-5·κ_j·(1 + |Ẑ|)                     s = 1/√(v+ε): 1e-5·κ_j relative
 *   H:        (|γ|·tol_Ẑ + 1e-6·(|γẐ| + |β|))·1/(1−p)   (ReLU is 1-Lipschitz: no kink issue)
 *   μ_av:     1e-5·(|μ_av| + max|Z|)                  v_av: 1e-5·|v_av| + 1e-7
 *   eval H:   1e-5·(|γ|·(|Z| + |μ_av|)·s_av + |β|)
 *   dZ:       1e-5·s_j·|γ_j|·(|G| + mean|G| + |Ẑ|·mean|G⊙Ẑ|)   (the scale of the formula's terms)
 *   dγ, dβ:   1e-5·(Σ_i|G⊙Ẑ| or Σ_i|G| + |2λ·γ or β|); SGD: η times that + 1e-6·|γ or β|
 *   FD:       twin vs differences 1e-6 × the dZ scale; GPU (whole float32 chain, forward and
 *             backward) vs differences 2e-5·κ_j × the dZ scale, dγ 2e-5·κ_j·Σ|G⊙Ẑ|, dβ 1e-5·Σ|G|.
 *             The shortcut dZ = s·γ⊙G (no batch statistics) misses that bound by > 10× (R ≥ 7).
 * Observed worst error / tolerance over all cases on llvmpipe: ≤ 0.1 (H), ≤ 0.04 elsewhere.
 * R = 1 gives v = 0: the kernel must give s = 1/√ε, Ẑ = 0, H = ReLU(β), dZ = 0, all finite.
 */

import assert from "node:assert/strict";
import { pad4, stepTable } from "../src/gpu/buffers.ts";
import {
  BN_MAX_ROWS,
  bnBackwardOp,
  bnForwardEvalOp,
  bnForwardTrainOp,
  type BnShape,
} from "../src/kernels/batchnorm.ts";
import { runOps } from "../src/kernels/op.ts";
import {
  batchNormBackward,
  batchNormForward,
  bnBackwardRef,
  bnForwardEvalRef,
  bnForwardTrainRef,
  type BnLayout,
} from "../src/reference/batchnorm.ts";
import { dropKeep, dropThreshold } from "../src/reference/random.ts";
import { getGpu } from "../src/gpu/device.ts";
import { assertClose, download, gpuDevice, Rng, upload } from "./helpers.ts";

/** Value of every padding entry: must survive every kernel. */
const SENTINEL = 7.25;
const EPS = 1e-5;

function layout(R: number, n: number, Z: number): BnLayout {
  const zStride = pad4(n);
  return { R, n, Z, ld: Z * zStride + 4, zStride };
}

/** The logical column (z, j) of a column index within a row, or null for padding. */
function logical(L: BnLayout, col: number): { z: number; j: number } | null {
  const z = Math.floor(col / L.zStride), j = col - z * L.zStride;
  return z < L.Z && j < L.n ? { z, j } : null;
}

/** An R × ld matrix with `value(i, z, j)` at logical entries and the sentinel elsewhere. */
function matrix(L: BnLayout, value: (i: number, z: number, j: number) => number): Float32Array {
  const a = new Float32Array(L.R * L.ld).fill(SENTINEL);
  for (let i = 0; i < L.R; i++) {
    for (let z = 0; z < L.Z; z++) {
      for (let j = 0; j < L.n; j++) a[i * L.ld + z * L.zStride + j] = value(i, z, j);
    }
  }
  return a;
}

/** A row vector with `value(z, j)` at logical entries and the sentinel elsewhere. */
function vector(L: BnLayout, value: (z: number, j: number) => number): Float32Array {
  return matrix({ ...L, R: 1 }, (_, z, j) => value(z, j));
}

/** Pre-activations with per-column offset and spread (κ up to ~13). */
function preData(L: BnLayout, rng: Rng): Float32Array {
  const off = Array.from({ length: L.Z * L.n }, () => rng.range(-1.5, 1.5));
  const spread = Array.from({ length: L.Z * L.n }, () => rng.range(0.2, 2));
  return matrix(L, (_, z, j) => off[z * L.n + j] + spread[z * L.n + j] * rng.range(-1, 1));
}

/** Assert every padding entry still holds the sentinel. */
function assertPadding(L: BnLayout, a: ArrayLike<number>, what: string): void {
  for (let k = 0; k < a.length; k++) {
    if (!logical(L, k % L.ld)) assert.equal(a[k], SENTINEL, `${what}: padding ${k} changed`);
  }
}

/** Per-entry tolerance wrapper that passes padding (checked separately, exactly). */
function tolOf(L: BnLayout, f: (k: number, z: number, j: number) => number): (k: number) => number {
  return (k) => {
    const c = logical(L, k % L.ld);
    return c ? f(k, c.z, c.j) : Infinity;
  };
}

/** Per-column condition of the centring: max(1, mean_i|Z_ij|·s_j). */
function kappa(L: BnLayout, pre: ArrayLike<number>, invStd: ArrayLike<number>): Float64Array {
  const k = new Float64Array(L.ld);
  for (let col = 0; col < L.ld; col++) {
    if (!logical(L, col)) continue;
    let s = 0;
    for (let i = 0; i < L.R; i++) s += Math.abs(pre[i * L.ld + col]);
    k[col] = Math.max(1, (s / L.R) * invStd[col]);
  }
  return k;
}

interface TrainState {
  gamma: Float32Array;
  beta: Float32Array;
  runMean: Float32Array;
  runVar: Float32Array;
}

function initState(L: BnLayout, rng: Rng): TrainState {
  return {
    gamma: vector(L, () => rng.range(-1.5, 1.5)),
    beta: vector(L, () => rng.range(-0.5, 0.5)),
    runMean: vector(L, () => rng.range(-0.2, 0.2)),
    runVar: vector(L, () => rng.range(0.5, 1.5)),
  };
}

/**
 * Run `records.length` training-forward steps on fresh batches on the GPU and in the twin,
 * checking every output after each step; returns the last batch, GPU Ẑ and 1/√(v+ε).
 */
async function trainSteps(
  L: BnLayout,
  rng: Rng,
  st: TrainState,
  opts: { p?: number; seed?: number; layer?: number; steps: number[]; alpha?: number },
): Promise<{ pre: Float32Array; zhat: Float32Array; invStd: Float32Array; h: Float32Array }> {
  const device = await gpuDevice();
  const what = `R=${L.R} n=${L.n} Z=${L.Z} p=${opts.p ?? 0}`;
  const gammaBuf = upload(device, st.gamma), betaBuf = upload(device, st.beta);
  const meanBuf = upload(device, st.runMean), varBuf = upload(device, st.runVar);
  const invBuf = upload(device, vector(L, () => 0));
  const ref = {
    gamma: Float64Array.from(st.gamma),
    beta: Float64Array.from(st.beta),
    runMean: Float64Array.from(st.runMean),
    runVar: Float64Array.from(st.runVar),
    invStd: Float64Array.from(vector(L, () => 0)),
  };
  const dropout = opts.p === undefined
    ? undefined
    : { p: opts.p, seed: opts.seed ?? 1, layer: opts.layer ?? 1 };
  const table = stepTable(device, opts.steps.map((step) => ({ step })), "steps");
  const scale = 1 / (1 - (opts.p ?? 0));
  let last = null;
  for (let k = 0; k < opts.steps.length; k++) {
    const pre = preData(L, rng);
    const preBuf = upload(device, pre), hBuf = upload(device, matrix(L, () => -3));
    const op = bnForwardTrainOp(device, {
      ...L,
      pre: preBuf,
      h: hBuf,
      gamma: gammaBuf,
      beta: betaBuf,
      runMean: meanBuf,
      runVar: varBuf,
      invStd: invBuf,
      alpha: opts.alpha,
      eps: EPS,
      dropout,
      steps: table,
    });
    await runOps(device, [op], k);
    const zhat = await download(device, preBuf, pre.length);
    const h = await download(device, hBuf, pre.length);
    const mean = await download(device, meanBuf, L.ld), vari = await download(device, varBuf, L.ld);
    const inv = await download(device, invBuf, L.ld);

    const refPre = Float64Array.from(pre), refH = Float64Array.from(matrix(L, () => -3));
    bnForwardTrainRef(L, { ...ref, pre: refPre, h: refH }, {
      alpha: opts.alpha,
      eps: EPS,
      dropout,
      step: opts.steps[k],
    });
    const kap = kappa(L, pre, ref.invStd);
    const tolZ = (k: number, col: number) => 1e-5 * kap[col] * (1 + Math.abs(refPre[k]));
    const at = `${what} step ${k}`;
    assertClose(zhat, refPre, tolOf(L, (k) => tolZ(k, k % L.ld)), `Ẑ ${at}`);
    assertClose(
      h,
      refH,
      tolOf(L, (k) => {
        const col = k % L.ld, zh = Math.abs(refPre[k]);
        const g = Math.abs(ref.gamma[col]), b = Math.abs(ref.beta[col]);
        return scale * (g * tolZ(k, col) + 1e-6 * (g * zh + b)) + 1e-30;
      }),
      `H ${at}`,
    );
    assertClose(inv, ref.invStd, tolOf(L, (c) => 1e-5 * kap[c] * ref.invStd[c]), `1/σ ${at}`);
    let maxZ = 0;
    for (const v of pre) if (v !== SENTINEL) maxZ = Math.max(maxZ, Math.abs(v));
    assertClose(
      mean,
      ref.runMean,
      tolOf(L, (c) => 1e-5 * (Math.abs(ref.runMean[c]) + maxZ)),
      `μ_av ${at}`,
    );
    assertClose(
      vari,
      ref.runVar,
      tolOf(L, (c) => 1e-5 * Math.abs(ref.runVar[c]) + 1e-7),
      `v_av ${at}`,
    );
    for (const [name, a] of [["Ẑ", zhat], ["H", h], ["μ_av", mean], ["v_av", vari], ["1/σ", inv]]) {
      assertPadding(L, a as Float32Array, `${name} ${at}`);
      assert.ok((a as Float32Array).every(Number.isFinite), `${name} ${at}: not finite`);
    }
    // γ and β are read only
    assert.deepEqual(await download(device, gammaBuf, L.ld), st.gamma.subarray(0, L.ld));
    assert.deepEqual(await download(device, betaBuf, L.ld), st.beta.subarray(0, L.ld));
    if (L.R === 1) {
      // v = 0: s = 1/√ε exactly representable up to rounding, Ẑ = 0, H = ReLU(β)
      for (let k2 = 0; k2 < L.ld; k2++) {
        if (!logical(L, k2)) continue;
        assert.equal(zhat[k2], 0, `R=1 Ẑ ${k2}`);
        assert.ok(Math.abs(inv[k2] - 1 / Math.sqrt(EPS)) < 1e-3, `R=1 1/σ ${inv[k2]}`);
      }
    }
    if (dropout && dropout.p > 0) {
      const threshold = dropThreshold(dropout.p);
      for (let i = 0; i < L.R; i++) {
        for (let col = 0; col < L.ld; col++) {
          if (!logical(L, col)) continue;
          const idx = i * L.ld + col;
          if (!dropKeep(dropout.seed, opts.steps[k], dropout.layer, idx, threshold)) {
            assert.equal(h[idx], 0, `${at}: dropped entry ${idx} is ${h[idx]}`);
          }
        }
      }
    }
    last = { pre, zhat, invStd: inv, h };
  }
  Object.assign(st, {
    runMean: await download(device, meanBuf, st.runMean.length),
    runVar: await download(device, varBuf, st.runVar.length),
  });
  return last!;
}

const cases: [number, number, number][] = [
  [1, 7, 1],
  [1, 1, 3],
  [7, 1, 3],
  [7, 33, 1],
  [33, 50, 1],
  [33, 7, 3],
  [100, 7, 3],
  [100, 50, 3],
  [500, 33, 1],
];

for (const [R, n, Z] of cases) {
  Deno.test(`batchnorm R=${R} n=${n} Z=${Z}: train forward, running stats, eval`, async () => {
    const device = await gpuDevice();
    const L = layout(R, n, Z);
    const rng = new Rng(R * 7919 + n * 31 + Z);
    const st = initState(L, rng);
    // three steps without dropout, α = 0.8 (non-default), running statistics carried over
    await trainSteps(L, rng, st, { steps: [0, 1, 2], alpha: 0.8 });

    // evaluation from the running statistics (as the GPU left them), with and without `rows`
    const pre = preData(L, rng);
    const preBuf = upload(device, pre);
    const bufs = {
      gamma: upload(device, st.gamma),
      beta: upload(device, st.beta),
      runMean: upload(device, st.runMean),
      runVar: upload(device, st.runVar),
    };
    const rows = Math.max(1, R - 2);
    for (const limit of [undefined, rows]) {
      const hBuf = upload(device, matrix(L, () => -3));
      const steps = limit === undefined ? undefined : stepTable(device, [{}, { rows: limit }], "s");
      await runOps(device, [
        bnForwardEvalOp(device, { ...L, pre: preBuf, h: hBuf, ...bufs, steps }),
      ], 1);
      const h = await download(device, hBuf, pre.length);
      const want = Float64Array.from(matrix(L, () => -3));
      bnForwardEvalRef(L, { ...st, pre, h: want }, { eps: EPS, rows: limit });
      assertClose(
        h,
        want,
        tolOf(L, (k, z, j) => {
          const c = z * L.zStride + j, s = 1 / Math.sqrt(st.runVar[c] + EPS);
          const g = Math.abs(st.gamma[c]), b = Math.abs(st.beta[c]);
          return 1e-5 * (g * (Math.abs(pre[k]) + Math.abs(st.runMean[c])) * s + b) + 1e-30;
        }),
        `eval H rows=${limit}`,
      );
      assertPadding(L, h, "eval H");
      if (limit !== undefined) {
        for (let k = limit * L.ld; k < h.length; k++) {
          if (logical(L, k % L.ld)) assert.equal(h[k], -3, `row past rows: ${k}`);
        }
      }
      // Z, γ, β and the statistics are read only
      assert.deepEqual(await download(device, preBuf, pre.length), pre);
      assert.deepEqual(await download(device, bufs.runMean, L.ld), st.runMean.subarray(0, L.ld));
      assert.deepEqual(await download(device, bufs.runVar, L.ld), st.runVar.subarray(0, L.ld));
      assert.deepEqual(await download(device, bufs.gamma, L.ld), st.gamma.subarray(0, L.ld));
      assert.deepEqual(await download(device, bufs.beta, L.ld), st.beta.subarray(0, L.ld));
    }

    // training mode on the same batch normalises with the batch statistics instead
    const hTrainBuf = upload(device, matrix(L, () => 0));
    const hEvalBuf = upload(device, matrix(L, () => 0));
    await runOps(device, [bnForwardEvalOp(device, { ...L, pre: preBuf, h: hEvalBuf, ...bufs })]);
    await runOps(device, [
      bnForwardTrainOp(device, {
        ...L,
        pre: upload(device, pre),
        h: hTrainBuf,
        ...bufs,
        invStd: upload(device, vector(L, () => 0)),
      }),
    ]);
    const a = await download(device, hTrainBuf, pre.length);
    const b = await download(device, hEvalBuf, pre.length);
    let diff = 0;
    for (let k = 0; k < a.length; k++) diff = Math.max(diff, Math.abs(a[k] - b[k]));
    assert.ok(diff > 1e-2, `train and eval outputs agree (max diff ${diff})`);
  });

  Deno.test(`batchnorm R=${R} n=${n} Z=${Z}: dropout mask and scaling`, async () => {
    const L = layout(R, n, Z);
    const rng = new Rng(R * 104729 + n * 13 + Z);
    const st = initState(L, rng);
    const p = 0.3, seed = 0xdecaf, layer = 2;
    // H vs twin (mask included) and dropped entries exactly 0, at steps 5 and 6
    const masks: boolean[][] = [];
    for (const step of [5, 6]) {
      await trainSteps(L, rng, st, { p, seed, layer, steps: [step] });
      const mask: boolean[] = [];
      for (let i = 0; i < R; i++) {
        for (let col = 0; col < L.ld; col++) {
          if (logical(L, col)) {
            mask.push(dropKeep(seed, step, layer, i * L.ld + col, dropThreshold(p)));
          }
        }
      }
      masks.push(mask);
    }
    const N = masks[0].length;
    if (N >= 1000) {
      const dropped = masks[0].filter((k) => !k).length / N;
      const sd = Math.sqrt((p * (1 - p)) / N);
      assert.ok(Math.abs(dropped - p) < 5 * sd, `dropped fraction ${dropped}, want ${p}`);
      const changed = masks[0].filter((k, i) => k !== masks[1][i]).length / N;
      assert.ok(Math.abs(changed - 2 * p * (1 - p)) < 0.05, `masks of steps 5, 6: ${changed}`);
    }
  });

  Deno.test(`batchnorm R=${R} n=${n} Z=${Z}: backward matches float64 (store, sgd, l2)`, async () => {
    const device = await gpuDevice();
    const L = layout(R, n, Z);
    const rng = new Rng(R * 15485863 + n * 17 + Z);
    const st = initState(L, rng);
    const { zhat, invStd } = await trainSteps(L, rng, st, { steps: [0] });
    const lamArr = new Float32Array([0.05, 0.3, 1.7]);
    const lamBuf = upload(device, lamArr);
    const eta = 0.07;
    const steps = stepTable(device, [{}, {}, { eta }], "steps");
    const zhatBuf = upload(device, zhat), invBuf = upload(device, invStd);
    for (const mode of ["store", "sgd"] as const) {
      for (const l2 of [false, true]) {
        const what = `backward ${mode} l2=${l2} R=${R} n=${n} Z=${Z}`;
        const g = matrix(L, () => rng.range(-1, 1));
        const gBuf = upload(device, g);
        const gammaBuf = upload(device, st.gamma), betaBuf = upload(device, st.beta);
        const dGamma = vector(L, () => 99), dBeta = vector(L, () => 99);
        const dGammaBuf = upload(device, dGamma), dBetaBuf = upload(device, dBeta);
        const op = bnBackwardOp(device, {
          ...L,
          g: gBuf,
          zhat: zhatBuf,
          invStd: invBuf,
          gamma: gammaBuf,
          beta: betaBuf,
          mode,
          dGamma: mode === "store" ? dGammaBuf : undefined,
          dBeta: mode === "store" ? dBetaBuf : undefined,
          steps,
          lambda: lamBuf, // passed in both cases: ignored without l2
          l2,
        });
        await runOps(device, [op], 2);
        const ref = {
          g: Float64Array.from(g),
          zhat,
          invStd,
          gamma: Float64Array.from(st.gamma),
          beta: Float64Array.from(st.beta),
          dGamma: Float64Array.from(dGamma),
          dBeta: Float64Array.from(dBeta),
        };
        bnBackwardRef(L, ref, { mode, eta, lambda: lamArr, l2 });
        // scales of the terms
        const sumG = new Float64Array(L.ld), sumGX = new Float64Array(L.ld);
        for (let i = 0; i < R; i++) {
          for (let c = 0; c < L.ld; c++) {
            sumG[c] += Math.abs(g[i * L.ld + c]);
            sumGX[c] += Math.abs(g[i * L.ld + c] * zhat[i * L.ld + c]);
          }
        }
        const dz = await download(device, gBuf, g.length);
        assertClose(
          dz,
          ref.g,
          tolOf(L, (k, z, j) => {
            const c = z * L.zStride + j;
            const terms = Math.abs(g[k]) + sumG[c] / R + Math.abs(zhat[k]) * sumGX[c] / R;
            return 1e-5 * invStd[c] * Math.abs(st.gamma[c]) * terms + 1e-30;
          }),
          `dZ ${what}`,
        );
        assertPadding(L, dz, `dZ ${what}`);
        const lam2 = (c: number) => l2 ? 2 * lamArr[Math.floor(c / L.zStride)] : 0;
        const gotG = await download(device, gammaBuf, L.ld);
        const gotB = await download(device, betaBuf, L.ld);
        const gotDG = await download(device, dGammaBuf, L.ld);
        const gotDB = await download(device, dBetaBuf, L.ld);
        const tolDG = (c: number) => 1e-5 * (sumGX[c] + lam2(c) * Math.abs(st.gamma[c])) + 1e-30;
        const tolDB = (c: number) => 1e-5 * (sumG[c] + lam2(c) * Math.abs(st.beta[c])) + 1e-30;
        if (mode === "store") {
          assertClose(gotDG, ref.dGamma, tolOf(L, tolDG), `dγ ${what}`);
          assertClose(gotDB, ref.dBeta, tolOf(L, tolDB), `dβ ${what}`);
          assert.deepEqual(gotG, st.gamma.subarray(0, L.ld), `γ changed in store mode`);
          assert.deepEqual(gotB, st.beta.subarray(0, L.ld), `β changed in store mode`);
        } else {
          const tg = (c: number) => eta * tolDG(c) + 1e-6 * Math.abs(st.gamma[c]);
          const tb = (c: number) => eta * tolDB(c) + 1e-6 * Math.abs(st.beta[c]);
          assertClose(gotG, ref.gamma, tolOf(L, tg), `γ ${what}`);
          assertClose(gotB, ref.beta, tolOf(L, tb), `β ${what}`);
          assert.deepEqual(gotDG, dGamma.subarray(0, L.ld), `dγ written in sgd mode`);
          assert.deepEqual(gotDB, dBeta.subarray(0, L.ld), `dβ written in sgd mode`);
        }
        for (const [name, a] of [["γ", gotG], ["β", gotB], ["dγ", gotDG], ["dβ", gotDB]]) {
          assertPadding(L, a as Float32Array, `${name} ${what}`);
        }
        // the inputs Ẑ and 1/σ are read only
        assert.deepEqual(await download(device, zhatBuf, zhat.length), zhat);
        assert.deepEqual(await download(device, invBuf, L.ld), invStd.subarray(0, L.ld));
      }
    }
  });

  Deno.test(`batchnorm R=${R} n=${n} Z=${Z}: dZ, dγ, dβ equal centred differences`, async () => {
    const device = await gpuDevice();
    const L = layout(R, n, Z);
    const rng = new Rng(R * 32452843 + n * 19 + Z);
    const st = initState(L, rng);
    const pre = preData(L, rng);
    const g = matrix(L, () => rng.range(-1, 1));
    // GPU: forward on Z, backward from G = dL/dS with L = Σ G⊙S (S = γẐ + β, before ReLU)
    const preBuf = upload(device, pre), gBuf = upload(device, g);
    const invBuf = upload(device, vector(L, () => 0));
    const dGammaBuf = upload(device, vector(L, () => 0));
    const dBetaBuf = upload(device, vector(L, () => 0));
    const common = { ...L, gamma: upload(device, st.gamma), beta: upload(device, st.beta) };
    await runOps(device, [
      bnForwardTrainOp(device, {
        ...common,
        pre: preBuf,
        h: upload(device, matrix(L, () => 0)),
        runMean: upload(device, st.runMean),
        runVar: upload(device, st.runVar),
        invStd: invBuf,
      }),
      bnBackwardOp(device, {
        ...common,
        g: gBuf,
        zhat: preBuf,
        invStd: invBuf,
        mode: "store",
        dGamma: dGammaBuf,
        dBeta: dBetaBuf,
      }),
    ]);
    const dz = await download(device, gBuf, g.length);
    const dGamma = await download(device, dGammaBuf, L.ld);
    const dBeta = await download(device, dBetaBuf, L.ld);
    for (let z = 0; z < Z; z++) {
      for (let j = 0; j < n; j++) {
        const col = z * L.zStride + j;
        const zc = Float64Array.from({ length: R }, (_, i) => pre[i * L.ld + col]);
        const gc = Float64Array.from({ length: R }, (_, i) => g[i * L.ld + col]);
        const loss = (x: ArrayLike<number>, gamma = st.gamma[col], beta = st.beta[col]) => {
          const s = batchNormForward(x, R, 1, [gamma], [beta], EPS).s;
          let sum = 0;
          for (let i = 0; i < R; i++) sum += gc[i] * s[i];
          return sum;
        };
        const f = batchNormForward(zc, R, 1, [st.gamma[col]], [st.beta[col]], EPS);
        const twin = batchNormBackward(gc, f.zhat, [st.gamma[col]], f.invStd, R, 1);
        const sigma = 1 / f.invStd[0], h = 1e-4 * sigma;
        let meanG = 0, meanGX = 0, absZ = 0;
        for (let i = 0; i < R; i++) {
          meanG += Math.abs(gc[i]) / R;
          meanGX += Math.abs(gc[i] * f.zhat[i]) / R;
          absZ += Math.abs(zc[i]) / R;
        }
        const kap = Math.max(1, absZ * f.invStd[0]);
        let shortcutWorst = 0;
        for (let i = 0; i < R; i++) {
          const up = Float64Array.from(zc), down = Float64Array.from(zc);
          up[i] += h;
          down[i] -= h;
          const fd = (loss(up) - loss(down)) / (2 * h);
          const scale = f.invStd[0] * Math.abs(st.gamma[col]) *
              (Math.abs(gc[i]) + meanG + Math.abs(f.zhat[i]) * meanGX) + 1e-12;
          const at = `R=${R} n=${n} Z=${Z} column (${z}, ${j}) row ${i}`;
          assert.ok(
            Math.abs(twin.dz[i] - fd) <= 1e-6 * scale,
            `twin dZ ${at}: ${twin.dz[i]} vs differences ${fd}`,
          );
          const got = dz[i * L.ld + col];
          assert.ok(
            Math.abs(got - fd) <= 2e-5 * kap * scale,
            `GPU dZ ${at}: ${got} vs differences ${fd} (tol ${2e-5 * kap * scale})`,
          );
          // the shortcut that ignores the batch statistics, dZ = s·γ·G, is far off
          const shortcut = f.invStd[0] * st.gamma[col] * gc[i];
          shortcutWorst = Math.max(shortcutWorst, Math.abs(shortcut - fd) / (2e-5 * kap * scale));
        }
        if (R >= 7) assert.ok(shortcutWorst > 10, `shortcut passes the check (${shortcutWorst})`);
        const hp = 1e-4;
        const fdG = (loss(zc, st.gamma[col] + hp) - loss(zc, st.gamma[col] - hp)) / (2 * hp);
        const fdB =
          (loss(zc, undefined, st.beta[col] + hp) - loss(zc, undefined, st.beta[col] - hp)) /
          (2 * hp);
        let sumGX = 0, sumG = 0;
        for (let i = 0; i < R; i++) {
          sumGX += Math.abs(gc[i] * f.zhat[i]);
          sumG += Math.abs(gc[i]);
        }
        assert.ok(Math.abs(twin.dGamma[0] - fdG) <= 1e-8 * (sumGX + 1), `twin dγ ${col}`);
        assert.ok(Math.abs(twin.dBeta[0] - fdB) <= 1e-8 * (sumG + 1), `twin dβ ${col}`);
        assert.ok(Math.abs(dGamma[col] - fdG) <= 2e-5 * kap * sumGX + 1e-30, `GPU dγ ${col}`);
        assert.ok(Math.abs(dBeta[col] - fdB) <= 1e-5 * sumG + 1e-30, `GPU dβ ${col}`);
      }
    }
    assert.ok(dz.every(Number.isFinite), "dZ not finite");
  });
}

Deno.test(`batchnorm at the row limit R=${BN_MAX_ROWS}: forward and backward match float64`, async () => {
  const L = layout(BN_MAX_ROWS, 3, 1);
  const rng = new Rng(20000);
  const st = initState(L, rng);
  const { zhat, invStd } = await trainSteps(L, rng, st, { steps: [0, 1] });
  const device = await gpuDevice();
  const g = matrix(L, () => rng.range(-1, 1));
  const gBuf = upload(device, g);
  const dGammaBuf = upload(device, vector(L, () => 0));
  const dBetaBuf = upload(device, vector(L, () => 0));
  await runOps(device, [
    bnBackwardOp(device, {
      ...L,
      g: gBuf,
      zhat: upload(device, zhat),
      invStd: upload(device, invStd),
      gamma: upload(device, st.gamma),
      beta: upload(device, st.beta),
      mode: "store",
      dGamma: dGammaBuf,
      dBeta: dBetaBuf,
    }),
  ]);
  const ref = {
    g: Float64Array.from(g),
    zhat,
    invStd,
    gamma: Float64Array.from(st.gamma),
    beta: Float64Array.from(st.beta),
    dGamma: new Float64Array(L.ld),
    dBeta: new Float64Array(L.ld),
  };
  bnBackwardRef(L, ref, { mode: "store" });
  const dz = await download(device, gBuf, g.length);
  // last row written: the loops ran to the end
  const lastRow = (L.R - 1) * L.ld;
  assert.ok(Math.abs(dz[lastRow] - ref.g[lastRow]) <= 1e-4 * Math.abs(ref.g[lastRow]) + 1e-4);
  let worst = 0;
  for (let k = 0; k < dz.length; k++) {
    if (logical(L, k % L.ld)) worst = Math.max(worst, Math.abs(dz[k] - ref.g[k]));
  }
  assert.ok(worst < 1e-4, `dZ max error ${worst}`);
  const dGamma = await download(device, dGammaBuf, L.ld);
  for (let j = 0; j < L.n; j++) {
    assert.ok(Math.abs(dGamma[j] - ref.dGamma[j]) <= 1e-4 * L.R, `dγ ${j}`);
  }
});

Deno.test("batchnorm ops reject bad specs with clear errors", async () => {
  const device = await gpuDevice();
  const L = layout(10, 5, 2);
  const mat = upload(device, new Float32Array(L.R * L.ld));
  const vec = upload(device, new Float32Array(L.ld));
  const small = upload(device, new Float32Array(4));
  const shape: BnShape = { ...L };
  const train = {
    ...shape,
    pre: mat,
    h: mat,
    gamma: vec,
    beta: vec,
    runMean: vec,
    runVar: vec,
    invStd: vec,
  };
  const back = { ...shape, g: mat, zhat: mat, invStd: vec, gamma: vec, beta: vec };
  const bad: [() => unknown, RegExp][] = [
    [() => bnForwardTrainOp(device, { ...train, R: 0 }), /R, n, Z must be positive integers/],
    [() => bnForwardTrainOp(device, { ...train, n: 2.5 }), /R, n, Z must be positive integers/],
    [() => bnForwardTrainOp(device, { ...train, R: BN_MAX_ROWS + 1 }), /exceed the limit of 20000/],
    [
      () => bnBackwardOp(device, { ...back, mode: "sgd", steps: vec, R: 30000 }),
      /exceed the limit/,
    ],
    [() => bnForwardTrainOp(device, { ...train, alpha: 1 }), /alpha must be in \(0, 1\)/],
    [() => bnForwardTrainOp(device, { ...train, alpha: 0 }), /alpha must be in \(0, 1\)/],
    [() => bnForwardTrainOp(device, { ...train, eps: 0 }), /eps must be > 0/],
    [
      () => bnForwardTrainOp(device, { ...train, dropout: { p: 1, seed: 1, layer: 1 } }),
      /dropout p must be in \[0, 1\)/,
    ],
    [
      () => bnForwardTrainOp(device, { ...train, dropout: { p: -0.1, seed: 1, layer: 1 } }),
      /dropout p must be in \[0, 1\)/,
    ],
    [
      () => bnForwardTrainOp(device, { ...train, dropout: { p: 0.5, seed: 1, layer: 1 } }),
      /dropout needs a step table/,
    ],
    [() => bnForwardTrainOp(device, { ...train, ld: 8 }), /ld 8 is smaller than the 13 columns/],
    [() => bnForwardTrainOp(device, { ...train, zStride: 4 }), /zStride 4 must be an integer ≥ n/],
    [() => bnForwardTrainOp(device, { ...train, gamma: small }), /gamma holds 16 bytes, needs 52/],
    [() => bnForwardEvalOp(device, { ...train, h: small }), /h holds 16 bytes/],
    [() => bnBackwardOp(device, { ...back, mode: "store" }), /store mode needs dGamma and dBeta/],
    [() => bnBackwardOp(device, { ...back, mode: "sgd" }), /sgd needs a step table/],
    [
      () => bnBackwardOp(device, { ...back, mode: "store", dGamma: vec, dBeta: vec, l2: true }),
      /l2 needs a lambda buffer/,
    ],
  ];
  for (const [f, re] of bad) assert.throws(f, re);
  // p = 0 is no dropout: no step table needed
  bnForwardTrainOp(device, { ...train, dropout: { p: 0, seed: 1, layer: 1 } });
});

Deno.test("batchnorm dispatches raised no GPU validation errors", async () => {
  (await getGpu()).check();
});
