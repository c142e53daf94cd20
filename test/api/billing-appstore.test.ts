import { describe, expect, it } from "vitest";
import type { SubscriptionView } from "../../src/features/billing/schema";
import type { GenerationAccepted } from "../../src/features/generations/schema";
import type { Me } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips } from "../support/api";
import {
  type AppStoreDescription,
  appAccountToken,
  DAY,
  originalTransactionId,
  postAppStore,
  signAppStore,
} from "../support/billing";
import { testDeps } from "../support/deps";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();

const subscription = (user: TestUser) =>
  call<SubscriptionView>("GET", "/v1/me/subscription", { token: user.accessToken });
const me = (user: TestUser) => call<Me>("GET", "/v1/me", { token: user.accessToken });
const historyOf = (notificationUUID: string) =>
  deps.db.subscriptions.find({ store: "app_store", notificationId: notificationUUID });
const auditsOf = (user: TestUser) =>
  deps.db.auditLogs.find({ userId: new ObjectId(user.id), action: "subscription_changed" }, { sort: { timestamp: 1 } });
const noticesOf = async (user: TestUser) =>
  (await deps.db.notifications.find({ userId: new ObjectId(user.id), aggregationKey: { $regex: "^billing:" } })).map(
    (n) => ({ title: n.title, count: n.aggregationCount }),
  );

/** A subscriber: an account, its app account token and a fresh App Store subscription. */
async function subscriber(productId = "circle.pro.monthly") {
  const [user] = await crowd(1);
  const token = await appAccountToken(user);
  return { user, token, sub: { appAccountToken: token, productId, originalTransactionId: originalTransactionId() } };
}

async function deliver(description: AppStoreDescription) {
  const signed = await signAppStore(description);
  return { signed, res: await postAppStore(signed.signedPayload) };
}

