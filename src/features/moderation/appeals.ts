import { ApiError } from "../../core/errors";
import type { RequestMeta, Viewer } from "../../core/viewer";
import type { AppealDoc, AppealStatus, ModerationActionDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { paginate } from "../../platform/mongo/paginate";
import { addDays } from "../../platform/time";
import { auditEntry } from "../audit/service";
import { notify } from "../notifications/service";
import { isBanned } from "../users/schema";
import { actionAudit } from "./actions";
import { liftBans, setContentState, setShadowBan, trustUpdate } from "./effects";
import {
  type AdminAppeal,
  type AdminAppealPage,
  type Appeal,
  type AppealDecisionBody,
  type CreateAppealBody,
  type MyModeration,
  toAppeal,
  toModerationAction,
} from "./schema";
import { TRUST_START } from "./trust";

const MY_ACTIONS_LIMIT = 100;

function appealDeadline(deps: Deps, action: ModerationActionDoc): Date {
  return addDays(action.createdAt, deps.config.moderation.appealWindowDays);
}

/**
 * Files an appeal: only the affected user, only appealable actions not yet reversed, within the window,
 * once per action (a unique index on `moderationActionId`, so concurrent appeals make one).
 */
export async function createAppeal(deps: Deps, viewer: Viewer, body: CreateAppealBody): Promise<Appeal> {
  const me = new ObjectId(viewer.id);
  const action = await deps.db.moderationActions.findOne({
    _id: new ObjectId(body.moderationActionId),
    targetUserId: me,
  });
  if (!action) throw ApiError.notFound("No such moderation action on your account or content.");
  if (!action.appealable) throw ApiError.conflict("not_appealable", "This action cannot be appealed.");
  if (action.reversedAt) throw ApiError.conflict("already_reversed", "This action has already been reversed.");
  const now = deps.clock.now();
  if (now.getTime() > appealDeadline(deps, action).getTime()) {
    throw ApiError.conflict("appeal_window_closed", "The appeal window for this action has closed.");
  }
  const appeal: AppealDoc = {
    _id: newObjectId(),
    userId: me,
    moderationActionId: action._id,
    reason: body.reason,
    status: "pending",
    reviewedBy: null,
    reviewedAt: null,
    reviewNotes: null,
    createdAt: now,
  };
  if (!(await deps.db.appeals.insertUnique(appeal))) {
    throw ApiError.conflict("already_appealed", "This action was already appealed.");
  }
  await deps.db.moderationActions.updateOne({ _id: action._id }, { $set: { appealId: appeal._id } });
  return toAppeal(appeal);
}

/** Appeals with a status, oldest first, each with the action it contests. */
export async function listAppeals(
  deps: Deps,
  query: { status: AppealStatus; limit: number; cursor?: string },
): Promise<AdminAppealPage> {
  const { items: page, nextCursor } = await paginate(deps.db.appeals, {
    filter: { status: query.status },
    order: { direction: "asc" },
    limit: query.limit,
    cursor: query.cursor,
  });
  const actions = page.length
    ? await deps.db.moderationActions.find(
        { _id: { $in: page.map((a) => a.moderationActionId) } },
        { limit: page.length },
      )
    : [];
  const byId = new Map(actions.map((a) => [a._id.toHexString(), a]));
  const items = page.map((a) => {
    const action = byId.get(a.moderationActionId.toHexString());
    return { ...toAppeal(a), moderationAction: action ? toModerationAction(action) : null };
  });
  return { items, nextCursor };
}

/**
 * Decides a pending appeal (one conditional update, so two moderators cannot both decide it). Approval
 * reverses the action (content back, bans lifted, trust restored) and is recorded as a moderation action of
 * its own; both the decision and the reversal are audited, and the user is told the outcome.
 */
export async function decideAppeal(
  deps: Deps,
  meta: RequestMeta,
  viewer: Viewer,
  appealId: string,
  body: AppealDecisionBody,
): Promise<AdminAppeal> {
  const now = deps.clock.now();
  const moderatorId = new ObjectId(viewer.id);
  const existing = await deps.db.appeals.findOne({ _id: new ObjectId(appealId) });
  if (!existing) throw ApiError.notFound("No such appeal.");
  if (existing.userId.equals(moderatorId)) throw ApiError.forbidden("You cannot decide your own appeal.");
  const appeal = await deps.db.appeals.findOneAndUpdate(
    { _id: existing._id, status: "pending" },
    { $set: { status: body.decision, reviewedBy: viewer.id, reviewedAt: now, reviewNotes: body.notes ?? null } },
    { returnDocument: "after" },
  );
  if (!appeal) throw ApiError.conflict("already_decided", "This appeal has already been decided.");
  const action = await deps.db.moderationActions.findOne({ _id: appeal.moderationActionId });
  if (!action) throw ApiError.notFound("The appealed action no longer exists.");

  const audits = [
    await auditEntry(deps, meta, {
      action: "appeal_decided",
      userId: appeal.userId,
      actorId: moderatorId,
      metadata: {
        appealId: appeal._id.toHexString(),
        moderationActionId: action._id.toHexString(),
        decision: body.decision,
        notes: body.notes ?? null,
      },
    }),
  ];
  let reversal: ModerationActionDoc | null = null;
  if (body.decision === "approved" && !action.reversedAt) {
    reversal = await reverseAction(deps, action, viewer.id, now, appeal.reason);
    audits.push(await auditEntry(deps, meta, actionAudit(reversal, moderatorId)));
  }
  await Promise.all([
    deps.db.auditLogs.insertMany(audits),
    reversal ? deps.db.moderationActions.insertOne(reversal) : Promise.resolve(),
  ]);
  await notify(deps, {
    type: "system",
    kind: "moderation",
    recipientId: appeal.userId,
    title: body.decision === "approved" ? "Your appeal was approved" : "Your appeal was denied",
    body: body.notes ?? (body.decision === "approved" ? "The moderation action was reversed." : null),
    actionType: "open_screen",
    actionPayload: { screen: "moderation", appealId: appeal._id.toHexString() },
  });
  return {
    ...toAppeal(appeal),
    moderationAction: toModerationAction({ ...action, reversedAt: reversal ? now : action.reversedAt }),
  };
}

/** Undoes an action's effect and trust change; returns the reversing action (the caller stores it). */
async function reverseAction(
  deps: Deps,
  action: ModerationActionDoc,
  moderatorId: string,
  now: Date,
  appealReason: string,
): Promise<ModerationActionDoc> {
  const content = action.targetType === "user" ? null : action.targetType;
  const undo: Promise<unknown>[] = [
    deps.db.moderationActions.updateOne(
      { _id: action._id, reversedAt: null },
      { $set: { reversedAt: now, reversedBy: new ObjectId(moderatorId) } },
    ),
  ];
  if ((action.action === "remove_content" || action.action === "reject") && content) {
    undo.push(
      setContentState(deps, content, action.targetId, action.targetUserId, "approved", moderatorId, ["removed"]),
    );
  }
  if (action.action === "shadow_ban") undo.push(setShadowBan(deps, action.targetUserId, false));
  if (action.action === "ban") undo.push(liftBans(deps, action.targetUserId));
  if (action.trustDelta !== 0) {
    undo.push(deps.db.users.updateOne({ _id: action.targetUserId }, trustUpdate(-action.trustDelta)));
  }
  await Promise.all(undo);
  const lifted = action.action === "ban" || action.action === "shadow_ban";
  return {
    _id: newObjectId(),
    targetType: action.targetType,
    targetId: action.targetId,
    targetUserId: action.targetUserId,
    action: lifted ? "unban" : "restore",
    reason: `Appeal approved: ${appealReason}`.slice(0, 1000),
    source: "appeal_review",
    performedBy: moderatorId,
    appealable: false,
    appealId: action.appealId,
    reportIds: [],
    expiresAt: null,
    trustDelta: -action.trustDelta,
    reversedAt: null,
    reversedBy: null,
    createdAt: now,
  };
}

/**
 * GET /v1/me/moderation: the caller's standing and the actions on their account and content (newest first,
 * up to 100), with appeal state. Moderator identities are not shown.
 */
export async function myModeration(deps: Deps, viewer: Viewer): Promise<MyModeration> {
  const me = new ObjectId(viewer.id);
  const [user, actions, appeals] = await Promise.all([
    deps.db.users.findOne(
      { _id: me, deletedAt: null },
      { projection: { bannedAt: 1, banExpiresAt: 1, shadowBanned: 1, trustScore: 1 } },
    ),
    deps.db.moderationActions.find({ targetUserId: me }, { sort: { createdAt: -1, _id: -1 }, limit: MY_ACTIONS_LIMIT }),
    deps.db.appeals.find({ userId: me }, { sort: { createdAt: -1 }, limit: MY_ACTIONS_LIMIT }),
  ]);
  if (!user) throw ApiError.notFound("Account not found.");
  const now = deps.clock.now();
  const appealByAction = new Map(appeals.map((a) => [a.moderationActionId.toHexString(), a]));
  return {
    account: {
      banned: isBanned(user, now),
      banExpiresAt: isBanned(user, now) ? (user.banExpiresAt?.toISOString() ?? null) : null,
      shadowBanned: Boolean(user.shadowBanned),
      trustScore: user.trustScore ?? TRUST_START,
    },
    items: actions.map((a) => {
      const appeal = appealByAction.get(a._id.toHexString()) ?? null;
      const deadline = a.appealable ? appealDeadline(deps, a) : null;
      return {
        id: a._id.toHexString(),
        targetType: a.targetType,
        targetId: a.targetId.toHexString(),
        action: a.action,
        reason: a.reason,
        source: a.source,
        expiresAt: a.expiresAt?.toISOString() ?? null,
        reversed: Boolean(a.reversedAt),
        createdAt: a.createdAt.toISOString(),
        appealable: Boolean(deadline && !appeal && !a.reversedAt && now.getTime() <= deadline.getTime()),
        appealDeadline: deadline?.toISOString() ?? null,
        appeal: appeal
          ? {
              id: appeal._id.toHexString(),
              status: appeal.status,
              createdAt: appeal.createdAt.toISOString(),
              reviewedAt: appeal.reviewedAt?.toISOString() ?? null,
              reviewNotes: appeal.reviewNotes,
            }
          : null,
      };
    }),
  };
}
