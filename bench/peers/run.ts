/**
 * Running the peers of `deno task bench --peers`: start each, check that it computes what the
 * trainer computes, time every work item paired with the trainer, and report skips and failures.
 *
 * @module
 */

import type { ItemRecord, PeerRecord } from "../results.ts";
import { measurePaired, type OursRunner, type PeerItem, type StepOptions } from "../steps.ts";
import { type VerifyCase, verifyPeer } from "../verify.ts";
import { PeerClient } from "./client.ts";
import {
  findCudaPython,
  PEER_DESCRIPTIONS,
  peerCommand,
  type PeerName,
  type PythonPaths,
  skipReason,
} from "./registry.ts";

/** What {@link runPeers} needs. */
export interface RunPeersOptions {
  peers: PeerName[];
  python: PythonPaths;
  /** The directory written by `writePeerData`. */
  dataDir: string;
  steps: StepOptions;
  /** Deadline of each request, in ms. */
  requestMs: number;
  /** Keep peers that can run the sweep alive (returned in `sweepPeers`). */
  keepForSweep: boolean;
  /** Same-math checks to run on every peer that can. */
  checks: VerifyCase[];
}

/**
 * Start the peers one by one: skip those that cannot start (with the reason), run the same-math
 * checks, measure every item paired with ours, and close them — except the sweep-capable ones when
 * `keepForSweep` (the caller closes those). Fills `item.peers` of every item.
 */
export async function runPeers(
  items: ItemRecord[],
  ours: OursRunner,
  o: RunPeersOptions,
  log: (line: string) => void,
): Promise<{ records: PeerRecord[]; sweepPeers: PeerClient[] }> {
  const py: PythonPaths = { ...o.python };
  const { dataDir, requestMs, checks, keepForSweep } = o;
  let cudaSkip: string | null = null;
  if (o.peers.includes("torch-cuda")) {
    const cuda = await findCudaPython(py);
    py.cuda = typeof cuda === "string" ? cuda : null;
    if (typeof cuda !== "string") cudaSkip = cuda.skip;
  }
  const records: PeerRecord[] = [];
  const sweepPeers: PeerClient[] = [];
  const seen = new Map<string, string>();
  for (const name of o.peers) {
    const rec: PeerRecord = { name, description: PEER_DESCRIPTIONS[name], status: "skipped" };
    records.push(rec);
    const cmd = name === "torch-cuda" && cudaSkip
      ? { skip: cudaSkip }
      : peerCommand(name, dataDir, py);
    if ("skip" in cmd) {
      rec.reason = cmd.skip;
      log(`peer ${name}: skipped (${rec.reason})`);
      continue;
    }
    const t0 = performance.now();
    let client: PeerClient;
    try {
      log(`peer ${name}: starting`);
      const started = await PeerClient.start(name, cmd, Math.max(requestMs, 300_000));
      client = started.client;
      rec.hello = started.hello;
    } catch (e) {
      rec.reason = skipReason(name, e, py);
      log(`peer ${name}: skipped (${rec.reason})`);
      continue;
    }
    // the same interpreter twice (python3 on PATH is Debian's): measure it once
    const exe = typeof rec.hello?.executable === "string" ? rec.hello.executable : null;
    if (exe && name.startsWith("numpy") && seen.has(exe)) {
      rec.reason = `same interpreter as peer ${seen.get(exe)} (${exe})`;
      log(`peer ${name}: skipped (${rec.reason})`);
      await client.close();
      continue;
    }
    if (exe && name.startsWith("numpy")) seen.set(exe, name);
    rec.status = "ok";
    const caps = (rec.hello?.capabilities ?? []) as string[];
    if (caps.includes("verify")) {
      rec.verify = [];
      for (const c of checks) {
        const v = await verifyPeer(client, c, requestMs);
        rec.verify.push(v);
        log(
          `  ${name.padEnd(12)} same-math check ${v.net} B=${v.batch}, ${v.steps} steps: ` +
            (v.error ? `error (${v.error})` : `loss ${v.peer!.loss.toFixed(5)} vs ours ` +
              `${v.ours.loss.toFixed(5)}, max rel. diff ${v.maxRelDiff} ${v.pass ? "✓" : "✗"}`),
        );
      }
      // a peer that does not reproduce our training would be timed on other work: no ratios
      const bad = rec.verify.find((v) => !v.pass);
      if (bad) {
        rec.status = "failed";
        rec.reason = `its ${bad.steps} steps of ${bad.net} do not reproduce ours (${
          bad.error ?? `max rel. diff ${bad.maxRelDiff}`
        }): not timed`;
        log(`peer ${name}: failed (${rec.reason})`);
        for (const item of items) item.peers[name] = { status: "failed", error: rec.reason };
        rec.seconds = Math.round((performance.now() - t0) / 100) / 10;
        await client.close();
        continue;
      }
    }
    const results = new Map<string, PeerItem>();
    try {
      await measurePaired(ours, client, items, o.steps, { requestMs }, results, log);
      if (items.length) {
        rec.sanity = await client.request("loss", {}, requestMs) as Record<string, unknown>;
      }
    } catch (e) {
      rec.status = "failed";
      rec.reason = (e as Error).message;
      log(`peer ${name}: failed (${rec.reason})`);
    }
    for (const item of items) {
      item.peers[name] = results.get(item.id) ??
        { status: "failed", error: rec.reason ?? "not measured" };
    }
    rec.seconds = Math.round((performance.now() - t0) / 100) / 10;
    if (keepForSweep && rec.status === "ok" && caps.includes("sweep")) sweepPeers.push(client);
    else await client.close();
  }
  return { records, sweepPeers };
}
