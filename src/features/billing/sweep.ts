import type { Job, JobContext, JobReport } from "../../core/jobs";
import { forgetStanding } from "../../core/standing";
import type { Deps } from "../../deps";
import { deleteKeys, runOp } from "../../platform/redis-ops";
import { audit } from "../audit/service";
import { notify } from "../notifications/service";
import { accessOf, snapshotOf } from "./entitlements";
import { billingOf, findAccount, settle, TIER_NAMES } from "./service";

/**
 * Finishes what a crash left: store notifications still `pending` after BILLING_PENDING_GRACE_SECONDS (their
 * change applied once, their audit entry and notice written once; see `settle`), and accounts whose tier steps
 * down to a second running subscription at `billing.nextChangeAt` (recomputed with the same compare-and-set).
 * Bounded by batch and time budget; re-running it changes nothing a run already did.
 */
export async function sweepBilling(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const batch = deps.config.billing.sweepBatch;
  const margin = Math.min(2_000, deps.config.jobs.timeBudgetMs / 4);
  while (ctx.timeLeft() > margin) {
    const cutoff = new Date(deps.clock.now().getTime() - deps.config.billing.pendingGraceSeconds * 1000);
    const pending = await deps.db.subscriptions.find(
      { outcome: "pending", receivedAt: { $lte: cutoff } },
      { sort: { receivedAt: 1 }, limit: batch },
    );
    for (const doc of pending) {
      const result = await settle(deps, doc, await findAccount(deps, doc));
      ctx.count(`finished_${result.outcome}`);
    }
    await ctx.checkpoint("pending");
    if (pending.length < batch) break;
  }
  while (ctx.timeLeft() > margin) {
    const due = await deps.db.users.find(
      { "billing.nextChangeAt": { $lte: deps.clock.now() }, deletedAt: null },
      { projection: { tier: 1, tierExpiresAt: 1, billing: 1, usernameLower: 1 }, limit: batch },
    );
    for (const account of due) {
      if (await recompute(deps, account)) ctx.count("tier_stepped_down");
    }
    if (due.length < batch) return { more: false };
  }
  return { more: true };
}

type Account = Awaited<ReturnType<typeof findAccount>> & object;

/** Re-derives an account's tier from its subscriptions now (compare-and-set; a lost race is the next run's). */
async function recompute(deps: Deps, account: Account): Promise<boolean> {
  const now = deps.clock.now();
  const billing = billingOf(account);
  const access = accessOf(billing.entitlements, now);
  const written = await deps.db.users.updateOne(
    { _id: account._id, deletedAt: null, "billing.revision": billing.revision },
    {
      $set: {
        "billing.revision": billing.revision + 1,
        "billing.nextChangeAt": access.nextChangeAt,
        tier: access.tier,
        tierExpiresAt: access.tier === "free" ? null : access.expiresAt,
        updatedAt: now,
      },
    },
  );
  if (written.matchedCount !== 1) return false;
  const userId = account._id.toHexString();
  await Promise.all([
    forgetStanding(deps, userId),
    runOp(deps.redis, deleteKeys([deps.keys.userProfile(account.usernameLower)])).catch(() => 0),
    notify(deps, {
      type: "system",
      recipientId: userId,
      title: `Your ${TIER_NAMES[account.tier]} subscription has ended`,
      body:
        access.tier === "free"
          ? "You're on the free plan now."
          : `Your ${TIER_NAMES[access.tier]} subscription continues.`,
      aggregationKey: `billing:step:${userId}:${billing.nextChangeAt?.getTime() ?? 0}`,
      actionType: "open_screen",
      actionPayload: { screen: "subscription" },
    }),
    audit(deps, null, {
      action: "subscription_changed",
      userId: account._id,
      actorId: null,
      metadata: {
        reason: "subscription_ended",
        from: { tier: account.tier, expiresAt: account.tierExpiresAt?.toISOString() ?? null },
        to: { ...snapshotOf(access), expiresAt: access.expiresAt?.toISOString() ?? null },
      },
    }),
  ]);
  return true;
}

export const billingSweepJob: Job = {
  name: "billing-sweep",
  description:
    "Finishes store notifications left pending by a crash, and steps tiers down when one of two running subscriptions ends.",
  run: sweepBilling,
};
