import { OptionalIdempotencyHeaders } from "../../core/idempotency";
import { IdParam } from "../../core/schemas";
import { deviceIdOf } from "../../http/context";
import { idempotent } from "../../http/idempotency";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, viewerRoute } from "../../http/routes";
import { CreatePostBody, Post, ShareResult, UpdatePostBody } from "./schema";
import { createPost, deletePost, getPost, sharePost, updatePost } from "./service";

const tags = ["posts"];

const createPostRoute = authedRoute({
  method: "post",
  path: "/v1/posts",
  tags,
  summary: "Post a completed generation or your own uploads: published, a draft, or scheduled",
  description:
    "From the caller's own completed generation (`generationId`), once per generation (409 `already_posted` " +
    "after), or from their ready `post` uploads (`mediaId`: an image, or a video with `posterMediaId`, its " +
    "poster; `prompt` optional). Tags " +
    "are normalized (lower-case, no '#', unique, ≤10). `status` is `published` (default), `draft` (the author's " +
    "alone) or `scheduled` with `publishAt` 5 minutes to 30 days ahead; at most POST_SCHEDULED_MAX_PER_USER " +
    "scheduled posts per author (409 `schedule_limit`) and POST_SCHEDULED_MAX_PER_DAY per UTC day of " +
    "`publishAt` (409 `schedule_daily_limit`). A published post enters feeds and counts at once and its " +
    "followers are told right after, unless the moderation rules hold it back (`pending_review`). With an " +
    "`Idempotency-Key` a retry (e.g. after a 503) gets the first answer instead of the 409; the same key with " +
    "another body is a 422.",
  use: [idempotent("post", { required: false })],
  request: { headers: OptionalIdempotencyHeaders, ...jsonBody(CreatePostBody) },
  responses: { 201: json(Post, "Created"), ...problems(404, 409, 422) },
});

const getPostRoute = viewerRoute({
  method: "get",
  path: "/v1/posts/{id}",
  tags,
  summary: "A post",
  description:
    "404 for missing posts and for posts the caller may not see (private, followers-only, held back). Opening " +
    "someone else's post counts one view per viewer and POST_VIEW_WINDOW_SECONDS: the signed-in user, else " +
    "`X-Device-Id`, else the address; signed-out views from one address are capped per window.",
  request: { params: IdParam },
  responses: { 200: json(Post, "The post"), ...problems(404) },
});

const patchPostRoute = authedRoute({
  method: "patch",
  path: "/v1/posts/{id}",
  tags,
  summary: "Edit a post or move it through its lifecycle (author only)",
  description:
    "Tags, category, visibility, pinning and `status`: draft → published | scheduled; scheduled → draft | " +
    "published | scheduled (a new `publishAt`); published → archived; archived → published; pending_review → " +
    "archived. Any other move is a 409 `invalid_transition` naming both states; asking for the state the post " +
    "is in changes nothing. Publishing a draft or scheduled post makes it new (feeds, counts, followers told); " +
    "restoring an archived one brings it back where it was. Scheduling has the limits of POST /v1/posts. At " +
    "most POST_MAX_PINNED posts can be pinned (409 `pin_limit`), and only published ones (409 `not_published`).",
  request: { params: IdParam, ...jsonBody(UpdatePostBody) },
  responses: { 200: json(Post, "Updated"), ...problems(404, 409) },
});

const deletePostRoute = authedRoute({
  method: "delete",
  path: "/v1/posts/{id}",
  tags,
  summary: "Delete a post (author only, soft, in any state)",
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, ...problems(404) },
});

const sharePostRoute = authedRoute({
  method: "post",
  path: "/v1/posts/{id}/share",
  tags,
  summary: "Record a share and get the link",
  description:
    "Counts once per person and post; sharing again, or sharing one's own post, returns the link and " +
    "leaves the count as it is.",
  request: { params: IdParam },
  responses: { 200: json(ShareResult, "Share recorded"), ...problems(404) },
});

export const postsRoutes = router()
  .openapi(createPostRoute, async (c) =>
    c.json(await createPost(c.var.deps, c.var.viewer, c.req.valid("json"), c.var.idempotency), 201),
  )
  .openapi(getPostRoute, async (c) => {
    const origin = { deviceId: deviceIdOf(c), ip: c.var.clientIp };
    return c.json(await getPost(c.var.deps, c.var.viewer, c.req.valid("param").id, origin), 200);
  })
  .openapi(patchPostRoute, async (c) =>
    c.json(await updatePost(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("json")), 200),
  )
  .openapi(deletePostRoute, async (c) => {
    await deletePost(c.var.deps, c.var.viewer, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(sharePostRoute, async (c) =>
    c.json(await sharePost(c.var.deps, c.var.viewer, c.req.valid("param").id), 200),
  );
