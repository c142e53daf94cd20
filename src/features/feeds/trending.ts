import type { JobContext, JobReport } from "../../jobs/types";
import type { ObjectId } from "../../platform/ids";
import { payTrendingBonuses } from "../gems/service";
import type { PostDoc } from "../posts/schema";
import { PUBLIC_FEED_FILTER } from "../posts/visibility";
import { engagementScore, hotScore, trendingScore } from "../ranking/scores";
import { invalidateFeedCaches, rankedFeed } from "./service";

const BATCH = 500;
const HOUR_MS = 3_600_000;
/** Posts older than this keep their last scores; trending decays them to near zero long before. */
const WINDOW_HOURS = 72;

/**
 * Recomputes engagement, trending and hot scores of recent posts in batches (keyset over `_id`, so a crash
 * or time-out simply leaves some posts with their previous scores until the next run), then refreshes the
 * cached first pages of the new/trending/hot feeds.
 */
export async function recomputeTrending(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const now = deps.clock.now();
  const since = new Date(now.getTime() - WINDOW_HOURS * HOUR_MS);
  let after: ObjectId | null = null;
  while (true) {
    if (ctx.timeLeft() < 2_000) return { more: true };
    const filter: Record<string, unknown> = { createdAt: { $gte: since }, deletedAt: null };
    if (after) filter._id = { $gt: after };
    const posts: PostDoc[] = await deps.db.posts.find(filter, {
      sort: { _id: 1 },
      limit: BATCH,
      projection: { voteCount: 1, commentCount: 1, shareCount: 1, viewCount: 1, createdAt: 1 },
    });
    if (posts.length === 0) break;
    await deps.db.posts.bulkWrite(
      posts.map((p) => {
        const e = {
          votes: p.voteCount ?? 0,
          comments: p.commentCount ?? 0,
          shares: p.shareCount ?? 0,
          views: p.viewCount ?? 0,
        };
        const ageHours = (now.getTime() - p.createdAt.getTime()) / HOUR_MS;
        return {
          updateOne: {
            filter: { _id: p._id },
            update: {
              $set: {
                engagementScore: engagementScore(e, deps.config.ranking),
                trendingScore: trendingScore(e, ageHours, deps.config.ranking),
                hotScore: hotScore(e, deps.config.ranking),
              },
            },
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
  await invalidateFeedCaches(deps);
  await Promise.all(
    (["new", "trending", "hot"] as const).map((kind) => rankedFeed(deps, undefined, kind, { limit: 20 })),
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
