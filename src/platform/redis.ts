import { Redis } from "@upstash/redis/cloudflare";
import { StoreUnavailableError } from "./errors";
import { markDown, roundTrip } from "./io";

export type { Redis };

export interface RedisOptions {
  url: string;
  token: string;
  timeoutMs: number;
}

interface Requester {
  request: (req: { signal?: unknown } & Record<string, unknown>) => Promise<unknown>;
}

/**
 * The Upstash REST client, with every HTTP request counted and timed for the current request (see io.ts) and
 * bounded by a timeout and the request's store budget. The SDK's own retries are off: a store outage must
 * surface quickly as a 503, and a retried write could apply twice.
 *
 * Anything that goes wrong in the HTTP exchange itself — no connection, no answer in time, a body that is not
 * Upstash's JSON, a non-2xx status other than a refused token — means Redis could not serve the request, and
 * becomes StoreUnavailableError. An error reply to a command (wrong type, script error) arrives inside a 2xx
 * pipeline answer and stays what it is: a bug, not an outage.
 */
export function createRedis(opts: RedisOptions): Redis {
  const redis = new Redis({
    url: opts.url,
    token: opts.token,
    retry: false,
    enableTelemetry: false,
  });
  // The SDK exposes no fetch hook; wrapping its requester is the one seam that sees every round trip,
  // including pipelines and transactions.
  const http = (redis as unknown as { client: Requester }).client;
  const send = http.request.bind(http);
  http.request = async (req) => {
    try {
      // A function, so an abort throws instead of the SDK faking an "Aborted" result.
      return await roundTrip("redis", opts.timeoutMs, (signal) => send({ ...req, signal: () => signal }));
    } catch (error) {
      const outage = asRedisOutage(error);
      if (outage) markDown("redis");
      throw outage ?? error;
    }
  };
  return redis;
}

/** A wrong or missing token is a configuration error, not an outage (Upstash: WRONGPASS; the local server: Unauthorized). */
const REFUSED_TOKEN = /^(WRONGPASS|Unauthorized)\b/;

function asRedisOutage(error: unknown): StoreUnavailableError | null {
  if (error instanceof StoreUnavailableError) return error;
  // The SDK appends the command (keys, values) to its messages; logs need only the reason.
  const message = (error instanceof Error ? error.message : String(error)).split(", command was:")[0] ?? "";
  if (REFUSED_TOKEN.test(message)) return null;
  return new StoreUnavailableError("redis", error instanceof Error ? `${error.name}: ${message}` : message, {
    cause: error,
  });
}
