import type { QuietHours } from "../../db";
import { HOUR_MS, MINUTE_MS } from "../../platform/time";

/**
 * The rules that decide what a recipient's owed pushes become (pure; the sender in delivery.ts applies them):
 * preferences, quiet hours in the recipient's time zone, the hourly cap, and folding.
 */

const DAY_MINUTES = 24 * 60;

/** An IANA zone Intl knows, else UTC (the account's `settings.timezone`, when set). */
export function resolveTimeZone(timeZone: string | null | undefined): string {
  if (!timeZone) return "UTC";
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
    return timeZone;
  } catch {
    return "UTC";
  }
}

/** Minutes since local midnight at `at` in `timeZone`. */
export function localMinutes(at: Date, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(at);
  const value = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return (value("hour") % 24) * 60 + value("minute");
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/**
 * When the quiet hours around `now` end, or null when `now` is outside them. `start` is inclusive, `end`
 * exclusive; a start after the end spans midnight. Across a daylight-saving change the end is corrected to
 * the instant the local clock actually shows `end` (or the first instant after, when that time is skipped).
 */
export function quietHoursEnd(now: Date, quiet: QuietHours | null | undefined, timeZone: string): Date | null {
  if (!quiet) return null;
  const [start, end, minute] = [minutesOf(quiet.start), minutesOf(quiet.end), localMinutes(now, timeZone)];
  const inside = start < end ? minute >= start && minute < end : minute >= start || minute < end;
  if (!inside) return null;
  const toEnd = (end - minute + DAY_MINUTES) % DAY_MINUTES || DAY_MINUTES;
  const startOfMinute = now.getTime() - (now.getTime() % MINUTE_MS);
  let until = startOfMinute + toEnd * MINUTE_MS;
  // The wall clock may have moved by an hour in between: shift by what the clock shows versus `end`.
  const drift =
    ((end - localMinutes(new Date(until), timeZone) + DAY_MINUTES + DAY_MINUTES / 2) % DAY_MINUTES) - DAY_MINUTES / 2;
  if (drift !== 0) {
    const corrected = until + drift * MINUTE_MS;
    until = corrected > now.getTime() ? corrected : until;
  }
  return new Date(until);
}

/** The cap's window: the UTC clock hour `at` falls in (`2026-05-01T08`) and when it ends. */
export function capWindow(at: Date): { hour: string; endsAt: Date } {
  const start = at.getTime() - (at.getTime() % HOUR_MS);
  return { hour: new Date(start).toISOString().slice(0, 13), endsAt: new Date(start + HOUR_MS) };
}

export interface OwedPush {
  id: string;
  updatedAt: Date;
  /** Held back earlier by quiet hours or the cap. */
  held: boolean;
  marketing: boolean;
}

export interface PushRecipient {
  /** The account exists, is not banned, and has at least one push token. */
  reachable: boolean;
  /** `notificationPreferences.push` */
  pushEnabled: boolean;
  /** `notificationPreferences.marketing` */
  marketing: boolean;
  /** When the recipient's quiet hours end, if they are in them now. */
  quietUntil: Date | null;
}

export interface PushPlan {
  /** Pushed one by one, newest first: one push per grouped notification. */
  individual: string[];
  /** Folded into one summary push ("5 new notifications"). */
  fold: string[];
  /** No longer owed: the recipient cannot or does not want to get them. */
  drop: string[];
  /** Owed still, not before `until` (quiet hours, or the cap's next window); they will fold. */
  hold: { ids: string[]; until: Date } | null;
  /** Pushes this plan sends. */
  pushes: number;
}

/**
 * What to do with a recipient's owed pushes given `budget` pushes left in this hour (`capEndsAt` ends it):
 *
 * - nothing for someone unreachable or with pushes off; promotional ones only for those who opted in;
 * - in quiet hours, or with no budget left, everything waits (held) until the quiet hours or the window end;
 * - a single owed push goes as itself; anything held before folds with the rest into one summary push;
 * - otherwise one push per group, newest first, and when that would exceed the budget the newest
 *   `budget − 1` go one by one and the rest fold into a summary (so the last push left says "and N more").
 */
export function planPushes(
  recipient: PushRecipient,
  owed: readonly OwedPush[],
  budget: number,
  capEndsAt: Date,
): PushPlan {
  const plan: PushPlan = { individual: [], fold: [], drop: [], hold: null, pushes: 0 };
  if (!recipient.reachable || !recipient.pushEnabled) {
    plan.drop = owed.map((o) => o.id);
    return plan;
  }
  const wanted = owed.filter((o) => !o.marketing || recipient.marketing);
  plan.drop = owed.filter((o) => o.marketing && !recipient.marketing).map((o) => o.id);
  if (wanted.length === 0) return plan;
  const newest = [...wanted].sort((a, b) => b.updatedAt.getTime() - a.updatedAt.getTime());
  const waitUntil = recipient.quietUntil ?? (budget <= 0 ? capEndsAt : null);
  if (waitUntil) {
    plan.hold = { ids: newest.map((o) => o.id), until: waitUntil };
    return plan;
  }
  if (newest.length === 1) {
    plan.individual = [newest[0]?.id ?? ""];
  } else if (newest.some((o) => o.held)) {
    plan.fold = newest.map((o) => o.id);
  } else if (newest.length <= budget) {
    plan.individual = newest.map((o) => o.id);
  } else {
    plan.individual = newest.slice(0, budget - 1).map((o) => o.id);
    plan.fold = newest.slice(budget - 1).map((o) => o.id);
  }
  plan.pushes = plan.individual.length + (plan.fold.length > 0 ? 1 : 0);
  return plan;
}
