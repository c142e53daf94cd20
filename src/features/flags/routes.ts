import { createRoute } from "@hono/zod-openapi";
import { optionalAuth, requireAuth, requireRole } from "../../http/auth";
import { json, problems, router } from "../../http/openapi";
import { EvaluatedFlags, FlagBody, FlagList, FlagName, FlagView } from "./schema";
import { deleteFlag, flagsFor, listFlags, putFlag } from "./service";

const evaluateRoute = createRoute({
  method: "get",
  path: "/v1/flags",
  tags: ["flags"],
  middleware: [optionalAuth()] as const,
  summary: "Feature flags evaluated for the caller",
  description:
    "Signed-in callers are bucketed by user id, anonymous callers by `X-Device-Id`. Bucketing matches Unleash's " +
    "gradual rollout, so the same id gets the same answer everywhere.",
  responses: { 200: json(EvaluatedFlags, "Flags and variants"), ...problems(401, 429, 503) },
});

const listRoute = createRoute({
  method: "get",
  path: "/v1/admin/flags",
  tags: ["admin", "flags"],
  security: [{ bearer: [] }],
  middleware: [requireAuth(), requireRole("admin")] as const,
  summary: "All feature flags (admin)",
  responses: { 200: json(FlagList, "Flags"), ...problems(401, 403, 429, 503) },
});

const putRoute = createRoute({
  method: "put",
  path: "/v1/admin/flags/{name}",
  tags: ["admin", "flags"],
  security: [{ bearer: [] }],
  middleware: [requireAuth(), requireRole("admin")] as const,
  summary: "Create or replace a feature flag (admin)",
  request: { params: FlagName, body: { content: { "application/json": { schema: FlagBody } }, required: true } },
  responses: { 200: json(FlagView, "The flag"), ...problems(400, 401, 403, 429, 503) },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/v1/admin/flags/{name}",
  tags: ["admin", "flags"],
  security: [{ bearer: [] }],
  middleware: [requireAuth(), requireRole("admin")] as const,
  summary: "Delete a feature flag (admin)",
  request: { params: FlagName },
  responses: { 204: { description: "Deleted" }, ...problems(400, 401, 403, 404, 429, 503) },
});

export const flagsRoutes = router()
  .openapi(evaluateRoute, async (c) => {
    const deviceId = c.req.header("x-device-id")?.slice(0, 128) || null;
    return c.json(await flagsFor(c.var.deps, c.var.viewer, deviceId), 200);
  })
  .openapi(listRoute, async (c) => c.json(await listFlags(c.var.deps), 200))
  .openapi(putRoute, async (c) =>
    c.json(await putFlag(c.var.deps, c.req.valid("param").name, c.req.valid("json")), 200),
  )
  .openapi(deleteRoute, async (c) => {
    await deleteFlag(c.var.deps, c.req.valid("param").name);
    return c.body(null, 204);
  });
