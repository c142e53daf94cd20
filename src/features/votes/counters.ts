import type { JobContext, JobReport } from "../../jobs/types";
import { ObjectId } from "../../platform/ids";

const BATCH = 500;

// Takes the pending view delta of each post and clears it, atomically (a view counted meanwhile waits for
// the next run). A crash between this and the MongoDB write loses those views: acceptable for view counts.
const TAKE_VIEWS = `
local out = {}
for i, key in ipairs(KEYS) do out[i] = tonumber(redis.call('GETDEL', key) or '0') end
return out`;

// Moves up to N posts from the dirty set to the in-progress set atomically. A vote landing while a batch
// is being written re-adds its post to the dirty set, so the next batch picks it up.
const TAKE_BATCH = `
local ids = redis.call('SPOP', KEYS[1], ARGV[1])
if #ids > 0 then redis.call('SADD', KEYS[2], unpack(ids)) end
return ids`;

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
  while (ctx.timeLeft() > 2_000) {
    const leftover = (await deps.redis.srandmember<string[]>(inProgressKey, BATCH)) ?? [];
    const taken = leftover.length
      ? leftover
      : ((await deps.redis.eval<[number], string[]>(TAKE_BATCH, [dirtyKey, inProgressKey], [BATCH])) ?? []);
    const ids = taken.map(String).filter((id) => /^[0-9a-f]{24}$/.test(id));
    if (taken.length === 0) return { more: false };
    if (ids.length === 0) return { more: false };
    const postIds = ids.map((id) => new ObjectId(id));
    const counts = await deps.db.votes.aggregate<{ _id: ObjectId; n: number }>([
      { $match: { postId: { $in: postIds }, shadow: { $ne: true } } },
      { $group: { _id: "$postId", n: { $sum: 1 } } },
    ]);
    const byPost = new Map(counts.map((c) => [c._id.toHexString(), c.n]));
    const views =
      (await deps.redis.eval<[], number[]>(
        TAKE_VIEWS,
        ids.map((id) => deps.keys.postViews(id)),
        [],
      )) ?? [];
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
    await deps.redis.srem(inProgressKey, ...taken.map(String));
    ctx.count("posts", ids.length);
  }
  return { more: true };
}
