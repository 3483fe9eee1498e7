/**
 * The nominal cost every kernel builder declares on its op (`Op.cost`, read by the benchmark's
 * kernel table): present and sane on every op of real training steps (1-, 2- and 3-layer nets,
 * BN, dropout, Adam, populations), 2·M·N·K·Z for a plain product, and, for the net the benchmark
 * measures (3072-50-10, batch 100, one model), the very numbers the benchmark printed before the
 * costs moved next to the kernels; all of it in both kernel profiles (the nominal work of a
 * product does not depend on how its kernel splits it).
 */

import assert from "node:assert/strict";
import { IMAGE_BYTES } from "../src/data/format.ts";
import { storageBuffer } from "../src/gpu/buffers.ts";
import type { KernelProfile } from "../src/gpu/device.ts";
import { matmulOp } from "../src/kernels/matmul.ts";
import { GpuParams } from "../src/model/gpu_params.ts";
import { type PopulationSpec, trainingStep } from "../src/train/trainer.ts";
import { blankDataset, gpuDevice, representativeSpecs, testSpec } from "./helpers.ts";

/** The ops of a training step (prologue included) of `s`, for buffers or textures, per profile. */
async function stepOps(s: PopulationSpec, textures: boolean, profile: KernelProfile = "cpu") {
  const device = await gpuDevice();
  const { dataset, train } = blankDataset(device);
  const params = new GpuParams(device, s.sizes, s.lambdas, s.bn);
  const step = trainingStep(params, { dataset, train, val: null, test: null }, s, {
    textures,
    profile,
  });
  const ops = [...step.prologue, ...step.ops];
  step.destroy();
  params.destroy();
  dataset.destroy();
  return ops;
}

Deno.test("cost: every op of real training steps declares flops ≥ 0 and bytes > 0", async () => {
  // SGD and Adam, BN, dropout, augmentation, 2 to 4 layers, P = 1 and 3; and 1 layer, P = 4
  const cases: [string, PopulationSpec][] = [
    ...representativeSpecs().map(({ name, spec }): [string, PopulationSpec] => [name, spec]),
    ["sgd 1-layer P=4", testSpec([IMAGE_BYTES, 10], 4)],
  ];
  const kinds = new Set<string>();
  for (const [name, s] of cases) {
    for (const [textures, profile] of PLACEMENTS) {
      const ops = await stepOps(s, textures, profile);
      assert.ok(ops.length >= 4, name);
      for (const op of ops) {
        const what = `${name}${textures ? " (textures)" : ""} (${profile}): ${op.label}`;
        const { flops, bytes, shape } = op.cost;
        assert.ok(Number.isFinite(flops) && flops >= 0, `${what}: flops ${flops}`);
        assert.ok(Number.isFinite(bytes) && bytes > 0, `${what}: bytes ${bytes}`);
        assert.ok(Number.isInteger(bytes), `${what}: bytes ${bytes}`);
        assert.ok(shape.length > 0, `${what}: a shape`);
        kinds.add(op.label.replace(/\d+$/, ""));
      }
    }
  }
  for (
    const k of [
      "gather_train",
      "forward",
      "softmax_ce_train",
      "backward_input",
      "backward_weights",
      "bn_forward",
      "bn_backward",
      "adam_W",
      "seed_W",
    ]
  ) assert.ok(kinds.has(k), `${k} seen (have ${[...kinds].join(", ")})`);
});

/** Texture copies or not, cpu or gpu kernel profile: every combination. */
const VARIANTS = (["nn", "nt", "tn"] as const).flatMap((v) =>
  (["cpu", "gpu"] as const).map((p): [typeof v, KernelProfile] => [v, p])
);

const PLACEMENTS: [boolean, KernelProfile][] = [
  [false, "cpu"],
  [true, "cpu"],
  [false, "gpu"],
  [true, "gpu"],
];

