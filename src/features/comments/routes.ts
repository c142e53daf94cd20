import { createRoute } from "@hono/zod-openapi";
import { optionalAuth, requireAuth, viewerOf } from "../../http/auth";
import { json, problems, router } from "../../http/openapi";
import { IdParam, PageQuery } from "../../http/pagination";

import { Comment, CommentPage, CreateCommentBody, EditCommentBody } from "./schema";
import { addComment, deleteComment, editComment, listComments } from "./service";

const tags = ["comments"];
const jsonBody = <T>(schema: T) => ({ body: { content: { "application/json": { schema } }, required: true } });

const addRoute = createRoute({
  method: "post",
  path: "/v1/posts/{id}/comments",
  tags,
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "Comment on a post, or reply with parentId",
  description: "1–1000 characters. Replies to a reply join the top-level comment's thread.",
  request: { params: IdParam, ...jsonBody(CreateCommentBody) },
  responses: { 201: json(Comment, "Created"), ...problems(400, 401, 404, 429, 503) },
});

const listRoute = createRoute({
  method: "get",
  path: "/v1/posts/{id}/comments",
  tags,
  middleware: [optionalAuth()] as const,
  summary: "Threaded comments, oldest first",
  request: { params: IdParam, query: PageQuery },
  responses: { 200: json(CommentPage, "Threads"), ...problems(400, 401, 404, 429, 503) },
});

const editRoute = createRoute({
  method: "patch",
  path: "/v1/comments/{id}",
  tags,
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "Edit your comment (marks it edited)",
  request: { params: IdParam, ...jsonBody(EditCommentBody) },
  responses: { 200: json(Comment, "Edited"), ...problems(400, 401, 404, 429, 503) },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/v1/comments/{id}",
  tags,
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "Delete a comment (its author or a moderator)",
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, ...problems(400, 401, 404, 429, 503) },
});

export const commentsRoutes = router()
  .openapi(addRoute, async (c) =>
    c.json(await addComment(c.var.deps, viewerOf(c), c.req.valid("param").id, c.req.valid("json")), 201),
  )
  .openapi(listRoute, async (c) =>
    c.json(await listComments(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("query")), 200),
  )
  .openapi(editRoute, async (c) =>
    c.json(await editComment(c.var.deps, viewerOf(c), c.req.valid("param").id, c.req.valid("json").content), 200),
  )
  .openapi(deleteRoute, async (c) => {
    await deleteComment(c.var.deps, viewerOf(c), c.req.valid("param").id);
    return c.body(null, 204);
  });
