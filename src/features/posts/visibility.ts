import { fillCache, readCache } from "../../core/cache";
import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { PostDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { deleteKeys, getDocument, runOp, setDocument } from "../../platform/redis-ops";
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
 * time (votes, views) are read live beside it, and the rest may lag by at most the TTL.
 */
export async function loadPost(deps: Deps, postId: string): Promise<PostDoc | null> {
  const key = deps.keys.postDoc(postId);
  const cached = await readCache(deps, getDocument<PostDoc>(key), "post");
  if (cached) return cached.deletedAt ? null : cached;
  const post = await deps.db.posts.findOne({ _id: new ObjectId(postId), deletedAt: null });
  if (post) await fillCache(deps, setDocument(key, post, deps.config.posts.cacheTtlSeconds), "post");
  return post;
}

/** Drops the cached copies of these posts (after a change to what they show). */
export async function forgetPosts(deps: Deps, postIds: (string | ObjectId)[]): Promise<void> {
  const keys = postIds.map((id) => deps.keys.postDoc(typeof id === "string" ? id : id.toHexString()));
  await runOp(deps.redis, deleteKeys(keys));
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
