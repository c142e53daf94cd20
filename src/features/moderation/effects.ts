import { forgetStanding } from "../../core/standing";
import type { CommentDoc, ModerationHold, ModerationStatus, TargetType } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, type ObjectId } from "../../platform/ids";
import { revokeAllSessions } from "../auth/service";
import { forgetCommentPages, rememberOwnHiddenComment } from "../comments/service";
import { invalidateAuthorFeeds } from "../feeds/service";
import { removeFromLeaderboards } from "../leaderboards/service";
import { forgetPosts } from "../posts/visibility";
import { markEngaged } from "../ranking/engagement";
import { TRUST_MAX, TRUST_MIN, TRUST_START } from "./trust";

/**
 * The state changes moderation makes, shared by manual actions, the report-threshold rule and appeals. Each
 * is one conditional write (so repeating it is harmless) plus the cache drops that make it visible at once.
 */

export type ContentState = "approved" | "pending" | "flagged" | "removed";

/**
 * Content moved to `flagged` here is held by the report threshold (creation-time holds are set by screening);
 * any other state clears the hold, taking the content out of the moderator queue.
 */
function holdFor(state: ContentState, now: Date): ModerationHold | null {
  return state === "flagged" ? { source: "report_threshold", at: now } : null;
}

/** Sets a post's or comment's moderation state; `from` limits which states it may move from. */
export async function setContentState(
  deps: Deps,
  targetType: Exclude<TargetType, "user">,
  targetId: ObjectId,
  authorId: ObjectId,
  state: ContentState,
  who: string,
  from?: ContentState[],
): Promise<boolean> {
  const now = deps.clock.now();
  let changed: boolean;
  if (targetType === "post") {
    // Posts keep seed 000's statuses: removed content is "rejected" (restorable; only approved posts are shown).
    const status: ModerationStatus = state === "removed" ? "rejected" : state;
    const filter: Record<string, unknown> = { _id: targetId, deletedAt: null };
    filter.moderationStatus = from ? { $in: from.map((s) => (s === "removed" ? "rejected" : s)) } : { $ne: status };
    const result = await deps.db.posts.updateOne(filter, {
      $set: {
        moderationStatus: status,
        moderationReviewedAt: now,
        moderationReviewedBy: who,
        moderationHold: holdFor(state, now),
        updatedAt: now,
        // Only approved posts count in their tags (features/tags/counts.ts).
        tagsDirty: newObjectId(),
      },
    });
    changed = result.modifiedCount > 0;
  } else {
    const filter: Record<string, unknown> = { _id: targetId, deletedAt: null };
    // Comments written before moderation existed have no status: they count as approved.
    filter.moderationStatus = from ? { $in: from.includes("approved") ? [...from, null] : from } : { $ne: state };
    const before = await deps.db.comments.findOneAndUpdate(
      filter,
      { $set: { moderationStatus: state, moderationHold: holdFor(state, now), updatedAt: now } },
      { returnDocument: "before" },
    );
    changed = Boolean(before);
    if (before) {
      await Promise.all([
        recountComment(deps, before, state),
        forgetCommentPages(deps, [before.postId]),
        // Hidden from others, it still shows to its author, who then bypasses the post's cached page.
        state === "approved" ? null : rememberOwnHiddenComment(deps, before.postId, before.userId),
      ]);
    }
  }
  if (changed && targetType === "post") {
    await Promise.all([invalidateAuthorFeeds(deps, authorId), forgetPosts(deps, [targetId])]);
  }
  return changed;
}

/**
 * `commentCount` and `repliesCount` count comments others can see: hiding one takes it out, showing it again
 * puts it back (shadow-banned authors' comments were never counted).
 */
async function recountComment(deps: Deps, before: CommentDoc, state: ContentState): Promise<void> {
  const wasShown = (before.moderationStatus ?? "approved") === "approved";
  const isShown = state === "approved";
  if (before.authorShadowBanned || wasShown === isShown) return;
  const by = isShown ? 1 : -1;
  await Promise.all([
    deps.db.posts.updateOne({ _id: before.postId }, { $inc: { commentCount: by } }),
    before.parentId
      ? deps.db.comments.updateOne({ _id: before.parentId }, { $inc: { repliesCount: by } })
      : Promise.resolve(),
    markEngaged(deps, [before.postId.toHexString()]),
    forgetPosts(deps, [before.postId]),
  ]);
}

/** Shadow-bans or un-shadow-bans a user, and re-marks their posts and comments so every feed filter agrees. */
export async function setShadowBan(deps: Deps, userId: ObjectId, on: boolean): Promise<void> {
  const now = deps.clock.now();
  await Promise.all([
    deps.db.users.updateOne(
      { _id: userId },
      { $set: { shadowBanned: on, updatedAt: now, ...(on ? { moderationQueuedAt: null } : {}) } },
    ),
    deps.db.posts.updateMany(
      { userId, authorShadowBanned: !on },
      { $set: { authorShadowBanned: on, tagsDirty: newObjectId() } },
    ),
    deps.db.comments.updateMany({ userId, authorShadowBanned: !on }, { $set: { authorShadowBanned: on } }),
    on ? removeFromLeaderboards(deps, userId.toHexString()) : Promise.resolve(),
  ]);
  const posts = await deps.db.posts.find({ userId }, { projection: { _id: 1 }, limit: 10_000 });
  await Promise.all([
    // Their writes read the shadow ban from the standing (votes, shares, comments recorded as shadow).
    forgetStanding(deps, userId.toHexString()),
    invalidateAuthorFeeds(deps, userId),
    forgetPosts(
      deps,
      posts.map((p) => p._id),
    ),
  ]);
}

/**
 * Bans a user: the account is marked (its standing refuses every token while the ban lasts), every session
 * revoked (refresh fails), and the cached standing dropped so existing access tokens stop at once.
 */
export async function banUser(deps: Deps, userId: ObjectId, reason: string, expiresAt: Date | null): Promise<void> {
  const now = deps.clock.now();
  await deps.db.users.updateOne(
    { _id: userId },
    { $set: { bannedAt: now, banReason: reason, banExpiresAt: expiresAt, moderationQueuedAt: null, updatedAt: now } },
  );
  await Promise.all([
    forgetStanding(deps, userId.toHexString()),
    revokeAllSessions(deps, userId, "banned", { refreshOnly: true }),
    removeFromLeaderboards(deps, userId.toHexString()),
  ]);
}

/** Lifts a ban and a shadow ban; the user signs in again (the ban revoked their sessions). */
export async function liftBans(deps: Deps, userId: ObjectId): Promise<void> {
  const now = deps.clock.now();
  await Promise.all([
    deps.db.users.updateOne(
      { _id: userId },
      { $set: { bannedAt: null, banReason: null, banExpiresAt: null, updatedAt: now } },
    ),
    setShadowBan(deps, userId, false),
  ]);
  await forgetStanding(deps, userId.toHexString());
}

/** An update pipeline that moves `trustScore` by `delta`, kept within [0, 100] (missing scores start at 50). */
export function trustUpdate(delta: number, inc: Record<string, number> = {}): Record<string, unknown>[] {
  const counters = Object.fromEntries(
    Object.entries(inc).map(([field, by]) => [field, { $add: [{ $ifNull: [`$${field}`, 0] }, by] }]),
  );
  return [
    {
      $set: {
        trustScore: {
          $min: [TRUST_MAX, { $max: [TRUST_MIN, { $add: [{ $ifNull: ["$trustScore", TRUST_START] }, delta] }] }],
        },
        ...counters,
      },
    },
  ];
}
