import type { Keys } from "../../platform/keys";
import { DAY_MS, utcDay } from "../../platform/time";

export const LEADERBOARD_PERIODS = ["daily", "weekly", "alltime"] as const;
export type LeaderboardPeriod = (typeof LEADERBOARD_PERIODS)[number];

/** One leaderboard period as it stands at some instant: its Redis key and UTC bounds (none for all-time). */
export interface PeriodWindow {
  period: LeaderboardPeriod;
  key: string;
  start: Date | null;
  end: Date | null;
}

/**
 * The period containing `at`. Days start at 00:00 UTC; weeks on Monday 00:00 UTC (ISO weeks), so every
 * client sees the same boards roll over at the same instant.
 */
export function periodWindow(period: LeaderboardPeriod, at: Date, keys: Keys): PeriodWindow {
  const dayStart = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate());
  if (period === "daily") {
    const start = new Date(dayStart);
    return { period, key: keys.leaderboardDaily(utcDay(start)), start, end: new Date(dayStart + DAY_MS) };
  }
  if (period === "weekly") {
    const sinceMonday = (at.getUTCDay() + 6) % 7;
    const start = new Date(dayStart - sinceMonday * DAY_MS);
    return { period, key: keys.leaderboardWeekly(utcDay(start)), start, end: new Date(start.getTime() + 7 * DAY_MS) };
  }
  return { period, key: keys.leaderboardAlltime(), start: null, end: null };
}

export function currentWindows(at: Date, keys: Keys): PeriodWindow[] {
  return LEADERBOARD_PERIODS.map((p) => periodWindow(p, at, keys));
}
