import { IdParam } from "../../core/schemas";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, roleRoute, viewerRoute } from "../../http/routes";
import { attributionReport } from "./attribution";
import { creatorAnalytics, postAnalytics } from "./creator";
import {
  AttributionQuery,
  AttributionReport,
  CreatorAnalytics,
  CreatorAnalyticsQuery,
  DauQuery,
  DauReport,
  IngestEventsBody,
  IngestEventsResult,
  PostAnalytics,
  RetentionQuery,
  RetentionReport,
} from "./schema";
import { dailyActiveUsers, ingestEvents, retentionReport } from "./service";

const ingestRoute = viewerRoute({
  method: "post",
  path: "/v1/events",
  tags: ["analytics"],
  summary: "Record app analytics events",
  description:
    "Accepts 1–100 events, buffers them with one write and answers 202. Give each event an `eventId` (a UUID " +
    "made once per event) and retry freely: an event already received is recorded once (`duplicates` counts " +
    "them); events without one get a server-assigned id. `properties` is any JSON object (at most 8 KiB, 16 " +
    "levels) and reaches ClickHouse as the same JSON. A job moves buffered events to ClickHouse every 5 " +
    "minutes. Authentication is optional: with a valid access token every event of the request carries the " +
    "caller's user id; without one the events are anonymous (counted by device); a token that fails " +
    "verification is a 401, never silently anonymous. Bodies are capped at ANALYTICS_MAX_REQUEST_BYTES (413), " +
    "and one address may send ANALYTICS_INGEST_BYTES_PER_IP per ANALYTICS_INGEST_WINDOW_SECONDS (429 " +
    "`byte_budget` with Retry-After).",
  maxBodyBytes: (config) => config.analytics.maxRequestBytes,
  byteBudget: (config) => ({
    name: "events",
    bytes: config.analytics.ingestBytesPerIp,
    windowSeconds: config.analytics.ingestWindowSeconds,
  }),
  request: jsonBody(IngestEventsBody),
  responses: { 202: json(IngestEventsResult, "Events accepted") },
});

const dauRoute = roleRoute(["admin"], {
  method: "get",
  path: "/v1/admin/analytics/dau",
  tags: ["admin", "analytics"],
  summary: "Daily active users",
  description: "Distinct active users per UTC day (anonymous traffic counted by device), from `dau_mv`.",
  request: { query: DauQuery },
  responses: { 200: json(DauReport, "One item per day with activity") },
});

const retentionRoute = roleRoute(["admin"], {
  method: "get",
  path: "/v1/admin/analytics/retention",
  tags: ["admin", "analytics"],
  summary: "Retention by cohort",
  description:
    "Classic N-day retention of signed-in users. A user's cohort is their first active UTC day (the first day " +
    "with any event sent signed in); `users` is the cohort's size and `dayN` how many of them were active " +
    "exactly N days after it (not on-or-after). `dayN` is null while that day has not ended. Anonymous devices " +
    "form no cohorts. `from`/`to` select cohorts (inclusive; default the last 30 days); cohorts without users " +
    "are left out. One ClickHouse query.",
  request: { query: RetentionQuery },
  responses: { 200: json(RetentionReport, "One item per cohort day with at least one user, oldest first") },
});

const creatorAnalyticsRoute = authedRoute({
  method: "get",
  path: "/v1/me/analytics",
  tags: ["analytics"],
  summary: "The caller's creator analytics, per day",
  description:
    "A series ready to plot: every day of [from, to] (calendar days of the user's time zone, `timezone`; " +
    "default the last 30 days), zeros included, with totals. `profileViews` counts distinct viewers per day " +
    "(never the user), `impressions` one per viewer per post per day (the app's `post_impression` events), " +
    "`engagements` votes, comments, shares and saves on the user's posts by others (votes and saves net of " +
    "those taken back), `followersGained`/`followersLost` follows and unfollows, `gemsEarned` gems credited. " +
    "Numbers appear once the analytics flush has moved the events (every 5 minutes). One ClickHouse query.",
  request: { query: CreatorAnalyticsQuery },
  responses: { 200: json(CreatorAnalytics, "One item per day, oldest first") },
});

const postAnalyticsRoute = authedRoute({
  method: "get",
  path: "/v1/posts/{id}/analytics",
  tags: ["analytics", "posts"],
  summary: "A post's analytics, per day (its author only)",
  description:
    "Like `GET /v1/me/analytics` for one post: impressions, votes, comments, shares, saves and engagements per " +
    "day since the post was created. Anyone but the author gets 404, as for a missing post.",
  request: { params: IdParam, query: CreatorAnalyticsQuery },
  responses: { 200: json(PostAnalytics, "One item per day, oldest first"), ...problems(404) },
});

const attributionRoute = roleRoute(["admin"], {
  method: "get",
  path: "/v1/admin/analytics/attribution",
  tags: ["admin", "analytics"],
  summary: "Signups and day-7 retention by first-touch source",
  description:
    "Accounts created on the UTC days [from, to] (default the last 30), grouped by the first-touch `source` " +
    "they signed up with (null: none sent), largest first. `day7` counts those active (any event sent signed " +
    "in) exactly 7 days after their signup day, among `day7Eligible`, the signups whose seventh day has ended. " +
    "One ClickHouse query.",
  request: { query: AttributionQuery },
  responses: { 200: json(AttributionReport, "One item per source") },
});

export const analyticsRoutes = router()
  .openapi(ingestRoute, async (c) => {
    const { events } = c.req.valid("json");
    return c.json(await ingestEvents(c.var.deps, { userId: c.var.viewer?.id ?? null }, events), 202);
  })
  .openapi(dauRoute, async (c) => c.json(await dailyActiveUsers(c.var.deps, c.req.valid("query")), 200))
  .openapi(retentionRoute, async (c) => c.json(await retentionReport(c.var.deps, c.req.valid("query")), 200))
  .openapi(creatorAnalyticsRoute, async (c) => {
    const { viewer } = c.var;
    return c.json(await creatorAnalytics(c.var.deps, viewer, c.req.valid("query"), viewer.timezone), 200);
  })
  .openapi(postAnalyticsRoute, async (c) => {
    const { viewer } = c.var;
    const id = c.req.valid("param").id;
    return c.json(await postAnalytics(c.var.deps, viewer, id, c.req.valid("query"), viewer.timezone), 200);
  })
  .openapi(attributionRoute, async (c) => c.json(await attributionReport(c.var.deps, c.req.valid("query")), 200));
