import { z } from "@hono/zod-openapi";
import type { ReferralTrigger } from "../../config";
import type { ObjectId } from "../../platform/ids";
import { PublicUser } from "../users/schema";

/**
 * `referrals` (seed 000): written at signup with a referral code, validated once the referred user is active
 * and passes the anti-abuse checks. `status` is how far it got; `validated` stays as seed 000 has it.
 */
export interface ReferralDoc {
  _id: ObjectId;
  referrerId: ObjectId;
  referralCode: string;
  referredUserId: ObjectId;
  installSource: string;
  platform: string | null;
  bonusGemsAwarded: number;
  bonusMultiplierActive: boolean;
  bonusExpiresAt: Date | null;
  ipHash: string;
  deviceId: string | null;
  fraudScore: number;
  validated: boolean;
  createdAt: Date;
  status?: "pending" | "validated" | "rejected";
  /** What showed the referred user active (first post, return check-in). */
  trigger?: ReferralTrigger | null;
  validatedAt?: Date | null;
  rejectedReason?: RejectionReason | null;
  /** The referrer's bonus entry once paid; a validated referral without one is paid by reconciliation. */
  rewardTransactionId?: ObjectId | null;
}

export type RejectionReason = "self_referral" | "shared_device" | "shared_ip" | "account_unavailable";

export const ReferralItem = z
  .object({
    id: z.string(),
    user: PublicUser.nullable(),
    status: z.enum(["pending", "validated", "rejected"]),
    bonusGems: z.number().int(),
    createdAt: z.string(),
    validatedAt: z.string().nullable(),
  })
  .openapi("Referral");

export const ReferralSummary = z
  .object({
    code: z.string(),
    referralCount: z.number().int(),
    bonusActiveUntil: z.string().nullable(),
    items: z.array(ReferralItem),
    nextCursor: z.string().nullable(),
  })
  .openapi("ReferralSummary");

export type ReferralItem = z.infer<typeof ReferralItem>;
export type ReferralSummary = z.infer<typeof ReferralSummary>;
