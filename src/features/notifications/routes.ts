import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute } from "../../http/routes";
import { getPolicy, updatePolicy } from "./policy";
import {
  MarkReadBody,
  NotificationPage,
  NotificationPolicyBody,
  NotificationPolicySchema,
  NotificationsQuery,
  UnreadCount,
} from "./schema";
import { listNotifications, markRead, unreadCount } from "./service";

const tags = ["notifications"];

const listRoute = authedRoute({
  method: "get",
  path: "/v1/notifications",
  tags,
  summary: "The caller's notifications, grouped",
  description:
    "Newest-updated first; similar events within the aggregation window are one item. `filtered=true` lists " +
    "only items held back by the caller's notification policy (they are left out otherwise).",
  request: { query: NotificationsQuery },
  responses: { 200: json(NotificationPage, "A page of notifications") },
});

const countRoute = authedRoute({
  method: "get",
  path: "/v1/notifications/unread-count",
  tags,
  summary: "How many notifications are unread (filtered ones not counted)",
  responses: { 200: json(UnreadCount, "Unread count") },
});

const readRoute = authedRoute({
  method: "post",
  path: "/v1/notifications/read",
  tags,
  summary: "Mark notifications read",
  description: "`{ ids }` (1–100) or `{ all: true }`. Ids that are not the caller's are ignored.",
  request: jsonBody(MarkReadBody),
  responses: { 204: { description: "Marked read" } },
});

const getPolicyRoute = authedRoute({
  method: "get",
  path: "/v1/me/notification-policy",
  tags,
  summary: "The caller's notification policy",
  responses: { 200: json(NotificationPolicySchema, "The policy"), ...problems(404) },
});

const patchPolicyRoute = authedRoute({
  method: "patch",
  path: "/v1/me/notification-policy",
  tags,
  summary: "Change the caller's notification policy",
  description: "`accept`, `filter` (kept, but out of the default list and the count) or `drop` (not stored).",
  request: jsonBody(NotificationPolicyBody),
  responses: { 200: json(NotificationPolicySchema, "The policy after the change"), ...problems(404) },
});

export const notificationsRoutes = router()
  .openapi(listRoute, async (c) => c.json(await listNotifications(c.var.deps, c.var.viewer, c.req.valid("query")), 200))
  .openapi(countRoute, async (c) => c.json({ count: await unreadCount(c.var.deps, c.var.viewer) }, 200))
  .openapi(readRoute, async (c) => {
    await markRead(c.var.deps, c.var.viewer, c.req.valid("json"));
    return c.body(null, 204);
  })
  .openapi(getPolicyRoute, async (c) => c.json(await getPolicy(c.var.deps, c.var.viewer), 200))
  .openapi(patchPolicyRoute, async (c) =>
    c.json(await updatePolicy(c.var.deps, c.var.viewer, c.req.valid("json")), 200),
  );
