import { createRoute, type RouteConfig } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { Config } from "../config";
import type { Role } from "../db";
import type { Deps } from "../deps";
import type { RedisOp } from "../platform/redis-ops";
import { type AuthedEnv, optionalAuth, requireAuth, requireRole, requireWorkerToken } from "./auth";
import type { AppEnv } from "./context";
import { handlingRoute } from "./handling-route";
import { type ProblemStatusCode, problems } from "./openapi";

/**
 * Route builders: the kind of route decides its security scheme, its auth middleware and the problems every
 * route of that kind can answer, so none of them can be forgotten. A route adds only what is its own (its
 * 404, 409, …). Every /v1 route can answer 413 (body limit), 429 (rate limit) and 503 (a store is down);
 * one with parameters, a query or a body 400; one with a JSON body 415; one with a token 401; one with a
 * role 403.
 *
 * `cacheFirst` marks reads served from a Redis cache first: their rate-limit check rides in the same
 * pipelined round trip as the handler's first Redis batch (`c.var.redis`), so a cache hit costs one round
 * trip in all (see `apiRateLimit`).
 */

type Middleware = MiddlewareHandler<AppEnv> | MiddlewareHandler<AppEnv & AuthedEnv>;

/**
 * Redis reads keyed by the caller that a signed-in route needs: they ride in the rate limiter's pipeline with
 * the standing (for the user the bearer token names), so the route needs no Redis round trip of its own. The
 * results reach the handler only once the token is verified for that user (`prefetchedReads`).
 */
export type Prefetch = (deps: Deps, userId: string, now: Date) => Record<string, RedisOp<unknown>>;

/** What a route declares itself; the builder adds security, middleware and the common problems. */
type OwnRoute = Omit<RouteConfig, "security" | "middleware"> & {
  /** Served from a Redis cache first (see above). */
  cacheFirst?: boolean;
  /** Reads that ride with the rate limit (see `Prefetch`). */
  prefetch?: Prefetch;
  /** A body cap of its own (413 above) instead of HTTP_MAX_BODY_BYTES. */
  maxBodyBytes?: (config: Config) => number;
  /** Request bodies are charged to a per-IP byte budget, checked with the rate limit (429 when spent). */
  byteBudget?: (config: Config) => ByteBudget;
  /**
   * Reads its body as a stream and enforces its own size cap (uploads): the global HTTP_MAX_BODY_BYTES limit,
   * which buffers bodies without a Content-Length, does not apply.
   */
  streamsBody?: boolean;
  /** Middleware after authentication (e.g. `idempotent(...)`). */
  use?: readonly Middleware[];
};

/** A per-IP allowance of request-body bytes in a fixed window, named in its Redis key and its 429. */
export interface ByteBudget {
  name: string;
  bytes: number;
  windowSeconds: number;
}

/** The metadata the global middleware reads from a matched route (see `routeMetaOf`). */
export interface RouteMeta {
  cacheFirst: boolean;
  prefetch?: Prefetch;
  maxBodyBytes?: (config: Config) => number;
  byteBudget?: (config: Config) => ByteBudget;
  streamsBody?: boolean;
}

const ROUTE_META = Symbol("circle.routeMeta");
type MarkedMiddleware = MiddlewareHandler<AppEnv> & { [ROUTE_META]: RouteMeta };

/** A no-op middleware that carries the route's metadata; the global rate limit finds it among matched routes. */
function metaMarker(meta: RouteMeta): MarkedMiddleware {
  const marker = (async (_c, next) => {
    await next();
  }) as MarkedMiddleware;
  marker[ROUTE_META] = meta;
  return marker;
}

/** The metadata of a matched handler (the marker itself, or a sub-app's wrapper around it). */
export function routeMetaOf(handler: unknown): RouteMeta | undefined {
  const fn = handler as { [ROUTE_META]?: RouteMeta; __COMPOSED_HANDLER?: { [ROUTE_META]?: RouteMeta } } | undefined;
  return fn?.[ROUTE_META] ?? fn?.__COMPOSED_HANDLER?.[ROUTE_META];
}

