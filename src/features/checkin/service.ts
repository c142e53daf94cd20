import { bestEffort } from "../../core/best-effort";
import { forgetSelfView } from "../../core/standing";
import type { Viewer } from "../../core/viewer";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { runOp, setValue } from "../../platform/redis-ops";
import { addCalendarDays, localDay } from "../../platform/time";
import { moveGems } from "../gems/ledger";
import { ledgerKeys } from "../gems/ledger-keys";
import { notify } from "../notifications/service";
import { validateReferral } from "../referrals/service";
import { loadSelf } from "../users/service";
import type { CheckinResult } from "./schema";

/**
 * Daily check-in: once per calendar day in the user's time zone (settings; the standing carries it, so it costs no
 * read). Yesterday's check-in extends the streak, an older one restarts it at 1. The update is conditional on
 * `lastActiveDate` being before today, so concurrent check-ins count once; and after a flight west, where the
 * local date is behind the last check-in's, nothing counts again until the calendar catches up (travel never
 * rewrites a day already counted, nor restarts the streak).
 */
export async function checkin(deps: Deps, viewer: Viewer): Promise<CheckinResult> {
  const now = deps.clock.now();
  const zone = viewer.timezone ?? "UTC";
  const today = localDay(now, zone);
  const yesterday = addCalendarDays(today, -1);
  const streak = {
    $cond: [{ $eq: ["$lastActiveDate", yesterday] }, { $add: [{ $ifNull: ["$currentStreak", 0] }, 1] }, 1],
  };
  const updated = await deps.db.users.findOneAndUpdate(
    {
      _id: new ObjectId(viewer.id),
      deletedAt: null,
      $or: [{ lastActiveDate: null }, { lastActiveDate: { $lt: today } }],
    },
    [
      { $set: { currentStreak: streak } },
      {
        $set: {
          longestStreak: { $max: [{ $ifNull: ["$longestStreak", 0] }, "$currentStreak"] },
          lastActiveDate: today,
          updatedAt: now,
        },
      },
    ],
    { returnDocument: "after" },
  );
  const user = updated ?? (await loadSelf(deps, viewer));
  // The day that counted: today, or (a repeat) the day of the last check-in.
  const day = user.lastActiveDate ?? today;
  const cached = { currentStreak: user.currentStreak, longestStreak: user.longestStreak, lastActiveDate: day };
  // Rewards are keyed by user and day: a repeat pays nothing, yet still completes a payout that a crash
  // interrupted after the streak moved. A check-in on a later day than signup shows a referred user is real.
  const returning = updated && user.referredBy && localDay(user.createdAt, zone) !== today;
  const [paid] = await Promise.all([
    payCheckinRewards(deps, user._id, day, user.currentStreak),
    bestEffort(deps, "streak cache", () =>
      runOp(deps.redis, setValue(deps.keys.userStreak(viewer.id), cached, deps.config.streakCacheTtlSeconds)),
    ),
    updated ? forgetSelfView(deps, viewer.id) : null,
    returning
      ? bestEffort(deps, "referral validation", () => validateReferral(deps, user._id, "return_checkin"))
      : null,
  ]);
  return { currentStreak: user.currentStreak, longestStreak: user.longestStreak, gemsAwarded: paid, date: day };
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
        idempotencyKey: ledgerKeys.checkin(id, day),
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
        idempotencyKey: ledgerKeys.streakBonus(id, streak, day),
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
