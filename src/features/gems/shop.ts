import type { ShopItemConfig } from "../../config";
import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { GemTransactionDoc, UserDoc, UserEffect } from "../../db";
import type { Deps } from "../../deps";
import { StoreUnavailableError } from "../../platform/errors";
import { ObjectId } from "../../platform/ids";
import { claimOrGet, deleteKeys, runOp } from "../../platform/redis-ops";
import { addDays } from "../../platform/time";
import { GuardFailedError, moveGems } from "./ledger";
import { ledgerKeys } from "./ledger-keys";
import { type PurchaseResult, type StoreCatalog, toGemTransaction } from "./schema";

/** Crockford-style alphabet: no I, L, O, U, so codes survive being read aloud or typed. */
const CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** The catalog as the store shows it (what `SHOP_CATALOG` configures). */
export function shopCatalog(deps: Deps): StoreCatalog {
  return { items: deps.config.shop.catalog.map((item) => ({ ...item })) };
}

/**
 * Buys one catalog item: the debit and what it buys (unlock, theme, pass end) move in one conditional user
 * update (`movement.effect`), so both happen or neither. That update is also guarded (`movement.guard`):
 * a permanent item is only paid for while not owned, and a pass only extends the end it was priced from,
 * so two concurrent purchases can never both pay for one thing. A short per-user, per-SKU Redis lock makes
 * the usual concurrent double-tap a clean 409 before any ledger write. Gift cards are consumable: each
 * purchase issues a new code worth `value` gems, redeemable once (see `redeemGiftCard`).
 */
export async function purchase(deps: Deps, viewer: Viewer, sku: string, requestKey: string): Promise<PurchaseResult> {
  const item = deps.config.shop.catalog.find((i) => i.sku === sku);
  if (!item) throw ApiError.validation([{ path: "sku", message: "unknown SKU" }], `No store item has SKU "${sku}".`);
  const ledgerKey = ledgerKeys.purchase(viewer.id, requestKey);
  if (item.kind === "gift_card") return buy(deps, viewer, item, ledgerKey, {});

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
    const user = await deps.db.users.findOne(
      { _id: new ObjectId(viewer.id), deletedAt: null },
      { projection: { unlockedModels: 1, unlockedThemes: 1, adFreeUntil: 1 } },
    );
    if (!user) throw ApiError.notFound("Account not found.");
    if (owns(user, item)) {
      // A retry whose Redis record was lost finds its own earlier purchase, not a conflict.
      const earlier = await deps.db.gemTransactions.findOne({ idempotencyKey: ledgerKey, status: "applied" });
      if (earlier) return resultOf(deps, viewer, earlier, item);
      throw ApiError.conflict("already_owned", `You already own "${item.title}".`);
    }
    return await buy(deps, viewer, item, ledgerKey, user);
  } finally {
    await runOp(deps.redis, deleteKeys([lockKey])).catch((error: unknown) => {
      deps.log.warn("shop item lock release failed", { error: String(error) });
    });
  }
}

function owns(user: Pick<UserDoc, "unlockedModels" | "unlockedThemes">, item: ShopItemConfig): boolean {
  if (item.kind === "model_unlock") return (user.unlockedModels ?? []).includes(item.model);
  if (item.kind === "cosmetic") return (user.unlockedThemes ?? []).includes(item.theme);
  return false;
}

/** What the purchase changes on the user, applied with the debit. */
function effectOf(deps: Deps, item: ShopItemConfig, user: Pick<UserDoc, "adFreeUntil">): UserEffect | undefined {
  switch (item.kind) {
    case "model_unlock":
      return { $addToSet: { unlockedModels: item.model } };
    case "cosmetic":
      return { $addToSet: { unlockedThemes: item.theme }, $set: { profileTheme: item.theme } };
    case "ad_free_pass": {
      // Passes stack: the days start where a running pass ends. $max, so an entry completed late can never
      // shorten a pass bought after it.
      const now = deps.clock.now().getTime();
      const from = new Date(Math.max(now, user.adFreeUntil?.getTime() ?? 0));
      return { $max: { adFreeUntil: addDays(from, item.days) } };
    }
    case "gift_card":
      return undefined;
  }
}

async function buy(
  deps: Deps,
  viewer: Viewer,
  item: ShopItemConfig,
  ledgerKey: string,
  user: Pick<UserDoc, "adFreeUntil">,
): Promise<PurchaseResult> {
  const metadata: Record<string, unknown> = { sku: item.sku, kind: item.kind };
  if (item.kind === "gift_card") metadata.giftCard = { code: newGiftCardCode(), value: item.value };
  try {
    const { entry } = await moveGems(deps, {
      userId: new ObjectId(viewer.id),
      type: "spend",
      source: item.kind,
      amount: -item.price,
      referenceType: "product",
      referenceId: item.sku,
      description: item.title,
      metadata,
      idempotencyKey: ledgerKey,
      effect: effectOf(deps, item, user),
      guard: guardOf(item, user),
    });
    return await resultOf(deps, viewer, entry, item);
  } catch (error) {
    if (!(error instanceof GuardFailedError)) throw error;
    if (item.kind === "ad_free_pass") {
      throw ApiError.conflict(
        "purchase_conflict",
        "Your ad-free pass changed while buying; nothing was charged. Retry with a new Idempotency-Key.",
      );
    }
    throw ApiError.conflict("already_owned", `You already own "${item.title}".`);
  }
}

/** What must still be true of the user when the debit lands (checked in the same update). */
function guardOf(item: ShopItemConfig, user: Pick<UserDoc, "adFreeUntil">): Record<string, unknown> | undefined {
  switch (item.kind) {
    case "model_unlock":
      return { unlockedModels: { $ne: item.model } };
    case "cosmetic":
      return { unlockedThemes: { $ne: item.theme } };
    case "ad_free_pass":
      return { adFreeUntil: user.adFreeUntil ?? null };
    case "gift_card":
      return undefined;
  }
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
