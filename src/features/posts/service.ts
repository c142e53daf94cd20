import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { PostDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { addMembers, countInWindow, deleteKeys, getValue, runOp, runOps } from "../../platform/redis-ops";
import { validateReferral } from "../referrals/service";
import { screen } from "../screening/rules";
import { type CreatePostBody, normalizeTags, type Post, type ShareResult, toPost, type UpdatePostBody } from "./schema";
import { votedByViewer } from "./viewer-state";
import { findVisiblePost } from "./visibility";

/** Drops the cached first pages of the public feeds (a post appeared, went or was hidden). */
export async function dropCachedFeedPages(deps: Deps): Promise<void> {
  await runOp(deps.redis, deleteKeys(deps.keys.publicFeedFirstPages()));
}

/**
 * Publishes a completed generation as a post, once per job. The job is claimed for posting by a conditional
 * update that also fixes the post's id in advance, so concurrent requests produce one post, and a request
 * that crashed between claim and insert is completed by the next one with the same id.
 */
export async function createPost(deps: Deps, viewer: Viewer, body: CreatePostBody): Promise<Post> {
  const me = new ObjectId(viewer.id);
  const jobId = new ObjectId(body.generationId);
  const jobs = deps.db.generationJobs;
  const [claimed, author] = await Promise.all([
    jobs.findOneAndUpdate(
      { _id: jobId, userId: me, status: "completed", postId: null },
      { $set: { postId: newObjectId() } },
      { returnDocument: "after" },
    ),
    deps.db.users.findOne({ _id: me, deletedAt: null }),
  ]);
  if (!author) throw ApiError.notFound("Account not found.");
  let job = claimed;
  if (!job) {
    job = await jobs.findOne({ _id: jobId, userId: me });
    if (!job) throw ApiError.notFound("No such generation.");
    if (job.status !== "completed")
      throw ApiError.conflict("generation_not_ready", "The generation has not completed.");
    if (!job.postId || (await deps.db.posts.findOne({ _id: job.postId }, { projection: { _id: 1 } }))) {
      throw ApiError.conflict("already_posted", "This generation has already been posted.");
    }
  }
  const now = deps.clock.now();
  const postId = job.postId as ObjectId;
  // The automatic hook: a banned word in the prompt holds the post for review, a high NSFW score flags it.
  const screening = screen({ text: job.prompt, nsfwScore: job.nsfwScore }, deps.config.posts, now);
  const post: PostDoc = {
    _id: postId,
    userId: me,
    username: author.username,
    userAvatarUrl: author.avatarUrl ?? null,
    userTier: author.tier,
    authorShadowBanned: Boolean(author.shadowBanned),
    generationId: jobId,
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
    hasWatermark: job.hasWatermark ?? author.tier === "free",
    voteCount: 0,
    commentCount: 0,
    shareCount: 0,
    viewCount: 0,
    engagementScore: 0,
    trendingScore: 0,
    hotScore: 0,
    gemMultiplier: 1,
    tags: normalizeTags(body.tags),
    category: body.category ?? null,
    nsfw: (job.nsfwScore ?? 0) > deps.config.posts.nsfwFlagThreshold,
    nsfwScore: job.nsfwScore ?? null,
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
  if (!(await deps.db.posts.insertUnique(post))) {
    throw ApiError.conflict("already_posted", "This generation has already been posted.");
  }
  await Promise.all([
    deps.db.users.updateOne({ _id: me }, { $inc: { totalPosts: 1 } }),
    dropCachedFeedPages(deps),
    author.referredBy ? validateReferral(deps, me, "first_post") : null,
  ]);
  return toPost(post, false);
}

/**
 * A post for its viewer. Opening someone else's post counts a view: the live vote count is read and the view
 * recorded in one Redis pipeline (`post:views:{id}` holds views not yet written to MongoDB).
 */
export async function getPost(deps: Deps, viewer: Viewer | undefined, postId: string): Promise<Post> {
  const post = await findVisiblePost(deps, viewer, postId);
  const isAuthor = viewer?.id === post.userId.toHexString();
  const liveVotes = getValue<number | string>(deps.keys.postVotes(postId));
  const [voted, counters] = await Promise.all([
    viewer ? votedByViewer(deps, viewer.id, [post._id]) : Promise.resolve(new Set<string>()),
    isAuthor
      ? runOps(deps.redis, { liveVotes }).then((r) => ({ ...r, pendingViews: 0 }))
      : runOps(deps.redis, {
          liveVotes,
          pendingViews: countInWindow(deps.keys.postViews(postId), deps.config.votes.counterTtlSeconds),
          dirty: addMembers(deps.keys.countersDirtyPosts(), [postId]),
        }),
  ]);
  const live = counters.liveVotes == null ? undefined : Number(counters.liveVotes);
  const shown = toPost(post, voted.has(postId), live);
  // This view included, plus views counted since the last sync.
  return { ...shown, viewCount: post.viewCount + counters.pendingViews };
}

async function ownPost(deps: Deps, viewer: Viewer, postId: string): Promise<PostDoc> {
  const post = await deps.db.posts.findOne({
    _id: new ObjectId(postId),
    userId: new ObjectId(viewer.id),
    deletedAt: null,
  });
  if (!post) throw ApiError.notFound("No such post.");
  return post;
}

export async function updatePost(deps: Deps, viewer: Viewer, postId: string, patch: UpdatePostBody): Promise<Post> {
  const post = await ownPost(deps, viewer, postId);
  const now = deps.clock.now();
  const set: Record<string, unknown> = { updatedAt: now };
  if (patch.tags !== undefined) set.tags = normalizeTags(patch.tags);
  if (patch.category !== undefined) set.category = patch.category;
  if (patch.visibility !== undefined) set.visibility = patch.visibility;
  if (patch.isPinned === true && !post.isPinned) {
    await claimPin(deps, post);
    Object.assign(set, { isPinned: true, pinnedAt: now });
  } else if (patch.isPinned === false && post.isPinned) {
    await deps.db.users.updateOne({ _id: post.userId }, { $pull: { pinnedPostIds: post._id } });
    Object.assign(set, { isPinned: false, pinnedAt: null });
  }
  const updated = await deps.db.posts.findOneAndUpdate(
    { _id: new ObjectId(postId), userId: new ObjectId(viewer.id), deletedAt: null },
    { $set: set },
    { returnDocument: "after" },
  );
  if (!updated) throw ApiError.notFound("No such post.");
  return getPost(deps, viewer, postId);
}

/**
 * Takes one of the author's pin slots for this post, in one conditional update on the user, so concurrent pins
 * can never pass the cap: an author with POST_MAX_PINNED pinned posts gets a 409 `pin_limit` (they unpin one
 * first; the app decides which, rather than the oldest silently dropping).
 */
async function claimPin(deps: Deps, post: PostDoc): Promise<void> {
  const max = deps.config.posts.maxPinned;
  const claimed = await deps.db.users.updateOne(
    { _id: post.userId, pinnedPostIds: { $ne: post._id }, [`pinnedPostIds.${max - 1}`]: { $exists: false } },
    { $push: { pinnedPostIds: post._id } },
  );
  if (claimed.matchedCount > 0) return;
  const already = await deps.db.users.findOne(
    { _id: post.userId, pinnedPostIds: post._id },
    { projection: { _id: 1 } },
  );
  if (!already) throw ApiError.conflict("pin_limit", `At most ${max} posts can be pinned; unpin one first.`);
}

/** Soft delete by the author; `totalPosts` moves only for the request that actually deleted it. */
export async function deletePost(deps: Deps, viewer: Viewer, postId: string): Promise<void> {
  const me = new ObjectId(viewer.id);
  const deleted = await deps.db.posts.findOneAndUpdate(
    { _id: new ObjectId(postId), userId: me, deletedAt: null },
    { $set: { deletedAt: deps.clock.now(), isPinned: false, pinnedAt: null } },
  );
  if (!deleted) throw ApiError.notFound("No such post.");
  await Promise.all([
    deps.db.users.updateOne({ _id: me }, { $inc: { totalPosts: -1 }, $pull: { pinnedPostIds: deleted._id } }),
    dropCachedFeedPages(deps),
  ]);
}

export async function sharePost(deps: Deps, viewer: Viewer | undefined, postId: string): Promise<ShareResult> {
  const post = await findVisiblePost(deps, viewer, postId);
  const updated = await deps.db.posts.findOneAndUpdate(
    { _id: post._id },
    { $inc: { shareCount: 1 } },
    { returnDocument: "after", projection: { shareCount: 1, shareableUrl: 1 } },
  );
  return { shareableUrl: post.shareableUrl, shareCount: updated?.shareCount ?? post.shareCount + 1 };
}
