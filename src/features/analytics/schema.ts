import { z } from "zod";
import { clientJsonObject } from "../../core/schemas";

/** `properties` as the API takes them; stored and delivered to ClickHouse as the same JSON. */
export const PROPERTIES_LIMITS = { maxBytes: 8 * 1024, maxDepth: 16, maxKeyLength: 64 };

/** Any UUID (case-insensitive, kept lower-case as ClickHouse prints it). */
const EventId = z
  .string()
  .regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, "a UUID")
  .transform((id) => id.toLowerCase());

export const ClientEvent = z
  .object({
    eventId: EventId.optional().meta({
      description:
        "The client's id for this event (a UUID it generates once and sends again on retry): an event with an id " +
        "already received is not recorded twice, in the buffer or in ClickHouse. Without it the server assigns one.",
      example: "0b6f4c3e-6a9c-4c2e-9a43-2f1d5f3f7e10",
    }),
    event: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, "1–64 letters, digits, _ . : -")
      .meta({ example: "screen_view" }),
    timestamp: z.iso.datetime({ offset: true }).meta({ example: "2026-11-23T12:00:00.000Z" }),
    sessionId: z.string().min(1).max(128),
    deviceId: z.string().min(1).max(128),
    platform: z.enum(["ios", "android", "web"]),
    appVersion: z.string().min(1).max(32),
    properties: clientJsonObject(PROPERTIES_LIMITS).optional(),
    source: z.string().min(1).max(64).optional().meta({ example: "instagram" }),
    medium: z.string().min(1).max(64).optional().meta({ example: "social" }),
    campaign: z.string().min(1).max(128).optional(),
    referrer: z
      .string()
      .min(1)
      .max(512)
      .optional()
      .meta({ description: "Referring page or app; a web address is kept without its query and fragment" }),
  })
  .strict()
  .meta({
    id: "ClientEvent",
    description:
      "`post_impression` (a post shown on screen) must carry `properties.postId`; it feeds the author's analytics " +
      "(one impression per viewer per post per day).",
  });

/** First-touch attribution as the app captured it (install referrer, deep link): campaign parameters. */
export const AttributionInput = z
  .object({
    source: z.string().min(1).max(64).optional().meta({ example: "instagram" }),
    medium: z.string().min(1).max(64).optional().meta({ example: "social" }),
    campaign: z.string().min(1).max(128).optional().meta({ example: "spring_launch" }),
    referrer: z.string().min(1).max(512).optional().meta({ example: "https://www.instagram.com/" }),
  })
  .strict()
  .meta({ id: "AttributionInput" });

export const IngestEventsBody = z
  .object({ events: z.array(ClientEvent).min(1, "at least 1 event").max(100, "at most 100 events per request") })
  .strict()
  .meta({ id: "IngestEvents" });

export const IngestEventsResult = z
  .object({
    accepted: z.number().int().meta({ description: "Events of the request now recorded (new or received before)" }),
    duplicates: z
      .number()
      .int()
      .meta({ description: "Of those, events whose `eventId` had been received before (recorded once)" }),
  })
  .meta({ id: "IngestEventsResult" });

/** Days ClickHouse's `Date` holds with room for day 30 (outside it, values would silently saturate or wrap). */
export const FIRST_REPORT_DAY = "1970-01-01";
export const LAST_REPORT_DAY = "2099-12-31";
const day = z.iso
  .date()
  .refine(
    (d) => d >= FIRST_REPORT_DAY && d <= LAST_REPORT_DAY,
    `must be a day from ${FIRST_REPORT_DAY} to ${LAST_REPORT_DAY}`,
  )
  .meta({ example: "2026-11-23" });

export const DauQuery = z.object({
  from: day.optional().meta({ description: "First UTC day (default: 29 days before `to`)" }),
  to: day.optional().meta({ description: "Last UTC day, inclusive (default: today)" }),
});

export const DauReport = z
  .object({ items: z.array(z.object({ date: z.string(), users: z.number().int() })) })
  .meta({ id: "DailyActiveUsers" });

export const RetentionQuery = z.object({
  from: day.optional().meta({ description: "First cohort (UTC day; default: 29 days before `to`)" }),
  to: day.optional().meta({ description: "Last cohort (UTC day), inclusive (default: today)" }),
});

const returned = (n: number) =>
  z
    .number()
    .int()
    .nullable()
    .meta({
      description:
        `Members of the cohort active exactly ${n} day${n === 1 ? "" : "s"} after their first day (UTC); ` +
        "null while that day has not ended yet.",
    });

