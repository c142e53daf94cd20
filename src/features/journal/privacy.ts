import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { Collection, Filter } from "../../platform/mongo/client";
import { deleteKeys, runOp } from "../../platform/redis-ops";
import { TREND_RANGES } from "./schema";

/**
 * The journal's part of GDPR export and erasure (wired in by features/privacy): the caller's entries (live and
 * deleted-but-restorable) and insights. Entries are the person's own writing: exported whole.
 */

const PAGE = 500;

export interface ExportPage {
  section: string;
  items: unknown[];
}

/** Plain JSON data: ids as hex strings, dates as ISO strings. */
export function plain(value: unknown): unknown {
  if (value instanceof ObjectId) return value.toHexString();
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

const idOf = (userId: ObjectId | string) => (typeof userId === "string" ? new ObjectId(userId) : userId);

/** Every document of `filter` in `_id` order, a page at a time (bounded memory whatever the account's size). */
export async function* pagesOf<T extends { _id: ObjectId }>(
  collection: Collection<T>,
  section: string,
  filter: Filter,
): AsyncGenerator<ExportPage> {
  let after: ObjectId | null = null;
  for (;;) {
    const docs: T[] = await collection.find(after ? { $and: [filter, { _id: { $gt: after } }] } : filter, {
      sort: { _id: 1 },
      limit: PAGE,
    });
    if (docs.length > 0) yield { section, items: docs.map(plain) };
    if (docs.length < PAGE) return;
    after = (docs.at(-1) as T)._id;
  }
}

export async function* exportSections(deps: Deps, userId: ObjectId | string): AsyncGenerator<ExportPage> {
  const id = idOf(userId);
  yield* pagesOf(deps.db.journalEntries, "journalEntries", { userId: id });
  yield* pagesOf(deps.db.journalInsights, "journalInsights", { userId: id });
}

/**
 * Erases the account's journal: its cached views first (they hold moods by day), then insights and entries.
 * Idempotent and restartable: each step removes what is left of its part, and a rerun finds nothing more.
 */
export async function eraseUser(deps: Deps, userId: ObjectId | string): Promise<void> {
  const id = idOf(userId);
  const hex = id.toHexString();
  const months = await deps.db.journalEntries.aggregate<{ _id: string }>([
    { $match: { userId: id } },
    { $group: { _id: { $substrBytes: ["$date", 0, 7] } } },
  ]);
  await runOp(
    deps.redis,
    deleteKeys([
      deps.keys.journalGeneration(hex),
      deps.keys.journalStreak(hex),
      deps.keys.journalTags(hex),
      ...Object.values(TREND_RANGES).map((days) => deps.keys.moodTrend(hex, days)),
      ...months.flatMap((m) => [deps.keys.journalCalendar(hex, m._id), deps.keys.journalMonthGeneration(hex, m._id)]),
    ]),
  );
  await deps.db.journalInsights.deleteMany({ userId: id });
  await deps.db.journalEntries.deleteMany({ userId: id });
}
