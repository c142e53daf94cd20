import type { Context, MiddlewareHandler } from "hono";
import { decodeJwt } from "jose";
import { ApiError, rateLimitHeaders } from "../core/errors";
import { StoreUnavailableError } from "../platform/errors";
import { isObjectIdHex } from "../platform/ids";
import type { RateLimitDecision } from "../platform/ratelimit";
import {
  batchOn,
  countInWindow,
  type GuardedSet,
  getValue,
  type RedisOp,
  readGuardedSet,
  runOps,
  slidingWindow,
} from "../platform/redis-ops";
import { bearerToken, isWorkerToken } from "./auth";
import type { AppEnv } from "./context";
import { type ByteBudget, matchedRouteMeta, type Prefetch } from "./routes";

/**
 * Global per-IP limit (`rate:api:{ip}`), one Redis round trip per request and none extra for cache-first reads.
 * When Redis cannot be reached the policy in config decides: `open` (default) lets the request through without
 * RateLimit-* headers and logs a warning, so a cache outage does not take the API down; `closed` answers 503.
 *
 * Cache-first routes (route metadata, see `http/routes.ts`) defer the check to the handler's first Redis batch
 * (`c.var.redis`), which carries it in the same pipeline; the decision arrives before any MongoDB work, so a
 * refused request still does nothing expensive. Every other route is checked up front, together with the
 * standing and the blocks and mutes of the user a bearer token names (read for `requireAuth`, so they cost no
 * round trip of their own) and the route's own reads for that user, if it declares any (`prefetch`), and, on
 * routes with a byte budget (`POST /v1/events`), the body's bytes charged to the caller's budget: a flood of
 * large requests is refused by size, not only by count.
 */
const RATE_LIMIT_OP = "__rateLimit";
/** Prefixes a route's prefetched reads in the shared pipeline, so no name of theirs meets ours. */
const PREFETCH_PREFIX = "__route:";

export function apiRateLimit(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const { config, redis, keys } = c.var.deps;
    const plain = batchOn(redis);
    c.set("redis", plain);
    // GPU workers poll /v1/internal/* from a few shared addresses; with the worker token they are not
    // subject to the per-IP limit meant for app users.
    if (
      c.req.path.startsWith("/v1/internal/") &&
      isWorkerToken(c.req.header("authorization"), config.generation.workerToken)
    ) {
      return next();
    }
    const { maxRequests, windowSeconds } = config.rateLimit.api;
    const check = slidingWindow(keys.rateApi(c.var.clientIp), maxRequests, windowSeconds);

    if (c.req.method === "GET" && isCacheFirst(c)) {
      let decided: Promise<RateLimitDecision> | null = null;
      c.set("redis", async (ops) => {
        if (decided) return plain(ops);
        // The check rides in the same pipeline as the handler's first batch, under a name no op uses.
        const both = runOps(redis, { ...ops, [RATE_LIMIT_OP]: check });
        decided = both.then((r) => r[RATE_LIMIT_OP] as RateLimitDecision);
        decided.catch(() => {}); // awaited after the handler; not an unhandled rejection meanwhile
        let all: Record<string, unknown>;
        try {
          all = (await both) as Record<string, unknown>;
        } catch (error) {
          // Fail-closed: a 503 no fail-open cache read may swallow. Fail-open: the handler's reads miss.
          if (config.rateLimit.failMode === "closed" && error instanceof StoreUnavailableError) {
            throw ApiError.unavailable(
              "The rate limit cannot be checked right now.",
              config.unavailableRetryAfterSeconds,
            );
          }
          throw error;
        }
        const { [RATE_LIMIT_OP]: decision, ...results } = all;
        const rateLimit = decision as RateLimitDecision;
        if (!rateLimit.allowed) throw ApiError.rateLimited(rateLimit);
        return results as never;
      });
      await next();
      let late: RateLimitDecision;
      try {
        late = await (decided ?? runOps(redis, { check }).then((r) => r.check));
      } catch (error) {
        return failOpen(c, error);
      }
      // A handler that never read Redis (e.g. a 400) is checked now; a refusal replaces its answer.
      if (!late.allowed && c.res.status !== 429) throw ApiError.rateLimited(late);
      setHeaders(c, late);
      return;
    }

    const budget = matchedRouteMeta(c)?.byteBudget?.(config);
    const charge = budget ? await byteCharge(c, budget) : undefined;
    let decision: RateLimitDecision;
    let bytesSpent: number | undefined;
    try {
      const subject = claimedSubject(c.req.header("authorization"));
      const ops: Record<string, RedisOp<unknown>> = { check };
      if (charge) ops.bytes = charge.op;
      if (subject) {
        const own = routePrefetch(c)?.(c.var.deps, subject, c.var.deps.clock.now()) ?? {};
        for (const [name, op] of Object.entries(own)) ops[`${PREFETCH_PREFIX}${name}`] = op;
        ops.standing = getValue<unknown>(keys.session(subject));
        ops.relations = readGuardedSet(keys.relations(subject), keys.relationsGeneration(subject));
        const all: Record<string, unknown> = await runOps(redis, ops);
        decision = all.check as RateLimitDecision;
        bytesSpent = all.bytes as number | undefined;
        c.set("prefetchedStanding", {
          userId: subject,
          value: all.standing,
          relations: all.relations as GuardedSet,
        });
        if (Object.keys(own).length > 0) {
          const results = Object.fromEntries(Object.keys(own).map((name) => [name, all[`${PREFETCH_PREFIX}${name}`]]));
          c.set("prefetched", { userId: subject, results });
        }
      } else {
        const all = await runOps(redis, ops);
        decision = all.check as RateLimitDecision;
        bytesSpent = all.bytes as number | undefined;
      }
    } catch (error) {
      failOpen(c, error);
      return next();
    }
    if (!decision.allowed) throw ApiError.rateLimited(decision);
    if (charge && budget && bytesSpent !== undefined && bytesSpent > budget.bytes) {
      throw new ApiError(
        "rate_limited",
        `This address sent more than ${budget.bytes} bytes of ${budget.name} in ${budget.windowSeconds} s. ` +
          `Retry in ${charge.retryAfterSeconds} s.`,
        { reason: "byte_budget", headers: { "Retry-After": String(charge.retryAfterSeconds) } },
      );
    }
    await next();
    setHeaders(c, decision);
  };
}

