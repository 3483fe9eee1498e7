/**
 * A minimal headless-Chromium driver for tests, speaking the Chrome DevTools Protocol over the
 * WebSocket Chromium opens with `--remote-debugging-port=0` (no npm dependency).
 *
 * Every page is opened with all network access blocked: requests other than `file:`, `data:` and
 * `blob:` URLs are intercepted (`Fetch` domain) and failed, and recorded in `blocked`; the network
 * is also emulated offline and host names resolve nowhere. Console errors, uncaught exceptions and
 * browser log errors (CSP violations, failed loads) are collected in `errors`.
 *
 * @module
 */

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

/** Where to look for Chromium: `$CHROMIUM_PATH`, then the usual Debian/Ubuntu paths. */
export function findChromium(): string | undefined {
  const candidates = [
    Deno.env.get("CHROMIUM_PATH"),
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
  ];
  for (const c of candidates) {
    if (!c) continue;
    try {
      if (Deno.statSync(c).isFile) return c;
    } catch { /* not there */ }
  }
  return undefined;
}

// deno-lint-ignore no-explicit-any
type Json = any;

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Json;
  result?: Json;
  error?: { message: string };
  sessionId?: string;
}

/** A Chrome DevTools Protocol connection (flattened sessions). */
class Cdp {
  #ws: WebSocket;
  #next = 1;
  #pending = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void }>();
  #listeners = new Set<(m: CdpMessage) => void>();
  /** Resolves when the WebSocket has closed. */
  readonly closed: Promise<void>;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    let onClosed!: () => void;
    this.closed = new Promise((r) => (onClosed = r));
    ws.onmessage = (ev) => {
      const msg = JSON.parse(String(ev.data)) as CdpMessage;
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(msg.error.message));
        else p?.resolve(msg.result);
      } else {
        for (const l of this.#listeners) l(msg);
      }
    };
    ws.onclose = () => {
      for (const p of this.#pending.values()) p.reject(new Error("browser connection closed"));
      this.#pending.clear();
      onClosed();
    };
  }

  static connect(url: string): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.onopen = () => resolve(new Cdp(ws));
      ws.onerror = (e) =>
        reject(new Error(`cannot connect to ${url}: ${(e as ErrorEvent).message}`));
    });
  }

  send(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ id, method, params, sessionId }));
    });
  }

  on(listener: (m: CdpMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#ws.close();
  }
}

/** What happened while a page was open. */
export interface PageVisit {
  url: string;
  /** `document.body.dataset.ready === "1"` was seen before the timeout. */
  ready: boolean;
  /** Console errors, uncaught exceptions, browser log errors (CSP, failed loads). */
  errors: string[];
  /** Console warnings (informational). */
  warnings: string[];
  /** Every URL the page requested. */
  requests: string[];
  /** Requests that tried to leave the file system and were blocked. */
  blocked: string[];
  /** Result of the `evaluate` expression (JSON-decoded), if one was given. */
  value?: Json;
  /** Where the full-page PNG screenshot was written, if asked. */
  screenshot?: string;
}

/** Options of `Browser.visit`. */
export interface VisitOptions {
  /** Viewport size in CSS pixels (default 1280 × 900). */
  width?: number;
  height?: number;
  /** Write a full-page PNG screenshot here. */
  screenshotPath?: string;
  /** Cut the screenshot at this height in CSS pixels (default: the whole page). */
  screenshotHeight?: number;
  /** JS expression evaluated once ready; its value must be JSON-serialisable. */
  evaluate?: string;
  /** Give up waiting for readiness after this long (default 30 s). */
  timeoutMs?: number;
  /** Wait for `document.body.dataset.ready === "1"` (default true). */
  waitReady?: boolean;
  /**
   * Origins (e.g. `http://127.0.0.1:8123`) the page may reach besides the file system; any other
   * request is still blocked. With none, the network is also emulated offline.
   */
  allowOrigins?: string[];
  /** Run once the page is ready (before the screenshot), with an evaluator of expressions. */
  during?: (evaluate: (expression: string) => Promise<Json>) => Promise<void>;
}

const LOCAL_SCHEMES = ["file:", "data:", "blob:", "about:"];

/** A headless Chromium process. */
export class Browser {
  #child: Deno.ChildProcess;
  #cdp: Cdp;
  #profile: string;
  #stderr: string[];
  #drained: Promise<void>;

