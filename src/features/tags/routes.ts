import { json, router } from "../../http/openapi";
import { publicRoute } from "../../http/routes";
import { TagsQuery, TagUsageList, TrendingTags } from "./schema";
import { tagsByPrefix, trendingTags } from "./service";

const tags = ["tags"];

const prefixRoute = publicRoute({
  method: "get",
  path: "/v1/tags",
  tags,
  cacheFirst: true,
  summary: "Tags by usage, for autocomplete",
  description:
    "Tags starting with `prefix` (case-insensitive, `#` optional), most used first; without `prefix`, the most " +
    "used tags. `posts` counts visible posts carrying the tag (published, approved, public) and follows changes " +
    "within about a minute. Answers are cached for TAG_PREFIX_CACHE_TTL_SECONDS.",
  request: { query: TagsQuery },
  responses: { 200: json(TagUsageList, "Matching tags") },
});

const trendingRoute = publicRoute({
  method: "get",
  path: "/v1/tags/trending",
  tags,
  cacheFirst: true,
  summary: "Tags rising most",
  description:
    "The largest rise of posts published with a tag in the last 24 h against the daily average of the 7 days " +
    "before (`rise`), among tags with at least TAG_TRENDING_MIN_POSTS posts in the last 24 h. Computed at most " +
    "every TAG_TRENDING_CACHE_TTL_SECONDS (`computedAt`).",
  responses: { 200: json(TrendingTags, "Trending tags") },
});

export const tagsRoutes = router()
  .openapi(trendingRoute, async (c) => c.json(await trendingTags(c.var.deps, c.var.redis), 200))
  .openapi(prefixRoute, async (c) => c.json(await tagsByPrefix(c.var.deps, c.var.redis, c.req.valid("query")), 200));
