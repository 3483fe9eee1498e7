/**
 * Tests of src/io/safetensors.ts: round trips, the byte layout, corrupt files, and a cross-check
 * with Python (the `safetensors` package if importable, else a struct + json + numpy reader); and
 * of src/model/checkpoint.ts: the metadata that says what the inputs are, and one test per kind of
 * broken checkpoint that must be refused with one line naming the file and the problem.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  decodeSafetensors,
  encodeSafetensors,
  MAX_HEADER_BYTES,
  type Tensor,
} from "../src/io/safetensors.ts";
import { UserError } from "../src/errors.ts";
import {
  CHECKPOINT_FORMAT,
  decodeCheckpoint,
  encodeCheckpoint,
  INPUT_METADATA,
} from "../src/model/checkpoint.ts";
import type { Params } from "../src/model/init.ts";

function tensor(shape: number[], f: (i: number) => number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float32Array.from({ length: n }, (_, i) => f(i)) };
}

const TENSORS: Record<string, Tensor> = {
  "scalar": tensor([], () => 3.25),
  "vec": tensor([5], (i) => i - 2.5),
  "w1": tensor([3, 4], (i) => Math.sin(i) * 1e-3),
  "b1": tensor([4], () => 0),
  "cube": tensor([2, 3, 4], (i) => (i % 7) * 1e30 - 2e30),
  "layers.0.weight": tensor([1, 1, 2, 3], (i) => [-0, 1e-40, 3.4e38, -1, 0.1, 65504][i]),
  "empty": tensor([0, 3], () => 0),
};
const METADATA = { format: "webgpu-mlp.checkpoint/1", step: "1200", note: "λ=0.001 ✓" };
const ASCII_METADATA = { format: "webgpu-mlp.checkpoint/1", step: "1200" };

function hex(data: Float32Array): string {
  return Array.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Build a file by hand from a header object and raw data bytes. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const head = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

function assertUserError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
}

Deno.test("round trip of several shapes and metadata is bit-exact", () => {
  const bytes = encodeSafetensors(TENSORS, METADATA);
  const back = decodeSafetensors(bytes);
  assert.deepEqual(back.metadata, METADATA);
  assert.deepEqual(Object.keys(back.tensors).sort(), Object.keys(TENSORS).sort());
  for (const [name, t] of Object.entries(TENSORS)) {
    assert.deepEqual(back.tensors[name].shape, t.shape, name);
    assert.ok(back.tensors[name].data instanceof Float32Array);
    assert.equal(hex(back.tensors[name].data), hex(t.data), name); // -0 and subnormals kept
  }
  assert.ok(Object.is(back.tensors["layers.0.weight"].data[0], -0));

  // No metadata: no __metadata__ entry, and an empty metadata object back.
  const plain = decodeSafetensors(encodeSafetensors({ vec: TENSORS.vec }));
  assert.deepEqual(plain.metadata, {});
  assert.deepEqual(Array.from(plain.tensors.vec.data), [-2.5, -1.5, -0.5, 0.5, 1.5]);
});

/** Check the layout of an encoded file: aligned data start, sorted contiguous offsets. */
function checkLayout(bytes: Uint8Array, tensors: Record<string, Tensor>, metadata: object) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headLen = Number(view.getBigUint64(0, true));
  assert.equal((8 + headLen) % 8, 0, `data starts at byte ${8 + headLen}, not 8-byte aligned`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headLen)));
  assert.deepEqual(header.__metadata__, metadata);
  let offset = 0;
  for (const name of Object.keys(tensors).sort()) {
    assert.deepEqual(header[name].data_offsets, [offset, offset + 4 * tensors[name].data.length]);
    offset = header[name].data_offsets[1];
  }
  assert.equal(bytes.length, 8 + headLen + offset);
}

