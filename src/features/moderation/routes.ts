import { createRoute, z } from "@hono/zod-openapi";
import { requireAuth, requireRole, viewerOf } from "../../http/auth";
import { requestMetaOf } from "../../http/context";
import { json, problems, router } from "../../http/openapi";
import { IdParam, ObjectIdString, PageQuery } from "../../http/pagination";
import type { AuditAction } from "../audit/service";
import { takeModerationAction } from "./actions";
import { createAppeal, decideAppeal, listAppeals, myModeration } from "./appeals";
import { listAudit } from "./audit";
import { assignReport, createReport, reportQueue } from "./reports";
import {
  AdminAppeal,
  AdminAppealPage,
  APPEAL_STATUSES,
  Appeal,
  AppealDecisionBody,
  AuditPage,
  CreateAppealBody,
  CreateReportBody,
  ModerationAction,
  ModerationActionBody,
  MyModeration,
  QueuePage,
  QueueReport,
  REPORT_STATUSES,
  Report,
} from "./schema";

const bearer = [{ bearer: [] }];
const body = <T extends z.ZodType>(schema: T) => ({
  body: { content: { "application/json": { schema } }, required: true },
});

const AUDIT_ACTIONS = [
  "signup",
  "login",
  "login_failed",
  "logout",
  "token_reuse_detected",
  "session_revoked",
  "password_changed",
  "password_reset_requested",
  "password_reset",
  "email_verified",
  "oauth_linked",
  "account_deleted",
  "account_erased",
  "role_changed",
  "data_exported",
  "moderation_action",
  "appeal_decided",
] as const satisfies readonly AuditAction[];

const createReportRoute = createRoute({
  method: "post",
  path: "/v1/reports",
  tags: ["trust and safety"],
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "Report a post, comment or user",
  description:
    "One open report per reporter and target (a second → 409). The report keeps a snapshot of the content. " +
    "Each report weighs the reporter's trust (and accuracy, once they have several resolved reports); when a " +
    "target's open weight reaches the threshold, the content is hidden pending review in this same request. " +
    "Rate-limited per reporter. Unknown or invisible targets → 404; your own content or account → 403.",
  request: body(CreateReportBody),
  responses: { 201: json(Report, "Report filed"), ...problems(400, 401, 403, 404, 409, 429, 503) },
});

const queueRoute = createRoute({
  method: "get",
  path: "/v1/admin/reports",
  tags: ["admin", "trust and safety"],
  security: bearer,
  middleware: [requireAuth(), requireRole("moderator", "admin")] as const,
  summary: "Moderator queue: reports grouped by target, oldest first",
  description:
    "One item per target with its reports, their total weight and the snapshot of the first report. " +
    "`status` defaults to `pending`.",
  request: { query: PageQuery.extend({ status: z.enum(REPORT_STATUSES).default("pending") }) },
  responses: { 200: json(QueuePage, "A page of queue items"), ...problems(400, 401, 403, 429, 503) },
});

const assignRoute = createRoute({
  method: "post",
  path: "/v1/admin/reports/{id}/assign",
  tags: ["admin", "trust and safety"],
  security: bearer,
  middleware: [requireAuth(), requireRole("moderator", "admin")] as const,
  summary: "Assign a report to the calling moderator",
  request: { params: IdParam },
  responses: { 200: json(QueueReport, "The assigned report"), ...problems(400, 401, 403, 404, 429, 503) },
});

const actionRoute = createRoute({
  method: "post",
  path: "/v1/admin/moderation-actions",
  tags: ["admin", "trust and safety"],
  security: bearer,
  middleware: [requireAuth(), requireRole("moderator", "admin")] as const,
  summary: "Take a moderation action",
  description:
    "approve | restore (content back, reports dismissed), reject | remove_content (soft, restorable; reports " +
    "actioned), warn, shadow_ban, ban (optional expiresAt or durationHours; sessions and access tokens end at " +
    "once), unban. Resolves `reportIds` (default: every open report on the target), moves trust scores, is " +
    "recorded in moderation_actions and the audit log, and notifies the user when `notifyUser` is true.",
  request: body(ModerationActionBody),
  responses: { 201: json(ModerationAction, "Action taken"), ...problems(400, 401, 403, 404, 429, 503) },
});

