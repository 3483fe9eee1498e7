/**
 * Tests of src/io/safetensors.ts: round trips, the byte layout, corrupt files, and a cross-check
 * with Python (the `safetensors` package if importable, else a struct + json + numpy reader).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeSafetensors, encodeSafetensors, type Tensor } from "../src/io/safetensors.ts";
import { UserError } from "../src/errors.ts";

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
    /tensor \w+ byte range \[\d+, \d+\) does not fit its shape or the file/,
  );
  // Offsets that do not match the shape.
  assertUserError(
    () =>
      decodeSafetensors(
        rawFile({ w: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, new Uint8Array(8)),
      ),
    /tensor w byte range \[0, 4\) does not fit/,
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
  ];
  for (const [header, pattern] of cases) {
    assertUserError(() => decodeSafetensors(rawFile(header, data), "m.st"), pattern);
  }
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
