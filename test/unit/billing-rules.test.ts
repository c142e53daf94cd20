import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { subscriptionObject } from "../../scripts/local/stripe-objects";
import { loadConfig } from "../../src/config";
import type { Entitlement, EntitlementChange } from "../../src/db";
import { appStoreNotification } from "../../src/features/billing/apple";
import { accessOf, applyChange, ENTITLEMENTS_KEPT, tierOfProduct } from "../../src/features/billing/entitlements";
import { playNotification } from "../../src/features/billing/google";
import { subscriptionView } from "../../src/features/billing/service";
import { paymentFailedChange, subscriptionChange } from "../../src/features/billing/stripe";
import type { VerifiedAppleNotification } from "../../src/platform/billing/appstore";
import {
  formEncode,
  StripeSignatureError,
  StripeSubscription,
  verifyStripeSignature,
} from "../../src/platform/billing/stripe";
import { unitEnv } from "./support/env";

const DAY = 86_400_000;
const now = new Date("2026-03-01T12:00:00Z");
const at = (offsetMs: number) => new Date(now.getTime() + offsetMs);
const config = loadConfig(unitEnv({ APPSTORE_BUNDLE_ID: "app.circle.test", APPSTORE_ENVIRONMENTS: "Sandbox" }));

function change(overrides: Partial<EntitlementChange> = {}): EntitlementChange {
  return {
    store: "app_store",
    subscriptionId: "sub-1",
    productId: "circle.pro.monthly",
    tier: "pro",
    state: "active",
    expiresAt: at(30 * DAY),
    eventAt: at(-DAY),
    notificationId: crypto.randomUUID(),
    autoRenew: true,
    renewsAs: null,
    environment: null,
    replaces: null,
    ...overrides,
  };
}

function entitlements(...changes: EntitlementChange[]): Entitlement[] {
  let list: Entitlement[] = [];
  for (const c of changes) {
    const decision = applyChange(list, c, now);
    if (decision.outcome === "applied") list = decision.entitlements;
  }
  return list;
}