Deno.test("byte layout: header length, 8-byte alignment, sorted contiguous offsets", () => {
  const bytes = encodeSafetensors(TENSORS, ASCII_METADATA);
  const view = new DataView(bytes.buffer);
  const headLen = Number(view.getBigUint64(0, true));
  assert.equal((8 + headLen) % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headLen)));
  assert.deepEqual(header.__metadata__, ASCII_METADATA);
  const names = Object.keys(TENSORS).sort();
  let offset = 0;
  for (const name of names) {
    const e = header[name];
    assert.equal(e.dtype, "F32");
    assert.deepEqual(e.shape, TENSORS[name].shape);
    assert.deepEqual(e.data_offsets, [offset, offset + 4 * TENSORS[name].data.length]);
    offset = e.data_offsets[1];
  }
  assert.equal(bytes.length, 8 + headLen + offset);
  // Values are little-endian float32.
  const start = 8 + headLen + header.vec.data_offsets[0];
  assert.equal(view.getFloat32(start, true), -2.5);
});

Deno.test("the data start stays 8-byte aligned with non-ASCII names and metadata", () => {
  // The header is padded to a multiple of 8 BYTES of UTF-8, not of UTF-16 code units.
  for (const note of ["λ", "λλ", "✓", "naïve ✓✓✓", "日本語"]) {
    const tensors = { [`w_${note}`]: tensor([2], (i) => i + 0.5) };
    const bytes = encodeSafetensors(tensors, { note });
    checkLayout(bytes, tensors, { note });
    assert.deepEqual(Array.from(decodeSafetensors(bytes).tensors[`w_${note}`].data), [0.5, 1.5]);
  }
});

Deno.test("decodes F64 tensors (rounded to float32) and files embedded in a larger buffer", () => {
  const data = new Uint8Array(16);
  const dv = new DataView(data.buffer);
  dv.setFloat64(0, 0.1, true);
  dv.setFloat64(8, -1e300, true);
  const file = rawFile({ x: { dtype: "F64", shape: [2], data_offsets: [0, 16] } }, data);
  const padded = new Uint8Array(file.length + 10);
  padded.set(file, 3);
  const back = decodeSafetensors(padded.subarray(3, 3 + file.length));
  assert.deepEqual(back.tensors.x.shape, [2]);
  assert.equal(back.tensors.x.data[0], Math.fround(0.1));
  assert.equal(back.tensors.x.data[1], -Infinity);
});

Deno.test("encode rejects a shape that does not match the data", () => {
  assert.throws(
    () => encodeSafetensors({ w: { shape: [2, 3], data: new Float32Array(5) } }),
    /tensor w: shape \[2,3\] holds 6 values, data 5/,
  );
});

