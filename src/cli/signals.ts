/**
 * Ctrl-C and SIGTERM (what Slurm and Kubernetes send before they kill a job) for long commands:
 * the first one aborts the returned signal, so training stops at the end of the chunk of steps in
 * flight, evaluates once and keeps a resumable snapshot; a second one exits at once with code 130,
 * keeping the last snapshot written.
 *
 * @module
 */

/** Exit code of a process stopped by SIGINT (128 + 2). */
export const SIGINT_EXIT = 130;
/** Exit code of a process stopped by SIGTERM (128 + 15). */
export const SIGTERM_EXIT = 143;

/** A handle on the installed listeners. */
export interface StopSignals {
  /** Aborted by the first Ctrl-C or SIGTERM. */
  signal: AbortSignal;
  /** The exit code the command should end with once it has stopped (null: not stopped). */
  exitCode(): number | null;
  /** Remove the listeners. */
  dispose(): void;
}

/** Install the listeners; `log` gets the one-line notices (default: stderr). */
export function onStopSignals(log: (line: string) => void = (l) => console.error(l)): StopSignals {
  const controller = new AbortController();
  let code: number | null = null;
  const names: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const handler = (name: Deno.Signal) => () => {
    if (code !== null) {
      log(
        `${name} again: aborting now; the last snapshot is kept (run the same command to resume)`,
      );
      Deno.exit(SIGINT_EXIT);
    }
    code = name === "SIGTERM" ? SIGTERM_EXIT : SIGINT_EXIT;
    log(
      `${name}: stopping after the steps in flight, then saving a resumable snapshot ` +
        `(${name === "SIGINT" ? "Ctrl-C" : "SIGINT or SIGTERM"} again to abort at once)`,
    );
    controller.abort();
  };
  const installed = names.map((n) => ({ n, h: handler(n) }));
  for (const { n, h } of installed) Deno.addSignalListener(n, h);
  return {
    signal: controller.signal,
    exitCode: () => code,
    dispose() {
      for (const { n, h } of installed) Deno.removeSignalListener(n, h);
    },
  };
}
