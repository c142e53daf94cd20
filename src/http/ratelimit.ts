import type { MiddlewareHandler } from "hono";
import { decodeJwt } from "jose";
import { timingSafeEqual } from "../platform/crypto";
import { StoreUnavailableError } from "../platform/errors";
import { isObjectIdHex } from "../platform/ids";
import {
  checkSlidingWindow,
  checkSlidingWindowWithGet,
  piggybackSlidingWindow,
  type RateLimitDecision,
} from "../platform/ratelimit";
import { bearerToken } from "./auth";
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
 * Reads served from a Redis cache first (feed pages, public profiles): their rate-limit check travels in the
 * same pipeline as the cache read, so a cache hit costs one round trip in total. The decision arrives before
 * any MongoDB work, so a refused request still does nothing expensive.
 */
const CACHE_FIRST_READS = [/^\/v1\/feeds\/(new|trending|hot)$/, /^\/v1\/users\/[A-Za-z0-9_]{3,30}$/];

/** The 429 for a refused decision, with RateLimit-* and Retry-After; `what` names what there were too many of. */
export function rateLimited(decision: RateLimitDecision, what = "requests"): ApiError {
  return new ApiError("rate_limited", `Too many ${what}. Retry in ${decision.retryAfterSeconds} s.`, {
    headers: { ...rateLimitHeaders(decision), "Retry-After": String(decision.retryAfterSeconds) },
  });
}

/**
 * Global per-IP limit (`rate:api:{ip}`), one Redis round trip per request (none extra for cache-first
 * reads). When Redis cannot be reached the policy in config decides: `open` (default) lets the request through without RateLimit-* headers and logs
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
    const key = keys.rateApi(c.var.clientIp);
    const failOpen = (error: unknown) => {
      if (config.rateLimit.failMode === "closed") {
        throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError("redis", String(error));
      }
      log.warn("rate limit check failed; allowing request (fail-open)", {
        requestId: c.var.requestId,
        error: error instanceof Error ? error.message : String(error),
      });
    };

    if (c.req.method === "GET" && CACHE_FIRST_READS.some((r) => r.test(c.req.path))) {
      const check = piggybackSlidingWindow(redis, key, maxRequests, windowSeconds, (d) => {
        if (!d.allowed) throw rateLimited(d);
      });
      c.set("deps", { ...c.var.deps, redis: check.redis });
      await next();
      let late: RateLimitDecision;
      try {
        late = await check.decision();
      } catch (error) {
        return failOpen(error);
      }
      // A handler that never read the cache (e.g. a 400) is checked now; a refusal replaces its answer.
      if (!late.allowed && c.res.status !== 429) throw rateLimited(late);
      for (const [name, value] of Object.entries(rateLimitHeaders(late))) c.res.headers.set(name, value);
      return;
    }

    let decision: RateLimitDecision;
    try {
      const subject = claimedSubject(c.req.header("authorization"));
      if (subject) {
        const both = await checkSlidingWindowWithGet<number | string>(
          redis,
          key,
          maxRequests,
          windowSeconds,
          keys.session(subject),
        );
        decision = both.decision;
        c.set("sessionCutoff", { userId: subject, value: both.value });
      } else {
        decision = await checkSlidingWindow(redis, key, maxRequests, windowSeconds);
      }
    } catch (error) {
      failOpen(error);
      return next();
    }
    if (!decision.allowed) throw rateLimited(decision);
    await next();
    for (const [name, value] of Object.entries(rateLimitHeaders(decision))) c.res.headers.set(name, value);
  };
}

function isWorkerToken(header: string | undefined, workerToken: string): boolean {
  const presented = bearerToken(header);
  return presented !== null && timingSafeEqual(presented, workerToken);
}

/** The user id a bearer token claims, without verifying it (only to prefetch; `requireAuth` verifies). */
function claimedSubject(header: string | undefined): string | null {
  const token = bearerToken(header);
  if (!token) return null;
  try {
    const { sub } = decodeJwt(token);
    return typeof sub === "string" && isObjectIdHex(sub) ? sub : null;
  } catch {
    return null;
  }
}
