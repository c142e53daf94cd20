import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../../http/context";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, publicRoute } from "../../http/routes";
import { receiveAppStoreNotification } from "./apple";
import { authenticatePlayPush, receivePlayNotification } from "./google";
import {
  AppAccountToken,
  AppleNotificationBody,
  CheckoutBody,
  CheckoutSession,
  PlayPushBody,
  StripeEventBody,
  SubscriptionView,
  WebhookAck,
} from "./schema";
import { appAccountToken, subscriptionOf } from "./service";
import { receiveStripeEvent, startCheckout, verifyStripeWebhook } from "./stripe";

const tags = ["billing"];
const ack = { 200: json(WebhookAck, "Verified and recorded (a repeat changes nothing and answers 200 too)") };

/** Google's push token is checked before the body is read. */
const playPushAuth: MiddlewareHandler<AppEnv> = async (c, next) => {
  await authenticatePlayPush(c.var.deps, c.req.header("authorization"));
  await next();
};

/** Stripe's signature covers the raw bytes, so it is checked on them before the JSON is parsed. */
const stripeSignature: MiddlewareHandler<AppEnv> = async (c, next) => {
  await verifyStripeWebhook(c.var.deps, await c.req.text(), c.req.header("stripe-signature"));
  await next();
};

const appleRoute = publicRoute({
  method: "post",
  path: "/v1/billing/apple",
  tags,
  // The sender proves itself by a signature, checked before anything else is read (tests read this mark).
  "x-signed-by": "App Store JWS (signedPayload, x5c chain to Apple's root)",
  summary: "App Store Server Notifications V2",
  description:
    "The App Store's signed notification. Its x5c chain must verify up to the configured Apple root and the JWS " +
    "under the leaf (401 otherwise); a genuine one for another bundle id or environment is a 400. SUBSCRIBED, " +
    "DID_RENEW, DID_FAIL_TO_RENEW, GRACE_PERIOD_EXPIRED, EXPIRED, REFUND, REVOKE and DID_CHANGE_RENEWAL_PREF " +
    "change the account that set `appAccountToken` (see GET /v1/me/billing/app-account-token); every " +
    "notification counts once, and one older than what its subscription last applied changes nothing.",
  request: jsonBody(AppleNotificationBody),
  responses: { ...ack, ...problems(401) },
});

const googleRoute = publicRoute({
  method: "post",
  path: "/v1/billing/google",
  tags,
  "x-signed-by": "Google-signed OIDC token (Authorization: Bearer)",
  use: [playPushAuth],
  summary: "Google Play real-time developer notifications (Pub/Sub push)",
  description:
    "`Authorization: Bearer` must be a Google-signed token for the configured audience and push service account " +
    "(401 otherwise). The purchase is read from the Play Developer API before anything changes, and a new one " +
    "is acknowledged; the account is the one whose app account token the app set as obfuscatedAccountId. 503 " +
    "when Google cannot be reached (Pub/Sub redelivers; a redelivery changes nothing twice).",
  request: jsonBody(PlayPushBody),
  responses: { ...ack, ...problems(401) },
});

const stripeRoute = publicRoute({
  method: "post",
  path: "/v1/billing/stripe",
  tags,
  "x-signed-by": "Stripe-Signature (HMAC-SHA256)",
  use: [stripeSignature],
  summary: "Stripe webhooks",
  description:
    "`Stripe-Signature` (t=…,v1=…; HMAC-SHA256 over `t.body` with an endpoint secret, any of several during a " +
    "secret roll, 5-minute tolerance) is checked over the raw body first: a missing, stale or wrong one is a 400 " +
    "naming the header. checkout.session.completed, customer.subscription.updated / deleted and " +
    "invoice.payment_failed change the account the session or subscription names.",
  request: jsonBody(StripeEventBody),
  responses: ack,
});

const tokenRoute = authedRoute({
  method: "get",
  path: "/v1/me/billing/app-account-token",
  tags,
  summary: "The caller's app account token for store purchases",
  description:
    "A UUID issued once per account. iOS passes it as StoreKit's `appAccountToken`, Android as Play Billing's " +
    "`setObfuscatedAccountId`, with every subscription purchase, so the store's notifications find the account.",
  responses: { 200: json(AppAccountToken, "The token"), ...problems(404) },
});

const subscriptionRoute = authedRoute({
  method: "get",
  path: "/v1/me/subscription",
  tags,
  summary: "The caller's subscription",
  description:
    "The tier that applies now, its state (active, grace: a renewal failed and the store retries while the tier " +
    "stays on; expired; none: never subscribed), when it ends or ended, and the store it was bought in.",
  responses: { 200: json(SubscriptionView, "Subscription"), ...problems(404) },
});

const checkoutRoute = authedRoute({
  method: "post",
  path: "/v1/me/billing/checkout",
  tags,
  summary: "Start a web subscription (Stripe Checkout)",
  description:
    "Creates a Stripe Checkout Session for the tier, tied to the caller's account (client_reference_id, " +
    "metadata.userId, subscription metadata.userId); send the browser to `url`. The tier changes when Stripe " +
    "reports the payment (POST /v1/billing/stripe), not before. A tier not sold on the web is a 400 naming " +
    "`tier`; an account whose web subscription still runs gets a 409 `already_subscribed`.",
  request: jsonBody(CheckoutBody),
  responses: { 201: json(CheckoutSession, "Checkout started"), ...problems(404, 409) },
});

export const billingRoutes = router()
  .openapi(appleRoute, async (c) => c.json(await receiveAppStoreNotification(c.var.deps, c.req.valid("json")), 200))
  .openapi(googleRoute, async (c) => c.json(await receivePlayNotification(c.var.deps, c.req.valid("json")), 200))
  .openapi(stripeRoute, async (c) => c.json(await receiveStripeEvent(c.var.deps, c.req.valid("json")), 200))
  .openapi(tokenRoute, async (c) => c.json(await appAccountToken(c.var.deps, c.var.viewer), 200))
  .openapi(subscriptionRoute, async (c) => c.json(await subscriptionOf(c.var.deps, c.var.viewer), 200))
  .openapi(checkoutRoute, async (c) => c.json(await startCheckout(c.var.deps, c.var.viewer, c.req.valid("json")), 201));
