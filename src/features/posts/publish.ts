import { bestEffort } from "../../core/best-effort";
import { ApiError } from "../../core/errors";
import { idempotencyMismatch } from "../../core/idempotency";
import { forgetSelfView } from "../../core/standing";
import type { Viewer } from "../../core/viewer";
import type { PostDoc, RequestKey, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import type { ObjectId } from "../../platform/ids";
import { deleteKeys, runOp, runOps, seedCounter } from "../../platform/redis-ops";
import { recordActivity } from "../analytics/activity";
import { scoresOf } from "../ranking/scores";
import { validateReferral } from "../referrals/service";
import { screen } from "../screening/rules";
import { type CreatePostBody, normalizeTags, type Post, toPost } from "./schema";

/**
 * Drops the cached first pages of the public feeds (a post appeared, went or was hidden). Best effort: the
 * change stands, and a page left behind expires within its FEED_*_CACHE_TTL_SECONDS.
 */
export async function dropCachedFeedPages(deps: Deps): Promise<void> {
  await bestEffort(deps, "feed cache drop", () => runOp(deps.redis, deleteKeys(deps.keys.publicFeedFirstPages())));
}

/** What a post shows and where it came from: a generation, or the author's uploads. */
export type PostContent = Pick<
  PostDoc,
  | "generationId"
  | "prompt"
  | "refinedPrompt"
  | "imageUrl"
  | "thumbnailUrl"
  | "imageWidth"
  | "imageHeight"
  | "blurhash"
  | "model"
  | "modelVersion"
  | "generationTimeMs"
  | "generationParams"
  | "hasWatermark"
  | "nsfwScore"
  | "mediaType"
> &
  Partial<Pick<PostDoc, "mediaIds" | "video">>;

/** A new post of `author` showing `content`, screened by the moderation rules, with the body's choices. */
export function newPostDoc(
  deps: Deps,
  postId: ObjectId,
  author: UserDoc,
  body: Pick<CreatePostBody, "tags" | "category" | "visibility" | "shareCaption">,
  content: PostContent,
): PostDoc {
  const now = deps.clock.now();
  // The automatic hook: a banned word in the prompt holds the post for review, a high NSFW score flags it.
  const screening = screen({ text: content.prompt, nsfwScore: content.nsfwScore }, deps.config.posts, now);
  return {
    _id: postId,
    userId: author._id,
    username: author.username,
    userAvatarUrl: author.avatarUrl ?? null,
    userTier: author.tier,
    authorShadowBanned: Boolean(author.shadowBanned),
    ...content,
    voteCount: 0,
    commentCount: 0,
    shareCount: 0,
    viewCount: 0,
    // A new post's hot score is its recency alone (see ranking/scores.ts), so `hot` shows it straight away.
    ...scoresOf({ votes: 0, comments: 0, shares: 0, views: 0 }, now, now, deps.config.ranking),
    gemMultiplier: 1,
    tags: normalizeTags(body.tags),
    category: body.category ?? null,
    nsfw: (content.nsfwScore ?? 0) > deps.config.posts.nsfwFlagThreshold,
    moderationStatus: screening.status,
    moderationHold: screening.hold,
    moderationReviewedAt: null,
    moderationReviewedBy: "auto",
    moderationNotes: null,
    shareableUrl: `${deps.config.posts.shareBaseUrl}/${postId.toHexString()}`,
    shareCaption: body.shareCaption ?? null,
    visibility: body.visibility ?? "public",
    isPinned: false,
    createdAt: now,
    updatedAt: now,
    deletedAt: null,
  };
}

/**
 * Writes a new post and its author's `totalPosts` as one ordered batch (the count moves exactly when a post was
 * made), then what publishing owes: the activity event, the caches, a pending referral. A write refused by a
 * unique index lost to a concurrent request for the same post (the job's post id, or the Idempotency-Key): the
 * winner is answered to a retry with that key, anyone else gets a 409.
 */
export async function publishPost(
  deps: Deps,
  viewer: Viewer,
  author: UserDoc,
  post: PostDoc,
  requestKey: RequestKey | undefined,
): Promise<Post> {
  const written = await deps.db.batchUnique([
    deps.db.posts.inBatch.insertOne(post),
    deps.db.users.inBatch.updateOne({ _id: author._id }, { $inc: { totalPosts: 1 } }),
  ]);
  if (!written.applied) {
    const winner =
      (await deps.db.posts.findOne({ _id: post._id })) ??
      (requestKey ? await deps.db.posts.findOne({ "idempotency.key": requestKey.key }) : null);
    if (winner) return replayOrConflict(winner, requestKey);
    throw alreadyPosted();
  }
  await recordActivity(deps, {
    event: "post_created",
    actorId: viewer.id,
    ownerId: viewer.id,
    postId: post._id.toHexString(),
    at: post.createdAt,
  });
  await Promise.all([
    forgetSelfView(deps, viewer.id),
    announcePost(deps, post._id.toHexString()),
    // Without Redis the referral stays pending; the referred user's next trigger (a later check-in) validates it.
    author.referredBy
      ? bestEffort(deps, "referral validation", () => validateReferral(deps, author._id, "first_post"))
      : null,
  ]);
  return toPost(post, false);
}

export const alreadyPosted = () => ApiError.conflict("already_posted", "This generation has already been posted.");

/** The request's post: the first answer again for a retry with the key it was made with, else a 409. */
export function replayOrConflict(post: PostDoc, requestKey: RequestKey | undefined): Post {
  if (!requestKey || post.idempotency?.key !== requestKey.key) throw alreadyPosted();
  if (post.idempotency.fingerprint !== requestKey.fingerprint) throw idempotencyMismatch();
  return toPost(post, false);
}

/**
 * One Redis round trip after a post is created: the cached first pages that lack it go, and its live vote counter
 * starts at 0, so the first votes, however many arrive at once, only increment it (a counter seeded from a count
 * while votes race can be off by one until the next `counters` run). Best effort, like every cache drop.
 */
async function announcePost(deps: Deps, postId: string): Promise<void> {
  await bestEffort(deps, "feed cache drop and live counter", () =>
    runOps(deps.redis, {
      stale: deleteKeys(deps.keys.publicFeedFirstPages()),
      votes: seedCounter(deps.keys.postVotes(postId), 0, deps.config.votes.counterTtlSeconds),
    }),
  );
}
