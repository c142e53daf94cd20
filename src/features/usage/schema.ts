import { z } from "zod";

export const METERED_FEATURES = ["generations", "votes", "reports", "verification_emails"] as const;
export type MeteredFeature = (typeof METERED_FEATURES)[number];

export const UsageItem = z
  .object({
    feature: z.enum(METERED_FEATURES),
    used: z.number().int().nonnegative().meta({ description: "Used in the current period" }),
    limit: z.number().int().nonnegative().meta({ description: "What the caller's tier allows per period" }),
    resetsAt: z.string().meta({
      description:
        "When the period ends: the next UTC midnight for daily quotas; for rolling windows (reports, " +
        "verification emails) the end of the current window, after which earlier use weighs less and less",
    }),
  })
  .meta({ id: "UsageItem" });

export const Usage = z.object({ items: z.array(UsageItem) }).meta({ id: "Usage" });
export type Usage = z.infer<typeof Usage>;
