import type { Context, MiddlewareHandler } from "hono";
import type { Deps } from "../deps";
import { StoreUnavailableError } from "../platform/errors";
import { type AccessClaims, verifyAccessToken } from "../platform/tokens";
import type { AppEnv, Viewer } from "./context";
import { ApiError } from "./errors";

const ROLES = new Set(["user", "creator", "moderator", "admin"]);
const TIERS = new Set(["free", "pro", "premium"]);

export function tokenSettings(deps: Deps) {
  const a = deps.config.auth;
  return { secret: a.jwtSecret, issuer: a.issuer, audience: a.audience, ttlSeconds: a.accessTokenTtlSeconds };
}

function toViewer(claims: AccessClaims): Viewer | null {
  if (!ROLES.has(claims.role) || !TIERS.has(claims.tier)) return null;
  return {
    id: claims.sub,
    sessionId: claims.sid,
    role: claims.role as Viewer["role"],
    tier: claims.tier as Viewer["tier"],
  };
}

/** The token of an `Authorization: Bearer <token>` header, or null for any other header. */
export function bearerToken(header: string | undefined): string | null {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1] ?? null;
}

/** The caller and when their token was issued; undefined without a token, null for an invalid one. */
async function authenticate(c: Context<AppEnv>): Promise<{ viewer: Viewer; issuedAt: number } | null | undefined> {
  const header = c.req.header("authorization");
  if (!header) return undefined;
  const token = bearerToken(header);
  if (!token) return null;
  const claims = await verifyAccessToken(token, tokenSettings(c.var.deps));
  const viewer = claims ? toViewer(claims) : null;
  return claims && viewer ? { viewer, issuedAt: claims.iat } : null;
}

/**
 * Requires a valid access token (signature, `alg`, `iss`, `aud`, `exp`) that was not cut off by a ban.
 * A ban writes `session:{userId}` (the cut-off second, kept for one token lifetime); tokens issued before it
 * get 401 at once. The marker is read with the rate limit (see `apiRateLimit`), so the check usually costs no
 * round trip; other revocations (logout, password reset) end access tokens within their lifetime
 * (ACCESS_TOKEN_TTL_SECONDS) and refresh tokens at once.
 * `allowBanned` skips the cut-off (appeals: a banned user may still contest the ban with the token they hold).
 */
export function requireAuth(options: { allowBanned?: boolean } = {}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const caller = await authenticate(c);
    if (!caller) throw ApiError.unauthorized();
    const { viewer, issuedAt } = caller;
    const prefetched = c.var.sessionCutoff?.userId === viewer.id ? c.var.sessionCutoff : undefined;
    if (!options.allowBanned && (await cutOff(c.var.deps, viewer, issuedAt, prefetched))) {
      throw ApiError.unauthorized("This session has ended. Please sign in again.");
    }
    c.set("viewer", viewer);
    await next();
  };
}

/**
 * True when the user's tokens were cut off (`session:{userId}` holds the second) after this one was issued.
 * Redis unreachable: RATE_LIMIT_FAIL_MODE decides, as for the rate limit (open: let the token through, since
 * a ban also revoked the sessions and refresh is refused, so it lasts at most one token lifetime).
 */
async function cutOff(
  deps: Deps,
  viewer: Viewer,
  issuedAt: number,
  prefetched: { value: number | string | null } | undefined,
): Promise<boolean> {
  let cutoff: number | string | null;
  try {
    // Read with the rate limit when the token named this user (no round trip of its own).
    cutoff = prefetched ? prefetched.value : await deps.redis.get<number | string>(deps.keys.session(viewer.id));
  } catch (error) {
    if (deps.config.rateLimit.failMode === "closed") {
      throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError("redis", String(error));
    }
    deps.log.warn("session cut-off check failed; allowing token (fail-open)", { error: String(error) });
    return false;
  }
  if (cutoff === null || cutoff === undefined) return false;
  return issuedAt < Number(cutoff);
}

/** Sets the viewer when a valid token is present; a present but invalid token is still a 401. */
export function optionalAuth(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const caller = await authenticate(c);
    if (caller === null) throw ApiError.unauthorized();
    c.set("viewer", caller?.viewer);
    await next();
  };
}

/** Requires one of the roles (after requireAuth); others get 403. */
export function requireRole(...roles: Viewer["role"][]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const viewer = c.var.viewer;
    if (!viewer) throw ApiError.unauthorized();
    if (!roles.includes(viewer.role)) throw ApiError.forbidden("Your role does not allow this.");
    await next();
  };
}

export function viewerOf(c: Context<AppEnv>): Viewer {
  const viewer = c.var.viewer;
  if (!viewer) throw ApiError.unauthorized();
  return viewer;
}
