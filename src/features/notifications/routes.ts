import { createRoute } from "@hono/zod-openapi";
import { requireAuth, viewerOf } from "../../http/auth";
import { json, problems, router } from "../../http/openapi";
import { getPolicy, NotificationPolicySchema, updatePolicy } from "./policy";
import { MarkReadBody, NotificationPage, NotificationPolicyBody, NotificationsQuery, UnreadCount } from "./schema";
import { listNotifications, markRead, unreadCount } from "./service";

const tags = ["notifications"];

const listRoute = createRoute({
  method: "get",
  path: "/v1/notifications",
  tags,
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "The caller's notifications, grouped",
  description:
    "Newest-updated first; similar events within the aggregation window are one item. `filtered=true` lists " +
    "only items held back by the caller's notification policy (they are left out otherwise).",
  request: { query: NotificationsQuery },
  responses: { 200: json(NotificationPage, "A page of notifications"), ...problems(400, 401, 429, 503) },
});

const countRoute = createRoute({
  method: "get",
  path: "/v1/notifications/unread-count",
  tags,
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "How many notifications are unread (filtered ones not counted)",
  responses: { 200: json(UnreadCount, "Unread count"), ...problems(401, 429, 503) },
});

const readRoute = createRoute({
  method: "post",
  path: "/v1/notifications/read",
  tags,
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "Mark notifications read",
  description: "`{ ids }` (1–100) or `{ all: true }`. Ids that are not the caller's are ignored.",
  request: { body: { content: { "application/json": { schema: MarkReadBody } }, required: true } },
  responses: { 204: { description: "Marked read" }, ...problems(400, 401, 429, 503) },
});

const getPolicyRoute = createRoute({
  method: "get",
  path: "/v1/me/notification-policy",
  tags,
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "The caller's notification policy",
  responses: { 200: json(NotificationPolicySchema, "The policy"), ...problems(401, 404, 429, 503) },
});

const patchPolicyRoute = createRoute({
  method: "patch",
  path: "/v1/me/notification-policy",
  tags,
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "Change the caller's notification policy",
  description: "`accept`, `filter` (kept, but out of the default list and the count) or `drop` (not stored).",
  request: { body: { content: { "application/json": { schema: NotificationPolicyBody } }, required: true } },
  responses: {
    200: json(NotificationPolicySchema, "The policy after the change"),
    ...problems(400, 401, 404, 429, 503),
  },
});

export const notificationsRoutes = router()
  .openapi(listRoute, async (c) => c.json(await listNotifications(c.var.deps, viewerOf(c), c.req.valid("query")), 200))
  .openapi(countRoute, async (c) => c.json({ count: await unreadCount(c.var.deps, viewerOf(c)) }, 200))
  .openapi(readRoute, async (c) => {
    await markRead(c.var.deps, viewerOf(c), c.req.valid("json"));
    return c.body(null, 204);
  })
  .openapi(getPolicyRoute, async (c) => c.json(await getPolicy(c.var.deps, viewerOf(c)), 200))
  .openapi(patchPolicyRoute, async (c) =>
    c.json(await updatePolicy(c.var.deps, viewerOf(c), c.req.valid("json")), 200),
  );
