import { z } from "zod";
import { ObjectIdString, PageQuery, pageOf } from "../../core/schemas";
import { ATTACHMENT_SOURCES, INSIGHT_KINDS, type JournalEntryDoc, type JournalInsightDoc, MOODS } from "../../db";
import { isCalendarDay } from "../../platform/time";
import { TimeZone } from "../settings/schema";

/** Counted as people count characters (code points), not UTF-16 units: an emoji is one. */
const codePoints = (text: string) => [...text].length;
const withinChars = (max: number) => (text: string) => codePoints(text) <= max;

export const TITLE_MAX_CHARS = 200;
export const CONTENT_MAX_CHARS = 10_000;

export const Day = z
  .string()
  .refine(isCalendarDay, "a calendar date, YYYY-MM-DD")
  .refine((day) => day >= "1900-01-01", "not before 1900-01-01")
  .meta({ example: "2025-03-14" });

export const Month = z
  .string()
  .regex(/^\d{4}-(0[1-9]|1[0-2])$/, "a month, YYYY-MM")
  .meta({ example: "2025-03" });

/**
 * Tags are the user's own words, normalised so that "#Work Life", "work life" and "WORK-LIFE" are one tag:
 * NFC, lower case, no leading '#', inner spaces as '-', letters, digits, '-' and '_' only, at most 40 characters.
 */
