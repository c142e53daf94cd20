import { IdParam } from "../../core/schemas";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute } from "../../http/routes";
import {
  Calendar,
  CalendarQuery,
  CreateEntryBody,
  EntriesQuery,
  Entry,
  EntryPage,
  IfMatchHeaders,
  InsightPage,
  InsightsQuery,
  SearchQuery,
  SearchResult,
  Streak,
  TagsQuery,
  TagVocabulary,
  Trends,
  TrendsQuery,
  UpdateEntryBody,
} from "./schema";
import { searchEntries } from "./search";
import { createEntry, deleteEntry, getEntry, listEntries, restoreEntry, updateEntry } from "./service";
import { getCalendar, getStreak, getTags, getTrends, listInsights } from "./views";

const tags = ["journal"];
const PRIVATE = "Always private: another caller gets the 404 a missing entry gets.";

const withEtag = (description: string) => ({
  ...json(Entry, description),
  headers: { ETag: { description: "The entry's version, for If-Match", schema: { type: "string" as const } } },
});

const createRoute = authedRoute({
  method: "post",
  path: "/v1/journal/entries",
  tags,
  summary: "Write the entry of a day",
  description:
    "One entry per calendar date (a second for the same date is a 409 `entry_exists`). `date` is today or earlier " +
    "in the entry's zone (`timezone`, default the caller's setting), which the entry keeps. Title ≤ 200 " +
    "characters, markdown content ≤ 10,000; tags are normalised (`#Work Life` → `work-life`); `attachmentIds` " +
    "name the caller's own completed generations (at most JOURNAL_MAX_ATTACHMENTS). Word count and reading time " +
    "are computed by the server. Written in private mode, the entry stays out of insights and trends for good.",
  request: jsonBody(CreateEntryBody),
  responses: { 201: withEtag("The entry"), ...problems(409) },
});

const listRoute = authedRoute({
  method: "get",
  path: "/v1/journal/entries",
  tags,
  summary: "The caller's entries, newest date first",
  description: "`from`/`to` bound the dates (inclusive); `state=deleted` lists deleted entries still restorable.",
  request: { query: EntriesQuery },
  responses: { 200: json(EntryPage, "A page of entries") },
});

const getRoute = authedRoute({
  method: "get",
  path: "/v1/journal/entries/{id}",
  tags,
  summary: "One entry, with its ETag",
  description: PRIVATE,
  request: { params: IdParam },
  responses: { 200: withEtag("The entry"), ...problems(404) },
});

const patchRoute = authedRoute({
  method: "patch",
  path: "/v1/journal/entries/{id}",
  tags,
  summary: "Edit an entry (If-Match required)",
  description:
    `${PRIVATE} Needs \`If-Match\` with the entry's ETag: without it 428; with a version that is no longer ` +
    "current 412, carrying the current version (`ETag` header, `currentVersion` member) and changing nothing. Of " +
    "two edits made on the same version, exactly one wins. The date and zone never change.",
  request: { params: IdParam, headers: IfMatchHeaders, ...jsonBody(UpdateEntryBody) },
  responses: { 200: withEtag("The entry after the edit"), ...problems(404, 412, 428) },
});

const deleteRoute = authedRoute({
  method: "delete",
  path: "/v1/journal/entries/{id}",
  tags,
  summary: "Delete an entry (If-Match required; restorable)",
  description: `${PRIVATE} As PATCH for If-Match. Restorable for JOURNAL_RESTORE_DAYS, then purged.`,
  request: { params: IdParam, headers: IfMatchHeaders },
  responses: { 204: { description: "Deleted" }, ...problems(404, 412, 428) },
});

const restoreRoute = authedRoute({
  method: "post",
  path: "/v1/journal/entries/{id}/restore",
  tags,
  summary: "Restore a deleted entry",
  description:
    `${PRIVATE} Within JOURNAL_RESTORE_DAYS of its deletion. If another entry was written for its date since, ` +
    "409 `entry_exists`. `If-Match` is optional here (checked when sent).",
  request: { params: IdParam, headers: IfMatchHeaders },
  responses: { 200: withEtag("The restored entry"), ...problems(404, 409, 412) },
});

const streakRoute = authedRoute({
  method: "get",
  path: "/v1/journal/streak",
  tags,
  summary: "Writing streak and totals",
  description:
    "Consecutive days with an entry, counted on the entries' own dates; `current` is alive while the last " +
    "entry is today or yesterday in the caller's zone. Recomputed from the entries (cached until the next write), " +
    "so back-filled and deleted entries count exactly.",
  responses: { 200: json(Streak, "Streak") },
});

