import { OptionalIdempotencyHeaders } from "../../core/idempotency";
import { IdParam, PageQuery } from "../../core/schemas";
import { idempotent } from "../../http/idempotency";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, viewerRoute } from "../../http/routes";
import { Comment, CommentPage, CreateCommentBody, EditCommentBody } from "./schema";
import { addComment, deleteComment, editComment, listComments } from "./service";

const tags = ["comments"];

const addRoute = authedRoute({
  method: "post",
  path: "/v1/posts/{id}/comments",
  tags,
  use: [idempotent("comment", { required: false })],
  summary: "Comment on a post, or reply with parentId",
  description:
    "1–1000 characters. Replies to a reply join the top-level comment's thread. With an `Idempotency-Key` a " +
    "retry (e.g. after a 503 or a timeout) returns the first answer (`Idempotent-Replayed: true` while it is " +
    "remembered, else the comment the first attempt made) instead of commenting twice; the same key with " +
    "another body is a 422, and while the first request runs a 409.",
  request: { params: IdParam, headers: OptionalIdempotencyHeaders, ...jsonBody(CreateCommentBody) },
  responses: { 201: json(Comment, "Created"), ...problems(404, 409, 422) },
});

const listRoute = viewerRoute({
  method: "get",
  path: "/v1/posts/{id}/comments",
  tags,
  summary: "Threaded comments, oldest first",
  request: { params: IdParam, query: PageQuery },
  responses: { 200: json(CommentPage, "Threads"), ...problems(404) },
});

const editRoute = authedRoute({
  method: "patch",
  path: "/v1/comments/{id}",
  tags,
  summary: "Edit your comment (marks it edited)",
  request: { params: IdParam, ...jsonBody(EditCommentBody) },
  responses: { 200: json(Comment, "Edited"), ...problems(404) },
});

const deleteRoute = authedRoute({
  method: "delete",
  path: "/v1/comments/{id}",
  tags,
  summary: "Delete a comment (its author or a moderator)",
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, ...problems(404) },
});

export const commentsRoutes = router()
  .openapi(addRoute, async (c) =>
    c.json(
      await addComment(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("json"), c.var.idempotency),
      201,
    ),
  )
  .openapi(listRoute, async (c) =>
    c.json(await listComments(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("query")), 200),
  )
  .openapi(editRoute, async (c) =>
    c.json(await editComment(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("json").content), 200),
  )
  .openapi(deleteRoute, async (c) => {
    await deleteComment(c.var.deps, c.var.viewer, c.req.valid("param").id);
    return c.body(null, 204);
  });
