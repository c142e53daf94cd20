import type { Job, JobContext, JobReport } from "../../core/jobs";
import { forgetSelfView } from "../../core/standing";
import type { GemTransactionDoc } from "../../db";
import type { Deps } from "../../deps";
import { newUuid, type ObjectId } from "../../platform/ids";
import { HOUR_MS, utcDay } from "../../platform/time";
import { gemsEarned, recordActivity } from "../analytics/activity";
import { withholdSuspiciousVotes } from "../fraud/review";
import { recordEarnings } from "../leaderboards/service";
import { notifyEach } from "../notifications/service";
import { APPLIED_MEMORY, pendingEntry } from "./ledger";
import { ledgerKeys } from "./ledger-keys";

/** Which votes pay: unsettled, not flagged, not from a shadow-banned voter, older than the settlement delay. */
function payableVotes(cutoff: Date): Record<string, unknown> {
  return { gemBatchId: null, flagged: false, shadow: { $ne: true }, createdAt: { $lte: cutoff } };
}

/**
 * Gems an author earns for a batch: the rate per vote, times the referral multiplier for votes cast while
 * their bonus window ran (`[until − window, until)`).
 */
export function authorCredit(
  votes: { createdAt: Date }[],
  bonus: { from: Date; until: Date } | null,
  rate: number,
  multiplier: number,
): { amount: number; baseAmount: number; boosted: number } {
  const boosted = bonus ? votes.filter((v) => v.createdAt >= bonus.from && v.createdAt < bonus.until).length : 0;
  const baseAmount = votes.length * rate;
  return { amount: baseAmount + boosted * rate * (multiplier - 1), baseAmount, boosted };
}

/**
 * Settles votes into gems, one ledger entry per author per batch, in a constant number of round trips per
 * batch (so cost grows with batches of authors, not with votes):
 *
 * 1. claim: tag the `_id` range of the oldest payable votes with a batch id (`gemBatchId`);
 * 2. write one pending ledger entry per author (idempotency key `settle:{batch}:{author}`);
 * 3. move every author's balance in one bulk write, each update guarded by the entry id (never twice);
 * 4. mark the entries applied with the balances they produced (recorded by step 3's update itself), then
 *    mark the votes `gemAwarded`.
 *
 * A crash anywhere leaves a tagged batch with unawarded votes; every run finishes such batches first, from
 * the votes themselves, so each vote is credited exactly once. Two runs at once are kept apart by the job
 * lease, and even without it the idempotency keys and the guarded balance updates keep credits exact.
 */
export async function settleVotes(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const cutoff = new Date(deps.clock.now().getTime() - deps.config.gems.settlementDelaySeconds * 1000);
  while (ctx.timeLeft() > 2_000) {
    const batchId = (await unfinishedBatch(deps)) ?? (await claimBatch(deps, cutoff));
    if (!batchId) return { more: false };
    await ctx.checkpoint("claimed");
    const votes = await settleBatch(deps, ctx, batchId);
    ctx.count("batches");
    ctx.count("votes", votes);
  }
  return { more: true };
}

async function unfinishedBatch(deps: Deps): Promise<string | null> {
  const vote = await deps.db.votes.findOne(
    { gemBatchId: { $type: "string" }, gemAwarded: false },
    { projection: { gemBatchId: 1 } },
  );
  return vote?.gemBatchId ?? null;
}

