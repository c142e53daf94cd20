import { bestEffort } from "../../core/best-effort";
import { fillCache, readCache } from "../../core/cache";
import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { PostDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { deleteKeys, getDocument, runOp, setDocument } from "../../platform/redis-ops";
import { relationsFor } from "../relations/service";

/**
 * Who may see a post: its author always (unless deleted); anyone else only when it is approved, its author
 * is not shadow-banned, and it is public, or followers-only and they follow the author.
 */
export function canSee(post: PostDoc, viewerId: string | null, followsAuthor: boolean): boolean {
  if (post.deletedAt) return false;
  if (viewerId && post.userId.toHexString() === viewerId) return true;
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
  if (!post || relations.blockedWith(post.userId.toHexString())) throw ApiError.notFound("No such post.");
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

/**
 * A live post, from its cached copy in Redis (`post:doc:{id}`, POST_CACHE_TTL_SECONDS) or MongoDB, which then
 * fills the cache. Every change to what a post shows drops the copy (`forgetPosts`); counts that move all the
 * time (votes, views) are read live beside it, and the rest may lag by at most the TTL. Without Redis, MongoDB.
 */
export async function loadPost(deps: Deps, postId: string): Promise<PostDoc | null> {
  const key = deps.keys.postDoc(postId);
  const cached = await readCache(deps, getDocument<PostDoc>(key), "post");
  if (cached) return cached.deletedAt ? null : cached;
  const post = await deps.db.posts.findOne({ _id: new ObjectId(postId), deletedAt: null });
  if (post) await fillCache(deps, setDocument(key, post, deps.config.posts.cacheTtlSeconds), "post");
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

/** The filter every public feed applies: approved, public, not deleted, author not shadow-banned. */
export const PUBLIC_FEED_FILTER = {
  deletedAt: null,
  moderationStatus: "approved",
  authorShadowBanned: false,
  visibility: "public",
} as const;
