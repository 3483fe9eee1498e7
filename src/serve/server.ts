/**
 * The dashboard's HTTP server (`Deno.serve`): the index of a runs folder, run and sweep pages, and
 * one Server-Sent Events stream per page that pushes the page's new parts whenever its files
 * change (polled every `pollMs`). It serves nothing but these pages: no file of the folder is
 * sent as such, every path is a run or sweep below the folder named segment by segment (no `..`,
 * no hidden names, no symbolic link anywhere on the way), and every page forbids requests to any
 * other origin (Content-Security-Policy). Bound to loopback, it answers only requests whose `Host`
 * is a loopback name (a page of another site cannot reach it by DNS rebinding).
 *
 * @example Serve runs/ on a free loopback port, then stop
 * ```ts
 * import { serveRuns } from "./server.ts";
 * const server = serveRuns({ root: "runs", port: 0 });
 * console.log(`http://127.0.0.1:${server.port}/`);
 * await server.shutdown();
 * ```
 *
 * @module
 */

import { join, resolve } from "node:path";
import { UserError } from "../errors.ts";
import { PARTIAL_SUFFIX } from "../train/run.ts";
import { PROGRESS_FILE } from "../train/live.ts";
import { indexPage, type Page, runPage, sweepPage } from "./pages.ts";
import { entryKindOf, lockHeld, runLockHeld, scanRuns } from "./scan.ts";

/** Options of {@link serveRuns}. */
export interface ServeOptions {
  /** The runs folder. */
  root: string;
  /** TCP port (0: any free one; default 8080). */
  port?: number;
  /** Interface to listen on (default 127.0.0.1, loopback only). */
  hostname?: string;
  /** Milliseconds between two looks at a page's files (default 500). */
  pollMs?: number;
}

/** A running dashboard. */
export interface RunsServer {
  /** The port it listens on. */
  port: number;
  /** The interface it listens on. */
  hostname: string;
  /** Stop serving (open event streams end). */
  shutdown(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** Whether `host` is a loopback interface name. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const NOT_FOUND_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'";

function headers(type: string, csp = NOT_FOUND_CSP): HeadersInit {
  return {
    "content-type": type,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    // no other site may frame a page (a meta element cannot say this; the header can)
    "content-security-policy": `${csp}; frame-ancestors 'none'`,
    "x-frame-options": "DENY",
  };
}

function text(status: number, body: string): Response {
  return new Response(body + "\n", { status, headers: headers("text/plain; charset=utf-8") });
}

function cspOf(html: string): string {
  const m = html.match(/<meta http-equiv="Content-Security-Policy" content="([^"]*)">/);
  return m
    ? m[1].replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, "&")
    : NOT_FOUND_CSP;
}

function html(page: Page): Response {
  return new Response(page.html, {
    status: 200,
    headers: headers("text/html; charset=utf-8", cspOf(page.html)),
  });
}

/**
 * The path below `root` that URL path segments name, or null when they do not name one safely:
 * each segment decoded once, none empty, `.`/`..`, hidden, or holding a separator or NUL, and no
 * existing entry on the way a symbolic link.
 */
export function safePath(root: string, segments: string[]): string | null {
  const names: string[] = [];
  for (const raw of segments) {
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (!name || name.startsWith(".") || /[\\/\0]/.test(name) || name.length > 255) return null;
    names.push(name);
  }
  if (names.length === 0) return null;
  let at = root;
  for (const name of names) {
    at = join(at, name);
    for (const p of [at, at + PARTIAL_SUFFIX]) {
      try {
        if (Deno.lstatSync(p).isSymlink) return null;
      } catch {
        // absent: fine so far (a run in training has only its .partial)
      }
    }
  }
  return names.join("/");
}

function fileState(path: string): string {
  try {
    const s = Deno.statSync(path);
    return `${s.size}:${s.mtime?.getTime() ?? 0}`;
  } catch {
    return "-";
  }
}

function dirState(dir: string): string {
  try {
    return [...Deno.readDirSync(dir)].filter((e) => e.isFile).map((e) => e.name).sort()
      .map((n) => `${n}=${fileState(join(dir, n))}`).join(",");
  } catch {
    return "-";
  }
}

type PageKind = "run" | "sweep" | "index";

/** What a page's content depends on, as a string that changes when the page would. */
function signature(root: string, kind: PageKind, path: string): string {
  if (kind === "index") {
    const entries = scanRuns(root).map((e) => ({
      ...e,
      ageSeconds: Math.floor(e.ageSeconds / 60),
    }));
    return JSON.stringify(entries);
  }
  const dir = join(root, path);
  if (kind === "run") {
    const partial = dir + PARTIAL_SUFFIX;
    return [
      fileState(join(dir, "metrics.json")),
      fileState(join(partial, PROGRESS_FILE)),
      fileState(join(partial, "metrics.json")),
      runLockHeld(dir),
    ].join("|");
  }
  return `${dirState(dir)}|${lockHeld(dir, true)}`;
}

