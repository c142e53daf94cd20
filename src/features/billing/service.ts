import { ApiError } from "../../core/errors";
import { effectiveTier, forgetStanding } from "../../core/standing";
import type { Viewer } from "../../core/viewer";
import type {
  AccessSnapshot,
  BillingStore,
  EntitlementChange,
  SubscriptionEventDoc,
  UserBilling,
  UserDoc,
} from "../../db";
import type { Deps } from "../../deps";
import { isObjectIdHex, newObjectId, newUuid, ObjectId } from "../../platform/ids";
import type { Filter } from "../../platform/mongo/client";
import { deleteKeys, runOp } from "../../platform/redis-ops";
import { utcDay } from "../../platform/time";
import { auditEntry } from "../audit/service";
import { notify } from "../notifications/service";
import { APPLIED_KEPT, accessOf, applyChange, snapshotOf } from "./entitlements";
import type { AppAccountToken, SubscriptionView, WebhookOutcome } from "./schema";

/**
 * Store notifications, exactly once and in order. Each verified notification is first recorded in the
 * `subscriptions` history under its provider id (a unique index: a repeat, however concurrent, finds it there
 * and changes nothing), `pending` — the durable record of what is owed. The account then changes with one
 * compare-and-set on `users.billing.revision`, so two notifications for one account never overwrite each
 * other, and a notification older (by the provider's date) than the one that last set its subscription is
 * `stale` and changes nothing. The winner of that write settles the history entry, writes the audit entry
 * and notifies the user. A crash in between leaves the entry pending: its next delivery or the
 * `billing-sweep` job finishes it, once (the account remembers which entries it applied).
 *
 * MongoDB waits for a new notification: the history insert and the account read at once, the account write,
 * then the settle, audit entry and notice at once (plus notify's own read). Redis: the standing and the
 * cached profile are dropped so the new tier applies to existing tokens at once.
 */

/** A verified notification, in the store-neutral shape the adapters produce. */
export interface StoreNotification {
  store: BillingStore;
  notificationId: string;
  type: string;
  eventAt: Date;
  environment: string | null;
  subscriptionId: string | null;
  account: { userId: string | null; accountToken: string | null };
  /** What it says about the subscription; null when there is nothing to apply (a test, an unknown product). */
  change: EntitlementChange | null;
  stripeCustomerId: string | null;
}

export interface RecordResult {
  outcome: WebhookOutcome;
  /** The subscription belongs to an account and its change was applied (now or earlier). */
  linked: boolean;
}

const ACCOUNT_FIELDS = { tier: 1, tierExpiresAt: 1, billing: 1, usernameLower: 1 } as const;
type BillingAccount = Pick<UserDoc, "_id" | "tier" | "tierExpiresAt" | "billing" | "usernameLower">;
/** Compare-and-set attempts before answering 503 (the provider redelivers; nothing was half-written). */
const WRITE_ATTEMPTS = 5;

/** A 503 whose Retry-After asks the store (or the app) to come back: nothing was written. */
export function unavailable(deps: Deps, detail: string): ApiError {
  return new ApiError("unavailable", detail, {
    headers: { "Retry-After": String(deps.config.unavailableRetryAfterSeconds) },
  });
}

/** The store's own API could not be reached: logged, and a 503 so the delivery is tried again. */
export function providerUnavailable(deps: Deps, error: Error): ApiError {
  deps.log.warn("billing provider unavailable", { error: error.message });
  return unavailable(deps, "The store could not be reached; please deliver this again later.");
}

const EMPTY_BILLING: UserBilling = {
  revision: 0,
  entitlements: [],
  applied: [],
  nextChangeAt: null,
  stripeCustomerId: null,
};

export function billingOf(user: Pick<UserDoc, "billing">): UserBilling {
  return { ...EMPTY_BILLING, ...user.billing };
}

/**
 * The account a notification belongs to: the one the store names (our user id from web checkout, or the app
 * account token the app set at purchase), else the one the subscription was linked to before. One read.
 */
