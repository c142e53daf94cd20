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
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}
