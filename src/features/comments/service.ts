import { ApiError } from "../../core/errors";
import { type IdempotentRequest, idempotencyMismatch } from "../../core/idempotency";
import type { PageQuery } from "../../core/schemas";
import type { Viewer } from "../../core/viewer";
import type { CommentDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { paginate } from "../../platform/mongo/paginate";
import { notify } from "../notifications/service";
import { findVisiblePost } from "../posts/visibility";
import { markEngaged } from "../ranking/engagement";
import { relationsFor } from "../relations/service";
import { screen } from "../screening/rules";
import { type Comment, type CommentPage, toComment } from "./schema";

/**
 * Adds a comment (or a reply to a top-level comment) to a post the caller can see. `commentCount` counts
 * live comments and replies; `repliesCount` live replies; both move in the same write as the insert (one
 * ordered batch, one round trip), so they move exactly when a comment was added. With an Idempotency-Key the
 * comment stores it under a unique index: a retry whose first attempt committed (its answer lost) gets that
 * comment back instead of adding a second one, and the same key with another request is a 422.
 */
export async function addComment(
  deps: Deps,
  viewer: Viewer,
  postId: string,
  body: { content: string; parentId?: string },
  request?: IdempotentRequest,
): Promise<Comment> {
  const post = await findVisiblePost(deps, viewer, postId);
  const me = new ObjectId(viewer.id);
  const [author, parent] = await Promise.all([
    deps.db.users.findOne({ _id: me, deletedAt: null }, { projection: { username: 1, avatarUrl: 1, shadowBanned: 1 } }),
    body.parentId
      ? deps.db.comments.findOne({ _id: new ObjectId(body.parentId), postId: post._id, deletedAt: null })
      : Promise.resolve(null),
  ]);
  if (!author) throw ApiError.notFound("Account not found.");
  const relations = await relationsFor(deps, viewer);
  if (body.parentId && (!parent || relations.blockedWith(parent.userId.toHexString()))) {
    throw ApiError.notFound("No such comment on this post.");
  }
  // Replies attach to the top of their thread, so threads stay one level deep.
  const parentId = parent ? (parent.parentId ?? parent._id) : null;
  const now = deps.clock.now();
  // Screened like prompts: a banned word holds the comment for review (hidden from others, not counted).
  const screening = screen({ text: body.content }, deps.config.posts, now);
  const comment: CommentDoc = {
    _id: newObjectId(),
    postId: post._id,
    userId: me,
    username: author.username,
    userAvatarUrl: author.avatarUrl ?? null,
    parentId,
    content: body.content,
    repliesCount: 0,
    isEdited: false,
    authorShadowBanned: Boolean(author.shadowBanned),
    createdAt: now,
    updatedAt: now,
    deletedAt: null,
    deletedBy: null,
    moderationStatus: screening.status === "approved" ? "approved" : "pending",
    moderationHold: screening.hold,
    ...(request ? { idempotency: { key: `${viewer.id}:${request.key}`, fingerprint: request.fingerprint } } : {}),
  };
  const counted = !comment.authorShadowBanned && screening.status === "approved";
  const steps = [deps.db.comments.insertStep(comment)];
  if (counted) {
    steps.push(deps.db.posts.updateOneStep({ _id: post._id }, { $inc: { commentCount: 1 } }));
    if (parentId) steps.push(deps.db.comments.updateOneStep({ _id: parentId }, { $inc: { repliesCount: 1 } }));
  }
  const written = await deps.db.batchUnique(steps);
  if (!written.applied) {
    if (!comment.idempotency) throw new Error(`comment insert refused by ${written.duplicateOn}`);
    const first = await firstAttempt(deps, comment.idempotency.key, request?.fingerprint);
    // The first attempt's answer was lost after its write; what came after the write may not have run.
    if (counted) await markEngaged(deps, [postId]);
    return toComment(first);
  }
  if (counted) {
    await markEngaged(deps, [postId]);
    await notify(deps, {
      type: "comment",
      actorId: me,
      postId: post._id,
      postAuthorId: post.userId,
      commentId: comment._id,
      parent: parent ? { commentId: parent._id, authorId: parent.userId } : null,
      imageUrl: post.thumbnailUrl,
    });
  }
  return toComment(comment);
}

/** The comment an earlier attempt with this Idempotency-Key made; another request under the key is a 422. */
async function firstAttempt(deps: Deps, key: string, fingerprint: string | undefined): Promise<CommentDoc> {
  const first = await deps.db.comments.findOne({ "idempotency.key": key });
  if (!first) throw ApiError.conflict("idempotency_in_flight", "A request with this Idempotency-Key is in progress.");
  if (first.idempotency?.fingerprint !== fingerprint) throw idempotencyMismatch();
  return first;
}

/** Top-level comments oldest first with their replies; deleted comments that have replies stay as placeholders. */
export async function listComments(
  deps: Deps,
  viewer: Viewer | undefined,
  postId: string,
  query: PageQuery,
): Promise<CommentPage> {
  const post = await findVisiblePost(deps, viewer, postId);
  // Others see neither shadow-banned authors' comments nor comments hidden by moderation; authors see their own.
  // Nobody sees the comments of someone they are blocked with.
  const blocked = (await relationsFor(deps, viewer)).blockedIds().map((id) => new ObjectId(id));
  const visible = (viewerId: string | undefined) => ({
    $or: [
      {
        authorShadowBanned: { $ne: true },
        moderationStatus: { $nin: ["pending", "flagged", "removed"] },
        ...(blocked.length ? { userId: { $nin: blocked } } : {}),
      },
      ...(viewerId ? [{ userId: new ObjectId(viewerId) }] : []),
    ],
  });
  const page = await paginate(deps.db.comments, {
    filter: {
      postId: post._id,
      parentId: null,
      $and: [visible(viewer?.id), { $or: [{ deletedAt: null }, { repliesCount: { $gt: 0 } }] }],
    },
    order: { direction: "asc" },
    limit: query.limit,
    cursor: query.cursor,
  });
  const tops = page.items;
  const replies = tops.length
    ? await deps.db.comments.find(
        { parentId: { $in: tops.map((t) => t._id) }, deletedAt: null, ...visible(viewer?.id) },
        { sort: { _id: 1 }, limit: tops.length * deps.config.comments.repliesPerThread },
      )
    : [];
  const items = tops.map((t) => ({
    ...toComment(t),
    replies: replies.filter((r) => r.parentId?.equals(t._id)).map(toComment),
  }));
  return { items, nextCursor: page.nextCursor };
}

export async function editComment(deps: Deps, viewer: Viewer, commentId: string, content: string): Promise<Comment> {
  const updated = await deps.db.comments.findOneAndUpdate(
    { _id: new ObjectId(commentId), userId: new ObjectId(viewer.id), deletedAt: null },
    { $set: { content, isEdited: true, updatedAt: deps.clock.now() } },
    { returnDocument: "after" },
  );
  if (!updated) throw ApiError.notFound("No such comment.");
  return toComment(updated);
}

/** Soft delete by the author or a moderator; counters move only for the request that deleted it. */
export async function deleteComment(deps: Deps, viewer: Viewer, commentId: string): Promise<void> {
  const moderator = viewer.role === "moderator" || viewer.role === "admin";
  const filter: Record<string, unknown> = { _id: new ObjectId(commentId), deletedAt: null };
  if (!moderator) filter.userId = new ObjectId(viewer.id);
  const existing = await deps.db.comments.findOne(filter, { projection: { userId: 1 } });
  if (!existing) throw ApiError.notFound("No such comment.");
  const by = existing.userId.toHexString() === viewer.id ? "author" : "moderator";
  const deleted = await deps.db.comments.findOneAndUpdate(
    { ...filter },
    { $set: { deletedAt: deps.clock.now(), deletedBy: by } },
  );
  if (!deleted) throw ApiError.notFound("No such comment.");
  // Only comments others could see were counted.
  if (deleted.authorShadowBanned || (deleted.moderationStatus ?? "approved") !== "approved") return;
  await Promise.all([
    deps.db.posts.updateOne({ _id: deleted.postId }, { $inc: { commentCount: -1 } }),
    deleted.parentId
      ? deps.db.comments.updateOne({ _id: deleted.parentId }, { $inc: { repliesCount: -1 } })
      : Promise.resolve(),
    markEngaged(deps, [deleted.postId.toHexString()]),
  ]);
}