const createAppealRoute = createRoute({
  method: "post",
  path: "/v1/appeals",
  tags: ["trust and safety"],
  security: bearer,
  // A banned user can still contest the ban with the access token they hold.
  middleware: [requireAuth({ allowBanned: true })] as const,
  summary: "Appeal a moderation action on your account or content",
  description:
    "Only the affected user, only remove_content, reject, warn, shadow_ban and ban, within the appeal window " +
    "(MODERATION_APPEAL_WINDOW_DAYS), one appeal per action (a second → 409).",
  request: body(CreateAppealBody),
  responses: { 201: json(Appeal, "Appeal filed"), ...problems(400, 401, 404, 409, 429, 503) },
});

const myModerationRoute = createRoute({
  method: "get",
  path: "/v1/me/moderation",
  tags: ["trust and safety"],
  security: bearer,
  middleware: [requireAuth({ allowBanned: true })] as const,
  summary: "Moderation actions on your account and content, with appeal state",
  responses: { 200: json(MyModeration, "Your standing and the actions taken"), ...problems(401, 404, 429, 503) },
});

const listAppealsRoute = createRoute({
  method: "get",
  path: "/v1/admin/appeals",
  tags: ["admin", "trust and safety"],
  security: bearer,
  middleware: [requireAuth(), requireRole("moderator", "admin")] as const,
  summary: "Appeals by status, oldest first",
  description: "`status` defaults to `pending`. Each appeal comes with the action it contests.",
  request: { query: PageQuery.extend({ status: z.enum(APPEAL_STATUSES).default("pending") }) },
  responses: { 200: json(AdminAppealPage, "A page of appeals"), ...problems(400, 401, 403, 429, 503) },
});

const decideAppealRoute = createRoute({
  method: "post",
  path: "/v1/admin/appeals/{id}/decision",
  tags: ["admin", "trust and safety"],
  security: bearer,
  middleware: [requireAuth(), requireRole("moderator", "admin")] as const,
  summary: "Approve or deny an appeal",
  description:
    "Approval reverses the action (content restored, bans lifted, trust restored) and is recorded as a " +
    "moderation action; the decision is audited and the user notified. A decided appeal → 409.",
  request: { params: IdParam, ...body(AppealDecisionBody) },
  responses: { 200: json(AdminAppeal, "The decided appeal"), ...problems(400, 401, 403, 404, 409, 429, 503) },
});

const auditRoute = createRoute({
  method: "get",
  path: "/v1/admin/audit",
  tags: ["admin", "trust and safety"],
  security: bearer,
  middleware: [requireAuth(), requireRole("moderator", "admin")] as const,
  summary: "Audit log, newest first",
  description:
    "Moderators read moderation entries (`moderation_action`, `appeal_decided`); admins read every entry. " +
    "`from` inclusive, `to` exclusive (ISO-8601).",
  request: {
    query: PageQuery.extend({
      action: z.enum(AUDIT_ACTIONS).optional(),
      actorId: ObjectIdString.optional(),
      userId: ObjectIdString.optional(),
      from: z.iso.datetime({ offset: true }).optional(),
      to: z.iso.datetime({ offset: true }).optional(),
    }),
  },
  responses: { 200: json(AuditPage, "A page of audit entries"), ...problems(400, 401, 403, 429, 503) },
});

export const moderationRoutes = router()
  .openapi(createReportRoute, async (c) =>
    c.json(await createReport(c.var.deps, viewerOf(c), c.req.valid("json")), 201),
  )
  .openapi(queueRoute, async (c) => c.json(await reportQueue(c.var.deps, c.req.valid("query")), 200))
  .openapi(assignRoute, async (c) => c.json(await assignReport(c.var.deps, viewerOf(c), c.req.valid("param").id), 200))
  .openapi(actionRoute, async (c) =>
    c.json(await takeModerationAction(c.var.deps, requestMetaOf(c), viewerOf(c), c.req.valid("json")), 201),
  )
  .openapi(createAppealRoute, async (c) =>
    c.json(await createAppeal(c.var.deps, viewerOf(c), c.req.valid("json")), 201),
  )
  .openapi(myModerationRoute, async (c) => c.json(await myModeration(c.var.deps, viewerOf(c)), 200))
  .openapi(listAppealsRoute, async (c) => c.json(await listAppeals(c.var.deps, c.req.valid("query")), 200))
  .openapi(decideAppealRoute, async (c) =>
    c.json(
      await decideAppeal(c.var.deps, requestMetaOf(c), viewerOf(c), c.req.valid("param").id, c.req.valid("json")),
      200,
    ),
  )
  .openapi(auditRoute, async (c) => c.json(await listAudit(c.var.deps, viewerOf(c), c.req.valid("query")), 200));
