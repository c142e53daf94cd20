import { z } from "zod";

export const CheckinResult = z
  .object({
    currentStreak: z.number().int(),
    longestStreak: z.number().int(),
    gemsAwarded: z.number().int(),
    date: z.string(),
  })
  .meta({ id: "CheckinResult" });

export type CheckinResult = z.infer<typeof CheckinResult>;
