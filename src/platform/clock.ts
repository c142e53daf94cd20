/** Time source, injectable so jobs and tests can pin "now". */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** `YYYY-MM-DD` of a date in UTC: the day boundary used by quotas, streaks and leaderboards. */
export function utcDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}