export function normalizeTag(raw: string): string {
  return raw.normalize("NFC").trim().replace(/^#+/, "").toLowerCase().replace(/\s+/g, "-");
}

const TAG_SHAPE = /^[\p{L}\p{N}][\p{L}\p{N}_-]*$/u;

export const Tag = z
  .string()
  .max(100)
  .transform(normalizeTag)
  .refine((tag) => tag.length > 0, "must not be empty")
  .refine(withinChars(40), "at most 40 characters")
  .refine((tag) => TAG_SHAPE.test(tag), "letters, digits, '-' or '_'");

/** Normalised tags, duplicates dropped, in the order first given. */
const Tags = z
  .array(Tag)
  .max(100)
  .transform((tags) => [...new Set(tags)]);

const Title = z.string().trim().min(1).refine(withinChars(TITLE_MAX_CHARS), `at most ${TITLE_MAX_CHARS} characters`);
const Content = z.string().refine(withinChars(CONTENT_MAX_CHARS), `at most ${CONTENT_MAX_CHARS} characters`);
const Location = z.string().trim().min(1).max(200).nullable();
const Weather = z.string().trim().min(1).max(100).nullable();
const AttachmentIds = z
  .array(ObjectIdString)
  .max(100)
  .transform((ids) => [...new Set(ids)])
  .meta({ description: "Ids of the caller's own completed generations (images), in display order" });

export const CreateEntryBody = z
  .object({
    date: Day.meta({ description: "The entry's calendar day in `timezone`: today or earlier (back-filling is fine)" }),
    title: Title,
    content: Content.meta({ description: "Markdown, at most 10,000 characters" }),
    mood: z.enum(MOODS).nullable().optional(),
    location: Location.optional(),
    weather: Weather.optional(),
    tags: Tags.optional(),
    attachmentIds: AttachmentIds.optional(),
    timezone: TimeZone.optional().meta({
      description: "The zone the entry is written in (default: the caller's setting); kept with the entry",
    }),
  })
  .strict()
  .meta({ id: "CreateJournalEntry" });
export type CreateEntryBody = z.infer<typeof CreateEntryBody>;

export const UpdateEntryBody = z
  .object({
    title: Title.optional(),
    content: Content.optional(),
    mood: z.enum(MOODS).nullable().optional(),
    location: Location.optional(),
    weather: Weather.optional(),
    tags: Tags.optional(),
    attachmentIds: AttachmentIds.optional(),
  })
  .strict()
  .refine((body) => Object.values(body).some((v) => v !== undefined), "change at least one field")
  .meta({ id: "UpdateJournalEntry", description: "An entry's date and zone never change" });
export type UpdateEntryBody = z.infer<typeof UpdateEntryBody>;

export const Attachment = z
  .object({
    source: z.enum(ATTACHMENT_SOURCES),
    id: z.string().meta({ description: "The id of what it came from (a generation)" }),
    url: z.string(),
    thumbnailUrl: z.string().nullable(),
    width: z.number().int().nullable(),
    height: z.number().int().nullable(),
    blurhash: z.string().nullable(),
  })
  .meta({ id: "JournalAttachment" });

export const Entry = z
  .object({
    id: z.string(),
    date: z.string(),
    timezone: z.string().meta({ description: "The zone the entry was written in" }),
    title: z.string(),
    content: z.string(),
    mood: z.enum(MOODS).nullable(),
    location: z.string().nullable(),
    weather: z.string().nullable(),
    tags: z.array(z.string()),
    attachments: z.array(Attachment),
    wordCount: z.number().int(),
    readingTimeSeconds: z.number().int(),
    version: z.number().int().meta({ description: "Optimistic lock; also the `ETag`" }),
    private: z.boolean().meta({ description: "Written or edited in private mode: kept out of insights and trends" }),
    createdAt: z.string(),
    updatedAt: z.string(),
    deletedAt: z.string().nullable(),
    restorableUntil: z.string().nullable().meta({ description: "A deleted entry can be restored until then" }),
  })
  .meta({ id: "JournalEntry" });
export type Entry = z.infer<typeof Entry>;

export function toEntry(doc: JournalEntryDoc): Entry {
  return {
    id: doc._id.toHexString(),
    date: doc.date,
    timezone: doc.timezone,
    title: doc.title,
    content: doc.content,
    mood: doc.mood,
    location: doc.location,
    weather: doc.weather,
    tags: doc.tags,
    attachments: doc.attachments.map((a) => ({
      source: a.source,
      id: a.sourceId.toHexString(),
      url: a.url,
      thumbnailUrl: a.thumbnailUrl,
      width: a.width,
      height: a.height,
      blurhash: a.blurhash,
    })),
    wordCount: doc.wordCount,
    readingTimeSeconds: doc.readingTimeSeconds,
    version: doc.version,
    private: doc.private,
    createdAt: doc.createdAt.toISOString(),
    updatedAt: doc.updatedAt.toISOString(),
    deletedAt: doc.deletedAt?.toISOString() ?? null,
    restorableUntil: doc.state === "deleted" ? (doc.purgeAfter?.toISOString() ?? null) : null,
  };
}

export const EntryPage = pageOf(Entry, "JournalEntryPage");
export type EntryPage = z.infer<typeof EntryPage>;

export const EntriesQuery = PageQuery.extend({
  from: Day.optional().meta({ description: "First date, inclusive" }),
  to: Day.optional().meta({ description: "Last date, inclusive" }),
  state: z
    .enum(["active", "deleted"])
    .default("active")
    .meta({ description: "`deleted`: the entries that can still be restored" }),
});
export type EntriesQuery = z.infer<typeof EntriesQuery>;

/** `If-Match` on PATCH and DELETE: the entry's ETag (its version). */
export const IfMatchHeaders = z.object({
  "if-match": z.string().max(200).optional().meta({ description: 'The entry\'s ETag, e.g. "3"', example: '"3"' }),
});

// ── Derived views ───────────────────────────────────────────────────────────────────────────────────────────

export const Streak = z
  .object({
    current: z.number().int().meta({ description: "Consecutive days up to today or yesterday (caller's zone)" }),
    longest: z.number().int(),
    lastEntryDate: z.string().nullable(),
    totalEntries: z.number().int(),
    totalWords: z.number().int(),
  })
  .meta({ id: "JournalStreak" });
export type Streak = z.infer<typeof Streak>;

export const CalendarQuery = z.object({ month: Month });
export const Calendar = z
  .object({
    month: z.string(),
    days: z.array(z.object({ date: z.string(), mood: z.enum(MOODS).nullable(), hasEntry: z.boolean() })),
  })
  .meta({ id: "MoodCalendar" });
export type Calendar = z.infer<typeof Calendar>;

export const TREND_RANGES = { "30d": 30, "90d": 90, "1y": 365 } as const;
export type TrendRange = keyof typeof TREND_RANGES;
export const TrendsQuery = z.object({
  range: z.enum(Object.keys(TREND_RANGES) as [TrendRange, ...TrendRange[]]).default("30d"),
});

const MoodCounts = z.partialRecord(z.enum(MOODS), z.number().int()).meta({ id: "MoodCounts" });
export type MoodCounts = Partial<Record<(typeof MOODS)[number], number>>;

export const Trends = z
  .object({
    range: z.enum(Object.keys(TREND_RANGES) as [TrendRange, ...TrendRange[]]),
    from: z.string(),
    to: z.string().meta({ description: "Today in the caller's zone" }),
    entries: z.number().int(),
    moods: MoodCounts,
    averageMood: z
      .number()
      .nullable()
      .meta({ description: "ecstatic 2, happy 1, neutral 0, sad −1, anxious −1, angry −2" }),
    weeks: z.array(
      z.object({
        weekStart: z.string().meta({ description: "Monday" }),
        entries: z.number().int(),
        moods: MoodCounts,
        averageMood: z.number().nullable(),
      }),
    ),
    weekdays: z.array(
      z.object({
        weekday: z.number().int().meta({ description: "1 = Monday … 7 = Sunday" }),
        entries: z.number().int(),
        moods: MoodCounts,
        averageMood: z.number().nullable(),
      }),
    ),
  })
  .meta({ id: "MoodTrends", description: "Private-mode entries are left out" });
export type Trends = z.infer<typeof Trends>;

export const TagVocabulary = z
  .object({ items: z.array(z.object({ tag: z.string(), count: z.number().int() })) })
  .meta({ id: "JournalTags", description: "The caller's tags over live entries, most used first" });
export type TagVocabulary = z.infer<typeof TagVocabulary>;

export const TagsQuery = z.object({
  prefix: z.string().max(40).transform(normalizeTag).optional().meta({ description: "Only tags starting with it" }),
});

const PeriodStatsView = z
  .object({
    entries: z.number().int(),
    words: z.number().int(),
    averageWords: z.number().int(),
    longestStreak: z.number().int(),
    moods: z.array(z.object({ mood: z.enum(MOODS), count: z.number().int() })),
    tags: z.array(z.object({ tag: z.string(), count: z.number().int() })),
    averageMood: z.number().nullable(),
  })
  .meta({ id: "JournalPeriodStats" });

export const Insight = z
  .object({
    id: z.string(),
    kind: z.enum(INSIGHT_KINDS),
    periodStart: z.string(),
    periodEnd: z.string(),
    stats: PeriodStatsView,
    previous: PeriodStatsView,
    shift: z.object({ entries: z.number().int(), words: z.number().int(), averageMood: z.number().nullable() }),
    summary: z.string(),
    generatedAt: z.string(),
  })
  .meta({ id: "JournalInsight" });
export type Insight = z.infer<typeof Insight>;
export const InsightPage = pageOf(Insight, "JournalInsightPage");
export type InsightPage = z.infer<typeof InsightPage>;
export const InsightsQuery = PageQuery.extend({ kind: z.enum(INSIGHT_KINDS).default("weekly") });

export function toInsight(doc: JournalInsightDoc): Insight {
  return {
    id: doc._id.toHexString(),
    kind: doc.kind,
    periodStart: doc.periodStart,
    periodEnd: doc.periodEnd,
    stats: doc.stats,
    previous: doc.previous,
    shift: doc.shift,
    summary: doc.summary,
    generatedAt: doc.generatedAt.toISOString(),
  };
}

// ── Search ──────────────────────────────────────────────────────────────────────────────────────────────────

const csv = <T extends z.ZodType<unknown, string>>(item: T, max: number) =>
  z
    .string()
    .max(2_000)
    .transform((v) =>
      v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item).max(max));

