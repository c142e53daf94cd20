import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { CommentDoc, PostDoc, ReportSnapshot, TargetType, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { canSee } from "../posts/visibility";

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

function snapshotOf(type: TargetType, doc: PostDoc | CommentDoc | UserDoc): ReportSnapshot {
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