describe("store subscription rules", () => {
  it("maps products (and Stripe prices or lookup keys) to tiers, premium first", () => {
    const products = { pro: ["p", "shared"], premium: ["q", "shared"] };
    expect(tierOfProduct(products, "p")).toBe("pro");
    expect(tierOfProduct(products, "q")).toBe("premium");
    expect(tierOfProduct(products, "shared")).toBe("premium");
    expect(tierOfProduct(products, "price_unknown", "q")).toBe("premium");
    expect(tierOfProduct(products, "nope", null, undefined)).toBeNull();
  });

  it("never moves a subscription back in the provider's time; at the same instant the more final state wins", () => {
    const active = change({ eventAt: at(-DAY) });
    const [applied] = entitlements(active);
    expect(
      applyChange([applied as Entitlement], change({ eventAt: at(-2 * DAY), state: "expired" }), now),
    ).toMatchObject({
      outcome: "stale",
    });
    expect(applyChange([applied as Entitlement], change({ eventAt: at(-DAY), state: "expired" }), now).outcome).toBe(
      "applied",
    );
    const [expired] = entitlements(active, change({ eventAt: at(-DAY), state: "expired" }));
    expect(applyChange([expired as Entitlement], change({ eventAt: at(-DAY), state: "active" }), now).outcome).toBe(
      "stale",
    );
    expect(applyChange([expired as Entitlement], change({ eventAt: at(-DAY + 1), state: "active" }), now).outcome).toBe(
      "applied",
    );
  });

  it("retires the purchase an upgrade replaces, and keeps running subscriptions before ended ones", () => {
    const list = entitlements(
      change({ store: "google_play", subscriptionId: "old" }),
      change({ store: "google_play", subscriptionId: "new", tier: "premium", replaces: "old", eventAt: at(-DAY + 1) }),
    );
    expect(list.map((e) => e.subscriptionId)).toEqual(["new"]);
    const many = entitlements(
      change({ subscriptionId: "running", eventAt: at(-10 * DAY) }),
      ...Array.from({ length: ENTITLEMENTS_KEPT + 3 }, (_, i) =>
        change({ subscriptionId: `ended-${i}`, state: "expired", expiresAt: at(-DAY), eventAt: at(-DAY + i) }),
      ),
    );
    expect(many).toHaveLength(ENTITLEMENTS_KEPT);
    expect(many[0]?.subscriptionId).toBe("running");
  });

  it("adds up to the highest running tier, and knows when it steps down to another running one", () => {
    const list = entitlements(
      change({ subscriptionId: "pro", tier: "pro", expiresAt: at(20 * DAY) }),
      change({ store: "stripe", subscriptionId: "premium", tier: "premium", expiresAt: at(5 * DAY) }),
    );
    expect(accessOf(list, now)).toMatchObject({ tier: "premium", store: "stripe", nextChangeAt: at(5 * DAY) });
    expect(accessOf(list, at(6 * DAY))).toMatchObject({ tier: "pro", store: "app_store", nextChangeAt: null });
    expect(accessOf(list, at(21 * DAY))).toMatchObject({ tier: "free", state: "expired", expiresAt: at(20 * DAY) });
    expect(accessOf([], now)).toEqual({
      tier: "free",
      expiresAt: null,
      state: "none",
      store: null,
      nextChangeAt: null,
    });
    const grace = entitlements(change({ state: "grace", expiresAt: at(3 * DAY) }));
    expect(accessOf(grace, now)).toMatchObject({ tier: "pro", state: "grace" });
  });

  it("describes the subscription as the app shows it: store, Circle grant, lapsed, none", () => {
    const bought = entitlements(change({ expiresAt: at(10 * DAY) }));
    const billing = { revision: 1, entitlements: bought, applied: [], nextChangeAt: null, stripeCustomerId: null };
    expect(subscriptionView({ tier: "pro", tierExpiresAt: at(10 * DAY), billing }, now)).toEqual({
      tier: "pro",
      state: "active",
      expiresAt: at(10 * DAY).toISOString(),
      store: "app_store",
    });
    expect(subscriptionView({ tier: "premium", tierExpiresAt: null }, now)).toEqual({
      tier: "premium",
      state: "active",
      expiresAt: null,
      store: null,
    });
    expect(subscriptionView({ tier: "pro", tierExpiresAt: at(10 * DAY), billing }, at(11 * DAY))).toMatchObject({
      tier: "free",
      state: "expired",
      store: "app_store",
    });
    expect(subscriptionView({ tier: "free", tierExpiresAt: null }, now).state).toBe("none");
  });
});

