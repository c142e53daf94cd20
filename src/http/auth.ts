import type { MiddlewareHandler } from "hono";
import { ApiError } from "../core/errors";
import { Relations } from "../core/relations";
import { cachedStanding, effectiveTier, loadStanding, refusalOf } from "../core/standing";
import type { Viewer } from "../core/viewer";
import { ROLES, type Role, TIERS } from "../db";
import type { Deps } from "../deps";
import { timingSafeEqual } from "../platform/crypto";
import { isObjectIdHex } from "../platform/ids";
import { type AccessClaims, tokenSettingsOf, verifyAccessToken } from "../platform/tokens";
import type { AppEnv, AppVariables } from "./context";

/** The token of an `Authorization: Bearer <token>` header, or null for any other header. */
export function bearerToken(header: string | undefined): string | null {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1] ?? null;
}

function toViewer(claims: AccessClaims): Viewer | null {
  if (!(ROLES as readonly string[]).includes(claims.role) || !(TIERS as readonly string[]).includes(claims.tier)) {
    return null;
  }
  if (!isObjectIdHex(claims.sub) || !isObjectIdHex(claims.sid)) return null;
  return {
    id: claims.sub.toLowerCase(),
    sessionId: claims.sid.toLowerCase(),
    role: claims.role as Viewer["role"],
    tier: claims.tier as Viewer["tier"],
  };
}

/** The caller and when their token was issued; undefined without a token, null for an invalid one. */
async function authenticate(
  deps: Deps,
  header: string | undefined,
): Promise<{ viewer: Viewer; issuedAt: number } | null | undefined> {
  if (!header) return undefined;
  const token = bearerToken(header);
  if (!token) return null;
  const claims = await verifyAccessToken(token, tokenSettingsOf(deps.config.auth));
  const viewer = claims ? toViewer(claims) : null;
  return claims && viewer ? { viewer, issuedAt: claims.iat } : null;
}

/** The environment of routes behind `requireAuth`: the viewer is always there. */
export type AuthedEnv = { Variables: { viewer: Viewer } };

/**
 * Requires a valid access token (signature, `alg`, `iss`, `aud`, `exp`) of an account whose current standing
 * allows it (core/standing.ts): not deleted, not banned (unless `allowBanned`: a banned user may still contest
 * the ban), and issued after any cut-off. Role and tier come from the standing, not the token, so a demotion,
 * a ban, a deletion or an expired paid tier applies to existing tokens at once. The standing is read with the
 * rate limit (see `apiRateLimit`), so the check costs no round trip while it is cached.
 */
export function requireAuth(options: { allowBanned?: boolean } = {}): MiddlewareHandler<AppEnv & AuthedEnv> {
  return async (c, next) => {
    const caller = await authenticate(c.var.deps, c.req.header("authorization"));
    if (!caller) throw ApiError.unauthorized();
    c.set("viewer", await standingViewer(c, caller.viewer, options));
    await next();
  };
}

/**
 * Sets the viewer when a valid token is present; a present but invalid token is still a 401. Where the standing
 * was read with the rate limit (every route but the cache-first reads), it applies as in `requireAuth`: a token
 * of a deleted or banned account or an ended session is a 401 here too.
 */
export function optionalAuth(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const caller = await authenticate(c.var.deps, c.req.header("authorization"));
    if (caller === null) throw ApiError.unauthorized();
    const prefetched = caller && c.var.prefetchedStanding?.userId === caller.viewer.id;
    c.set("viewer", caller && prefetched ? await standingViewer(c, caller.viewer) : caller?.viewer);
    await next();
  };
}

/** The viewer as their account stands now (role, tier, relations), or a 401 when the token no longer works. */
async function standingViewer(
  c: { var: Pick<AppVariables, "deps" | "prefetchedStanding"> },
  viewer: Viewer,
  options: { allowBanned?: boolean } = {},
): Promise<Viewer> {
  const deps = c.var.deps;
  const prefetched = c.var.prefetchedStanding?.userId === viewer.id ? c.var.prefetchedStanding : undefined;
  const standing = (prefetched ? cachedStanding(prefetched.value) : null) ?? (await loadStanding(deps, viewer.id));
  const now = deps.clock.now();
  const refusal = standing ? refusalOf(standing, viewer.sessionId, now, options) : "This account no longer exists.";
  if (!standing || refusal) throw ApiError.unauthorized(refusal ?? undefined);
  const relations = prefetched?.relations;
  return {
    ...viewer,
    role: standing.role,
    tier: effectiveTier(standing, now),
    timezone: standing.timezone,
    privateMode: standing.privateMode,
    account: {
      username: standing.username,
      createdAt: new Date(standing.createdAt),
      shadowBanned: standing.shadowBanned,
      trustScore: standing.trustScore,
      avatarUrl: standing.avatarUrl,
    },
    ...(relations?.members ? { relations: Relations.fromMembers(relations.members) } : {}),
    ...(relations && !relations.members ? { relationsMissAt: relations.generation } : {}),
  };
}

/** Requires one of the roles (after requireAuth); others get 403. */
export function requireRole(...roles: Role[]): MiddlewareHandler<AppEnv & AuthedEnv> {
  return async (c, next) => {
    if (!roles.includes(c.var.viewer.role)) throw ApiError.forbidden("Your role does not allow this.");
    await next();
  };
}

/**
 * GPU worker endpoints take the shared worker token (GPU_WORKER_TOKEN) as a bearer token, compared in constant
 * time. A signed-in user's valid access token is authenticated but not allowed here (403); anything else is a
 * 401. The worker token is not accepted anywhere else.
 */
export function requireWorkerToken(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header("authorization");
    if (!isWorkerToken(header, c.var.deps.config.generation.workerToken)) {
      if (await authenticate(c.var.deps, header)) {
        throw ApiError.forbidden("GPU worker endpoints need the worker token, not a user's.");
      }
      throw ApiError.unauthorized("A valid GPU worker token is required.");
    }
    await next();
  };
}

export function isWorkerToken(header: string | undefined, workerToken: string): boolean {
  const presented = bearerToken(header);
  return presented !== null && timingSafeEqual(presented, workerToken);
}
