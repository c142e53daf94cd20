import { createRoute } from "@hono/zod-openapi";
import { requireAuth, requireRole } from "../../http/auth";
import { json, problems, router } from "../../http/openapi";
import { DauQuery, DauReport, IngestEventsBody, IngestEventsResult } from "./schema";
import { dailyActiveUsers, ingestEvents } from "./service";

const ingestRoute = createRoute({
  method: "post",
  path: "/v1/events",
  tags: ["analytics"],
  summary: "Record app analytics events",
  description:
    "Accepts 1–100 events, buffers them with one write and answers 202. Event ids are assigned by the server. " +
    "A job moves buffered events to ClickHouse every 5 minutes. Authentication is optional; signed-in " +
    "callers' events carry their user id.",
  request: { body: { content: { "application/json": { schema: IngestEventsBody } }, required: true } },
  responses: { 202: json(IngestEventsResult, "Events accepted"), ...problems(400, 413, 429, 503) },
});

const dauRoute = createRoute({
  method: "get",
  path: "/v1/admin/analytics/dau",
  tags: ["admin", "analytics"],
  summary: "Daily active users",
  description: "Distinct active users per UTC day (anonymous traffic counted by device), from `dau_mv`.",
  security: [{ bearer: [] }],
  middleware: [requireAuth(), requireRole("admin")] as const,
  request: { query: DauQuery },
  responses: { 200: json(DauReport, "One item per day with activity"), ...problems(400, 401, 403, 429, 503) },
});

export const analyticsRoutes = router()
  .openapi(ingestRoute, async (c) => {
    const { events } = c.req.valid("json");
    return c.json(await ingestEvents(c.var.deps, { userId: null }, events), 202);
  })
  .openapi(dauRoute, async (c) => c.json(await dailyActiveUsers(c.var.deps, c.req.valid("query")), 200));
