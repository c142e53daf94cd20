import type { Context } from "hono";
import { matchedRoutes } from "hono/route";
import type { RouterRoute } from "hono/types";

/**
 * The route whose handler answers the request: the first matched route that is not middleware (`use`, method
 * ALL). Every route a path matches is in `matchedRoutes`, so `GET /v1/streams/live` also matches
 * `/v1/streams/:id`, registered after it; reading the last match (or any match) would name, log and apply the
 * metadata of a route that never ran.
 */
export function handlingRoute(c: Context): RouterRoute | undefined {
  return matchedRoutes(c).find((route) => route.method !== "ALL");
}
