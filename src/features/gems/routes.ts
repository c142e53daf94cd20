import { createRoute, z } from "@hono/zod-openapi";
import { optionalAuth, requireAuth, viewerOf } from "../../http/auth";
import { idempotencyKeyOf, idempotent } from "../../http/idempotency";
import { json, problems, router } from "../../http/openapi";
import { PageQuery } from "../../http/pagination";
import { sendGift } from "./gifts";
import {
  GemBalance,
  GemTransactionPage,
  GiftBody,
  GiftResult,
  IdempotencyHeaders,
  PurchaseBody,
  PurchaseResult,
  RedeemGiftCardBody,
  StoreCatalog,
  TRANSACTION_TYPES,
} from "./schema";
import { gemBalance, gemTransactions } from "./service";
import { purchase, redeemGiftCard, storeCatalog } from "./store";

const balanceRoute = createRoute({
  method: "get",
  path: "/v1/me/gems",
  tags: ["gems"],
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "The caller's gem balance and active multiplier",
  responses: { 200: json(GemBalance, "Balance"), ...problems(401, 404, 429, 503) },
});

const transactionsRoute = createRoute({
  method: "get",
  path: "/v1/me/gems/transactions",
  tags: ["gems"],
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "The caller's ledger entries, newest first",
  request: { query: PageQuery.extend({ type: z.enum(TRANSACTION_TYPES).optional() }) },
  responses: { 200: json(GemTransactionPage, "Ledger entries"), ...problems(400, 401, 429, 503) },
});

const catalogRoute = createRoute({
  method: "get",
  path: "/v1/store",
  tags: ["store"],
  middleware: [optionalAuth()] as const,
  summary: "The store catalog",
  description: "Items bought with gems; the catalog comes from configuration (STORE_CATALOG). No token needed.",
  responses: { 200: json(StoreCatalog, "Catalog"), ...problems(401, 429) },
});

const purchaseRoute = createRoute({
  method: "post",
  path: "/v1/store/purchases",
  tags: ["store"],
  security: [{ bearer: [] }],
  middleware: [requireAuth(), idempotent("purchase")] as const,
  summary: "Buy a store item with gems",
  description:
    "Debits the price and applies what it buys in one step. Requires `Idempotency-Key`: a repeat with the same " +
    "body replays the first answer (`Idempotent-Replayed: true`), with another body is a 422, while the first " +
    "is still running a 409. Owning a permanent item already is a 409; too few gems a 402 (nothing changes).",
  request: {
    headers: IdempotencyHeaders,
    body: { content: { "application/json": { schema: PurchaseBody } }, required: true },
  },
  responses: {
    201: json(PurchaseResult, "Bought"),
    ...problems(400, 401, 402, 404, 409, 422, 429, 503),
  },
});

const redeemRoute = createRoute({
  method: "post",
  path: "/v1/store/gift-cards/redeem",
  tags: ["store"],
  security: [{ bearer: [] }],
  middleware: [requireAuth()] as const,
  summary: "Redeem a gift card code for its gems",
  description:
    "Credits the card's value to the caller, once per code: repeating it replays the same answer, and a code " +
    "someone else redeemed is a 409. Unknown codes are a 404.",
  request: { body: { content: { "application/json": { schema: RedeemGiftCardBody } }, required: true } },
  responses: { 201: json(PurchaseResult, "Redeemed"), ...problems(400, 401, 404, 409, 429, 503) },
});

const giftRoute = createRoute({
  method: "post",
  path: "/v1/users/{id}/gifts",
  tags: ["gems"],
  security: [{ bearer: [] }],
  middleware: [requireAuth(), idempotent("gift")] as const,
  summary: "Send gems to another user",
  description:
    "The sender pays `amount`; the receiver gets `amount − platformFee` (GIFT_PLATFORM_FEE_PERCENT, rounded " +
    "down) and a notification. Requires `Idempotency-Key` (same rules as purchases). Gifting yourself is a " +
    "400; an unknown, deleted or banned receiver a 404; too few gems a 402.",
  request: {
    params: z.object({ id: z.string().min(1).max(64) }),
    headers: IdempotencyHeaders,
    body: { content: { "application/json": { schema: GiftBody } }, required: true },
  },
  responses: {
    201: json(GiftResult, "Sent"),
    ...problems(400, 401, 402, 404, 409, 422, 429, 503),
  },
});

export const gemsRoutes = router()
  .openapi(balanceRoute, async (c) => c.json(await gemBalance(c.var.deps, viewerOf(c)), 200))
  .openapi(transactionsRoute, async (c) =>
    c.json(await gemTransactions(c.var.deps, viewerOf(c), c.req.valid("query")), 200),
  )
  .openapi(catalogRoute, (c) => c.json(storeCatalog(c.var.deps), 200))
  .openapi(purchaseRoute, async (c) => {
    const { sku } = c.req.valid("json");
    return c.json(await purchase(c.var.deps, viewerOf(c), sku, idempotencyKeyOf(c)), 201);
  })
  .openapi(redeemRoute, async (c) =>
    c.json(await redeemGiftCard(c.var.deps, viewerOf(c), c.req.valid("json").code), 201),
  )
  .openapi(giftRoute, async (c) => {
    const result = await sendGift(
      c.var.deps,
      viewerOf(c),
      c.req.valid("param").id,
      c.req.valid("json"),
      idempotencyKeyOf(c),
    );
    return c.json(result, 201);
  });
