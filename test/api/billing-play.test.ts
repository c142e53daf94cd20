import { describe, expect, it } from "vitest";
import type { SubscriptionView } from "../../src/features/billing/schema";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { appAccountToken, DAY, playPush, postPlay, purchaseToken, setPlayPurchase } from "../support/billing";
import { testDeps } from "../support/deps";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();

const subscription = (user: TestUser) =>
  call<SubscriptionView>("GET", "/v1/me/subscription", { token: user.accessToken });
const historyOf = (messageId: string) =>
  deps.db.subscriptions.find({ store: "google_play", notificationId: messageId });
const auditsOf = (user: TestUser) =>
  deps.db.auditLogs.find({ userId: new ObjectId(user.id), action: "subscription_changed" });
const acknowledgement = async (token: string) => (await setPlayPurchase(token, {})).acknowledgementState;

/** An account whose app account token is on a fresh Play purchase. */
async function buyer(productId = "circle.premium.monthly", state = "ACTIVE") {
  const [user] = await crowd(1);
  const token = purchaseToken();
  await setPlayPurchase(token, {
    productId,
    subscriptionState: state,
    expiryTime: Date.now() + 30 * DAY,
    obfuscatedExternalAccountId: await appAccountToken(user),
    acknowledgementState: "ACKNOWLEDGEMENT_STATE_PENDING",
  });
  return { user, token };
}

describe("POST /v1/billing/google", () => {
  it("reads the purchase from the Play Developer API, changes the tier, and acknowledges the purchase", async () => {
    const { user, token } = await buyer();
    const push = await playPush({ purchaseToken: token, notificationType: "SUBSCRIPTION_PURCHASED" });
    const res = await postPlay(push);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ received: true, outcome: "applied" });
    expect((await subscription(user)).body).toMatchObject({ tier: "premium", state: "active", store: "google_play" });
    expect(await acknowledgement(token)).toBe("ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED");
    const [history] = await historyOf(push.messageId);
    expect(history).toMatchObject({ outcome: "applied", type: "SUBSCRIPTION_PURCHASED", subscriptionId: token });
    expect(await auditsOf(user)).toHaveLength(1);
  });

  it("follows the state the Developer API reports: grace keeps the tier, on hold ends it", async () => {
    const { user, token } = await buyer("circle.pro.monthly");
    await postPlay(await playPush({ purchaseToken: token, notificationType: "SUBSCRIPTION_PURCHASED" }));
    await setPlayPurchase(token, { subscriptionState: "IN_GRACE_PERIOD", expiryTime: Date.now() + 3 * DAY });
    const grace = await postPlay(
      await playPush({ purchaseToken: token, notificationType: "SUBSCRIPTION_IN_GRACE_PERIOD" }),
    );
    expect(grace.body.outcome).toBe("applied");
    expect((await subscription(user)).body).toMatchObject({ tier: "pro", state: "grace" });
    await setPlayPurchase(token, { subscriptionState: "ON_HOLD", expiryTime: Date.now() - 1_000 });
    await postPlay(await playPush({ purchaseToken: token, notificationType: "SUBSCRIPTION_ON_HOLD" }));
    expect((await subscription(user)).body).toMatchObject({ tier: "free", state: "expired", store: "google_play" });
  });

  it("an older notification delivered after a newer one changes nothing, whatever the API says by then", async () => {
    const { user, token } = await buyer("circle.pro.monthly");
    const older = await playPush({ purchaseToken: token, notificationType: "SUBSCRIPTION_RENEWED" });
    await new Promise((r) => setTimeout(r, 5));
    await setPlayPurchase(token, { subscriptionState: "EXPIRED", expiryTime: Date.now() - 1_000 });
    const newer = await playPush({ purchaseToken: token, notificationType: "SUBSCRIPTION_EXPIRED" });
    expect((await postPlay(newer)).body.outcome).toBe("applied");
    // Had the late one been applied, this purchase state would make the account pro again.
    await setPlayPurchase(token, { subscriptionState: "ACTIVE", expiryTime: Date.now() + 30 * DAY });
    expect((await postPlay(older)).body.outcome).toBe("stale");
    expect((await subscription(user)).body).toMatchObject({ tier: "free", state: "expired" });
  });

  it("counts a push once however many times, and however concurrently, Pub/Sub delivers it", async () => {
    const { user, token } = await buyer();
    const push = await playPush({ purchaseToken: token, notificationType: "SUBSCRIPTION_PURCHASED" });
    const answers = await Promise.all(Array.from({ length: 10 }, () => postPlay(push)));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(answers.filter((a) => a.body.outcome === "applied")).toHaveLength(1);
    expect(await historyOf(push.messageId)).toHaveLength(1);
    expect(await auditsOf(user)).toHaveLength(1);
    expect((await postPlay(push)).body.outcome).toBe("duplicate");
  });

  it("refuses a push whose token is not Google's, not for this endpoint, expired or missing (401), changing nothing", async () => {
    const { user, token } = await buyer();
    for (const forge of ["wrong-key", "wrong-audience", "expired"] as const) {
      const push = await playPush({ purchaseToken: token, notificationType: "SUBSCRIPTION_PURCHASED", forge });
      expectProblem(await postPlay(push), 401, "unauthorized");
      expect(await historyOf(push.messageId)).toEqual([]);
    }
    const push = await playPush({ purchaseToken: token, notificationType: "SUBSCRIPTION_PURCHASED" });
    const { Authorization: _dropped, ...unsigned } = push.headers;
    expectProblem(await postPlay(push, unsigned), 401, "unauthorized");
    expect((await subscription(user)).body.tier).toBe("free");
    expect(await acknowledgement(token)).toBe("ACKNOWLEDGEMENT_STATE_PENDING");
  });

  it("refuses another app's notification (400) and records an unknown purchase token as ignored", async () => {
    const { token } = await buyer();
    const other = await playPush({ purchaseToken: token, notificationType: 4, packageName: "com.example.other" });
    const res = await postPlay(other);
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toEqual(["message.data.packageName"]);
    const unknown = await postPlay(await playPush({ purchaseToken: purchaseToken(), notificationType: 4 }));
    expect(unknown.body.outcome).toBe("ignored");
  });

  it("an upgrade's new purchase token replaces the old one", async () => {
    const { user, token } = await buyer("circle.pro.monthly");
    await postPlay(await playPush({ purchaseToken: token, notificationType: "SUBSCRIPTION_PURCHASED" }));
    const upgraded = purchaseToken();
    await setPlayPurchase(upgraded, {
      productId: "circle.premium.monthly",
      subscriptionState: "ACTIVE",
      expiryTime: Date.now() + 30 * DAY,
      obfuscatedExternalAccountId: await appAccountToken(user),
      linkedPurchaseToken: token,
    });
    await postPlay(await playPush({ purchaseToken: upgraded, notificationType: "SUBSCRIPTION_PURCHASED" }));
    const account = await deps.db.users.findOne({ _id: new ObjectId(user.id) });
    expect(account?.billing?.entitlements.map((e) => e.subscriptionId)).toEqual([upgraded]);
    expect((await subscription(user)).body.tier).toBe("premium");
  });
});
