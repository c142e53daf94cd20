import type { ObjectId } from "../../platform/ids";

/** What makes a referred user count as active: their first post, or a check-in on a later day than signup. */
export const REFERRAL_TRIGGERS = ["first_post", "return_checkin"] as const;
export type ReferralTrigger = (typeof REFERRAL_TRIGGERS)[number];

export type RejectionReason = "self_referral" | "shared_device" | "shared_ip" | "account_unavailable";

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
  /** The referred user's signup signals; null once that account is erased. */
  ipHash: string | null;
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
