import { json, router } from "../../http/openapi";
import { viewerRoute } from "../../http/routes";
import { Leaderboard, LeaderboardParams, LeaderboardQuery } from "./schema";
import { leaderboard } from "./service";

const leaderboardRoute = viewerRoute({
  method: "get",
  path: "/v1/leaderboards/{period}",
  tags: ["gems"],
  summary: "Top earners of the day, the week or all time, with the caller's own rank",
  description:
    "Scored by gems earned from votes, check-ins, streaks, referrals and trending bonuses (gifts and admin " +
    "adjustments do not count). Days and ISO weeks (from Monday) roll over at 00:00 UTC. Equal scores share a " +
    "rank. `me` is null for anonymous callers and for callers who earned nothing in the period.",
  request: { params: LeaderboardParams, query: LeaderboardQuery },
  responses: { 200: json(Leaderboard, "The board") },
});

export const leaderboardsRoutes = router().openapi(leaderboardRoute, async (c) => {
  const { period } = c.req.valid("param");
  return c.json(await leaderboard(c.var.deps, c.var.viewer, period, c.req.valid("query").limit), 200);
});
