import { bestEffort } from "../../core/best-effort";
import { ApiError } from "../../core/errors";
import type { IdempotentRequest } from "../../core/idempotency";
import { accountFactsOf, forgetSelfView, forgetStanding } from "../../core/standing";
import type { Viewer } from "../../core/viewer";
import type { PostDoc, RequestKey } from "../../db";
import type { Deps } from "../../deps";
import { hashIp } from "../../platform/crypto";
import { newObjectId, ObjectId } from "../../platform/ids";
import { DuplicateKeyError, expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import { countViewOnce, deleteKeys, getValue, runOp, runOps } from "../../platform/redis-ops";
import { recordActivity } from "../analytics/activity";
import { cachedGenerationPostFacts, type GenerationPostFacts } from "../generations/post-facts";
import { announceAfterResponse } from "./announce";
import {
  afterMoves,
  authorUpdate,
  checkPublishAt,
  firstPublicationFields,
  moveFields,
  SLOT_TAKEN,
  UNSCHEDULED,
  withScheduleSlots,
} from "./lifecycle";
import { afterNewPost, alreadyPosted, contentOfJob, insertNewPost, newPostDoc, replayOrConflict } from "./publish";
import { type CreatePostBody, normalizeTags, type Post, type ShareResult, toPost, type UpdatePostBody } from "./schema";
import { countsInProfile, isFirstPublication, type LifecycleState, lifecycleStateOf, moveVerdict } from "./transitions";
import { createUploadPost } from "./uploads";
import { votedByViewer } from "./viewer-state";
import {
  findVisiblePost,
  findWritablePost,
  forgetPosts,
  forgetPostsBeforeHiding,
  takeOwnPost,
  writeOnPost,
} from "./visibility";

/**
 * Drops the cached first pages of the public feeds (a post appeared, went or was hidden). Best effort: the
 * change stands, and a page left behind expires within its FEED_*_CACHE_TTL_SECONDS.
 */
export async function dropCachedFeedPages(deps: Deps): Promise<void> {
  await bestEffort(deps, "feed cache drop", () => runOp(deps.redis, deleteKeys(deps.keys.publicFeedFirstPages())));
}

/**
 * Makes a completed generation a post — published (the default), a draft or scheduled — once per job. The job
 * is claimed for posting by a conditional update that also fixes the post's id in advance, so concurrent
 * requests produce one post, and a request that crashed between claim and insert is completed by the next one
 * with the same id. A published post and the author's `totalPosts` are one write (an ordered batch), so the
 * count moves exactly when a post was made; a scheduled one holds its slots (lifecycle.ts) in its insert.
 * A second request for the job is a 409, except a retry with the Idempotency-Key the post was made with,
 * which gets that post back (its first answer was lost); the same key with another request is a 422. A body
 * with `mediaId` makes a post of the caller's uploads instead (posts/uploads.ts), in the same states.
 *
 * Waits: a published post of a job whose fields were cached at completion waits on one Data API call
 * (publishCachedJob: one transaction); without that cache, or when one of its guards finds the cache or the
 * standing stale, the job is claimed beside the author's read, then the post is inserted (two). Drafts,
 * scheduled posts (which also read the author's other scheduled posts) and uploads keep the two-call path.
 * A referred author's post also validates the referral before the answer (a read, and a write when it pays).
 */
export async function createPost(
  deps: Deps,
  viewer: Viewer,
  body: CreatePostBody,
  request?: IdempotentRequest,
): Promise<Post> {
  const requestKey = request ? { key: `${viewer.id}:${request.key}`, fingerprint: request.fingerprint } : undefined;
  if (body.publishAt) checkPublishAt(deps, body.publishAt);
  if (body.mediaId) return createUploadPost(deps, viewer, { ...body, mediaId: body.mediaId }, requestKey);
  const publishing = (body.status ?? "published") === "published";
  if (publishing) {
    const facts = await cachedGenerationPostFacts(deps, body.generationId as string);
    const made = facts ? await publishCachedJob(deps, viewer, facts, body, requestKey) : null;
    if (made) return made;
  }
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
  const draft = newPostDoc(deps, job.postId as ObjectId, author, body, contentOfJob(job, author.tier), requestKey);
  return insertNewPost(deps, viewer, author, draft, body, requestKey);
}

/** Steps of the one-call publication: the job's guard, the author's, then the post. */
const JOB_STEP = 0;
const AUTHOR_STEP = 1;

/**
 * Publishes a completed generation whose post-facing fields were cached at completion (generations/post-facts.ts)
 * by an author whose standing the request carries, waiting on one Data API call: one transaction claims the job
 * (completed, the caller's, still unposted, the image the cache says), checks the author is as the standing says
 * (live, tier, shadow ban, avatar: what the post copies), counts the post in `totalPosts` and inserts it. A stale
 * cache lets nothing through: any failed check, or a unique index's refusal, changes nothing and answers null,
 * and the caller takes the path that reads the job and the author (which answers 404, 409, or a replay).
 */
async function publishCachedJob(
  deps: Deps,
  viewer: Viewer,
  facts: GenerationPostFacts,
  body: CreatePostBody,
  requestKey: RequestKey | undefined,
): Promise<Post | null> {
  const account = viewer.account;
  const me = new ObjectId(viewer.id);
  if (!account || !facts.userId.equals(me) || !facts.imageUrl) return null;
  const author = {
    _id: me,
    username: account.username,
    avatarUrl: account.avatarUrl,
    tier: viewer.tier,
    shadowBanned: account.shadowBanned,
  };
  const draft = newPostDoc(deps, newObjectId(), author, body, contentOfJob(facts, author.tier), requestKey);
  const post = { ...draft, ...firstPublicationFields(deps, draft, deps.clock.now()) };
  let referred: boolean;
  try {
    const [, user] = await deps.db.batch(
      [
        expectMatch(
          deps.db.generationJobs.inBatch.updateOne(
            { _id: facts._id, userId: me, status: "completed", postId: null, imageUrl: facts.imageUrl },
            { $set: { postId: post._id } },
          ),
        ),
        expectMatch(
          deps.db.users.inBatch.findOneAndUpdate(
            {
              _id: me,
              deletedAt: null,
              // The stored tier: an expired paid tier (which acts as free) takes the reading path.
              tier: author.tier,
              shadowBanned: author.shadowBanned ? true : { $ne: true },
              avatarUrl: author.avatarUrl,
            },
            { $inc: { totalPosts: 1 } },
            { projection: { referredBy: 1 } },
          ),
        ),
        deps.db.posts.inBatch.insertOne(post),
      ],
      { transaction: true },
    );
    referred = Boolean(user?.referredBy);
  } catch (error) {
    if (error instanceof PreconditionFailedError) {
      // The standing was stale (a change whose drop failed): rebuild it; the reading path uses the account.
      if (error.failedIndex === AUTHOR_STEP) await forgetStanding(deps, viewer.id);
      else if (error.failedIndex !== JOB_STEP) throw error;
      return null;
    }
    // Only the Idempotency-Key's index can refuse the insert: the reading path answers for the first attempt.
    if (error instanceof DuplicateKeyError) return null;
    throw error;
  }
  return afterNewPost(deps, viewer, post, referred);
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

/** The post as its author sees it after a change: live counts from Redis (stored ones without it), no MongoDB read. */
async function asAuthorSees(deps: Deps, post: PostDoc): Promise<Post> {
  const counters = (await bestEffort(deps, "live counters", () => liveCounters(deps, post._id.toHexString()))) ?? {
    liveVotes: null,
    pendingViews: 0,
  };
  const live = counters.liveVotes == null ? undefined : Number(counters.liveVotes);
  const shown = toPost(post, false, live);
  return { ...shown, viewCount: post.viewCount + counters.pendingViews };
}

function invalidTransition(from: LifecycleState, to: LifecycleState): ApiError {
  return ApiError.conflict("invalid_transition", `A post cannot go from ${from} to ${to}.`);
}

/**
 * The author edits a post: tags, category, visibility, pinning, and lifecycle moves (`status`, `publishAt`; the
 * table is in transitions.ts). A move is one update conditional on the state the post was read in, so of two
 * racing moves one wins; the other is answered from the state the post is in now (the same state: 200, else
 * 409). Waits: the post's cached copy taken from Redis (MongoDB read only when there was none), then one
 * MongoDB batch (the post and, for a move, its author's count) beside the referral read of a first
 * publication, then the caches; scheduling also reads the author's other scheduled posts first.
 */
export async function updatePost(deps: Deps, viewer: Viewer, postId: string, patch: UpdatePostBody): Promise<Post> {
  // The cached copy is dropped before the change (and read in the same step): see takeOwnPost.
  const post = await takeOwnPost(deps, viewer.id, postId);
  if (!post) throw ApiError.notFound("No such post.");
  const now = deps.clock.now();
  const from = lifecycleStateOf(post);
  const target = patch.status ?? (patch.publishAt ? "scheduled" : undefined);
  const verdict = target ? moveVerdict(from, target) : "stay";
  if (target && verdict === "refused") throw invalidTransition(from, target);
  const moving = target !== undefined && verdict === "move";
  if (moving && target === "scheduled") checkPublishAt(deps, patch.publishAt as Date);

  const set: Record<string, unknown> = { updatedAt: now };
  if (patch.tags !== undefined) set.tags = normalizeTags(patch.tags);
  if (patch.category !== undefined) set.category = patch.category;
  if (patch.visibility !== undefined) set.visibility = patch.visibility;
  // Tags and visibility decide which tag counts the post is in (features/tags/counts.ts).
  if (patch.tags !== undefined || patch.visibility !== undefined) set.tagsDirty = newObjectId();
  if (moving && target !== "scheduled") {
    Object.assign(
      set,
      target === "published" && isFirstPublication(from)
        ? firstPublicationFields(deps, post, now)
        : moveFields(target, now),
    );
  }
  const after = moving ? target : from;
  if (patch.isPinned === true && !post.isPinned) {
    if (after !== "published") throw ApiError.conflict("not_published", "Only published posts can be pinned.");
    await claimPin(deps, post);
    Object.assign(set, { isPinned: true, pinnedAt: now });
  } else if (patch.isPinned === false && post.isPinned) {
    await deps.db.users.updateOne({ _id: post.userId }, { $pull: { pinnedPostIds: post._id } });
    Object.assign(set, { isPinned: false, pinnedAt: null });
  }

  const filter: Record<string, unknown> = { _id: post._id, userId: post.userId, deletedAt: null };
  if (moving) filter.status = post.status;
  // A move writes its author's count (and the pin an archived post gives up) in the same batch, after the
  // post's update, which must match: a move that lost a race to another changes nothing at all.
  const author = moving ? authorUpdate(from, target, post._id) : null;
  const write = async (extra: object): Promise<PostDoc | null | typeof SLOT_TAKEN> => {
    try {
      const [doc] = await deps.db.batch([
        expectMatch(
          deps.db.posts.inBatch.findOneAndUpdate(filter, { $set: { ...set, ...extra } }, { returnDocument: "after" }),
        ),
        ...(author ? [deps.db.users.inBatch.updateOne({ _id: post.userId }, author)] : []),
      ]);
      return doc;
    } catch (error) {
      if (error instanceof PreconditionFailedError) return null;
      // Only the schedule slots' indexes can refuse this update: a concurrent schedule took the slot.
      if (error instanceof DuplicateKeyError) return SLOT_TAKEN;
      throw error;
    }
  };
  const [updated, referred] = await Promise.all([
    moving && target === "scheduled"
      ? withScheduleSlots(deps, post, patch.publishAt as Date, write)
      : write({}).then((written) => (written === SLOT_TAKEN ? null : written)),
    // Read beside the write: a first publication may validate the author's referral.
    moving && target === "published" && isFirstPublication(from) ? isReferred(deps, post.userId) : false,
  ]);
  if (!updated) {
    // Deleted, or moved by a racing request: the state the post is in now decides the answer.
    const current = await deps.db.posts.findOne({ _id: post._id, userId: post.userId, deletedAt: null });
    if (!current) throw ApiError.notFound("No such post.");
    const state = lifecycleStateOf(current);
    if (target && state !== target) throw invalidTransition(state, target);
    await forgetPosts(deps, [postId]);
    return asAuthorSees(deps, current);
  }
  if (moving) {
    await afterMoves(deps, [{ from, post: updated, referred, counted: true }]);
    if (target === "published" && isFirstPublication(from)) announceAfterResponse(deps, [updated._id]);
  } else await forgetPosts(deps, [postId]);
  return asAuthorSees(deps, updated);
}

async function isReferred(deps: Deps, userId: ObjectId): Promise<boolean> {
  const author = await deps.db.users.findOne({ _id: userId }, { projection: { referredBy: 1 } });
  return Boolean(author?.referredBy);
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

/**
 * Soft delete by the author, in any state; `totalPosts` moves only for the request that actually deleted a
 * post it counted (published or held). A scheduled post gives up its slots and is never published.
 */
export async function deletePost(deps: Deps, viewer: Viewer, postId: string): Promise<void> {
  const me = new ObjectId(viewer.id);
  await forgetPostsBeforeHiding(deps, [postId]);
  const deleted = await deps.db.posts.findOneAndUpdate(
    { _id: new ObjectId(postId), userId: me, deletedAt: null },
    {
      $set: {
        deletedAt: deps.clock.now(),
        isPinned: false,
        pinnedAt: null,
        ...UNSCHEDULED,
        fanout: null,
        tagsDirty: newObjectId(),
      },
    },
  );
  if (!deleted) throw ApiError.notFound("No such post.");
  const counted = countsInProfile(lifecycleStateOf(deleted));
  await Promise.all([
    deps.db.users.updateOne(
      { _id: me },
      { ...(counted ? { $inc: { totalPosts: -1 } } : {}), $pull: { pinnedPostIds: deleted._id } },
    ),
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
  const [target, sharer] = await Promise.all([findWritablePost(deps, viewer, postId), accountFactsOf(deps, viewer)]);
  const me = new ObjectId(viewer.id);
  const shareableUrl = target.post?.shareableUrl ?? `${deps.config.posts.shareBaseUrl}/${postId}`;
  // Without the post's cached copy, its count takes a read (only when this share moves none).
  const counted = async () =>
    target.post?.shareCount ??
    (await deps.db.posts.findOne({ _id: target.postId }, { projection: { shareCount: 1 } }))?.shareCount ??
    0;
  if (target.facts.userId.equals(me)) return { shareableUrl, shareCount: await counted() };
  const shadow = sharer.shadowBanned;
  const share = deps.db.shares.inBatch.insertOne({
    _id: newObjectId(),
    postId: target.postId,
    userId: me,
    postAuthorId: target.facts.userId,
    shadow,
    createdAt: deps.clock.now(),
  });
  // One transaction: the post's guard, the share, the count (a shadow-banned sharer's is kept but counts
  // nothing) and the post's recount mark for the `counters` job; a repeat collides on the unique (post, user)
  // index and changes nothing.
  let shareCount: number;
  try {
    shareCount = await writeOnPost(deps, viewer, target, async (t) => {
      const [, , updated] = await deps.db.batch(
        [
          t.guard,
          share,
          deps.db.posts.inBatch.findOneAndUpdate(
            { _id: t.postId },
            { $inc: { shareCount: shadow ? 0 : 1, countersStale: 1 } },
            { returnDocument: "after", projection: { shareCount: 1 } },
          ),
        ],
        { transaction: true },
      );
      return updated?.shareCount ?? 0;
    });
  } catch (error) {
    if (error instanceof DuplicateKeyError && error.failedIndex === 1)
      return { shareableUrl, shareCount: await counted() };
    throw error;
  }
  if (shadow) return { shareableUrl, shareCount };
  await Promise.all([
    recordActivity(deps, { event: "shared", actorId: viewer.id, ownerId: target.facts.userId.toHexString(), postId }),
    forgetPosts(deps, [postId]),
  ]);
  return { shareableUrl, shareCount };
}
