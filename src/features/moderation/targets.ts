import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { CommentDoc, PostDoc, ReportSnapshot, TargetType, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { type BatchStep, expectMatch } from "../../platform/mongo/client";
import { cachedCommentFacts } from "../comments/facts";
import { cachedPost, canSee } from "../posts/visibility";

/** A reportable or actionable object with the account responsible for it. */
export interface Target {
  type: TargetType;
  id: ObjectId;
  /** The author of a post or comment, or the user themselves. */
  userId: ObjectId;
  post: PostDoc | null;
  comment: CommentDoc | null;
  snapshot: ReportSnapshot;
}

export function snapshotOf(type: TargetType, doc: PostDoc | CommentDoc | UserDoc): ReportSnapshot {
  if (type === "post") {
    const p = doc as PostDoc;
    return {
      text: p.prompt,
      imageUrl: p.imageUrl,
      authorId: p.userId.toHexString(),
      username: p.username,
      postId: p._id.toHexString(),
    };
  }
  if (type === "comment") {
    const c = doc as CommentDoc;
    return {
      text: c.content,
      imageUrl: null,
      authorId: c.userId.toHexString(),
      username: c.username,
      postId: c.postId.toHexString(),
    };
  }
  const u = doc as UserDoc;
  const text = [u.displayName, u.bio].filter(Boolean).join("\n") || null;
  return { text, imageUrl: u.avatarUrl ?? null, authorId: u._id.toHexString(), username: u.username, postId: null };
}

/**
 * A post the reporter may see by the feed's visibility rules, except that content hidden pending review
 * (`flagged`) stays reportable: reports racing the one that hid it, from people who saw it, still count.
 */
async function reportablePost(deps: Deps, viewer: Viewer, postId: ObjectId): Promise<PostDoc | null> {
  const post = await deps.db.posts.findOne({ _id: postId, deletedAt: null });
  if (!post) return null;
  let follows = false;
  if (post.visibility === "followers" && post.userId.toHexString() !== viewer.id) {
    follows = Boolean(
      await deps.db.follows.findOne(
        { followerId: new ObjectId(viewer.id), followingId: post.userId },
        { projection: { _id: 1 } },
      ),
    );
  }
  const asShown: PostDoc = post.moderationStatus === "flagged" ? { ...post, moderationStatus: "approved" } : post;
  return canSee(asShown, viewer.id, follows) ? post : null;
}

/**
 * A target as the reporter may see it: posts by the feed's visibility rules, comments on such posts (not
 * hidden from the reporter), live accounts; content hidden pending review stays reportable. Anything else
 * is the same 404 as a missing one.
 */
export async function visibleTarget(deps: Deps, viewer: Viewer, type: TargetType, id: string): Promise<Target> {
  const _id = new ObjectId(id);
  if (type === "post") {
    const post = await reportablePost(deps, viewer, _id);
    if (!post) throw ApiError.notFound("No such post.");
    return { type, id: _id, userId: post.userId, post, comment: null, snapshot: snapshotOf(type, post) };
  }
  if (type === "comment") {
    const comment = await deps.db.comments.findOne({ _id, deletedAt: null });
    const own = comment?.userId.toHexString() === viewer.id;
    const hidden = comment && !own && (comment.authorShadowBanned || comment.moderationStatus === "removed");
    if (!comment || hidden || !(await reportablePost(deps, viewer, comment.postId))) {
      throw ApiError.notFound("No such comment.");
    }
    return { type, id: _id, userId: comment.userId, post: null, comment, snapshot: snapshotOf(type, comment) };
  }
  const user = await deps.db.users.findOne({ _id, deletedAt: null });
  if (!user) throw ApiError.notFound("No such user.");
  return { type, id: _id, userId: user._id, post: null, comment: null, snapshot: snapshotOf(type, user) };
}

/** A target as a moderator sees it: anything that exists, deleted content included. */
export async function anyTarget(deps: Deps, type: TargetType, id: string): Promise<Target> {
  const _id = new ObjectId(id);
  if (type === "post") {
    const post = await deps.db.posts.findOne({ _id });
    if (!post) throw ApiError.notFound("No such post.");
    return { type, id: _id, userId: post.userId, post, comment: null, snapshot: snapshotOf(type, post) };
  }
  if (type === "comment") {
    const comment = await deps.db.comments.findOne({ _id });
    if (!comment) throw ApiError.notFound("No such comment.");
    return { type, id: _id, userId: comment.userId, post: null, comment, snapshot: snapshotOf(type, comment) };
  }
  const user = await deps.db.users.findOne({ _id });
  if (!user) throw ApiError.notFound("No such user.");
  return { type, id: _id, userId: user._id, post: null, comment: null, snapshot: snapshotOf(type, user) };
}

/**
 * A target a report is about to be filed on, with the guards its transaction starts with: the target (and a
 * comment's post) still there and reportable when the report is written. `snapshot` when the content is
 * already known (else the report's owed run takes it: see reports.ts).
 */
export interface ReportTarget {
  type: TargetType;
  id: ObjectId;
  userId: ObjectId;
  guards: BatchStep<unknown>[];
  snapshot: ReportSnapshot | null;
  /**
   * Found from caches: a guard that fails may only mean they could not tell (a followers-only post, a copy
   * that went stale), so the target is then read from MongoDB. A target read from MongoDB whose guard fails is
   * gone.
   */
  cached: boolean;
}

/** What a post must be for anyone but its author to report it (content hidden pending review included). */
const REPORTABLE_POST = {
  status: "published",
  deletedAt: null,
  moderationStatus: { $in: ["approved", "flagged"] },
  authorShadowBanned: { $ne: true },
} as const;

/**
 * A report's target from what Redis already has, without a MongoDB read: a user by id (the guard checks the
 * account), a post from its cached copy or lasting facts, a comment from its facts (comments/facts.ts). Null
 * when the caches cannot tell: `readReportTarget` then reads it.
 */
export async function cachedReportTarget(
  deps: Deps,
  viewer: Viewer,
  type: TargetType,
  id: string,
): Promise<ReportTarget | null> {
  const _id = new ObjectId(id);
  if (type === "user") {
    return { type, id: _id, userId: _id, guards: [liveGuard(deps, type, _id)], snapshot: null, cached: false };
  }
  if (type === "post") {
    const { post, facts } = await cachedPost(deps, id);
    if (!facts) return null;
    if (facts.userId.toHexString() === viewer.id) {
      return { type, id: _id, userId: facts.userId, guards: [], snapshot: null, cached: true };
    }
    // A copy seen whole says who may see it; lasting facts alone vouch only for a public post.
    const shownAsApproved = post?.moderationStatus === "flagged" ? { ...post, moderationStatus: "approved" } : post;
    if (shownAsApproved && !canSee(shownAsApproved as PostDoc, viewer.id, true)) return null;
    const visibility = post?.visibility ?? "public";
    const guards: BatchStep<unknown>[] = [
      expectMatch(deps.db.posts.inBatch.findOne({ _id, ...REPORTABLE_POST, visibility }, { projection: { _id: 1 } })),
    ];
    if (visibility === "followers") {
      guards.push(
        expectMatch(
          deps.db.follows.inBatch.findOne(
            { followerId: new ObjectId(viewer.id), followingId: facts.userId },
            { projection: { _id: 1 } },
          ),
        ),
      );
    }
    return {
      type,
      id: _id,
      userId: facts.userId,
      guards,
      snapshot: post ? snapshotOf(type, post) : null,
      cached: true,
    };
  }
  const facts = await cachedCommentFacts(deps, id);
  if (!facts) return null;
  if (facts.userId.toHexString() === viewer.id) {
    return { type, id: _id, userId: facts.userId, guards: [], snapshot: null, cached: true };
  }
  const guards = [
    expectMatch(
      deps.db.comments.inBatch.findOne(
        { _id, deletedAt: null, authorShadowBanned: { $ne: true }, moderationStatus: { $ne: "removed" } },
        { projection: { _id: 1 } },
      ),
    ),
    expectMatch(
      deps.db.posts.inBatch.findOne(
        { _id: facts.postId, ...REPORTABLE_POST, visibility: "public" },
        { projection: { _id: 1 } },
      ),
    ),
  ];
  return { type, id: _id, userId: facts.userId, guards, snapshot: null, cached: true };
}

/** A report's target read from MongoDB (`visibleTarget`), guarded by its still being there when the report is written. */
export async function readReportTarget(
  deps: Deps,
  viewer: Viewer,
  type: TargetType,
  id: string,
): Promise<ReportTarget> {
  const target = await visibleTarget(deps, viewer, type, id);
  const guards = [liveGuard(deps, type, target.id)];
  return { type, id: target.id, userId: target.userId, guards, snapshot: target.snapshot, cached: false };
}

/** The target is still there (not deleted), as a guard step. */
function liveGuard(deps: Deps, type: TargetType, _id: ObjectId): BatchStep<unknown> {
  const live = { _id, deletedAt: null };
  const options = { projection: { _id: 1 as const } };
  if (type === "post") return expectMatch(deps.db.posts.inBatch.findOne(live, options));
  if (type === "comment") return expectMatch(deps.db.comments.inBatch.findOne(live, options));
  return expectMatch(deps.db.users.inBatch.findOne(live, options));
}
