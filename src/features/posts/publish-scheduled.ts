import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { PostDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectIdAt, ObjectId } from "../../platform/ids";
import type { BulkOperation } from "../../platform/mongo/client";
import { addHours } from "../../platform/time";
import { announceOwed } from "./announce";
import { applyMoves, firstPublicationFields, type Moved } from "./lifecycle";

/**
 * `publish-scheduled` (every minute): publishes the scheduled posts that are due, oldest `publishAt` first, then
 * tells followers of new posts.
 *
 * Exactly once, however runs overlap: a batch publishes each due post with an update conditional on it still
 * being scheduled for that time, marking it with the batch's id, so of two runs that read the same posts
 * each post is published by one; only the posts a batch marked are counted by it (the author's `totalPosts`,
 * caches, referral). A batch that dies after publishing and before counting leaves its mark, and the next run
 * (after a lease's length) counts those posts once and clears it. Nothing depends on the run that was due:
 * after an outage, every post whose time has passed is still `scheduled` with `publishAt` in the past, and the
 * next run publishes them all, as new posts of that moment.
 *
 * Followers are told in batches (POST_FANOUT_BATCH_FOLLOWERS), walking the author's follows in id order from
 * the post's `fanout.after`, once the post is visible to them (published, approved, not private, author not
 * shadow-banned): a post held for review is announced when a moderator approves it, if that is within
 * POST_FANOUT_MAX_AGE_HOURS of its publication. Announcing to a follower twice changes nothing.
 */
export async function publishScheduled(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  await finishUncounted(ctx);
  while (true) {
    if (ctx.timeLeft() < 2_000) return { more: true };
    const published = await publishDueBatch(ctx);
    if (published === null) break;
  }
  await dropStaleFanouts(deps);
  while (true) {
    if (ctx.timeLeft() < 2_000) return { more: true };
    if (!(await fanOutBatch(ctx))) return { more: false };
  }
}

const PUBLISH_PROJECTION = { fanout: 0, countedTags: 0 } as const;

/** One batch of due posts: published (each by exactly one batch), then counted. Null when none was due. */
async function publishDueBatch(ctx: JobContext): Promise<number | null> {
  const { deps } = ctx;
  const now = deps.clock.now();
  const due = await deps.db.posts.find(
    { publishAt: { $lte: now }, status: "scheduled", deletedAt: null },
    { sort: { publishAt: 1, _id: 1 }, limit: deps.config.scheduling.batchPosts, projection: PUBLISH_PROJECTION },
  );
  if (due.length === 0) return null;
  await ctx.checkpoint("due");
  // Stamped with the job's clock, which is what a later run ages the mark by.
  const batch = newObjectIdAt(now);
  await deps.db.posts.bulkWrite(
    due.map(
      (post): BulkOperation<PostDoc> => ({
        updateOne: {
          filter: { _id: post._id, status: "scheduled", publishAt: post.publishAt, deletedAt: null },
          update: { $set: { ...firstPublicationFields(deps, post, now), publishedBy: batch } },
        },
      }),
    ),
    { ordered: false },
  );
  await ctx.checkpoint("published");
  const won = await deps.db.posts.find({ publishedBy: batch }, { limit: due.length, projection: PUBLISH_PROJECTION });
  await count(deps, won);
  ctx.count("published", won.length);
  // Posts another run published first were not ours to count.
  ctx.count("publishedElsewhere", due.length - won.length);
  return won.length;
}

/** Counts posts a batch published (author, caches, referral), then clears the batch's mark on them. */
async function count(deps: Deps, posts: PostDoc[]): Promise<void> {
  if (posts.length === 0) return;
  const authorIds = [...new Map(posts.map((p) => [p.userId.toHexString(), p.userId])).values()];
  const referred = await deps.db.users.find(
    { _id: { $in: authorIds }, referredBy: { $ne: null } },
    { projection: { _id: 1 }, limit: authorIds.length },
  );
  const referredIds = new Set(referred.map((u) => u._id.toHexString()));
  const moves: Moved[] = posts.map((post) => ({
    from: "scheduled",
    post,
    referred: referredIds.has(post.userId.toHexString()),
  }));
  await applyMoves(deps, moves);
  await deps.db.posts.updateMany(
    { _id: { $in: posts.map((p) => p._id) }, publishedBy: { $type: "objectId" } },
    { $set: { publishedBy: null } },
  );
}

/** Batches that died between publishing and counting: their posts are counted now, once. */
async function finishUncounted(ctx: JobContext): Promise<void> {
  const { deps } = ctx;
  // A live batch finishes well within its run's lease; an older mark belongs to a run that is gone.
  const cutoff = ObjectId.createFromTime(Math.floor(deps.clock.now().getTime() / 1000) - deps.config.jobs.leaseSeconds);
  const left = await deps.db.posts.find(
    { publishedBy: { $type: "objectId", $lt: cutoff } },
    { limit: deps.config.scheduling.batchPosts, projection: PUBLISH_PROJECTION },
  );
  await count(deps, left);
  ctx.count("recounted", left.length);
}

/** Owed announcements older than POST_FANOUT_MAX_AGE_HOURS are no longer news: they are dropped. */
async function dropStaleFanouts(deps: Deps): Promise<void> {
  const cutoff = addHours(deps.clock.now(), -deps.config.scheduling.fanoutMaxAgeHours);
  await deps.db.posts.updateMany({ "fanout.since": { $lt: cutoff } }, { $set: { fanout: null } });
}

/** One round of announcements (announce.ts), counted. */
async function fanOutBatch(ctx: JobContext): Promise<boolean> {
  const round = await announceOwed(ctx.deps);
  if (round === null) return false;
  ctx.count("announced", round.told);
  await ctx.checkpoint("announced");
  return true;
}

export const publishScheduledJob: Job = {
  name: "publish-scheduled",
  description: "Publishes scheduled posts whose time has come (exactly once) and tells followers of new posts.",
  run: publishScheduled,
};
