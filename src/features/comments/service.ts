import { dropCache, fillCache, readCache } from "../../core/cache";
import { ApiError } from "../../core/errors";
import { type IdempotentRequest, idempotencyMismatch } from "../../core/idempotency";
import type { Relations } from "../../core/relations";
import type { PageQuery } from "../../core/schemas";
import { accountFactsOf, forgetStanding } from "../../core/standing";
import type { AccountFacts, Viewer } from "../../core/viewer";
import type { CommentDoc } from "../../db";
import type { Deps } from "../../deps";
import { afterResponse } from "../../platform/background";
import { newObjectId, ObjectId } from "../../platform/ids";
import { DuplicateKeyError, expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import { paginate } from "../../platform/mongo/paginate";
import { addToCountedSet, areMembers, both, deleteKeys, getValue, setValue } from "../../platform/redis-ops";
import { recordActivity } from "../analytics/activity";
import { notifyLater } from "../notifications/service";
import { defineOwed, incrementsOn, owe, settleOwed } from "../owed/effects";
import { findVisiblePost, findWritablePost, forgetPosts, type WritablePost, writeOnPost } from "../posts/visibility";
import { relationsFor } from "../relations/service";
import { screen } from "../screening/rules";
import { type CommentFacts, cachedCommentFacts, factsOfComment, rememberCommentFacts, together } from "./facts";
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
 * What a counted comment owes after the answer: the post's `commentCount` (with the recount mark) and its
 * thread's `repliesCount` up, committed once with the owed record, then the cached copies that show them
 * dropped. Only comments others can see are counted, so only those owe it. Owed rather than in the comment's
 * transaction, which then writes only new documents: commenters on a busy post never contend for it.
 */
const commentAdded = defineOwed<{ postId: ObjectId; threadId: ObjectId | null; authorId: ObjectId }>(
  "comment.added",
  async (deps, added) => ({
    commit: [
      // The recount mark with the count (see ranking/engagement.ts).
      deps.db.posts.inBatch.updateOne({ _id: added.postId }, { $inc: { commentCount: 1, countersStale: 1 } }),
      ...(added.threadId ? incrementsOn(deps, "comments", [{ id: added.threadId, inc: { repliesCount: 1 } }]) : []),
    ],
    after: async () => {
      await Promise.all([forgetPosts(deps, [added.postId]), forgetCommentPages(deps, [added.postId])]);
    },
  }),
  (added) => [added.authorId],
);

/**
 * Adds a comment (or a reply: it joins the top-level comment's thread, so threads stay one level deep) to a
 * post the caller can see, waiting on one Data API call. What it needs to know comes from caches the request
 * reads anyway: the post's cached copy or lasting facts (posts/visibility.ts), the replied-to comment's facts
 * (facts.ts: its post, thread and author) and the author's standing (username, avatar, shadow ban). One
 * transaction then checks that none of them went stale — the post still shown (or the caller's own and live),
 * the author as the standing says, the parent still there — inserts the comment and records what it owes
 * (the counts, the notifications), so a stale cache lets nothing through: a failed check is a 404, or a second
 * try with what MongoDB says.
 *
 * `commentCount` counts live comments and replies others can see, `repliesCount` live replies; both move once,
 * after the answer (`comment.added`). The caller sees their comment at once: the post's cached first page is
 * dropped before answering. With an Idempotency-Key the comment stores it under a unique index: a retry whose
 * first attempt committed (its answer lost) gets that comment back, with what it owed carried out, instead of
 * adding a second one; the same key with another request is a 422.
 *
 * Waits: Redis — the rate limit (with standing and relations), then the post's cache ∥ the parent's facts, then
 * the page drop (with the new comment's facts); MongoDB — the transaction (plus a read when a cache missed).
 */
export async function addComment(
  deps: Deps,
  viewer: Viewer,
  postId: string,
  body: { content: string; parentId?: string },
  request?: IdempotentRequest,
): Promise<Comment> {
  const me = new ObjectId(viewer.id);
  const [target, parent, standing, relations] = await Promise.all([
    commentTarget(deps, viewer, postId),
    body.parentId ? parentOf(deps, body.parentId) : Promise.resolve(null),
    accountFactsOf(deps, viewer),
    relationsFor(deps, viewer),
  ]);
  if (
    body.parentId &&
    (!parent?.facts.postId.equals(target.postId) || relations.blockedWith(parent.facts.userId.toHexString()))
  ) {
    throw noSuchParent();
  }
  const now = deps.clock.now();
  // Screened like prompts: a banned word holds the comment for review (hidden from others, not counted).
  const screening = screen({ text: body.content }, deps.config.posts, now);
  const idempotency = request ? { key: `${viewer.id}:${request.key}`, fingerprint: request.fingerprint } : undefined;

  /** The comment as this author, its owed record and the write; `author` from the standing, else MongoDB. */
  const attempt = async (author: AuthorFacts) => {
    const comment: CommentDoc = {
      _id: newObjectId(),
      postId: target.postId,
      userId: me,
      username: author.username,
      userAvatarUrl: author.avatarUrl,
      parentId: parent ? parent.facts.threadId : null,
      content: body.content,
      repliesCount: 0,
      isEdited: false,
      authorShadowBanned: author.shadowBanned,
      createdAt: now,
      updatedAt: now,
      deletedAt: null,
      deletedBy: null,
      moderationStatus: screening.status === "approved" ? "approved" : "pending",
      moderationHold: screening.hold,
      ...(idempotency ? { idempotency } : {}),
    };
    const shown = !comment.authorShadowBanned && screening.status === "approved";
    const owed = shown
      ? owe(
          deps,
          [
            commentAdded({ postId: target.postId, threadId: comment.parentId, authorId: me }),
            notifyLater({
              type: "comment",
              actorId: me,
              postId: target.postId,
              postAuthorId: target.facts.userId,
              commentId: comment._id,
              parent: parent ? { commentId: parent.id, authorId: parent.facts.userId } : null,
              imageUrl: target.facts.thumbnailUrl,
            }),
          ],
          // A retry whose first answer was lost finds the record by the comment it made.
          { id: comment._id },
        )
      : null;
    await writeOnPost(deps, viewer, target, (t) =>
      deps.db.batch(
        [
          t.guard,
          expectMatch(
            deps.db.users.inBatch.findOne(
              {
                _id: me,
                deletedAt: null,
                shadowBanned: author.shadowBanned ? true : { $ne: true },
                avatarUrl: author.avatarUrl,
              },
              { projection: { _id: 1 } },
            ),
          ),
          ...(parent
            ? [
                expectMatch(
                  deps.db.comments.inBatch.findOne(
                    { _id: parent.id, postId: target.postId, deletedAt: null },
                    { projection: { _id: 1 } },
                  ),
                ),
              ]
            : []),
          deps.db.comments.inBatch.insertOne(comment),
          ...(owed ? [owed.step] : []),
        ],
        { transaction: true },
      ),
    );
    return { comment, shown, owed };
  };

  let written: Awaited<ReturnType<typeof attempt>>;
  try {
    try {
      written = await attempt(standing);
    } catch (error) {
      if (!(error instanceof PreconditionFailedError && error.failedIndex === AUTHOR_STEP)) throw error;
      // The standing was stale (a change whose drop failed): the author as MongoDB has them, and a fresh standing.
      const author = await authorFromStore(deps, me);
      await forgetStanding(deps, viewer.id);
      written = await attempt(author);
    }
  } catch (error) {
    if (error instanceof PreconditionFailedError && error.failedIndex === AUTHOR_STEP)
      throw ApiError.conflict("account_changed", "Your account changed while commenting. Please try again.");
    if (error instanceof PreconditionFailedError && parent && error.failedIndex === PARENT_STEP) throw noSuchParent();
    if (error instanceof DuplicateKeyError && idempotency) {
      return replayComment(deps, await firstAttempt(deps, idempotency.key, idempotency.fingerprint));
    }
    throw error;
  }
  const { comment, shown, owed } = written;
  owed?.committed();
  if (shown) {
    await recordActivity(deps, {
      event: "comment_created",
      actorId: viewer.id,
      ownerId: target.facts.userId.toHexString(),
      postId: target.postId.toHexString(),
    });
  }
  await afterComment(deps, comment, shown, parent?.read ? parent : null);
  return toComment(comment);
}

/** Batch steps of a comment's write: the post's guard, the author's, the parent's (replies), then the insert. */
const AUTHOR_STEP = 1;
const PARENT_STEP = 2;

const noSuchParent = () => ApiError.notFound("No such comment on this post.");

type AuthorFacts = Pick<AccountFacts, "username" | "avatarUrl" | "shadowBanned">;

async function authorFromStore(deps: Deps, me: ObjectId): Promise<AuthorFacts> {
  const user = await deps.db.users.findOne(
    { _id: me, deletedAt: null },
    { projection: { username: 1, avatarUrl: 1, shadowBanned: 1 } },
  );
  if (!user) throw ApiError.notFound("Account not found.");
  return { username: user.username, avatarUrl: user.avatarUrl ?? null, shadowBanned: Boolean(user.shadowBanned) };
}

/**
 * The post a comment goes on, with the guard its transaction carries: as for votes (findWritablePost), except
 * that the author may comment on their own post whatever others see of it, as long as it is live.
 */
async function commentTarget(deps: Deps, viewer: Viewer, postId: string): Promise<WritablePost> {
  const target = await findWritablePost(deps, viewer, postId);
  if (target.facts.userId.toHexString() !== viewer.id) return target;
  const ownLive = expectMatch(
    deps.db.posts.inBatch.findOne(
      { _id: target.postId, userId: target.facts.userId, deletedAt: null },
      { projection: { _id: 1 } },
    ),
  );
  return { ...target, guard: ownLive };
}

/** The comment replied to: its facts from Redis, else from MongoDB (`read`: they are cached after the write). */
async function parentOf(
  deps: Deps,
  parentId: string,
): Promise<{ id: ObjectId; facts: CommentFacts; read: boolean; doc?: CommentDoc } | null> {
  const id = new ObjectId(parentId);
  const cached = await cachedCommentFacts(deps, parentId);
  if (cached) return { id, facts: cached, read: false };
  const doc = await deps.db.comments.findOne(
    { _id: id, deletedAt: null },
    { projection: { postId: 1, parentId: 1, userId: 1 } },
  );
  return doc ? { id, facts: factsOfComment(doc), read: true, doc } : null;
}

/**
 * What the comment's author must see at once, before the answer, in one pipeline: the post's first page of
 * comments dropped (or, for a comment only they see, the mark that keeps them off the shared page), and the new
 * comment's facts (and a parent's read from MongoDB) cached for replies and reports. Best effort.
 */
async function afterComment(
  deps: Deps,
  comment: CommentDoc,
  shown: boolean,
  readParent: { doc?: CommentDoc } | null,
): Promise<void> {
  const postId = comment.postId.toHexString();
  const op = together([
    deleteKeys([deps.keys.commentsFirstPage(postId)]),
    shown
      ? null
      : addToCountedSet(
          deps.keys.commentsOwnHidden(postId),
          comment.userId.toHexString(),
          deps.config.comments.ownHiddenTtlSeconds,
        ),
    rememberCommentFacts(deps, [comment, ...(readParent?.doc ? [readParent.doc] : [])]),
  ]);
  if (op) await fillCache(deps, op, "comment caches");
}

/**
 * A retry whose first attempt committed gets that comment; what the attempt owed is carried out now (its
 * request may have died before doing it), as is what its author had to see at once.
 */
async function replayComment(deps: Deps, first: CommentDoc): Promise<Comment> {
  const shown = !first.authorShadowBanned && first.moderationStatus === "approved";
  if (shown) await settleOwed(deps, first._id);
  await afterComment(deps, first, shown, null);
  return toComment(first);
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
 * or theirs while shadow-banned) is marked on the post and always gets the page from MongoDB. The post's
 * visibility is checked alongside (its cached copy, or MongoDB), so a warm page waits on one Redis call after
 * the rate limit and a cold one on two MongoDB calls (threads, then their replies).
 */
export async function listComments(
  deps: Deps,
  viewer: Viewer | undefined,
  postId: string,
  query: PageQuery,
): Promise<CommentPage> {
  const id = new ObjectId(postId);
  const firstPage = !query.cursor && query.limit === FIRST_PAGE_SIZE;
  const key = deps.keys.commentsFirstPage(postId);
  const page = async (): Promise<CommentPage> => {
    const relations = await relationsFor(deps, viewer);
    if (firstPage) {
      const read = await readCache(
        deps,
        both(getValue<CommentPage>(key), areMembers(deps.keys.commentsOwnHidden(postId), viewer ? [viewer.id] : [])),
        "comments page",
      );
      if (read && !read[1][0]) return withoutBlocked(read[0] ?? (await cachePublicPage(deps, id, key)), relations);
    }
    return commentPage(deps, id, viewer?.id, relations.blockedIds(), query);
  };
  // The post and its page are looked up at once; the page is answered only once the post is found visible.
  const [, comments] = await Promise.all([findVisiblePost(deps, viewer, postId), page()]);
  return comments;
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
  // What a reply to (or a report of) any of them needs, cached after the answer.
  const facts = rememberCommentFacts(deps, [...tops, ...replies]);
  if (facts) afterResponse(() => fillCache(deps, facts, "comment facts"));
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
