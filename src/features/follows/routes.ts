import { createRoute, z } from "@hono/zod-openapi";
import { requireAuth, viewerOf } from "../../http/auth";
import { json, problems, router } from "../../http/openapi";
import { IdParam, PageQuery } from "../../http/pagination";
import { PublicUser } from "../users/schema";
import { follow, listFollows, unfollow } from "./service";

const PublicUserPage = z
  .object({ items: z.array(PublicUser), nextCursor: z.string().nullable() })
  .openapi("PublicUserPage");
const tags = ["follows"];

const followRoute = createRoute({
  method: "put",
  path: "/v1/users/{id}/follow",
  tags,
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "Follow a user (idempotent)",
  request: { params: IdParam },
  responses: { 204: { description: "Following" }, ...problems(400, 401, 404, 429, 503) },
});

const unfollowRoute = createRoute({
  method: "delete",
  path: "/v1/users/{id}/follow",
  tags,
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "Unfollow a user (idempotent)",
  request: { params: IdParam },
  responses: { 204: { description: "Not following" }, ...problems(400, 401, 429, 503) },
});

const listRoute = (direction: "followers" | "following") =>
  createRoute({
    method: "get",
    path: `/v1/users/{id}/${direction}`,
    tags,
    summary: direction === "followers" ? "Who follows this user" : "Whom this user follows",
    description: "Newest first. `nextCursor` is null on the last page.",
    request: { params: IdParam, query: PageQuery },
    responses: { 200: json(PublicUserPage, "A page of users"), ...problems(400, 404, 429, 503) },
  });

export const followsRoutes = router()
  .openapi(followRoute, async (c) => {
    await follow(c.var.deps, viewerOf(c), c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(unfollowRoute, async (c) => {
    await unfollow(c.var.deps, viewerOf(c), c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(listRoute("followers"), async (c) =>
    c.json(await listFollows(c.var.deps, c.req.valid("param").id, "followers", c.req.valid("query")), 200),
  )
  .openapi(listRoute("following"), async (c) =>
    c.json(await listFollows(c.var.deps, c.req.valid("param").id, "following", c.req.valid("query")), 200),
  );
