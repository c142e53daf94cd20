import { OptionalIdempotencyHeaders } from "../../core/idempotency";
import { IdParam, PageQuery } from "../../core/schemas";
import { requestMetaOf } from "../../http/context";
import { idempotent } from "../../http/idempotency";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, roleRoute } from "../../http/routes";
import { takeModerationAction } from "./actions";
import { createAppeal, decideAppeal, listAppeals, myModeration } from "./appeals";
import { heldContent } from "./held";
import { assignReport, createReport, reportQueue } from "./reports";
import {
  AdminAppeal,
  AdminAppealPage,
  Appeal,
  AppealDecisionBody,
  AppealsQuery,
  CreateAppealBody,
  CreateReportBody,
  HeldPage,
  ModerationAction,
  ModerationActionBody,
  MyModeration,
  QueuePage,
  QueueQuery,
  QueueReport,
  Report,
} from "./schema";

const createReportRoute = authedRoute({
  method: "post",
  path: "/v1/reports",
  tags: ["trust and safety"],
  summary: "Report a post, comment or user",
  description:
    "One open report per reporter and target (a second → 409). The report keeps a snapshot of the content. " +
    "Each report weighs the reporter's trust (and accuracy, once they have several resolved reports); when a " +
    "target's open weight reaches the threshold, the content is hidden pending review right after the answer. " +
    "Rate-limited per reporter. Unknown or invisible targets → 404; your own content or account → 403. With an " +
    "`Idempotency-Key` a retry (e.g. after a 503) returns the first answer instead of a 409; the same key with " +
    "another body is a 422.",
  use: [idempotent("report", { required: false })],
  request: { headers: OptionalIdempotencyHeaders, ...jsonBody(CreateReportBody) },
  responses: { 201: json(Report, "Report filed"), ...problems(403, 404, 409, 422) },
});

const queueRoute = roleRoute(["moderator", "admin"], {
  method: "get",
  path: "/v1/admin/reports",
  tags: ["admin", "trust and safety"],
  summary: "Moderator queue: reports grouped by target, oldest first",
  description:
    "One item per target with its reports, their total weight and the snapshot of the first report. " +
    "`status` defaults to `pending`.",
  request: { query: QueueQuery },
  responses: { 200: json(QueuePage, "A page of queue items") },
});

const assignRoute = roleRoute(["moderator", "admin"], {
  method: "post",
  path: "/v1/admin/reports/{id}/assign",
  tags: ["admin", "trust and safety"],
  summary: "Assign a report to the calling moderator",
  request: { params: IdParam },
  responses: { 200: json(QueueReport, "The assigned report"), ...problems(404) },
});

const actionRoute = roleRoute(["moderator", "admin"], {
  method: "post",
  path: "/v1/admin/moderation-actions",
  tags: ["admin", "trust and safety"],
  summary: "Take a moderation action",
  description:
    "approve | restore (content back, reports dismissed), reject | remove_content (soft, restorable; reports " +
    "actioned), warn, shadow_ban, ban (optional expiresAt or durationHours; sessions and access tokens end at " +
    "once), unban. Resolves `reportIds` (default: every open report on the target), moves trust scores, is " +
    "recorded in moderation_actions and the audit log, and notifies the user when `notifyUser` is true.",
  request: jsonBody(ModerationActionBody),
  responses: { 201: json(ModerationAction, "Action taken"), ...problems(404) },
});

const createAppealRoute = authedRoute({
  method: "post",
  path: "/v1/appeals",
  tags: ["trust and safety"],
  // A banned user can still contest the ban with the access token they hold.
  allowBanned: true,
  summary: "Appeal a moderation action on your account or content",
  description:
    "Only the affected user, only remove_content, reject, warn, shadow_ban and ban, within the appeal window " +
    "(MODERATION_APPEAL_WINDOW_DAYS), one appeal per action (a second → 409).",
  request: jsonBody(CreateAppealBody),
  responses: { 201: json(Appeal, "Appeal filed"), ...problems(404, 409) },
});

const myModerationRoute = authedRoute({
  method: "get",
  path: "/v1/me/moderation",
  tags: ["trust and safety"],
  allowBanned: true,
  summary: "Moderation actions on your account and content, with appeal state",
  responses: { 200: json(MyModeration, "Your standing and the actions taken"), ...problems(404) },
});

const listAppealsRoute = roleRoute(["moderator", "admin"], {
  method: "get",
  path: "/v1/admin/appeals",
  tags: ["admin", "trust and safety"],
  summary: "Appeals by status, oldest first",
  description: "`status` defaults to `pending`. Each appeal comes with the action it contests.",
  request: { query: AppealsQuery },
  responses: { 200: json(AdminAppealPage, "A page of appeals") },
});

const decideAppealRoute = roleRoute(["moderator", "admin"], {
  method: "post",
  path: "/v1/admin/appeals/{id}/decision",
  tags: ["admin", "trust and safety"],
  summary: "Approve or deny an appeal",
  description:
    "Approval reverses the action (content restored, bans lifted, trust restored) and is recorded as a " +
    "moderation action; the decision is audited and the user notified. A decided appeal → 409.",
  request: { params: IdParam, ...jsonBody(AppealDecisionBody) },
  responses: { 200: json(AdminAppeal, "The decided appeal"), ...problems(404, 409) },
});

const heldRoute = roleRoute(["moderator", "admin"], {
  method: "get",
  path: "/v1/admin/moderation-queue",
  tags: ["admin", "trust and safety"],
  summary: "Held posts and comments, oldest first, with why they are held",
  description:
    "Content screened at creation (a banned word: `pending`; the generator's NSFW score: `flagged`) or hidden by " +
    "the report threshold, whether or not anyone reported it. `approve` or `reject`/`remove_content` takes it out.",
  request: { query: PageQuery },
  responses: { 200: json(HeldPage, "A page of held content") },
});

export const moderationRoutes = router()
  .openapi(heldRoute, async (c) => c.json(await heldContent(c.var.deps, c.req.valid("query")), 200))
  .openapi(createReportRoute, async (c) =>
    c.json(await createReport(c.var.deps, c.var.viewer, c.req.valid("json"), c.var.idempotency), 201),
  )
  .openapi(queueRoute, async (c) => c.json(await reportQueue(c.var.deps, c.req.valid("query")), 200))
  .openapi(assignRoute, async (c) => c.json(await assignReport(c.var.deps, c.var.viewer, c.req.valid("param").id), 200))
  .openapi(actionRoute, async (c) =>
    c.json(await takeModerationAction(c.var.deps, requestMetaOf(c), c.var.viewer, c.req.valid("json")), 201),
  )
  .openapi(createAppealRoute, async (c) =>
    c.json(await createAppeal(c.var.deps, c.var.viewer, c.req.valid("json")), 201),
  )
  .openapi(myModerationRoute, async (c) => c.json(await myModeration(c.var.deps, c.var.viewer), 200))
  .openapi(listAppealsRoute, async (c) => c.json(await listAppeals(c.var.deps, c.req.valid("query")), 200))
  .openapi(decideAppealRoute, async (c) =>
    c.json(
      await decideAppeal(c.var.deps, requestMetaOf(c), c.var.viewer, c.req.valid("param").id, c.req.valid("json")),
      200,
    ),
  );
