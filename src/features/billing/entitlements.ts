import type {
  AccessSnapshot,
  BillingStore,
  Entitlement,
  EntitlementChange,
  EntitlementState,
  PaidTier,
  Tier,
} from "../../db";

/**
 * The pure rules of paid access: which product grants which tier, how a store notification changes one
 * subscription (never backwards in the provider's time), and what an account's subscriptions add up to.
 */

/** Store subscriptions kept per account (the newest; running ones are never dropped before ended ones). */
export const ENTITLEMENTS_KEPT = 10;
/** Applied history entries remembered per account (for finishing interrupted notifications once). */
export const APPLIED_KEPT = 50;

const TIER_RANK: Record<Tier, number> = { free: 0, pro: 1, premium: 2 };
/** At the very same provider time, the more final state wins, so a same-second pair never revives an ended one. */
const STATE_RANK: Record<EntitlementState, number> = { active: 0, grace: 1, expired: 2 };

/** The tier a store product (or Stripe price id / lookup key) grants, or null for one we do not sell. */
export function tierOfProduct(
  products: { pro: string[]; premium: string[] },
  ...ids: (string | null | undefined)[]
): PaidTier | null {
  for (const id of ids) {
    if (!id) continue;
    if (products.premium.includes(id)) return "premium";
    if (products.pro.includes(id)) return "pro";
  }
  return null;
}

export type ChangeDecision =
  | { outcome: "applied"; entitlements: Entitlement[]; previous: Entitlement | null }
  | { outcome: "stale"; current: Entitlement };

/**
 * Applies one notification's change to an account's subscriptions. An older notification than the one that
 * last set this subscription (by the provider's own date) changes nothing: `stale`. A purchase that replaces
 * another (Play upgrades) retires the replaced one.
 */
export function applyChange(current: Entitlement[], change: EntitlementChange, now: Date): ChangeDecision {
  const same = (e: Entitlement) => e.store === change.store && e.subscriptionId === change.subscriptionId;
  const existing = current.find(same) ?? null;
  if (existing) {
    const older = change.eventAt.getTime() < existing.eventAt.getTime();
    const tieLoses =
      change.eventAt.getTime() === existing.eventAt.getTime() && STATE_RANK[change.state] < STATE_RANK[existing.state];
    if (older || tieLoses) return { outcome: "stale", current: existing };
  }
  const next: Entitlement = {
    store: change.store,
    subscriptionId: change.subscriptionId,
    productId: change.productId,
    tier: change.tier,
    state: change.state,
    expiresAt: change.expiresAt,
    eventAt: change.eventAt,
    notificationId: change.notificationId,
    autoRenew: change.autoRenew,
    renewsAs: change.renewsAs,
    environment: change.environment,
    updatedAt: now,
  };
  const replaced = (e: Entitlement) =>
    change.replaces !== null && e.store === change.store && e.subscriptionId === change.replaces;
  const others = current.filter((e) => !same(e) && !replaced(e));
  return { outcome: "applied", entitlements: keepNewest([next, ...others], now), previous: existing };
}

function isLive(e: Entitlement, now: Date): boolean {
  return e.state !== "expired" && (e.expiresAt === null || e.expiresAt.getTime() > now.getTime());
}

/** Caps the list: running subscriptions first, then by the provider's time, newest first. */
function keepNewest(entitlements: Entitlement[], now: Date): Entitlement[] {
  return [...entitlements]
    .sort((a, b) => Number(isLive(b, now)) - Number(isLive(a, now)) || b.eventAt.getTime() - a.eventAt.getTime())
    .slice(0, ENTITLEMENTS_KEPT);
}

export interface Access extends AccessSnapshot {
  store: BillingStore | null;
  /** When the tier steps down to another subscription still running (needs a recompute then), else null. */
  nextChangeAt: Date | null;
}

/**
 * What an account's store subscriptions add up to now: the highest tier among running ones (the later end
 * among equals). A paid tier past its end acts as free without any job (core/standing.ts), so `tier` and
 * `expiresAt` go to `users.tier`/`tierExpiresAt` as they are; only a step down to a *second* running
 * subscription needs a recompute at `nextChangeAt`.
 */
export function accessOf(entitlements: Entitlement[], now: Date): Access {
  const live = entitlements.filter((e) => isLive(e, now));
  const endOf = (e: Entitlement) => e.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
  if (live.length > 0) {
    const best = [...live].sort(
      (a, b) => TIER_RANK[b.tier] - TIER_RANK[a.tier] || endOf(b) - endOf(a),
    )[0] as Entitlement;
    const outlasting = live.some((e) => e !== best && endOf(e) > endOf(best));
    return {
      tier: best.tier,
      expiresAt: best.expiresAt,
      state: best.state === "grace" ? "grace" : "active",
      store: best.store,
      nextChangeAt: outlasting ? best.expiresAt : null,
    };
  }
  // Access ended when the last subscription to end did.
  const endedAt = (e: Entitlement) => (e.expiresAt ?? e.eventAt).getTime();
  const latest = [...entitlements].sort((a, b) => endedAt(b) - endedAt(a))[0];
  if (!latest) return { tier: "free", expiresAt: null, state: "none", store: null, nextChangeAt: null };
  return { tier: "free", expiresAt: latest.expiresAt, state: "expired", store: latest.store, nextChangeAt: null };
}

/** The snapshot kept in history and audit entries. */
export function snapshotOf(access: Access): AccessSnapshot {
  return { tier: access.tier, expiresAt: access.expiresAt, state: access.state };
}
