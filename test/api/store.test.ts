import { describe, expect, it } from "vitest";
import type { GemTransaction, PurchaseResult, StoreItem } from "../../src/features/gems/schema";
import type { Me } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";
import { type ApiResponse, call, roundTrips, uniqueIp, waits } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { balanceOf, grant } from "../support/gems";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();
const DAY_MS = 86_400_000;
const catalog = deps.config.shop.catalog;
const itemOf = <K extends StoreItem["kind"]>(kind: K) => {
  const item = catalog.find((i) => i.kind === kind);
  if (!item) throw new Error(`no ${kind} in the catalog`);
  return item as Extract<(typeof catalog)[number], { kind: K }>;
};
const giftCard = itemOf("gift_card");

const spendsOf = (u: TestUser) =>
  deps.db.gemTransactions.find({ userId: new ObjectId(u.id), type: "spend", status: "applied" });

function buy(
  user: TestUser,
  sku: string,
  key: string | null = crypto.randomUUID(),
  ip = uniqueIp(),
): Promise<ApiResponse<PurchaseResult>> {
  return call<PurchaseResult>("POST", "/v1/store/purchases", {
    token: user.accessToken,
    body: { sku },
    headers: key === null ? {} : { "Idempotency-Key": key },
    ip,
  });
}

describe("GET /v1/store", () => {
  it("lists the configured catalog without a token", async () => {
    const res = await call<{ items: StoreItem[] }>("GET", "/v1/store", { ip: uniqueIp() });
    expect(res.status, res.text).toBe(200);
    expect(res.body.items.map((i) => i.sku)).toEqual(catalog.map((i) => i.sku));
    expect(new Set(res.body.items.map((i) => i.kind))).toEqual(
      new Set(["model_unlock", "ad_free_pass", "cosmetic", "gift_card"]),
    );
    for (const item of res.body.items)
      expect(item).toMatchObject({ sku: expect.any(String), price: expect.any(Number) });
    for (const item of res.body.items.filter((i) => i.kind === "model_unlock")) {
      expect(deps.config.generation.models).toContain(item.model);
    }
  });
});

describe("what a purchase unlocks", () => {
  it("a sold model needs its unlock (or a paid tier) to generate with, a sold theme its unlock to wear", async () => {
    const [user] = await crowd(1);
    const [pro] = await crowd(1, "pro");
    const model = itemOf("model_unlock");
    const theme = itemOf("cosmetic");
    const generate = (u: TestUser) =>
      call("POST", "/v1/generations", {
        token: u.accessToken,
        body: { prompt: "a quiet harbour", model: model.model },
      });
    const wear = () => call("PATCH", "/v1/me", { token: user.accessToken, body: { profileTheme: theme.theme } });

    expectProblem(await generate(user), 403, "forbidden");
    expect((await generate(pro)).status).toBe(202);
    const refused = await wear();
    expectProblem(refused, 400, "validation_failed");
    expect(fieldPaths(refused)).toEqual(["profileTheme"]);
    // A theme the store does not sell stays free to set.
    expect((await call("PATCH", "/v1/me", { token: user.accessToken, body: { profileTheme: "plain" } })).status).toBe(
      200,
    );

    await grant(user, model.price + theme.price);
    expect((await buy(user, model.sku)).status).toBe(201);
    expect((await buy(user, theme.sku)).status).toBe(201);
    expect((await generate(user)).status).toBe(202);
    expect((await wear()).status).toBe(200);
  });
});

