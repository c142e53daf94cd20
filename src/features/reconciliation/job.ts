import { ApiError } from "../../core/errors";
import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { ObjectId } from "../../platform/ids";
import { addHours } from "../../platform/time";
import { completeInterruptedTransfers } from "../gems/gifts";
import { applyEntry } from "../gems/ledger";
import { restoreRecentEarnings } from "../leaderboards/service";
import { payUnpaidReferrals } from "../referrals/service";

/**
 * Keeps the caches honest against the ledger, for every user whose ledger moved within the lookback window:
 *
 * 1. completes movements a crash interrupted (entries still `pending` after a grace period) exactly as the
 *    original request would have: applied once, or rejected if a debit can no longer be covered;
 * 2. writes the receiver's side of gifts whose sender was debited but the credit never written, pays
 *    validated referrals whose bonus was never paid, and puts on today's leaderboards recent earnings a
 *    crash kept off them;
 * 3. checks `gemBalance`, `totalGemsEarned` and `totalGemsSpent` against the sums of applied entries, and
 *    that no balance is negative. It does not "fix" a mismatch: one means a bug or a hand edit, so every
 *    discrepancy is reported in the run's `job_runs.findings` for a person to look at.
 */
export async function reconcileGems(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const now = deps.clock.now();
  const { lookbackHours, pendingGraceSeconds, usersPerCheck } = deps.config.gems.reconcile;
  const since = addHours(now, -lookbackHours);
  const settled = new Date(now.getTime() - pendingGraceSeconds * 1000);

  await completePending(ctx, since, settled);
  await ctx.checkpoint("pending-completed");
  // After pending entries, so a gift debit completed just now gets its credit in this same run.
  const transfers = await completeInterruptedTransfers(deps, since);
  ctx.count("giftCreditsCompleted", transfers.completed);
  if (transfers.failed > 0) ctx.report({ kind: "gift_credit_failed", count: transfers.failed });
  ctx.count("referralsPaid", await payUnpaidReferrals(deps, since, settled));
  ctx.count("leaderboardEntriesRestored", await restoreRecentEarnings(deps));

  const touched = await deps.db.gemTransactions.aggregate<{ _id: ObjectId }>([
    { $match: { createdAt: { $gte: since } } },
    { $group: { _id: "$userId" } },
  ]);
  for (let i = 0; i < touched.length; i += usersPerCheck) {
    if (ctx.timeLeft() < 2_000) return { more: true };
    await checkBalances(
      ctx,
      touched.slice(i, i + usersPerCheck).map((t) => t._id),
    );
  }
  return { more: false };
}

async function completePending(ctx: JobContext, since: Date, settled: Date): Promise<void> {
  const { deps } = ctx;
  const stuck = await deps.db.gemTransactions.find(
    { status: "pending", createdAt: { $gte: since, $lt: settled } },
    { sort: { _id: 1 }, limit: deps.config.gems.reconcile.pendingPerRun },
  );
  for (const entry of stuck) {
    let outcome: "applied" | "rejected" | "finished";
    try {
      const { movedNow } = await applyEntry(deps, entry);
      outcome = movedNow ? "applied" : "finished";
    } catch (error) {
      if (!(error instanceof ApiError && error.code === "insufficient_gems")) throw error;
      outcome = "rejected";
    }
    ctx.count(`pending_${outcome}`);
    ctx.report({
      kind: "interrupted_entry",
      entryId: entry._id.toHexString(),
      userId: entry.userId.toHexString(),
      source: entry.source,
      amount: entry.amount,
      outcome,
    });
  }
}

async function checkBalances(ctx: JobContext, userIds: ObjectId[]): Promise<void> {
  const { deps } = ctx;
  const [sums, users] = await Promise.all([
    deps.db.gemTransactions.aggregate<{ _id: ObjectId; balance: number; earned: number; spent: number }>([
      { $match: { userId: { $in: userIds }, status: "applied" } },
      {
        $group: {
          _id: "$userId",
          balance: { $sum: "$amount" },
          earned: { $sum: { $cond: [{ $gt: ["$amount", 0] }, "$amount", 0] } },
          spent: { $sum: { $cond: [{ $lt: ["$amount", 0] }, { $subtract: [0, "$amount"] }, 0] } },
        },
      },
    ]),
    deps.db.users.find(
      { _id: { $in: userIds } },
      { projection: { gemBalance: 1, totalGemsEarned: 1, totalGemsSpent: 1 }, limit: userIds.length },
    ),
  ]);
  const ledger = new Map(sums.map((s) => [s._id.toHexString(), s]));
  for (const user of users) {
    const id = user._id.toHexString();
    const expected = ledger.get(id) ?? { balance: 0, earned: 0, spent: 0 };
    const actual = {
      balance: user.gemBalance ?? 0,
      earned: user.totalGemsEarned ?? 0,
      spent: user.totalGemsSpent ?? 0,
    };
    ctx.count("usersChecked");
    if (actual.balance < 0) ctx.report({ kind: "negative_balance", userId: id, balance: actual.balance });
    if (actual.balance !== expected.balance || actual.earned !== expected.earned || actual.spent !== expected.spent) {
      ctx.report({
        kind: "balance_mismatch",
        userId: id,
        cached: actual,
        ledger: { balance: expected.balance, earned: expected.earned, spent: expected.spent },
      });
    }
  }
}

export const reconciliationJob: Job = {
  name: "gem-reconciliation",
  description:
    "Completes interrupted gem movements and unpaid referral bonuses, and reports every user whose balance differs from their ledger.",
  run: reconcileGems,
};
