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

// Store and gifts

export const STORE_ITEM_KINDS = ["model_unlock", "ad_free_pass", "cosmetic", "gift_card"] as const;

export const StoreItem = z
  .object({
    sku: z.string(),
    kind: z.enum(STORE_ITEM_KINDS),
    price: z.number().int().openapi({ description: "In gems" }),
    title: z.string(),
    model: z.string().optional().openapi({ description: "model_unlock: the generation model it unlocks" }),
    days: z.number().int().optional().openapi({ description: "ad_free_pass: days added to the pass" }),
    theme: z.string().optional().openapi({ description: "cosmetic: the profile theme it unlocks and applies" }),
    value: z.number().int().optional().openapi({ description: "gift_card: gems the card's code is worth" }),
  })
  .openapi("StoreItem");

export const StoreCatalog = z.object({ items: z.array(StoreItem) }).openapi("StoreCatalog");

export const PurchaseBody = z
  .object({ sku: z.string().min(1).max(64) })
  .strict()
  .openapi("PurchaseRequest");

export const RedeemGiftCardBody = z
  .object({ code: z.string().trim().min(1).max(40) })
  .strict()
  .openapi("RedeemGiftCardRequest");

export const GiftCard = z
  .object({ code: z.string(), value: z.number().int() })
  .openapi("GiftCard", { description: "A gift card bought in the store: its code is worth `value` gems once." });

export const PurchaseResult = z
  .object({
    transaction: GemTransaction,
    balance: z.number().int().openapi({ description: "The balance right after this purchase" }),
    giftCard: GiftCard.optional(),
  })
  .openapi("PurchaseResult");

export const IdempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(255)
    .openapi({ description: "Client-chosen key; a repeat replays the first answer", example: "9f1c…" }),
});

export const GIFT_MESSAGE_MAX = 200;

export const GiftBody = z
  .object({
    amount: z.number().int().positive().openapi({ description: "Gems the sender pays (GIFT_MIN_GEMS–GIFT_MAX_GEMS)" }),
    message: z.string().max(GIFT_MESSAGE_MAX).optional(),
  })
  .strict()
  .openapi("GiftRequest");

export const GiftResult = z
  .object({
    transaction: GemTransaction,
    platformFee: z.number().int(),
    payout: z.number().int().openapi({ description: "What the receiver is credited: amount − platformFee" }),
    transferId: z.string().openapi({ description: "Shared by the sender's and the receiver's ledger entries" }),
  })
  .openapi("GiftResult");

export type StoreItem = z.infer<typeof StoreItem>;
export type PurchaseResult = z.infer<typeof PurchaseResult>;
export type GiftBody = z.infer<typeof GiftBody>;
export type GiftResult = z.infer<typeof GiftResult>;
