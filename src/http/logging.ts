import type { MiddlewareHandler } from "hono";
import { newTally, serverTiming, withIoTally } from "../platform/io";
import type { AppEnv } from "./context";
import { handlingRoute } from "./handling-route";

/**
 * One structured log line per request (method, route pattern — never the raw URL, which may carry tokens —
 * status, duration, request id, store round trips), and a Server-Timing header with the same round-trip
 * counts so clients and tests can see what a request cost. The request's store budget starts here, so every
 * store call of the request (middleware included) shares it.
 */
export function requestLogging(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    const config = c.var.deps?.config;
    const tally = newTally(
      config && { limitMs: config.requestStoreBudgetMs, perCallMs: { redis: config.requestRedisTimeoutMs } },
    );
    c.set("io", tally);
    await withIoTally(tally, next);
    const durationMs = Math.round((performance.now() - started) * 10) / 10;
    const { deps } = c.var;
    if (deps?.config.http.serverTiming) {
      c.res.headers.set("Server-Timing", `${serverTiming(tally)}, total;dur=${durationMs}`);
    }
    const status = c.res.status;
    const fields = {
      requestId: c.var.requestId,
      method: c.req.method,
      route: handlingRoute(c)?.path ?? "unmatched",
      status,
      durationMs,
      roundTrips: tally.roundTrips,
      waits: tally.waits,
    };
    const log = deps?.log;
    if (!log) console.log(JSON.stringify({ level: "info", msg: "request", ...fields }));
    else if (status >= 500) log.error("request", fields);
    else log.info("request", fields);
  };
}
