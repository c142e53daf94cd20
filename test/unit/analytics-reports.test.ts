import { describe, expect, it } from "vitest";
import { dayRange, retentionCohort, shiftDay } from "../../src/features/analytics/reports";
import { RetentionQuery } from "../../src/features/analytics/schema";

const options = { today: "2026-11-30", maxDays: 366, reversedPath: "to" as const };

describe("report day ranges", () => {
  it("defaults to the 30 days up to today, or up to `to`", () => {
    expect(dayRange({}, options)).toEqual({ from: "2026-11-01", to: "2026-11-30" });
    expect(dayRange({ to: "2026-03-01" }, options)).toEqual({ from: "2026-01-31", to: "2026-03-01" });
    expect(dayRange({ from: "2026-11-20" }, options)).toEqual({ from: "2026-11-20", to: "2026-11-30" });
    expect(dayRange({ from: "2026-11-30", to: "2026-11-30" }, options)).toEqual({
      from: "2026-11-30",
      to: "2026-11-30",
    });
  });

  it("never defaults to a day before 1970", () => {
    expect(dayRange({ to: "1970-01-10" }, options)).toEqual({ from: "1970-01-01", to: "1970-01-10" });
  });

  it("names the field the caller chose for `from` after `to`", () => {
    expect(dayRange({ from: "2026-02-02", to: "2026-02-01" }, options)).toEqual([
      { path: "to", message: "must not be before `from`" },
    ]);
    expect(dayRange({ from: "2026-02-02", to: "2026-02-01" }, { ...options, reversedPath: "from" })).toEqual([
      { path: "from", message: "must not be after `to`" },
    ]);
  });

  it("allows exactly the maximum number of days, not one more", () => {
    const max = { ...options, maxDays: 10 };
    expect(dayRange({ from: "2026-11-21", to: "2026-11-30" }, max)).toEqual({ from: "2026-11-21", to: "2026-11-30" });
    expect(dayRange({ from: "2026-11-20", to: "2026-11-30" }, max)).toEqual([
      { path: "from", message: "the range must not exceed 10 days" },
    ]);
  });

  it("shifts days across months, leap days and years", () => {
    expect(shiftDay("2028-02-28", 1)).toBe("2028-02-29");
    expect(shiftDay("2026-12-31", 1)).toBe("2027-01-01");
    expect(shiftDay("2026-03-01", -30)).toBe("2026-01-30");
  });
});

describe("retention query", () => {
  it.each([
    ["a well-formed day", { from: "2026-02-28" }, true],
    ["a day that does not exist", { from: "2026-02-30" }, false],
    ["a leap day of a year without one", { to: "2026-02-29" }, false],
    ["a day before 1970 (ClickHouse would clamp it)", { from: "1969-12-31" }, false],
    ["a day after 2099", { to: "2100-01-01" }, false],
    ["a time instead of a day", { from: "2026-02-01T00:00:00Z" }, false],
  ])("accepts or refuses %s", (_name, query, ok) => {
    expect(RetentionQuery.safeParse(query).success).toBe(ok);
  });
});

describe("a retention cohort", () => {
  const row = { cohort: "2026-11-01", users: "5", day1: "3", day7: "2", day30: "1" };

  it("gives day N once that UTC day has ended", () => {
    expect(retentionCohort(row, "2026-12-02")).toEqual({
      cohort: "2026-11-01",
      users: 5,
      day1: 3,
      day7: 2,
      day30: 1,
    });
  });

  it("gives null, not 0, for a day N that is today or later", () => {
    // Day 30 is today: not over, so not known.
    expect(retentionCohort(row, "2026-12-01")).toMatchObject({ day1: 3, day7: 2, day30: null });
    expect(retentionCohort(row, "2026-11-08")).toMatchObject({ day1: 3, day7: null, day30: null });
    expect(retentionCohort(row, "2026-11-02")).toMatchObject({ users: 5, day1: null, day7: null, day30: null });
  });
});
