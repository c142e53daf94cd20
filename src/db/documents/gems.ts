import type { ObjectId } from "../../platform/ids";

export const TRANSACTION_TYPES = ["earn", "spend", "refund", "admin_adjust"] as const;
export const TRANSACTION_SOURCES = [
  "votes",
  "daily_login",
  "streak_bonus",
  "referral",
  "trending_bonus",
  "purchase",
  "model_unlock",
  "ad_free_pass",
  "cosmetic",
  "gift_card",
  "gift",
  "admin",
] as const;
export type TransactionType = (typeof TRANSACTION_TYPES)[number];
export type TransactionSource = (typeof TRANSACTION_SOURCES)[number];

/** Update operators a movement may apply to its user in the same update as the balance (see `moveGems`). */
export interface UserEffect {
  $set?: Record<string, unknown>;
  /** Counters besides the gem fields (which the ledger sets itself and which win on a clash). */
  $inc?: Record<string, number>;
  $max?: Record<string, unknown>;
  $addToSet?: Record<string, unknown>;
}

/**
 * `gem_transactions` (seed 000): the ledger. `status` records how far applying it got: `pending` (written,
 * balance not yet moved), `applied`, or `rejected` (a spend the balance could not cover; moved nothing).
 */
export interface GemTransactionDoc {
  _id: ObjectId;
  userId: ObjectId;
  type: TransactionType;
  source: TransactionSource;
  amount: number;
  balanceBefore: number | null;
  balanceAfter: number | null;
  referenceId: string | null;
  referenceType: string | null;
  multiplier: number;
  baseAmount: number;
  description: string;
  metadata: Record<string, unknown>;
  idempotencyKey: string;
  /** User fields the movement sets along with the balance (a purchase's unlock); see `UserEffect`. */
  effect?: UserEffect | null;
  /** A condition on the user checked with the balance move (see `GemMovement.guard`). */
  guard?: Record<string, unknown> | null;
  /** Why a `rejected` entry moved nothing. */
  rejectedReason?: "insufficient" | "guard";
  status: "pending" | "applied" | "rejected";
  createdAt: Date;
  appliedAt: Date | null;
}