export const RetentionCohort = z
  .object({
    cohort: z.string().meta({ description: "The cohort's first active day (UTC)", example: "2026-11-23" }),
    users: z.number().int().meta({ description: "Signed-in users whose first active day this is" }),
    day1: returned(1),
    day7: returned(7),
    day30: returned(30),
  })
  .meta({ id: "RetentionCohort" });

export const RetentionReport = z.object({ items: z.array(RetentionCohort) }).meta({ id: "RetentionReport" });

const count = (description: string) => z.number().int().meta({ description });

export const CreatorAnalyticsQuery = z.object({
  from: day.optional().meta({ description: "First day, in the user's time zone (default: 29 days before `to`)" }),
  to: day.optional().meta({ description: "Last day, inclusive, in the user's time zone (default: today)" }),
});

const creatorMetrics = {
  profileViews: count("Distinct people (or signed-out devices) who opened the profile that day"),
  impressions: count("Posts of the user shown to someone, once per viewer per post per day"),
  engagements: count("Votes (net of votes taken back), comments, shares and saves (net) on the user's posts"),
  followersGained: count("Follows the user gained"),
  followersLost: count("Follows the user lost (unfollows, and follows a block ended)"),
  gemsEarned: count("Gems credited to the user (votes, bonuses, check-ins, gifts received)"),
};

export const CreatorAnalyticsDay = z
  .object({ date: z.string().meta({ example: "2026-11-23" }), ...creatorMetrics })
  .meta({ id: "CreatorAnalyticsDay" });

export const CreatorAnalytics = z
  .object({
    timezone: z.string().meta({ description: "The zone whose calendar days `date` counts", example: "UTC" }),
    from: z.string(),
    to: z.string(),
    totals: z.object(creatorMetrics),
    items: z.array(CreatorAnalyticsDay).meta({ description: "Every day of [from, to], oldest first, zeros included" }),
  })
  .meta({ id: "CreatorAnalytics" });

const postMetrics = {
  impressions: count("Times the post was shown, once per viewer per day"),
  votes: count("Votes cast, net of votes taken back"),
  comments: count("Comments and replies by others"),
  shares: count("Shares by others"),
  saves: count("Saves, net of saves removed"),
  engagements: count("votes + comments + shares + saves"),
};

export const PostAnalyticsDay = z
  .object({ date: z.string().meta({ example: "2026-11-23" }), ...postMetrics })
  .meta({ id: "PostAnalyticsDay" });

export const PostAnalytics = z
  .object({
    postId: z.string(),
    timezone: z.string(),
    from: z.string(),
    to: z.string(),
    totals: z.object(postMetrics),
    items: z.array(PostAnalyticsDay).meta({ description: "Every day of [from, to] since the post was created" }),
  })
  .meta({ id: "PostAnalytics" });

export const AttributionQuery = z.object({
  from: day.optional().meta({ description: "First signup day (UTC; default: 29 days before `to`)" }),
  to: day.optional().meta({ description: "Last signup day (UTC), inclusive (default: today)" }),
});

export const AttributionSource = z
  .object({
    source: z.string().nullable().meta({ description: "First-touch source; null for signups that sent none" }),
    signups: z.number().int().meta({ description: "Accounts created in the range with this source" }),
    day7Eligible: z.number().int().meta({ description: "Of those, the accounts whose seventh day has ended" }),
    day7: z.number().int().meta({ description: "Of the eligible, those active exactly 7 days after signing up" }),
    day7Rate: z
      .number()
      .nullable()
      .meta({ description: "day7 / day7Eligible (4 decimals); null while none is eligible" }),
  })
  .meta({ id: "AttributionSource" });

export const AttributionReport = z
  .object({ from: z.string(), to: z.string(), items: z.array(AttributionSource) })
  .meta({ id: "AttributionReport" });

export type ClientEvent = z.infer<typeof ClientEvent>;
export type CreatorAnalytics = z.infer<typeof CreatorAnalytics>;
export type PostAnalytics = z.infer<typeof PostAnalytics>;
export type AttributionSource = z.infer<typeof AttributionSource>;
export type AttributionReport = z.infer<typeof AttributionReport>;
export type AttributionInput = z.infer<typeof AttributionInput>;
export type IngestEventsResult = z.infer<typeof IngestEventsResult>;
export type DauReport = z.infer<typeof DauReport>;
export type RetentionCohort = z.infer<typeof RetentionCohort>;
export type RetentionReport = z.infer<typeof RetentionReport>;
