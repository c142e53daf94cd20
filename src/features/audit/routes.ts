import { json, router } from "../../http/openapi";
import { roleRoute } from "../../http/routes";
import { listAudit } from "./query";
import { AuditPage, AuditQuery } from "./schema";

const auditRoute = roleRoute(["moderator", "admin"], {
  method: "get",
  path: "/v1/admin/audit",
  tags: ["admin", "trust and safety"],
  summary: "Audit log, newest first",
  description:
    "Moderators read moderation entries (`moderation_action`, `appeal_decided`); admins read every entry. " +
    "`from` inclusive, `to` exclusive (ISO-8601).",
  request: { query: AuditQuery },
  responses: { 200: json(AuditPage, "A page of audit entries") },
});

export const auditRoutes = router().openapi(auditRoute, async (c) =>
  c.json(await listAudit(c.var.deps, c.var.viewer, c.req.valid("query")), 200),
);
