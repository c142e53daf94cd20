import { ApiError } from "../../core/errors";
import { json, problems, router } from "../../http/openapi";
import { viewerRoute } from "../../http/routes";
import { PostPage } from "../posts/schema";
import { CategoryParams, FeedKindParams, IdParam, PageQuery, SearchQuery, TagParams, UserPostsQuery } from "./schema";
import { categoryFeed, followingFeed, rankedFeed, searchPosts, tagFeed, userPosts } from "./service";

const tags = ["feeds"];
const list = { 200: json(PostPage, "A page of posts") };
const visibilityNote =
  "Only published, approved, not-deleted posts (never drafts, scheduled or archived ones); followers-only posts " +
  "only to followers; nothing from shadow-banned authors " +
  "except to themselves. Keyset cursors: pages never repeat or skip posts while new ones arrive.";

const rankedRoute = viewerRoute({
  method: "get",
  path: "/v1/feeds/{kind}",
  tags,
  cacheFirst: true,
  summary: "new, trending, hot, top or following",
  description: `${visibilityNote} \`following\` needs a signed-in caller. First pages of new/trending/hot are cached.`,
  request: { params: FeedKindParams, query: PageQuery },
  responses: list,
});

const categoryRoute = viewerRoute({
  method: "get",
  path: "/v1/feeds/category/{category}",
  tags,
  summary: "Posts in a category, by trending score",
  request: { params: CategoryParams, query: PageQuery },
  responses: list,
});

const tagRoute = viewerRoute({
  method: "get",
  path: "/v1/tags/{tag}/posts",
  tags,
  summary: "Posts with a tag, newest first",
  request: { params: TagParams, query: PageQuery },
  responses: list,
});

const userPostsRoute = viewerRoute({
  method: "get",
  path: "/v1/users/{id}/posts",
  tags,
  summary: "A user's posts: pinned first, then newest first",
  description:
    "The author sees all of their own posts (drafts, scheduled, archived and held ones too; `status` picks one " +
    "state); others see published posts as visibility allows. The first page starts with the author's pinned " +
    "posts (at most POST_MAX_PINNED, newest pin first), followed by `limit` posts newest first; later pages " +
    "never repeat a pinned post.",
  request: { params: IdParam, query: UserPostsQuery },
  responses: { ...list, ...problems(404) },
});

const searchRoute = viewerRoute({
  method: "get",
  path: "/v1/search/posts",
  tags,
  summary: "Search prompts and tags",
  request: { query: SearchQuery },
  responses: list,
});

export const feedsRoutes = router()
  .openapi(categoryRoute, async (c) =>
    c.json(await categoryFeed(c.var.deps, c.var.viewer, c.req.valid("param").category, c.req.valid("query")), 200),
  )
  .openapi(rankedRoute, async (c) => {
    const { kind } = c.req.valid("param");
    const query = c.req.valid("query");
    if (kind !== "following") return c.json(await rankedFeed(c.var.deps, c.var.redis, c.var.viewer, kind, query), 200);
    if (!c.var.viewer) throw ApiError.unauthorized("The following feed needs a signed-in caller.");
    return c.json(await followingFeed(c.var.deps, c.var.redis, c.var.viewer, query), 200);
  })
  .openapi(tagRoute, async (c) =>
    c.json(await tagFeed(c.var.deps, c.var.viewer, c.req.valid("param").tag, c.req.valid("query")), 200),
  )
  .openapi(userPostsRoute, async (c) =>
    c.json(await userPosts(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("query")), 200),
  )
  .openapi(searchRoute, async (c) => {
    const { q, ...pageQuery } = c.req.valid("query");
    return c.json(await searchPosts(c.var.deps, c.var.viewer, q, pageQuery), 200);
  });
