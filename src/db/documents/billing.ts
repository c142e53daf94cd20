import type { ObjectId } from "../../platform/ids";

/** Where a subscription was bought. */
export const BILLING_STORES = ["app_store", "google_play", "stripe"] as const;
export type BillingStore = (typeof BILLING_STORES)[number];

/** A store subscription's access: paid and current, paid but retrying a failed renewal (access kept), or over. */
export const ENTITLEMENT_STATES = ["active", "grace", "expired"] as const;
export type EntitlementState = (typeof ENTITLEMENT_STATES)[number];

/** The tiers a subscription sells (users.ts's TIERS without `free`; spelled out so the two files need no cycle). */
export type PaidTier = "pro" | "premium";

/**
 * One store subscription as the latest applied notification describes it. `subscriptionId` is the store's
 * stable id: the App Store's originalTransactionId, Google Play's purchase token, Stripe's subscription id.
 */
export interface Entitlement {
  store: BillingStore;
  subscriptionId: string;
  productId: string;
  tier: PaidTier;
  state: EntitlementState;
  /** When access ends (the paid period, or the grace period while retrying); null: no end known. */
  expiresAt: Date | null;
  /** The provider's date of the notification that set this (signedDate, eventTime, event.created). */
  eventAt: Date;
  notificationId: string;
  autoRenew: boolean | null;
  /** The tier the next renewal switches to (a downgrade waiting for the period's end). */
  renewsAs: PaidTier | null;
  environment: string | null;
  updatedAt: Date;
}

/**
 * `users.billing`: the account's store subscriptions and what they add up to. Written whole, guarded by
 * `revision` (compare-and-set), so concurrent notifications for one account never lose each other's change.
 */
export interface UserBilling {
  revision: number;
  entitlements: Entitlement[];
  /** Recently applied `subscriptions` history entries (makes finishing an interrupted one idempotent). */
  applied: ObjectId[];
  /** When the effective tier steps down to another live subscription (the `billing-sweep` job recomputes it). */
  nextChangeAt: Date | null;
  /** The Stripe customer the account's web checkouts belong to. */
  stripeCustomerId: string | null;
}

/** What one notification says about one store subscription (the part ordered by `eventAt`). */
export interface EntitlementChange {
  store: BillingStore;
  subscriptionId: string;
  productId: string;
  tier: PaidTier;
  state: EntitlementState;
  expiresAt: Date | null;
  eventAt: Date;
  notificationId: string;
  autoRenew: boolean | null;
  renewsAs: PaidTier | null;
  environment: string | null;
  /** Google Play: the purchase token this purchase replaces (upgrade, downgrade, resubscription). */
  replaces: string | null;
}

export const NOTIFICATION_OUTCOMES = ["pending", "applied", "stale", "unlinked", "ignored"] as const;
export type NotificationOutcome = (typeof NOTIFICATION_OUTCOMES)[number];

/** The user's effective access before and after a change (for the history and the audit log). */
export interface AccessSnapshot {
  tier: "free" | PaidTier;
  expiresAt: Date | null;
  state: "active" | "grace" | "expired" | "none";
}

/**
 * `subscriptions`: the history of store notifications, one document per notification, unique per
 * (store, notificationId) — the index that makes every notification count once. Written `pending` before the
 * account changes (the record of what is owed) and settled after; a pending one older than
 * BILLING_PENDING_GRACE_SECONDS is finished by the next delivery or by the `billing-sweep` job.
 */
export interface SubscriptionEventDoc {
  _id: ObjectId;
  store: BillingStore;
  /** notificationUUID (App Store), Pub/Sub messageId (Google Play), event id (Stripe). */
  notificationId: string;
  /** The provider's name for what happened, e.g. `DID_RENEW/BILLING_RECOVERY`, `SUBSCRIPTION_RENEWED`. */
  type: string;
  subscriptionId: string | null;
  /** Who the store says it belongs to: our user id (web checkout) or the app account token the app set. */
  account: { userId: string | null; accountToken: string | null };
  userId: ObjectId | null;
  eventAt: Date;
  receivedAt: Date;
  environment: string | null;
  change: EntitlementChange | null;
  /** Set with a Stripe checkout: the customer to remember on the account. */
  stripeCustomerId: string | null;
  outcome: NotificationOutcome;
  before: AccessSnapshot | null;
  after: AccessSnapshot | null;
  settledAt: Date | null;
  /** Set when the account was erased: the history stays, anonymous. */
  erasedAt?: Date | null;
}
