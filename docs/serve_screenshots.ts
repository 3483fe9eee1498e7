/**
 * The README's dashboard screenshots: a run of experiments/cyclic-1.json watched at step 500, the
 * index beside a finished run, and a λ sweep with its first population recorded.
 *
 *     deno run -A docs/serve_screenshots.ts docs
 *
 * @module
 */
import { join } from "node:path";
import { serveRuns } from "../src/serve/server.ts";
import { Browser } from "../tests/browser.ts";
import { parseProgress, PROGRESS_FILE } from "../src/train/live.ts";

const out = Deno.args[0];
const root = await Deno.makeTempDir({ prefix: "serve-shot-" });
const runs = join(root, "runs");
await Deno.mkdir(runs);
const server = serveRuns({ root: runs, port: 0, pollMs: 200 });
const origin = `http://127.0.0.1:${server.port}`;
const train = (name: string) =>
  new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "src/cli/train.ts",
      "--config",
      "experiments/cyclic-1.json",
      "--out",
      runs,
      "--name",
      name,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
await train("baseline").status;
const live = train("cyclic-1");
const log = join(runs, "cyclic-1.partial", PROGRESS_FILE);
for (;;) {
  const p = parseProgress(await Deno.readTextFile(log).catch(() => ""));
  if ((p?.lines.at(-1)?.point.step ?? 0) >= 500) break;
  await new Promise((r) => setTimeout(r, 200));
}
const browser = await Browser.launch();
const page = await browser.visit(`${origin}/run/cyclic-1`, {
  allowOrigins: [origin],
  screenshotPath: join(out, "serve-run.png"),
  screenshotHeight: 760,
});
const index = await browser.visit(`${origin}/`, {
  allowOrigins: [origin],
  screenshotPath: join(out, "serve-index.png"),
  screenshotHeight: 260,
});
console.log(page.errors, index.errors, page.blocked, index.blocked);
await live.status;
// a sweep: shot once its first population is recorded and the second trains
const sweepConfig = join(root, "coarse.json");
await Deno.writeTextFile(
  sweepConfig,
  JSON.stringify({
    name: "coarse",
    seed: 42,
    data: { train: [1], val: { batch: 2 }, test: false },
    model: { hidden: [50], init: "xavier" },
    train: {
      batchSize: 100,
      schedule: { kind: "cyclic", etaMin: 1e-5, etaMax: 0.1, stepSize: 500, cycles: 1 },
      evalEvery: 100,
    },
    search: {
      stages: [{
        name: "coarse",
        space: { kind: "logUniform", min: 1e-5, max: 1e-1, count: 8, seed: 1 },
        top: 3,
      }],
      population: 4,
    },
  }),
);
const sweeping = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", "src/cli/train.ts", "--config", sweepConfig, "--out", runs],
  stdout: "null",
  stderr: "null",
}).spawn();
for (;;) {
  const trials = await Deno.readTextFile(join(runs, "coarse", "trials.jsonl")).catch(() => "");
  const pop = await Deno.readTextFile(join(runs, "coarse", "population.json")).catch(() => "");
  let step = 0;
  try {
    step = JSON.parse(pop).step;
  } catch { /* not yet */ }
  if (trials.split("\n").length > 4 && step >= 400) break;
  await new Promise((r) => setTimeout(r, 200));
}
const sw = await browser.visit(`${origin}/sweep/coarse`, {
  allowOrigins: [origin],
  screenshotPath: join(out, "serve-sweep.png"),
  screenshotHeight: 900,
});
console.log(sw.errors, sw.blocked);
await sweeping.status;
await browser.close();
await server.shutdown();
await Deno.remove(root, { recursive: true });
