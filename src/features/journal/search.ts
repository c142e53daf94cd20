import type { Viewer } from "../../core/viewer";
import type { JournalEntryDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { Document, Filter } from "../../platform/mongo/client";
import { decodeDateCursor, decodeScoreCursor, encodeDateCursor, encodeScoreCursor } from "./cursors";
import { type SearchQuery, type SearchResult, toEntry } from "./schema";
import { snippetFor } from "./text";

/** How many tag facets come back (the most used within the matches). */
const TAG_FACETS = 20;

type Scored = JournalEntryDoc & { _score?: number };
interface FacetRow {
  _id: string | null;
  count: number;
}
type SearchAnswer = {
  items: Scored[];
  mood: FacetRow[];
  tags: FacetRow[];
  month: FacetRow[];
  total: { n: number }[];
};

/**
 * GET /v1/journal/search: one aggregation over the caller's live entries (one MongoDB round trip). With `q`, a
 * `$text` match on the owner-scoped text index (title weighs 5, tags 3, content 1), ordered by relevance
 * (`textScore`, then id); without, newest date first. Filters (moods: any of; tags: all of; date range) narrow
 * the set, and `$facet` answers both the page and the counts per mood, tag and month over everything matched.
 */
export async function searchEntries(deps: Deps, viewer: Viewer, query: SearchQuery): Promise<SearchResult> {
  const text = query.q && query.q.length > 0 ? query.q : null;
  const match: Filter = { userId: new ObjectId(viewer.id), state: "active" };
  if (text) match.$text = { $search: text };
  if (query.mood?.length) match.mood = { $in: query.mood };
  if (query.tags?.length) match.tags = { $all: query.tags };
  if (query.from || query.to) {
    match.date = { ...(query.from ? { $gte: query.from } : {}), ...(query.to ? { $lte: query.to } : {}) };
  }
  const page: Document[] = [];
  if (text) {
    page.push({ $sort: { _score: -1, _id: -1 } });
    if (query.cursor) {
      const after = decodeScoreCursor(query.cursor);
      page.push({
        $match: { $or: [{ _score: { $lt: after.score } }, { _score: after.score, _id: { $lt: after.id } }] },
      });
    }
  } else {
    page.push({ $sort: { date: -1, _id: -1 } });
    if (query.cursor) page.push({ $match: { date: { $lt: decodeDateCursor(query.cursor).date } } });
  }
  page.push({ $limit: query.limit + 1 });

  const [answer] = await deps.db.journalEntries.aggregate<SearchAnswer>([
    { $match: match },
    ...(text ? [{ $addFields: { _score: { $meta: "textScore" } } }] : []),
    {
      $facet: {
        items: page,
        mood: [
          { $match: { mood: { $ne: null } } },
          { $group: { _id: "$mood", count: { $sum: 1 } } },
          { $sort: { count: -1, _id: 1 } },
        ],
        tags: [
          { $unwind: "$tags" },
          { $group: { _id: "$tags", count: { $sum: 1 } } },
          { $sort: { count: -1, _id: 1 } },
          { $limit: TAG_FACETS },
        ],
        month: [{ $group: { _id: { $substrBytes: ["$date", 0, 7] }, count: { $sum: 1 } } }, { $sort: { _id: -1 } }],
        total: [{ $count: "n" }],
      },
    },
  ]);
  const docs = answer?.items ?? [];
  const items = docs.slice(0, query.limit);
  const last = items.at(-1);
  const facet = (rows: FacetRow[] | undefined) =>
    (rows ?? []).filter((r) => r._id !== null).map((r) => ({ value: String(r._id), count: r.count }));
  return {
    items: items.map((doc) => {
      const { _score, ...entry } = doc;
      return {
        entry: toEntry(entry),
        snippet: text ? snippetFor(entry, text) : null,
        score: typeof _score === "number" ? _score : null,
      };
    }),
    facets: { mood: facet(answer?.mood), tags: facet(answer?.tags), month: facet(answer?.month) },
    total: answer?.total[0]?.n ?? 0,
    nextCursor:
      docs.length > query.limit && last
        ? text
          ? encodeScoreCursor({ score: last._score ?? 0, id: last._id })
          : encodeDateCursor({ date: last.date, id: last._id })
        : null,
  };
}
