import type { Config } from "../../config";
import { ApiError } from "../../core/errors";
import type { EntitlementChange } from "../../db";
import type { Deps } from "../../deps";
import {
  AppleSignatureError,
  appleRoots,
  appleVerifier,
  type VerifiedAppleNotification,
} from "../../platform/billing/appstore";
import { tierOfProduct } from "./entitlements";
import type { WebhookAck } from "./schema";
import { recordStoreNotification, type StoreNotification, unavailable } from "./service";

/**
 * App Store Server Notifications V2 (`POST /v1/billing/apple`): verified (chain up to the configured Apple
 * root, signature, bundle id, environment, app id), mapped to a store-neutral change and recorded once.
 * A forged, expired or wrongly signed payload is a 401; a genuine one for another app or environment a 400.
 */
export async function receiveAppStoreNotification(deps: Deps, body: { signedPayload: string }): Promise<WebhookAck> {
  const settings = deps.config.billing.appStore;
  if (!settings.bundleId) {
    throw unavailable(deps, "App Store notifications are not configured here yet.");
  }
  let verified: VerifiedAppleNotification;
  try {
    verified = await appleVerifier(appleRoots(settings.rootCertificates), deps.clock.now()).notification(
      body.signedPayload,
    );
  } catch (error) {
    if (!(error instanceof AppleSignatureError)) throw error;
    if (error.reason === "malformed") throw ApiError.invalidField("signedPayload", error.message);
    throw ApiError.unauthorized(`The notification is not signed by the App Store: ${error.message}.`);
  }
  const result = await recordStoreNotification(deps, appStoreNotification(deps.config, verified));
  return { received: true, outcome: result.outcome };
}

/** Maps a verified notification; refuses (400) one meant for another app or environment. Pure. */
export function appStoreNotification(config: Config, verified: VerifiedAppleNotification): StoreNotification {
  const settings = config.billing.appStore;
  const { payload, transaction, renewal } = verified;
  const data = payload.data;
  const wrong = (path: string, message: string) => ApiError.invalidField(`signedPayload.${path}`, message);
  if (data) {
    if (data.bundleId !== settings.bundleId) throw wrong("data.bundleId", "not this app's bundle id");
    if (!settings.environments.includes(data.environment)) {
      throw wrong("data.environment", `${data.environment} notifications are not accepted here`);
    }
    if (
      data.environment === "Production" &&
      settings.appAppleId !== undefined &&
      data.appAppleId !== settings.appAppleId
    ) {
      throw wrong("data.appAppleId", "not this app's Apple ID");
    }
    if (transaction && (transaction.bundleId !== data.bundleId || transaction.environment !== data.environment)) {
      throw wrong("data.signedTransactionInfo", "the transaction belongs to another app or environment");
    }
  }
  const eventAt = new Date(payload.signedDate);
  const type = payload.subtype ? `${payload.notificationType}/${payload.subtype}` : payload.notificationType;
  const base: StoreNotification = {
    store: "app_store",
    notificationId: payload.notificationUUID,
    type,
    eventAt,
    environment: data?.environment ?? null,
    subscriptionId: transaction?.originalTransactionId ?? null,
    account: { userId: null, accountToken: transaction?.appAccountToken?.toLowerCase() ?? null },
    change: null,
    stripeCustomerId: null,
  };
  // Summary-only notifications (e.g. RENEWAL_EXTENSION for many) and TEST carry no transaction.
  if (!data || !transaction) return base;
  const products = { pro: config.billing.productsPro, premium: config.billing.productsPremium };
  const tier = tierOfProduct(products, transaction.productId);
  if (!tier) return base;

  const at = (ms: number | undefined) => (ms === undefined ? null : new Date(ms));
  const expiresAt = at(transaction.expiresDate);
  let state: EntitlementChange["state"];
  let endsAt = expiresAt;
  switch (payload.notificationType) {
    case "SUBSCRIBED":
    case "DID_RENEW":
    // UPGRADE takes effect at once (the transaction is the new product's); DOWNGRADE at the next renewal.
    case "DID_CHANGE_RENEWAL_PREF":
      state = "active";
      break;
    case "DID_FAIL_TO_RENEW":
      // With Billing Grace Period the subscriber keeps access while Apple retries; without it, access stops.
      if (payload.subtype === "GRACE_PERIOD") {
        state = "grace";
        endsAt = at(renewal?.gracePeriodExpiresDate) ?? expiresAt;
      } else {
        state = "expired";
      }
      break;
    case "GRACE_PERIOD_EXPIRED":
    case "EXPIRED":
      state = "expired";
      break;
    case "REFUND":
    case "REVOKE":
      state = "expired";
      endsAt = at(transaction.revocationDate) ?? eventAt;
      break;
    default:
      return base;
  }
  if (transaction.revocationDate !== undefined) {
    state = "expired";
    endsAt = at(transaction.revocationDate);
  }
  const renewsAs =
    renewal?.autoRenewProductId && renewal.autoRenewProductId !== transaction.productId
      ? tierOfProduct(products, renewal.autoRenewProductId)
      : null;
  return {
    ...base,
    change: {
      store: "app_store",
      subscriptionId: transaction.originalTransactionId,
      productId: transaction.productId,
      tier,
      state,
      expiresAt: endsAt,
      eventAt,
      notificationId: payload.notificationUUID,
      autoRenew: renewal?.autoRenewStatus === undefined ? null : renewal.autoRenewStatus === 1,
      renewsAs,
      environment: data.environment,
      replaces: null,
    },
  };
}
