import type { Job, JobContext, JobReport } from "../../core/jobs";
import { type InsightKind, type JournalInsightDoc, type JournalInsightRunDoc, settingsOf } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, type ObjectId } from "../../platform/ids";
import { daysBetween, HOUR_MS, utcDay } from "../../platform/time";
import { notifyEach } from "../notifications/service";
import {
  type InsightEntry,
  type Period,
  periodBefore,
  periodStats,
  previousMonth,
  previousWeek,
  shiftOf,
  summaryOf,
} from "./stats";

// ── Purge ───────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * Removes deleted entries past their restore window, in batches. The delete re-checks the state, so an entry
 * restored between the read and the delete stays.
 */
export async function purgeDeletedEntries(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  while (ctx.timeLeft() > 2_000) {
    const now = deps.clock.now();
    const due = await deps.db.journalEntries.find(
      { state: "deleted", purgeAfter: { $lte: now } },
      { sort: { purgeAfter: 1 }, limit: deps.config.journal.purgeBatchEntries, projection: { _id: 1 } },
    );
    if (due.length === 0) return { more: false };
    const purged = await deps.db.journalEntries.deleteMany({
      _id: { $in: due.map((d) => d._id) },
      state: "deleted",
      purgeAfter: { $lte: now },
    });
    ctx.count("entries", purged);
    if (due.length < deps.config.journal.purgeBatchEntries) return { more: false };
  }
  return { more: true };
}

export const journalPurgeJob: Job = {
  name: "journal-purge",
  description: "Removes journal entries deleted longer ago than JOURNAL_RESTORE_DAYS.",
  run: purgeDeletedEntries,
};

// ── Insights ────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * The latest period of `kind` that has ended in every zone. Local dates run from UTC−12 to UTC+14, so at
 * instant `now` the earliest local date anywhere is the UTC date 12 hours ago; a period before that date is
 * over for everyone (a user in UTC+14 waits at most a day and a half longer than one in UTC−12).
 */
export function finishedPeriod(kind: InsightKind, now: Date): Period {
  const earliestToday = utcDay(new Date(now.getTime() - 12 * HOUR_MS));
  return kind === "weekly" ? previousWeek(earliestToday) : previousMonth(earliestToday);
}

/**
 * Weekly and monthly insights: for each finished period, every author with entries in it gets one
 * `journal_insights` document (unique per user, kind and period) of deterministic statistics, and a system
 * notification announcing it. Authors are taken in `_id` order in batches, and the run records how far it got
 * (`journal_insight_runs`), so a period is walked once across runs; a crash re-does at most one batch, whose
 * inserts the unique index makes no-ops and whose missing notifications (`notifiedAt: null`) go out then.
 *
 * Private mode: entries written or edited in it are never read, and nobody in private mode at run time gets an
 * insight at all.
 */
export async function writeInsights(ctx: JobContext): Promise<JobReport> {
  for (const kind of ["weekly", "monthly"] as const) {
    const more = await insightsFor(ctx, kind, finishedPeriod(kind, ctx.deps.clock.now()));
    if (more) return { more: true };
  }
  return { more: false };
}

async function insightsFor(ctx: JobContext, kind: InsightKind, period: Period): Promise<boolean> {
  const { deps } = ctx;
  const runId = `${kind}:${period.start}`;
  const run = await deps.db.journalInsightRuns.findOneAndUpdate(
    { _id: runId },
    {
      $setOnInsert: {
        kind,
        periodStart: period.start,
        periodEnd: period.end,
        afterUserId: null,
        done: false,
        startedAt: deps.clock.now(),
        finishedAt: null,
      } satisfies Omit<JournalInsightRunDoc, "_id">,
    },
    { upsert: true, returnDocument: "after" },
  );
  if (!run || run.done) return false;
  let after = run.afterUserId;
  const batch = deps.config.journal.insightsBatchUsers;
  const days = daysBetween(period.start, period.end) + 1;
  while (ctx.timeLeft() > 2_000) {
    // At most one live entry per author and day: `batch × days` entries hold at least `batch` whole authors.
    const limit = batch * days;
    const rows = await deps.db.journalEntries.find(
      {
        ...(after ? { userId: { $gt: after } } : {}),
        state: "active",
        private: false,
        date: { $gte: period.start, $lte: period.end },
      },
      { sort: { userId: 1 }, limit, projection: { userId: 1 } },
    );
    const authors = [...new Map(rows.map((r) => [r.userId.toHexString(), r.userId])).values()];
    // A full page may have cut the last author's entries short: that author starts the next batch.
    if (rows.length === limit && authors.length > 1) authors.pop();
    if (authors.length === 0) {
      await deps.db.journalInsightRuns.updateOne(
        { _id: runId },
        { $set: { done: true, finishedAt: deps.clock.now() } },
      );
      return false;
    }
    await insightsForAuthors(ctx, kind, period, authors);
    after = authors.at(-1) as ObjectId;
    await ctx.checkpoint("insights-batch");
    await deps.db.journalInsightRuns.updateOne({ _id: runId }, { $set: { afterUserId: after } });
  }
  return true;
}