  private constructor(
    child: Deno.ChildProcess,
    cdp: Cdp,
    profile: string,
    stderr: string[],
    drained: Promise<void>,
  ) {
    this.#drained = drained;
    this.#child = child;
    this.#cdp = cdp;
    this.#profile = profile;
    this.#stderr = stderr;
  }

  /** Start Chromium headless and connect to it. */
  static async launch(executablePath = findChromium()): Promise<Browser> {
    if (!executablePath) {
      throw new Error(
        "Chromium not found: install it (apt-get install chromium) or set CHROMIUM_PATH",
      );
    }
    const profile = await Deno.makeTempDir({ prefix: "report-chromium-" });
    const child = new Deno.Command(executablePath, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--hide-scrollbars",
        "--mute-audio",
        // loopback stays reachable for the dashboard test; Fetch interception blocks it elsewhere
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        `--user-data-dir=${profile}`,
        "--remote-debugging-port=0",
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr: string[] = [];
    const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let wsUrl: string | undefined;
    let buffer = "";
    const deadline = setTimeout(() => child.kill("SIGKILL"), 30_000);
    try {
      while (!wsUrl) {
        const { value, done } = await lines.read();
        if (done) break;
        buffer += value;
        const m = buffer.match(/DevTools listening on (ws:\/\/\S+)/);
        if (m) wsUrl = m[1];
      }
    } finally {
      clearTimeout(deadline);
    }
    stderr.push(buffer);
    if (!wsUrl) {
      await child.status;
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      throw new Error(`Chromium did not start:\n${buffer.slice(-2000)}`);
    }
    // Keep draining stderr so Chromium never blocks on a full pipe.
    const drained = (async () => {
      try {
        for (;;) {
          const { value, done } = await lines.read();
          if (done) break;
          if (stderr.length < 1000) stderr.push(value);
        }
      } catch { /* process ended */ }
    })();
    const cdp = await Cdp.connect(wsUrl);
    return new Browser(child, cdp, profile, stderr, drained);
  }

  /** Chromium's version string. */
  async version(): Promise<string> {
    return (await this.#cdp.send("Browser.getVersion")).product;
  }

  /** Open `url` in a fresh tab with the network blocked, wait until ready, collect what happened. */
  async visit(url: string, opts: VisitOptions = {}): Promise<PageVisit> {
    const cdp = this.#cdp;
    const width = opts.width ?? 1280;
    const height = opts.height ?? 900;
    const visit: PageVisit = {
      url,
      ready: false,
      errors: [],
      warnings: [],
      requests: [],
      blocked: [],
    };
    const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
    const send = (method: string, params: Json = {}) => cdp.send(method, params, sessionId);
    let loaded!: () => void;
    const loadEvent = new Promise<void>((r) => (loaded = r));
    const off = cdp.on((m) => {
      if (m.sessionId !== sessionId) return;
      const p = m.params;
      switch (m.method) {
        case "Fetch.requestPaused": {
          const u: string = p.request.url;
          const allowed = (opts.allowOrigins ?? []).some((o) => u === o || u.startsWith(o + "/"));
          if (allowed || LOCAL_SCHEMES.some((s) => u.startsWith(s))) {
            send("Fetch.continueRequest", { requestId: p.requestId }).catch(() => {});
          } else {
            visit.blocked.push(u);
            send("Fetch.failRequest", { requestId: p.requestId, errorReason: "BlockedByClient" })
              .catch(() => {});
          }
          break;
        }
        case "Network.requestWillBeSent":
          visit.requests.push(p.request.url);
          break;
        case "Runtime.consoleAPICalled": {
          const text = (p.args ?? []).map((a: Json) => a.value ?? a.description ?? "").join(" ");
          if (p.type === "error" || p.type === "assert") {
            visit.errors.push(`console.${p.type}: ${text}`);
          } else if (p.type === "warning") visit.warnings.push(text);
          break;
        }
        case "Runtime.exceptionThrown": {
          const d = p.exceptionDetails;
          visit.errors.push(`exception: ${d.exception?.description ?? d.text}`);
          break;
        }
        case "Log.entryAdded":
          if (p.entry.level === "error") {
            visit.errors.push(
              `log (${p.entry.source}): ${p.entry.text} ${p.entry.url ?? ""}`.trim(),
            );
          } else if (p.entry.level === "warning") visit.warnings.push(p.entry.text);
          break;
        case "Page.loadEventFired":
          loaded();
          break;
      }
    });
    try {
      await send("Fetch.enable", { patterns: [{ urlPattern: "*" }] });
      await send("Network.enable");
      await send("Network.emulateNetworkConditions", {
        offline: !opts.allowOrigins?.length,
        latency: 0,
        downloadThroughput: -1,
        uploadThroughput: -1,
      });
      await send("Page.enable");
      await send("Runtime.enable");
      await send("Log.enable");
      await send("Emulation.setDeviceMetricsOverride", {
        width,
        height,
        deviceScaleFactor: 1,
        mobile: false,
      });
      const timeoutMs = opts.timeoutMs ?? 30_000;
      const nav = await send("Page.navigate", { url });
      if (nav.errorText) visit.errors.push(`navigation: ${nav.errorText}`);
      await within(loadEvent, timeoutMs);
      const evaluate = async (expression: string) => {
        const r = await send("Runtime.evaluate", {
          expression,
          returnByValue: true,
          awaitPromise: true,
        });
        if (r.exceptionDetails) {
          throw new Error(`evaluate failed: ${r.exceptionDetails.exception?.description}`);
        }
        return r.result.value;
      };
      if (opts.waitReady ?? true) {
        const end = Date.now() + timeoutMs;
        while (Date.now() < end) {
          if ((await evaluate("document.body ? document.body.dataset.ready || '' : ''")) === "1") {
            visit.ready = true;
            break;
          }
          await sleep(50);
        }
      } else {
        visit.ready = true;
      }
      if (opts.during) await opts.during(evaluate);
      await sleep(100); // let late console messages and log entries arrive
      if (opts.evaluate) {
        visit.value = JSON.parse(await evaluate(`JSON.stringify(${opts.evaluate})`));
      }
      if (opts.screenshotPath) {
        // Grow the viewport to the whole page and let responsive charts settle before capturing;
        // repeat while the page height still changes (charts resizing change the layout).
        let shotHeight = 0;
        for (let i = 0; i < 4; i++) {
          const metrics = await send("Page.getLayoutMetrics");
          const size = metrics.cssContentSize ?? metrics.contentSize;
          const h = Math.min(Math.ceil(size.height), 30_000);
          if (h === shotHeight) break;
          shotHeight = h;
          await send("Emulation.setDeviceMetricsOverride", {
            width,
            height: shotHeight,
            deviceScaleFactor: 1,
            mobile: false,
          });
          await evaluate(
            "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))",
          );
          await sleep(150);
        }
        const shot = await send("Page.captureScreenshot", {
          format: "png",
          clip: {
            x: 0,
            y: 0,
            width,
            height: Math.min(shotHeight, opts.screenshotHeight ?? shotHeight),
            scale: 1,
          },
        });
        const bytes = Uint8Array.from(atob(shot.data), (c) => c.charCodeAt(0));
        await Deno.writeFile(opts.screenshotPath, bytes);
        visit.screenshot = opts.screenshotPath;
      }
    } finally {
      off();
      await cdp.send("Target.closeTarget", { targetId }).catch(() => {});
    }
    return visit;
  }

  /** Close the browser and remove its temporary profile. */
  async close(): Promise<void> {
    await this.#cdp.send("Browser.close").catch(() => {});
    this.#cdp.close();
    if (!(await within(this.#child.status, 5000))) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already gone */ }
      await this.#child.status;
    }
    await this.#drained;
    await this.#cdp.closed;
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }

  /** Chromium's stderr so far (for diagnosing failures). */
  stderr(): string {
    return this.#stderr.join("");
  }
}

/** Resolve after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A cancellable delay (so that no timer outlives a test). */
function delay(ms: number): { promise: Promise<void>; cancel: () => void } {
  let id: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<void>((r) => (id = setTimeout(r, ms)));
  return { promise, cancel: () => clearTimeout(id) };
}

/** Race `p` against a timeout of `ms`; true when `p` settled first. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  const d = delay(ms);
  try {
    return await Promise.race([p.then(() => true), d.promise.then(() => false)]);
  } finally {
    d.cancel();
  }
}

/** A `file://` URL for a local path. */
export function fileUrl(path: string): string {
  return pathToFileURL(resolve(path)).href;
}
