import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { PostDoc } from "../../db";
import type { Deps } from "../../deps";
import type { ObjectId } from "../../platform/ids";
import { batchOn } from "../../platform/redis-ops";
import { addHours, HOUR_MS, utcDay } from "../../platform/time";
import { moveGems } from "../gems/ledger";
import { ledgerKeys } from "../gems/ledger-keys";
import { notify } from "../notifications/service";
import { dropCachedFeedPages } from "../posts/service";
import { PUBLIC_FEED_FILTER } from "../posts/visibility";
import { rankedEngagementOf, trendingScore } from "../ranking/scores";
import { rankedFeed } from "./service";

/**
 * Re-decays the trending score of recent posts in batches (keyset over `_id`, so a crash or time-out simply
 * leaves some posts with their previous scores until the next run), then refreshes the cached first pages of
 * the new/trending/hot feeds and pays the trending bonus. Only `trendingScore` depends on the clock: `top`
 * and `hot` change only when engagement does, and the counters job rescores a post whenever it does.
 */
export async function recomputeTrending(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const now = deps.clock.now();
  // Older posts keep their last trending score; the decay takes it to near zero long before.
  const since = addHours(now, -deps.config.ranking.windowHours);
  let after: ObjectId | null = null;
  while (true) {
    if (ctx.timeLeft() < 2_000) return { more: true };
    // Drafts and scheduled posts are scored when they are published (archived ones may come back).
    const filter: Record<string, unknown> = {
      createdAt: { $gte: since },
      deletedAt: null,
      status: { $in: ["published", "archived"] },
    };
    if (after) filter._id = { $gt: after };
    const posts: PostDoc[] = await deps.db.posts.find(filter, {
      sort: { _id: 1 },
      limit: deps.config.ranking.batchPosts,
      projection: { rankedEngagement: 1, voteCount: 1, commentCount: 1, shareCount: 1, viewCount: 1, createdAt: 1 },
    });
    if (posts.length === 0) break;
    await deps.db.posts.bulkWrite(
      posts.map((p) => {
        const ageHours = (now.getTime() - p.createdAt.getTime()) / HOUR_MS;
        return {
          updateOne: {
            filter: { _id: p._id },
            update: { $set: { trendingScore: trendingScore(rankedEngagementOf(p), ageHours, deps.config.ranking) } },
          },
        };
      }),
      { ordered: false },
    );
    ctx.count("posts", posts.length);
    after = posts[posts.length - 1]!._id;
    await ctx.checkpoint("batch");
  }
  // Warm the first pages so the next readers hit the cache.
  await dropCachedFeedPages(deps);
  await Promise.all(
    (["new", "trending", "hot"] as const).map((kind) =>
      rankedFeed(deps, batchOn(deps.redis), undefined, kind, { limit: 20 }),
    ),
  );
  await ctx.checkpoint("scored");
  const top = deps.config.gems.trendingBonusTopPosts;
  if (top > 0) {
    const leaders = await deps.db.posts.find(
      { ...PUBLIC_FEED_FILTER, createdAt: { $gte: since }, trendingScore: { $gt: 0 } },
      { sort: { trendingScore: -1, _id: -1 }, limit: top, projection: { userId: 1 } },
    );
    ctx.count("trendingBonusGems", await payTrendingBonuses(deps, leaders));
  }
  return { more: false };
}

/**
 * The trending bonus: the authors of the top posts of a trending run earn a bonus, once per post per UTC day
 * (the idempotency key), so runs every few minutes pay each post at most once a day. Returns gems paid now.
 */
export async function payTrendingBonuses(
  deps: Deps,
  posts: { _id: ObjectId; userId: ObjectId; imageUrl?: string | null }[],
): Promise<number> {
  const amount = deps.config.gems.trendingBonus;
  if (amount <= 0 || posts.length === 0) return 0;
  const day = utcDay(deps.clock.now());
  const paid = await Promise.all(
    posts.map(async (post) => {
      const postId = post._id.toHexString();
      const { replayed } = await moveGems(deps, {
        userId: post.userId,
        type: "earn",
        source: "trending_bonus",
        amount,
        referenceType: "post",
        referenceId: postId,
        description: "Your post is trending",
        idempotencyKey: ledgerKeys.trendingBonus(postId, day),
      });
      if (replayed) return 0;
      await notify(deps, {
        type: "system",
        kind: "trending",
        recipientId: post.userId,
        title: `Your post is trending! +${amount} gems`,
        actionType: "open_post",
        actionPayload: { postId },
      });
      return amount;
    }),
  );
  return paid.reduce((a, b) => a + b, 0);
}

export const trendingJob: Job = {
  name: "trending",
  description: "Recomputes engagement, trending and hot scores of recent posts and warms the first feed pages.",
  run: recomputeTrending,
};
