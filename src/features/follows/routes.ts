import { IdParam, PageQuery } from "../../core/schemas";
import { json, problems, router } from "../../http/openapi";
import { authedRoute, publicRoute } from "../../http/routes";
import { PublicUserPage } from "../users/schema";
import { follow, listFollows, unfollow } from "./service";

const tags = ["follows"];

const followRoute = authedRoute({
  method: "put",
  path: "/v1/users/{id}/follow",
  tags,
  summary: "Follow a user (idempotent)",
  request: { params: IdParam },
  responses: { 204: { description: "Following" }, ...problems(404) },
});

const unfollowRoute = authedRoute({
  method: "delete",
  path: "/v1/users/{id}/follow",
  tags,
  summary: "Unfollow a user (idempotent)",
  request: { params: IdParam },
  responses: { 204: { description: "Not following" } },
});

const listRoute = (direction: "followers" | "following") =>
  publicRoute({
    method: "get",
    path: `/v1/users/{id}/${direction}`,
    tags,
    summary: direction === "followers" ? "Who follows this user" : "Whom this user follows",
    description: "Newest first. `nextCursor` is null on the last page.",
    request: { params: IdParam, query: PageQuery },
    responses: { 200: json(PublicUserPage, "A page of users"), ...problems(404) },
  });

export const followsRoutes = router()
  .openapi(followRoute, async (c) => {
    await follow(c.var.deps, c.var.viewer, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(unfollowRoute, async (c) => {
    await unfollow(c.var.deps, c.var.viewer, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(listRoute("followers"), async (c) =>
    c.json(await listFollows(c.var.deps, c.req.valid("param").id, "followers", c.req.valid("query")), 200),
  )
  .openapi(listRoute("following"), async (c) =>
    c.json(await listFollows(c.var.deps, c.req.valid("param").id, "following", c.req.valid("query")), 200),
  );
