/**
 * Data augmentation in gather.wgsl (training only): random horizontal flip and random translation
 * decided per (seed, epoch, sample). The GPU agrees with the twin index-exactly and within
 * 1e-5·(1 + |x|) across epochs and both dataset buffers; position-encoded images check the
 * geometry (mirror, shift, border filled with the normalised mean 0) independently of the twin;
 * flips happen about half the time, never in evaluation, and the same seed reproduces a batch.
 */

import assert from "node:assert/strict";
import { type StepRecord, stepTable } from "../src/gpu/buffers.ts";
import { type DatasetPart, type ResidentDataset, uploadDataset } from "../src/data/resident.ts";
import { gatherOp } from "../src/kernels/gather.ts";
import { runOps } from "../src/kernels/op.ts";
import {
  type Augment,
  augmentImage,
  augmentParams,
  gatherAugments,
  gatherIndices,
  gatherRef,
} from "../src/reference/gather.ts";
import { assertClose, download, gpuDevice, Rng } from "./helpers.ts";

const D = 3072;

function randomParts(rng: Rng, sizes: [string, number][]): DatasetPart[] {
  return sizes.map(([name, n]) => {
    const images = new Uint8Array(n * D);
    for (let i = 0; i < images.length; i++) images[i] = rng.int(256);
    return { name, images, labels: Uint8Array.from({ length: n }, () => rng.int(10)) };
  });
}

/** Image i: red = x·8, green = y·8, blue = 1 + i mod 250 (which image it is). */
function positionImage(i: number): Uint8Array {
  const img = new Uint8Array(D);
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      img[y * 32 + x] = x * 8;
      img[1024 + y * 32 + x] = y * 8;
      img[2048 + y * 32 + x] = 1 + (i % 250);
    }
  }
  return img;
}

function positionParts(sizes: [string, number][]): DatasetPart[] {
  return sizes.map(([name, n]) => {
    const images = new Uint8Array(n * D);
    for (let i = 0; i < n; i++) images.set(positionImage(i), i * D);
    return { name, images, labels: Uint8Array.from({ length: n }, (_, i) => i % 10) };
  });
}

/** Mean 0.5, std 2: normalised values (v − 0.5)·0.5 are exact in f32, the fill 0 is no pixel. */
const EXACT = { mean: new Float32Array(D).fill(0.5), std: new Float32Array(D).fill(2) };
const exact = (v: number) => (v - 0.5) * 0.5;

interface Run {
  x: Float32Array;
  y: number[];
}

/** Run a gather once per step record and read back X and y after each. */
async function gather(
  device: GPUDevice,
  ds: ResidentDataset,
  opts: {
    mode: "train" | "eval";
    split: string;
    R: number;
    seed?: number;
    augment?: Augment;
    records: StepRecord[];
  },
): Promise<Run[]> {
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
  const x = device.createBuffer({ size: opts.R * D * 4, usage });
  const y = device.createBuffer({ size: opts.R * 4, usage });
  const steps = stepTable(device, opts.records, "steps");
  const op = gatherOp(device, {
    mode: opts.mode,
    dataset: ds,
    split: ds.splits[opts.split],
    R: opts.R,
    x,
    y,
    seed: opts.seed,
    augment: opts.augment,
    steps,
  });
  const out: Run[] = [];
  for (let k = 0; k < opts.records.length; k++) {
    await runOps(device, [op], k);
    out.push({
      x: await download(device, x, opts.R * D),
      y: [...new Uint32Array((await download(device, y, opts.R)).buffer)],
    });
  }
  for (const b of [x, y, steps]) b.destroy();
  return out;
}

