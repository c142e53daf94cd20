import { fillCache } from "../../core/cache";
import type { Deps } from "../../deps";
import { getValue, type RedisBatch, setValue } from "../../platform/redis-ops";
import { DAY_MS } from "../../platform/time";
import { PUBLIC_FEED_FILTER } from "../posts/visibility";
import type { TagsQuery, TagUsageList, TrendingTags } from "./schema";

/** Only the default page size is cached per prefix (what autocomplete asks for on every keystroke). */
const DEFAULT_LIMIT = 10;

/**
 * Tags by usage (`tags.posts`, kept by the `tag-counts` job), those starting with `prefix` when given. The
 * default-size answer per prefix is cached for TAG_PREFIX_CACHE_TTL_SECONDS and read in the request's first
 * Redis batch (with the rate limit): a warm keystroke costs one Redis round trip and no MongoDB call.
 */
export async function tagsByPrefix(deps: Deps, read: RedisBatch, query: TagsQuery): Promise<TagUsageList> {
  const prefix = query.prefix ?? "";
  const key = query.limit === DEFAULT_LIMIT ? deps.keys.tagsByPrefix(prefix) : null;
  // The first batch carries the rate limit (with nothing else to read, alone), so a refused request does no
  // MongoDB work.
  const cached = key ? (await read({ cached: getValue<TagUsageList>(key) })).cached : await read({}).then(() => null);
  if (cached) return cached;
  const docs = await deps.db.tags.find(
    { ...(prefix ? { _id: { $regex: `^${escapeRegex(prefix)}` } } : {}), posts: { $gt: 0 } },
    { sort: { posts: -1, _id: 1 }, limit: query.limit, projection: { posts: 1 } },
  );
  const answer = { items: docs.map((d) => ({ tag: d._id, posts: d.posts })) };
  if (key) await fillCache(deps, setValue(key, answer, deps.config.tags.prefixCacheTtlSeconds), "tag prefix");
  return answer;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
}

/**
 * The tags rising most: posts published with each in the last 24 h against the daily average of the 7 days
 * before (`rise` = recent − previous / 7), among tags with at least TAG_TRENDING_MIN_POSTS recent posts and a
 * positive rise; visible posts only, as the counts. Served from Redis (`tags:trending`) in the request's first
 * batch; computed when missing (one aggregation over eight days of posts, then the tags' usage) and kept for
 * TAG_TRENDING_CACHE_TTL_SECONDS.
 */
export async function trendingTags(deps: Deps, read: RedisBatch): Promise<TrendingTags> {
  const key = deps.keys.tagsTrending();
  const first = await read({ cached: getValue<TrendingTags>(key) });
  if (first.cached) return first.cached;
  const computed = await computeTrending(deps);
  await fillCache(deps, setValue(key, computed, deps.config.tags.trendingCacheTtlSeconds), "trending tags");
  return computed;
}

export async function computeTrending(deps: Deps): Promise<TrendingTags> {
  const now = deps.clock.now();
  const dayAgo = new Date(now.getTime() - DAY_MS);
  const since = new Date(now.getTime() - 8 * DAY_MS);
  const { trendingMinPosts, trendingItems } = deps.config.tags;
  const rows = await deps.db.posts.aggregate<{ _id: string; recent: number; rise: number }>([
    { $match: { ...PUBLIC_FEED_FILTER, publishedAt: { $gte: since, $lte: now }, "tags.0": { $exists: true } } },
    { $project: { tags: 1, recent: { $cond: [{ $gte: ["$publishedAt", dayAgo] }, 1, 0] } } },
    { $unwind: "$tags" },
    { $group: { _id: "$tags", recent: { $sum: "$recent" }, all: { $sum: 1 } } },
    { $match: { recent: { $gte: trendingMinPosts } } },
    { $project: { recent: 1, rise: { $subtract: ["$recent", { $divide: [{ $subtract: ["$all", "$recent"] }, 7] }] } } },
    { $match: { rise: { $gt: 0 } } },
    { $sort: { rise: -1, recent: -1, _id: 1 } },
    { $limit: trendingItems },
  ]);
  const usage = rows.length
    ? await deps.db.tags.find(
        { _id: { $in: rows.map((r) => r._id) } },
        { projection: { posts: 1 }, limit: rows.length },
      )
    : [];
  const posts = new Map(usage.map((t) => [t._id, t.posts]));
  return {
    items: rows.map((r) => ({
      tag: r._id,
      // The counts follow changes within a minute; until then the recent posts are a floor.
      posts: Math.max(posts.get(r._id) ?? 0, r.recent),
      rise: Math.round(r.rise * 100) / 100,
      recentPosts: r.recent,
    })),
    computedAt: now.toISOString(),
  };
}
