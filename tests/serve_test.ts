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

const header: ProgressHeader = {
  format: PROGRESS_FORMAT,
  name: "growing",
  config: { name: "growing" },
  seed: 1,
  layerSizes: [3072, 10, 10],
  lambda: 0.01,
  env: {} as ProgressHeader["env"],
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

const chromium = findChromium();
const browserRequired = !!Deno.env.get("CI") || Deno.env.get("REPORT_REQUIRE_BROWSER") === "1";
if (!chromium && !browserRequired) {
  console.log(
    "serve_test: browser test skipped: no Chromium (set CHROMIUM_PATH or apt-get install chromium)",
  );
}

Deno.test({
  name: "serve: a training watched in Chromium grows, offline but for the server",
  ignore: !chromium && !browserRequired,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "serve-live-" });
    const shots = Deno.env.get("TEST_OUT")
      ? join(Deno.env.get("TEST_OUT")!, "serve")
      : await Deno.makeTempDir({ prefix: "serve-shots-" });
    await Deno.mkdir(shots, { recursive: true });
    const config = join(root, "live.json");
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        name: "live",
        seed: 3,
        data: { train: [1], val: { holdout: 1000 }, test: false },
        model: { hidden: [20] },
        train: {
          batchSize: 100,
          lambda: 0.01,
          schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 450, cycles: 1 },
          evalEvery: 30,
          checkpoint: false,
        },
      }),
    );
    const server = serveRuns({ root, port: 0, pollMs: 100 });
    const origin = `http://127.0.0.1:${server.port}`;
    const training = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "src/cli/train.ts", "--config", config, "--out", root, "--no-report"],
      stdout: "null",
      stderr: "piped",
    }).spawn();
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
      await training.status;
      const sweepConfig = join(root, "sw.json");
      await Deno.writeTextFile(
        sweepConfig,
        JSON.stringify({
          name: "sw",
          seed: 1,
          data: { train: [1], val: { holdout: 1000 }, test: false },
          model: { hidden: [10] },
          train: {
            batchSize: 100,
            schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.05, stepSize: 300, cycles: 1 },
            evalEvery: 30,
          },
          search: {
            stages: [{
              name: "coarse",
              space: { kind: "list", values: [1e-4, 1e-3, 1e-2, 1e-1] },
              top: 2,
            }],
            population: 2,
          },
        }),
      );
      const sweeping = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "src/cli/train.ts",
          "--config",
          sweepConfig,
          "--out",
          root,
          "--no-report",
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
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
        training.kill("SIGKILL");
      } catch { /* finished */ }
      await training.status;
      await training.stderr.cancel();
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  },
});
