import { deviceIdOf } from "../../http/context";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { roleRoute, viewerRoute } from "../../http/routes";
import { EvaluatedFlags, FlagBody, FlagList, FlagName, FlagView } from "./schema";
import { deleteFlag, flagsFor, listFlags, putFlag } from "./service";

const evaluateRoute = viewerRoute({
  method: "get",
  path: "/v1/flags",
  tags: ["flags"],
  summary: "Feature flags evaluated for the caller",
  description:
    "Signed-in callers are bucketed by user id, anonymous callers by `X-Device-Id`. Bucketing matches Unleash's " +
    "gradual rollout, so the same id gets the same answer everywhere.",
  responses: { 200: json(EvaluatedFlags, "Flags and variants") },
});

const listRoute = roleRoute(["admin"], {
  method: "get",
  path: "/v1/admin/flags",
  tags: ["admin", "flags"],
  summary: "All feature flags (admin)",
  responses: { 200: json(FlagList, "Flags") },
});

const putRoute = roleRoute(["admin"], {
  method: "put",
  path: "/v1/admin/flags/{name}",
  tags: ["admin", "flags"],
  summary: "Create or replace a feature flag (admin)",
  request: { params: FlagName, ...jsonBody(FlagBody) },
  responses: { 200: json(FlagView, "The flag") },
});

const deleteRoute = roleRoute(["admin"], {
  method: "delete",
  path: "/v1/admin/flags/{name}",
  tags: ["admin", "flags"],
  summary: "Delete a feature flag (admin)",
  request: { params: FlagName },
  responses: { 204: { description: "Deleted" }, ...problems(404) },
});

export const flagsRoutes = router()
  .openapi(evaluateRoute, async (c) => {
    const deviceId = deviceIdOf(c);
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
