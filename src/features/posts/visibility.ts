import { bestEffort } from "../../core/best-effort";
import { fillCache, readCache } from "../../core/cache";
import { ApiError } from "../../core/errors";
import type { Relations } from "../../core/relations";
import type { Viewer } from "../../core/viewer";
import type { PostDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { type BatchStep, expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import { both, deleteKeys, getDocument, runOp, setDocument, takeDocument } from "../../platform/redis-ops";
import { relationsFor } from "../relations/service";

/**
 * Who may see a post: its author always (unless deleted); anyone else only when it is published and approved,
 * its author is not shadow-banned, and it is public, or followers-only and they follow the author. Drafts,
 * scheduled and archived posts are the author's alone.
 */
export function canSee(post: PostDoc, viewerId: string | null, followsAuthor: boolean): boolean {
  if (post.deletedAt) return false;
  if (viewerId && post.userId.toHexString() === viewerId) return true;
  if ((post.status ?? "published") !== "published") return false;
  if (post.moderationStatus !== "approved" || post.authorShadowBanned) return false;
  if (post.visibility === "public") return true;
  return post.visibility === "followers" && followsAuthor;
}

/**
 * A post the viewer may see, or the same 404 for missing and forbidden ones — including a post by someone the
 * viewer is blocked with, either way (their relations were read with the rate limit, so that costs nothing).
 */
export async function findVisiblePost(deps: Deps, viewer: Viewer | undefined, postId: string): Promise<PostDoc> {
  const [post, relations] = await Promise.all([loadPost(deps, postId), relationsFor(deps, viewer)]);
  if (!post) throw ApiError.notFound("No such post.");
  return visibleOf(deps, viewer, relations, post);
}

/**
 * A live post, from its cached copy in Redis (`post:doc:{id}`, POST_CACHE_TTL_SECONDS) or MongoDB, which then
 * fills the cache. Every change to what a post shows drops the copy (`forgetPosts`); counts that move all the
 * time (votes, views) are read live beside it, and the rest may lag by at most the TTL. Without Redis, MongoDB.
 */
export async function loadPost(deps: Deps, postId: string): Promise<PostDoc | null> {
  const key = deps.keys.postDoc(postId);
  const cached = await readCache(deps, getDocument<PostDoc>(key), "post");
  if (cached) return cached.deletedAt ? null : cached;
  return postFromStore(deps, postId);
}

/** A live post from MongoDB, filling its cached copy and its lasting facts. */
async function postFromStore(deps: Deps, postId: string): Promise<PostDoc | null> {
  const key = deps.keys.postDoc(postId);
  const post = await deps.db.posts.findOne({ _id: new ObjectId(postId), deletedAt: null });
  if (post) {
    const { cacheTtlSeconds, factsTtlSeconds } = deps.config.posts;
    await fillCache(
      deps,
      both(
        setDocument(key, post, cacheTtlSeconds),
        setDocument(deps.keys.postFacts(postId), factsOf(post), factsTtlSeconds),
      ),
      "post",
    );
  }
  return post;
}

/** What never changes about a post: who wrote it and its image (kept longer than the post's cached copy). */
export interface PostFacts {
  userId: ObjectId;
  thumbnailUrl: string | null;
}

function factsOf(post: PostDoc): PostFacts {
  return { userId: post.userId, thumbnailUrl: post.thumbnailUrl ?? null };
}

/**
 * The post's cached copy and lasting facts, as far as Redis has them (no MongoDB read; a copy of a deleted post
 * gives neither): for writes with visibility rules of their own (reports), which check the rest in their transaction.
 */
export async function cachedPost(
  deps: Deps,
  postId: string,
): Promise<{ post: PostDoc | null; facts: PostFacts | null }> {
  const cached = await readCache(
    deps,
    both(getDocument<PostDoc>(deps.keys.postDoc(postId)), getDocument<PostFacts>(deps.keys.postFacts(postId))),
    "post",
  );
  const [post, facts] = cached ?? [null, null];
  if (post?.deletedAt) return { post: null, facts: null };
  return { post, facts: post ? factsOf(post) : facts };
}

/**
 * A post a write is about to act on in its one Data API call, with the guard that call must carry. From its
 * cached copy when there is one (seen as readers see it; `post`), or else from its lasting facts, which its
 * copy outlives (comments and shares drop the copy): then `post` is null and the guard also requires the post to
 * be public (nobody needs to follow anyone to see it). When even those are gone, from MongoDB.
 */
export interface WritablePost {
  postId: ObjectId;
  post: PostDoc | null;
  facts: PostFacts;
  guard: BatchStep<unknown>;
}

export async function findWritablePost(deps: Deps, viewer: Viewer, postId: string): Promise<WritablePost> {
  const id = new ObjectId(postId);
  const [cached, relations] = await Promise.all([
    readCache(
      deps,
      both(getDocument<PostDoc>(deps.keys.postDoc(postId)), getDocument<PostFacts>(deps.keys.postFacts(postId))),
      "post",
    ),
    relationsFor(deps, viewer),
  ]);
  const [doc, facts] = cached ?? [null, null];
  if (doc || !facts) {
    const live = doc ? (doc.deletedAt ? null : doc) : await postFromStore(deps, postId);
    if (!live) throw ApiError.notFound("No such post.");
    const post = await visibleOf(deps, viewer, relations, live);
    return { postId: id, post, facts: factsOf(post), guard: stillShown(deps, post) };
  }
  if (relations.blockedWith(facts.userId.toHexString())) throw ApiError.notFound("No such post.");
  const guard = expectMatch(
    deps.db.posts.inBatch.findOne({ _id: id, ...SHOWN, visibility: "public" }, { projection: { _id: 1 } }),
  );
  return { postId: id, post: null, facts, guard };
}

/**
 * Runs a write whose first batch step is `target.guard`. A guard that only lasting facts vouched for may fail
 * for a post the viewer can still see (followers only, say): that post is then looked up and the write runs once
 * more with its full guard. A guard that fails on a post seen whole means it went or was hidden since: 404.
 */
export async function writeOnPost<T>(
  deps: Deps,
  viewer: Viewer,
  target: WritablePost,
  write: (target: WritablePost) => Promise<T>,
): Promise<T> {
  try {
    return await write(target);
  } catch (error) {
    if (!(error instanceof PreconditionFailedError && error.failedIndex === 0)) throw error;
    if (target.post) throw ApiError.notFound("No such post.");
  }
  const post = await findVisiblePost(deps, viewer, target.postId.toHexString());
  try {
    return await write({ ...target, post, facts: factsOf(post), guard: stillShown(deps, post) });
  } catch (error) {
    if (error instanceof PreconditionFailedError && error.failedIndex === 0) throw ApiError.notFound("No such post.");
    throw error;
  }
}

/** The post if the viewer may see it (their relations come with the rate limit), else a missing one's 404. */
async function visibleOf(
  deps: Deps,
  viewer: Viewer | undefined,
  relations: Relations,
  post: PostDoc,
): Promise<PostDoc> {
  if (relations.blockedWith(post.userId.toHexString())) throw ApiError.notFound("No such post.");
  let follows = false;
  if (post.visibility === "followers" && viewer && viewer.id !== post.userId.toHexString()) {
    follows = Boolean(
      await deps.db.follows.findOne(
        { followerId: new ObjectId(viewer.id), followingId: post.userId },
        { projection: { _id: 1 } },
      ),
    );
  }
  if (!canSee(post, viewer?.id ?? null, follows)) throw ApiError.notFound("No such post.");
  return post;
}

const docKeys = (deps: Deps, postIds: (string | ObjectId)[]) =>
  postIds.map((id) => deps.keys.postDoc(typeof id === "string" ? id : id.toHexString()));

/**
 * Drops the cached copies of these posts after a change to what they show. Best effort: the change stands, and
 * a copy Redis kept through a failure here lags by at most POST_CACHE_TTL_SECONDS.
 */
export async function forgetPosts(deps: Deps, postIds: (string | ObjectId)[]): Promise<void> {
  await bestEffort(deps, "post cache drop", () => runOp(deps.redis, deleteKeys(docKeys(deps, postIds))));
}

/**
 * Drops the cached copies before a change that may hide a post (its owner deleting it or narrowing who sees
 * it), so that change never waits on a stale copy: without Redis the change is refused (503) before anything
 * is written. `forgetPosts` after the write still drops a copy a reader refilled meanwhile.
 */
export async function forgetPostsBeforeHiding(deps: Deps, postIds: (string | ObjectId)[]): Promise<void> {
  await runOp(deps.redis, deleteKeys(docKeys(deps, postIds)));
}

/**
 * A post its owner is about to change: its cached copy is read and dropped in one Redis step (so, like
 * `forgetPostsBeforeHiding`, without Redis the change is refused before anything is written), and MongoDB is
 * read only when there was no copy. Null when missing, deleted or not the owner's.
 */
export async function takeOwnPost(deps: Deps, ownerId: string, postId: string): Promise<PostDoc | null> {
  const cached = await runOp(deps.redis, takeDocument<PostDoc>(deps.keys.postDoc(postId)));
  const post = cached ?? (await deps.db.posts.findOne({ _id: new ObjectId(postId), deletedAt: null }));
  return post && !post.deletedAt && post.userId.toHexString() === ownerId ? post : null;
}

/** What every list others read asks of a post: published (not a draft, scheduled or archived) and approved. */
export const SHOWN_TO_OTHERS = { status: "published", moderationStatus: "approved" } as const;

/** The filter every public feed applies: published, approved, public, not deleted, author not shadow-banned. */
export const PUBLIC_FEED_FILTER = {
  status: "published",
  deletedAt: null,
  moderationStatus: "approved",
  authorShadowBanned: false,
  visibility: "public",
} as const;

/**
 * A guard for a write's own transaction on a post found visible: it is still live and shown to others. The
 * visibility check ran on the cached copy, which an outage may have kept past a deletion or a hide; as a step of
 * the write's batch it costs no call of its own.
 */
export function stillShown(deps: Deps, post: PostDoc): BatchStep<unknown> {
  return expectMatch(deps.db.posts.inBatch.findOne({ _id: post._id, ...SHOWN }, { projection: { _id: 1 } }));
}

/** A post others may see, as far as its own state goes (published, live, approved, its author not shadow-banned). */
const SHOWN = {
  status: "published",
  deletedAt: null,
  moderationStatus: "approved",
  authorShadowBanned: { $ne: true },
} as const;
