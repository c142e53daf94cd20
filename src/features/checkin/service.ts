import { bestEffort } from "../../core/best-effort";
import { forgetSelfView } from "../../core/standing";
import type { Viewer } from "../../core/viewer";
import type { UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { DuplicateKeyError, expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import { deleteKeys, runOps, setValue } from "../../platform/redis-ops";
import { addCalendarDays, localDay } from "../../platform/time";
import { batchMovement, followUpsOf, type GemMovement, moveGems } from "../gems/ledger";
import { ledgerKeys } from "../gems/ledger-keys";
import { notify } from "../notifications/service";
import { defineOwed, owe } from "../owed/effects";
import { validateReferral } from "../referrals/service";
import { loadSelf } from "../users/service";
import type { CheckinResult } from "./schema";

/** The last check-in as cached in `user:streak:{userId}` (written by every check-in that counted). */
export interface CachedStreak {
  currentStreak: number;
  longestStreak: number;
  lastActiveDate: string;
}

/**
 * What a check-in that counted owes after its answer: a streak milestone's bonus (its own ledger key, so it is
 * paid once) and notice, and the referral validation a return on a later day may trigger. The streak is read
 * back from the user: the day's check-in set it, and only the next day's can move it again.
 */
const checkinFollowUps = defineOwed<{ userId: ObjectId; day: string; zone: string }>(
  "checkin.rewards",
  async (deps, c) => {
    const user = await deps.db.users.findOne(
      { _id: c.userId },
      { projection: { currentStreak: 1, lastActiveDate: 1, referredBy: 1, createdAt: 1 } },
    );
    if (!user || user.lastActiveDate !== c.day) return undefined;
    const returning = Boolean(user.referredBy) && localDay(user.createdAt, c.zone) !== c.day;
    await Promise.all([
      payStreakBonus(deps, c.userId, c.day, user.currentStreak),
      returning ? validateReferral(deps, c.userId, "return_checkin") : null,
    ]);
    return { after: () => forgetSelfView(deps, c.userId.toHexString()) };
  },
  (c) => [c.userId],
);

/**
 * Daily check-in: once per calendar day in the user's time zone (settings; the standing carries it, so it costs no
 * read). Yesterday's check-in extends the streak, an older one restarts it at 1. The update is conditional on
 * `lastActiveDate` being before today, so concurrent check-ins count once; and after a flight west, where the
 * local date is behind the last check-in's, nothing counts again until the calendar catches up (travel never
 * rewrites a day already counted, nor restarts the streak).
 *
 * One Data API wait: the streak and the daily reward's balance are one update of the user, in one transaction
 * with the reward's ledger entry and what the check-in owes (the entry's balances and leaderboard place, a
 * milestone's bonus and notice, referral validation), done after the answer; `gemsAwarded` counts the bonus
 * then owed. A repeat the same day is answered from the cached last check-in (read with the rate limit) with
 * no MongoDB call, or, when that is gone, from the account.
 */
export async function checkin(deps: Deps, viewer: Viewer, last?: CachedStreak | null): Promise<CheckinResult> {
  const now = deps.clock.now();
  const zone = viewer.timezone ?? "UTC";
  const today = localDay(now, zone);
  if (last && last.lastActiveDate >= today) {
    const { currentStreak, longestStreak, lastActiveDate } = last;
    return { currentStreak, longestStreak, gemsAwarded: 0, date: lastActiveDate };
  }
  const yesterday = addCalendarDays(today, -1);
  const userId = new ObjectId(viewer.id);
  const counted = {
    _id: userId,
    deletedAt: null,
    $or: [{ lastActiveDate: null }, { lastActiveDate: { $lt: today } }],
  };
  const streak = [
    {
      $set: {
        currentStreak: {
          $cond: [{ $eq: ["$lastActiveDate", yesterday] }, { $add: [{ $ifNull: ["$currentStreak", 0] }, 1] }, 1],
        },
      },
    },
  ];
  const effect = {
    longestStreak: { $max: [{ $ifNull: ["$longestStreak", 0] }, "$currentStreak"] },
    lastActiveDate: today,
    updatedAt: now,
  };
  const projection = { currentStreak: 1, longestStreak: 1, lastActiveDate: 1 } as const;
  const { checkinReward } = deps.config.gems;
  const reward =
    checkinReward > 0
      ? batchMovement(deps, dailyReward(userId, today, checkinReward), now, {
          filter: counted,
          before: streak,
          effect,
          projection,
        })
      : null;
  const write = async (paid: typeof reward) => {
    const owed = owe(deps, [...(paid ? [followUpsOf([paid])] : []), checkinFollowUps({ userId, day: today, zone })]);
    const move =
      paid?.move ??
      expectMatch(
        deps.db.users.inBatch.findOneAndUpdate(counted, [...streak, { $set: effect }], {
          returnDocument: "after",
          projection,
        }),
      );
    const [user] = (await deps.db.batch([move, ...(paid ? [paid.insert] : []), owed.step], {
      transaction: true,
    })) as [Pick<UserDoc, "currentStreak" | "longestStreak"> | null, ...unknown[]];
    owed.committed();
    return user;
  };
  let user: Pick<UserDoc, "currentStreak" | "longestStreak"> | null;
  let rewarded = reward !== null;
  try {
    try {
      user = await write(reward);
    } catch (error) {
      // Today's reward was paid already (the last check-in was moved back by hand): the streak still counts.
      if (!(error instanceof DuplicateKeyError && error.failedIndex === 1)) throw error;
      rewarded = false;
      user = await write(null);
    }
  } catch (error) {
    // Today's check-in already counted (or a concurrent one just did).
    if (error instanceof PreconditionFailedError && error.failedIndex === 0) return repeatCheckin(deps, viewer, today);
    throw error;
  }
  const current = user?.currentStreak ?? 1;
  const longest = user?.longestStreak ?? current;
  const bonus = deps.config.gems.streakMilestones.get(current) ?? 0;
  await rememberCheckin(deps, viewer.id, { currentStreak: current, longestStreak: longest, lastActiveDate: today });
  return {
    currentStreak: current,
    longestStreak: longest,
    gemsAwarded: (rewarded ? checkinReward : 0) + bonus,
    date: today,
  };
}

/**
 * A check-in on a day that already counted: nothing is awarded. It still completes a payout an interrupted
 * check-in of that day left behind (rewards are keyed by user and day).
 */
async function repeatCheckin(deps: Deps, viewer: Viewer, today: string): Promise<CheckinResult> {
  const user = await loadSelf(deps, viewer);
  const day = user.lastActiveDate ?? today;
  const cached = { currentStreak: user.currentStreak, longestStreak: user.longestStreak, lastActiveDate: day };
  const [paid] = await Promise.all([
    payCheckinRewards(deps, user._id, day, user.currentStreak),
    rememberCheckin(deps, viewer.id, cached),
  ]);
  return { currentStreak: user.currentStreak, longestStreak: user.longestStreak, gemsAwarded: paid, date: day };
}

/** Caches the last check-in (`user:streak:{userId}`), so a repeat that day needs no MongoDB; and drops the self view. */
async function rememberCheckin(deps: Deps, userId: string, last: CachedStreak): Promise<void> {
  await bestEffort(deps, "streak cache", () =>
    runOps(deps.redis, {
      streak: setValue(deps.keys.userStreak(userId), last, deps.config.streakCacheTtlSeconds),
      self: deleteKeys([deps.keys.selfView(userId)]),
    }),
  );
}

/** The day's check-in reward, keyed by user and day (paid once). */
function dailyReward(userId: ObjectId, day: string, amount: number): GemMovement {
  return {
    userId,
    type: "earn",
    source: "daily_login",
    amount,
    referenceType: "streak",
    referenceId: day,
    description: "Daily check-in",
    idempotencyKey: ledgerKeys.checkin(userId.toHexString(), day),
  };
}

/** A streak milestone's bonus, keyed by user, streak and day (paid once). */
function streakBonus(userId: ObjectId, day: string, streak: number, amount: number): GemMovement {
  return {
    userId,
    type: "earn",
    source: "streak_bonus",
    amount,
    referenceType: "streak",
    referenceId: `${streak}`,
    description: `${streak}-day streak bonus`,
    metadata: { streak },
    idempotencyKey: ledgerKeys.streakBonus(userId.toHexString(), streak, day),
  };
}

/** Pays a streak milestone's bonus (once) and sends its notice with the payout. */
async function payStreakBonus(deps: Deps, userId: ObjectId, day: string, streak: number): Promise<void> {
  const bonus = deps.config.gems.streakMilestones.get(streak);
  if (!bonus) return;
  const paid = await moveGems(deps, streakBonus(userId, day, streak, bonus));
  if (!paid.replayed) await streakNotice(deps, userId, streak, paid.entry.amount);
}

async function streakNotice(deps: Deps, userId: ObjectId, streak: number, amount: number): Promise<void> {
  await notify(deps, {
    type: "system",
    kind: "streak",
    recipientId: userId,
    title: `${streak}-day streak! You earned ${amount} gems`,
    actionType: "open_screen",
    actionPayload: { screen: "gems" },
  });
}

/**
 * Rewards for a check-in that counted: the daily reward, plus a bonus when the streak reaches a milestone.
 * Keyed by user and day, so a retried check-in can never pay twice. Returns what this call paid.
 */
export async function payCheckinRewards(deps: Deps, userId: ObjectId, day: string, streak: number): Promise<number> {
  const { checkinReward, streakMilestones } = deps.config.gems;
  const payouts = [];
  if (checkinReward > 0) payouts.push(moveGems(deps, dailyReward(userId, day, checkinReward)));
  const bonus = streakMilestones.get(streak);
  if (bonus) payouts.push(moveGems(deps, streakBonus(userId, day, streak, bonus)));
  const results = await Promise.all(payouts);
  const milestone = results.find((r) => r.entry.source === "streak_bonus" && !r.replayed);
  if (milestone) await streakNotice(deps, userId, streak, milestone.entry.amount);
  return results.reduce((sum, r) => sum + (r.replayed ? 0 : r.entry.amount), 0);
}
