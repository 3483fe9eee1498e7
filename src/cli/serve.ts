/**
 * `deno task serve [DIR] [--port N] [--host H]`: a live dashboard of every run and sweep under a
 * runs folder (default `runs/`), on http://127.0.0.1:8080 unless told otherwise.
 *
 * @module
 */

import { dirname } from "node:path";
import { UserError } from "../errors.ts";
import { ownedKind } from "../io/owned.ts";
import { scanRuns } from "../serve/scan.ts";
import { isLoopback, serveRuns } from "../serve/server.ts";
import { parseFlags, runMain } from "./main.ts";

/** Usage text of the command. */
export const USAGE = `usage: deno task serve [DIR] [--port N] [--host H]

Serve a live dashboard of the runs and sweeps under DIR (default runs/): an index with status,
progress, best validation accuracy and age; each run's and sweep's report, growing while they
train. Pages make no request beyond this server; only runs and sweeps under DIR are shown.

  --port N     TCP port (default 8080; 0 picks a free one)
  --host H     interface to listen on (default 127.0.0.1: this machine only)
  -h, --help   show this help`;

/** Run the command with the given arguments. */
export async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags(args, {
    port: { type: "string" },
    host: { type: "string" },
    help: { type: "boolean", short: "h" },
  }, { allowPositionals: true });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length > 1) {
    throw new UserError(`give one folder to serve, not ${positionals.length}: deno task serve DIR`);
  }
  const root = positionals[0] ?? "runs";
  const portText = (values.port as string | undefined) ?? "8080";
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new UserError(`--port ${portText.slice(0, 20)} is not a port: give 0..65535`);
  }
  const hostname = (values.host as string | undefined) ?? "127.0.0.1";
  const kind = ownedKind(root);
  if (kind === "run" || kind === "partial" || kind === "sweep") {
    const what = kind === "sweep" ? "a sweep directory" : "a run directory";
    throw new UserError(
      `${root} is ${what}: serve the folder that holds it (deno task serve ${dirname(root)})`,
    );
  }
  const server = serveRuns({ root, port, hostname });
  if (scanRuns(root).length === 0) {
    console.error(
      `warning: no runs or sweeps under ${root} yet: they appear as they start (runs go to the configs' "out", default runs/)`,
    );
  }
  if (!isLoopback(server.hostname)) {
    console.error(
      `warning: listening on ${server.hostname}: anyone who can reach this machine on port ${server.port} can read these runs`,
    );
  }
  const shown = server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname;
  console.log(`serving ${root} on http://${shown}:${server.port}/ (Ctrl-C to stop)`);
  await new Promise<void>((done) => {
    const stop = () => {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      server.shutdown().then(done);
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  });
}

if (import.meta.main) runMain(() => main(Deno.args));
