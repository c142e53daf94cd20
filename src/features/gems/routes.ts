import { IdempotencyHeaders } from "../../core/idempotency";
import { IdParam } from "../../core/schemas";
import { idempotencyKeyOf, idempotent } from "../../http/idempotency";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, publicRoute } from "../../http/routes";
import { sendGift } from "./gifts";
import {
  GemBalance,
  GemTransactionPage,
  GiftBody,
  GiftResult,
  PurchaseBody,
  PurchaseResult,
  RedeemGiftCardBody,
  StoreCatalog,
  TransactionsQuery,
} from "./schema";
import { gemBalance, gemTransactions } from "./service";
import { purchase, redeemGiftCard, shopCatalog } from "./shop";

const balanceRoute = authedRoute({
  method: "get",
  path: "/v1/me/gems",
  tags: ["gems"],
  summary: "The caller's gem balance and active multiplier",
  responses: { 200: json(GemBalance, "Balance"), ...problems(404) },
});

const transactionsRoute = authedRoute({
  method: "get",
  path: "/v1/me/gems/transactions",
  tags: ["gems"],
  summary: "The caller's ledger entries, newest first",
  request: { query: TransactionsQuery },
  responses: { 200: json(GemTransactionPage, "Ledger entries") },
});

const catalogRoute = publicRoute({
  method: "get",
  path: "/v1/store",
  tags: ["store"],
  summary: "The store catalog",
  description: "Items bought with gems; the catalog comes from configuration (SHOP_CATALOG). No token needed.",
  responses: { 200: json(StoreCatalog, "Catalog") },
});

const purchaseRoute = authedRoute({
  method: "post",
  path: "/v1/store/purchases",
  tags: ["store"],
  use: [idempotent("purchase")],
  summary: "Buy a store item with gems",
  description:
    "Debits the price and applies what it buys in one step. Requires `Idempotency-Key`: a repeat with the same " +
    "body replays the first answer (`Idempotent-Replayed: true`), with another body is a 422, while the first " +
    "is still running a 409. Owning a permanent item already is a 409; too few gems a 402 (nothing changes).",
  request: { headers: IdempotencyHeaders, ...jsonBody(PurchaseBody) },
  responses: { 201: json(PurchaseResult, "Bought"), ...problems(402, 404, 409, 422) },
});

const redeemRoute = authedRoute({
  method: "post",
  path: "/v1/store/gift-cards/redeem",
  tags: ["store"],
  summary: "Redeem a gift card code for its gems",
  description:
    "Credits the card's value to the caller, once per code: repeating it replays the same answer, and a code " +
    "someone else redeemed is a 409. Unknown codes are a 404.",
  request: jsonBody(RedeemGiftCardBody),
  responses: { 201: json(PurchaseResult, "Redeemed"), ...problems(404, 409) },
});

const giftRoute = authedRoute({
  method: "post",
  path: "/v1/users/{id}/gifts",
  tags: ["gems"],
  use: [idempotent("gift")],
  summary: "Send gems to another user",
  description:
    "The sender pays `amount`; the receiver gets `amount − platformFee` (GIFT_PLATFORM_FEE_PERCENT, rounded " +
    "down) and a notification. Requires `Idempotency-Key` (same rules as purchases). Gifting yourself is a " +
    "400; an unknown, deleted or banned receiver a 404; too few gems a 402.",
  request: {
    params: IdParam,
    headers: IdempotencyHeaders,
    ...jsonBody(GiftBody),
  },
  responses: { 201: json(GiftResult, "Sent"), ...problems(402, 404, 409, 422) },
});

export const gemsRoutes = router()
  .openapi(balanceRoute, async (c) => c.json(await gemBalance(c.var.deps, c.var.viewer), 200))
  .openapi(transactionsRoute, async (c) =>
    c.json(await gemTransactions(c.var.deps, c.var.viewer, c.req.valid("query")), 200),
  )
  .openapi(catalogRoute, (c) => c.json(shopCatalog(c.var.deps), 200))
  .openapi(purchaseRoute, async (c) => {
    const { sku } = c.req.valid("json");
    return c.json(await purchase(c.var.deps, c.var.viewer, sku, idempotencyKeyOf(c)), 201);
  })
  .openapi(redeemRoute, async (c) =>
    c.json(await redeemGiftCard(c.var.deps, c.var.viewer, c.req.valid("json").code), 201),
  )
  .openapi(giftRoute, async (c) => {
    const { id } = c.req.valid("param");
    return c.json(await sendGift(c.var.deps, c.var.viewer, id, c.req.valid("json"), idempotencyKeyOf(c)), 201);
  });