export async function findAccount(
  deps: Deps,
  n: Pick<StoreNotification, "account" | "store" | "subscriptionId">,
): Promise<BillingAccount | null> {
  const named: Filter[] = [];
  if (n.account.userId && isObjectIdHex(n.account.userId)) named.push({ _id: new ObjectId(n.account.userId) });
  if (n.account.accountToken) named.push({ billingAccountToken: n.account.accountToken });
  const linked: Filter[] = n.subscriptionId
    ? [{ "billing.entitlements": { $elemMatch: { store: n.store, subscriptionId: n.subscriptionId } } }]
    : [];
  if (named.length + linked.length === 0) return null;
  const found = await deps.db.users.find(
    { deletedAt: null, $or: [...named, ...linked] },
    { projection: { ...ACCOUNT_FIELDS, billingAccountToken: 1 }, limit: 3 },
  );
  const isNamed = (u: UserDoc) =>
    u._id.toHexString() === n.account.userId?.toLowerCase() ||
    (n.account.accountToken !== null && u.billingAccountToken === n.account.accountToken);
  return found.find(isNamed) ?? found[0] ?? null;
}

/** Records and applies one verified notification (see the module comment). */
export async function recordStoreNotification(deps: Deps, n: StoreNotification): Promise<RecordResult> {
  const now = deps.clock.now();
  const doc: SubscriptionEventDoc = {
    _id: newObjectId(),
    store: n.store,
    notificationId: n.notificationId,
    type: n.type.slice(0, 100),
    subscriptionId: n.subscriptionId,
    account: n.account,
    userId: null,
    eventAt: n.eventAt,
    receivedAt: now,
    environment: n.environment,
    change: n.change,
    stripeCustomerId: n.stripeCustomerId,
    outcome: n.change ? "pending" : "ignored",
    before: null,
    after: null,
    settledAt: n.change ? null : now,
  };
  const [inserted, account] = await Promise.all([
    deps.db.subscriptions.insertUnique(doc),
    n.change ? findAccount(deps, n) : Promise.resolve(null),
  ]);
  if (!inserted) return repeated(deps, doc);
  if (!n.change) return { outcome: "ignored", linked: false };
  return settle(deps, doc, account);
}

/** A notification already recorded: nothing changes, unless it was left unsettled long enough to finish it. */
async function repeated(deps: Deps, doc: SubscriptionEventDoc): Promise<RecordResult> {
  const first = await deps.db.subscriptions.findOne({ store: doc.store, notificationId: doc.notificationId });
  if (!first) return { outcome: "duplicate", linked: false };
  if (first.outcome === "pending" && isOverdue(deps, first)) {
    const finished = await settle(deps, first, await findAccount(deps, first));
    return { outcome: "duplicate", linked: finished.linked };
  }
  return { outcome: "duplicate", linked: first.outcome === "applied" || first.outcome === "stale" };
}

function isOverdue(deps: Deps, doc: SubscriptionEventDoc): boolean {
  const graceMs = deps.config.billing.pendingGraceSeconds * 1000;
  return doc.receivedAt.getTime() <= deps.clock.now().getTime() - graceMs;
}

/**
 * Applies a pending history entry to its account (compare-and-set, retried on a concurrent change) and
 * settles it. Also finishes an entry an interrupted run left pending: if the account already applied it,
 * only the settle and its side effects remain.
 */
