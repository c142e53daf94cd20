import { createRoute, z } from "@hono/zod-openapi";
import { optionalAuth } from "../../http/auth";
import { json, problems, router } from "../../http/openapi";
import { PublicUser } from "../users/schema";
import { LEADERBOARD_PERIODS } from "./periods";
import { leaderboard } from "./service";

const LeaderboardSchema = z
  .object({
    period: z.enum(LEADERBOARD_PERIODS),
    items: z.array(z.object({ rank: z.number().int(), user: PublicUser, score: z.number() })),
    me: z.object({ rank: z.number().int(), score: z.number() }).nullable(),
  })
  .openapi("Leaderboard");

const leaderboardRoute = createRoute({
  method: "get",
  path: "/v1/leaderboards/{period}",
  tags: ["gems"],
  middleware: [optionalAuth()] as const,
  summary: "Top earners of the day, the week or all time, with the caller's own rank",
  description:
    "Scored by gems earned from votes, check-ins, streaks, referrals and trending bonuses (gifts and admin " +
    "adjustments do not count). Days and ISO weeks (from Monday) roll over at 00:00 UTC. Equal scores share a " +
    "rank. `me` is null for anonymous callers and for callers who earned nothing in the period.",
  request: {
    params: z.object({ period: z.enum(LEADERBOARD_PERIODS) }),
    query: z.object({ limit: z.coerce.number().int().min(1).max(100).default(50) }),
  },
  responses: { 200: json(LeaderboardSchema, "The board"), ...problems(400, 401, 429, 503) },
});

export const leaderboardsRoutes = router().openapi(leaderboardRoute, async (c) => {
  const { period } = c.req.valid("param");
  return c.json(await leaderboard(c.var.deps, c.var.viewer, period, c.req.valid("query").limit), 200);
});
