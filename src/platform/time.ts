/** Time: the injectable clock, the UTC day boundary and the unit constants every module uses. */

export const SECOND_MS = 1_000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;
export const MINUTE_SECONDS = 60;
export const HOUR_SECONDS = 60 * MINUTE_SECONDS;
export const DAY_SECONDS = 24 * HOUR_SECONDS;

/** Time source, injectable so jobs and tests can pin "now". */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** `YYYY-MM-DD` of a date in UTC: the day boundary used by quotas, streaks and leaderboards. */
export function utcDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** Seconds from `now` to the next UTC midnight (at least 1): when a daily quota starts over. */
export function secondsUntilNextUtcDay(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / SECOND_MS));
}

/** `date` moved by whole hours / days (negative to go back). */
export function addHours(date: Date, hours: number): Date {
  return new Date(date.getTime() + hours * HOUR_MS);
}
export function addDays(date: Date, days: number): Date {
  return new Date(date.getTime() + days * DAY_MS);
}

// ── Calendar days in a time zone ──────────────────────────────────────────────────────────────────────────
// Day-based rules (check-in and writing streaks, journal dates) count days in the user's IANA zone. A "day"
// here is a calendar date string, `YYYY-MM-DD`; arithmetic on it is calendar arithmetic (DST never makes a day
// repeat or vanish, as "now − 24 h" in a zone would).

const DAY_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;
/** IANA names are Area/Location[/Sub], or UTC and friends; fixed offsets such as "+05:00" are not zones. */
const ZONE_NAME = /^(?:[A-Za-z][A-Za-z0-9_+-]*)(?:\/[A-Za-z0-9_+-]+){0,2}$/;

const formatters = new Map<string, Intl.DateTimeFormat>();

function dayFormatter(zone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(zone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hourCycle: "h23",
    });
    formatters.set(zone, formatter);
  }
  return formatter;
}

/**
 * The canonical spelling of an IANA time zone (`asia/tokyo` → `Asia/Tokyo`), or null when `zone` is not one
 * that Intl knows. Fixed offsets are refused: they do not follow a place's daylight-saving rules.
 */
export function canonicalTimeZone(zone: string): string | null {
  if (zone.length > 64 || !ZONE_NAME.test(zone)) return null;
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

/** `YYYY-MM-DD` of an instant in an IANA zone (the zone must be valid: see `canonicalTimeZone`). */
export function localDay(instant: Date, zone: string): string {
  const parts = dayFormatter(zone).formatToParts(instant);
  const get = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** Whether `day` is a real calendar date written `YYYY-MM-DD` (no 2023-02-29). */
export function isCalendarDay(day: string): boolean {
  const m = DAY_PATTERN.exec(day);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const at = new Date(Date.UTC(y, mo - 1, d));
  return at.getUTCFullYear() === y && at.getUTCMonth() === mo - 1 && at.getUTCDate() === d;
}

function dayNumber(day: string): number {
  const m = DAY_PATTERN.exec(day);
  if (!m) throw new RangeError(`not a day: ${day}`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / DAY_MS;
}

function dayOfNumber(n: number): string {
  return new Date(n * DAY_MS).toISOString().slice(0, 10);
}

/** A calendar date moved by whole days (negative to go back). */
export function addCalendarDays(day: string, days: number): string {
  return dayOfNumber(dayNumber(day) + days);
}

/** Whole days from `from` to `to` (positive when `to` is later). */
export function daysBetween(from: string, to: string): number {
  return dayNumber(to) - dayNumber(from);
}

/** ISO weekday of a calendar date: 1 = Monday … 7 = Sunday. */
export function isoWeekday(day: string): number {
  const weekday = new Date(dayNumber(day) * DAY_MS).getUTCDay();
  return weekday === 0 ? 7 : weekday;
}

/** The Monday of the ISO week a calendar date falls in. */
export function weekStart(day: string): string {
  return addCalendarDays(day, 1 - isoWeekday(day));
}

/** `YYYY-MM` → every day of that month, in order. */
export function daysOfMonth(month: string): string[] {
  const [y, m] = month.split("-").map(Number) as [number, number];
  const count = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return Array.from({ length: count }, (_, i) => `${month}-${String(i + 1).padStart(2, "0")}`);
}

/** The month (`YYYY-MM`) before or after one, by whole months. */
export function addMonths(month: string, months: number): string {
  const [y, m] = month.split("-").map(Number) as [number, number];
  const at = new Date(Date.UTC(y, m - 1 + months, 1));
  return at.toISOString().slice(0, 7);
}