Deno.test("augment: GPU matches the twin for flip, translate and both, across epochs and buffers", async () => {
  const device = await gpuDevice();
  const rng = new Rng(11);
  const parts = randomParts(rng, [["train", 100], ["val", 33], ["test", 7]]);
  const mean = Float32Array.from({ length: D }, () => rng.range(100, 150));
  const std = Float32Array.from({ length: D }, () => rng.range(40, 80));
  // at most 75 images per buffer: 70 + 70, the train split straddles the boundary
  const ds = uploadDataset(device, parts, { mean, std }, 75);
  assert.equal(ds.n0, 70);
  const R = 50, seed = 987;
  const records = [{ epoch: 0, pos: 0 }, { epoch: 0, pos: 50 }, { epoch: 1, pos: 0 }, {
    epoch: 1,
    pos: 50,
  }];
  const cases: Augment[] = [
    { flip: true, translate: 0 },
    { flip: false, translate: 3 },
    { flip: true, translate: 4 },
    { flip: true, translate: 31 },
  ];
  for (const augment of cases) {
    const runs = await gather(device, ds, {
      mode: "train",
      split: "train",
      R,
      seed,
      augment,
      records,
    });
    let flipped = 0, shifted = 0;
    for (let k = 0; k < records.length; k++) {
      const what = `${JSON.stringify(augment)} step ${k}`;
      const idx = gatherIndices("train", R, 100, { seed, ...records[k] });
      const augs = gatherAugments("train", idx, { seed, epoch: records[k].epoch, augment })!;
      flipped += augs.filter((a) => a.flip).length;
      shifted += augs.filter((a) => a.dx !== 0 || a.dy !== 0).length;
      for (const a of augs) {
        assert.ok(Math.abs(a.dx) <= augment.translate && Math.abs(a.dy) <= augment.translate);
        if (!augment.flip) assert.equal(a.flip, false);
      }
      assert.deepEqual(runs[k].y, idx.map((i) => parts[0].labels[i]), what);
      const want = gatherRef(parts[0].images, idx, mean, std, augs);
      assertClose(runs[k].x, want, (i) => 1e-5 * (1 + Math.abs(want[i])), what);
    }
    if (augment.flip) assert.ok(flipped > 0 && flipped < 4 * R, "some rows flipped, not all");
    if (augment.translate > 0) assert.ok(shifted > 2 * R, "most rows shifted");
  }
  ds.destroy();
});

Deno.test("augment: flipped rows are the mirrored image exactly, the others the original", async () => {
  const device = await gpuDevice();
  const parts = positionParts([["train", 100], ["val", 40]]);
  const ds = uploadDataset(device, parts, EXACT, 75);
  const R = 100, seed = 5;
  const [run] = await gather(device, ds, {
    mode: "train",
    split: "train",
    R,
    seed,
    augment: { flip: true, translate: 0 },
    records: [{ epoch: 2, pos: 0 }],
  });
  const idx = gatherIndices("train", R, 100, { seed, epoch: 2 });
  let flipped = 0;
  idx.forEach((sample, r) => {
    const { flip, dx, dy } = augmentParams(seed, 2, sample, { flip: true, translate: 0 });
    assert.equal(dx, 0);
    assert.equal(dy, 0);
    if (flip) flipped++;
    const img = positionImage(sample);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const want = exact(img[c * 1024 + y * 32 + (flip ? 31 - x : x)]);
          const got = run.x[r * D + c * 1024 + y * 32 + x];
          if (got !== want) {
            assert.fail(`row ${r} (sample ${sample}, flip ${flip}) at (${c},${y},${x}): ${got}`);
          }
        }
      }
    }
    // the red plane encodes x: a flipped row starts with x = 31
    assert.equal(run.x[r * D], exact(flip ? 248 : 0));
  });
  assert.ok(flipped > 0 && flipped < R, `${flipped} of ${R} flipped`);
  ds.destroy();
});