/**
 * The metadata of the route that answers the request (none for paths no route serves). Only that route's own
 * entries count: a path also matches routes that never run (`/v1/streams/live` matches `/v1/streams/:id`).
 */
export function matchedRouteMeta(c: Context): RouteMeta | undefined {
  const handling = handlingRoute(c);
  if (!handling) return undefined;
  for (const route of matchedRoutes(c)) {
    if (route.method !== handling.method || route.path !== handling.path) continue;
    const meta = routeMetaOf(route.handler);
    if (meta) return meta;
  }
  return undefined;
}

function commonProblems(route: OwnRoute, extra: ProblemStatusCode[]): ProblemStatusCode[] {
  const request = route.request ?? {};
  const statuses: ProblemStatusCode[] = [...extra, 429, 503];
  if (route.path.startsWith("/v1/")) statuses.push(413);
  if (request.params || request.query || request.body || request.headers) statuses.push(400);
  if (request.body) statuses.push(415);
  return statuses;
}

function build<R extends OwnRoute, M extends readonly Middleware[]>(
  route: R,
  security: RouteConfig["security"],
  auth: M,
  statuses: ProblemStatusCode[],
  extensions: Record<`x-${string}`, unknown> = {},
) {
  const { cacheFirst = false, streamsBody, use = [], prefetch, maxBodyBytes, byteBudget, ...config } = route;
  const meta: RouteMeta = {
    cacheFirst,
    ...(prefetch ? { prefetch } : {}),
    ...(maxBodyBytes ? { maxBodyBytes } : {}),
    ...(byteBudget ? { byteBudget } : {}),
    ...(streamsBody ? { streamsBody } : {}),
  };
  return createRoute({
    ...config,
    ...extensions,
    ...(security ? { security } : {}),
    middleware: [metaMarker(meta), ...auth, ...use] as unknown as [...M],
    responses: { ...problems(...statuses), ...config.responses } as R["responses"] &
      ReturnType<typeof problems<ProblemStatusCode>>,
  }) as Omit<R, "cacheFirst" | "streamsBody" | "use" | "prefetch" | "maxBodyBytes" | "byteBudget"> & {
    middleware: [...M];
    getRoutingPath(): string;
  };
}

/** Anyone may call it; no token is read. */
export function publicRoute<R extends OwnRoute>(route: R) {
  return build(route, undefined, [] as const, commonProblems(route, []));
}

/** Anyone may call it; a valid token makes `c.var.viewer` the caller, an invalid one is a 401. */
export function viewerRoute<R extends OwnRoute>(route: R) {
  return build(route, [{ bearer: [] }, {}], [optionalAuth()] as const, commonProblems(route, [401]));
}

/** A signed-in caller (`c.var.viewer` is set); `allowBanned` lets a banned user's live token through. */
export function authedRoute<R extends OwnRoute>(route: R & { allowBanned?: boolean }) {
  const { allowBanned, ...rest } = route;
  return build(
    rest as R,
    [{ bearer: [] }],
    [requireAuth({ allowBanned: allowBanned ?? false })] as const,
    commonProblems(rest as R, [401]),
  );
}

/** A signed-in caller with one of `roles` (others 403); the roles are in the operation's `x-roles`. */
export function roleRoute<R extends OwnRoute>(roles: Role[], route: R) {
  return build(
    route,
    [{ bearer: [] }],
    [requireAuth(), requireRole(...roles)] as const,
    commonProblems(route, [401, 403]),
    { "x-roles": roles },
  );
}

/** GPU workers, with the shared worker token; a user's token is a 403. */
export function workerRoute<R extends OwnRoute>(route: R) {
  return build(route, [{ workerToken: [] }], [requireWorkerToken()] as const, commonProblems(route, [401, 403]), {
    "x-roles": ["gpu-worker"],
  });
}
