import { createRoute, z } from "@hono/zod-openapi";
import { optionalAuth, requireAuth, viewerOf } from "../../http/auth";
import { json, problems, router } from "../../http/openapi";
import { IdParam } from "../../http/pagination";
import { CreatePostBody, Post, UpdatePostBody } from "./schema";
import { createPost, deletePost, getPost, sharePost, updatePost } from "./service";

const tags = ["posts"];
const bearer = [{ bearer: [] }];
const jsonBody = <T>(schema: T) => ({ body: { content: { "application/json": { schema } }, required: true } });

const createRoute_ = createRoute({
  method: "post",
  path: "/v1/posts",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "Publish a completed generation",
  description:
    "Only from the caller's own completed generation, once per generation (409 after). Tags are normalized " +
    "(lower-case, no '#', unique, ≤10). A post starts approved unless the moderation rules hold it back.",
  request: jsonBody(CreatePostBody),
  responses: { 201: json(Post, "Published"), ...problems(400, 401, 404, 409, 429, 503) },
});

const getRoute = createRoute({
  method: "get",
  path: "/v1/posts/{id}",
  tags,
  middleware: [optionalAuth()] as const,
  summary: "A post",
  description: "404 for missing posts and for posts the caller may not see (private, followers-only, held back).",
  request: { params: IdParam },
  responses: { 200: json(Post, "The post"), ...problems(400, 401, 404, 429, 503) },
});

const patchRoute = createRoute({
  method: "patch",
  path: "/v1/posts/{id}",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "Edit a post (author only)",
  request: { params: IdParam, ...jsonBody(UpdatePostBody) },
  responses: { 200: json(Post, "Updated"), ...problems(400, 401, 404, 429, 503) },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/v1/posts/{id}",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "Delete a post (author only, soft)",
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, ...problems(400, 401, 404, 429, 503) },
});

const shareRoute = createRoute({
  method: "post",
  path: "/v1/posts/{id}/share",
  tags,
  middleware: [optionalAuth()] as const,
  summary: "Record a share and get the link",
  request: { params: IdParam },
  responses: {
    200: json(z.object({ shareableUrl: z.string(), shareCount: z.number().int() }), "Share recorded"),
    ...problems(400, 401, 404, 429, 503),
  },
});

export const postsRoutes = router()
  .openapi(createRoute_, async (c) => c.json(await createPost(c.var.deps, viewerOf(c), c.req.valid("json")), 201))
  .openapi(getRoute, async (c) => c.json(await getPost(c.var.deps, c.var.viewer, c.req.valid("param").id), 200))
  .openapi(patchRoute, async (c) =>
    c.json(await updatePost(c.var.deps, viewerOf(c), c.req.valid("param").id, c.req.valid("json")), 200),
  )
  .openapi(deleteRoute, async (c) => {
    await deletePost(c.var.deps, viewerOf(c), c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(shareRoute, async (c) => c.json(await sharePost(c.var.deps, c.var.viewer, c.req.valid("param").id), 200));
