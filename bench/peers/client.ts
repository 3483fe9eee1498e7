/**
 * The bench's side of a peer: a subprocess that answers one JSON request per line. A peer writes
 * its replies as lines starting with {@link PREFIX} on stdout (anything else a library prints is
 * kept as log); every request has a deadline, and a peer that misses it is killed and reported,
 * never waited on forever.
 *
 * Requests: `{"cmd": "setup" | "steps" | "epoch" | "sweep" | "loss" | "quit", "args": {...}}`.
 * Replies: `{"ok": value}` or `{"error": "message"}`. The first line a peer sends, unasked, is
 * `{"ok": {hello}}` describing itself (versions, BLAS, device).
 *
 * @module
 */

/** Marker of protocol lines on a peer's stdout. */
export const PREFIX = "@@bench ";

/** How to start a peer. */
export interface PeerCommand {
  cmd: string;
  args: string[];
  /** Environment of the child (replaces the parent's when `clearEnv`). */
  env?: Record<string, string>;
  clearEnv?: boolean;
  cwd?: string;
}

/** A failure that names what the peer was doing. */
export class PeerError extends Error {}

const TAIL = 4000;

/** A running peer process. */
export class PeerClient {
  readonly name: string;
  #child: Deno.ChildProcess;
  #lines: string[] = [];
  #waiters: ((line: string | null) => void)[] = [];
  #closed = false;
  #log = "";
  #stderr = "";

  private constructor(name: string, child: Deno.ChildProcess) {
    this.name = name;
    this.#child = child;
    this.#pump(child.stdout, (line) => {
      if (line.startsWith(PREFIX)) this.#push(line.slice(PREFIX.length));
      else this.#log = (this.#log + line + "\n").slice(-TAIL);
    }).finally(() => {
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) w(null);
    });
    this.#pump(child.stderr, (line) => {
      this.#stderr = (this.#stderr + line + "\n").slice(-TAIL);
    });
  }

  /** Start a peer and wait for its hello (at most `timeoutMs`). */
  static async start(
    name: string,
    command: PeerCommand,
    timeoutMs: number,
  ): Promise<{ client: PeerClient; hello: Record<string, unknown> }> {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(command.cmd, {
        args: command.args,
        env: command.env,
        clearEnv: command.clearEnv,
        cwd: command.cwd,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      throw new PeerError(`cannot start ${command.cmd}: ${(e as Error).message}`);
    }
    const client = new PeerClient(name, child);
    const hello = await client.#reply("start", timeoutMs);
    return { client, hello: hello as Record<string, unknown> };
  }

  async #pump(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of stream) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          onLine(buf.slice(0, nl).replace(/\r$/, ""));
          buf = buf.slice(nl + 1);
        }
      }
    } catch { /* the process went away */ }
    if (buf) onLine(buf);
  }

  #push(line: string): void {
    const w = this.#waiters.shift();
    if (w) w(line);
    else this.#lines.push(line);
  }

  #next(): Promise<string | null> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The last lines the peer wrote to stderr and to stdout outside the protocol. */
  diagnostics(): string {
    const last = (s: string) => s.trim().split("\n").slice(-6).join(" | ");
    return [last(this.#stderr), last(this.#log)].filter((s) => s).join(" | ").slice(-1200);
  }

  async #reply(what: string, timeoutMs: number): Promise<unknown> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const line = await Promise.race([this.#next(), timeout]);
    clearTimeout(timer);
    if (line === "timeout") {
      this.kill();
      throw new PeerError(`timed out after ${Math.round(timeoutMs / 1000)} s during ${what}`);
    }
    if (line === null) {
      const status = await this.#child.status;
      throw new PeerError(
        `exited (code ${status.code}${status.signal ? `, ${status.signal}` : ""}) during ${what}` +
          (this.diagnostics() ? `: ${this.diagnostics()}` : ""),
      );
    }
    let msg: { ok?: unknown; error?: string };
    try {
      msg = JSON.parse(line);
    } catch {
      throw new PeerError(`sent a malformed reply during ${what}: ${line.slice(0, 200)}`);
    }
    if (msg.error !== undefined) throw new PeerError(`${what} failed: ${msg.error}`);
    return msg.ok;
  }

  /** Send one request and wait for its reply (at most `timeoutMs`). */
  async request(cmd: string, args: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
    if (this.#closed) throw new PeerError(`is no longer running (before ${cmd})`);
    const writer = this.#child.stdin.getWriter();
    try {
      await writer.write(new TextEncoder().encode(JSON.stringify({ cmd, args }) + "\n"));
    } catch (e) {
      throw new PeerError(`cannot send ${cmd}: ${(e as Error).message}`);
    } finally {
      writer.releaseLock();
    }
    return await this.#reply(cmd, timeoutMs);
  }

  /** Kill the process (idempotent). */
  kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch { /* already gone */ }
  }

  /** Ask the peer to quit, killing it if it does not within a few seconds. */
  async close(): Promise<void> {
    if (!this.#closed) {
      try {
        await this.request("quit", {}, 5000);
      } catch { /* killed by the timeout */ }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = await Promise.race([
      this.#child.status.then(() => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), 3000)),
    ]);
    clearTimeout(timer);
    if (!done) this.kill();
    try {
      await this.#child.stdin.close();
    } catch { /* already closed */ }
    await this.#child.status;
  }
}
