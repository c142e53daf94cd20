import type { Deps } from "../../deps";
import type { Viewer } from "../../http/context";
import { decodeCursor, encodeCursor } from "../../http/pagination";
import { utcDay } from "../../platform/clock";
import { ObjectId } from "../../platform/ids";
import { notify } from "../notifications/service";
import { activeReferralBonus } from "../users/schema";
import { loadSelf } from "../users/service";
import { moveGems } from "./ledger";
import { type GemTransaction, type TransactionType, toGemTransaction } from "./schema";

export async function gemBalance(deps: Deps, viewer: Viewer) {
  const user = await loadSelf(deps, viewer);
  const bonusUntil = activeReferralBonus(user, deps.clock.now());
  return {
    balance: user.gemBalance ?? 0,
    totalEarned: user.totalGemsEarned ?? 0,
    totalSpent: user.totalGemsSpent ?? 0,
    multiplier: bonusUntil ? deps.config.gems.referralMultiplier : 1,
    multiplierExpiresAt: bonusUntil?.toISOString() ?? null,
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
  const milestone = results.find((r) => r.entry.source === "streak_bonus" && !r.replayed);
  if (milestone) {
    await notify(deps, {
      type: "system",
      kind: "streak",
      recipientId: userId,
      title: `${streak}-day streak! You earned ${milestone.entry.amount} gems`,
      actionType: "open_screen",
      actionPayload: { screen: "gems" },
    });
  }
  return results.reduce((sum, r) => sum + (r.replayed ? 0 : r.entry.amount), 0);
}

/**
 * The trending bonus: the authors of the top posts of a trending run earn a bonus, once per post per UTC day
 * (the idempotency key), so runs every few minutes pay each post at most once a day. Returns gems paid now.
 */
export async function payTrendingBonuses(
  deps: Deps,
  posts: { _id: ObjectId; userId: ObjectId; imageUrl?: string | null }[],
): Promise<number> {
  const amount = deps.config.gems.trendingBonus;
  if (amount <= 0 || posts.length === 0) return 0;
  const day = utcDay(deps.clock.now());
  const paid = await Promise.all(
    posts.map(async (post) => {
      const postId = post._id.toHexString();
      const { replayed } = await moveGems(deps, {
        userId: post.userId,
        type: "earn",
        source: "trending_bonus",
        amount,
        referenceType: "post",
        referenceId: postId,
        description: "Your post is trending",
        idempotencyKey: `trending:${postId}:${day}`,
      });
      if (replayed) return 0;
      await notify(deps, {
        type: "system",
        kind: "trending",
        recipientId: post.userId,
        title: `Your post is trending! +${amount} gems`,
        actionType: "open_post",
        actionPayload: { postId },
      });
      return amount;
    }),
  );
  return paid.reduce((a, b) => a + b, 0);
}
