/**
 * TensorFlow.js peer (run in Deno): the WebGPU trainer's training step as a TensorFlow.js user
 * would write it, on the `wasm` or the `webgpu` backend: variables for W and b, `tf.gather` +
 * cast + normalise of the shuffled uint8 rows (held as int32: tfjs has no uint8 tensors),
 * ReLU layers, `tf.losses.softmaxCrossEntropy` (mean over the batch) plus λ·ΣW², and
 * `tf.train.sgd(...).minimize`, which gives W −= η(dW + 2λW), b −= η·db.
 *
 * Run by bench/bench.ts as `deno run -A --no-lock bench/peers/tfjs.ts --backend wasm --data DIR`;
 * protocol in `client.ts`. The packages are imported dynamically (so they stay out of the
 * project's type check and lock file) from npm into node_modules on first use.
 *
 * @module
 */
// TensorFlow.js is loaded at run time from npm without its type declarations.
// deno-lint-ignore-file no-explicit-any

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PREFIX } from "./client.ts";

/** The npm packages this peer loads (exact versions). */
export const TFJS_PACKAGES = {
  tfjs: "npm:@tensorflow/tfjs@4.22.0",
  wasm: "npm:@tensorflow/tfjs-backend-wasm@4.22.0",
  webgpu: "npm:@tensorflow/tfjs-backend-webgpu@4.22.0",
};

type Schedule =
  | { kind: "cyclic"; etaMin: number; etaMax: number; stepSize: number }
  | { kind: "constant"; eta: number };

function send(obj: unknown): void {
  Deno.stdout.writeSync(new TextEncoder().encode(PREFIX + JSON.stringify(obj) + "\n"));
}

function etaAt(s: Schedule, t: number): number {
  if (s.kind !== "cyclic") return s.eta;
  const c = t % (2 * s.stepSize);
  const frac = c <= s.stepSize ? c / s.stepSize : 2 - c / s.stepSize;
  return s.etaMin + frac * (s.etaMax - s.etaMin);
}

function arg(name: string, fallback?: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < Deno.args.length) return Deno.args[i + 1];
  if (fallback !== undefined) return fallback;
  throw new Error(`usage: tfjs.ts --backend wasm|webgpu --data DIR (missing --${name})`);
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl);
      buf = buf.slice(nl + 1);
    }
  }
  if (buf) yield buf;
}

