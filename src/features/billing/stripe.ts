import type { Config } from "../../config";
import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { EntitlementChange } from "../../db";
import type { Deps } from "../../deps";
import { ProviderUnavailableError } from "../../platform/billing/provider";
import {
  createCheckoutSession,
  invoiceSubscription,
  periodEndOf,
  retrieveSubscription,
  type StripeApiSettings,
  StripeCheckoutSession,
  type StripeEvent,
  StripeInvoice,
  StripeSignatureError,
  StripeSubscription,
  stripeId,
  verifyStripeSignature,
} from "../../platform/billing/stripe";
import { ObjectId } from "../../platform/ids";
import { DAY_MS } from "../../platform/time";
import { accessOf, tierOfProduct } from "./entitlements";
import type { CheckoutBody, CheckoutSession, WebhookAck } from "./schema";
import {
  billingOf,
  providerUnavailable,
  recordStoreNotification,
  type StoreNotification,
  unavailable,
} from "./service";

/**
 * Web subscriptions through Stripe. Checkout (`POST /v1/me/billing/checkout`) creates a Checkout Session that
 * names the account three ways Stripe carries back: `client_reference_id` and `metadata.userId` on the session,
 * and `subscription_data.metadata.userId` on the subscription it creates (so every later subscription and
 * invoice event names the account too). Webhooks (`POST /v1/billing/stripe`) are verified over the raw body
 * before anything reads it, then `checkout.session.completed`, `customer.subscription.updated` / `deleted`
 * and `invoice.payment_failed` become changes, ordered by the event's `created`.
 */

function apiSettings(deps: Deps): StripeApiSettings | null {
  const stripe = deps.config.billing.stripe;
  return stripe.secretKey
    ? { apiUrl: stripe.apiUrl, secretKey: stripe.secretKey, timeoutMs: deps.config.billing.providerTimeoutMs }
    : null;
}

/** Checks `Stripe-Signature` over the raw body (400 naming the header when it does not hold). */
export async function verifyStripeWebhook(deps: Deps, rawBody: string, header: string | undefined): Promise<void> {
  const stripe = deps.config.billing.stripe;
  if (stripe.webhookSecrets.length === 0) {
    throw unavailable(deps, "Stripe webhooks are not configured here yet.");
  }
  try {
    await verifyStripeSignature(rawBody, header, {
      secrets: stripe.webhookSecrets,
      toleranceSeconds: stripe.toleranceSeconds,
      now: deps.clock.now(),
    });
  } catch (error) {
    if (error instanceof StripeSignatureError) throw ApiError.invalidField("Stripe-Signature", error.message);
    throw error;
  }
}

export async function receiveStripeEvent(deps: Deps, event: StripeEvent): Promise<WebhookAck> {
  if (event.livemode !== deps.config.billing.stripe.liveMode) {
    throw ApiError.invalidField("livemode", `${event.livemode ? "live" : "test"}-mode events are not accepted here`);
  }
  try {
    const notification = await stripeNotification(deps, event);
    const result = await recordStoreNotification(deps, notification);
    return { received: true, outcome: result.outcome };
  } catch (error) {
    if (error instanceof ProviderUnavailableError) throw providerUnavailable(deps, error);
    throw error;
  }
}

/** The subscription an event is about, looked up in Stripe when the event itself does not carry it. */
async function stripeNotification(deps: Deps, event: StripeEvent): Promise<StoreNotification> {
  const eventAt = new Date(event.created * 1000);
  const base: StoreNotification = {
    store: "stripe",
    notificationId: event.id,
    type: event.type,
    eventAt,
    environment: event.livemode ? "live" : "test",
    subscriptionId: null,
    account: { userId: null, accountToken: null },
    change: null,
    stripeCustomerId: null,
  };
  const object = event.data.object;
  const retrieve = async (id: string) => {
    const settings = apiSettings(deps);
    if (!settings) throw new ProviderUnavailableError("stripe", "STRIPE_SECRET_KEY is not set");
    return retrieveSubscription(settings, id);
  };
  switch (event.type) {
    case "checkout.session.completed": {
      const session = StripeCheckoutSession.safeParse(object);
      if (!session.success) throw ApiError.invalidField("data.object", "not a Checkout Session");
      const id = stripeId(session.data.subscription);
      if (session.data.mode !== "subscription" || !id) return base;
      const subscription = await retrieve(id);
      const userId = session.data.client_reference_id ?? session.data.metadata.userId ?? null;
      return {
        ...base,
        subscriptionId: id,
        account: { userId, accountToken: null },
        stripeCustomerId: stripeId(session.data.customer),
        change: subscription ? subscriptionChange(deps.config, subscription, event) : null,
      };
    }
    case "customer.subscription.updated":
    case "customer.subscription.deleted": {
      const subscription = StripeSubscription.safeParse(object);
      if (!subscription.success) throw ApiError.invalidField("data.object", "not a Subscription");
      return {
        ...base,
        subscriptionId: subscription.data.id,
        account: { userId: subscription.data.metadata.userId ?? null, accountToken: null },
        stripeCustomerId: stripeId(subscription.data.customer),
        change: subscriptionChange(deps.config, subscription.data, event),
      };
    }
    case "invoice.payment_failed": {
      const invoice = StripeInvoice.safeParse(object);
      if (!invoice.success) throw ApiError.invalidField("data.object", "not an Invoice");
      const { id, metadata } = invoiceSubscription(invoice.data);
      if (!id) return base;
      const subscription = await retrieve(id);
      const current = subscription ? subscriptionChange(deps.config, subscription, event) : null;
      return {
        ...base,
        subscriptionId: id,
        account: { userId: metadata.userId ?? null, accountToken: null },
        stripeCustomerId: stripeId(invoice.data.customer),
        change: current ? paymentFailedChange(deps.config, current, invoice.data.next_payment_attempt ?? null) : null,
      };
    }
    default:
      return base;
  }
}

