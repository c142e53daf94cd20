import { IdParam } from "../../core/schemas";
import { deviceIdOf, requestMetaOf } from "../../http/context";
import { json, problems, router } from "../../http/openapi";
import { authedRoute } from "../../http/routes";
import { VoteResult } from "./schema";
import { castVote, removeVote } from "./service";

const castRoute = authedRoute({
  method: "put",
  path: "/v1/posts/{id}/vote",
  tags: ["votes"],
  summary: "Vote on a post (idempotent)",
  description:
    "One vote per user and post; repeating has no further effect. Own posts → 403; over the tier's daily vote " +
    "quota → 429 `quota_exceeded`. Send `X-Device-Id` so fraud scoring can see the device.",
  request: { params: IdParam },
  responses: { 200: json(VoteResult, "Vote recorded"), ...problems(403, 404) },
});

const removeRoute = authedRoute({
  method: "delete",
  path: "/v1/posts/{id}/vote",
  tags: ["votes"],
  summary: "Take a vote back while it is unsettled",
  request: { params: IdParam },
  responses: { 204: { description: "No vote now" }, ...problems(404, 409) },
});

export const votesRoutes = router()
  .openapi(castRoute, async (c) => {
    const deviceId = deviceIdOf(c);
    const result = await castVote(c.var.deps, c.var.viewer, { ...requestMetaOf(c), deviceId }, c.req.valid("param").id);
    return c.json(result, 200);
  })
  .openapi(removeRoute, async (c) => {
    await removeVote(c.var.deps, c.var.viewer, c.req.valid("param").id);
    return c.body(null, 204);
  });
