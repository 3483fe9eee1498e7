/**
 * The dashboard (`deno task serve`): paths (no traversal, no links, no hidden names), what the
 * index lists, live updates by Server-Sent Events from a growing progress log (a half-written last
 * line ignored), the command's errors, and — in headless Chromium — a real training watched live:
 * the page shows more evaluation points over time, with no console error and no request off the
 * loopback server. The screenshot goes to `$TEST_OUT/serve/` or a temporary directory.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { markOwned } from "../src/io/owned.ts";
import { PROGRESS_FILE, PROGRESS_FORMAT, type ProgressHeader } from "../src/train/live.ts";
import { parseProgress } from "../src/train/live.ts";
import { safePath, serveRuns } from "../src/serve/server.ts";
import { scanRuns } from "../src/serve/scan.ts";
import { Browser, findChromium } from "./browser.ts";
import { exists } from "../src/io/exists.ts";
import {
  ENV,
  hyperSweepConfig,
  writeFakeHyperSweep,
  writeFakeRun,
  writeFakeSweep,
} from "./report_fixtures.ts";
import { populationHyper } from "../src/serve/population_values.ts";
import { sci } from "../src/report/format.ts";
import { handle } from "../src/serve/server.ts";
import { cachedPaths, readProgress } from "../src/serve/scan.ts";
import { acquireLock } from "../src/io/lock.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";

const header: ProgressHeader = {
  format: PROGRESS_FORMAT,
  name: "growing",
  config: { name: "growing" },
  seed: 1,
  layerSizes: [3072, 10, 10],
  lambda: 0.01,
  env: ENV,
  startedAt: new Date().toISOString(),
  totalSteps: 100,
  stepsPerEpoch: 10,
  lrSchedule: [[0, 0.01], [100, 0.01]],
  classNames: [],
  dataSizes: { train: 1000, val: 100, test: 0 },
};

const split = (x: number) => ({ loss: 2 - x, cost: 2.1 - x, accuracy: 0.1 + x / 4 });
const line = (step: number) =>
  JSON.stringify({
    point: { step, epoch: step / 10, eta: 0.01, train: split(step / 100), val: split(step / 200) },
    elapsedSeconds: step / 10,
    stepsPerSecond: 10,
    remainingSeconds: (100 - step) / 10,
  }) + "\n";

/** A runs folder with an in-progress run `growing` (three points and half a line). */
async function folder(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "serve-test-" });
  const partial = join(root, "growing.partial");
  await markOwned(partial, "partial", "x");
  await Deno.writeTextFile(
    join(partial, PROGRESS_FILE),
    JSON.stringify(header) + "\n" + line(0) + line(10) + line(20) + line(30).slice(0, 40),
  );
  return root;
}

Deno.test("serve: a progress log's half-written last line is ignored", () => {
  const log = parseProgress(JSON.stringify(header) + "\n" + line(0) + line(10).slice(0, 30));
  assert.equal(log?.lines.length, 1);
  assert.equal(parseProgress('{"format":"other"}\n'), null);
  assert.equal(parseProgress(JSON.stringify(header)), null, "a header without its newline");
});

Deno.test("serve: paths are named segment by segment, never through a link or up", async () => {
  const root = await folder();
  const outside = await Deno.makeTempDir({ prefix: "serve-outside-" });
  await Deno.symlink(outside, join(root, "link"));
  assert.equal(safePath(root, ["growing"]), "growing");
  for (
    const bad of [
      [".."],
      ["..", "etc"],
      ["%2e%2e"],
      ["a%2Fb"],
      [".hidden"],
      ["x%00"],
      [""],
      [
        "link",
      ],
      ["link", "run"],
      ["%E0%A4%A"],
    ]
  ) {
    assert.equal(safePath(root, bad), null, bad.join("/"));
  }
  await Deno.remove(root, { recursive: true });
  await Deno.remove(outside, { recursive: true });
});

