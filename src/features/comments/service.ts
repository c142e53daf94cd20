import { dropCache, fillCache, readCache } from "../../core/cache";
import { ApiError } from "../../core/errors";
import { type IdempotentRequest, idempotencyMismatch } from "../../core/idempotency";
import type { Relations } from "../../core/relations";
import type { PageQuery } from "../../core/schemas";
import type { Viewer } from "../../core/viewer";
import type { CommentDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import { paginate } from "../../platform/mongo/paginate";
import { addToCountedSet, areMembers, both, deleteKeys, getValue, setValue } from "../../platform/redis-ops";
import { recordActivity } from "../analytics/activity";
import { notify } from "../notifications/service";
import { defineOwed, incrementsOn, owe } from "../owed/effects";
import { findVisiblePost, forgetPosts } from "../posts/visibility";
import { markEngaged } from "../ranking/engagement";
import { relationsFor } from "../relations/service";
import { screen } from "../screening/rules";
import { type Comment, type CommentPage, toComment } from "./schema";

/**
 * Comments others may see, as far as moderation goes: approved (or from before moderation existed) and by an
 * author who was not shadow-banned when writing. Those that are live are what `commentCount` and
 * `repliesCount` count.
 */
export const SHOWN_TO_OTHERS = {
  authorShadowBanned: { $ne: true },
  moderationStatus: { $nin: ["pending", "flagged", "removed"] },
} as const;

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
  const shown = !comment.authorShadowBanned && screening.status === "approved";
  const steps = [deps.db.comments.inBatch.insertOne(comment)];
  if (shown) {
    steps.push(deps.db.posts.inBatch.updateOne({ _id: post._id }, { $inc: { commentCount: 1 } }));
    if (parentId) steps.push(deps.db.comments.inBatch.updateOne({ _id: parentId }, { $inc: { repliesCount: 1 } }));
  }
  const written = await deps.db.batchUnique(steps);
  if (!written.applied) {
    if (!comment.idempotency) throw new Error(`comment insert refused by ${written.duplicateOn}`);
    const first = await firstAttempt(deps, comment.idempotency.key, request?.fingerprint);
    // The first attempt's answer was lost after its write; what came after the write may not have run.
    await (shown
      ? Promise.all([markEngaged(deps, [postId]), forgetPosts(deps, [postId]), forgetCommentPages(deps, [postId])])
      : rememberOwnHiddenComment(deps, post._id, me));
    return toComment(first);
  }
  if (!shown) await rememberOwnHiddenComment(deps, post._id, me);
  if (shown) {
    await recordActivity(deps, {
      event: "comment_created",
      actorId: viewer.id,
      ownerId: post.userId.toHexString(),
      postId: post._id.toHexString(),
    });
    await Promise.all([markEngaged(deps, [postId]), forgetPosts(deps, [postId]), forgetCommentPages(deps, [postId])]);
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

/**
 * Top-level comments oldest first with their replies; deleted comments that have replies stay as placeholders.
 * The first page as everyone sees it is cached (`comments:first:{postId}`, COMMENTS_CACHE_TTL_SECONDS) and
 * dropped by every change to the post's comments, so a warm read waits on no MongoDB call; the comments of
 * people the viewer is blocked with leave it after the read. Someone with comments only they can see (held,
 * or theirs while shadow-banned) is marked on the post and always gets the page from MongoDB.
 */
export async function listComments(
  deps: Deps,
  viewer: Viewer | undefined,
  postId: string,
  query: PageQuery,
): Promise<CommentPage> {
  const post = await findVisiblePost(deps, viewer, postId);
  const relations = await relationsFor(deps, viewer);
  const firstPage = !query.cursor && query.limit === FIRST_PAGE_SIZE;
  const key = deps.keys.commentsFirstPage(postId);
  if (firstPage) {
    const read = await readCache(
      deps,
      both(getValue<CommentPage>(key), areMembers(deps.keys.commentsOwnHidden(postId), viewer ? [viewer.id] : [])),
      "comments page",
    );
    if (read && !read[1][0]) {
      const page = read[0] ?? (await cachePublicPage(deps, post._id, key));
      return withoutBlocked(page, relations);
    }
  }
  return commentPage(deps, post._id, viewer?.id, relations.blockedIds(), query);
}

const FIRST_PAGE_SIZE = 20;

async function cachePublicPage(deps: Deps, postId: ObjectId, key: string): Promise<CommentPage> {
  const page = await commentPage(deps, postId, undefined, [], { limit: FIRST_PAGE_SIZE });
  await fillCache(deps, setValue(key, page, deps.config.comments.cacheTtlSeconds), "comments page");
  return page;
}

function withoutBlocked(page: CommentPage, relations: Relations): CommentPage {
  const items = page.items
    .filter((c) => c.userId === null || !relations.blockedWith(c.userId))
    .map((c) => ({ ...c, replies: c.replies.filter((r) => r.userId === null || !relations.blockedWith(r.userId)) }));
  return { ...page, items };
}

/** A page from MongoDB: what everyone may see, plus the viewer's own, minus people they are blocked with. */
async function commentPage(
  deps: Deps,
  postId: ObjectId,
  viewerId: string | undefined,
  blockedIds: string[],
  query: { limit: number; cursor?: string },
): Promise<CommentPage> {
  const blocked = blockedIds.map((id) => new ObjectId(id));
  const visible = {
    $or: [
      {
        authorShadowBanned: { $ne: true },
        moderationStatus: { $nin: ["pending", "flagged", "removed"] },
        ...(blocked.length ? { userId: { $nin: blocked } } : {}),
      },
      ...(viewerId ? [{ userId: new ObjectId(viewerId) }] : []),
    ],
  };
  const page = await paginate(deps.db.comments, {
    filter: {
      postId,
      parentId: null,
      $and: [visible, { $or: [{ deletedAt: null }, { repliesCount: { $gt: 0 } }] }],
    },
    order: { direction: "asc" },
    limit: query.limit,
    cursor: query.cursor,
  });
  const tops = page.items;
  const replies = tops.length
    ? await deps.db.comments.find(
        { parentId: { $in: tops.map((t) => t._id) }, deletedAt: null, ...visible },
        { sort: { _id: 1 }, limit: tops.length * deps.config.comments.repliesPerThread },
      )
    : [];
  const items = tops.map((t) => ({
    ...toComment(t),
    replies: replies.filter((r) => r.parentId?.equals(t._id)).map(toComment),
  }));
  return { items, nextCursor: page.nextCursor };
}

/** A comment only its author sees keeps them off the shared cached page of that post's comments. */
export async function rememberOwnHiddenComment(deps: Deps, postId: ObjectId, authorId: ObjectId): Promise<void> {
  const key = deps.keys.commentsOwnHidden(postId.toHexString());
  await fillCache(
    deps,
    addToCountedSet(key, authorId.toHexString(), deps.config.comments.ownHiddenTtlSeconds),
    "own hidden comment mark",
  );
}

/** Drops the cached first page of these posts' comments (after a change to them). */
export async function forgetCommentPages(deps: Deps, postIds: (string | ObjectId)[]): Promise<void> {
  const ids = postIds.map((id) => (typeof id === "string" ? id : id.toHexString()));
  await dropCache(deps, deleteKeys(ids.map((id) => deps.keys.commentsFirstPage(id))), "comments page");
}

export async function editComment(deps: Deps, viewer: Viewer, commentId: string, content: string): Promise<Comment> {
  const updated = await deps.db.comments.findOneAndUpdate(
    { _id: new ObjectId(commentId), userId: new ObjectId(viewer.id), deletedAt: null },
    { $set: { content, isEdited: true, updatedAt: deps.clock.now() } },
    { returnDocument: "after" },
  );
  if (!updated) throw ApiError.notFound("No such comment.");
  await forgetCommentPages(deps, [updated.postId]);
  return toComment(updated);
}

/**
 * What deleting a comment owes after the answer: the post's `commentCount` (and its parent's `repliesCount`)
 * back down, only for a comment others could see, which is all they count; committed once with the owed record.
 */
const commentRemoved = defineOwed<{ commentId: ObjectId; deletedBy: ObjectId }>(
  "comment.removed",
  async (deps, { commentId }) => {
    const comment = await deps.db.comments.findOne(
      { _id: commentId },
      { projection: { postId: 1, parentId: 1, authorShadowBanned: 1, moderationStatus: 1 } },
    );
    if (!comment || comment.authorShadowBanned || (comment.moderationStatus ?? "approved") !== "approved")
      return undefined;
    return {
      commit: [
        // The recount mark with the count (see ranking/engagement.ts).
        deps.db.posts.inBatch.updateOne({ _id: comment.postId }, { $inc: { commentCount: -1, countersStale: 1 } }),
        ...(comment.parentId
          ? incrementsOn(deps, "comments", [{ id: comment.parentId, inc: { repliesCount: -1 } }])
          : []),
      ],
      after: async () => {
        await Promise.all([forgetPosts(deps, [comment.postId]), forgetCommentPages(deps, [comment.postId])]);
      },
    };
  },
  (removal) => [removal.deletedBy],
);

/**
 * Soft delete by the author or a moderator, waiting on one Data API call: the delete (which records who did it)
 * and what it owes (the counters, moved only for the request that deleted it) in one transaction.
 */
export async function deleteComment(deps: Deps, viewer: Viewer, commentId: string): Promise<void> {
  const moderator = viewer.role === "moderator" || viewer.role === "admin";
  const me = new ObjectId(viewer.id);
  const id = new ObjectId(commentId);
  const filter: Record<string, unknown> = { _id: id, deletedAt: null };
  if (!moderator) filter.userId = me;
  const owed = owe(deps, [commentRemoved({ commentId: id, deletedBy: me })]);
  let deleted: CommentDoc | null;
  try {
    [deleted] = await deps.db.batch(
      [
        expectMatch(
          deps.db.comments.inBatch.findOneAndUpdate(
            filter,
            [
              {
                $set: {
                  deletedAt: deps.clock.now(),
                  deletedBy: { $cond: [{ $eq: ["$userId", { $literal: me }] }, "author", "moderator"] },
                },
              },
            ],
            { projection: { postId: 1 } },
          ),
        ),
        owed.step,
      ],
      { transaction: true },
    );
  } catch (error) {
    if (error instanceof PreconditionFailedError && error.failedIndex === 0)
      throw ApiError.notFound("No such comment.");
    throw error;
  }
  owed.committed();
  // The deleter sees it gone at once; the counts follow after the answer.
  if (deleted) await forgetCommentPages(deps, [deleted.postId]);
}
