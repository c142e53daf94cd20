import type { ShopItemConfig } from "../../config";
import { ApiError } from "../../core/errors";
import { forgetSelfView } from "../../core/standing";
import type { Viewer } from "../../core/viewer";
import type { GemTransactionDoc, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { StoreUnavailableError } from "../../platform/errors";
import { ObjectId } from "../../platform/ids";
import { DuplicateKeyError, PreconditionFailedError } from "../../platform/mongo/client";
import { claimOrGet, deleteKeys, runOp } from "../../platform/redis-ops";
import { DAY_MS } from "../../platform/time";
import { owe } from "../owed/effects";
import {
  applyEntry,
  type BatchMovement,
  batchMovement,
  followUpsOf,
  type GemMovement,
  GuardFailedError,
  moveGems,
  type PipelineEffect,
  recordedBalance,
  withBalance,
} from "./ledger";
import { ledgerKeys } from "./ledger-keys";
import { type PurchaseResult, type StoreCatalog, toGemTransaction } from "./schema";

/** Crockford-style alphabet: no I, L, O, U, so codes survive being read aloud or typed. */
const CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** The catalog as the store shows it (what `SHOP_CATALOG` configures). */
export function shopCatalog(deps: Deps): StoreCatalog {
  return { items: deps.config.shop.catalog.map((item) => ({ ...item })) };
}

/**
 * Buys one catalog item, waiting on one Data API call: the entry and the debit, which carries what it buys
 * (unlock, theme, pass end) in the same update of the user, in one transaction with what the purchase owes after
 * the answer (the entry's balances, the buyer's self view). That update is guarded, so a permanent item is only
 * paid for while not owned and two concurrent purchases can never both pay for it; passes stack from the end of
 * a running one, computed in the update itself. A short per-user, per-SKU Redis lock makes the usual
 * concurrent double tap a clean 409 before any ledger write. Gift cards are consumable: each purchase issues a
 * new code worth `value` gems, redeemable once (see `redeemGiftCard`).
 */
export async function purchase(deps: Deps, viewer: Viewer, sku: string, requestKey: string): Promise<PurchaseResult> {
  const item = deps.config.shop.catalog.find((i) => i.sku === sku);
  if (!item) throw ApiError.validation([{ path: "sku", message: "unknown SKU" }], `No store item has SKU "${sku}".`);
  const ledgerKey = ledgerKeys.purchase(viewer.id, requestKey);
  if (item.kind === "gift_card") {
    const bought = await buy(deps, viewer, item, ledgerKey);
    await forgetSelfView(deps, viewer.id);
    return bought;
  }

  const lockKey = deps.keys.idempotency("store-item", `${viewer.id}:${item.sku}`);
  // A short lock (its holder may die; it then expires on its own) turns a double tap into a clean 409.
  const holder = await runOp(deps.redis, claimOrGet<string>(lockKey, "1", deps.config.shop.itemLockSeconds)).catch(
    (error: unknown) => {
      throw new StoreUnavailableError("redis", String(error), { cause: error });
    },
  );
  if (holder !== null) {
    throw ApiError.conflict("purchase_in_progress", "A purchase of this item is already in progress; retry shortly.");
  }
  try {
    return await buy(deps, viewer, item, ledgerKey);
  } finally {
    // The lock goes with the buyer's cached self view (what they bought shows there) in one round trip.
    await runOp(deps.redis, deleteKeys([lockKey, deps.keys.selfView(viewer.id)])).catch((error: unknown) => {
      deps.log.warn("shop item lock release failed", { error: String(error) });
    });
  }
}

function owns(user: Pick<UserDoc, "unlockedModels" | "unlockedThemes">, item: ShopItemConfig): boolean {
  if (item.kind === "model_unlock") return (user.unlockedModels ?? []).includes(item.model);
  if (item.kind === "cosmetic") return (user.unlockedThemes ?? []).includes(item.theme);
  return false;
}

/** `value` added to the array `field` unless it is there already (order kept), as an update-pipeline expression. */
const withMember = (field: string, value: string) => {
  const current = { $ifNull: [`$${field}`, []] };
  return { $cond: [{ $in: [value, current] }, current, { $concatArrays: [current, [value]] }] };
};

/** What the purchase changes on the user, applied with the debit (update-pipeline expressions). */
function effectOf(deps: Deps, item: ShopItemConfig): PipelineEffect {
  switch (item.kind) {
    case "model_unlock":
      return { unlockedModels: withMember("unlockedModels", item.model) };
    case "cosmetic":
      return { unlockedThemes: withMember("unlockedThemes", item.theme), profileTheme: { $literal: item.theme } };
    case "ad_free_pass": {
      // Passes stack: the days start where a running pass ends, read in the same update.
      const now = { $literal: deps.clock.now() };
      return { adFreeUntil: { $add: [{ $max: [now, { $ifNull: ["$adFreeUntil", now] }] }, item.days * DAY_MS] } };
    }
    case "gift_card":
      return {};
  }
}

/** What must still be true of the user when the debit lands (checked in the same update). */
function guardOf(item: ShopItemConfig): Record<string, unknown> | undefined {
  switch (item.kind) {
    case "model_unlock":
      return { unlockedModels: { $ne: item.model } };
    case "cosmetic":
      return { unlockedThemes: { $ne: item.theme } };
    case "ad_free_pass":
    case "gift_card":
      return undefined;
  }
}

async function buy(deps: Deps, viewer: Viewer, item: ShopItemConfig, ledgerKey: string): Promise<PurchaseResult> {
  const metadata: Record<string, unknown> = { sku: item.sku, kind: item.kind };
  if (item.kind === "gift_card") metadata.giftCard = { code: newGiftCardCode(), value: item.value };
  const movement: Omit<GemMovement, "effect"> = {
    userId: new ObjectId(viewer.id),
    type: "spend",
    source: item.kind,
    amount: -item.price,
    referenceType: "product",
    referenceId: item.sku,
    description: item.title,
    metadata,
    idempotencyKey: ledgerKey,
    ...(guardOf(item) ? { guard: guardOf(item) } : {}),
  };
  const debit = batchMovement(deps, movement, deps.clock.now(), { effect: effectOf(deps, item) });
  const owed = owe(deps, [followUpsOf([debit])]);
  let moved: { gemBalance: number } | null;
  try {
    [, moved] = await deps.db.batch([debit.insert, debit.move, owed.step], { transaction: true });
  } catch (error) {
    // This key bought something already (Redis lost the record of that request): that purchase's answer.
    if (error instanceof DuplicateKeyError && error.failedIndex === 0) return earlier(deps, viewer, item, ledgerKey);
    if (error instanceof PreconditionFailedError && error.failedIndex === 1) return refused(deps, viewer, item, debit);
    throw error;
  }
  owed.committed();
  return resultOf(deps, viewer, withBalance(debit.entry, moved), item);
}

/** The entry this key already made: replayed as it stands (its first answer), or refused as it was. */
async function earlier(deps: Deps, viewer: Viewer, item: ShopItemConfig, ledgerKey: string): Promise<PurchaseResult> {
  const existing = await deps.db.gemTransactions.findOne({ idempotencyKey: ledgerKey });
  if (!existing) throw new Error(`ledger entry ${ledgerKey} collided but cannot be read back`);
  if (existing.status === "applied") return resultOf(deps, viewer, await recordedBalance(deps, existing), item);
  if (existing.status === "rejected" && existing.rejectedReason === "guard") throw alreadyOwned(item);
  if (existing.status === "rejected") throw insufficient();
  // An entry left pending before purchases were one transaction: the ledger completes it.
  try {
    return resultOf(deps, viewer, (await applyEntry(deps, existing)).entry, item);
  } catch (error) {
    throw error instanceof GuardFailedError ? alreadyOwned(item) : error;
  }
}

/**
 * Why the debit could not land: the item is owned already (409, nothing recorded), the balance is short (402;
 * the rejected entry is kept, so the same key answers the same), or the account is gone (404).
 */
async function refused(deps: Deps, viewer: Viewer, item: ShopItemConfig, debit: BatchMovement): Promise<never> {
  const user = await deps.db.users.findOne(
    { _id: new ObjectId(viewer.id), deletedAt: null },
    { projection: { unlockedModels: 1, unlockedThemes: 1 } },
  );
  if (!user) throw ApiError.notFound("Account not found.");
  if (owns(user, item)) throw alreadyOwned(item);
  await deps.db.gemTransactions.insertUnique({ ...debit.entry, status: "rejected", rejectedReason: "insufficient" });
  throw insufficient();
}

function alreadyOwned(item: ShopItemConfig): ApiError {
  return ApiError.conflict("already_owned", `You already own "${item.title}".`);
}

function insufficient(): ApiError {
  return new ApiError("insufficient_gems", "Not enough gems for this.");
}

async function resultOf(
  deps: Deps,
  viewer: Viewer,
  entry: GemTransactionDoc,
  item: ShopItemConfig,
): Promise<PurchaseResult> {
  // Same key, other item: only possible when Redis lost the record of the first request.
  if (entry.referenceId !== item.sku) {
    throw new ApiError("idempotency_mismatch", "This Idempotency-Key was already used for another purchase.");
  }
  const giftCard = entry.metadata.giftCard as { code: string; value: number } | undefined;
  return {
    transaction: toGemTransaction(entry),
    balance: entry.balanceAfter ?? (await currentBalance(deps, viewer)),
    ...(giftCard ? { giftCard: { code: giftCard.code, value: giftCard.value } } : {}),
  };
}

async function currentBalance(deps: Deps, viewer: Viewer): Promise<number> {
  const user = await deps.db.users.findOne({ _id: new ObjectId(viewer.id) }, { projection: { gemBalance: 1 } });
  return user?.gemBalance ?? 0;
}

/** `GC-XXXX-XXXX-XXXX-XXXX`: 80 random bits, so codes cannot be guessed. */
export function newGiftCardCode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const chars = [...bytes].map((b) => CODE_ALPHABET[b % CODE_ALPHABET.length]).join("");
  return `GC-${chars.match(/.{4}/g)?.join("-")}`;
}