Deno.test("serve: the index, pages, headers, and what is refused", async () => {
  const root = await folder();
  await Deno.symlink("/etc", join(root, "etc"));
  const server = serveRuns({ root, port: 0, pollMs: 50 });
  const base = `http://127.0.0.1:${server.port}`;
  try {
    const entries = scanRuns(root);
    assert.deepEqual(entries.map((e) => [e.path, e.kind, e.status, e.progress]), [
      ["growing", "run", "interrupted", { done: 20, total: 100 }],
    ]);
    const index = await fetch(`${base}/`);
    const text = await index.text();
    assert.equal(index.status, 200);
    assert.match(text, /href="\/run\/growing"/);
    assert.match(index.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    const page = await fetch(`${base}/run/growing`);
    const html = await page.text();
    assert.equal(page.status, 200);
    assert.match(html, /step 20\/100/);
    assert.match(page.headers.get("content-security-policy") ?? "", /connect-src 'self'/);
    for (const r of [index, page]) {
      assert.match(r.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
      assert.equal(r.headers.get("x-frame-options"), "DENY");
    }
    for (
      const path of [
        "/run/..%2F..%2Fetc%2Fpasswd",
        "/run/%2e%2e/%2e%2e/etc/passwd",
        "/run/etc",
        "/run/etc/passwd",
        "/sweep/growing",
        "/run/missing",
        "/growing.partial/progress.jsonl",
        "/events/run/..",
      ]
    ) {
      const r = await fetch(base + path);
      assert.equal(r.status, 404, path);
      assert.doesNotMatch(await r.text(), /root:/);
    }
    // a page of another site reaching loopback by DNS rebinding sends its own Host
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(
      new TextEncoder().encode("GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"),
    );
    const answer = new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
    assert.match(answer, /^HTTP\/1\.1 403/);
    const post = await fetch(`${base}/`, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await server.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve: the event stream pushes the page again when the progress log grows", async () => {
  const root = await folder();
  const server = serveRuns({ root, port: 0, pollMs: 50 });
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/events/run/growing`);
    assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    const next = async (pattern: RegExp) => {
      const end = Date.now() + 10_000;
      while (!pattern.test(seen) && Date.now() < end) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
      }
      assert.match(seen, pattern);
    };
    await next(/step 20\/100/);
    // finish the half-written line, then add one more point
    const log = join(root, "growing.partial", PROGRESS_FILE);
    await Deno.writeTextFile(log, line(30).slice(40) + line(40), { append: true });
    await next(/step 40\/100/);
    await reader.cancel();
  } finally {
    await server.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});

/** `deno task serve ROOT --port 0` in a subprocess (a server blocked in a read cannot hang the test). */
async function spawnServer(root: string, extra: string[] = []) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/serve.ts", root, "--port", "0", ...extra],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!/\n/.test(out)) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  reader.releaseLock();
  const url = out.match(/on (http:\/\/\S+\/) /)?.[1];
  return {
    url: url ?? "",
    line: out.trim(),
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await child.stdout.cancel().catch(() => {});
      return new TextDecoder().decode(
        await new Response(child.stderr).arrayBuffer().catch(() => new ArrayBuffer(0)),
      );
    },
  };
}

/** A committed run `name` under `root` with five points (see tests/report_fixtures.ts). */
function fakeRun(root: string, name: string) {
  return writeFakeRun(join(root, name), {
    name,
    points: 5,
    steps: 500,
    lambda: 0.01,
    seed: 1,
    layerSizes: [3072, 10, 10],
  });
}

Deno.test("serve: a FIFO, a device, a link or a huge file named like a run's file never blocks the server", async () => {
  const root = await Deno.makeTempDir({ prefix: "serve-hostile-" });
  const outside = await Deno.makeTempDir({ prefix: "serve-outside-" });
  const fifo = async (path: string) => {
    const r = await new Deno.Command("mkfifo", { args: [path] }).output();
    assert.ok(r.success, `mkfifo ${path}`);
  };
  const run = (name: string) => fakeRun(root, name);
  // committed runs whose metrics.json, checkpoint or marker is a FIFO, a device or a link
  await run("fifo-metrics");
  await Deno.remove(join(root, "fifo-metrics", "metrics.json"));
  await markOwned(join(root, "fifo-metrics"), "run", "x");
  await fifo(join(root, "fifo-metrics", "metrics.json"));
  await run("zero-metrics");
  await markOwned(join(root, "zero-metrics"), "run", "x");
  await Deno.remove(join(root, "zero-metrics", "metrics.json"));
  await Deno.symlink("/dev/zero", join(root, "zero-metrics", "metrics.json"));
  await run("fifo-weights");
  await Deno.remove(join(root, "fifo-weights", "weights.safetensors"));
  await fifo(join(root, "fifo-weights", "weights.safetensors"));
  await run("zero-weights");
  await Deno.remove(join(root, "zero-weights", "weights.safetensors"));
  await Deno.symlink("/dev/zero", join(root, "zero-weights", "weights.safetensors"));
  await run("fifo-marker");
  await fifo(join(root, "fifo-marker", ".webgpu-mlp.json"));
  await fifo(join(root, "fifo-marker.lock"));
  // runs in training whose progress log is a FIFO, a link to a device, or 2 GB (sparse)
  for (const name of ["fifo-log", "zero-log", "huge-log"]) {
    await markOwned(join(root, `${name}.partial`), "partial", "x");
  }
  await fifo(join(root, "fifo-log.partial", PROGRESS_FILE));
  await Deno.symlink("/dev/zero", join(root, "zero-log.partial", PROGRESS_FILE));
  const huge = await Deno.open(join(root, "huge-log.partial", PROGRESS_FILE), {
    write: true,
    create: true,
  });
  await huge.write(new TextEncoder().encode(JSON.stringify(header) + "\n"));
  await huge.truncate(2 ** 31);
  huge.close();
  // a sweep whose trials file and population file are FIFOs
  await markOwned(join(root, "sw"), "sweep", "x");
  await fifo(join(root, "sw", "trials.jsonl"));
  await fifo(join(root, "sw", "population.json"));
  await fifo(join(root, "sw.lock"));
  const server = await spawnServer(root);
  try {
    assert.ok(server.url, server.line);
    const get = async (path: string) => {
      const r = await fetch(server.url + path, { signal: AbortSignal.timeout(20_000) });
      return { status: r.status, text: await r.text() };
    };
    const index = await get("");
    assert.equal(index.status, 200);
    assert.match(index.text, /fifo-weights/);
    for (const name of ["fifo-metrics", "zero-metrics"]) {
      const page = await get(`run/${name}`);
      assert.equal(page.status, 200, name);
      assert.match(page.text, /not a regular file|symbolic link/, name);
    }
    for (const name of ["fifo-weights", "zero-weights"]) {
      const page = await get(`run/${name}`);
      assert.equal(page.status, 200, name);
      assert.match(page.text, /weights cannot be shown/, name);
    }
    assert.equal((await get("run/fifo-marker")).status, 200);
    for (const name of ["fifo-log", "zero-log", "huge-log"]) {
      assert.equal((await get(`run/${name}`)).status, 404, name);
    }
    assert.equal((await get("sweep/sw")).status, 200);
    // still answering, and never read 2 GB
    assert.equal((await get("")).status, 200);
  } finally {
    const stderr = await server.stop();
    assert.doesNotMatch(stderr, /error|Error/, stderr);
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("serve: files of the wrong shape or naming paths give a page of what is known", async () => {
  const root = await Deno.makeTempDir({ prefix: "serve-shape-" });
  const fake = (name: string) => fakeRun(root, name);
  const edit = async (path: string, change: (m: Record<string, unknown>) => void) => {
    const m = JSON.parse(await Deno.readTextFile(path));
    change(m);
    await Deno.writeTextFile(path, JSON.stringify(m));
  };
  await fake("shape");
  await edit(join(root, "shape", "metrics.json"), (m) => {
    m.status = {};
    m.curves = 5;
    m.timings = "x";
  });
  await fake("escape");
  await Deno.writeFile(join(root, "secret.safetensors"), new Uint8Array(16));
  await edit(join(root, "escape", "metrics.json"), (m) => m.checkpoint = "../secret.safetensors");
  await writeFakeSweep(join(root, "sw"));
  await fake("elsewhere");
  await edit(join(root, "sw", "sweep.json"), (m) => {
    (m.final as Record<string, unknown>).run = "../elsewhere";
  });
  // a progress log whose lines are not progress lines: the log ends at the first of them
  await markOwned(join(root, "odd.partial"), "partial", "x");
  await Deno.writeTextFile(
    join(root, "odd.partial", PROGRESS_FILE),
    JSON.stringify(header) + "\n" + line(0) + '{"point":{"step":5,"train":null,"val":7}}\n' +
      line(20),
  );
  try {
    const index = scanRuns(root);
    const status = Object.fromEntries(index.map((e) => [e.path, e.status]));
    assert.equal(status.shape, "damaged");
    assert.equal(status.escape, "damaged");
    assert.equal(index.find((e) => e.path === "odd")?.progress?.done, 0);
    const wants: [string, RegExp][] = [["run/shape", /status must be/], [
      "run/escape",
      /checkpoint/,
    ]];
    for (const [path, want] of wants) {
      const r = await handle(root, new Request(`http://127.0.0.1/${path}`));
      assert.equal(r.status, 200, path);
      const text = await r.text();
      assert.match(text, want, path);
      assert.doesNotMatch(text, new RegExp(root), "no server path on the page");
    }
    const sweep = await handle(root, new Request("http://127.0.0.1/sweep/sw"));
    assert.equal(sweep.status, 200);
    assert.match(await sweep.text(), /final\.run must be like/);
    const odd = await handle(root, new Request("http://127.0.0.1/run/odd"));
    assert.match(await odd.text(), /Interrupted at step 0\//);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve: a progress log is read from where the last look ended, and again when rewritten", async () => {
  const root = await folder();
  const partial = join(root, "growing.partial");
  const log = join(partial, PROGRESS_FILE);
  try {
    assert.deepEqual(readProgress(partial)?.lines.map((l) => l.point.step), [0, 10, 20]);
    await Deno.writeTextFile(log, line(30).slice(40) + line(40), { append: true });
    assert.deepEqual(readProgress(partial)?.lines.map((l) => l.point.step), [0, 10, 20, 30, 40]);
    // a resume rewrites the log (atomically) from the snapshot's points: no point twice
    await writeFileAtomic(log, JSON.stringify(header) + "\n" + line(0) + line(10));
    assert.deepEqual(readProgress(partial)?.lines.map((l) => l.point.step), [0, 10]);
    await Deno.writeTextFile(log, line(20), { append: true });
    assert.deepEqual(readProgress(partial)?.lines.map((l) => l.point.step), [0, 10, 20]);
    // a page of an interrupted run says where it stopped, not that it grows
    const page = await handle(root, new Request("http://127.0.0.1/run/growing"));
    const text = await page.text();
    assert.match(text, /Interrupted at step 20\/100/);
    assert.doesNotMatch(text, /The page grows/);
    // just resumed: the points from the snapshot carry no pace, and the run trains on
    const resumed = (step: number) => JSON.stringify({ point: JSON.parse(line(step)).point });
    await writeFileAtomic(log, [JSON.stringify(header), resumed(0), resumed(10), ""].join("\n"));
    const lock = await acquireLock(join(root, "growing.lock"), "test");
    try {
      assert.deepEqual(scanRuns(root).map((e) => [e.status, e.progress?.done]), [["running", 10]]);
      const live = await handle(root, new Request("http://127.0.0.1/run/growing"));
      assert.equal(live.status, 200);
      assert.match(await live.text(), /Training: step 10\/100 \(10\s?%\)\./);
    } finally {
      await lock.release();
    }
    // once the run is committed (its in-progress directory gone), nothing of its log is kept
    assert.ok(cachedPaths().includes(log));
    await Deno.remove(partial, { recursive: true });
    scanRuns(root);
    assert.ok(!cachedPaths().some((p) => p.startsWith(root)), cachedPaths().join(" "));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve: Host names as browsers send them, bad Hosts, HEAD and shared event feeds", async () => {
  const root = await folder();
  const feeds = new Map();
  const opts = { loopbackOnly: true, feeds, pollMs: 50 };
  const get = (path: string, host: string | null, method = "GET") => {
    const h = new Headers();
    if (host !== null) h.set("host", host);
    let url: string;
    try {
      url = new URL(`http://${host ?? "127.0.0.1"}${path}`).href;
    } catch {
      // what Deno.serve builds from such a Host: a Request whose url does not parse
      const req = new Request("http://127.0.0.1" + path, { method, headers: h });
      Object.defineProperty(req, "url", { value: `http://${host}${path}` });
      return handle(root, req, opts);
    }
    return handle(root, new Request(url, { method, headers: h }), opts);
  };
  try {
    for (
      const host of ["LOCALHOST:8080", "localhost.:8080", "[::1]:8080", "127.0.0.1", "Localhost"]
    ) {
      const r = await get("/", host);
      assert.equal(r.status, 200, host);
      await r.body?.cancel();
    }
    for (const host of ["evil.example", "localhost.evil.example", "127.0.0.1.nip.io", ""]) {
      const r = await get("/", host);
      assert.equal(r.status, 403, host);
      await r.body?.cancel();
    }
    const bad = await get("/", "127.0.0.1:99999");
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    // HEAD of an event stream: its headers, no feed started
    const head = await get("/events/index/", "127.0.0.1", "HEAD");
    assert.equal(head.status, 200);
    assert.equal(feeds.size, 0);
    // a page that does not exist has no feed
    assert.equal((await get("/events/run/nothing", "127.0.0.1")).status, 404);
    assert.equal(feeds.size, 0);
    // forty clients of one page share one feed; it ends when the last one leaves
    const clients = await Promise.all(
      Array.from({ length: 40 }, () => get("/events/run/growing", "127.0.0.1")),
    );
    assert.equal(feeds.size, 1);
    const readers = clients.map((c) => c.body!.pipeThrough(new TextDecoderStream()).getReader());
    await Promise.all(readers.map(async (reader) => {
      let seen = "";
      while (!/step 20\/100/.test(seen)) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
      }
      assert.match(seen, /step 20\/100/);
    }));
    for (const reader of readers) await reader.cancel();
    assert.equal(feeds.size, 0);
  } finally {
    for (const feed of [...feeds.values()]) feed.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve: a run directory replaced by a link while its page is watched ends the stream", async () => {
  const root = await folder();
  const outside = await Deno.makeTempDir({ prefix: "serve-outside-" });
  const server = serveRuns({ root, port: 0, pollMs: 50 });
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/events/run/growing`);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!/step 20\/100/.test(seen)) seen += (await reader.read()).value ?? "";
    // the directory goes; a link to a log elsewhere takes its place
    await markOwned(join(outside, "x"), "partial", "x");
    await Deno.writeTextFile(
      join(outside, "x", PROGRESS_FILE),
      JSON.stringify({ ...header, name: "outside-secret" }) + "\n" + line(0),
    );
    await Deno.rename(join(root, "growing.partial"), join(outside, "moved"));
    await Deno.symlink(join(outside, "x"), join(root, "growing.partial"));
    const end = Date.now() + 10_000;
    let done = false;
    while (!done && Date.now() < end) {
      const r = await reader.read();
      done = r.done;
      seen += r.value ?? "";
    }
    assert.ok(done, "the stream ended");
    assert.doesNotMatch(seen, /outside-secret/);
  } finally {
    await server.shutdown();
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("serve: a sweep shows as training only the populations of live processes", async () => {
  const root = await Deno.makeTempDir({ prefix: "serve-pop-" });
  const dir = join(root, "sw");
  await markOwned(dir, "sweep", "x");
  const population = (trial: string) =>
    JSON.stringify({
      format: "webgpu-mlp.population/1",
      stage: "coarse",
      trials: [trial],
      lambdas: [0.01],
      step: 30,
      totalSteps: 300,
      stepsPerSecond: 10,
      remainingSeconds: null,
      val: [0.25],
      updatedAt: new Date().toISOString(),
    });
  // shard 1 of 2 was killed (its file stays, its lock is gone); shard 2 trains
  await Deno.writeTextFile(join(dir, "population.shard-1-of-2.json"), population("coarse/0"));
  await Deno.writeTextFile(join(dir, "population.shard-2-of-2.json"), population("coarse/1"));
  const lock = await acquireLock(`${dir}.shard-2-of-2.lock`, "test");
  try {
    const page = await handle(root, new Request("http://127.0.0.1/sweep/sw"));
    const text = await page.text();
    assert.match(text, /Training now/);
    assert.match(text, /coarse\/1/);
    assert.doesNotMatch(text, /coarse\/0/);
    await lock.release();
    const after = await (await handle(root, new Request("http://127.0.0.1/sweep/sw"))).text();
    assert.doesNotMatch(after, /Training now/);
  } finally {
    await lock.release();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve: a sweep over λ and η_max shows every value of its trials, recorded and training", async () => {
  const root = await Deno.makeTempDir({ prefix: "serve-hyper-" });
  const dir = join(root, "hs");
  await markOwned(dir, "sweep", "x");
  const all = await writeFakeHyperSweep(dir, { summary: false });
  // stage coarse is recorded; the first four trials of stage fine train as one population
  const coarse = all.filter((t) => t.stage === "coarse");
  await Deno.writeTextFile(
    join(dir, "trials.jsonl"),
    coarse.map((t) => JSON.stringify(t)).join("\n") + "\n",
  );
  const fine = all.filter((t) => t.stage === "fine").slice(0, 4);
  const population = (stage: string, trials: string[], lambdas: number[]) =>
    JSON.stringify({
      format: "webgpu-mlp.population/1",
      stage,
      trials,
      lambdas,
      step: 60,
      totalSteps: 600,
      stepsPerSecond: 20,
      remainingSeconds: 27,
      val: [0.31, null, 0.36, 0.22],
      updatedAt: new Date().toISOString(),
    });
  await Deno.writeTextFile(
    join(dir, "population.json"),
    population("fine", fine.map((t) => t.id), fine.map((t) => t.lambda)),
  );
  const lock = await acquireLock(`${dir}.lock`, "test");
  try {
    const text = await (await handle(root, new Request("http://127.0.0.1/sweep/hs"))).text();
    const now = text.slice(
      text.indexOf("<h2>Training now</h2>"),
      text.indexOf('<p class="note">sweep.json'),
    );
    assert.match(now, /<th class="n">λ<\/th><th class="n">η_max<\/th><th class="n">σ<\/th>/);
    for (const t of fine) {
      assert.ok(now.includes(`<td class="n">${sci(t.hyper!.etaMax)}</td>`), `${t.id} η_max`);
      assert.ok(now.includes(`<td class="n">${sci(t.hyper!.sigma)}</td>`), `${t.id} σ`);
    }
    // the best model so far, with all its values
    assert.ok(
      now.includes(
        `36.00 % (fine/2: λ ${sci(fine[2].lambda)}, η_max ${sci(fine[2].hyper!.etaMax)}`,
      ),
      now,
    );
    // the recorded trials: their η_max in the top table, and the scatter of λ and η_max
    const top = coarse.filter((t) =>
      t.status === "completed"
    ).sort((a, b) => b.bestVal.accuracy - a.bestVal.accuracy)[0];
    assert.match(text, /<h3>Stage coarse: top 3<\/h3>/);
    assert.ok(
      text.includes(`<td class="n">${sci(top.hyper!.etaMax)}</td>`),
      "η_max in the top table",
    );
    assert.ok(text.includes('id="fig-scatter-coarse-lambda-etamax"'), "the scatter of λ and η_max");

    // an around stage: its values are planned around the recorded top trials of coarse
    const cfg = hyperSweepConfig();
    const search = cfg.search as { stages: Record<string, unknown>[] };
    search.stages[1] = {
      name: "near",
      space: {
        kind: "around",
        stage: "coarse",
        top: 2,
        mode: "perturb",
        width: 0.2,
        count: 2,
        seed: 9,
      },
    };
    await Deno.writeTextFile(join(dir, "sweep.config.json"), JSON.stringify(cfg));
    const near = ["near/0", "near/1", "near/2", "near/3"];
    const values = populationHyper(dir, "near", near)!;
    const best = [...coarse].filter((t) =>
      t.status === "completed"
    ).sort((a, b) => b.final!.val.accuracy - a.final!.val.accuracy);
    assert.equal(values.length, 4);
    values.forEach((h, i) => {
      const centre = best[Math.floor(i / 2)].hyper!;
      assert.deepEqual(Object.keys(h!).sort(), ["etaMax", "lambda"]);
      for (const d of ["lambda", "etaMax"] as const) {
        const decades = Math.abs(Math.log10(h![d]! / centre[d]!));
        assert.ok(decades <= 0.2 + 1e-12, `near/${i} ${d}: ${decades} decades from its centre`);
      }
    });
    // of a stage it cannot plan (none such, no config), nothing: the page shows λ alone
    assert.equal(populationHyper(dir, "nope", near), null);
    await Deno.remove(join(dir, "sweep.config.json"));
    assert.equal(populationHyper(dir, "fine", ["fine/0"]), null);
    const bare = await (await handle(root, new Request("http://127.0.0.1/sweep/hs"))).text();
    assert.match(bare, /Training now/);
    assert.match(bare, /<th class="n">λ<\/th><th class="n">latest val accuracy<\/th>/);
  } finally {
    await lock.release();
    await Deno.remove(root, { recursive: true });
  }
});

async function serveCli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/serve.ts", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr).trim() };
}

Deno.test("serve: bad input is one error line", async () => {
  const root = await folder();
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const file = join(root, "growing.partial", PROGRESS_FILE);
    for (
      const [args, want] of [
        [[root, "--port", String(busy.addr.port)], /is in use: pick another with --port/],
        [[join(root, "nowhere")], /does not exist/],
        [[file], /is not a directory/],
        [[root, "--port", "http"], /is not a port/],
        [[root, "--port", "70000"], /is not a port/],
        [[root, "again"], /give one folder/],
        [[root, "--colour"], /--colour/],
        [[join(root, "growing.partial")], /is a run directory: serve the folder that holds it/],
        [[root, "--host", "fe80::1"], /cannot listen on fe80::1/],
        [[root, "--host", "no-such-host.invalid"], /cannot listen on no-such-host\.invalid/],
      ] as [string[], RegExp][]
    ) {
      const r = await serveCli(args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^error: /);
      assert.match(lines[0], want);
    }
  } finally {
    busy.close();
    await Deno.remove(root, { recursive: true });
  }
});

/**
 * A small config trained by the browser test: one training batch, a 1000-image holdout, 300 steps
 * a cycle (`train.stepSize` overrides it), evaluated every 30; `extra`'s keys replace the rest.
 */
function tinyConfig(name: string, extra: Record<string, unknown>) {
  const { stepSize = 300, ...train } = (extra.train ?? {}) as Record<string, unknown>;
  return {
    name,
    seed: name.length,
    data: { train: [1], val: { holdout: 1000 }, test: false },
    ...extra,
    train: {
      batchSize: 100,
      schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize, cycles: 1 },
      evalEvery: 30,
      ...train,
    },
  };
}

const chromium = findChromium();
const browserRequired = !!Deno.env.get("CI") || Deno.env.get("REPORT_REQUIRE_BROWSER") === "1";
if (!chromium && !browserRequired) {
  console.log(
    "serve_test: browser test skipped: no Chromium (set CHROMIUM_PATH or apt-get install chromium)",
  );
}

Deno.test({
  name:
    "serve: a sweep over λ and η_max draws its scatter in Chromium, with its values in training",
  ignore: !chromium && !browserRequired,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "serve-hyper-live-" });
    const dir = join(root, "hs");
    await markOwned(dir, "sweep", "x");
    const all = await writeFakeHyperSweep(dir, { summary: false });
    const fine = all.filter((t) => t.stage === "fine").slice(0, 2);
    await Deno.writeTextFile(
      join(dir, "population.json"),
      JSON.stringify({
        format: "webgpu-mlp.population/1",
        stage: "fine",
        trials: fine.map((t) => t.id),
        lambdas: fine.map((t) => t.lambda),
        step: 60,
        totalSteps: 600,
        stepsPerSecond: 20,
        remainingSeconds: 27,
        val: [0.31, 0.36],
        updatedAt: new Date().toISOString(),
      }),
    );
    const lock = await acquireLock(`${dir}.lock`, "test");
    const server = serveRuns({ root, port: 0, pollMs: 100 });
    const origin = `http://127.0.0.1:${server.port}`;
    const browser = await Browser.launch(chromium);
    try {
      // read once drawn (a live update may redraw the page: then read again)
      type Drawn = { charts: [string, number][]; now: string };
      const read: Drawn[] = [];
      const visit = await browser.visit(`${origin}/sweep/hs`, {
        allowOrigins: [origin],
        during: async (evaluate) => {
          for (let i = 0; i < 40 && read.length === 0; i++) {
            const value = await evaluate(`document.body.dataset.ready !== "1" ? null : ({
              charts: window.__report.charts.map((c) => [c.id, c.datasets.length]),
              now: Array.from(document.querySelectorAll("main table")).map((t) => t.textContent)
                .find((t) => t.includes("latest val accuracy")) })`) as Drawn | null;
            if (value) read.push(value);
            else await new Promise((r) => setTimeout(r, 250));
          }
        },
      });
      assert.ok(visit.ready, "the page drew");
      assert.deepEqual(visit.errors, []);
      assert.deepEqual(visit.blocked, []);
      const value = read[0];
      assert.ok(value, "the page was read once drawn");
      assert.ok(
        value.charts.some(([id, n]) => id === "fig-scatter-coarse-lambda-etamax" && n === 2),
        JSON.stringify(value.charts),
      );
      assert.ok(value.now.includes("η_max"), value.now);
      assert.ok(value.now.includes(sci(fine[1].hyper!.etaMax)), value.now);
    } finally {
      await browser.close();
      await server.shutdown();
      await lock.release();
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "serve: a training watched in Chromium grows, offline but for the server",
  ignore: !chromium && !browserRequired,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "serve-live-" });
    const shots = Deno.env.get("TEST_OUT")
      ? join(Deno.env.get("TEST_OUT")!, "serve")
      : await Deno.makeTempDir({ prefix: "serve-shots-" });
    await Deno.mkdir(shots, { recursive: true });
    const training = async (name: string, extra: Record<string, unknown>) => {
      const config = join(root, `${name}.json`);
      await Deno.writeTextFile(config, JSON.stringify(tinyConfig(name, extra)));
      return new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "src/cli/train.ts", "--config", config, "--out", root, "--no-report"],
        stdout: "null",
        stderr: "null",
      }).spawn();
    };
    const server = serveRuns({ root, port: 0, pollMs: 100 });
    const origin = `http://127.0.0.1:${server.port}`;
    const run = await training("live", {
      model: { hidden: [20] },
      train: { lambda: 0.01, stepSize: 450, checkpoint: false },
    });
    const browser = await Browser.launch(chromium);
    try {
      // wait for the first evaluation point, then watch the page while the run trains
      const log = join(root, "live.partial", PROGRESS_FILE);
      for (let i = 0; i < 600; i++) {
        const text = await Deno.readTextFile(log).catch(() => "");
        if ((parseProgress(text)?.lines.length ?? 0) >= 1) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const counts: number[] = [];
      const visit = await browser.visit(`${origin}/run/live`, {
        allowOrigins: [origin],
        timeoutMs: 60_000,
        screenshotPath: join(shots, "serve-live.png"),
        during: async (evaluate) => {
          for (let i = 0; i < 40; i++) {
            const n = Number(
              await evaluate(
                "document.body.dataset.ready === '1' ? document.body.dataset.points : '0'",
              ),
            );
            counts.push(n);
            if (counts.length > 3 && n > counts[0]) break;
            await new Promise((r) => setTimeout(r, 500));
          }
        },
        evaluate:
          "({ updates: document.body.dataset.updates, stream: document.body.dataset.stream })",
      });
      console.log(
        `serve_test: points drawn over time ${counts.join(" ")}; shot ${visit.screenshot}`,
      );
      assert.ok(visit.ready, "the page drew");
      assert.deepEqual(visit.errors, []);
      assert.deepEqual(visit.blocked, []);
      assert.ok(visit.requests.every((u) => u.startsWith(origin)), visit.requests.join(" "));
      assert.ok(counts.at(-1)! > counts[0], `more points over time: ${counts.join(" ")}`);
      assert.ok(Number(visit.value.updates) >= 2, `updates ${visit.value.updates}`);
      // the index lists the run
      const index = await browser.visit(`${origin}/`, { allowOrigins: [origin] });
      assert.deepEqual(index.errors, []);
      assert.deepEqual(index.blocked, []);

      // a sweep: its page shows the population in training, then its trials as they finish
      await run.status;
      const sweeping = await training("sw", {
        model: { hidden: [10] },
        search: {
          stages: [{
            name: "coarse",
            space: { kind: "list", values: [1e-4, 1e-3, 1e-2, 1e-1] },
            top: 2,
          }],
          population: 2,
        },
      });
      for (let i = 0; i < 600 && !(await exists(join(root, "sw", "population.json"))); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const seen: string[] = [];
      const sweepVisit = await browser.visit(`${origin}/sweep/sw`, {
        allowOrigins: [origin],
        timeoutMs: 60_000,
        during: async (evaluate) => {
          for (let i = 0; i < 120; i++) {
            seen.push(String(await evaluate("document.querySelector('main').textContent")));
            if (
              /trials in 1 stage/.test(
                String(
                  await evaluate("document.title + document.querySelector('header').textContent"),
                ),
              )
            ) break;
            await new Promise((r) => setTimeout(r, 250));
          }
        },
      });
      await sweeping.status;
      assert.deepEqual(sweepVisit.errors, []);
      assert.deepEqual(sweepVisit.blocked, []);
      assert.ok(
        seen.some((t) => t.includes("Training now")),
        "the population in training is shown",
      );
      assert.ok(seen.some((t) => /coarse\/\d/.test(t)), "trials are shown");
    } finally {
      await browser.close();
      try {
        run.kill("SIGKILL");
      } catch { /* finished */ }
      await run.status;
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("serve: a live update's title is the page's title as text, not its escaped markup", async () => {
  const { runPage } = await import("../src/serve/pages.ts");
  const root = await Deno.makeTempDir({ prefix: "serve-title-" });
  try {
    const name = `R&D <"it's">`;
    await fakeRun(root, name);
    const page = (await runPage(root, name))!;
    assert.ok(page.html.includes("R&amp;D &lt;&quot;it&#39;s&quot;&gt;"), "escaped in the page");
    assert.match(page.fragment.title, /R&D <"it's">/);
    assert.ok(!page.fragment.title.includes("&amp;"), page.fragment.title);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