describe("GET /v1/me/billing/app-account-token", () => {
  it("is one UUID per account, the same however often (and however concurrently) it is asked for", async () => {
    const [a, b] = await crowd(2);
    const first = await Promise.all(Array.from({ length: 8 }, () => appAccountToken(a)));
    expect(new Set(first).size).toBe(1);
    expect(first[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const issued = await call("GET", "/v1/me/billing/app-account-token", { token: a.accessToken });
    expect(roundTrips(issued.headers)).toMatchObject({ redis: 1, mongo: 1 });
    expect(await appAccountToken(a)).toBe(first[0]);
    expect(await appAccountToken(b)).not.toBe(first[0]);
  });
});

describe("POST /v1/billing/apple", () => {
  it("SUBSCRIBED makes the account that set the token pro for its existing tokens at once, recorded, audited and notified", async () => {
    const { user, sub } = await subscriber();
    const before = await subscription(user);
    expect(before.body).toEqual({ tier: "free", state: "none", expiresAt: null, store: null });
    const expiresDate = Date.now() + 30 * DAY;
    const { signed, res } = await deliver({
      notificationType: "SUBSCRIBED",
      subtype: "INITIAL_BUY",
      ...sub,
      expiresDate,
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ received: true, outcome: "applied" });
    // MongoDB: history insert ∥ account read, the account write, then settle ∥ audit ∥ notice (read + write).
    // Redis: the rate limit, then the standing and the cached profile dropped at once, and the notice's cached
    // inbox dropped.
    expect(roundTrips(res.headers)).toMatchObject({ mongo: 7, redis: 4 });

    const expiresAt = new Date(expiresDate).toISOString();
    expect((await subscription(user)).body).toEqual({ tier: "pro", state: "active", expiresAt, store: "app_store" });
    // Once the standing is cached again: the rate limit with it, and one read.
    expect(roundTrips((await subscription(user)).headers)).toMatchObject({ redis: 1, mongo: 1 });
    expect((await me(user)).body).toMatchObject({ tier: "pro", tierExpiresAt: expiresAt });
    // The token the user had before the purchase already gets pro's queue priority.
    const queued = await call<GenerationAccepted>("POST", "/v1/generations", {
      token: user.accessToken,
      body: { prompt: "a lighthouse in fog" },
    });
    expect(queued.body.priority).toBe(deps.config.generation.priority.pro);

    const [history] = await historyOf(signed.notificationUUID);
    expect(history).toMatchObject({
      outcome: "applied",
      type: "SUBSCRIBED/INITIAL_BUY",
      userId: new ObjectId(user.id),
    });
    expect(history?.after).toMatchObject({ tier: "pro", state: "active" });
    const [audited] = await auditsOf(user);
    expect(audited?.metadata).toMatchObject({
      store: "app_store",
      notificationId: signed.notificationUUID,
      from: { tier: "free" },
      to: { tier: "pro", state: "active", expiresAt },
    });
    expect(await noticesOf(user)).toEqual([{ title: "You're on Pro now", count: 1 }]);
  });

  it("DID_RENEW extends it, DID_FAIL_TO_RENEW keeps it through the grace period, EXPIRED ends it", async () => {
    const { user, sub } = await subscriber();
    const t0 = Date.now() - 60_000;
    await deliver({ notificationType: "SUBSCRIBED", ...sub, signedDate: t0, expiresDate: t0 + 30 * DAY });
    const renewedUntil = t0 + 60 * DAY;
    const renewed = await deliver({
      notificationType: "DID_RENEW",
      ...sub,
      signedDate: t0 + 1_000,
      expiresDate: renewedUntil,
    });
    expect(renewed.res.body.outcome).toBe("applied");
    expect((await subscription(user)).body).toMatchObject({
      state: "active",
      expiresAt: new Date(renewedUntil).toISOString(),
    });

    const graceUntil = Date.now() + 10 * DAY;
    const failed = await deliver({
      notificationType: "DID_FAIL_TO_RENEW",
      subtype: "GRACE_PERIOD",
      ...sub,
      signedDate: t0 + 2_000,
      expiresDate: Date.now() - 1_000,
      gracePeriodExpiresDate: graceUntil,
    });
    expect(failed.res.body.outcome).toBe("applied");
    expect((await subscription(user)).body).toEqual({
      tier: "pro",
      state: "grace",
      expiresAt: new Date(graceUntil).toISOString(),
      store: "app_store",
    });

    const expired = await deliver({
      notificationType: "EXPIRED",
      subtype: "BILLING_RETRY",
      ...sub,
      signedDate: t0 + 3_000,
      expiresDate: Date.now() - 1_000,
    });
    expect(expired.res.body.outcome).toBe("applied");
    const after = await subscription(user);
    expect(after.body).toMatchObject({ tier: "free", state: "expired", store: "app_store" });
    expect((await me(user)).body.tier).toBe("free");
    expect((await auditsOf(user)).map((a) => (a.metadata.to as { state: string }).state)).toEqual([
      "active",
      "active",
      "grace",
      "expired",
    ]);
    expect((await noticesOf(user)).map((n) => n.title).sort()).toEqual([
      "We couldn't renew Pro",
      "You're on Pro now",
      "Your Pro subscription has ended",
      "Your Pro subscription is active",
    ]);
  });

  it("REFUND and REVOKE end access at once, whatever the paid period said", async () => {
    for (const notificationType of ["REFUND", "REVOKE"]) {
      const { user, sub } = await subscriber("circle.premium.monthly");
      const t0 = Date.now() - 10_000;
      await deliver({ notificationType: "SUBSCRIBED", ...sub, signedDate: t0, expiresDate: t0 + 30 * DAY });
      expect((await subscription(user)).body.tier).toBe("premium");
      const { res } = await deliver({ notificationType, ...sub, signedDate: t0 + 1_000, expiresDate: t0 + 30 * DAY });
      expect(res.body.outcome, notificationType).toBe("applied");
      expect((await subscription(user)).body, notificationType).toMatchObject({ tier: "free", state: "expired" });
    }
  });

  it("DID_CHANGE_RENEWAL_PREF: an upgrade applies at once, a downgrade waits for the renewal", async () => {
    const { user, sub } = await subscriber();
    const t0 = Date.now() - 10_000;
    await deliver({ notificationType: "SUBSCRIBED", ...sub, signedDate: t0, expiresDate: t0 + 30 * DAY });
    await deliver({
      notificationType: "DID_CHANGE_RENEWAL_PREF",
      subtype: "UPGRADE",
      ...sub,
      productId: "circle.premium.monthly",
      signedDate: t0 + 1_000,
      expiresDate: t0 + 30 * DAY,
    });
    expect((await subscription(user)).body.tier).toBe("premium");
    await deliver({
      notificationType: "DID_CHANGE_RENEWAL_PREF",
      subtype: "DOWNGRADE",
      ...sub,
      productId: "circle.premium.monthly",
      autoRenewProductId: "circle.pro.monthly",
      signedDate: t0 + 2_000,
      expiresDate: t0 + 30 * DAY,
    });
    expect((await subscription(user)).body.tier).toBe("premium");
    const [stored] = (await deps.db.users.findOne({ _id: new ObjectId(user.id) }))?.billing?.entitlements ?? [];
    expect(stored).toMatchObject({ tier: "premium", renewsAs: "pro" });
  });

  it("an older notification delivered after a newer one changes nothing (recorded as stale)", async () => {
    const { user, sub } = await subscriber();
    const t0 = Date.now() - 10_000;
    const older = await signAppStore({
      notificationType: "SUBSCRIBED",
      ...sub,
      signedDate: t0,
      expiresDate: t0 + 30 * DAY,
    });
    const newer = await signAppStore({
      notificationType: "EXPIRED",
      ...sub,
      signedDate: t0 + 5_000,
      expiresDate: t0 + 4_000,
    });
    expect((await postAppStore(newer.signedPayload)).body.outcome).toBe("applied");
    const late = await postAppStore(older.signedPayload);
    expect(late.status).toBe(200);
    expect(late.body.outcome).toBe("stale");
    expect((await subscription(user)).body).toMatchObject({ tier: "free", state: "expired" });
    expect((await historyOf(older.notificationUUID))[0]?.outcome).toBe("stale");
    expect(await auditsOf(user)).toHaveLength(1);
  });

  it("counts a notification once: a repeat, and twenty deliveries of it at once, have one effect", async () => {
    const { user, sub } = await subscriber();
    const signed = await signAppStore({ notificationType: "SUBSCRIBED", ...sub, expiresDate: Date.now() + 30 * DAY });
    const answers = await Promise.all(Array.from({ length: 20 }, () => postAppStore(signed.signedPayload)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    const outcomes = answers.map((a) => a.body.outcome).sort();
    expect(outcomes.filter((o) => o === "applied")).toHaveLength(1);
    expect(outcomes.filter((o) => o === "duplicate")).toHaveLength(19);
    const repeat = await postAppStore(signed.signedPayload);
    expect(repeat.body.outcome).toBe("duplicate");
    // The insert the unique index refuses (∥ the account read), then the first delivery's entry: two waits.
    expect(roundTrips(repeat.headers)).toMatchObject({ mongo: 3, redis: 1 });
    expect(await historyOf(signed.notificationUUID)).toHaveLength(1);
    expect(await auditsOf(user)).toHaveLength(1);
    expect(await noticesOf(user)).toEqual([{ title: "You're on Pro now", count: 1 }]);
    const account = await deps.db.users.findOne({ _id: new ObjectId(user.id) });
    expect(account?.billing?.entitlements).toHaveLength(1);
    expect(account?.billing?.revision).toBe(1);
  });

  it("two different notifications for one subscription at once: the newer one's state wins", async () => {
    const { user, sub } = await subscriber();
    const t0 = Date.now() - 10_000;
    const older = await signAppStore({
      notificationType: "SUBSCRIBED",
      ...sub,
      signedDate: t0,
      expiresDate: t0 + 30 * DAY,
    });
    const newer = await signAppStore({
      notificationType: "DID_RENEW",
      ...sub,
      signedDate: t0 + 1,
      expiresDate: t0 + 60 * DAY,
    });
    const [a, b] = await Promise.all([postAppStore(older.signedPayload), postAppStore(newer.signedPayload)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.body.outcome).toBe("applied");
    expect((await subscription(user)).body.expiresAt).toBe(new Date(t0 + 60 * DAY).toISOString());
  });

  it("notifications about several subscriptions of one account at once: none is lost", async () => {
    const { user, token } = await subscriber();
    const signed = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        signAppStore({
          notificationType: "SUBSCRIBED",
          appAccountToken: token,
          productId: i === 0 ? "circle.premium.monthly" : "circle.pro.monthly",
          originalTransactionId: originalTransactionId(),
          expiresDate: Date.now() + (30 + i) * DAY,
        }),
      ),
    );
    const answers = await Promise.all(signed.map((s) => postAppStore(s.signedPayload)));
    expect(answers.map((a) => a.body.outcome)).toEqual(Array(5).fill("applied"));
    const account = await deps.db.users.findOne({ _id: new ObjectId(user.id) });
    expect(account?.billing?.entitlements).toHaveLength(5);
    expect(account?.billing?.revision).toBe(5);
    expect((await subscription(user)).body.tier).toBe("premium");
    expect(await auditsOf(user)).toHaveLength(5);
  });

  it("refuses forged, wrongly signed and expired-certificate payloads (401), and another app's or environment's (400), changing nothing", async () => {
    const { user, sub } = await subscriber();
    const base = { notificationType: "SUBSCRIBED", ...sub, expiresDate: Date.now() + 30 * DAY };
    const refused: string[] = [];
    for (const forge of ["wrong-root", "bad-signature", "expired-leaf"] as const) {
      const { signed, res } = await deliver({ ...base, forge });
      expectProblem(res, 401, "unauthorized");
      expect(roundTrips(res.headers).mongo).toBe(0);
      refused.push(signed.notificationUUID);
    }
    const production = await deliver({ ...base, environment: "Production" });
    expectProblem(production.res, 400, "validation_failed");
    expect(fieldPaths(production.res)).toEqual(["signedPayload.data.environment"]);
    const otherApp = await deliver({ ...base, bundleId: "com.example.other" });
    expect(fieldPaths(otherApp.res)).toEqual(["signedPayload.data.bundleId"]);
    refused.push(production.signed.notificationUUID, otherApp.signed.notificationUUID);
    expectProblem(await postAppStore("not-a-jws"), 400, "validation_failed");
    // A genuine payload whose signature was cut off, and one with a tampered claim.
    const genuine = await signAppStore(base);
    const [header, payload] = genuine.signedPayload.split(".") as [string, string, string];
    expectProblem(await postAppStore(`${header}.${payload}.`), 401, "unauthorized");
    const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
    const tampered = btoa(JSON.stringify({ ...claims, signedDate: Date.now() + DAY }))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
    expectProblem(
      await postAppStore(`${header}.${tampered}.${genuine.signedPayload.split(".")[2]}`),
      401,
      "unauthorized",
    );

    expect((await subscription(user)).body).toMatchObject({ tier: "free", state: "none" });
    for (const id of refused) expect(await historyOf(id)).toEqual([]);
    expect(await auditsOf(user)).toEqual([]);
  });

  it("records a purchase no account holds as unlinked, and a TEST notification as ignored", async () => {
    const lost = {
      appAccountToken: crypto.randomUUID(),
      productId: "circle.pro.monthly",
      originalTransactionId: originalTransactionId(),
    };
    const { signed, res } = await deliver({ notificationType: "SUBSCRIBED", ...lost, expiresDate: Date.now() + DAY });
    expect(res.body.outcome).toBe("unlinked");
    expect((await historyOf(signed.notificationUUID))[0]).toMatchObject({ outcome: "unlinked", userId: null });
    expect((await deliver({ notificationType: "TEST" })).res.body.outcome).toBe("ignored");
  });
});
