import { IdParam, PageQuery } from "../../core/schemas";
import { json, problems, router } from "../../http/openapi";
import { authedRoute } from "../../http/routes";
import { PostPage } from "../posts/schema";
import { savedPosts, savePost, unsavePost } from "./service";

const tags = ["saves"];

const saveRoute = authedRoute({
  method: "put",
  path: "/v1/posts/{id}/save",
  tags,
  summary: "Save a post (idempotent)",
  description:
    "One save per person and post: saving again changes nothing. 404 for a post the caller may not see. " +
    "`saveCount` on the post counts saves; who saved is private.",
  request: { params: IdParam },
  responses: { 204: { description: "Saved" }, ...problems(404) },
});

const unsaveRoute = authedRoute({
  method: "delete",
  path: "/v1/posts/{id}/save",
  tags,
  summary: "Take a save back (idempotent)",
  request: { params: IdParam },
  responses: { 204: { description: "Not saved" } },
});

const listRoute = authedRoute({
  method: "get",
  path: "/v1/me/saved",
  tags,
  summary: "The caller's saved posts",
  description:
    "Most recently saved first. Posts the caller can no longer see are left out (a page may be short); " +
    "`nextCursor` is null on the last page. Only the owner can list their saves.",
  request: { query: PageQuery },
  responses: { 200: json(PostPage, "A page of saved posts") },
});

export const savesRoutes = router()
  .openapi(saveRoute, async (c) => {
    await savePost(c.var.deps, c.var.viewer, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(unsaveRoute, async (c) => {
    await unsavePost(c.var.deps, c.var.viewer, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(listRoute, async (c) => c.json(await savedPosts(c.var.deps, c.var.viewer, c.req.valid("query")), 200));
