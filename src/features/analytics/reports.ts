import type { FieldError } from "../../core/errors";
import { DAY_MS, utcDay } from "../../platform/time";
import { FIRST_REPORT_DAY, type RetentionCohort } from "./schema";

/** Days of retention the report gives: day N counts a cohort's users active exactly N days after their first. */
export const RETENTION_DAYS = [1, 7, 30] as const;

export interface DayRange {
  from: string;
  to: string;
}

/**
 * An inclusive range of UTC days (`YYYY-MM-DD`, already well-formed) from a report's optional query: `to`
 * defaults to today and `from` to 29 days before `to` (30 days in all). Answers the field errors instead
 * when `from` is after `to` (named `reversedPath`) or the range is longer than `maxDays` (named `from`).
 */
export function dayRange(
  query: { from?: string | undefined; to?: string | undefined },
  options: { today: string; maxDays: number; reversedPath: "from" | "to" },
): DayRange | FieldError[] {
  const to = query.to ?? options.today;
  const from = query.from ?? maxDay(FIRST_REPORT_DAY, shiftDay(to, -29));
  const days = (Date.parse(to) - Date.parse(from)) / DAY_MS + 1;
  if (days < 1) {
    const message = options.reversedPath === "to" ? "must not be before `from`" : "must not be after `to`";
    return [{ path: options.reversedPath, message }];
  }
  if (days > options.maxDays) {
    return [{ path: "from", message: `the range must not exceed ${options.maxDays} days` }];
  }
  return { from, to };
}

/** `day` moved by whole days. */
export function shiftDay(day: string, days: number): string {
  return utcDay(new Date(Date.parse(day) + days * DAY_MS));
}

function maxDay(a: string, b: string): string {
  return a > b ? a : b;
}

/** One cohort's counts as ClickHouse answers them (64-bit integers arrive as strings in JSON). */
export interface RetentionRow {
  cohort: string;
  users: string | number;
  day1: string | number;
  day7: string | number;
  day30: string | number;
}

/**
 * A cohort of the report. Day N of a cohort is known once that UTC day has ended (it is before `today`); until
 * then it is null, not 0, since the cohort's users may still come back that day.
 */
export function retentionCohort(row: RetentionRow, today: string): RetentionCohort {
  const known = (n: (typeof RETENTION_DAYS)[number]) => shiftDay(row.cohort, n) < today;
  return {
    cohort: row.cohort,
    users: Number(row.users),
    day1: known(1) ? Number(row.day1) : null,
    day7: known(7) ? Number(row.day7) : null,
    day30: known(30) ? Number(row.day30) : null,
  };
}
