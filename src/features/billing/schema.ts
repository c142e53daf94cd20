import { z } from "zod";
import { BILLING_STORES, TIERS } from "../../db";
import { PubSubPush } from "../../platform/billing/play";
import { StripeEvent } from "../../platform/billing/stripe";

export const AppleNotificationBody = z
  .object({
    signedPayload: z
      .string()
      .min(1)
      .max(256 * 1024)
      .meta({ description: "The JWS the App Store signed" }),
  })
  .meta({ id: "AppStoreServerNotification" });

export const PlayPushBody = PubSubPush.meta({
  id: "PubSubPush",
  description: "A Pub/Sub push of a Play real-time developer notification (`message.data` is base64 JSON)",
});

export const StripeEventBody = StripeEvent.meta({
  id: "StripeEvent",
  description: "A Stripe event, as Stripe posts it",
});

export const WEBHOOK_OUTCOMES = ["applied", "duplicate", "stale", "unlinked", "ignored"] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

export const WebhookAck = z
  .object({
    received: z.literal(true),
    outcome: z.enum(WEBHOOK_OUTCOMES).meta({
      description:
        "applied: the account changed; duplicate: this notification was already recorded; stale: an older " +
        "notification than the one already applied (nothing changed); unlinked: no account matches the purchase; " +
        "ignored: nothing to change (a test, an unknown product)",
    }),
  })
  .meta({ id: "WebhookAck" });
export type WebhookAck = z.infer<typeof WebhookAck>;

export const AppAccountToken = z
  .object({
    token: z.uuid().meta({
      description:
        "Pass it with every purchase: StoreKit `appAccountToken`, Play Billing `setObfuscatedAccountId`. The same " +
        "for the account's lifetime.",
    }),
  })
  .meta({ id: "AppAccountToken" });
export type AppAccountToken = z.infer<typeof AppAccountToken>;

export const SUBSCRIPTION_STATES = ["active", "grace", "expired", "none"] as const;

export const SubscriptionView = z
  .object({
    tier: z.enum(TIERS).meta({ description: "The tier that applies now" }),
    state: z.enum(SUBSCRIPTION_STATES).meta({
      description:
        "active: paid and current; grace: a renewal failed and the store is retrying, the tier stays until " +
        "`expiresAt`; expired: the subscription ended (free tier); none: never subscribed",
    }),
    expiresAt: z.string().nullable().meta({ description: "When access ends (active, grace) or ended (expired)" }),
    store: z
      .enum(BILLING_STORES)
      .nullable()
      .meta({ description: "Where it was bought (null: granted by Circle, or none)" }),
  })
  .meta({ id: "Subscription" });
export type SubscriptionView = z.infer<typeof SubscriptionView>;

export const CheckoutBody = z
  .object({ tier: z.enum(["pro", "premium"]).meta({ description: "The tier to subscribe to" }) })
  .strict()
  .meta({ id: "CheckoutBody" });
export type CheckoutBody = z.infer<typeof CheckoutBody>;

export const CheckoutSession = z
  .object({
    id: z.string().meta({ description: "Stripe Checkout Session id" }),
    url: z.string().meta({ description: "Send the browser here to pay" }),
  })
  .meta({ id: "CheckoutSession" });
export type CheckoutSession = z.infer<typeof CheckoutSession>;