/**
 * This request's charge to `budget`: its body size (Content-Length, or the body itself when none was sent; the
 * body limit ran first, so either is bounded) added to a fixed window's counter. Fixed windows on the Worker's
 * clock need no script; a burst across a boundary can reach twice the budget, which is still a bound.
 */
async function byteCharge(
  c: Context<AppEnv>,
  budget: ByteBudget,
): Promise<{ op: RedisOp<number>; retryAfterSeconds: number }> {
  const declared = c.req.header("transfer-encoding") ? undefined : c.req.header("content-length");
  const size =
    declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : (await c.req.arrayBuffer()).byteLength;
  const windowMs = budget.windowSeconds * 1000;
  const now = c.var.deps.clock.now().getTime();
  const window = Math.floor(now / windowMs);
  const key = c.var.deps.keys.rateBytes(budget.name, c.var.clientIp, window);
  return {
    op: countInWindow(key, budget.windowSeconds, size),
    retryAfterSeconds: Math.max(1, Math.ceil(((window + 1) * windowMs - now) / 1000)),
  };
}

function isCacheFirst(c: Context<AppEnv>): boolean {
  return matchedRouteMeta(c)?.cacheFirst === true;
}

function routePrefetch(c: Context<AppEnv>): Prefetch | undefined {
  return matchedRouteMeta(c)?.prefetch;
}

function setHeaders(c: Context<AppEnv>, decision: RateLimitDecision): void {
  for (const [name, value] of Object.entries(rateLimitHeaders(decision))) c.res.headers.set(name, value);
}

function failOpen(c: Context<AppEnv>, error: unknown): void {
  const { config, log } = c.var.deps;
  if (config.rateLimit.failMode === "closed") {
    throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError("redis", String(error));
  }
  log.warn("rate limit check failed; allowing request (fail-open)", {
    requestId: c.var.requestId,
    error: error instanceof Error ? error.message : String(error),
  });
}

/** The user id a bearer token claims, without verifying it (only to prefetch; `requireAuth` verifies). */
function claimedSubject(header: string | undefined): string | null {
  const token = bearerToken(header);
  if (!token) return null;
  try {
    const { sub } = decodeJwt(token);
    return typeof sub === "string" && isObjectIdHex(sub) ? sub.toLowerCase() : null;
  } catch {
    return null;
  }
}
