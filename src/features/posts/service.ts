import { bestEffort } from "../../core/best-effort";
import { ApiError } from "../../core/errors";
import type { IdempotentRequest } from "../../core/idempotency";
import { forgetSelfView } from "../../core/standing";
import type { Viewer } from "../../core/viewer";
import type { PostDoc } from "../../db";
import type { Deps } from "../../deps";
import { hashIp } from "../../platform/crypto";
import { newObjectId, ObjectId } from "../../platform/ids";
import { countViewOnce, getValue, runOps } from "../../platform/redis-ops";
import { recordActivity } from "../analytics/activity";
import { markEngaged } from "../ranking/engagement";
import { alreadyPosted, dropCachedFeedPages, newPostDoc, publishPost, replayOrConflict } from "./publish";
import { type CreatePostBody, normalizeTags, type Post, type ShareResult, toPost, type UpdatePostBody } from "./schema";
import { createUploadPost } from "./uploads";
import { votedByViewer } from "./viewer-state";
import { findVisiblePost, forgetPosts, forgetPostsBeforeHiding } from "./visibility";

export { dropCachedFeedPages };

/**
 * Publishes a completed generation as a post, once per job. The job is claimed for posting by a conditional
 * update that also fixes the post's id in advance, so concurrent requests produce one post, and a request
 * that crashed between claim and insert is completed by the next one with the same id. The post and the
 * author's `totalPosts` are one write (an ordered batch), so the count moves exactly when a post was made.
 * A second request for the job is a 409, except a retry with the Idempotency-Key the post was made with,
 * which gets that post back (its first answer was lost); the same key with another request is a 422. A body
 * with `mediaId` publishes the caller's uploads instead (posts/uploads.ts).
 */
export async function createPost(
  deps: Deps,
  viewer: Viewer,
  body: CreatePostBody,
  request?: IdempotentRequest,
): Promise<Post> {
  const requestKey = request ? { key: `${viewer.id}:${request.key}`, fingerprint: request.fingerprint } : undefined;
  if (body.mediaId) return createUploadPost(deps, viewer, { ...body, mediaId: body.mediaId }, requestKey);
  const me = new ObjectId(viewer.id);
  const jobId = new ObjectId(body.generationId as string);
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
    const existing = job.postId ? await deps.db.posts.findOne({ _id: job.postId }) : null;
    if (existing) return replayOrConflict(existing, requestKey);
    if (!job.postId) throw alreadyPosted();
  }
  const post = newPostDoc(deps, job.postId as ObjectId, author, body, {
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
    nsfwScore: job.nsfwScore ?? null,
    mediaType: "image",
  });
  return publishPost(deps, viewer, author, requestKey ? { ...post, idempotency: requestKey } : post, requestKey);
}

/** Who is looking, for counting a view once per viewer: the device id and address of the request. */
export interface ViewOrigin {
  deviceId: string | null;
  ip: string;
}

/**
 * A post for its viewer. Opening someone else's post counts a view once per viewer and window
 * (POST_VIEW_WINDOW_SECONDS; the signed-in user, else the device id, else the address), and signed-out views
 * from one address are capped per window however many device ids it sends. The live vote count is read and
 * the view recorded in one Redis pipeline (`post:views:{id}` holds views not yet written to MongoDB). Without
 * Redis the post shows its stored counts and the view is not counted.
 */
export async function getPost(
  deps: Deps,
  viewer: Viewer | undefined,
  postId: string,
  origin?: ViewOrigin,
): Promise<Post> {
  const post = await findVisiblePost(deps, viewer, postId);
  const isAuthor = viewer?.id === post.userId.toHexString();
  const countsView = origin !== undefined && !isAuthor;
  const [voted, live] = await Promise.all([
    viewer ? votedByViewer(deps, viewer.id, [post._id]) : Promise.resolve(new Set<string>()),
    bestEffort(deps, "live counters", () =>
      countsView ? viewAndLiveVotes(deps, viewer, postId, origin) : liveCounters(deps, postId),
    ),
  ]);
  const counters = live ?? { liveVotes: null, pendingViews: 0 };
  const shown = toPost(post, voted.has(postId), counters.liveVotes == null ? undefined : Number(counters.liveVotes));
  // Views counted since the last sync (this one included) are added to the stored count.
  return { ...shown, viewCount: post.viewCount + counters.pendingViews };
}