Deno.test("corrupt or truncated files give a UserError naming the file", () => {
  const good = encodeSafetensors(TENSORS, METADATA);
  assertUserError(
    () => decodeSafetensors(good.subarray(0, 5), "ckpt.safetensors"),
    /^ckpt\.safetensors is not a valid safetensors file: shorter than its 8-byte header length$/,
  );
  assertUserError(() => decodeSafetensors(good.subarray(0, 40)), /header length \d+ out of range/);
  const zero = good.slice();
  new DataView(zero.buffer).setBigUint64(0, 0n, true);
  assertUserError(() => decodeSafetensors(zero), /header length 0 out of range/);
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
  assertUserError(() => decodeSafetensors(huge), /header length 1099511627776 out of range/);
  const garbled = good.slice();
  garbled[8] = 0x7b + 1; // '{' -> '|'
  assertUserError(() => decodeSafetensors(garbled, "x.st"), /^x\.st .*header is not JSON$/);
  // Truncated data: the last tensor no longer fits.
  assertUserError(
    () => decodeSafetensors(good.subarray(0, good.length - 4)),
    /tensor \w+ byte range \[\d+, \d+\) does not fit the file: its data section holds \d+ bytes/,
  );
  // Offsets that do not match the shape.
  assertUserError(
    () =>
      decodeSafetensors(
        rawFile({ w: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, new Uint8Array(8)),
      ),
    /tensor w byte range \[0, 4\) does not fit its shape: \[2\] of F32 takes 8 bytes, the range 4$/,
  );
  // Unsupported dtype.
  assertUserError(
    () =>
      decodeSafetensors(
        rawFile({ w: { dtype: "I32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)),
      ),
    /tensor w has dtype I32 \(F32 or F64 expected\)/,
  );
});

Deno.test("malformed header entries give a UserError, not a crash or a wrong read", () => {
  const data = new Uint8Array(16);
  const f32 = (shape: unknown, offsets: unknown) => ({
    dtype: "F32",
    shape,
    data_offsets: offsets,
  });
  const cases: [unknown, RegExp][] = [
    [null, /header/],
    [[1, 2], /header/],
    [{ w: 5 }, /tensor w/],
    [{ w: { dtype: "F32" } }, /tensor w/],
    [{ w: f32([1], undefined) }, /tensor w/],
    [{ w: f32([1], [-4, 0]) }, /tensor w/], // would read the header's last bytes as data
    [{ w: f32([1], [4, 0]) }, /tensor w/],
    [{ w: f32([-1, -1], [0, 4]) }, /tensor w/],
    [{ w: f32([1.5, 2], [0, 12]) }, /tensor w/],
    [{ w: f32("4", [0, 16]) }, /tensor w/],
    [{ __metadata__: { step: 3 } }, /metadata/],
    [{ __metadata__: "x" }, /metadata/],
    // two tensors over the same bytes: one weight would silently be the other's
    [{ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, /tensors a and b share bytes \[4, 8\)/],
    [{ a: f32([4], [0, 16]), b: f32([1], [8, 12]) }, /tensors a and b share bytes \[8, 12\)/],
  ];
  for (const [header, pattern] of cases) {
    assertUserError(() => decodeSafetensors(rawFile(header, data), "m.st"), pattern);
  }
});

// ---- Checkpoints: what the inputs are, and refusals ----

/** A small valid network, 3072-4-10 with BN on the hidden layer (seeded, no GPU). */
function smallParams(bn: boolean): Params {
  const sizes = [3072, 4, 10];
  let x = 1;
  const rand = () => (x = (x * 48271) % 2147483647) / 2147483647 - 0.5;
  const W = [
    Float64Array.from({ length: 3072 * 4 }, rand),
    Float64Array.from({ length: 40 }, rand),
  ];
  const b = [Float64Array.from({ length: 4 }, rand), Float64Array.from({ length: 10 }, rand)];
  const params: Params = { sizes, W, b };
  if (bn) {
    const vec = (f: (j: number) => number) => Float64Array.from({ length: 4 }, (_, j) => f(j));
    params.bn = [{
      gamma: vec((j) => 1 + j / 10),
      beta: vec((j) => j / 20),
      mean: vec((j) => j - 1.5),
      variance: vec((j) => 0.5 + j),
    }, null];
  }
  return params;
}
const STATS = {
  mean: Float32Array.from({ length: 3072 }, (_, d) => 100 + (d % 50)),
  std: Float32Array.from({ length: 3072 }, (_, d) => 40 + (d % 30)),
};
const CK = "bad.safetensors";

/** The tensors and metadata of a good checkpoint, to break. */
function goodCheckpoint(
  bn = true,
): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  const { tensors, metadata } = decodeSafetensors(encodeCheckpoint(smallParams(bn), STATS));
  return { tensors, metadata };
}

/** A checkpoint whose tensors `edit` has broken. */
function brokenCheckpoint(edit: (t: Record<string, Tensor>) => void, bn = true): Uint8Array {
  const { tensors, metadata } = goodCheckpoint(bn);
  edit(tensors);
  return encodeSafetensors(tensors, metadata);
}

/** decodeCheckpoint refuses `bytes` with one line starting with the file's name. */
function assertRefused(bytes: Uint8Array, pattern: RegExp): void {
  assertUserError(() => decodeCheckpoint(bytes, CK), pattern);
  assertUserError(() => decodeCheckpoint(bytes, CK), /^bad\.safetensors[: ]/);
}

Deno.test("checkpoint: round trip, and the metadata says what the inputs are", () => {
  for (const bn of [false, true]) {
    const params = smallParams(bn);
    const ck = decodeCheckpoint(encodeCheckpoint(params, STATS, { lambda: "0.01" }), "ok.st");
    assert.deepEqual(ck.params.sizes, [3072, 4, 10]);
    assert.deepEqual(ck.mean, STATS.mean);
    assert.deepEqual(ck.std, STATS.std);
    for (const l of [0, 1]) {
      assert.deepEqual(ck.params.W[l], params.W[l].map(Math.fround));
    }
    assert.equal(!!ck.params.bn, bn);
    assert.equal(ck.metadata.format, CHECKPOINT_FORMAT);
    assert.equal(ck.metadata.lambda, "0.01");
    assert.equal(ck.metadata["input.pixels"], "uint8 0..255");
    assert.equal(
      ck.metadata["input.layout"],
      "CHW: the R plane, then G, then B, each 32x32 row-major, flattened to 3072",
    );
    assert.equal(ck.metadata["input.normalise"], "x = (pixels - input.mean) / input.std");
    assert.match(ck.metadata.network, /BatchNorm1d\(eps=1e-5\)/);
    for (const [k, v] of Object.entries(INPUT_METADATA)) assert.equal(ck.metadata[k], v);
  }
});

Deno.test("checkpoint refused: a layer of 0 units", () => {
  const bytes = brokenCheckpoint((t) => {
    t["fc1.weight"] = { shape: [0, 3072], data: new Float32Array(0) };
    t["fc1.bias"] = { shape: [0], data: new Float32Array(0) };
    t["fc2.weight"] = { shape: [10, 0], data: new Float32Array(0) };
    delete t["bn1.weight"];
  });
  assertRefused(
    bytes,
    /^bad\.safetensors: fc1\.weight has shape \[0,3072\]: a dimension of 0 \(a layer of 0 units\) cannot be evaluated/,
  );
  // An empty input.
  assertRefused(
    brokenCheckpoint((t) => {
      t["input.mean"] = { shape: [0], data: new Float32Array(0) };
    }),
    /input\.mean has shape \[0\]: a dimension of 0/,
  );
});

Deno.test("checkpoint refused: NaN or Inf in a weight", () => {
  assertRefused(
    brokenCheckpoint((t) => {
      t["fc1.weight"].data[3 * 3072 + 17] = NaN;
      t["fc1.weight"].data[5] = NaN;
    }),
    /^bad\.safetensors: fc1\.weight holds NaN at \[0, 5\] \(and 1 more NaN\/Inf values\): the network diverged or the file is corrupt/,
  );
  assertRefused(
    brokenCheckpoint((t) => t["fc2.weight"].data[39] = -Infinity),
    /fc2\.weight holds -Infinity at \[9, 3\]: /,
  );
});

Deno.test("checkpoint refused: NaN or Inf in a bias", () => {
  assertRefused(
    brokenCheckpoint((t) => t["fc2.bias"].data[2] = Infinity),
    /^bad\.safetensors: fc2\.bias holds Infinity at \[2\]: the network diverged/,
  );
  assertRefused(
    brokenCheckpoint((t) => t["fc1.bias"].data[0] = NaN, false),
    /fc1\.bias holds NaN at \[0\]/,
  );
});

Deno.test("checkpoint refused: NaN or Inf in a batch-norm tensor", () => {
  for (const name of ["bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"]) {
    for (const v of [NaN, Infinity]) {
      assertRefused(
        brokenCheckpoint((t) => t[name].data[1] = v),
        new RegExp(`^bad\\.safetensors: ${name.replace(".", "\\.")} holds ${v} at \\[1\\]`),
      );
    }
  }
});

Deno.test("checkpoint refused: a negative batch-norm running variance", () => {
  assertRefused(
    brokenCheckpoint((t) => t["bn1.running_var"].data[2] = -0.25),
    /^bad\.safetensors: bn1\.running_var\[2\] is -0\.25: a variance cannot be negative/,
  );
});

Deno.test("checkpoint refused: NaN or Inf in input.mean", () => {
  assertRefused(
    brokenCheckpoint((t) => t["input.mean"].data[3071] = NaN),
    /^bad\.safetensors: input\.mean holds NaN at \[3071\]/,
  );
});

Deno.test("checkpoint refused: NaN or Inf in input.std", () => {
  assertRefused(
    brokenCheckpoint((t) => t["input.std"].data[7] = Infinity),
    /^bad\.safetensors: input\.std holds Infinity at \[7\]/,
  );
});

Deno.test("checkpoint refused: a zero or negative input.std entry", () => {
  assertRefused(
    brokenCheckpoint((t) => t["input.std"].data[17] = 0),
    /^bad\.safetensors: input\.std\[17\] is 0: inputs are divided by input\.std, so every entry must be > 0/,
  );
  assertRefused(
    brokenCheckpoint((t) => t["input.std"].data[0] = -3),
    /input\.std\[0\] is -3: inputs are divided/,
  );
});

Deno.test("checkpoint refused: a truncated file", () => {
  const good = encodeCheckpoint(smallParams(true), STATS);
  const headLen = Number(new DataView(good.buffer).getBigUint64(0, true));
  for (const length of [0, 5, 8, 8 + headLen - 1, 8 + headLen, good.length - 1]) {
    assertRefused(
      good.subarray(0, length),
      /^bad\.safetensors is not a valid safetensors file: (shorter than its 8-byte header length|header length \d+ out of range: the file holds only \d+ bytes after it \(truncated|tensor \S+ byte range .* does not fit the file: its data section holds \d+ bytes \(truncated)/,
    );
  }
});

Deno.test("checkpoint refused: a header claiming offsets past the end", () => {
  const { tensors, metadata } = goodCheckpoint();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = {
      dtype: "F32",
      shape: t.shape,
      data_offsets: [offset, offset + 4 * t.data.length],
    };
    offset += 4 * t.data.length;
  }
  (header["fc2.bias"] as { data_offsets: number[] }).data_offsets = [offset, offset + 40];
  assertRefused(
    rawFile(header, new Uint8Array(offset)),
    /^bad\.safetensors is not a valid safetensors file: tensor fc2\.bias byte range \[\d+, \d+\) does not fit the file: its data section holds \d+ bytes/,
  );
});

Deno.test("checkpoint refused: a header length larger than the file", () => {
  const bytes = encodeCheckpoint(smallParams(false), STATS);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(bytes.length), true);
  assertRefused(
    bytes,
    new RegExp(
      `^bad\\.safetensors is not a valid safetensors file: header length ${bytes.length} out of ` +
        `range: the file holds only ${bytes.length - 8} bytes after it`,
    ),
  );
});

Deno.test("checkpoint refused: a huge header JSON (over 100 MB) before parsing it", () => {
  // A real file of that size: a header of 100 000 001 bytes of valid JSON.
  const n = MAX_HEADER_BYTES + 1;
  const bytes = new Uint8Array(8 + n);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(n), true);
  const open = new TextEncoder().encode('{"__metadata__":{"x":"');
  bytes.fill(0x61, 8); // 'a'
  bytes.set(open, 8);
  bytes.set(new TextEncoder().encode('"}}'), 8 + n - 3);
  const t0 = performance.now();
  assertRefused(
    bytes,
    /^bad\.safetensors is not a valid safetensors file: header length 100000001 out of range: at most 100000000 bytes are read/,
  );
  assert.ok(performance.now() - t0 < 1000, "refused without parsing");
});

Deno.test("checkpoint refused: a shape whose product does not match the byte length", () => {
  const { tensors, metadata } = goodCheckpoint(false);
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const data: Uint8Array[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    // fc1.bias claims 5 values but holds 4
    const shape = name === "fc1.bias" ? [5] : t.shape;
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + 4 * t.data.length] };
    offset += 4 * t.data.length;
    data.push(new Uint8Array(t.data.buffer));
  }
  const all = new Uint8Array(offset);
  let at = 0;
  for (const d of data) all.set(d, (at += d.length) - d.length);
  assertRefused(
    rawFile(header, all),
    /^bad\.safetensors is not a valid safetensors file: tensor fc1\.bias byte range \[\d+, \d+\) does not fit its shape: \[5\] of F32 takes 20 bytes, the range 16$/,
  );
});

Deno.test("checkpoint refused: a non-F32 dtype", () => {
  const { tensors, metadata } = goodCheckpoint(false);
  const build = (dtype: string, size: number) => {
    const header: Record<string, unknown> = { __metadata__: metadata };
    const parts: Uint8Array[] = [];
    let offset = 0;
    for (const [name, t] of Object.entries(tensors)) {
      const d = name === "fc2.bias" ? dtype : "F32";
      const bytes = d === "F64"
        ? new Uint8Array(Float64Array.from(t.data).buffer)
        : d === "F32"
        ? new Uint8Array(t.data.slice().buffer)
        : new Uint8Array(size * t.data.length);
      header[name] = { dtype: d, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
      offset += bytes.length;
      parts.push(bytes);
    }
    const all = new Uint8Array(offset);
    let at = 0;
    for (const p of parts) all.set(p, (at += p.length) - p.length);
    return rawFile(header, all);
  };
  // F64 is valid safetensors, but not a checkpoint of this tool.
  assert.equal(decodeSafetensors(build("F64", 8)).dtypes["fc2.bias"], "F64");
  assertRefused(
    build("F64", 8),
    /^bad\.safetensors: fc2\.bias is F64; a checkpoint holds F32 tensors \(in PyTorch, \.float\(\) the model before saving\)$/,
  );
  for (const dtype of ["F16", "BF16", "I32"]) {
    assertRefused(
      build(dtype, dtype === "I32" ? 4 : 2),
      new RegExp(
        `^bad\\.safetensors is not a valid safetensors file: tensor fc2\\.bias has dtype ${dtype} \\(F32 or F64 expected\\)$`,
      ),
    );
  }
});

Deno.test("checkpoint refused: missing tensors and shapes that do not chain", () => {
  assertRefused(
    brokenCheckpoint((t) => delete t["input.std"]),
    /^bad\.safetensors has no tensor input\.std: not a checkpoint of this tool$/,
  );
  assertRefused(
    brokenCheckpoint((t) => t["fc2.weight"] = { shape: [10, 5], data: new Float32Array(50) }),
    /^bad\.safetensors: fc2\.weight has shape \[10,5\] after a layer of 4: expected \[units, 4\]$/,
  );
  assertRefused(
    brokenCheckpoint((t) => t["fc2.bias"] = { shape: [9], data: new Float32Array(9) }),
    /^bad\.safetensors: fc2\.bias has shape \[9\], expected \[10\]$/,
  );
  assertRefused(
    brokenCheckpoint((t) =>
      t["input.std"] = { shape: [3071], data: new Float32Array(3071).fill(1) }
    ),
    /^bad\.safetensors: input\.std has shape \[3071\], expected \[3072\]$/,
  );
});

Deno.test("checkpoint refused: tensors that would change the network are never ignored", () => {
  const vec = (n: number, v = 0.5) => ({ shape: [n], data: new Float32Array(n).fill(v) });
  // batch norm on the output layer (which the tool's nets never have)
  assertRefused(
    brokenCheckpoint((t) => {
      delete t["fc2.bias"];
      t["bn2.weight"] = vec(10, 2);
      t["bn2.bias"] = vec(10);
      t["bn2.running_mean"] = vec(10);
      t["bn2.running_var"] = vec(10, 1);
    }),
    /^bad\.safetensors: bn2\.weight normalises the output layer \(fc2\), which no network of this tool does/,
  );
  // a bias beside the batch norm that replaces it
  assertRefused(
    brokenCheckpoint((t) => t["fc1.bias"] = vec(4, 3)),
    /^bad\.safetensors: fc1\.bias beside bn1\.weight: a batch-normalised layer has no bias/,
  );
  // a layer past a gap, a stray tensor, BN statistics of a layer without BN
  assertRefused(
    brokenCheckpoint((t) => t["fc4.weight"] = { shape: [10, 10], data: new Float32Array(100) }),
    /^bad\.safetensors: holds a tensor no network of this tool has \(fc4\.weight\) beside its 2 layers fc1\.\.fc2/,
  );
  assertRefused(
    brokenCheckpoint((t) => {
      t["bn2.running_mean"] = vec(10);
      t["extra"] = vec(3);
    }),
    /holds 2 tensors no network of this tool has \(bn2\.running_mean, extra\)/,
  );
  assertRefused(
    brokenCheckpoint((t) => t["bn1.running_mean"] = vec(4), false),
    /holds a tensor no network of this tool has \(bn1\.running_mean\)/,
  );
});

// ---- Cross-check with Python ----

interface PythonProbe {
  ok: boolean;
  reason: string;
  lib: boolean;
}

async function probePython(): Promise<PythonProbe> {
  const run = async (code: string) => {
    try {
      const out = await new Deno.Command("python3", {
        args: ["-c", code],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return out.code === 0;
    } catch {
      return false; // python3 not installed
    }
  };
  if (!(await run("import sys"))) return { ok: false, reason: "python3 not found", lib: false };
  if (!(await run("import numpy"))) {
    return { ok: false, reason: "python3 has no numpy", lib: false };
  }
  const lib = await run("import safetensors.numpy");
  return { ok: true, reason: lib ? "safetensors package" : "struct + json + numpy", lib };
}

const PY = await probePython();
if (!PY.ok) console.log(`safetensors_test: skipping the Python cross-check: ${PY.reason}`);

/** Reads a file (argv[1]) into {name: {shape, hex}} + metadata; writes argv[2] with its own. */
const PY_SCRIPT = `
import json, struct, sys
import numpy as np
USE_LIB = sys.argv[3] == "lib"

def read(path):
    if USE_LIB:
        from safetensors import safe_open
        from safetensors.numpy import load_file
        arrays = load_file(path)
        with safe_open(path, framework="np") as f:
            meta = f.metadata() or {}
    else:
        raw = open(path, "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n].decode("utf-8"))
        meta = header.pop("__metadata__", {})
        arrays = {}
        for name, e in header.items():
            assert e["dtype"] == "F32", e["dtype"]
            a, b = e["data_offsets"]
            arrays[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(e["shape"])
    return {
        "metadata": meta,
        "tensors": {k: {"shape": list(v.shape), "hex": v.astype("<f4").tobytes().hex()}
                    for k, v in arrays.items()},
    }

def write(path):
    tensors = {
        "a": np.arange(6, dtype="<f4").reshape(2, 3) / 4,
        "b": np.array([1e-3, -2.5, 7.0], dtype="<f8"),
    }
    meta = {"written_by": "python"}
    if USE_LIB:
        from safetensors.numpy import save_file
        save_file(tensors, path, metadata=meta)
        return
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name in sorted(tensors):
        v = tensors[name]
        blob = v.tobytes()
        dtype = {"float32": "F32", "float64": "F64"}[str(v.dtype)]
        header[name] = {"dtype": dtype, "shape": list(v.shape), "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    head = json.dumps(header).encode("utf-8")
    head += b" " * ((8 - (8 + len(head)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))

out = read(sys.argv[1])
write(sys.argv[2])
print(json.dumps(out))
`;

Deno.test({
  name: `Python reads our files and we read Python's (${PY.reason})`,
  ignore: !PY.ok,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "safetensors_test_" });
    try {
      const ours = join(dir, "ours.safetensors");
      const theirs = join(dir, "theirs.safetensors");
      const script = join(dir, "check.py");
      await Deno.writeFile(ours, encodeSafetensors(TENSORS, METADATA));
      await Deno.writeTextFile(script, PY_SCRIPT);
      const out = await new Deno.Command("python3", {
        args: [script, ours, theirs, PY.lib ? "lib" : "manual"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const seen = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.deepEqual(seen.metadata, METADATA);
      assert.deepEqual(Object.keys(seen.tensors).sort(), Object.keys(TENSORS).sort());
      for (const [name, t] of Object.entries(TENSORS)) {
        assert.deepEqual(seen.tensors[name].shape, t.shape, name);
        assert.equal(seen.tensors[name].hex, hex(t.data), name);
      }

      const back = decodeSafetensors(await Deno.readFile(theirs), theirs);
      assert.deepEqual(back.metadata, { written_by: "python" });
      assert.deepEqual(back.tensors.a.shape, [2, 3]);
      assert.deepEqual(Array.from(back.tensors.a.data), [0, 0.25, 0.5, 0.75, 1, 1.25]);
      assert.deepEqual(back.tensors.b.shape, [3]);
      assert.deepEqual(Array.from(back.tensors.b.data), [Math.fround(1e-3), -2.5, 7]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
