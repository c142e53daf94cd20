import { describe, expect, it } from "vitest";
import { finishedPeriod } from "../../src/features/journal/jobs";
import { normalizeTag } from "../../src/features/journal/schema";
import {
  calendarOf,
  currentStreak,
  periodStats,
  previousMonth,
  previousWeek,
  shiftOf,
  streakFacts,
  trendsOf,
} from "../../src/features/journal/stats";
import { readingTimeSeconds, snippetFor, wordCount } from "../../src/features/journal/text";
import {
  addCalendarDays,
  addMonths,
  canonicalTimeZone,
  daysOfMonth,
  isCalendarDay,
  isoWeekday,
  localDay,
  weekStart,
} from "../../src/platform/time";

describe("calendar days in a time zone", () => {
  it("dates one instant differently on either side of the date line", () => {
    const instant = new Date("2024-03-10T11:30:00Z");
    expect(localDay(instant, "UTC")).toBe("2024-03-10");
    expect(localDay(instant, "Pacific/Kiritimati")).toBe("2024-03-11"); // UTC+14
    expect(localDay(instant, "Pacific/Pago_Pago")).toBe("2024-03-10"); // UTC−11, 00:30
    expect(localDay(new Date("2024-03-10T10:30:00Z"), "Pacific/Pago_Pago")).toBe("2024-03-09");
  });

  it("follows daylight saving: New York's midnight is 05:00 UTC in winter, 04:00 in summer", () => {
    expect(localDay(new Date("2024-01-15T04:59:00Z"), "America/New_York")).toBe("2024-01-14");
    expect(localDay(new Date("2024-01-15T05:00:00Z"), "America/New_York")).toBe("2024-01-15");
    expect(localDay(new Date("2024-07-15T03:59:00Z"), "America/New_York")).toBe("2024-07-14");
    expect(localDay(new Date("2024-07-15T04:00:00Z"), "America/New_York")).toBe("2024-07-15");
  });

  it("counts calendar days across a 23-hour day (spring forward), where now − 24 h would skip one", () => {
    // Europe/Lisbon springs forward on 2024-03-31; 00:30 on April 1st minus 24 h is still March 30th locally.
    const justAfterMidnight = new Date("2024-03-31T23:30:00Z"); // 00:30 WEST on 2024-04-01
    const today = localDay(justAfterMidnight, "Europe/Lisbon");
    expect(today).toBe("2024-04-01");
    expect(localDay(new Date(justAfterMidnight.getTime() - 86_400_000), "Europe/Lisbon")).toBe("2024-03-30");
    expect(addCalendarDays(today, -1)).toBe("2024-03-31");
  });

  it("accepts IANA zones in their canonical spelling and refuses offsets and nonsense", () => {
    expect(canonicalTimeZone("Europe/Lisbon")).toBe("Europe/Lisbon");
    expect(canonicalTimeZone("asia/tokyo")).toBe("Asia/Tokyo");
    expect(canonicalTimeZone("UTC")).toBe("UTC");
    for (const bad of ["+05:00", "Mars/Olympus_Mons", "", "Europe/", "../etc/passwd", "GMT+5 "]) {
      expect(canonicalTimeZone(bad), bad).toBeNull();
    }
  });

  it("does calendar arithmetic: weeks start on Monday, months have their length", () => {
    expect(isCalendarDay("2024-02-29")).toBe(true);
    expect(isCalendarDay("2023-02-29")).toBe(false);
    expect(isCalendarDay("2024-13-01")).toBe(false);
    expect(isoWeekday("2024-03-10")).toBe(7);
    expect(weekStart("2024-03-10")).toBe("2024-03-04");
    expect(weekStart("2024-03-04")).toBe("2024-03-04");
    expect(daysOfMonth("2024-02")).toHaveLength(29);
    expect(addMonths("2024-01", -1)).toBe("2023-12");
    expect(addCalendarDays("2024-12-31", 1)).toBe("2025-01-01");
  });
});

describe("writing streak", () => {
  const day = (date: string, wordCount = 10) => ({ date, wordCount });

  it("finds the longest run and the run ending at the last entry, back-filled in any order", () => {
    const facts = streakFacts([
      day("2024-03-05"),
      day("2024-03-01"),
      day("2024-03-03"),
      day("2024-03-02"),
      day("2024-03-06"),
    ]);
    expect(facts).toEqual({ longest: 3, lastRun: 2, lastEntryDate: "2024-03-06", totalEntries: 5, totalWords: 50 });
  });

  it("is current while the last entry is today or yesterday, and 0 after a missed day", () => {
    const facts = streakFacts([day("2024-03-05"), day("2024-03-06")]);
    expect(currentStreak(facts, "2024-03-06")).toBe(2);
    expect(currentStreak(facts, "2024-03-07")).toBe(2);
    expect(currentStreak(facts, "2024-03-08")).toBe(0);
    // Written in a zone ahead of where the user is now: still alive.
    expect(currentStreak(facts, "2024-03-05")).toBe(2);
    expect(currentStreak(streakFacts([]), "2024-03-05")).toBe(0);
  });
});