describe("POST /v1/store/purchases", () => {
  it("unlocks a model with the debit, and refuses to sell it twice without charging", async () => {
    const [user] = await crowd(1);
    const model = itemOf("model_unlock");
    await grant(user, model.price + 5);
    const res = await buy(user, model.sku);
    expect(res.status, res.text).toBe(201);
    expect(res.body.balance).toBe(5);
    expect(res.body.transaction).toMatchObject({
      type: "spend",
      source: "model_unlock",
      amount: -model.price,
      balanceAfter: 5,
      referenceType: "product",
      referenceId: model.sku,
    });
    const me = await call<Me>("GET", "/v1/me", { token: user.accessToken });
    expect(me.body).toMatchObject({ unlockedModels: [model.model], gemBalance: 5 });

    await grant(user, model.price);
    expectProblem(await buy(user, model.sku), 409, "conflict");
    expect(await balanceOf(user)).toBe(model.price + 5);
    expect(await spendsOf(user)).toHaveLength(1);
  });

  it("waits on one MongoDB call for a purchase: the entry and the debit with what it buys, in one transaction", async () => {
    const [user] = await crowd(1);
    const pass = itemOf("ad_free_pass");
    await grant(user, pass.price + 1);
    const started = Date.now();
    const res = await buy(user, pass.sku);
    expect(res.status, res.text).toBe(201);
    expect(waits(res.headers)).toMatchObject({ mongo: 1 });
    expect(res.body).toMatchObject({ balance: 1, transaction: { balanceBefore: pass.price + 1, balanceAfter: 1 } });
    const [entry] = await spendsOf(user);
    expect(entry).toMatchObject({ balanceBefore: pass.price + 1, balanceAfter: 1, status: "applied" });
    const me = await call<Me>("GET", "/v1/me", { token: user.accessToken });
    expect(new Date(me.body.adFreeUntil!).getTime()).toBeGreaterThanOrEqual(started + pass.days * DAY_MS);
  });

  it("charges once for a model bought 10 times at once with different keys", async () => {
    const [user] = await crowd(1);
    const model = itemOf("model_unlock");
    await grant(user, 3 * model.price);
    const ip = uniqueIp();
    const answers = await Promise.all(Array.from({ length: 10 }, () => buy(user, model.sku, undefined, ip)));
    expect(answers.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of answers.filter((r) => r.status !== 201)) expectProblem(r, 409, "conflict");
    expect(await balanceOf(user)).toBe(2 * model.price);
    expect(await spendsOf(user)).toHaveLength(1);
  });

  it("applies and unlocks a profile theme, and stacks ad-free passes", async () => {
    const [user] = await crowd(1);
    const theme = itemOf("cosmetic");
    const pass = itemOf("ad_free_pass");
    await grant(user, theme.price + 2 * pass.price);
    expect((await buy(user, theme.sku)).status).toBe(201);
    const started = Date.now();
    expect((await buy(user, pass.sku)).status).toBe(201);
    expect((await buy(user, pass.sku)).status).toBe(201);
    const me = await call<Me>("GET", "/v1/me", { token: user.accessToken });
    expect(me.body).toMatchObject({ profileTheme: theme.theme, unlockedThemes: [theme.theme], gemBalance: 0 });
    const until = new Date(me.body.adFreeUntil!).getTime();
    expect(until).toBeGreaterThanOrEqual(started + 2 * pass.days * DAY_MS - 5_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 2 * pass.days * DAY_MS);
  });

  it("answers 402 and changes nothing when the balance is short; the same key replays the 402", async () => {
    const [user] = await crowd(1);
    await grant(user, giftCard.price - 1);
    const key = crypto.randomUUID();
    const first = await buy(user, giftCard.sku, key);
    expectProblem(first, 402, "insufficient_gems");
    expect(await balanceOf(user)).toBe(giftCard.price - 1);
    await grant(user, 1);
    const again = await buy(user, giftCard.sku, key);
    expect(again.status).toBe(402);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.text).toBe(first.text);
    expect(await balanceOf(user)).toBe(giftCard.price);
    expect((await buy(user, giftCard.sku)).status).toBe(201);
    expect(await balanceOf(user)).toBe(0);
  });

  it("replays the first answer for the same key: one Redis read, no MongoDB", async () => {
    const [user] = await crowd(1);
    await grant(user, 3 * giftCard.price);
    const key = crypto.randomUUID();
    const first = await buy(user, giftCard.sku, key);
    expect(first.status, first.text).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    expect(first.body.giftCard).toEqual({
      code: expect.stringMatching(/^GC(-[0-9A-Z]{4}){4}$/),
      value: giftCard.value,
    });
    // What any authenticated request costs in Redis (rate limits), then: claim + stored answer + the buyer's
    // cached self view dropped, or one read.
    const baseline = roundTrips(
      (await call("GET", "/v1/me/gems", { token: user.accessToken, ip: uniqueIp() })).headers,
    );
    expect(roundTrips(first.headers).redis).toBe(baseline.redis! + 3);
    const replay = await buy(user, giftCard.sku, key);
    expect(replay.status).toBe(201);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.text).toBe(first.text);
    expect(roundTrips(replay.headers)).toMatchObject({ redis: baseline.redis! + 1, mongo: 0 });
    expect(await balanceOf(user)).toBe(2 * giftCard.price);
  });

  it("50 concurrent purchases with one key debit once; every answer is that 201 replayed or a 409", async () => {
    const [user] = await crowd(1);
    await grant(user, 5 * giftCard.price);
    const key = crypto.randomUUID();
    const ip = uniqueIp();
    const answers = await Promise.all(Array.from({ length: 50 }, () => buy(user, giftCard.sku, key, ip)));
    const created = answers.filter((r) => r.status === 201);
    const inFlight = answers.filter((r) => r.status === 409);
    expect(created.length + inFlight.length, answers.map((r) => r.status).join(",")).toBe(50);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(new Set(created.map((r) => r.text)).size).toBe(1);
    for (const r of inFlight) expectProblem(r, 409, "conflict");
    expect(await spendsOf(user)).toHaveLength(1);
    expect(await balanceOf(user)).toBe(4 * giftCard.price);
  });

  it("50 concurrent purchases with distinct keys and a balance for 10 → 10 × 201, 40 × 402, balance 0", async () => {
    const [user] = await crowd(1);
    await grant(user, 10 * giftCard.price);
    const ip = uniqueIp();
    const answers = await Promise.all(Array.from({ length: 50 }, () => buy(user, giftCard.sku, undefined, ip)));
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(10);
    expect(statuses.filter((s) => s === 402)).toHaveLength(40);
    expect(await balanceOf(user)).toBe(0);
    const balances = answers.filter((r) => r.status === 201).map((r) => r.body.balance);
    expect(Math.min(...balances)).toBe(0);
    expect(await spendsOf(user)).toHaveLength(10);
  });

  it("answers 422 for the same key with a different body", async () => {
    const [user] = await crowd(1);
    const theme = itemOf("cosmetic");
    await grant(user, giftCard.price + theme.price);
    const key = crypto.randomUUID();
    expect((await buy(user, giftCard.sku, key)).status).toBe(201);
    expectProblem(await buy(user, theme.sku, key), 422, "idempotency_mismatch");
    expect(await balanceOf(user)).toBe(theme.price);
  });

  it("keys are per user: another user's identical key is a separate purchase", async () => {
    const [a, b] = await crowd(2);
    await Promise.all([grant(a, giftCard.price), grant(b, giftCard.price)]);
    const key = crypto.randomUUID();
    const [ra, rb] = await Promise.all([buy(a, giftCard.sku, key), buy(b, giftCard.sku, key)]);
    expect([ra.status, rb.status]).toEqual([201, 201]);
    expect(ra.body.transaction.id).not.toBe(rb.body.transaction.id);
  });

  it("debits once even when Redis lost the record of the first request", async () => {
    const [user] = await crowd(1);
    await grant(user, 2 * giftCard.price);
    const key = crypto.randomUUID();
    const first = await buy(user, giftCard.sku, key);
    await deps.redis.del(deps.keys.idempotency(`purchase:${user.id}`, key));
    const again = await buy(user, giftCard.sku, key);
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBeNull();
    expect(again.body).toEqual(first.body);
    expect(await balanceOf(user)).toBe(giftCard.price);
    expect(await spendsOf(user)).toHaveLength(1);
  });

  it("releases the key when the request fails with a 5xx, so a retry goes through", async () => {
    const [user] = await crowd(1);
    await grant(user, giftCard.price);
    const key = crypto.randomUUID();
    const broken = appWith({
      DATA_API_URL: "http://127.0.0.1:9/",
      STORE_TIMEOUT_MS: "500",
      DATA_API_READ_RETRIES: "0",
    });
    const failed = await call(
      "POST",
      "/v1/store/purchases",
      { token: user.accessToken, body: { sku: giftCard.sku }, headers: { "Idempotency-Key": key }, ip: uniqueIp() },
      broken,
    );
    expect(failed.status).toBeGreaterThanOrEqual(500);
    const retry = await buy(user, giftCard.sku, key);
    expect(retry.status, retry.text).toBe(201);
    expect(await balanceOf(user)).toBe(0);
  });

  it("answers 400 naming the field for a missing or malformed key and an unknown SKU; 401 without a token", async () => {
    const [user] = await crowd(1);
    await grant(user, giftCard.price);
    const missing = await buy(user, giftCard.sku, null);
    expectProblem(missing, 400, "validation_failed");
    expect(fieldPaths(missing)).toEqual(["Idempotency-Key"]);
    for (const bad of ["x".repeat(256), "tab\there", ""]) {
      const res = await buy(user, giftCard.sku, bad);
      expectProblem(res, 400, "validation_failed");
      expect(fieldPaths(res)).toEqual(["Idempotency-Key"]);
    }
    expect((await buy(user, giftCard.sku, "k".repeat(255))).status).toBe(201);
    const unknown = await buy(user, "no.such.item");
    expectProblem(unknown, 400, "validation_failed");
    expect(fieldPaths(unknown)).toEqual(["sku"]);
    const noSku = await call("POST", "/v1/store/purchases", {
      token: user.accessToken,
      body: {},
      headers: { "Idempotency-Key": crypto.randomUUID() },
      ip: uniqueIp(),
    });
    expect(fieldPaths(noSku)).toEqual(["sku"]);
    // A 400 is not stored: the same key can carry a corrected request.
    const key = crypto.randomUUID();
    expect((await buy(user, "no.such.item", key)).status).toBe(400);
    await grant(user, giftCard.price);
    expect((await buy(user, giftCard.sku, key)).status).toBe(201);
    const anonymous = await call("POST", "/v1/store/purchases", {
      body: { sku: giftCard.sku },
      headers: { "Idempotency-Key": crypto.randomUUID() },
      ip: uniqueIp(),
    });
    expectProblem(anonymous, 401, "unauthorized");
  });
});

describe("POST /v1/store/gift-cards/redeem", () => {
  it("credits a card's value once: its redeemer sees the same answer again, anyone else a 409", async () => {
    const [buyer, friend, other] = await crowd(3);
    await grant(buyer, giftCard.price);
    const bought = await buy(buyer, giftCard.sku);
    const code = bought.body.giftCard!.code;
    const redeem = (u: TestUser, c = code) =>
      call<{ transaction: GemTransaction; balance: number }>("POST", "/v1/store/gift-cards/redeem", {
        token: u.accessToken,
        body: { code: c },
        ip: uniqueIp(),
      });
    const answers = await Promise.all([redeem(friend), redeem(friend), redeem(friend)]);
    expect(answers.map((r) => r.status)).toEqual([201, 201, 201]);
    expect(new Set(answers.map((r) => r.body.transaction.id)).size).toBe(1);
    expect(answers[0]!.body).toMatchObject({ balance: giftCard.value, transaction: { source: "gift_card" } });
    expectProblem(await redeem(other), 409, "conflict");
    expect(await balanceOf(friend)).toBe(giftCard.value);
    expect(await balanceOf(other)).toBe(0);
    expectProblem(await redeem(other, "GC-0000-0000-0000-0000"), 404, "not_found");
  });
});