/** The live counters without counting a view (the author looking at their own post). */
async function liveCounters(deps: Deps, postId: string) {
  const r = await runOps(deps.redis, {
    liveVotes: getValue<number | string>(deps.keys.postVotes(postId)),
    pendingViews: getValue<number | string>(deps.keys.postViews(postId)),
  });
  return { liveVotes: r.liveVotes, pendingViews: Number(r.pendingViews ?? 0) };
}

async function viewAndLiveVotes(deps: Deps, viewer: Viewer | undefined, postId: string, origin: ViewOrigin) {
  const { keys, config } = deps;
  const ipHash = viewer ? null : await hashIp(config.http.ipHashSalt, origin.ip);
  const viewerMarker = viewer ? `u:${viewer.id}` : origin.deviceId ? `d:${origin.deviceId}` : `ip:${ipHash}`;
  const r = await runOps(deps.redis, {
    liveVotes: getValue<number | string>(keys.postVotes(postId)),
    view: countViewOnce({
      viewerKey: keys.postViewer(postId, viewerMarker),
      windowSeconds: config.posts.viewWindowSeconds,
      pendingKey: keys.postViews(postId),
      pendingTtlSeconds: config.votes.counterTtlSeconds,
      dirtyKey: keys.countersDirtyPosts(),
      member: postId,
      perIp: ipHash ? { key: keys.postViewsByIp(postId, ipHash), cap: config.posts.anonymousViewsPerIp } : undefined,
    }),
  });
  return { liveVotes: r.liveVotes, pendingViews: r.view.pending };
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
  // The owner's read and the cached copy's drop at once: no wait of its own (see forgetPostsBeforeHiding).
  const [post] = await Promise.all([ownPost(deps, viewer, postId), forgetPostsBeforeHiding(deps, [postId])]);
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
  await forgetPosts(deps, [postId]);
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
  await forgetPostsBeforeHiding(deps, [postId]);
  const deleted = await deps.db.posts.findOneAndUpdate(
    { _id: new ObjectId(postId), userId: me, deletedAt: null },
    { $set: { deletedAt: deps.clock.now(), isPinned: false, pinnedAt: null } },
  );
  if (!deleted) throw ApiError.notFound("No such post.");
  await Promise.all([
    deps.db.users.updateOne({ _id: me }, { $inc: { totalPosts: -1 }, $pull: { pinnedPostIds: deleted._id } }),
    forgetSelfView(deps, viewer.id),
    dropCachedFeedPages(deps),
    forgetPosts(deps, [postId]),
  ]);
}

/**
 * Records a share by a signed-in user: once per (user, post), never for the author (who still gets the link),
 * and a shadow-banned sharer's share is kept but not counted. The share count moves only with the insert
 * that created the share, and the post is queued for the counters job, which recounts and rescores it.
 */
export async function sharePost(deps: Deps, viewer: Viewer, postId: string): Promise<ShareResult> {
  const post = await findVisiblePost(deps, viewer, postId);
  const me = new ObjectId(viewer.id);
  if (post.userId.equals(me)) return { shareableUrl: post.shareableUrl, shareCount: post.shareCount };
  const sharer = await deps.db.users.findOne({ _id: me }, { projection: { shadowBanned: 1 } });
  const shadow = Boolean(sharer?.shadowBanned);
  // Marked with the insert, so a crash before the increment is repaired by the job's recount; the increment
  // marks it again, after the insert, so a recount racing the insert cannot clear the mark too early.
  const [inserted] = await Promise.all([
    deps.db.shares.insertUnique({
      _id: newObjectId(),
      postId: post._id,
      userId: me,
      postAuthorId: post.userId,
      shadow,
      createdAt: deps.clock.now(),
    }),
    markEngaged(deps, [postId]),
  ]);
  if (!inserted || shadow) return { shareableUrl: post.shareableUrl, shareCount: post.shareCount };
  await recordActivity(deps, {
    event: "shared",
    actorId: viewer.id,
    ownerId: post.userId.toHexString(),
    postId: post._id.toHexString(),
  });
  const [updated] = await Promise.all([
    deps.db.posts.findOneAndUpdate(
      { _id: post._id },
      { $inc: { shareCount: 1, countersStale: 1 } },
      { returnDocument: "after", projection: { shareCount: 1 } },
    ),
    forgetPosts(deps, [postId]),
  ]);
  return { shareableUrl: post.shareableUrl, shareCount: updated?.shareCount ?? post.shareCount + 1 };
}
