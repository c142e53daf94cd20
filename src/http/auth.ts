import type { MiddlewareHandler } from "hono";
import { ApiError } from "../core/errors";
import type { Viewer } from "../core/viewer";
import { ROLES, type Role, TIERS } from "../db";
import type { Deps } from "../deps";
import { timingSafeEqual } from "../platform/crypto";
import { StoreUnavailableError } from "../platform/errors";
import { isObjectIdHex } from "../platform/ids";
import { type AccessClaims, tokenSettingsOf, verifyAccessToken } from "../platform/tokens";
import type { AppEnv } from "./context";

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
 * Requires a valid access token (signature, `alg`, `iss`, `aud`, `exp`) that was not cut off by a ban.
 * A ban writes `session:{userId}` (the cut-off second, kept for one token lifetime); tokens issued before it
 * get 401 at once. The marker is read with the rate limit (see `apiRateLimit`), so the check usually costs no
 * round trip; other revocations (logout, password reset) end access tokens within their lifetime
 * (ACCESS_TOKEN_TTL_SECONDS) and refresh tokens at once.
 * `allowBanned` skips the cut-off (appeals: a banned user may still contest the ban with the token they hold).
 */
export function requireAuth(options: { allowBanned?: boolean } = {}): MiddlewareHandler<AppEnv & AuthedEnv> {
  return async (c, next) => {
    const deps = c.var.deps;
    const caller = await authenticate(deps, c.req.header("authorization"));
    if (!caller) throw ApiError.unauthorized();
    const { viewer, issuedAt } = caller;
    const prefetched = c.var.sessionCutoff?.userId === viewer.id ? c.var.sessionCutoff : undefined;
    if (!options.allowBanned && (await cutOff(deps, viewer, issuedAt, prefetched))) {
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
    const caller = await authenticate(c.var.deps, c.req.header("authorization"));
    if (caller === null) throw ApiError.unauthorized();
    c.set("viewer", caller?.viewer);
    await next();
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