describe("mood views", () => {
  it("lays out every day of the month with its mood", () => {
    const calendar = calendarOf("2024-02", [
      { date: "2024-02-01", mood: "happy" },
      { date: "2024-02-29", mood: null },
    ]);
    expect(calendar.days).toHaveLength(29);
    expect(calendar.days[0]).toEqual({ date: "2024-02-01", mood: "happy", hasEntry: true });
    expect(calendar.days[1]).toEqual({ date: "2024-02-02", mood: null, hasEntry: false });
    expect(calendar.days[28]).toEqual({ date: "2024-02-29", mood: null, hasEntry: true });
  });

  it("groups moods per Monday-first week (empty weeks included) and per weekday, within the range only", () => {
    const trends = trendsOf("30d", "2024-03-31", [
      { date: "2024-03-01", mood: "sad" }, // before the range (starts 03-02)
      { date: "2024-03-04", mood: "happy" }, // Monday
      { date: "2024-03-05", mood: "ecstatic" },
      { date: "2024-03-11", mood: "angry" }, // Monday
      { date: "2024-03-31", mood: "happy" }, // Sunday
    ]);
    expect(trends.from).toBe("2024-03-02");
    expect(trends.entries).toBe(4);
    expect(trends.moods).toEqual({ happy: 2, ecstatic: 1, angry: 1 });
    expect(trends.averageMood).toBe(0.5);
    expect(trends.weeks.map((w) => w.weekStart)).toEqual([
      "2024-02-26",
      "2024-03-04",
      "2024-03-11",
      "2024-03-18",
      "2024-03-25",
    ]);
    expect(trends.weeks[1]).toEqual({
      weekStart: "2024-03-04",
      entries: 2,
      moods: { happy: 1, ecstatic: 1 },
      averageMood: 1.5,
    });
    expect(trends.weeks[3]).toEqual({ weekStart: "2024-03-18", entries: 0, moods: {}, averageMood: null });
    expect(trends.weekdays[0]).toMatchObject({ weekday: 1, entries: 2, moods: { happy: 1, angry: 1 } });
    expect(trends.weekdays[6]).toMatchObject({ weekday: 7, entries: 1 });
  });
});

describe("insight statistics", () => {
  const entry = (date: string, mood: "happy" | "sad" | null, tags: string[], wordCount: number) => ({
    date,
    mood,
    tags,
    wordCount,
  });

  it("counts entries, words, the period's streak, the most frequent moods and tags, and the shift", () => {
    const week = periodStats([
      entry("2024-03-04", "happy", ["work", "run"], 100),
      entry("2024-03-05", "happy", ["work"], 50),
      entry("2024-03-07", "sad", ["family"], 30),
    ]);
    expect(week).toEqual({
      entries: 3,
      words: 180,
      averageWords: 60,
      longestStreak: 2,
      moods: [
        { mood: "happy", count: 2 },
        { mood: "sad", count: 1 },
      ],
      tags: [
        { tag: "work", count: 2 },
        { tag: "family", count: 1 },
        { tag: "run", count: 1 },
      ],
      averageMood: 0.33,
    });
    const before = periodStats([entry("2024-02-28", "sad", [], 20)]);
    expect(shiftOf(week, before)).toEqual({ entries: 2, words: 160, averageMood: 1.33 });
  });

  it("uses finished periods only: last Monday–Sunday week and last month, once over in every zone", () => {
    expect(previousWeek("2024-03-13")).toEqual({ start: "2024-03-04", end: "2024-03-10" });
    expect(previousMonth("2024-03-13")).toEqual({ start: "2024-02-01", end: "2024-02-29" });
    // Monday 11:59 UTC: still Sunday in UTC−12, so the week before last is the latest finished everywhere.
    expect(finishedPeriod("weekly", new Date("2024-03-11T11:59:00Z"))).toEqual({
      start: "2024-02-26",
      end: "2024-03-03",
    });
    expect(finishedPeriod("weekly", new Date("2024-03-11T12:00:00Z"))).toEqual({
      start: "2024-03-04",
      end: "2024-03-10",
    });
    expect(finishedPeriod("monthly", new Date("2024-03-01T12:00:00Z"))).toEqual({
      start: "2024-02-01",
      end: "2024-02-29",
    });
  });
});

describe("entry text", () => {
  it("counts the words a reader reads: no link targets, image addresses or markup", () => {
    // "A good day Went to the park": the address and the image are not read.
    expect(wordCount("# A *good* day\n\nWent to [the park](https://example.com/park) ![](https://x.test/a.png)")).toBe(
      7,
    );
    expect(wordCount("")).toBe(0);
    expect(wordCount("don't stop — it's well-known")).toBe(4);
    expect(readingTimeSeconds(0, 200)).toBe(0);
    expect(readingTimeSeconds(1, 200)).toBe(1);
    expect(readingTimeSeconds(400, 200)).toBe(120);
  });

  it("normalises tags to one spelling", () => {
    expect(normalizeTag("#Work Life")).toBe("work-life");
    expect(normalizeTag("  WORK-LIFE ")).toBe("work-life");
    expect(normalizeTag("Café")).toBe("café");
  });

  it("cuts a snippet around the first match and marks every matched word by offsets", () => {
    const content = `${"Filler words here. ".repeat(20)}Then the gardens bloomed and my garden smelled of rain.`;
    const snippet = snippetFor({ title: "Spring", content, tags: [] }, "garden");
    expect(snippet?.field).toBe("content");
    expect(snippet?.text.startsWith("…")).toBe(true);
    const marked = snippet?.highlights.map((h) => snippet.text.slice(h.start, h.end));
    expect(marked).toEqual(["gardens", "garden"]);
    expect(snippetFor({ title: "Garden day", content: "nothing else", tags: [] }, "gardens")).toEqual({
      field: "title",
      text: "Garden day",
      highlights: [{ start: 0, end: 6 }],
    });
    expect(snippetFor({ title: "x", content: "y", tags: ["garden"] }, "garden")?.field).toBe("tags");
    expect(snippetFor({ title: "x", content: "y", tags: [] }, "-garden")).toBeNull();
  });
});