async function render(
  root: string,
  kind: PageKind,
  path: string,
  shownAs = root,
): Promise<Page | null> {
  if (kind === "index") return indexPage(root, shownAs);
  return kind === "run" ? await runPage(root, path) : await sweepPage(root, path);
}

/** Updates a slow client may have queued before it is dropped (it reconnects when it can). */
const MAX_QUEUED = 16;

/**
 * One page's event feed, shared by every client watching that page: its files are looked at
 * once per poll however many clients there are, and each change is rendered once.
 */
class Feed {
  readonly #clients = new Set<ReadableStreamDefaultController<Uint8Array>>();
  readonly #timer: ReturnType<typeof setInterval>;
  #last = "";
  #message: Uint8Array | null = null;
  #busy = false;
  #quiet = 0;

  constructor(
    readonly key: string,
    readonly pollMs: number,
    /** The page's signature and its render (null: the page is gone: the feed ends). */
    readonly look: () => { signature: string; render: () => Promise<Page | null> } | null,
    readonly onEmpty: (feed: Feed) => void,
  ) {
    this.#timer = setInterval(() => this.#tick(), pollMs);
  }

  /** A new client's stream: the page's latest update at once (when known), then every change. */
  subscribe(): ReadableStream<Uint8Array> {
    let mine: ReadableStreamDefaultController<Uint8Array>;
    return new ReadableStream<Uint8Array>({
      start: (ctrl) => {
        mine = ctrl;
        this.#clients.add(ctrl);
        ctrl.enqueue(ENC.encode(`retry: 2000\n\n`));
        if (this.#message) ctrl.enqueue(this.#message);
        else this.#tick();
      },
      cancel: () => this.#drop(mine),
    });
  }

  #drop(ctrl: ReadableStreamDefaultController<Uint8Array>): void {
    if (!this.#clients.delete(ctrl)) return;
    try {
      ctrl.close();
    } catch {
      // already closed or errored
    }
    if (this.#clients.size === 0) this.close();
  }

  #send(bytes: Uint8Array): void {
    for (const ctrl of [...this.#clients]) {
      // a client that stopped reading is dropped rather than queued for without bound
      if ((ctrl.desiredSize ?? 0) < -MAX_QUEUED) {
        this.#drop(ctrl);
        continue;
      }
      try {
        ctrl.enqueue(bytes);
      } catch {
        this.#drop(ctrl);
      }
    }
  }

  async #tick(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const now = this.look();
      if (now === null) {
        this.close();
        return;
      }
      if (now.signature !== this.#last) {
        this.#last = now.signature;
        const page = await now.render().catch(() => null);
        if (page) {
          this.#message = ENC.encode(
            `event: update\ndata: ${JSON.stringify(page.fragment)}\n\n`,
          );
          this.#send(this.#message);
        }
        this.#quiet = 0;
      } else if (++this.#quiet * this.pollMs >= 15000) {
        this.#send(ENC.encode(": still here\n\n"));
        this.#quiet = 0;
      }
    } catch {
      // a look that failed: the next one tries again
    } finally {
      this.#busy = false;
    }
  }

  /** End the feed: every client's stream closes. */
  close(): void {
    clearInterval(this.#timer);
    for (const ctrl of this.#clients) {
      try {
        ctrl.close();
      } catch {
        // already closed
      }
    }
    this.#clients.clear();
    this.onEmpty(this);
  }
}

const ENC = new TextEncoder();

/** The shared state of a server's feeds. */
export type Feeds = Map<string, Feed>;

function feedFor(
  feeds: Feeds,
  root: string,
  kind: PageKind,
  segments: string[],
  pollMs: number,
  shownAs?: string,
): Feed {
  const key = `${kind}/${segments.join("/")}`;
  let feed = feeds.get(key);
  if (!feed) {
    feed = new Feed(key, pollMs, () => {
      // the path is checked again at every look: a run directory replaced by a link ends it
      const path = kind === "index" ? "" : safePath(root, segments);
      if (path === null) return null;
      return {
        signature: signature(root, kind, path),
        render: () => render(root, kind, path, shownAs),
      };
    }, (f) => {
      if (feeds.get(f.key) === f) feeds.delete(f.key);
    });
    feeds.set(key, feed);
  }
  return feed;
}