Deno.test("augment: translation moves pixels by (dx, dy) and fills the border with normalised 0", async () => {
  const device = await gpuDevice();
  const parts = positionParts([["train", 100], ["val", 40]]);
  const ds = uploadDataset(device, parts, EXACT, 75);
  const R = 100, seed = 77, T = 5;
  for (const flipOn of [false, true]) {
    const augment = { flip: flipOn, translate: T };
    const [run] = await gather(device, ds, {
      mode: "train",
      split: "train",
      R,
      seed,
      augment,
      records: [{ epoch: 1, pos: 0 }],
    });
    const idx = gatherIndices("train", R, 100, { seed, epoch: 1 });
    const seen = new Set<string>();
    idx.forEach((sample, r) => {
      const { flip, dx, dy } = augmentParams(seed, 1, sample, augment);
      seen.add(`${dx},${dy}`);
      let zeros = 0;
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const sy = y - dy, tx = x - dx;
          const inside = sy >= 0 && sy < 32 && tx >= 0 && tx < 32;
          const sx = flip ? 31 - tx : tx;
          const want = inside
            ? [exact(sx * 8), exact(sy * 8), exact(1 + (sample % 250))]
            : [0, 0, 0];
          for (let c = 0; c < 3; c++) {
            const got = run.x[r * D + c * 1024 + y * 32 + x];
            if (got === 0) zeros++;
            if (got !== want[c]) {
              assert.fail(
                `row ${r} (flip ${flip}, dx ${dx}, dy ${dy}) at (${c},${y},${x}): ${got}, want ${
                  want[c]
                }`,
              );
            }
          }
        }
      }
      assert.equal(zeros, 3 * (1024 - (32 - Math.abs(dx)) * (32 - Math.abs(dy))), "border size");
    });
    // shifts cover the whole range [−T, T] in both directions
    const dxs = new Set([...seen].map((s) => Number(s.split(",")[0])));
    const dys = new Set([...seen].map((s) => Number(s.split(",")[1])));
    assert.equal(dxs.size, 2 * T + 1);
    assert.equal(dys.size, 2 * T + 1);
  }
  ds.destroy();
});

Deno.test("augment: the twin's augmentImage shifts a known image by a known (dx, dy)", () => {
  const img = positionImage(3), mean = new Float64Array(D).fill(100);
  const out = augmentImage(img, false, 2, -3, mean);
  // output (y, x) = source (y + 3, x − 2): red = (x − 2)·8, green = (y + 3)·8
  assert.equal(out[10 * 32 + 5], 3 * 8);
  assert.equal(out[1024 + 10 * 32 + 5], 13 * 8);
  assert.equal(out[10 * 32 + 1], 100, "left border vacated");
  assert.equal(out[1024 + 29 * 32 + 5], 100, "bottom border vacated");
  const both = augmentImage(img, true, 2, 0);
  assert.equal(both[2], 31 * 8, "flipped then shifted: output x = 2 shows source x = 31");
  assert.equal(both[0], 0);
});

Deno.test("augment: about half of 400 samples are flipped, on the GPU as in the twin", async () => {
  const device = await gpuDevice();
  const parts = positionParts([["train", 400], ["val", 10]]);
  const ds = uploadDataset(device, parts, EXACT, 300);
  const R = 400, seed = 2024, augment = { flip: true, translate: 0 };
  for (const epoch of [0, 1]) {
    const [run] = await gather(device, ds, {
      mode: "train",
      split: "train",
      R,
      seed,
      augment,
      records: [{ epoch, pos: 0 }],
    });
    const idx = gatherIndices("train", R, 400, { seed, epoch });
    let gpuFlipped = 0, twinFlipped = 0;
    idx.forEach((sample, r) => {
      const flip = run.x[r * D] === exact(248); // red at x = 0 shows source x = 31
      if (flip) gpuFlipped++;
      assert.equal(flip, augmentParams(seed, epoch, sample, augment).flip, `row ${r}`);
      if (augmentParams(seed, epoch, r, augment).flip) twinFlipped++;
    });
    assert.equal(gpuFlipped, twinFlipped, "a permutation of the same 400 samples");
    assert.ok(gpuFlipped >= 150 && gpuFlipped <= 250, `${gpuFlipped} of 400 flipped`);
  }
  ds.destroy();
});