export async function settle(
  deps: Deps,
  doc: SubscriptionEventDoc,
  found: BillingAccount | null,
): Promise<RecordResult> {
  const change = doc.change;
  if (!change) return { outcome: "ignored", linked: false };
  let account = found;
  for (let attempt = 1; attempt <= WRITE_ATTEMPTS; attempt++) {
    const now = deps.clock.now();
    if (!account) {
      await mark(deps, doc, { outcome: "unlinked", userId: null, before: null, after: null });
      return { outcome: "unlinked", linked: false };
    }
    const billing = billingOf(account);
    const current = snapshotOf(accessOf(billing.entitlements, now));
    if (billing.applied.some((id) => id.equals(doc._id))) {
      // An interrupted run applied it; whoever settles the entry first owes the audit entry and the notice.
      const settled = await deps.db.subscriptions.findOneAndUpdate(
        { _id: doc._id, outcome: "pending" },
        { $set: { outcome: "applied", userId: account._id, after: current, settledAt: now } },
        { projection: { _id: 1 } },
      );
      if (settled) await sideEffects(deps, doc, account, null, current, { settle: false });
      return { outcome: "applied", linked: true };
    }
    const decision = applyChange(billing.entitlements, change, now);
    if (decision.outcome === "stale") {
      await mark(deps, doc, { outcome: "stale", userId: account._id, before: current, after: current });
      return { outcome: "stale", linked: true };
    }
    const access = accessOf(decision.entitlements, now);
    const next: UserBilling = {
      revision: billing.revision + 1,
      entitlements: decision.entitlements,
      applied: [...billing.applied, doc._id].slice(-APPLIED_KEPT),
      nextChangeAt: access.nextChangeAt,
      stripeCustomerId: doc.stripeCustomerId ?? billing.stripeCustomerId,
    };
    const written = await deps.db.users.updateOne(
      { _id: account._id, deletedAt: null, "billing.revision": account.billing ? billing.revision : null },
      {
        $set: {
          billing: next,
          tier: access.tier,
          tierExpiresAt: access.tier === "free" ? null : access.expiresAt,
          updatedAt: now,
        },
      },
    );
    if (written.matchedCount === 1) {
      await sideEffects(deps, doc, account, current, snapshotOf(access), { settle: true });
      return { outcome: "applied", linked: true };
    }
    // Another notification (or a deletion) changed the account since it was read: read it again.
    account = await findAccount(deps, doc);
  }
  throw unavailable(deps, "The account is changing too fast; please deliver this again later.");
}

async function mark(
  deps: Deps,
  doc: SubscriptionEventDoc,
  result: Pick<SubscriptionEventDoc, "outcome" | "userId" | "before" | "after">,
): Promise<void> {
  await deps.db.subscriptions.updateOne(
    { _id: doc._id, outcome: "pending" },
    { $set: { ...result, settledAt: deps.clock.now() } },
  );
}

/**
 * What a change owes once the account is written: the settled history entry, the audit entry (keyed by the
 * history entry, so a repeat cannot add a second), the user's notice, and the standing and cached profile
 * dropped so the tier applies to existing tokens at once. None of them turns the committed change into an
 * error: a failure is logged and the entry stays pending for the sweep to finish.
 */
async function sideEffects(
  deps: Deps,
  doc: SubscriptionEventDoc,
  account: BillingAccount,
  before: AccessSnapshot | null,
  after: AccessSnapshot,
  options: { settle: boolean },
): Promise<void> {
  const now = deps.clock.now();
  const userId = account._id.toHexString();
  const entry = await auditEntry(deps, null, {
    action: "subscription_changed",
    userId: account._id,
    actorId: null,
    metadata: {
      store: doc.store,
      notificationId: doc.notificationId,
      type: doc.type,
      subscriptionId: doc.subscriptionId,
      productId: doc.change?.productId ?? null,
      from: before && { tier: before.tier, state: before.state, expiresAt: before.expiresAt?.toISOString() ?? null },
      to: { tier: after.tier, state: after.state, expiresAt: after.expiresAt?.toISOString() ?? null },
    },
  });
  const results = await Promise.allSettled([
    options.settle
      ? deps.db.subscriptions.updateOne(
          { _id: doc._id, outcome: "pending" },
          { $set: { outcome: "applied", userId: account._id, before, after, settledAt: now } },
        )
      : Promise.resolve(),
    deps.db.auditLogs.insertUnique({ ...entry, _id: doc._id }),
    notify(deps, noticeFor(doc, userId, before, after)),
    forgetStanding(deps, userId),
    runOp(deps.redis, deleteKeys([deps.keys.userProfile(account.usernameLower)])),
  ]);
  for (const result of results) {
    if (result.status === "rejected") {
      deps.log.warn("subscription change recorded; a follow-up failed (the sweep finishes it)", {
        notificationId: doc.notificationId,
        error: String(result.reason),
      });
    }
  }
}

export const TIER_NAMES = { free: "Free", pro: "Pro", premium: "Premium" } as const;
const STORE_NAMES: Record<BillingStore, string> = {
  app_store: "the App Store",
  google_play: "Google Play",
  stripe: "your web billing details",
};

