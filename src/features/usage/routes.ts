import { prefetchedReads } from "../../http/context";
import { json, router } from "../../http/openapi";
import { authedRoute } from "../../http/routes";
import { Usage } from "./schema";
import { usageOf, usageReads } from "./service";

const usageRoute = authedRoute({
  method: "get",
  path: "/v1/me/usage",
  tags: ["users"],
  prefetch: usageReads,
  summary: "The caller's use of each metered feature in the current period",
  description:
    "Per feature (generations, votes, reports, verification emails): used, the caller's tier's limit and when " +
    "the period ends, from the counters that enforce the limits. One Redis round trip in all.",
  responses: { 200: json(Usage, "Usage") },
});

export const usageRoutes = router().openapi(usageRoute, async (c) =>
  c.json(await usageOf(c.var.deps, c.var.viewer, prefetchedReads(c)), 200),
);
