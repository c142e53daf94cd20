import { z } from "zod";
import { PublicUser } from "../users/schema";
import { LEADERBOARD_PERIODS } from "./periods";

export const Leaderboard = z
  .object({
    period: z.enum(LEADERBOARD_PERIODS),
    items: z.array(z.object({ rank: z.number().int(), user: PublicUser, score: z.number() })),
    me: z.object({ rank: z.number().int(), score: z.number() }).nullable(),
  })
  .meta({ id: "Leaderboard" });
export type Leaderboard = z.infer<typeof Leaderboard>;
export type LeaderboardItem = Leaderboard["items"][number];

export const LeaderboardParams = z.object({ period: z.enum(LEADERBOARD_PERIODS) });
export const LeaderboardQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(50) });
