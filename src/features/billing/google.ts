import type { Config } from "../../config";
import { ApiError } from "../../core/errors";
import type { EntitlementChange } from "../../db";
import type { Deps } from "../../deps";
import {
  acknowledgeSubscription,
  type DeveloperNotification,
  decodeDeveloperNotification,
  getSubscriptionPurchase,
  PLAY_NOTIFICATION_NAMES,
  type PlayApiSettings,
  type PubSubPush,
  PushAuthError,
  type SubscriptionPurchaseV2,
  verifyPushToken,
} from "../../platform/billing/play";
import { ProviderUnavailableError } from "../../platform/billing/provider";
import { tierOfProduct } from "./entitlements";
import type { WebhookAck } from "./schema";
import { providerUnavailable, recordStoreNotification, type StoreNotification, unavailable } from "./service";

/**
 * Google Play real-time developer notifications (`POST /v1/billing/google`), pushed by Pub/Sub. The bearer
 * token is verified before the body is read (`authenticatePlayPush`, a route middleware); the notification
 * only names a purchase token, so the purchase is read from the Play Developer API before anything changes,
 * and a purchase still waiting for acknowledgement is acknowledged once the account has it (Google refunds
 * purchases not acknowledged within three days). A failed acknowledgement answers 503, so Pub/Sub redelivers:
 * the redelivery is a duplicate that changes nothing and acknowledges again.
 */

function configured(deps: Deps): { api: PlayApiSettings; packageName: string } {
  const play = deps.config.billing.play;
  if (!play.packageName || !play.pushAudience || !play.pushServiceAccount || !play.serviceAccount) {
    throw unavailable(deps, "Google Play notifications are not configured here yet.");
  }
  return {
    packageName: play.packageName,
    api: { apiUrl: play.apiUrl, serviceAccount: play.serviceAccount, timeoutMs: deps.config.billing.providerTimeoutMs },
  };
}

/** The push's bearer token: Google's signature, our audience, the configured service account (else 401). */
export async function authenticatePlayPush(deps: Deps, authorization: string | undefined): Promise<void> {
  configured(deps);
  const play = deps.config.billing.play;
  try {
    await verifyPushToken(authorization, {
      jwksUrl: play.pushJwksUrl,
      issuers: play.pushIssuers,
      audience: play.pushAudience,
      serviceAccountEmail: play.pushServiceAccount,
    });
  } catch (error) {
    if (error instanceof PushAuthError)
      throw ApiError.unauthorized(`Not a Pub/Sub push for this endpoint: ${error.message}.`);
    if (error instanceof ProviderUnavailableError) throw providerUnavailable(deps, error);
    throw error;
  }
}

export async function receivePlayNotification(deps: Deps, push: PubSubPush): Promise<WebhookAck> {
  const { api, packageName } = configured(deps);
  const notification = decodeDeveloperNotification(push.message.data);
  if (!notification) throw ApiError.invalidField("message.data", "not a Play developer notification");
  if (notification.packageName !== packageName) throw ApiError.invalidField("message.data.packageName", "not this app");
  const token =
    notification.subscriptionNotification?.purchaseToken ?? notification.voidedPurchaseNotification?.purchaseToken;
  let purchase: SubscriptionPurchaseV2 | null = null;
  try {
    if (token) purchase = await getSubscriptionPurchase(api, packageName, token);
  } catch (error) {
    if (error instanceof ProviderUnavailableError) throw providerUnavailable(deps, error);
    throw error;
  }
  const mapped = playNotification(deps.config, push, notification, purchase);
  const result = await recordStoreNotification(deps, mapped);
  const line = purchase ? latestLine(purchase) : null;
  if (
    token &&
    purchase &&
    line &&
    result.linked &&
    purchase.acknowledgementState === "ACKNOWLEDGEMENT_STATE_PENDING" &&
    (purchase.subscriptionState === "SUBSCRIPTION_STATE_ACTIVE" ||
      purchase.subscriptionState === "SUBSCRIPTION_STATE_IN_GRACE_PERIOD")
  ) {
    try {
      const ack = await acknowledgeSubscription(api, packageName, line.productId, token);
      if (!ack.acknowledged) {
        deps.log.warn("Google Play refused to acknowledge a purchase", {
          status: ack.status,
          messageId: push.message.messageId,
        });
      }
    } catch (error) {
      if (error instanceof ProviderUnavailableError) throw providerUnavailable(deps, error);
      throw error;
    }
  }
  return { received: true, outcome: result.outcome };
}

