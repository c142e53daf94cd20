import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { listen } from "./ports";

/**
 * Dev/bench-only HTTP proxy that holds every request for a fixed delay before forwarding it to one target,
 * then streams the request and response bodies through unchanged. In front of a local store it stands in
 * for the distance between a Cloudflare colo and the store's region: on Workers every store call is a
 * subrequest that pays that latency, so what a request waits on in sequence shows up in its timing.
 */

export interface DelayProxyOptions {
  /** Origin to forward to, e.g. `http://127.0.0.1:8081`; request paths and queries are kept. */
  target: string;
  /** Added to every request before it is forwarded, in milliseconds. */
  delayMs: number;
  port?: number;
  host?: string;
}

export interface RunningDelayProxy {
  /** The proxy's origin (no trailing slash). */
  url: string;
  target: string;
  /** Requests received so far (each one is one store round trip). */
  requests(): number;
  /** Requests received and not yet answered to the end (or abandoned). */
  inFlight(): number;
  /** Changes the delay for requests that arrive from now on. */
  setDelay(ms: number): void;
  stop(): Promise<void>;
}

// Connection-level headers belong to one hop, not to the message (RFC 9110 §7.6.1).
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "upgrade",
]);

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

export async function startDelayProxy(opts: DelayProxyOptions): Promise<RunningDelayProxy> {
  const target = new URL(opts.target);
  if (target.protocol !== "http:") throw new Error(`the delay proxy forwards to http:// targets, not ${opts.target}`);
  let delayMs = checkedDelay(opts.delayMs);
  let received = 0;
  let open = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const pending = new Set<NodeJS.Timeout>();

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    if (req.destroyed) return;
    const upstream = request(
      {
        agent,
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...endToEnd(req.headers), host: target.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.headers));
        answer.pipe(res);
        answer.on("error", () => res.destroy());
      },
    );
    upstream.on("error", (error) => {
      if (res.headersSent) return res.destroy();
      res.writeHead(502, { "content-type": "text/plain; charset=utf-8" }).end(`delay proxy: ${error.message}`);
    });
    // A client that gives up cancels the forwarded call too, as a dropped subrequest would.
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  };

  const server = createServer((req, res) => {
    received += 1;
    open += 1;
    res.on("close", () => {
      open -= 1;
    });
    // The body waits in the socket (the request stream is paused) until it is piped upstream.
    const timer = setTimeout(() => {
      pending.delete(timer);
      forward(req, res);
    }, delayMs);
    pending.add(timer);
  });
  await listen(server, opts.port ?? 0, opts.host ?? "127.0.0.1");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host ?? "127.0.0.1"}:${port}`,
    target: target.origin,
    requests: () => received,
    inFlight: () => open,
    setDelay: (ms) => {
      delayMs = checkedDelay(ms);
    },
    stop: async () => {
      for (const timer of pending) clearTimeout(timer);
      pending.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

function checkedDelay(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`a delay must be a number of milliseconds ≥ 0, got ${ms}`);
  return ms;
}

/** The stores a Worker reaches, by the settings that hold their URLs. */
export const STORE_URL_SETTINGS = {
  mongo: "DATA_API_URL",
  clickhouse: "CLICKHOUSE_URL",
  redis: "UPSTASH_REDIS_REST_URL",
} as const;

export type DelayedStore = keyof typeof STORE_URL_SETTINGS;
export type StoreDelays = Partial<Record<DelayedStore, number>>;

export interface DelayedStores {
  /** The Worker's settings with each delayed store's URL pointing at its proxy. */
  workerEnv: Record<string, string>;
  proxies: Partial<Record<DelayedStore, RunningDelayProxy>>;
  stop(): Promise<void>;
}

/**
 * Puts a delay proxy in front of each store named in `delays` (one proxy per store, so each gets its own
 * latency) and rewrites the Worker's store URLs to go through them; paths (the Data API base) are kept.
 */
export async function delayStores(workerEnv: Record<string, string>, delays: StoreDelays): Promise<DelayedStores> {
  const proxies: Partial<Record<DelayedStore, RunningDelayProxy>> = {};
  const env = { ...workerEnv };
  const stop = async () => {
    await Promise.all(Object.values(proxies).map((p) => p?.stop()));
  };
  try {
    for (const [store, delayMs] of Object.entries(delays) as [DelayedStore, number | undefined][]) {
      if (delayMs === undefined) continue;
      const setting = STORE_URL_SETTINGS[store];
      const current = env[setting];
      if (!current) throw new Error(`${setting} is not set: nothing to delay for ${store}`);
      const url = new URL(current);
      const proxy = await startDelayProxy({ target: url.origin, delayMs });
      proxies[store] = proxy;
      env[setting] = `${proxy.url}${url.pathname === "/" ? "" : url.pathname}${url.search}`;
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { workerEnv: env, proxies, stop };
}

/** Parses `store=ms` pairs (`mongo=40`, `redis=5`, `clickhouse=40`), as `--delay` takes them. */
export function parseStoreDelays(entries: readonly string[]): StoreDelays {
  const delays: StoreDelays = {};
  for (const entry of entries) {
    for (const part of entry.split(",")) {
      const match = /^\s*(mongo|clickhouse|redis)\s*=\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
      if (!match?.[1] || !match[2]) {
        throw new Error(`--delay expects store=ms with store mongo, clickhouse or redis; got "${part}"`);
      }
      delays[match[1] as DelayedStore] = Number(match[2]);
    }
  }
  return delays;
}
