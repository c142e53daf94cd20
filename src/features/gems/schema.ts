import { z } from "@hono/zod-openapi";
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
  status: "pending" | "applied" | "rejected";
  createdAt: Date;
  appliedAt: Date | null;
}

export const GemBalance = z
  .object({
    balance: z.number().int(),
    totalEarned: z.number().int(),
    totalSpent: z.number().int(),
    multiplier: z.number(),
    multiplierExpiresAt: z.string().nullable(),
  })
  .openapi("GemBalance");

export const GemTransaction = z
  .object({
    id: z.string(),
    type: z.enum(TRANSACTION_TYPES),
    source: z.enum(TRANSACTION_SOURCES),
    amount: z.number().int(),
    balanceBefore: z.number().int().nullable(),
    balanceAfter: z.number().int().nullable(),
    multiplier: z.number(),
    baseAmount: z.number().int(),
    referenceType: z.string().nullable(),
    referenceId: z.string().nullable(),
    description: z.string(),
    createdAt: z.string(),
  })
  .openapi("GemTransaction");

export const GemTransactionPage = z
  .object({ items: z.array(GemTransaction), nextCursor: z.string().nullable() })
  .openapi("GemTransactionPage");

export type GemTransaction = z.infer<typeof GemTransaction>;

export function toGemTransaction(t: GemTransactionDoc): GemTransaction {
  return {
    id: t._id.toHexString(),
    type: t.type,
    source: t.source,
    amount: t.amount,
    balanceBefore: t.balanceBefore,
    balanceAfter: t.balanceAfter,
    multiplier: t.multiplier,
    baseAmount: t.baseAmount,
    referenceType: t.referenceType,
    referenceId: t.referenceId,
    description: t.description,
    createdAt: t.createdAt.toISOString(),
  };
}