function latestLine(purchase: SubscriptionPurchaseV2) {
  const end = (line: { expiryTime?: string }) => (line.expiryTime ? Date.parse(line.expiryTime) : 0);
  return [...purchase.lineItems].sort((a, b) => end(b) - end(a))[0] ?? null;
}

/** Maps a notification and the purchase as the Play Developer API describes it now. Pure. */
export function playNotification(
  config: Config,
  push: PubSubPush,
  notification: DeveloperNotification,
  purchase: SubscriptionPurchaseV2 | null,
): StoreNotification {
  const eventAt = new Date(notification.eventTimeMillis);
  const subscription = notification.subscriptionNotification;
  const voided = notification.voidedPurchaseNotification;
  const token = subscription?.purchaseToken ?? voided?.purchaseToken ?? null;
  const type = subscription
    ? (PLAY_NOTIFICATION_NAMES[subscription.notificationType] ?? `SUBSCRIPTION_${subscription.notificationType}`)
    : voided
      ? "VOIDED_PURCHASE"
      : notification.testNotification
        ? "TEST"
        : "OTHER";
  const accountToken = purchase?.externalAccountIdentifiers?.obfuscatedExternalAccountId?.toLowerCase() ?? null;
  const base: StoreNotification = {
    store: "google_play",
    notificationId: push.message.messageId,
    type,
    eventAt,
    environment: purchase ? (purchase.testPurchase ? "Test" : "Production") : null,
    subscriptionId: token,
    account: { userId: null, accountToken },
    change: null,
    stripeCustomerId: null,
  };
  // A voided one-time product is not a subscription; nothing else here grants anything either.
  if (!token || !purchase || (voided && voided.productType !== 1)) return base;
  const line = latestLine(purchase);
  const products = { pro: config.billing.productsPro, premium: config.billing.productsPremium };
  const tier = line ? tierOfProduct(products, line.productId) : null;
  if (!line || !tier) return base;

  const expiryTime = line.expiryTime ? new Date(line.expiryTime) : null;
  const ended = expiryTime && expiryTime.getTime() < eventAt.getTime() ? expiryTime : eventAt;
  let state: EntitlementChange["state"];
  let expiresAt = expiryTime;
  switch (voided ? "VOIDED" : purchase.subscriptionState) {
    case "SUBSCRIPTION_STATE_ACTIVE":
    // Canceled: access runs to the end of the paid period, no renewal.
    case "SUBSCRIPTION_STATE_CANCELED":
      state = "active";
      break;
    case "SUBSCRIPTION_STATE_IN_GRACE_PERIOD":
      state = "grace";
      break;
    case "SUBSCRIPTION_STATE_ON_HOLD":
    case "SUBSCRIPTION_STATE_PAUSED":
    case "SUBSCRIPTION_STATE_EXPIRED":
    case "SUBSCRIPTION_STATE_PENDING_PURCHASE_CANCELED":
    case "VOIDED":
      state = "expired";
      expiresAt = ended;
      break;
    default:
      // Pending (not paid yet) or unknown: nothing to grant.
      return base;
  }
  return {
    ...base,
    change: {
      store: "google_play",
      subscriptionId: token,
      productId: line.productId,
      tier,
      state,
      expiresAt,
      eventAt,
      notificationId: push.message.messageId,
      autoRenew: line.autoRenewingPlan?.autoRenewEnabled ?? null,
      renewsAs: null,
      environment: base.environment,
      replaces: purchase.linkedPurchaseToken ?? null,
    },
  };
}