const calendarRoute = authedRoute({
  method: "get",
  path: "/v1/journal/calendar",
  tags,
  summary: "Mood calendar of a month",
  description: "Every day of the month with its entry's mood. Cached per month; a write to that month supersedes it.",
  request: { query: CalendarQuery },
  responses: { 200: json(Calendar, "Calendar") },
});

const trendsRoute = authedRoute({
  method: "get",
  path: "/v1/journal/trends",
  tags,
  summary: "Mood trends over 30 days, 90 days or a year",
  description:
    "Moods per ISO week (Monday first) and per weekday, up to today in the caller's zone. Cached up to " +
    "JOURNAL_TRENDS_CACHE_TTL_SECONDS (15 min), superseded by any write. Private-mode entries are left out.",
  request: { query: TrendsQuery },
  responses: { 200: json(Trends, "Trends") },
});

const insightsRoute = authedRoute({
  method: "get",
  path: "/v1/journal/insights",
  tags,
  summary: "Weekly or monthly insights",
  description:
    "Deterministic statistics of each finished week or month (entries, words, streak, most frequent moods and " +
    "tags, the shift against the period before), written by the `journal-insights` job and announced with a " +
    "notification. Never from private-mode entries; none while private mode is on.",
  request: { query: InsightsQuery },
  responses: { 200: json(InsightPage, "A page of insights") },
});

const searchRoute = authedRoute({
  method: "get",
  path: "/v1/journal/search",
  tags,
  summary: "Search the caller's journal",
  description:
    'Full-text over title, content and tags (`q`, MongoDB `$text`: words, "quoted phrases", -excluded), ordered ' +
    "by relevance; without `q`, newest first. Filters: `mood` (any of, comma-separated), `tags` (all of), " +
    "`from`/`to`. `facets` count moods, tags and months over every match (not only this page); each item has a " +
    "snippet with the matched words' offsets.",
  request: { query: SearchQuery },
  responses: { 200: json(SearchResult, "Results") },
});

const tagsRoute = authedRoute({
  method: "get",
  path: "/v1/journal/tags",
  tags,
  summary: "The caller's tag vocabulary with counts",
  description: "Counted over live entries (exact whatever edits race: recounted from the entries), most used first.",
  request: { query: TagsQuery },
  responses: { 200: json(TagVocabulary, "Tags") },
});

export const journalRoutes = router()
  .openapi(createRoute, async (c) => {
    const { entry, etag } = await createEntry(c.var.deps, c.var.viewer, c.req.valid("json"));
    return c.json(entry, 201, { ETag: etag, Location: `/v1/journal/entries/${entry.id}` });
  })
  .openapi(listRoute, async (c) => c.json(await listEntries(c.var.deps, c.var.viewer, c.req.valid("query")), 200))
  .openapi(getRoute, async (c) => {
    const { entry, etag } = await getEntry(c.var.deps, c.var.viewer, c.req.valid("param").id);
    return c.json(entry, 200, { ETag: etag });
  })
  .openapi(patchRoute, async (c) => {
    const { entry, etag } = await updateEntry(
      c.var.deps,
      c.var.viewer,
      c.req.valid("param").id,
      c.req.valid("header")["if-match"],
      c.req.valid("json"),
    );
    return c.json(entry, 200, { ETag: etag });
  })
  .openapi(deleteRoute, async (c) => {
    await deleteEntry(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("header")["if-match"]);
    return c.body(null, 204);
  })
  .openapi(restoreRoute, async (c) => {
    const { entry, etag } = await restoreEntry(
      c.var.deps,
      c.var.viewer,
      c.req.valid("param").id,
      c.req.valid("header")["if-match"],
    );
    return c.json(entry, 200, { ETag: etag });
  })
  .openapi(streakRoute, async (c) => c.json(await getStreak(c.var.deps, c.var.redis, c.var.viewer), 200))
  .openapi(calendarRoute, async (c) =>
    c.json(await getCalendar(c.var.deps, c.var.redis, c.var.viewer, c.req.valid("query").month), 200),
  )
  .openapi(trendsRoute, async (c) =>
    c.json(await getTrends(c.var.deps, c.var.redis, c.var.viewer, c.req.valid("query").range), 200),
  )
  .openapi(insightsRoute, async (c) => c.json(await listInsights(c.var.deps, c.var.viewer, c.req.valid("query")), 200))
  .openapi(searchRoute, async (c) => c.json(await searchEntries(c.var.deps, c.var.viewer, c.req.valid("query")), 200))
  .openapi(tagsRoute, async (c) =>
    c.json(await getTags(c.var.deps, c.var.redis, c.var.viewer, c.req.valid("query").prefix), 200),
  );
