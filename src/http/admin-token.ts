import type { MiddlewareHandler } from "hono";
import { timingSafeEqual } from "../platform/crypto";
import type { AppEnv } from "./context";
import { ApiError } from "./errors";

/**
 * Temporary guard for admin routes until accounts and roles exist: `Authorization: Bearer <ADMIN_TOKEN>`.
 * With no ADMIN_TOKEN configured, admin routes are closed to everyone.
 */
export function requireAdminToken(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match?.[1]) throw ApiError.unauthorized();
    const expected = c.var.deps.config.http.adminToken;
    if (!expected || !timingSafeEqual(match[1], expected)) throw ApiError.unauthorized("Invalid admin credentials.");
    await next();
  };
}
