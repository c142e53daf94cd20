import { describe, expect, it } from "vitest";
import { invoiceObject, subscriptionObject } from "../../scripts/local/stripe-objects";
import type { CheckoutSession, SubscriptionView } from "../../src/features/billing/schema";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import {
  changeStripeSubscription,
  completeCheckout,
  DAY,
  postStripe,
  signStripe,
  stripeBindings,
} from "../support/billing";
import { testDeps } from "../support/deps";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();

/** HMAC-SHA256 hex with WebCrypto: Stripe's v1 scheme, computed independently of the stand-in. */
async function hmacHex(secret: string, message: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

const subscription = (user: TestUser) =>
  call<SubscriptionView>("GET", "/v1/me/subscription", { token: user.accessToken });
const checkout = (user: TestUser, tier: string) =>
  call<CheckoutSession>("POST", "/v1/me/billing/checkout", { token: user.accessToken, body: { tier } });
const historyOf = (eventId: string) => deps.db.subscriptions.find({ store: "stripe", notificationId: eventId });
const auditsOf = (user: TestUser) =>
  deps.db.auditLogs.find({ userId: new ObjectId(user.id), action: "subscription_changed" });

/** A web subscriber: checkout started by the account, paid at the stand-in, and Stripe's event delivered. */
async function webSubscriber(tier = "pro") {
  const [user] = await crowd(1);
  const started = await checkout(user, tier);
  expect(started.status, started.text).toBe(201);
  const paid = await completeCheckout(started.body.id);
  const res = await postStripe(paid.event);
  expect(res.status, res.text).toBe(200);
  return { user, session: started.body, subscriptionId: paid.subscription.id, res };
}

describe("web checkout and Stripe webhooks", () => {
  it("a Checkout Session tied to the caller, once paid, makes them pro: once, audited, and only one web subscription", async () => {
    const { user, session, subscriptionId, res } = await webSubscriber();
    expect(session.url).toMatch(/\/c\/pay\/cs_test_/);
    expect(res.body).toEqual({ received: true, outcome: "applied" });
    expect((await subscription(user)).body).toMatchObject({ tier: "pro", state: "active", store: "stripe" });
    const account = await deps.db.users.findOne({ _id: new ObjectId(user.id) });
    expect(account?.billing?.entitlements[0]).toMatchObject({ subscriptionId, productId: stripeBindings.pricePro() });
    expect(account?.billing?.stripeCustomerId).toMatch(/^cus_/);
    expect(await auditsOf(user)).toHaveLength(1);
    const again = await checkout(user, "premium");
    expect(expectProblem(again, 409, "conflict").reason).toBe("already_subscribed");
  });

  it("a failed renewal is a grace period while Stripe retries; deletion ends it", async () => {
    const { user, subscriptionId } = await webSubscriber("premium");
    const now = Math.floor(Date.now() / 1000);
    const failed = await signStripe({
      type: "invoice.payment_failed",
      object: invoiceObject({
        subscription: subscriptionId,
        status: "open",
        nextPaymentAttempt: now + 3 * 86_400,
        subscriptionMetadata: { userId: user.id },
      }),
      created: now + 1,
    });
    expect((await postStripe(failed)).body.outcome).toBe("applied");
    const grace = (await subscription(user)).body;
    expect(grace).toMatchObject({ tier: "premium", state: "grace", store: "stripe" });
    // A few days from the failure while Stripe retries, never the whole new period.
    expect(grace.expiresAt).toBe(new Date((now + 1) * 1000 + deps.config.billing.webGraceDays * DAY).toISOString());

    const deleted = await signStripe({
      type: "customer.subscription.deleted",
      object: subscriptionObject({
        id: subscriptionId,
        status: "canceled",
        metadata: { userId: user.id },
        priceId: stripeBindings.pricePremium(),
      }),
      created: now + 2,
    });
    expect((await postStripe(deleted)).body.outcome).toBe("applied");
    expect((await subscription(user)).body).toMatchObject({ tier: "free", state: "expired", store: "stripe" });
  });

  it("customer.subscription.updated follows the subscription; an older event after a newer one changes nothing", async () => {
    const { user, subscriptionId } = await webSubscriber();
    const pastDue = await changeStripeSubscription(subscriptionId, { status: "past_due" });
    expect(JSON.parse(pastDue.event.payload).type).toBe("customer.subscription.updated");
    expect((await postStripe(pastDue.event)).body.outcome).toBe("applied");
    expect((await subscription(user)).body).toMatchObject({ tier: "pro", state: "grace" });
    const olderActive = await signStripe({
      type: "customer.subscription.updated",
      object: subscriptionObject({
        id: subscriptionId,
        status: "active",
        metadata: { userId: user.id },
        priceId: stripeBindings.pricePro(),
        currentPeriodEnd: Math.floor(Date.now() / 1000) + 60 * 86_400,
      }),
      created: Math.floor(Date.now() / 1000) - 60,
    });
    expect((await postStripe(olderActive)).body.outcome).toBe("stale");
    expect((await subscription(user)).body).toMatchObject({ tier: "pro", state: "grace" });
    expect((await historyOf(olderActive.eventId))[0]?.outcome).toBe("stale");
  });

  it("counts an event once however many times, and however concurrently, it is delivered", async () => {
    const [user] = await crowd(1);
    const started = await checkout(user, "pro");
    const paid = await completeCheckout(started.body.id);
    const answers = await Promise.all(Array.from({ length: 12 }, () => postStripe(paid.event)));
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(200));
    expect(answers.filter((a) => a.body.outcome === "applied")).toHaveLength(1);
    expect(await historyOf(paid.event.eventId)).toHaveLength(1);
    expect(await auditsOf(user)).toHaveLength(1);
  });

  it("refuses a forged, stale, missing or mismatched signature (400 naming Stripe-Signature), changing nothing", async () => {
    const [user] = await crowd(1);
    const object = subscriptionObject({ metadata: { userId: user.id }, priceId: stripeBindings.pricePremium() });
    const type = "customer.subscription.updated";
    const forged = await signStripe({ type, object, forge: "bad-signature" });
    const stale = await signStripe({ type, object, forge: "stale-timestamp" });
    const good = await signStripe({ type, object });
    const { "Stripe-Signature": _dropped, ...unsigned } = good.headers;
    const tampered = { ...good, payload: good.payload.replace(`"${user.id}"`, `"${new ObjectId().toHexString()}"`) };
    for (const res of [
      await postStripe(forged),
      await postStripe(stale),
      await postStripe(good, unsigned),
      await postStripe(tampered),
    ]) {
      expectProblem(res, 400, "validation_failed");
      expect(fieldPaths(res)).toEqual(["Stripe-Signature"]);
    }
    expect((await subscription(user)).body.tier).toBe("free");
    for (const event of [forged, stale, good]) expect(await historyOf(event.eventId)).toEqual([]);
  });

  it("accepts any v1 during a secret roll (the new secret's signature next to the old one's)", async () => {
    const [user] = await crowd(1);
    const object = subscriptionObject({ metadata: { userId: user.id }, priceId: stripeBindings.pricePro() });
    const rolled = await signStripe({
      type: "customer.subscription.updated",
      object,
      secret: ["whsec_the_next_secret_not_yet_configured", stripeBindings.webhookSecret()],
    });
    expect((await postStripe(rolled)).body.outcome).toBe("applied");
    const unknownOnly = await signStripe({ type: "customer.subscription.updated", object, secret: "whsec_unknown" });
    expectProblem(await postStripe(unknownOnly), 400, "validation_failed");
  });

  it("refuses a live-mode event on a test-mode endpoint, and a tier not sold on the web", async () => {
    const [user] = await crowd(1);
    const signed = await signStripe({
      type: "customer.subscription.updated",
      object: subscriptionObject({ metadata: { userId: user.id }, priceId: stripeBindings.pricePro() }),
    });
    // The same event from live mode, signed with the endpoint's secret as Stripe would.
    const payload = JSON.stringify({ ...JSON.parse(signed.payload), livemode: true }, null, 2);
    const t = Math.floor(Date.now() / 1000);
    const header = `t=${t},v1=${await hmacHex(stripeBindings.webhookSecret(), `${t}.${payload}`)}`;
    const res = await postStripe({ payload, headers: { ...signed.headers, "Stripe-Signature": header } });
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toEqual(["livemode"]);
    expect((await subscription(user)).body.tier).toBe("free");
    expect(fieldPaths(await checkout(user, "platinum"))).toEqual(["tier"]);
  });
});