export const SearchQuery = PageQuery.extend({
  q: z.string().trim().max(200).optional().meta({ description: "Words to find in title, content and tags" }),
  mood: csv(z.enum(MOODS), MOODS.length).optional().meta({ description: "Comma-separated moods (any of them)" }),
  tags: csv(Tag, 20).optional().meta({ description: "Comma-separated tags (all of them)" }),
  from: Day.optional(),
  to: Day.optional(),
});
export type SearchQuery = z.infer<typeof SearchQuery>;

export const Snippet = z
  .object({
    field: z.enum(["title", "content", "tags"]),
    text: z.string(),
    highlights: z
      .array(z.object({ start: z.number().int(), end: z.number().int() }))
      .meta({ description: "Matched words as [start, end) offsets into `text` (UTF-16 units, as JS strings)" }),
  })
  .meta({ id: "JournalSnippet" });
export type Snippet = z.infer<typeof Snippet>;

const Facet = z.array(z.object({ value: z.string(), count: z.number().int() }));

export const SearchResult = z
  .object({
    items: z.array(z.object({ entry: Entry, snippet: Snippet.nullable(), score: z.number().nullable() })),
    facets: z
      .object({ mood: Facet, tags: Facet, month: Facet })
      .meta({ description: "Counts over every entry the query and filters match (not just this page)" }),
    total: z.number().int(),
    nextCursor: z.string().nullable(),
  })
  .meta({ id: "JournalSearchResult" });
export type SearchResult = z.infer<typeof SearchResult>;
