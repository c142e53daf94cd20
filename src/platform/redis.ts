import { Redis } from "@upstash/redis/cloudflare";
import { meter } from "./io";

export type { Redis };

export interface RedisOptions {
  url: string;
  token: string;
  timeoutMs: number;
}

interface Requester {
  request: (req: unknown) => Promise<unknown>;
}

/**
 * The Upstash REST client, with every HTTP request counted and timed for the current request (see io.ts)
 * and bounded by a timeout. The SDK's own retries are off: a store outage must surface quickly as a 503,
 * and a retried write could apply twice.
 */
export function createRedis(opts: RedisOptions): Redis {
  const redis = new Redis({
    url: opts.url,
    token: opts.token,
    retry: false,
    enableTelemetry: false,
    // A function, so each request gets a fresh timeout and an abort throws instead of faking a result.
    signal: () => AbortSignal.timeout(opts.timeoutMs),
  });
  // The SDK exposes no fetch hook; wrapping its requester is the one seam that sees every round trip,
  // including pipelines and transactions.
  const http = (redis as unknown as { client: Requester }).client;
  const send = http.request.bind(http);
  http.request = (req) => meter("redis", () => send(req));
  return redis;
}
