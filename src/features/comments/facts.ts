import { readCache } from "../../core/cache";
import type { CommentDoc } from "../../db";
import type { Deps } from "../../deps";
import { isObjectIdHex, type ObjectId } from "../../platform/ids";
import { both, getDocument, type RedisOp, setDocument } from "../../platform/redis-ops";

/**
 * What never changes about a comment: the post it is on, the top of its thread (itself, for a top-level
 * comment) and its author. Cached as `comment:facts:{id}` for COMMENT_FACTS_TTL_SECONDS when a comment is made
 * or read from MongoDB, so a reply or a report needs no read to find them; whether the comment is still there
 * (not deleted, not removed) is not a fact, and the write's own transaction checks it.
 */
export interface CommentFacts {
  postId: ObjectId;
  threadId: ObjectId;
  userId: ObjectId;
}

export function factsOfComment(comment: Pick<CommentDoc, "_id" | "postId" | "parentId" | "userId">): CommentFacts {
  return { postId: comment.postId, threadId: comment.parentId ?? comment._id, userId: comment.userId };
}

/** The comment's facts from Redis; null when they are not cached (or Redis cannot answer). */
export async function cachedCommentFacts(deps: Deps, commentId: string): Promise<CommentFacts | null> {
  if (!isObjectIdHex(commentId)) return null;
  return readCache(deps, getDocument<CommentFacts>(deps.keys.commentFacts(commentId)), "comment facts");
}

/** The Redis operation that caches these comments' facts (null for none), to run with other cache work. */
export function rememberCommentFacts(
  deps: Deps,
  comments: Pick<CommentDoc, "_id" | "postId" | "parentId" | "userId">[],
): RedisOp<unknown> | null {
  const ttl = deps.config.comments.factsTtlSeconds;
  const sets: RedisOp<unknown>[] = comments.map((c) =>
    setDocument(deps.keys.commentFacts(c._id.toHexString()), factsOfComment(c), ttl),
  );
  return together(sets);
}

/** Several operations as one (one pipeline); null for none. */
export function together(ops: (RedisOp<unknown> | null)[]): RedisOp<unknown> | null {
  return ops.reduce<RedisOp<unknown> | null>((all, op) => (!op ? all : all ? both(all, op) : op), null);
}