/**
 * Redeems a gift card's code for its value, once: the credit's ledger key is the code, so concurrent or
 * repeated redemptions move gems once. The redeemer who got it sees the same answer again; anyone else a 409.
 */
export async function redeemGiftCard(deps: Deps, viewer: Viewer, code: string): Promise<PurchaseResult> {
  const normalized = code.trim().toUpperCase();
  const bought = await deps.db.gemTransactions.findOne({
    "metadata.giftCard.code": normalized,
    source: "gift_card",
    type: "spend",
    status: "applied",
  });
  const card = bought?.metadata.giftCard as { code: string; value: number } | undefined;
  if (!bought || !card) throw ApiError.notFound("No gift card has this code.");
  const { entry } = await moveGems(deps, {
    userId: new ObjectId(viewer.id),
    type: "earn",
    source: "gift_card",
    amount: card.value,
    referenceType: "gift_card",
    referenceId: bought._id.toHexString(),
    description: "Gift card redeemed",
    metadata: { purchaseId: bought._id.toHexString(), buyerId: bought.userId.toHexString() },
    idempotencyKey: ledgerKeys.giftCardRedemption(card.code),
  });
  if (entry.userId.toHexString() !== viewer.id) {
    throw ApiError.conflict("gift_card_redeemed", "This gift card has already been redeemed.");
  }
  return {
    transaction: toGemTransaction(entry),
    balance: entry.balanceAfter ?? (await currentBalance(deps, viewer)),
  };
}
