import { createRoute, z } from "@hono/zod-openapi";
import { optionalAuth, viewerOf } from "../../http/auth";
import { json, problems, router } from "../../http/openapi";
import { IdParam, PageQuery } from "../../http/pagination";
import { PostPage } from "../posts/schema";
import { categoryFeed, followingFeed, rankedFeed, searchPosts, tagFeed, userPosts } from "./service";

const tags = ["feeds"];
const list = { 200: json(PostPage, "A page of posts"), ...problems(400, 401, 404, 429, 503) };
const visibilityNote =
  "Only approved, not-deleted posts; followers-only posts only to followers; nothing from shadow-banned authors " +
  "except to themselves. Keyset cursors: pages never repeat or skip posts while new ones arrive.";

const rankedRoute = createRoute({
  method: "get",
  path: "/v1/feeds/{kind}",
  tags,
  middleware: [optionalAuth()] as const,
  summary: "new, trending, hot, top or following",
  description: `${visibilityNote} \`following\` needs a signed-in caller. First pages of new/trending/hot are cached.`,
  request: {
    params: z.object({ kind: z.enum(["new", "trending", "hot", "top", "following"]) }),
    query: PageQuery,
  },
  responses: list,
});

const categoryRoute = createRoute({
  method: "get",
  path: "/v1/feeds/category/{category}",
  tags,
  middleware: [optionalAuth()] as const,
  summary: "Posts in a category, by trending score",
  request: { params: z.object({ category: z.string().regex(/^[A-Za-z0-9_-]{2,32}$/) }), query: PageQuery },
  responses: list,
});

const tagRoute = createRoute({
  method: "get",
  path: "/v1/tags/{tag}/posts",
  tags,
  middleware: [optionalAuth()] as const,
  summary: "Posts with a tag, newest first",
  request: { params: z.object({ tag: z.string().min(1).max(33) }), query: PageQuery },
  responses: list,
});

const userPostsRoute = createRoute({
  method: "get",
  path: "/v1/users/{id}/posts",
  tags,
  middleware: [optionalAuth()] as const,
  summary: "A user's posts, newest first",
  description: "The author sees all of their own posts; others see what visibility allows.",
  request: { params: IdParam, query: PageQuery },
  responses: list,
});

const searchRoute = createRoute({
  method: "get",
  path: "/v1/search/posts",
  tags,
  middleware: [optionalAuth()] as const,
  summary: "Search prompts and tags",
  request: { query: PageQuery.extend({ q: z.string().trim().min(1).max(100) }) },
  responses: list,
});

export const feedsRoutes = router()
  .openapi(categoryRoute, async (c) =>
    c.json(await categoryFeed(c.var.deps, c.var.viewer, c.req.valid("param").category, c.req.valid("query")), 200),
  )
  .openapi(rankedRoute, async (c) => {
    const { kind } = c.req.valid("param");
    const query = c.req.valid("query");
    if (kind === "following") return c.json(await followingFeed(c.var.deps, viewerOf(c), query), 200);
    return c.json(await rankedFeed(c.var.deps, c.var.viewer, kind, query), 200);
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
