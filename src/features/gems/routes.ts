import { createRoute, z } from "@hono/zod-openapi";
import { requireAuth, viewerOf } from "../../http/auth";
import { json, problems, router } from "../../http/openapi";
import { PageQuery } from "../../http/pagination";
import { GemBalance, GemTransactionPage, TRANSACTION_TYPES } from "./schema";
import { gemBalance, gemTransactions } from "./service";

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

export const gemsRoutes = router()
  .openapi(balanceRoute, async (c) => c.json(await gemBalance(c.var.deps, viewerOf(c)), 200))
  .openapi(transactionsRoute, async (c) =>
    c.json(await gemTransactions(c.var.deps, viewerOf(c), c.req.valid("query")), 200),
  );
