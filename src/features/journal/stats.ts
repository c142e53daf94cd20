import type { Mood, PeriodStats } from "../../db";
import { addCalendarDays, addMonths, daysBetween, daysOfMonth, isoWeekday, weekStart } from "../../platform/time";
import type { Calendar, MoodCounts, TrendRange, Trends } from "./schema";
import { TREND_RANGES } from "./schema";

/**
 * The journal's statistics, as pure functions of entries (recomputed from them, never incremented, so a
 * back-filled or deleted entry changes them exactly). Days are the entries' own calendar dates; "today" is
 * the caller's, in their zone.
 */

/** ecstatic 2 … angry −2: the one number moods are averaged with. */
export const MOOD_SCORES: Record<Mood, number> = { ecstatic: 2, happy: 1, neutral: 0, sad: -1, anxious: -1, angry: -2 };

/** The streak facts that do not depend on today: cached, then read against today's date. */
export interface StreakFacts {
  longest: number;
  /** The run of consecutive days ending at the last entry date. */
  lastRun: number;
  lastEntryDate: string | null;
  totalEntries: number;
  totalWords: number;
}

export function streakFacts(entries: { date: string; wordCount: number }[]): StreakFacts {
  const days = [...new Set(entries.map((e) => e.date))].sort();
  let longest = 0;
  let run = 0;
  let previous: string | null = null;
  for (const day of days) {
    run = previous !== null && daysBetween(previous, day) === 1 ? run + 1 : 1;
    longest = Math.max(longest, run);
    previous = day;
  }
  return {
    longest,
    lastRun: run,
    lastEntryDate: previous,
    totalEntries: entries.length,
    totalWords: entries.reduce((sum, e) => sum + e.wordCount, 0),
  };
}

/**
 * The current streak: the last run, while it ends today or yesterday. An entry dated after today (written in
 * a zone ahead of the caller's present one) keeps it alive too: travel never breaks a streak.
 */
export function currentStreak(facts: StreakFacts, today: string): number {
  if (!facts.lastEntryDate) return 0;
  return facts.lastEntryDate >= addCalendarDays(today, -1) ? facts.lastRun : 0;
}

export function calendarOf(month: string, entries: { date: string; mood: Mood | null }[]): Calendar {
  const byDate = new Map(entries.map((e) => [e.date, e.mood]));
  return {
    month,
    days: daysOfMonth(month).map((date) => ({
      date,
      mood: byDate.get(date) ?? null,
      hasEntry: byDate.has(date),
    })),
  };
}

interface MoodTally {
  entries: number;
  moods: MoodCounts;
  averageMood: number | null;
}

function tally(entries: { mood: Mood | null }[]): MoodTally {
  const moods: MoodCounts = {};
  let scored = 0;
  let sum = 0;
  for (const e of entries) {
    if (!e.mood) continue;
    moods[e.mood] = (moods[e.mood] ?? 0) + 1;
    scored += 1;
    sum += MOOD_SCORES[e.mood];
  }
  return { entries: entries.length, moods, averageMood: scored ? round2(sum / scored) : null };
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** The first day of a range that ends today (30d: today and the 29 days before). */
export function trendStart(range: TrendRange, today: string): string {
  return addCalendarDays(today, 1 - TREND_RANGES[range]);
}

/** Moods over a range ending today: overall, per ISO week (Monday first, empty weeks included) and per weekday. */
export function trendsOf(range: TrendRange, today: string, entries: { date: string; mood: Mood | null }[]): Trends {
  const from = trendStart(range, today);
  const inRange = entries.filter((e) => e.date >= from && e.date <= today);
  const weeks: Trends["weeks"] = [];
  for (let week = weekStart(from); week <= today; week = addCalendarDays(week, 7)) {
    const end = addCalendarDays(week, 6);
    weeks.push({ weekStart: week, ...tally(inRange.filter((e) => e.date >= week && e.date <= end)) });
  }
  const weekdays = Array.from({ length: 7 }, (_, i) => ({
    weekday: i + 1,
    ...tally(inRange.filter((e) => isoWeekday(e.date) === i + 1)),
  }));
  return { range, from, to: today, ...tally(inRange), weeks, weekdays };
}

// ── Insights ────────────────────────────────────────────────────────────────────────────────────────────────

export interface Period {
  start: string;
  end: string;
}

/** The Monday–Sunday week before the one `day` is in. */
export function previousWeek(day: string): Period {
  const start = addCalendarDays(weekStart(day), -7);
  return { start, end: addCalendarDays(start, 6) };
}

/** The calendar month before the one `day` is in. */
export function previousMonth(day: string): Period {
  const month = addMonths(day.slice(0, 7), -1);
  const days = daysOfMonth(month);
  return { start: days[0] as string, end: days.at(-1) as string };
}

/** The period just before `period` of the same kind. */
export function periodBefore(kind: "weekly" | "monthly", period: Period): Period {
  return kind === "weekly" ? previousWeek(period.start) : previousMonth(period.start);
}

export interface InsightEntry {
  date: string;
  mood: Mood | null;
  tags: string[];
  wordCount: number;
}

const TOP = 5;

function ranked<K extends string>(counts: Map<K, number>): { key: K; count: number }[] {
  return [...counts.entries()]
    .map(([key, count]) => ({ key, count }))
    .sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : 1))
    .slice(0, TOP);
}

export function periodStats(entries: InsightEntry[]): PeriodStats {
  const words = entries.reduce((sum, e) => sum + e.wordCount, 0);
  const moods = new Map<Mood, number>();
  const tags = new Map<string, number>();
  for (const e of entries) {
    if (e.mood) moods.set(e.mood, (moods.get(e.mood) ?? 0) + 1);
    for (const t of e.tags) tags.set(t, (tags.get(t) ?? 0) + 1);
  }
  return {
    entries: entries.length,
    words,
    averageWords: entries.length ? Math.round(words / entries.length) : 0,
    longestStreak: streakFacts(entries).longest,
    moods: ranked(moods).map(({ key, count }) => ({ mood: key, count })),
    tags: ranked(tags).map(({ key, count }) => ({ tag: key, count })),
    averageMood: tally(entries).averageMood,
  };
}

/** This period against the previous one. */
export function shiftOf(
  current: PeriodStats,
  previous: PeriodStats,
): { entries: number; words: number; averageMood: number | null } {
  return {
    entries: current.entries - previous.entries,
    words: current.words - previous.words,
    averageMood:
      current.averageMood !== null && previous.averageMood !== null
        ? round2(current.averageMood - previous.averageMood)
        : null,
  };
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const signed = (n: number) => (n > 0 ? `+${n}` : `${n}`);

/** One deterministic sentence or three: what the period held and how it moved. */
export function summaryOf(kind: "weekly" | "monthly", stats: PeriodStats, previous: PeriodStats): string {
  const span = kind === "weekly" ? "This week" : "This month";
  const parts = [`${span} you wrote ${plural(stats.entries, "entry", "entries")}, ${plural(stats.words, "word")}.`];
  const mood = stats.moods[0];
  if (mood) parts.push(`You felt ${mood.mood} most often (${plural(mood.count, "time")}).`);
  const tag = stats.tags[0];
  if (tag) parts.push(`Your most used tag was #${tag.tag}.`);
  const shift = shiftOf(stats, previous);
  parts.push(`That is ${signed(shift.entries)} entries and ${signed(shift.words)} words against the period before.`);
  return parts.join(" ");
}
