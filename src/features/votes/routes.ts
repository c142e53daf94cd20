import { createRoute, z } from "@hono/zod-openapi";
import { requireAuth, viewerOf } from "../../http/auth";
import { requestMetaOf } from "../../http/context";
import { json, problems, router } from "../../http/openapi";
import { IdParam } from "../../http/pagination";
import { castVote, removeVote } from "./service";

const VoteResult = z.object({ voted: z.literal(true), voteCount: z.number().int() }).openapi("VoteResult");

const castRoute = createRoute({
  method: "put",
  path: "/v1/posts/{id}/vote",
  tags: ["votes"],
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "Vote on a post (idempotent)",
  description:
    "One vote per user and post; repeating has no further effect. Own posts → 403; over the tier's daily vote " +
    "quota → 429 `quota_exceeded`. Send `X-Device-Id` so fraud scoring can see the device.",
  request: { params: IdParam },
  responses: { 200: json(VoteResult, "Vote recorded"), ...problems(400, 401, 403, 404, 429, 503) },
});

const removeRoute = createRoute({
  method: "delete",
  path: "/v1/posts/{id}/vote",
  tags: ["votes"],
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "Take a vote back while it is unsettled",
  request: { params: IdParam },
  responses: { 204: { description: "No vote now" }, ...problems(400, 401, 404, 409, 429, 503) },
});

export const votesRoutes = router()
  .openapi(castRoute, async (c) => {
    const deviceId = c.req.header("x-device-id")?.slice(0, 128) || null;
    const result = await castVote(c.var.deps, viewerOf(c), { ...requestMetaOf(c), deviceId }, c.req.valid("param").id);
    return c.json(result, 200);
  })
  .openapi(removeRoute, async (c) => {
    await removeVote(c.var.deps, viewerOf(c), c.req.valid("param").id);
    return c.body(null, 204);
  });
