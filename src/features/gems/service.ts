import type { Deps } from "../../deps";
import type { Viewer } from "../../http/context";
import { decodeCursor, encodeCursor } from "../../http/pagination";
import { ObjectId } from "../../platform/ids";
import { loadSelf } from "../users/service";
import { moveGems } from "./ledger";
import { type GemTransaction, type TransactionType, toGemTransaction } from "./schema";

export async function gemBalance(deps: Deps, viewer: Viewer) {
  const user = await loadSelf(deps, viewer);
  const expires = user.referralBonusExpiresAt;
  const active = expires !== null && expires !== undefined && expires > deps.clock.now();
  return {
    balance: user.gemBalance ?? 0,
    totalEarned: user.totalGemsEarned ?? 0,
    totalSpent: user.totalGemsSpent ?? 0,
    multiplier: active ? deps.config.gems.referralMultiplier : 1,
    multiplierExpiresAt: active ? expires.toISOString() : null,
  };
}

/** The caller's applied ledger entries, newest first, optionally of one type. */
export async function gemTransactions(
  deps: Deps,
  viewer: Viewer,
  query: { limit: number; cursor?: string; type?: TransactionType },
): Promise<{ items: GemTransaction[]; nextCursor: string | null }> {
  const filter: Record<string, unknown> = { userId: new ObjectId(viewer.id), status: "applied" };
  if (query.type) filter.type = query.type;
  if (query.cursor) filter._id = { $lt: new ObjectId(decodeCursor(query.cursor).id) };
  const docs = await deps.db.gemTransactions.find(filter, { sort: { _id: -1 }, limit: query.limit + 1 });
  const page = docs.slice(0, query.limit);
  const last = page[page.length - 1];
  return {
    items: page.map(toGemTransaction),
    nextCursor: docs.length > query.limit && last ? encodeCursor({ id: last._id.toHexString() }) : null,
  };
}

/**
 * Rewards for a check-in that counted: the daily reward, plus a bonus when the streak reaches a milestone.
 * Keyed by user and day, so a retried check-in can never pay twice. Returns what this call paid.
 */
export async function payCheckinRewards(deps: Deps, userId: ObjectId, day: string, streak: number): Promise<number> {
  const { checkinReward, streakMilestones } = deps.config.gems;
  const id = userId.toHexString();
  const payouts = [];
  if (checkinReward > 0) {
    payouts.push(
      moveGems(deps, {
        userId,
        type: "earn",
        source: "daily_login",
        amount: checkinReward,
        referenceType: "streak",
        referenceId: day,
        description: "Daily check-in",
        idempotencyKey: `checkin:${id}:${day}`,
      }),
    );
  }
  const bonus = streakMilestones.get(streak);
  if (bonus) {
    payouts.push(
      moveGems(deps, {
        userId,
        type: "earn",
        source: "streak_bonus",
        amount: bonus,
        referenceType: "streak",
        referenceId: `${streak}`,
        description: `${streak}-day streak bonus`,
        metadata: { streak },
        idempotencyKey: `streak:${id}:${streak}:${day}`,
      }),
    );
  }
  const results = await Promise.all(payouts);
  return results.reduce((sum, r) => sum + (r.replayed ? 0 : r.entry.amount), 0);
}
