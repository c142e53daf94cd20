import { StoreUnavailableError } from "./errors";
import { markDown, roundTrip } from "./io";
import { Redis } from "./upstash";

export type { Redis };

export interface RedisOptions {
  url: string;
  token: string;
  timeoutMs: number;
}

/**
 * The Upstash REST client, with every HTTP request counted and timed for the current request (see io.ts) and
 * bounded by a timeout and the request's store budget. Nothing is retried: a store outage must surface quickly
 * as a 503, and a retried write could apply twice.
 *
 * Anything that goes wrong in the HTTP exchange itself — no connection, no answer in time, a body that is not
 * Upstash's JSON, a non-2xx status other than a refused token — means Redis could not serve the request, and
 * becomes StoreUnavailableError. An error reply to a command (wrong type, script error) arrives inside a 2xx
 * pipeline answer and stays what it is: a bug, not an outage.
 */
export function createRedis(opts: RedisOptions): Redis {
  return new Redis({
    url: opts.url,
    token: opts.token,
    around: async (exchange) => {
      try {
        return await roundTrip("redis", opts.timeoutMs, exchange);
      } catch (error) {
        const outage = asRedisOutage(error);
        if (outage) markDown("redis");
        throw outage ?? error;
      }
    },
  });
}

/** A wrong or missing token is a configuration error, not an outage (Upstash: WRONGPASS; the local server: Unauthorized). */
const REFUSED_TOKEN = /^(WRONGPASS|Unauthorized)\b/;

function asRedisOutage(error: unknown): StoreUnavailableError | null {
  if (error instanceof StoreUnavailableError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (REFUSED_TOKEN.test(message)) return null;
  return new StoreUnavailableError("redis", error instanceof Error ? `${error.name}: ${message}` : message, {
    cause: error,
  });
}