function stripeProducts(config: Config) {
  const stripe = config.billing.stripe;
  return {
    pro: [...config.billing.productsPro, ...(stripe.pricePro ? [stripe.pricePro] : [])],
    premium: [...config.billing.productsPremium, ...(stripe.pricePremium ? [stripe.pricePremium] : [])],
  };
}

/** What a Subscription object says about access at the event's time. Pure. */
export function subscriptionChange(
  config: Config,
  subscription: StripeSubscription,
  event: Pick<StripeEvent, "id" | "created" | "livemode">,
): EntitlementChange | null {
  const price = subscription.items.data[0]?.price;
  const tier = tierOfProduct(stripeProducts(config), price?.id, price?.lookup_key);
  if (!price || !tier) return null;
  const eventAt = new Date(event.created * 1000);
  const periodEnd = periodEndOf(subscription);
  const paidUntil = periodEnd === null ? null : new Date(periodEnd * 1000);
  const graceUntil = new Date(eventAt.getTime() + config.billing.webGraceDays * DAY_MS);
  let state: EntitlementChange["state"];
  let expiresAt = paidUntil;
  switch (subscription.status) {
    case "active":
    case "trialing":
      state = "active";
      break;
    case "past_due":
      // A renewal payment failed and Stripe is retrying: access for a few days, never past the paid period.
      state = "grace";
      expiresAt = paidUntil && paidUntil < graceUntil ? paidUntil : graceUntil;
      break;
    case "canceled":
    case "unpaid":
    case "incomplete_expired":
    case "paused": {
      state = "expired";
      const ended = subscription.ended_at ?? subscription.canceled_at;
      expiresAt = ended ? new Date(Math.min(ended * 1000, eventAt.getTime())) : eventAt;
      break;
    }
    default:
      // incomplete: the first payment has not gone through yet.
      return null;
  }
  return {
    store: "stripe",
    subscriptionId: subscription.id,
    productId: price.id,
    tier,
    state,
    expiresAt,
    eventAt,
    notificationId: event.id,
    autoRenew: state === "expired" ? false : !subscription.cancel_at_period_end,
    renewsAs: null,
    environment: event.livemode ? "live" : "test",
    replaces: null,
  };
}

/** A failed invoice: grace while Stripe will retry, over when it will not. Pure. */
export function paymentFailedChange(
  config: Config,
  current: EntitlementChange,
  nextPaymentAttempt: number | null,
): EntitlementChange {
  if (current.state === "expired") return current;
  if (nextPaymentAttempt === null)
    return { ...current, state: "expired", expiresAt: current.eventAt, autoRenew: false };
  const graceUntil = new Date(current.eventAt.getTime() + config.billing.webGraceDays * DAY_MS);
  const expiresAt = current.expiresAt && current.expiresAt < graceUntil ? current.expiresAt : graceUntil;
  return { ...current, state: "grace", expiresAt };
}

/**
 * Starts a web subscription: a Stripe Checkout Session for the tier's price, tied to the caller. A caller
 * whose web subscription already runs gets a 409 (one subscription per account on the web).
 */
export async function startCheckout(deps: Deps, viewer: Viewer, body: CheckoutBody): Promise<CheckoutSession> {
  const stripe = deps.config.billing.stripe;
  const price = body.tier === "premium" ? stripe.pricePremium : stripe.pricePro;
  const settings = apiSettings(deps);
  if (!settings || !price) throw ApiError.invalidField("tier", "not sold on the web");
  const user = await deps.db.users.findOne(
    { _id: new ObjectId(viewer.id), deletedAt: null },
    { projection: { billing: 1 } },
  );
  if (!user) throw ApiError.notFound("Account not found.");
  const billing = billingOf(user);
  const now = deps.clock.now();
  const running = billing.entitlements.some((e) => e.store === "stripe" && accessOf([e], now).state !== "expired");
  if (running) {
    throw ApiError.conflict("already_subscribed", "This account already has a web subscription; manage it in billing.");
  }
  try {
    const session = await createCheckoutSession(settings, {
      mode: "subscription",
      line_items: [{ price, quantity: 1 }],
      success_url: stripe.successUrl,
      cancel_url: stripe.cancelUrl,
      client_reference_id: viewer.id,
      metadata: { userId: viewer.id, tier: body.tier },
      subscription_data: { metadata: { userId: viewer.id, tier: body.tier } },
      ...(billing.stripeCustomerId ? { customer: billing.stripeCustomerId } : {}),
    });
    if (!session.url) throw new ProviderUnavailableError("stripe", "the session has no url");
    return { id: session.id, url: session.url };
  } catch (error) {
    if (error instanceof ProviderUnavailableError) throw providerUnavailable(deps, error);
    throw error;
  }
}
