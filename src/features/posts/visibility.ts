import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { PostDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
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
  const [post, relations] = await Promise.all([
    deps.db.posts.findOne({ _id: new ObjectId(postId), deletedAt: null }),
    relationsFor(deps, viewer),
  ]);
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

/** The filter every public feed applies: approved, public, not deleted, author not shadow-banned. */
export const PUBLIC_FEED_FILTER = {
  deletedAt: null,
  moderationStatus: "approved",
  authorShadowBanned: false,
  visibility: "public",
} as const;