/** The system notice for a change, in plain words (the app shows details from GET /v1/me/subscription). */
function noticeFor(doc: SubscriptionEventDoc, userId: string, before: AccessSnapshot | null, after: AccessSnapshot) {
  const until = (at: Date | null) => (at ? ` until ${utcDay(at)}` : "");
  const previous = before?.tier ?? "free";
  let title: string;
  let body: string;
  if (after.tier === "free") {
    const ended = previous !== "free" ? previous : (doc.change?.tier ?? "pro");
    title = `Your ${TIER_NAMES[ended]} subscription has ended`;
    body = "You're on the free plan now. You can subscribe again any time.";
  } else if (after.state === "grace") {
    title = `We couldn't renew ${TIER_NAMES[after.tier]}`;
    body = `Please check your payment method in ${STORE_NAMES[doc.store]}. ${TIER_NAMES[after.tier]} stays on${until(after.expiresAt)} while the store retries.`;
  } else if (previous !== after.tier) {
    title = `You're on ${TIER_NAMES[after.tier]} now`;
    body = `Thanks for subscribing! ${TIER_NAMES[after.tier]} is yours${until(after.expiresAt)}.`;
  } else {
    title = `Your ${TIER_NAMES[after.tier]} subscription is active`;
    body = `${TIER_NAMES[after.tier]} continues${until(after.expiresAt)}.`;
  }
  return {
    type: "system" as const,
    recipientId: userId,
    title,
    body,
    // One item per history entry, so a finishing run joins it instead of adding another.
    aggregationKey: `billing:${doc._id.toHexString()}`,
    once: true,
    actionType: "open_screen" as const,
    actionPayload: { screen: "subscription" },
  };
}

/**
 * The caller's app account token: a UUID issued once per account, which the apps pass to the stores with
 * every purchase so that notifications find the account. One read once issued.
 */
export async function appAccountToken(deps: Deps, viewer: Viewer): Promise<AppAccountToken> {
  const _id = new ObjectId(viewer.id);
  const user = await deps.db.users.findOne({ _id, deletedAt: null }, { projection: { billingAccountToken: 1 } });
  if (!user) throw ApiError.notFound("Account not found.");
  if (user.billingAccountToken) return { token: user.billingAccountToken };
  // Issued only where none is set, so two first requests at once still agree on one token.
  const issued = await deps.db.users.findOneAndUpdate(
    { _id, deletedAt: null, billingAccountToken: null },
    { $set: { billingAccountToken: newUuid() } },
    { returnDocument: "after", projection: { billingAccountToken: 1 } },
  );
  const token =
    issued?.billingAccountToken ??
    (await deps.db.users.findOne({ _id, deletedAt: null }, { projection: { billingAccountToken: 1 } }))
      ?.billingAccountToken;
  if (!token) throw ApiError.notFound("Account not found.");
  return { token };
}

/** GET /v1/me/subscription: the tier that applies now and where it comes from. One read. */
export async function subscriptionOf(deps: Deps, viewer: Viewer): Promise<SubscriptionView> {
  const user = await deps.db.users.findOne(
    { _id: new ObjectId(viewer.id), deletedAt: null },
    { projection: { tier: 1, tierExpiresAt: 1, billing: 1 } },
  );
  if (!user) throw ApiError.notFound("Account not found.");
  return subscriptionView(user, deps.clock.now());
}

export function subscriptionView(
  user: Pick<UserDoc, "tier" | "tierExpiresAt" | "billing">,
  now: Date,
): SubscriptionView {
  const tier = effectiveTier({ tier: user.tier, tierExpiresAt: user.tierExpiresAt?.getTime() ?? null }, now);
  const access = accessOf(billingOf(user).entitlements, now);
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  if (tier !== "free") {
    if (access.tier === tier)
      return { tier, state: access.state, expiresAt: iso(access.expiresAt), store: access.store };
    // Granted by Circle (an admin), not bought in a store.
    return { tier, state: "active", expiresAt: iso(user.tierExpiresAt), store: null };
  }
  if (access.state === "expired")
    return { tier, state: "expired", expiresAt: iso(access.expiresAt), store: access.store };
  if (user.tier !== "free" && user.tierExpiresAt) {
    return { tier, state: "expired", expiresAt: iso(user.tierExpiresAt), store: null };
  }
  return { tier, state: "none", expiresAt: null, store: null };
}
