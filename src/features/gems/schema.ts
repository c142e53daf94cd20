import { z } from "zod";
import { PageQuery, pageOf } from "../../core/schemas";
import { type GemTransactionDoc, TRANSACTION_SOURCES, TRANSACTION_TYPES } from "../../db";

export const GemBalance = z
  .object({
    balance: z.number().int(),
    totalEarned: z.number().int(),
    totalSpent: z.number().int(),
    multiplier: z.number(),
    multiplierExpiresAt: z.string().nullable(),
  })
  .meta({ id: "GemBalance" });

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
  .meta({ id: "GemTransaction" });

export const GemTransactionPage = pageOf(GemTransaction, "GemTransactionPage");

export type GemBalance = z.infer<typeof GemBalance>;
export type GemTransaction = z.infer<typeof GemTransaction>;
export type GemTransactionPage = z.infer<typeof GemTransactionPage>;

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
    price: z.number().int().meta({ description: "In gems" }),
    title: z.string(),
    model: z.string().optional().meta({ description: "model_unlock: the generation model it unlocks" }),
    days: z.number().int().optional().meta({ description: "ad_free_pass: days added to the pass" }),
    theme: z.string().optional().meta({ description: "cosmetic: the profile theme it unlocks and applies" }),
    value: z.number().int().optional().meta({ description: "gift_card: gems the card's code is worth" }),
  })
  .meta({ id: "StoreItem" });

export const StoreCatalog = z.object({ items: z.array(StoreItem) }).meta({ id: "StoreCatalog" });

export const PurchaseBody = z
  .object({ sku: z.string().min(1).max(64) })
  .strict()
  .meta({ id: "PurchaseRequest" });

export const RedeemGiftCardBody = z
  .object({ code: z.string().trim().min(1).max(40) })
  .strict()
  .meta({ id: "RedeemGiftCardRequest" });

export const GiftCard = z
  .object({ code: z.string(), value: z.number().int() })
  .meta({ id: "GiftCard", description: "A gift card bought in the store: its code is worth `value` gems once." });

export const PurchaseResult = z
  .object({
    transaction: GemTransaction,
    balance: z.number().int().meta({ description: "The balance right after this purchase" }),
    giftCard: GiftCard.optional(),
  })
  .meta({ id: "PurchaseResult" });

export const GIFT_MESSAGE_MAX = 200;

export const GiftBody = z
  .object({
    amount: z.number().int().positive().meta({ description: "Gems the sender pays (GIFT_MIN_GEMS–GIFT_MAX_GEMS)" }),
    message: z.string().max(GIFT_MESSAGE_MAX).optional(),
  })
  .strict()
  .meta({ id: "GiftRequest" });

export const GiftResult = z
  .object({
    transaction: GemTransaction,
    platformFee: z.number().int(),
    payout: z.number().int().meta({ description: "What the receiver is credited: amount − platformFee" }),
    transferId: z.string().meta({ description: "Shared by the sender's and the receiver's ledger entries" }),
  })
  .meta({ id: "GiftResult" });

export const TransactionsQuery = PageQuery.extend({ type: z.enum(TRANSACTION_TYPES).optional() });

export type StoreItem = z.infer<typeof StoreItem>;
export type StoreCatalog = z.infer<typeof StoreCatalog>;
export type PurchaseResult = z.infer<typeof PurchaseResult>;
export type GiftBody = z.infer<typeof GiftBody>;
export type GiftResult = z.infer<typeof GiftResult>;
