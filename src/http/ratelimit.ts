import type { MiddlewareHandler } from "hono";
import { timingSafeEqual } from "../platform/crypto";
import { StoreUnavailableError } from "../platform/errors";
import { checkSlidingWindow, type RateLimitDecision } from "../platform/ratelimit";
import type { AppEnv } from "./context";
import { ApiError } from "./errors";

export function rateLimitHeaders(d: RateLimitDecision): Record<string, string> {
  return {
    "RateLimit-Limit": String(d.limit),
    "RateLimit-Remaining": String(d.remaining),
    "RateLimit-Reset": String(d.resetSeconds),
  };
}

/**
 * Global per-IP limit (`rate:api:{ip}`), one Redis round trip per request. When Redis cannot be reached the
 * policy in config decides: `open` (default) lets the request through without RateLimit-* headers and logs
 * a warning, so a cache outage does not take the API down; `closed` answers 503 instead.
 */
export function apiRateLimit(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const { config, redis, keys, log } = c.var.deps;
    // GPU workers poll /v1/internal/* from a few shared addresses; with the worker token they are not
    // subject to the per-IP limit meant for app users.
    if (
      c.req.path.startsWith("/v1/internal/") &&
      isWorkerToken(c.req.header("authorization"), config.generation.workerToken)
    ) {
      return next();
    }
    const { maxRequests, windowSeconds } = config.rateLimit.api;
    let decision: RateLimitDecision;
    try {
      decision = await checkSlidingWindow(redis, keys.rateApi(c.var.clientIp), maxRequests, windowSeconds);
    } catch (error) {
      if (config.rateLimit.failMode === "closed") {
        throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError("redis", String(error));
      }
      log.warn("rate limit check failed; allowing request (fail-open)", {
        requestId: c.var.requestId,
        error: error instanceof Error ? error.message : String(error),
      });
      return next();
    }
    if (!decision.allowed) {
      throw new ApiError("rate_limited", `Too many requests. Retry in ${decision.retryAfterSeconds} s.`, {
        headers: { ...rateLimitHeaders(decision), "Retry-After": String(decision.retryAfterSeconds) },
      });
    }
    await next();
    for (const [name, value] of Object.entries(rateLimitHeaders(decision))) c.res.headers.set(name, value);
  };
}

function isWorkerToken(header: string | undefined, workerToken: string): boolean {
  const presented = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1];
  return presented !== undefined && timingSafeEqual(presented, workerToken);
}