async function claimBatch(deps: Deps, cutoff: Date): Promise<string | null> {
  const filter = payableVotes(cutoff);
  const candidates = await deps.db.votes.find(filter, {
    sort: { _id: 1 },
    limit: deps.config.gems.settlementBatchVotes,
    projection: { _id: 1, userId: 1, postAuthorId: 1, postId: 1, ipHash: 1 },
  });
  const first = candidates[0];
  const last = candidates[candidates.length - 1];
  if (!first || !last) return null;
  // Suspicious votes are flagged before the claim, which then leaves them out (flagged votes never pay).
  await withholdSuspiciousVotes(
    deps,
    candidates.map((v) => ({
      id: v._id.toHexString(),
      voterId: v.userId.toHexString(),
      authorId: v.postAuthorId.toHexString(),
      postId: v.postId.toHexString(),
      ipHash: v.ipHash ?? null,
    })),
  );
  const batchId = newUuid();
  const claimed = await deps.db.votes.updateMany(
    { ...filter, _id: { $gte: first._id, $lte: last._id } },
    { $set: { gemBatchId: batchId } },
  );
  return claimed.modifiedCount > 0 ? batchId : claimBatch(deps, cutoff);
}

async function settleBatch(deps: Deps, ctx: JobContext, batchId: string): Promise<number> {
  const { perVote, referralMultiplier } = deps.config.gems;
  const bonusWindowMs = deps.config.gems.referral.windowHours * HOUR_MS;
  // A batch holds at most SETTLEMENT_BATCH_VOTES votes, so it has at most that many authors too.
  const batchLimit = deps.config.gems.settlementBatchVotes;
  const votes = await deps.db.votes.find(
    { gemBatchId: batchId },
    { projection: { postAuthorId: 1, createdAt: 1 }, limit: batchLimit },
  );
  const byAuthor = new Map<string, { id: ObjectId; votes: { createdAt: Date }[] }>();
  for (const v of votes) {
    const key = v.postAuthorId.toHexString();
    const group = byAuthor.get(key) ?? { id: v.postAuthorId, votes: [] };
    group.votes.push({ createdAt: v.createdAt });
    byAuthor.set(key, group);
  }
  const authorIds = [...byAuthor.values()].map((a) => a.id);
  const keyOf = (author: string) => ledgerKeys.settlement(batchId, author);
  const [authors, existing] = await Promise.all([
    deps.db.users.find({ _id: { $in: authorIds } }, { projection: { referralBonusExpiresAt: 1, deletedAt: 1 } }),
    deps.db.gemTransactions.find({ idempotencyKey: { $in: [...byAuthor.keys()].map(keyOf) } }, { limit: batchLimit }),
  ]);
  const bonusUntil = new Map(authors.map((a) => [a._id.toHexString(), a.referralBonusExpiresAt]));
  // Deleted accounts still get their ledger entries (the record), but never a place on a board again.
  const deleted = new Set(authors.filter((a) => a.deletedAt).map((a) => a._id.toHexString()));
  const entries = new Map(existing.map((e) => [e.idempotencyKey, e]));

  // 2. One pending entry per author (those a crashed attempt already wrote are reused).
  const now = deps.clock.now();
  const fresh: GemTransactionDoc[] = [];
  for (const [author, group] of byAuthor) {
    if (entries.has(keyOf(author))) continue;
    const until = bonusUntil.get(author);
    const bonus = until ? { from: new Date(until.getTime() - bonusWindowMs), until } : null;
    const credit = authorCredit(group.votes, bonus, perVote, referralMultiplier);
    const entry = pendingEntry(
      {
        userId: group.id,
        type: "earn",
        source: "votes",
        amount: credit.amount,
        referenceId: batchId,
        referenceType: "vote_batch",
        multiplier: credit.amount / credit.baseAmount,
        baseAmount: credit.baseAmount,
        description: `${group.votes.length} vote${group.votes.length === 1 ? "" : "s"} on your posts`,
        metadata: { votes: group.votes.length, boostedVotes: credit.boosted },
        idempotencyKey: keyOf(author),
      },
      now,
    );
    fresh.push(entry);
    entries.set(entry.idempotencyKey, entry);
  }
  let current = [...entries.values()];
  if (fresh.length && (await deps.db.gemTransactions.insertManyUnique(fresh)).duplicateCount > 0) {
    // Another run wrote some of these entries meanwhile: theirs stand, read them back.
    current = await deps.db.gemTransactions.find(
      { idempotencyKey: { $in: [...byAuthor.keys()].map(keyOf) } },
      { limit: batchLimit },
    );
  }
  await ctx.checkpoint("entries-written");

  // 3. Move balances; the guard makes a repeat of this step (after a crash) a no-op per author. A pipeline
  // update, so each user also records the balance this very entry produced (`settledEntry`): concurrent
  // movements of the same user can't leak into the entry's balanceAfter.
  const pending = current.filter((e) => e.status === "pending");
  if (pending.length) {
    await deps.db.users.bulkWrite(
      pending.map((e) => {
        const after = { $add: [{ $ifNull: ["$gemBalance", 0] }, e.amount] };
        return {
          updateOne: {
            filter: { _id: e.userId, ledgerApplied: { $ne: e._id } },
            update: [
              {
                $set: {
                  gemBalance: after,
                  totalGemsEarned: { $add: [{ $ifNull: ["$totalGemsEarned", 0] }, e.amount] },
                  ledgerApplied: {
                    $slice: [{ $concatArrays: [{ $ifNull: ["$ledgerApplied", []] }, [e._id]] }, -APPLIED_MEMORY],
                  },
                  settledEntry: { id: e._id, balanceAfter: after },
                },
              },
            ],
          },
        };
      }),
      { ordered: false },
    );
    await forgetSelfView(deps, ...pending.map((e) => e.userId.toHexString()));
    await ctx.checkpoint("balances-moved");

    // 4. Record the balance each entry produced (null if a crash lost it and a later entry overwrote it).
    const balances = await deps.db.users.find(
      { _id: { $in: pending.map((e) => e.userId) } },
      { projection: { settledEntry: 1 } },
    );
    const balanceOf = new Map(
      balances.flatMap((b) => (b.settledEntry ? [[b.settledEntry.id.toHexString(), b.settledEntry.balanceAfter]] : [])),
    );
    await deps.db.gemTransactions.bulkWrite(
      pending.map((e) => {
        const after = balanceOf.get(e._id.toHexString()) ?? null;
        return {
          updateOne: {
            filter: { _id: e._id, status: "pending" },
            update: {
              $set: {
                status: "applied",
                appliedAt: deps.clock.now(),
                balanceAfter: after,
                balanceBefore: after === null ? null : after - e.amount,
              },
            },
          },
        };
      }),
      { ordered: false },
    );
  }
  await ctx.checkpoint("entries-applied");
  // Leaderboards count each entry once however often this runs, so every entry of the batch goes (a crash
  // after this point is repaired by the next run, which finds the batch unfinished). Notices go to the
  // authors this run credited.
  const ranked = current.filter((e) => !deleted.has(e.userId.toHexString()));
  // Analytics too (deleted accounts left out, as on the boards): every credit of the batch, keyed by its entry,
  // so one a crashed run recorded counts once.
  await Promise.all([
    recordEarnings(deps, ranked),
    announceEarnings(deps, pending),
    recordActivity(deps, ...gemsEarned(ranked)),
  ]);
  await deps.db.votes.updateMany({ gemBatchId: batchId }, { $set: { gemAwarded: true } });
  return votes.length;
}

/** One grouped "gems from votes" notice per author per day (one read and one bulk write for the batch). */
async function announceEarnings(deps: Deps, entries: GemTransactionDoc[]): Promise<void> {
  const day = utcDay(deps.clock.now());
  await notifyEach(
    deps,
    entries.map((e) => ({
      type: "system",
      kind: "gem_earned",
      recipientId: e.userId,
      title: "You earned gems from votes on your posts",
      aggregationKey: `gem_earned:votes:${day}`,
      actionType: "open_screen",
      actionPayload: { screen: "gems" },
    })),
  );
}

export const settlementJob: Job = {
  name: "settlement",
  description: "Turns settled-delay votes into gems for post authors, one ledger entry per author per batch.",
  run: settleVotes,
};
