import { env } from "cloudflare:workers";
import type { RigInfo } from "../setup/rig-info";
import { appWith } from "./deps";

type Fetcher = (request: Request) => Promise<Response>;
type Part = "redis" | "upstash" | "gateway";

/**
 * Short store timeouts for apps against a fault rig: a dead store costs a test well under a second, while a
 * healthy store on a loaded CI machine (the shared gateway) still answers within the budget.
 */
export const FAULT_TIMEOUTS = {
  STORE_TIMEOUT_MS: "3000",
  REQUEST_REDIS_TIMEOUT_MS: "400",
  REQUEST_STORE_BUDGET_MS: "4000",
} as const;

/** A store stack of real processes this test file may break (see test/setup/faults.ts). */
export interface FaultRig {
  info: RigInfo;
  /** The real app against this rig's Redis (and its gateway when `store: "rig"`), with short timeouts. */
  app(overrides?: Record<string, string>, options?: { mongo?: "shared" | "rig" }): Fetcher;
  pause(part: Part): Promise<void>;
  resume(part: Part): Promise<void>;
  kill(part: Part): Promise<void>;
  restart(part: Part): Promise<void>;
  /** FLUSHALL on the rig's own redis-server: every key gone, as after a restart without persistence. */
  flushAll(): Promise<void>;
  close(): Promise<void>;
}

const control = (): string => (env as unknown as Record<string, string>).TEST_FAULT_CONTROL_URL ?? "";

async function post(path: string, body?: unknown, method = "POST"): Promise<Response> {
  const res = await fetch(`${control()}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`fault control ${method} ${path}: ${res.status} ${await res.text()}`);
  return res;
}

/** Starts a fault rig (redis-server + Upstash REST server processes, and a gateway process when asked). */
export async function faultRig(options: { gateway?: boolean } = {}): Promise<FaultRig> {
  const info = (await (await post("/rigs", { gateway: options.gateway ?? false })).json()) as RigInfo;
  const act = (part: Part, action: string) => post(`/rigs/${info.id}/${part}/${action}`).then(() => undefined);
  return {
    info,
    app(overrides = {}, appOptions = {}) {
      const gateway = appOptions.mongo === "rig" ? info.gateway : undefined;
      return appWith({
        UPSTASH_REDIS_REST_URL: info.upstashUrl,
        UPSTASH_REDIS_REST_TOKEN: info.upstashToken,
        ...(gateway ? { DATA_API_URL: gateway.url, DATA_API_KEY: gateway.apiKey } : {}),
        ...FAULT_TIMEOUTS,
        ...overrides,
      });
    },
    pause: (part) => act(part, "pause"),
    resume: (part) => act(part, "resume"),
    kill: (part) => act(part, "kill"),
    restart: (part) => act(part, "restart"),
    flushAll: () => act("redis", "flushall"),
    close: () => post(`/rigs/${info.id}`, undefined, "DELETE").then(() => undefined),
  };
}

/** A loopback port nothing listens on (the discard port), for a store that is simply not there. */
export const CLOSED_PORT_URL = "http://127.0.0.1:9";

/** Retries `probe` until it holds (a restarted store takes a moment to be reachable again). */
export async function eventually(probe: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms`);
}
