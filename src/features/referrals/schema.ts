import { z } from "zod";
import { PublicUser } from "../users/schema";

export const ReferralItem = z
  .object({
    id: z.string(),
    user: PublicUser.nullable(),
    status: z.enum(["pending", "validated", "rejected"]),
    bonusGems: z.number().int(),
    createdAt: z.string(),
    validatedAt: z.string().nullable(),
  })
  .meta({ id: "Referral" });

export const ReferralSummary = z
  .object({
    code: z.string(),
    referralCount: z.number().int(),
    bonusActiveUntil: z.string().nullable(),
    items: z.array(ReferralItem),
    nextCursor: z.string().nullable(),
  })
  .meta({ id: "ReferralSummary" });

export type ReferralItem = z.infer<typeof ReferralItem>;
export type ReferralSummary = z.infer<typeof ReferralSummary>;
