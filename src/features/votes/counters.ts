import type { Job, JobContext, JobReport } from "../../core/jobs";
import { isObjectIdHex, ObjectId } from "../../platform/ids";
import { moveRandomMembers, removeMembers, runOp, someMembers, takeAndClear } from "../../platform/redis-ops";

/**
 * Syncs vote counts (and pending views) into MongoDB for posts whose real-time Redis counter moved (`counters:dirty:posts`).
 * Each post's `voteCount` is set from the votes collection itself (shadow votes excluded), so the job is
 * exact and idempotent however often it runs. Posts move to an in-progress set while their batch is written
 * and leave it only afterwards; a run first finishes whatever a crashed run left in progress.
 */
export async function syncVoteCounters(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const dirtyKey = deps.keys.countersDirtyPosts();
  const inProgressKey = deps.keys.countersSyncingPosts();
  const batch = deps.config.votes.countersBatchPosts;
  while (ctx.timeLeft() > 2_000) {
    // A crashed run's posts are still in progress: finish those first.
    const leftover = await runOp(deps.redis, someMembers(inProgressKey, batch));
    const taken = leftover.length
      ? leftover
      : await runOp(deps.redis, moveRandomMembers(dirtyKey, inProgressKey, batch));
    const ids = taken.filter(isObjectIdHex);
    if (taken.length === 0) return { more: false };
    if (ids.length === 0) return { more: false };
    const postIds = ids.map((id) => new ObjectId(id));
    const counts = await deps.db.votes.aggregate<{ _id: ObjectId; n: number }>([
      { $match: { postId: { $in: postIds }, shadow: { $ne: true } } },
      { $group: { _id: "$postId", n: { $sum: 1 } } },
    ]);
    const byPost = new Map(counts.map((c) => [c._id.toHexString(), c.n]));
    // Pending views are taken and cleared atomically (a view counted meanwhile waits for the next run). A
    // crash between this and the MongoDB write loses those views: acceptable for view counts.
    const views = await runOp(deps.redis, takeAndClear(ids.map((id) => deps.keys.postViews(id))));
    await deps.db.posts.bulkWrite(
      ids.map((id, i) => ({
        updateOne: {
          filter: { _id: new ObjectId(id) },
          update: { $set: { voteCount: byPost.get(id) ?? 0 }, $inc: { viewCount: Number(views[i] ?? 0) } },
        },
      })),
      { ordered: false },
    );
    await ctx.checkpoint("written");
    await runOp(deps.redis, removeMembers(inProgressKey, taken));
    ctx.count("posts", ids.length);
  }
  return { more: true };
}

export const countersJob: Job = {
  name: "counters",
  description:
    "Writes real-time vote counts from Redis-tracked posts into MongoDB, exactly, from the votes collection.",
  run: syncVoteCounters,
};