describe("App Store notifications → changes", () => {
  const verified = (
    notificationType: string,
    subtype: string | undefined,
    transaction: Partial<NonNullable<VerifiedAppleNotification["transaction"]>> = {},
    renewal: Partial<NonNullable<VerifiedAppleNotification["renewal"]>> = {},
  ): VerifiedAppleNotification => ({
    payload: {
      notificationType,
      subtype,
      notificationUUID: crypto.randomUUID(),
      signedDate: now.getTime(),
      data: { environment: "Sandbox", bundleId: "app.circle.test" },
    },
    transaction: {
      transactionId: "2",
      originalTransactionId: "1",
      bundleId: "app.circle.test",
      productId: "circle.pro.monthly",
      expiresDate: at(30 * DAY).getTime(),
      appAccountToken: "0F8FAD5B-D9CB-469F-A165-70867728950E",
      environment: "Sandbox",
      signedDate: now.getTime(),
      ...transaction,
    },
    renewal: { originalTransactionId: "1", autoRenewStatus: 1, ...renewal },
  });
  const mapped = (...args: Parameters<typeof verified>) => appStoreNotification(config, verified(...args)).change;

  it("maps each subscription notification to its state and end", () => {
    expect(mapped("SUBSCRIBED", "INITIAL_BUY")).toMatchObject({
      state: "active",
      tier: "pro",
      expiresAt: at(30 * DAY),
    });
    expect(mapped("DID_RENEW", undefined)).toMatchObject({ state: "active" });
    expect(
      mapped("DID_FAIL_TO_RENEW", "GRACE_PERIOD", {}, { gracePeriodExpiresDate: at(16 * DAY).getTime() }),
    ).toMatchObject({
      state: "grace",
      expiresAt: at(16 * DAY),
    });
    expect(mapped("DID_FAIL_TO_RENEW", undefined)).toMatchObject({ state: "expired" });
    expect(mapped("EXPIRED", "VOLUNTARY")).toMatchObject({ state: "expired" });
    expect(mapped("REFUND", undefined, { revocationDate: at(-1_000).getTime() })).toMatchObject({
      state: "expired",
      expiresAt: at(-1_000),
    });
    expect(mapped("REVOKE", undefined)).toMatchObject({ state: "expired", expiresAt: now });
    expect(
      mapped(
        "DID_CHANGE_RENEWAL_PREF",
        "DOWNGRADE",
        { productId: "circle.premium.monthly" },
        { autoRenewProductId: "circle.pro.monthly" },
      ),
    ).toMatchObject({ tier: "premium", renewsAs: "pro", state: "active" });
    expect(mapped("PRICE_INCREASE", "PENDING")).toBeNull();
    expect(mapped("SUBSCRIBED", "INITIAL_BUY", { productId: "circle.coins.100" })).toBeNull();
    // Apple may send the token in either case; accounts hold it lower-case.
    expect(appStoreNotification(config, verified("DID_RENEW", undefined)).account.accountToken).toBe(
      "0f8fad5b-d9cb-469f-a165-70867728950e",
    );
  });
});

describe("Google Play purchases → changes", () => {
  const push = { message: { data: "", messageId: "m-1" } };
  const notification = (type: number) => ({
    packageName: "app.circle.test",
    eventTimeMillis: now.getTime(),
    subscriptionNotification: { notificationType: type, purchaseToken: "tok" },
  });
  const purchase = (subscriptionState: string, expiryTime = at(30 * DAY).toISOString()) => ({
    subscriptionState,
    lineItems: [{ productId: "circle.premium.monthly", expiryTime }],
    externalAccountIdentifiers: { obfuscatedExternalAccountId: "acct" },
  });
  const mapped = (state: string, expiry?: string) =>
    playNotification(config, push, notification(2), purchase(state, expiry)).change;

  it("maps the purchase's state, not the notification's type", () => {
    expect(mapped("SUBSCRIPTION_STATE_ACTIVE")).toMatchObject({ state: "active", tier: "premium" });
    expect(mapped("SUBSCRIPTION_STATE_CANCELED")).toMatchObject({ state: "active", expiresAt: at(30 * DAY) });
    expect(mapped("SUBSCRIPTION_STATE_IN_GRACE_PERIOD")).toMatchObject({ state: "grace" });
    expect(mapped("SUBSCRIPTION_STATE_ON_HOLD", at(-DAY).toISOString())).toMatchObject({
      state: "expired",
      expiresAt: at(-DAY),
    });
    expect(mapped("SUBSCRIPTION_STATE_EXPIRED", at(DAY).toISOString())).toMatchObject({
      state: "expired",
      expiresAt: now,
    });
    expect(mapped("SUBSCRIPTION_STATE_PENDING")).toBeNull();
    expect(playNotification(config, push, notification(4), null).change).toBeNull();
  });
});