Deno.test("cost: a plain product costs 2·M·N·K·Z flops and its three operands once, in either kernel profile", async () => {
  const device = await gpuDevice();
  const [a, b, c] = ["A", "B", "C"].map((x) => storageBuffer(device, 4096, `cost.${x}`));
  const shapes: [number, number, number, number][] = [[7, 33, 100, 1], [5, 12, 9, 3]];
  for (const [M, N, K, Z] of shapes) {
    for (const [variant, profile] of VARIANTS) {
      const op = matmulOp(device, {
        variant,
        profile,
        M,
        N,
        K,
        Z,
        a: { buffer: a, ld: 100, zStride: 1200 },
        b: { buffer: b, ld: 100, zStride: 1200 },
        c: { buffer: c, ld: 36, zStride: 300 },
      });
      assert.equal(op.cost.flops, 2 * M * N * K * Z, `${variant} ${M}x${N}x${K}x${Z} ${profile}`);
      assert.equal(op.cost.bytes, 4 * (M * K + K * N + M * N) * Z, `${variant} bytes`);
    }
  }
  // an input shared by every z (zStride 0) is read once
  const shared = matmulOp(device, {
    variant: "nn",
    M: 4,
    N: 8,
    K: 12,
    Z: 3,
    a: { buffer: a, ld: 12 },
    b: { buffer: b, ld: 8, zStride: 96 },
    c: { buffer: c, ld: 8, zStride: 32 },
  });
  assert.equal(shared.cost.bytes, 4 * (4 * 12 + 3 * 12 * 8 + 3 * 4 * 8));
  assert.equal(shared.cost.shape, "nn 4×12·12×8 ×3");
  for (const x of [a, b, c]) x.destroy();
});

Deno.test("cost: the benchmark's net keeps the costs its kernel table printed", async () => {
  const TAIL = "tail(forward2+softmax_ce_train,backward_input2,backward_weights2)";
  // 3072-50-10 at B = 100, one model: the numbers bench/kernels.ts computed from the op labels,
  // but for the output layer and its loss, now one op: the two kernels' flops (100 000 + 4 000),
  // the product's bytes and the labels (26 040 + 400; the scores are no longer read back)
  const want: Record<string, [string, number, number]> = {
    gather_train: ["100×3072 u8→f32", 614400, 1536800],
    forward1: ["nn 100×3072·3072×50", 30720000, 1863400],
    // layer 2 with its loss, input gradient and update in one tail dispatch: the three products'
    // flops (104 000 + 100 000 + 103 020); bytes: H1 read thrice, G1 written, W2 and b2 read and
    // written, the labels read
    [TAIL]: ["tail 100×50→10 +softmax-ce +sgd", 307020, 84480],
    backward_weights1: ["tn (100×3072)ᵀ·100×50 +bias +sgd", 31339500, 2478000],
  };
  for (const [textures, profile] of PLACEMENTS) {
    const net = { ...testSpec([IMAGE_BYTES, 50, 10], 1), batchSize: 100 };
    const ops = await stepOps(net, textures, profile);
    const got = Object.fromEntries(
      ops.filter((op) => op.label.replace(/\+gather_next$/, "") in want).map((
        op,
      ) => [op.label, [op.cost.shape, op.cost.flops, op.cost.bytes]]),
    );
    // through textures layer 1's products read the batch from the dataset's images: a byte a
    // value of X instead of 4, and an index a row (100 × 3072 × 3 − 400 bytes fewer); the gather
    // writes the rows' image indices only (an index written, a label read and written a row);
    // layer 1's update copies W₁ into its (wrapped) texture (encoder commands, not part of the
    // dispatch's cost)
    const fromImages = (k: string, copy = ""): [string, number, number] => [
      `${want[k][0]}${copy}`,
      want[k][1],
      want[k][2] - (100 * 3072 * 3 - 400),
    ];
    const expect: Record<string, [string, number, number]> = textures
      ? {
        ...want,
        gather_train: ["100 image indices", 0, 1200],
        forward1: fromImages("forward1"),
        backward_weights1: fromImages("backward_weights1", " +copy to texture"),
      }
      : { ...want };
    if (textures && profile === "cpu") {
      // the tail carries the next step's gather: the two costs summed (the step's own gather in
      // the prologue, once a submission)
      const [shape, flops, bytes] = want[TAIL];
      const [gShape, gFlops, gBytes] = expect.gather_train;
      delete expect[TAIL];
      expect[`${TAIL}+gather_next`] = [
        `${shape} +gather ${gShape}`,
        flops + gFlops,
        bytes + gBytes,
      ];
    }
    assert.deepEqual(got, expect, `${textures ? "textures" : "buffers"}, ${profile} profile`);
  }
});