async function insightsForAuthors(ctx: JobContext, kind: InsightKind, period: Period, authors: ObjectId[]) {
  const { deps } = ctx;
  const previous = periodBefore(kind, period);
  const [people, entries] = await Promise.all([
    deps.db.users.find(
      { _id: { $in: authors }, deletedAt: null },
      { projection: { settings: 1 }, limit: authors.length },
    ),
    deps.db.journalEntries.find(
      { userId: { $in: authors }, state: "active", private: false, date: { $gte: previous.start, $lte: period.end } },
      {
        projection: { userId: 1, date: 1, mood: 1, tags: 1, wordCount: 1 },
        limit: authors.length * (daysBetween(previous.start, period.end) + 1),
      },
    ),
  ]);
  const eligible = people.filter((p) => !settingsOf(p).privateMode);
  const byAuthor = new Map<string, InsightEntry[]>();
  for (const e of entries) {
    const list = byAuthor.get(e.userId.toHexString()) ?? [];
    list.push(e);
    byAuthor.set(e.userId.toHexString(), list);
  }
  const now = deps.clock.now();
  const docs: JournalInsightDoc[] = [];
  for (const person of eligible) {
    const own = byAuthor.get(person._id.toHexString()) ?? [];
    const current = own.filter((e) => e.date >= period.start);
    if (current.length === 0) continue;
    const stats = periodStats(current);
    const before = periodStats(own.filter((e) => e.date <= previous.end));
    docs.push({
      _id: newObjectId(),
      userId: person._id,
      kind,
      periodStart: period.start,
      periodEnd: period.end,
      stats,
      previous: before,
      shift: shiftOf(stats, before),
      summary: summaryOf(kind, stats, before),
      generatedAt: now,
      notifiedAt: null,
    });
  }
  const { insertedCount } = await deps.db.journalInsights.insertManyUnique(docs);
  ctx.count(`${kind}_insights`, insertedCount);
  await ctx.checkpoint("insights-written");
  await announce(
    deps,
    kind,
    period,
    eligible.map((p) => p._id),
  );
}

/** Notifies the authors of insights not yet announced (this batch's, or a crashed run's), then marks them. */
async function announce(deps: Deps, kind: InsightKind, period: Period, authors: ObjectId[]): Promise<void> {
  if (authors.length === 0) return;
  const owed = await deps.db.journalInsights.find(
    { userId: { $in: authors }, kind, periodStart: period.start, notifiedAt: null },
    { projection: { userId: 1, summary: 1 }, limit: authors.length },
  );
  if (owed.length === 0) return;
  await notifyEach(
    deps,
    owed.map((insight) => ({
      type: "system" as const,
      kind: "system" as const,
      recipientId: insight.userId,
      title: kind === "weekly" ? "Your week in your journal" : "Your month in your journal",
      body: insight.summary,
      aggregationKey: `journal_insight:${insight._id.toHexString()}`,
      once: true,
      actionType: "open_screen" as const,
      actionPayload: { screen: "journal_insights", insightId: insight._id.toHexString() },
    })),
  );
  await deps.db.journalInsights.updateMany(
    { _id: { $in: owed.map((o) => o._id) } },
    { $set: { notifiedAt: deps.clock.now() } },
  );
}

export const journalInsightsJob: Job = {
  name: "journal-insights",
  description: "Writes weekly and monthly journal insights for finished periods and announces them.",
  run: writeInsights,
};
