import { ApiError } from "../../core/errors";
import { idempotencyMismatch } from "../../core/idempotency";
import type { Viewer } from "../../core/viewer";
import type { PostDoc, RequestKey, Tier, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import type { ObjectId } from "../../platform/ids";
import { recordActivity } from "../analytics/activity";
import type { GenerationPostFacts } from "../generations/post-facts";
import { scoresOf } from "../ranking/scores";
import { screen } from "../screening/rules";
import { announceAfterResponse } from "./announce";
import { afterMoves, firstPublicationFields, SLOT_TAKEN, UNSCHEDULED, withScheduleSlots } from "./lifecycle";
import { type CreatePostBody, normalizeTags, type Post, toPost } from "./schema";

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

/**
 * A new post of `author` showing `content`, with the body's choices, as a draft: `insertNewPost` publishes or
 * schedules it. The automatic screening runs now, so a draft shows its author what it would get; the hold
 * itself starts at publication (lifecycle.ts), with the rules of that day.
 */
export function newPostDoc(
  deps: Deps,
  postId: ObjectId,
  author: Pick<UserDoc, "_id" | "username" | "avatarUrl" | "tier" | "shadowBanned">,
  body: Pick<CreatePostBody, "tags" | "category" | "visibility" | "shareCaption">,
  content: PostContent,
  requestKey: RequestKey | undefined,
): PostDoc {
  const now = deps.clock.now();
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
    moderationHold: null,
    moderationReviewedAt: null,
    moderationReviewedBy: "auto",
    moderationNotes: null,
    shareableUrl: `${deps.config.posts.shareBaseUrl}/${postId.toHexString()}`,
    shareCaption: body.shareCaption ?? null,
    visibility: body.visibility ?? "public",
    isPinned: false,
    status: "draft",
    ...UNSCHEDULED,
    publishedAt: null,
    saveCount: 0,
    countedTags: [],
    createdAt: now,
    updatedAt: now,
    deletedAt: null,
    ...(requestKey ? { idempotency: requestKey } : {}),
  };
}

/**
 * Writes a new post in the state the body asks for (published by default, a draft, or scheduled). A published
 * post and the author's `totalPosts` are one write (an ordered batch), so the count moves exactly when a post
 * was made; a scheduled one holds its slots (lifecycle.ts) in its insert. A write refused by a unique index
 * lost to a concurrent request for the same post (the job's post id, or the Idempotency-Key): the winner is
 * answered to a retry with that key, anyone else gets a 409. Publishing then owes what lifecycle.ts says
 * (caches, a referral, the followers' notification after the answer).
 */
export async function insertNewPost(
  deps: Deps,
  viewer: Viewer,
  author: UserDoc,
  draft: PostDoc,
  body: Pick<CreatePostBody, "status" | "publishAt">,
  requestKey: RequestKey | undefined,
): Promise<Post> {
  const status = body.status ?? "published";
  const now = deps.clock.now();
  const alreadyMade = async (): Promise<Post> => {
    const winner =
      (await deps.db.posts.findOne({ _id: draft._id })) ??
      (requestKey ? await deps.db.posts.findOne({ "idempotency.key": requestKey.key }) : null);
    if (winner) return replayOrConflict(winner, requestKey);
    throw alreadyPosted();
  };
  let post: PostDoc;
  if (status === "scheduled" && body.publishAt) {
    const scheduled = await withScheduleSlots(deps, draft, body.publishAt, async (fields) => {
      const candidate = { ...draft, ...fields };
      const written = await deps.db.batchUnique([deps.db.posts.inBatch.insertOne(candidate)]);
      if (written.applied) return candidate;
      // The slot indexes start with userId; any other refusal means this post was made already.
      return written.duplicateOn === "userId" ? SLOT_TAKEN : null;
    });
    if (!scheduled) return alreadyMade();
    post = scheduled;
  } else {
    post = status === "published" ? { ...draft, ...firstPublicationFields(deps, draft, now) } : draft;
    const written = await deps.db.batchUnique([
      deps.db.posts.inBatch.insertOne(post),
      ...(status === "published"
        ? [deps.db.users.inBatch.updateOne({ _id: author._id }, { $inc: { totalPosts: 1 } })]
        : []),
    ]);
    if (!written.applied) return alreadyMade();
  }
  return afterNewPost(deps, viewer, post, Boolean(author.referredBy));
}

/**
 * What a new post owes once written: its analytics event and, when published, what a publication owes
 * (lifecycle.ts: caches, the referral of a `referred` author) and the followers' announcement after the answer.
 */
export async function afterNewPost(deps: Deps, viewer: Viewer, post: PostDoc, referred: boolean): Promise<Post> {
  await recordActivity(deps, {
    event: "post_created",
    actorId: viewer.id,
    ownerId: viewer.id,
    postId: post._id.toHexString(),
    at: post.createdAt,
  });
  if (post.status === "published") {
    await afterMoves(deps, [{ from: "draft", post, referred, counted: true }]);
    announceAfterResponse(deps, [post._id]);
  }
  return toPost(post, false);
}

/** What a post shows of a completed generation; `authorTier` decides the watermark of a job from before it was kept. */
export function contentOfJob(job: GenerationPostFacts, authorTier: Tier): PostContent {
  return {
    generationId: job._id,
    prompt: job.prompt,
    refinedPrompt: job.refinedPrompt ?? null,
    imageUrl: job.imageUrl ?? "",
    thumbnailUrl: job.thumbnailUrl ?? job.imageUrl ?? "",
    imageWidth: job.imageWidth ?? 0,
    imageHeight: job.imageHeight ?? 0,
    blurhash: job.blurhash ?? null,
    model: job.model,
    modelVersion: job.modelVersion ?? null,
    generationTimeMs: job.generationTimeMs ?? null,
    generationParams: {
      steps: job.steps ?? null,
      cfgScale: job.cfgScale ?? null,
      seed: job.seed ?? null,
      negativePrompt: job.negativePrompt ?? null,
    },
    hasWatermark: job.hasWatermark ?? authorTier === "free",
    nsfwScore: job.nsfwScore ?? null,
    mediaType: "image",
  };
}

export const alreadyPosted = () => ApiError.conflict("already_posted", "This generation has already been posted.");

/** The request's post: the first answer again for a retry with the key it was made with, else a 409. */
export function replayOrConflict(post: PostDoc, requestKey: RequestKey | undefined): Post {
  if (!requestKey || post.idempotency?.key !== requestKey.key) throw alreadyPosted();
  if (post.idempotency.fingerprint !== requestKey.fingerprint) throw idempotencyMismatch();
  return toPost(post, false);
}
