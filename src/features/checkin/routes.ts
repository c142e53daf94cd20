import { prefetchedReads } from "../../http/context";
import { json, problems, router } from "../../http/openapi";
import { authedRoute } from "../../http/routes";
import { getValue } from "../../platform/redis-ops";
import { CheckinResult } from "./schema";
import { type CachedStreak, checkin } from "./service";

const checkinRoute = authedRoute({
  method: "post",
  path: "/v1/me/checkin",
  tags: ["users"],
  summary: "Daily check-in",
  description:
    "Once per calendar day in the caller's time zone (`GET /v1/me/settings`); yesterday's check-in extends the " +
    "streak, a missed day restarts it. `date` is that local day.",
  // The last check-in rides with the rate limit: a repeat the same day needs no store call of its own.
  prefetch: (deps, userId) => ({ last: getValue<CachedStreak>(deps.keys.userStreak(userId)) }),
  responses: { 200: json(CheckinResult, "Streak after the check-in"), ...problems(404) },
});

export const checkinRoutes = router().openapi(checkinRoute, async (c) => {
  const last = prefetchedReads(c)?.last as CachedStreak | null | undefined;
  return c.json(await checkin(c.var.deps, c.var.viewer, last), 200);
});