describe("Stripe subscriptions → changes", () => {
  const event = { id: "evt_1", created: Math.floor(now.getTime() / 1000), livemode: false };
  const stripeConfig = loadConfig(unitEnv({ STRIPE_PRICE_PRO: "price_pro" }));
  const sub = (input: Parameters<typeof subscriptionObject>[0], version?: string) =>
    StripeSubscription.parse(subscriptionObject({ priceId: "price_pro", ...input }, version));
  const periodEnd = Math.floor(at(30 * DAY).getTime() / 1000);

  it("reads the paid period from the item (basil and later) or the subscription (before)", () => {
    for (const version of ["2025-09-30.clover", "2024-06-20"]) {
      expect(subscriptionChange(stripeConfig, sub({ currentPeriodEnd: periodEnd }, version), event)).toMatchObject({
        tier: "pro",
        state: "active",
        expiresAt: new Date(periodEnd * 1000),
      });
    }
  });

  it("past due is a short grace, canceled and unpaid are over, incomplete grants nothing yet", () => {
    const grace = subscriptionChange(stripeConfig, sub({ status: "past_due", currentPeriodEnd: periodEnd }), event);
    expect(grace).toMatchObject({ state: "grace", expiresAt: at(stripeConfig.billing.webGraceDays * DAY) });
    expect(subscriptionChange(stripeConfig, sub({ status: "canceled" }), event)?.state).toBe("expired");
    expect(subscriptionChange(stripeConfig, sub({ status: "unpaid" }), event)?.state).toBe("expired");
    expect(subscriptionChange(stripeConfig, sub({ status: "incomplete" }), event)).toBeNull();
    expect(subscriptionChange(stripeConfig, sub({ priceId: "price_other" }), event)).toBeNull();
    const active = subscriptionChange(stripeConfig, sub({ currentPeriodEnd: periodEnd }), event) as EntitlementChange;
    expect(paymentFailedChange(stripeConfig, active, event.created + 3_600)).toMatchObject({ state: "grace" });
    expect(paymentFailedChange(stripeConfig, active, null)).toMatchObject({ state: "expired", expiresAt: now });
  });
});

describe("Stripe-Signature", () => {
  const secret = "whsec_unit_secret";
  const body = JSON.stringify({ id: "evt_1", object: "event" }, null, 2);
  const t = Math.floor(now.getTime() / 1000);
  const v1 = (s: string, ts = t, payload = body) => createHmac("sha256", s).update(`${ts}.${payload}`).digest("hex");
  const check = (header: string | undefined, secrets = [secret], payload = body) =>
    verifyStripeSignature(payload, header, { secrets, toleranceSeconds: 300, now });

  it("accepts a v1 of any live secret among several, ignoring v0 and unknown schemes", async () => {
    await expect(check(`t=${t},v1=${v1(secret)}`)).resolves.toBeUndefined();
    await expect(check(`t=${t},v1=${v1("whsec_other")},v1=${v1(secret)},v0=${v1("x")},v9=zz`)).resolves.toBeUndefined();
    await expect(check(`t=${t},v1=${v1("whsec_rolled")}`, ["whsec_rolled", secret])).resolves.toBeUndefined();
  });

  it("refuses a missing header, no v1, a stale or future timestamp, another secret and a changed body", async () => {
    const refusals = [
      check(undefined),
      check(`t=${t},v0=${v1(secret)}`),
      check(`t=${t - 301},v1=${v1(secret, t - 301)}`),
      check(`t=${t + 301},v1=${v1(secret, t + 301)}`),
      check(`t=${t},v1=${v1("whsec_other")}`),
      check(`t=${t},v1=${v1(secret)}`, [secret], `${body} `),
      check(`t=${t + 1},v1=${v1(secret)}`),
    ];
    for (const refusal of refusals) await expect(refusal).rejects.toBeInstanceOf(StripeSignatureError);
  });

  it("form-encodes nested parameters the way Stripe reads them", () => {
    expect(
      decodeURIComponent(
        formEncode({
          mode: "subscription",
          line_items: [{ price: "p", quantity: 1 }],
          metadata: { userId: "u" },
          skip: undefined,
        }),
      ),
    ).toBe("mode=subscription&line_items[0][price]=p&line_items[0][quantity]=1&metadata[userId]=u");
  });
});