async function loadBackend(backend: string): Promise<{ tf: any; info: Record<string, unknown> }> {
  const tf: any = await import(TFJS_PACKAGES.tfjs);
  const info: Record<string, unknown> = { tfjs: tf.version?.tfjs };
  if (backend === "wasm") {
    const wasm: any = await import(TFJS_PACKAGES.wasm);
    const entry = import.meta.resolve(TFJS_PACKAGES.wasm);
    const dist = entry.startsWith("file:")
      ? new URL(".", entry).href
      : new URL("../../node_modules/@tensorflow/tfjs-backend-wasm/dist/", import.meta.url).href;
    wasm.setWasmPaths(dist);
    info.wasmPaths = fileURLToPath(dist);
  } else if (backend === "webgpu") {
    await import(TFJS_PACKAGES.webgpu);
    const adapter = await (navigator as any).gpu?.requestAdapter();
    if (!adapter) throw new Error("navigator.gpu has no adapter");
    info.adapter = adapter.info?.description || adapter.info?.vendor || "";
  } else {
    throw new Error(`unknown backend ${backend} (wasm, webgpu)`);
  }
  if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend("${backend}") failed`);
  await tf.ready();
  info.backend = tf.getBackend();
  if (backend === "wasm") {
    info.simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
    info.wasmThreads = await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT");
  }
  return { tf, info };
}

/** Data written by the bench (see bench/peers/common.py). */
async function loadData(dir: string) {
  const meta = JSON.parse(await Deno.readTextFile(join(dir, "meta.json")));
  const f32 = async (name: string) =>
    new Float32Array((await Deno.readFile(join(dir, name))).buffer);
  return {
    meta,
    images: await Deno.readFile(join(dir, "train_images.u8")),
    labels: await Deno.readFile(join(dir, "train_labels.u8")),
    mean: await f32("mean.f32"),
    istd: await f32("istd.f32"),
  };
}

class TfjsPeer {
  tf: any;
  /**
   * The training images as int32 tensors of at most `chunk` rows each: one tensor, unless the
   * backend binds less than the whole set at once (webgpu: maxStorageBufferBindingSize, 128 MiB on
   * llvmpipe, i.e. 10 922 images of 3072 int32).
   */
  images: any[] = [];
  chunk: number;
  labels: any;
  mean: any;
  istd: any;
  n: number;
  W: any[] = [];
  b: any[] = [];
  opt: any = null;
  perm: any = null;
  batch = 0;
  lam = 0;
  schedule: Schedule = { kind: "constant", eta: 0 };
  stepsPerEpoch = 1;
  t = 0;

  constructor(tf: any, data: Awaited<ReturnType<typeof loadData>>) {
    this.tf = tf;
    const dim = data.meta.dim as number;
    this.n = data.meta.train as number;
    const limit = tf.backend()?.device?.limits?.maxStorageBufferBindingSize ?? Infinity;
    this.chunk = Math.min(this.n, Math.floor(limit / (4 * dim)));
    for (let at = 0; at < this.n; at += this.chunk) {
      const rows = Math.min(this.chunk, this.n - at);
      const part = Int32Array.from(data.images.subarray(at * dim, (at + rows) * dim));
      this.images.push(tf.tensor2d(part, [rows, dim], "int32"));
    }
    this.labels = tf.tensor1d(Int32Array.from(data.labels), "int32");
    this.mean = tf.tensor1d(data.mean);
    this.istd = tf.tensor1d(data.istd);
  }

  setup(a: { sizes: number[]; batch: number; lam: number; schedule: Schedule; seed?: number }) {
    const tf = this.tf;
    for (const v of [...this.W, ...this.b]) v.dispose();
    this.perm?.dispose();
    this.perm = null;
    const seed = a.seed ?? 0;
    this.W = [];
    this.b = [];
    for (let l = 0; l + 1 < a.sizes.length; l++) {
      const [nIn, nOut] = [a.sizes[l], a.sizes[l + 1]];
      this.W.push(
        tf.variable(tf.randomNormal([nIn, nOut], 0, 1 / Math.sqrt(nIn), "float32", seed + l)),
      );
      this.b.push(tf.variable(tf.zeros([nOut])));
    }
    this.opt = tf.train.sgd(0.01);
    this.batch = a.batch;
    this.lam = a.lam;
    this.schedule = a.schedule;
    this.stepsPerEpoch = Math.floor(this.n / a.batch);
    this.t = 0;
    return { stepsPerEpoch: this.stepsPerEpoch };
  }

  /** One training step; `rows` overrides the batch's sample indices (for the cross-check). */
  step(rows?: Int32Array): void {
    const tf = this.tf;
    const B = this.batch;
    const k = this.t % this.stepsPerEpoch;
    if (!rows && (k === 0 || !this.perm)) {
      this.perm?.dispose();
      this.perm = tf.tensor1d(Int32Array.from(tf.util.createShuffledIndices(this.n)), "int32");
    }
    this.opt.setLearningRate(etaAt(this.schedule, this.t));
    this.t++;
    tf.tidy(() => {
      const idx = rows ? tf.tensor1d(rows, "int32") : this.perm.slice([k * B], [B]);
      const x = this.gatherRows(idx).toFloat().sub(this.mean).mul(this.istd);
      const y = tf.oneHot(tf.gather(this.labels, idx), 10);
      this.opt.minimize(
        () => {
          let h = x;
          const L = this.W.length;
          for (let l = 0; l < L - 1; l++) h = tf.relu(h.matMul(this.W[l]).add(this.b[l]));
          const logits = h.matMul(this.W[L - 1]).add(this.b[L - 1]);
          let cost = tf.losses.softmaxCrossEntropy(y, logits);
          for (const w of this.W) cost = cost.add(tf.sum(tf.square(w)).mul(this.lam));
          return cost;
        },
        false,
        [...this.W, ...this.b],
      );
    });
  }

  /**
   * Rows `idx` (an int32 tensor) of the images, in order, all on the device: one gather, or with
   * chunks, the sum over chunks of the gathered rows masked to those in the chunk (exact: every
   * other term is zero).
   */
  gatherRows(idx: any): any {
    const tf = this.tf;
    if (this.images.length === 1) return tf.gather(this.images[0], idx);
    const int = (v: number) => tf.scalar(v, "int32");
    const parts = this.images.map((part: any, c: number) => {
      const local = idx.sub(int(c * this.chunk));
      const last = int(part.shape[0] - 1);
      const inside = local.greaterEqual(int(0)).logicalAnd(local.lessEqual(last));
      const rows = tf.gather(part, tf.minimum(tf.maximum(local, int(0)), last));
      return rows.mul(inside.cast("int32").expandDims(1));
    });
    return tf.addN(parts);
  }

  /** Wait until the backend has finished all queued work (reads one weight back). */
  async sync(): Promise<void> {
    const one = this.W[this.W.length - 1].slice([0, 0], [1, 1]);
    await one.data();
    one.dispose();
  }

  async steps(a: { n: number }) {
    await this.sync();
    const t0 = performance.now();
    for (let i = 0; i < a.n; i++) this.step();
    await this.sync();
    return { ms: performance.now() - t0, tensors: this.tf.memory().numTensors };
  }

  epoch() {
    this.t = Math.ceil(this.t / this.stepsPerEpoch) * this.stepsPerEpoch;
    return this.steps({ n: this.stepsPerEpoch });
  }

  async loss() {
    const tf = this.tf;
    const out = tf.tidy(() => {
      const x = this.images[0].slice([0, 0], [1000, -1]).toFloat().sub(this.mean).mul(this.istd);
      const y = this.labels.slice([0], [1000]);
      let h = x;
      const L = this.W.length;
      for (let l = 0; l < L - 1; l++) h = tf.relu(h.matMul(this.W[l]).add(this.b[l]));
      const logits = h.matMul(this.W[L - 1]).add(this.b[L - 1]);
      return [
        tf.losses.softmaxCrossEntropy(tf.oneHot(y, 10), logits),
        logits.argMax(1).equal(y).toFloat().mean(),
        tf.addN(this.W.map((w) => tf.sum(tf.square(w)))),
      ];
    });
    const [loss, acc, l2] = await Promise.all(out.map((t: any) => t.data()));
    out.forEach((t: any) => t.dispose());
    return { loss: loss[0], accuracy: acc[0], l2: l2[0] };
  }

  /** Train from the trainer's initial parameters on its batches; score 1000 samples. */
  async verify(a: {
    sizes: number[];
    batch: number;
    lam: number;
    schedule: Schedule;
    steps: number;
    init: string;
    idx: string;
  }) {
    const tf = this.tf;
    this.setup(a);
    const bytes = await Deno.readFile(a.init);
    const flat = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    let at = 0;
    for (let l = 0; l + 1 < a.sizes.length; l++) {
      const [nIn, nOut] = [a.sizes[l], a.sizes[l + 1]];
      this.W[l].assign(tf.tensor2d(flat.slice(at, at + nIn * nOut), [nIn, nOut]));
      at += nIn * nOut;
      this.b[l].assign(tf.tensor1d(flat.slice(at, at + nOut)));
      at += nOut;
    }
    const ib = await Deno.readFile(a.idx);
    const rows = new Int32Array(new Uint32Array(ib.buffer, ib.byteOffset, ib.byteLength / 4));
    for (let t = 0; t < a.steps; t++) this.step(rows.slice(t * a.batch, (t + 1) * a.batch));
    return await this.loss();
  }
}

async function main(): Promise<void> {
  const backend = arg("backend");
  const { tf, info } = await loadBackend(backend);
  const peer = new TfjsPeer(tf, await loadData(arg("data")));
  send({
    ok: {
      peer: `tfjs-${backend}`,
      deno: Deno.version.deno,
      ...info,
      capabilities: ["steps", "epoch", "verify"],
    },
  });
  for await (const line of lines(Deno.stdin.readable)) {
    if (!line.trim()) continue;
    try {
      const msg = JSON.parse(line);
      const a = msg.args ?? {};
      switch (msg.cmd) {
        case "quit":
          send({ ok: true });
          return;
        case "setup":
          send({ ok: peer.setup(a) });
          break;
        case "steps":
          send({ ok: await peer.steps(a) });
          break;
        case "epoch":
          send({ ok: await peer.epoch() });
          break;
        case "loss":
          send({ ok: await peer.loss() });
          break;
        case "verify":
          send({ ok: await peer.verify(a) });
          break;
        default:
          send({ error: `unsupported command ${JSON.stringify(msg.cmd)}` });
      }
    } catch (e) {
      send({ error: String((e as Error)?.stack ?? e).split("\n").slice(0, 3).join(" | ") });
    }
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(String((e as Error)?.stack ?? e));
    Deno.exit(2);
  }
  Deno.exit(0);
}
