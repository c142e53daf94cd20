import type { MiddlewareHandler } from "hono";
import { bearerToken } from "../../http/auth";
import type { AppEnv } from "../../http/context";
import { ApiError } from "../../http/errors";
import { timingSafeEqual } from "../../platform/crypto";

/**
 * GPU worker endpoints take the shared worker token (GPU_WORKER_TOKEN) as a bearer token, compared in constant
 * time. User access tokens are not accepted here, and the worker token is not accepted anywhere else.
 */
export function requireWorkerToken(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const presented = bearerToken(c.req.header("authorization")) ?? "";
    if (!timingSafeEqual(presented, c.var.deps.config.generation.workerToken)) {
      throw ApiError.unauthorized("A valid GPU worker token is required.");
    }
    await next();
  };
}
