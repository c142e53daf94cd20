import { describe, expect, it } from "vitest";
import type { Entitlement, EntitlementChange, SubscriptionEventDoc } from "../../src/db";
import type { SubscriptionView } from "../../src/features/billing/schema";
import { billingSweepJob } from "../../src/features/billing/sweep";
import { newObjectId, ObjectId } from "../../src/platform/ids";
import { runJob } from "../../src/scheduler/runner";
import { schedule } from "../../src/scheduler/schedule";
import { call } from "../support/api";
import { appAccountToken, DAY, originalTransactionId, postAppStore, signAppStore } from "../support/billing";
import { testDeps } from "../support/deps";
import { runUntilDone } from "../support/jobs";
import { crowd, type TestUser } from "../support/users";

// Every run of this job lives in this file, so no other suite's run can hold its lease while these assert.
const deps = testDeps();

const subscription = (user: TestUser) =>
  call<SubscriptionView>("GET", "/v1/me/subscription", { token: user.accessToken });
const auditsOf = (user: TestUser) =>
  deps.db.auditLogs.find({ userId: new ObjectId(user.id), action: "subscription_changed" });
const noticesOf = (user: TestUser) =>
  deps.db.notifications.find({ userId: new ObjectId(user.id), aggregationKey: { $regex: "^billing:" } });
const accountOf = (user: TestUser) => deps.db.users.findOne({ _id: new ObjectId(user.id) });

/** What `recordStoreNotification` writes first: the pending history entry of an App Store SUBSCRIBED. */
async function pendingEntry(user: TestUser, notificationId: string = crypto.randomUUID()) {
  const now = Date.now();
  const subscriptionId = originalTransactionId();
  const change: EntitlementChange = {
    store: "app_store",
    subscriptionId,
    productId: "circle.pro.monthly",
    tier: "pro",
    state: "active",
    expiresAt: new Date(now + 30 * DAY),
    eventAt: new Date(now - 10 * 60_000),
    notificationId,
    autoRenew: true,
    renewsAs: null,
    environment: "Sandbox",
    replaces: null,
  };
  const doc: SubscriptionEventDoc = {
    _id: newObjectId(),
    store: "app_store",
    notificationId,
    type: "SUBSCRIBED",
    subscriptionId,
    account: { userId: null, accountToken: await appAccountToken(user) },
    userId: null,
    eventAt: change.eventAt,
    // Received long enough ago that the run that received it is surely gone.
    receivedAt: new Date(now - 5 * 60_000),
    environment: "Sandbox",
    change,
    stripeCustomerId: null,
    outcome: "pending",
    before: null,
    after: null,
    settledAt: null,
  };
  await deps.db.subscriptions.insertOne(doc);
  return { doc, change };
}

describe("billing-sweep job", () => {
  it("runs every two minutes", () => {
    expect(schedule.find((s) => s.cron === "*/2 * * * *")?.jobs).toContain(billingSweepJob);
  });

  it("finishes a notification a crash left recorded but not applied: applied, audited and notified once", async () => {
    const [user] = await crowd(1);
    const { doc } = await pendingEntry(user);
    expect((await subscription(user)).body.tier).toBe("free");
    await runUntilDone(billingSweepJob);
    expect((await subscription(user)).body).toMatchObject({ tier: "pro", state: "active", store: "app_store" });
    expect(await deps.db.subscriptions.findOne({ _id: doc._id })).toMatchObject({ outcome: "applied" });
    await runUntilDone(billingSweepJob);
    expect(await auditsOf(user)).toHaveLength(1);
    expect((await noticesOf(user)).map((n) => n.aggregationCount)).toEqual([1]);
    expect((await accountOf(user))?.billing?.revision).toBe(1);
  });

  it("finishes one a crash left after the account changed: settles it without applying it twice", async () => {
    const [user] = await crowd(1);
    const { doc, change } = await pendingEntry(user);
    const { replaces: _replaces, ...applied } = change;
    const stored: Entitlement = { ...applied, updatedAt: new Date() };
    await deps.db.users.updateOne(
      { _id: new ObjectId(user.id) },
      {
        $set: {
          billing: {
            revision: 1,
            entitlements: [stored],
            applied: [doc._id],
            nextChangeAt: null,
            stripeCustomerId: null,
          },
          tier: "pro",
          tierExpiresAt: change.expiresAt,
        },
      },
    );
    await runUntilDone(billingSweepJob);
    expect(await deps.db.subscriptions.findOne({ _id: doc._id })).toMatchObject({ outcome: "applied" });
    expect((await accountOf(user))?.billing?.revision).toBe(1);
    expect(await auditsOf(user)).toHaveLength(1);
    expect((await noticesOf(user)).map((n) => n.aggregationCount)).toEqual([1]);
  });

  it("a redelivery and the sweep finishing the same notification at once have one effect", async () => {
    const [user] = await crowd(1);
    const token = await appAccountToken(user);
    const signed = await signAppStore({
      notificationType: "SUBSCRIBED",
      appAccountToken: token,
      productId: "circle.pro.monthly",
      originalTransactionId: originalTransactionId(),
      expiresDate: Date.now() + 30 * DAY,
    });
    await pendingEntry(user, signed.notificationUUID);
    const [run, ...answers] = await Promise.all([
      runJob(deps, billingSweepJob, { trigger: "test" }),
      postAppStore(signed.signedPayload),
      postAppStore(signed.signedPayload),
    ]);
    expect(answers.map((a) => a.body.outcome)).toEqual(["duplicate", "duplicate"]);
    expect(["succeeded", "skipped"]).toContain(run.outcome);
    expect((await subscription(user)).body.tier).toBe("pro");
    expect(await auditsOf(user)).toHaveLength(1);
    expect((await noticesOf(user)).map((n) => n.aggregationCount)).toEqual([1]);
    expect((await accountOf(user))?.billing?.revision).toBe(1);
  });

  it("steps the tier down to the other running subscription when the higher one ends", async () => {
    const [user] = await crowd(1);
    const now = Date.now();
    const entitlement = (store: Entitlement["store"], tier: Entitlement["tier"], expiresAt: number): Entitlement => ({
      store,
      subscriptionId: `${store}-${crypto.randomUUID()}`,
      productId: `circle.${tier}.monthly`,
      tier,
      state: "active",
      expiresAt: new Date(expiresAt),
      eventAt: new Date(now - DAY),
      notificationId: crypto.randomUUID(),
      autoRenew: false,
      renewsAs: null,
      environment: null,
      updatedAt: new Date(now - DAY),
    });
    const proUntil = now + 20 * DAY;
    await deps.db.users.updateOne(
      { _id: new ObjectId(user.id) },
      {
        $set: {
          billing: {
            revision: 3,
            entitlements: [entitlement("stripe", "premium", now - 1_000), entitlement("app_store", "pro", proUntil)],
            applied: [],
            nextChangeAt: new Date(now - 1_000),
            stripeCustomerId: null,
          },
          tier: "premium",
          tierExpiresAt: new Date(now - 1_000),
        },
      },
    );
    await runUntilDone(billingSweepJob);
    expect((await subscription(user)).body).toEqual({
      tier: "pro",
      state: "active",
      expiresAt: new Date(proUntil).toISOString(),
      store: "app_store",
    });
    expect((await accountOf(user))?.billing).toMatchObject({ revision: 4, nextChangeAt: null });
    const [audited] = await auditsOf(user);
    expect(audited?.metadata).toMatchObject({
      reason: "subscription_ended",
      from: { tier: "premium" },
      to: { tier: "pro" },
    });
  });
});
