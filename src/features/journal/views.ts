import type { Viewer } from "../../core/viewer";
import type { InsightKind } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { RedisBatch } from "../../platform/redis-ops";
import { localDay } from "../../platform/time";
import { cachedView } from "./cache";
import { decodeDateCursor, encodeDateCursor } from "./cursors";
import {
  type Calendar,
  type InsightPage,
  type Streak,
  type TagVocabulary,
  TREND_RANGES,
  type TrendRange,
  type Trends,
  toInsight,
} from "./schema";
import { zoneOf } from "./service";
import { calendarOf, currentStreak, type StreakFacts, streakFacts, trendStart, trendsOf } from "./stats";

/**
 * The journal's derived views. Each is recomputed from the entries themselves (exact after back-filling,
 * deleting or restoring) and cached under the journal's change counters (cache.ts): a warm read is one Redis
 * round trip after the rate limit's, and no MongoDB call.
 */

const live = (viewer: Viewer) => ({ userId: new ObjectId(viewer.id), state: "active" });

export async function getStreak(deps: Deps, read: RedisBatch, viewer: Viewer): Promise<Streak> {
  const facts = await cachedView<StreakFacts>(
    deps,
    read,
    {
      key: deps.keys.journalStreak(viewer.id),
      generationKey: deps.keys.journalGeneration(viewer.id),
      ttlSeconds: deps.config.journal.cacheTtlSeconds,
    },
    async () => {
      const [all] = await deps.db.journalEntries.aggregate<{ dates: string[]; words: number }>([
        { $match: live(viewer) },
        { $group: { _id: null, dates: { $push: "$date" }, words: { $sum: "$wordCount" } } },
      ]);
      const facts = streakFacts((all?.dates ?? []).map((date) => ({ date, wordCount: 0 })));
      return { ...facts, totalWords: all?.words ?? 0 };
    },
  );
  const today = localDay(deps.clock.now(), zoneOf(viewer));
  return {
    current: currentStreak(facts, today),
    longest: facts.longest,
    lastEntryDate: facts.lastEntryDate,
    totalEntries: facts.totalEntries,
    totalWords: facts.totalWords,
  };
}

/** One month's days with their mood; cached per month, superseded by writes to that month only. */
export function getCalendar(deps: Deps, read: RedisBatch, viewer: Viewer, month: string): Promise<Calendar> {
  return cachedView(
    deps,
    read,
    {
      key: deps.keys.journalCalendar(viewer.id, month),
      generationKey: deps.keys.journalMonthGeneration(viewer.id, month),
      ttlSeconds: deps.config.journal.cacheTtlSeconds,
    },
    async () => {
      const entries = await deps.db.journalEntries.find(
        { ...live(viewer), date: { $gte: `${month}-01`, $lte: `${month}-31` } },
        { projection: { date: 1, mood: 1 }, limit: 31 },
      );
      return calendarOf(month, entries);
    },
  );
}

/** Moods over the last 30 days, 90 days or year up to today (caller's zone); private-mode entries left out. */
export function getTrends(deps: Deps, read: RedisBatch, viewer: Viewer, range: TrendRange): Promise<Trends> {
  const today = localDay(deps.clock.now(), zoneOf(viewer));
  return cachedView(
    deps,
    read,
    {
      key: deps.keys.moodTrend(viewer.id, TREND_RANGES[range]),
      generationKey: deps.keys.journalGeneration(viewer.id),
      ttlSeconds: deps.config.journal.trendsCacheTtlSeconds,
    },
    async () => {
      const entries = await deps.db.journalEntries.find(
        { ...live(viewer), private: false, date: { $gte: trendStart(range, today), $lte: today } },
        { projection: { date: 1, mood: 1 }, limit: TREND_RANGES[range] },
      );
      return trendsOf(range, today, entries);
    },
    // A view computed on another day (in the caller's zone) covers another window.
    (cached) => cached.to === today,
  );
}

/** The caller's tag vocabulary with counts over live entries, most used first. */
export async function getTags(
  deps: Deps,
  read: RedisBatch,
  viewer: Viewer,
  prefix: string | undefined,
): Promise<TagVocabulary> {
  const all = await cachedView<TagVocabulary>(
    deps,
    read,
    {
      key: deps.keys.journalTags(viewer.id),
      generationKey: deps.keys.journalGeneration(viewer.id),
      ttlSeconds: deps.config.journal.cacheTtlSeconds,
    },
    async () => {
      const rows = await deps.db.journalEntries.aggregate<{ _id: string; count: number }>([
        { $match: live(viewer) },
        { $unwind: "$tags" },
        { $group: { _id: "$tags", count: { $sum: 1 } } },
        { $sort: { count: -1, _id: 1 } },
      ]);
      return { items: rows.map((r) => ({ tag: r._id, count: r.count })) };
    },
  );
  return prefix ? { items: all.items.filter((t) => t.tag.startsWith(prefix)) } : all;
}

/** Insights the job wrote for the caller, newest period first. */
export async function listInsights(
  deps: Deps,
  viewer: Viewer,
  query: { kind: InsightKind; limit: number; cursor?: string | undefined },
): Promise<InsightPage> {
  const base = { userId: new ObjectId(viewer.id), kind: query.kind };
  const after = query.cursor ? decodeDateCursor(query.cursor) : null;
  const docs = await deps.db.journalInsights.find(after ? { ...base, periodStart: { $lt: after.date } } : base, {
    sort: { periodStart: -1, _id: -1 },
    limit: query.limit + 1,
  });
  const items = docs.slice(0, query.limit);
  const last = items.at(-1);
  return {
    items: items.map(toInsight),
    nextCursor: docs.length > query.limit && last ? encodeDateCursor({ date: last.periodStart, id: last._id }) : null,
  };
}
