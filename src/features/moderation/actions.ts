import { ApiError } from "../../core/errors";
import type { RequestMeta, Viewer } from "../../core/viewer";
import type { ManualAction, ModerationActionDoc, ReportDoc, TargetType, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import type { BulkOperation } from "../../platform/mongo/client";
import { HOUR_MS } from "../../platform/time";
import { type AuditInput, auditEntry } from "../audit/service";
import { notify } from "../notifications/service";
import { banUser, liftBans, setContentState, setShadowBan, trustUpdate } from "./effects";
import { isAppealable, type ModerationAction, type ModerationActionBody, toModerationAction } from "./schema";
import { anyTarget, type Target } from "./targets";

/** Which actions apply to which targets (the rest are a 400 naming `action`). */
const ALLOWED: Record<ManualAction, TargetType[]> = {
  approve: ["post", "comment", "user"],
  restore: ["post", "comment", "user"],
  reject: ["post", "comment"],
  remove_content: ["post", "comment"],
  warn: ["post", "comment", "user"],
  shadow_ban: ["user"],
  ban: ["user"],
  unban: ["user"],
};

/** How an action resolves the open reports it answers: dismissed (content was fine) or actioned. */
const RESOLUTION: Record<ManualAction, { status: "dismissed" | "actioned"; taken: ReportDoc["actionTaken"] } | null> = {
  approve: { status: "dismissed", taken: "none" },
  restore: { status: "dismissed", taken: "none" },
  reject: { status: "actioned", taken: "removed" },
  remove_content: { status: "actioned", taken: "removed" },
  warn: { status: "actioned", taken: "warned" },
  shadow_ban: { status: "actioned", taken: "shadow_banned" },
  ban: { status: "actioned", taken: "banned" },
  unban: null,
};

const NOTICE: Record<ManualAction, string> = {
  approve: "Your content was reviewed and approved",
  restore: "Your content or account was restored",
  reject: "Your content was rejected by a moderator",
  remove_content: "Your content was removed by a moderator",
  warn: "You received a warning from a moderator",
  shadow_ban: "Your account's reach was limited by a moderator",
  ban: "Your account was suspended",
  unban: "Your account suspension was lifted",
};

function banEnd(body: ModerationActionBody, now: Date): Date | null {
  if (body.expiresAt) return new Date(body.expiresAt);
  if (body.durationHours) return new Date(now.getTime() + body.durationHours * HOUR_MS);
  return null;
}

function validate(body: ModerationActionBody, now: Date): void {
  if (!ALLOWED[body.action].includes(body.targetType)) {
    throw ApiError.validation([
      {
        path: "action",
        message: `${body.action} does not apply to a ${body.targetType} (use one of: ${actionsFor(body.targetType)})`,
      },
    ]);
  }
  if (body.action !== "ban" && (body.expiresAt || body.durationHours)) {
    throw ApiError.validation([{ path: body.expiresAt ? "expiresAt" : "durationHours", message: "only for ban" }]);
  }
  if (body.expiresAt && body.durationHours) {
    throw ApiError.validation([{ path: "durationHours", message: "give expiresAt or durationHours, not both" }]);
  }
  if (body.expiresAt && new Date(body.expiresAt).getTime() <= now.getTime()) {
    throw ApiError.validation([{ path: "expiresAt", message: "must be in the future" }]);
  }
}

function actionsFor(type: TargetType): string {
  return (Object.keys(ALLOWED) as ManualAction[]).filter((a) => ALLOWED[a].includes(type)).join(", ");
}

/** The open reports an action answers: the ones named (which must be open reports on this target), else all. */
async function reportsAnswered(deps: Deps, target: Target, reportIds: string[] | undefined): Promise<ReportDoc[]> {
  const filter: Record<string, unknown> = { targetId: target.id, targetType: target.type, status: "pending" };
  if (reportIds) filter._id = { $in: reportIds.map((id) => new ObjectId(id)) };
  const found = await deps.db.reports.find(filter, { limit: 1_000 });
  if (reportIds && found.length !== new Set(reportIds).size) {
    throw ApiError.validation([{ path: "reportIds", message: "every id must be an open report on this target" }]);
  }
  return found;
}

/**
 * A moderator's decision on a post, comment or user: applies its effect, resolves the reports it answers,
 * moves trust scores, records the action (and an audit entry), and notifies the user when asked.
 */
export async function takeModerationAction(
  deps: Deps,
  meta: RequestMeta,
  viewer: Viewer,
  body: ModerationActionBody,
): Promise<ModerationAction> {
  const now = deps.clock.now();
  validate(body, now);
  const target = await anyTarget(deps, body.targetType, body.targetId);
  const moderatorId = new ObjectId(viewer.id);
  if (target.userId.equals(moderatorId)) throw ApiError.forbidden("You cannot moderate your own account or content.");
  const [subject, reports] = await Promise.all([
    deps.db.users.findOne({ _id: target.userId }, { projection: { role: 1 } }),
    RESOLUTION[body.action] ? reportsAnswered(deps, target, body.reportIds) : Promise.resolve([]),
  ]);
  // Staff accounts answer to admins only.
  if (subject && (subject.role === "admin" || subject.role === "moderator") && viewer.role !== "admin") {
    throw ApiError.forbidden("Only an admin can act on a staff account.");
  }

  await applyEffect(deps, target, body, viewer.id, now);

  const punitive = RESOLUTION[body.action]?.status === "actioned";
  const trustDelta = punitive ? -deps.config.moderation.trust.actionedPenalty : 0;
  const action: ModerationActionDoc = {
    _id: newObjectId(),
    targetType: target.type,
    targetId: target.id,
    targetUserId: target.userId,
    action: body.action,
    reason: body.reason,
    source: "manual_review",
    performedBy: viewer.id,
    appealable: isAppealable(body.action),
    appealId: null,
    reportIds: reports.map((r) => r._id),
    expiresAt: body.action === "ban" ? banEnd(body, now) : null,
    trustDelta,
    reversedAt: null,
    reversedBy: null,
    createdAt: now,
  };
  const cleared = body.action === "approve" || body.action === "restore";
  await Promise.all([
    deps.db.moderationActions.insertOne(action),
    // Approval answers the automatic hide: the `flag` shows as reversed on the user's moderation page.
    cleared
      ? deps.db.moderationActions.updateMany(
          { targetId: target.id, targetType: target.type, action: "flag", reversedAt: null },
          { $set: { reversedAt: now, reversedBy: moderatorId } },
        )
      : Promise.resolve(),
    resolveReports(deps, reports, action, viewer.id, trustDelta),
    deps.db.auditLogs.insertOne(await auditEntry(deps, meta, actionAudit(action, moderatorId))),
  ]);
  if (body.notifyUser) await notifyAction(deps, action);
  return toModerationAction(action);
}

/** The audit entry of a moderation action: who did what to whom, and why. */
export function actionAudit(action: ModerationActionDoc, actorId: ObjectId): AuditInput {
  return {
    action: "moderation_action",
    userId: action.targetUserId,
    actorId,
    metadata: {
      moderationActionId: action._id.toHexString(),
      action: action.action,
      targetType: action.targetType,
      targetId: action.targetId.toHexString(),
      reason: action.reason,
      source: action.source,
      reportIds: action.reportIds.map((id) => id.toHexString()),
      expiresAt: action.expiresAt?.toISOString() ?? null,
    },
  };
}

async function applyEffect(deps: Deps, target: Target, body: ModerationActionBody, who: string, now: Date) {
  const content = target.type === "user" ? null : target.type;
  switch (body.action) {
    case "approve":
    case "restore":
      if (content) {
        await setContentState(deps, content, target.id, target.userId, "approved", who);
      } else {
        await deps.db.users.updateOne({ _id: target.userId }, { $set: { moderationQueuedAt: null } });
        if (body.action === "restore") await liftBans(deps, target.userId);
      }
      return;
    case "reject":
    case "remove_content":
      if (content) await setContentState(deps, content, target.id, target.userId, "removed", who);
      return;
    case "warn":
      return;
    case "shadow_ban":
      await setShadowBan(deps, target.userId, true);
      return;
    case "ban":
      await banUser(deps, target.userId, body.reason, banEnd(body, now));
      return;
    case "unban":
      await liftBans(deps, target.userId);
      return;
  }
}

/**
 * Marks the answered reports and moves trust: the target user loses `trustDelta` (punitive actions), reporters
 * of actioned reports gain the accuracy bonus, reporters of dismissed ones lose a little. One bulk write.
 */
async function resolveReports(
  deps: Deps,
  reports: ReportDoc[],
  action: ModerationActionDoc,
  moderatorId: string,
  trustDelta: number,
): Promise<void> {
  const resolution = RESOLUTION[action.action as ManualAction];
  const t = deps.config.moderation.trust;
  const userOps: BulkOperation<UserDoc>[] = [];
  if (trustDelta !== 0) {
    userOps.push({
      updateOne: {
        filter: { _id: action.targetUserId },
        // The sanction date pauses the slow trust recovery of the `trust-accrual` job.
        update: [...trustUpdate(trustDelta), { $set: { lastSanctionedAt: action.createdAt } }],
      },
    });
  }
  const reporters = [...new Set(reports.map((r) => r.reporterId.toHexString()))].map((id) => new ObjectId(id));
  if (resolution && reporters.length > 0) {
    const actioned = resolution.status === "actioned";
    userOps.push({
      updateMany: {
        filter: { _id: { $in: reporters } },
        update: actioned
          ? trustUpdate(t.accurateReportBonus, { reportsActioned: 1 })
          : trustUpdate(-t.dismissedReportPenalty, { reportsDismissed: 1 }),
      },
    });
  }
  await Promise.all([
    resolution && reports.length > 0
      ? deps.db.reports.updateMany(
          { _id: { $in: reports.map((r) => r._id) }, status: "pending" },
          {
            $set: {
              status: resolution.status,
              actionTaken: resolution.taken,
              reviewedBy: moderatorId,
              reviewedAt: action.createdAt,
              moderationActionId: action._id,
            },
          },
        )
      : Promise.resolve(),
    userOps.length > 0 ? deps.db.users.bulkWrite(userOps, { ordered: false }) : Promise.resolve(),
  ]);
}

export async function notifyAction(deps: Deps, action: ModerationActionDoc): Promise<void> {
  const title = NOTICE[action.action as ManualAction] ?? "A moderator reviewed your account";
  const until = action.expiresAt ? ` until ${action.expiresAt.toISOString()}` : "";
  await notify(deps, {
    type: "system",
    kind: "moderation",
    recipientId: action.targetUserId,
    title,
    body: `${action.reason}${until}${action.appealable ? " You can appeal this decision." : ""}`,
    actionType: "open_screen",
    actionPayload: { screen: "moderation", moderationActionId: action._id.toHexString() },
  });
}