Deno.test("augment: never in eval mode", async () => {
  const device = await gpuDevice();
  const rng = new Rng(3);
  const parts = randomParts(rng, [["train", 60], ["val", 40]]);
  const mean = Float32Array.from({ length: D }, () => rng.range(100, 150));
  const std = Float32Array.from({ length: D }, () => rng.range(40, 80));
  const ds = uploadDataset(device, parts, { mean, std }, 55);
  const augment = { flip: true, translate: 6 };
  const records = [{ epoch: 3, base: 0, rows: 20 }, { epoch: 4, base: 20, rows: 20 }];
  const runs = await gather(device, ds, {
    mode: "eval",
    split: "val",
    R: 20,
    seed: 9,
    augment,
    records,
  });
  for (let k = 0; k < records.length; k++) {
    const idx = gatherIndices("eval", 20, 40, records[k]);
    assert.equal(
      gatherAugments("eval", idx, { seed: 9, epoch: records[k].epoch, augment }),
      undefined,
    );
    const want = gatherRef(parts[1].images, idx, mean, std);
    assertClose(runs[k].x, want, (i) => 1e-5 * (1 + Math.abs(want[i])), `eval chunk ${k}`);
  }
  // training with augmentation off is the plain gather
  assert.equal(
    gatherAugments("train", [1, 2], { augment: { flip: false, translate: 0 } }),
    undefined,
  );
  ds.destroy();
});

Deno.test("augment: same seed reproduces the batch, another epoch or seed changes the decisions", async () => {
  const device = await gpuDevice();
  const parts = positionParts([["train", 100], ["val", 10]]);
  const ds = uploadDataset(device, parts, EXACT, 75);
  const augment = { flip: true, translate: 3 }, R = 100;
  const records = [{ epoch: 0, pos: 0 }, { epoch: 1, pos: 0 }];
  const a = await gather(device, ds, {
    mode: "train",
    split: "train",
    R,
    seed: 1,
    augment,
    records,
  });
  const b = await gather(device, ds, {
    mode: "train",
    split: "train",
    R,
    seed: 1,
    augment,
    records,
  });
  assert.deepEqual(a[0].x, b[0].x);
  assert.deepEqual(a[1].x, b[1].x);
  const key = (d: { flip: boolean; dx: number; dy: number }) => `${d.flip},${d.dx},${d.dy}`;
  let sameEpoch = 0, sameSeed = 0;
  for (let s = 0; s < R; s++) {
    const d0 = key(augmentParams(1, 0, s, augment));
    if (d0 === key(augmentParams(1, 1, s, augment))) sameEpoch++;
    if (d0 === key(augmentParams(2, 0, s, augment))) sameSeed++;
  }
  // 98 equally likely decisions: a coincidence rate far below 1/4
  assert.ok(sameEpoch < R / 4, `${sameEpoch} of ${R} samples keep their decision across epochs`);
  assert.ok(sameSeed < R / 4, `${sameSeed} of ${R} samples keep their decision across seeds`);
  // on the GPU, the rows of one sample in epochs 0 and 1 differ for most samples
  const rowOf = (run: Run, epoch: number) => {
    const idx = gatherIndices("train", R, 100, { seed: 1, epoch });
    const rows = new Map<number, Float32Array>();
    idx.forEach((s, r) => rows.set(s, run.x.subarray(r * D, (r + 1) * D)));
    return rows;
  };
  const r0 = rowOf(a[0], 0), r1 = rowOf(a[1], 1);
  let differ = 0;
  for (let s = 0; s < R; s++) if (r0.get(s)!.some((v, i) => v !== r1.get(s)![i])) differ++;
  assert.ok(differ > (3 * R) / 4, `${differ} of ${R} samples augmented differently`);
  ds.destroy();
});

Deno.test("augment: translate must be an integer in 0..31", async () => {
  const device = await gpuDevice();
  const ds = uploadDataset(device, positionParts([["train", 4]]), EXACT);
  const x = device.createBuffer({ size: 4 * D * 4, usage: GPUBufferUsage.STORAGE });
  const y = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
  const steps = stepTable(device, [{}], "steps");
  for (const translate of [-1, 32, 1.5, NaN]) {
    assert.throws(
      () =>
        gatherOp(device, {
          mode: "train",
          dataset: ds,
          split: ds.splits.train,
          R: 4,
          x,
          y,
          steps,
          augment: { flip: false, translate },
        }),
      /translate/,
    );
    assert.throws(
      () => gatherAugments("train", [0], { augment: { flip: true, translate } }),
      /translate/,
    );
  }
  for (const b of [x, y, steps]) b.destroy();
  ds.destroy();
});