function eventStream(body: ReadableStream<Uint8Array> | null): Response {
  return new Response(body, {
    headers: { ...headers("text/event-stream; charset=utf-8"), connection: "keep-alive" },
  });
}

/** Whether `dir` is (or is becoming) a page of `kind`: a run, an in-progress run, a sweep. */
function pageExists(kind: "run" | "sweep", dir: string): boolean {
  if (kind === "sweep") return entryKindOf(dir) === "sweep";
  return entryKindOf(dir) === "run" || entryKindOf(dir + PARTIAL_SUFFIX) === "partial";
}

/** The path of a request's URL, or null when its target or Host does not make a URL. */
function requestPath(req: Request): string | null {
  try {
    return new URL(req.url).pathname;
  } catch {
    return null;
  }
}

/** The host name of a `Host` header, lower-cased, without port, brackets kept, trailing dot gone. */
export function hostOf(header: string): string {
  return header.trim().toLowerCase().replace(/:\d+$/, "").replace(/\.$/, "");
}

/** Answer one request for the runs folder `root` (an absolute, resolved path). */
export async function handle(
  root: string,
  req: Request,
  opts: {
    pollMs?: number;
    loopbackOnly?: boolean;
    feeds?: Feeds;
    shownAs?: string;
  } = {},
): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") return text(405, "only GET and HEAD");
  if (opts.loopbackOnly && !isLoopback(hostOf(req.headers.get("host") ?? ""))) {
    return text(403, "this dashboard answers loopback requests only");
  }
  const pathname = requestPath(req);
  if (pathname === null) return text(400, "bad request");
  const parts = pathname.split("/").slice(1);
  const feeds = opts.feeds ?? new Map();
  const pollMs = opts.pollMs ?? 500;
  if (pathname === "/") {
    return html(indexPage(root, opts.shownAs));
  }
  if (parts[0] === "events") {
    const kind = parts[1] as PageKind;
    if (kind === "index" && parts.slice(2).join("") === "") {
      if (req.method === "HEAD") return eventStream(null);
      return eventStream(feedFor(feeds, root, "index", [], pollMs, opts.shownAs).subscribe());
    }
    if (kind !== "run" && kind !== "sweep") return text(404, "not found");
    const path = safePath(root, parts.slice(2));
    if (!path || !pageExists(kind, join(root, path))) return text(404, "not found");
    if (req.method === "HEAD") return eventStream(null);
    return eventStream(feedFor(feeds, root, kind, parts.slice(2), pollMs).subscribe());
  }
  if (parts[0] === "run" || parts[0] === "sweep") {
    const path = safePath(root, parts.slice(1));
    if (!path) return text(404, "not found");
    const page = await render(root, parts[0], path).catch(() => null);
    return page ? html(page) : text(404, "not found");
  }
  return text(404, "not found");
}

/**
 * Serve the dashboard of the runs folder `root`. Throws a {@link UserError} when the folder is not
 * a directory or the port is taken.
 */
export function serveRuns(opts: ServeOptions): RunsServer {
  let root = resolve(opts.root);
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(root);
    root = Deno.realPathSync(root);
  } catch {
    throw new UserError(
      `${opts.root} does not exist: give the folder runs are written to (default runs/, the configs' "out")`,
    );
  }
  if (!info.isDirectory) {
    throw new UserError(`${opts.root} is not a directory: give the folder runs are written to`);
  }
  // an IPv6 address may come bracketed, as in a URL
  const hostname = (opts.hostname ?? "127.0.0.1").replace(/^\[(.*)\]$/, "$1");
  const loopbackOnly = isLoopback(hostname);
  let server: Deno.HttpServer<Deno.NetAddr>;
  const controller = new AbortController();
  const feeds: Feeds = new Map();
  try {
    server = Deno.serve(
      {
        port: opts.port ?? 8080,
        hostname,
        signal: controller.signal,
        onListen: () => {},
      },
      (req) => handle(root, req, { pollMs: opts.pollMs, loopbackOnly, feeds, shownAs: opts.root }),
    );
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new UserError(
        `port ${opts.port ?? 8080} on ${hostname} is in use: pick another with --port`,
      );
    }
    // an address of no interface, a name that does not resolve, a privileged port, …
    throw new UserError(
      `cannot listen on ${hostname}:${opts.port ?? 8080}: ${
        String((e as Error)?.message ?? e).split("\n")[0]
      }`,
    );
  }
  return {
    port: server.addr.port,
    hostname,
    async shutdown() {
      for (const feed of [...feeds.values()]) feed.close();
      controller.abort();
      await server.finished;
    },
  };
}
