import { ApiError, type FieldError } from "../../core/errors";
import type { AnalyticsEventDoc } from "../../db";
import type { Deps } from "../../deps";
import { asClickHouseOutage } from "../../platform/clickhouse";
import { isObjectIdHex, newObjectId, newUuid } from "../../platform/ids";
import { toStoredJson } from "../../platform/mongo/client-json";
import { HOUR_MS, utcDay } from "../../platform/time";
import { cleanReferrer } from "./attribution";
import { type DayRange, dayRange, type RetentionRow, retentionCohort } from "./reports";
import type { ClientEvent, DauReport, IngestEventsResult, RetentionReport } from "./schema";

/**
 * Buffers client events in `analytics_events` with one write round trip. An event keeps the client's
 * `eventId` when it sent one (the buffer's unique index refuses a copy still buffered, and the flush skips one
 * already in ClickHouse), so a request retried after an answer was lost records each event once; otherwise
 * the id is assigned here. Properties are stored as their JSON text, never interpreted as EJSON.
 */
export async function ingestEvents(
  deps: Deps,
  caller: { userId: string | null },
  events: ClientEvent[],
): Promise<IngestEventsResult> {
  const now = deps.clock.now();
  const { maxEventAgeHours, maxClockSkewSeconds } = deps.config.analytics;
  const oldest = now.getTime() - maxEventAgeHours * HOUR_MS;
  const newest = now.getTime() + maxClockSkewSeconds * 1000;

  const errors: FieldError[] = [];
  const docs = events.map((e, i): AnalyticsEventDoc => {
    const timestamp = new Date(e.timestamp);
    if (timestamp.getTime() < oldest || timestamp.getTime() > newest) {
      errors.push({
        path: `events.${i}.timestamp`,
        message: `must be within the last ${maxEventAgeHours} h and not more than ${maxClockSkewSeconds} s ahead`,
      });
    }
    // Impressions count toward the post's author, found by the post's id.
    const postId = e.properties?.postId;
    if (e.event === "post_impression" && (typeof postId !== "string" || !isObjectIdHex(postId))) {
      errors.push({ path: `events.${i}.properties.postId`, message: "a post_impression needs the post's id" });
    }
    return {
      _id: newObjectId(),
      eventId: e.eventId ?? newUuid(),
      ...(e.eventId ? { clientEventId: true } : {}),
      event: e.event,
      userId: caller.userId,
      sessionId: e.sessionId,
      deviceId: e.deviceId,
      platform: e.platform,
      appVersion: e.appVersion,
      propertiesJson: toStoredJson(e.properties ?? {}),
      source: e.source ?? null,
      campaign: e.campaign ?? null,
      medium: e.medium ?? null,
      referrer: e.referrer === undefined ? null : cleanReferrer(e.referrer),
      timestamp,
      receivedAt: now,
      flushBatchId: null,
    };
  });
  if (errors.length) throw ApiError.validation(errors);

  const { duplicateCount } = await deps.db.analyticsEvents.insertManyUnique(docs);
  return { accepted: docs.length, duplicates: duplicateCount };
}

/** Daily active users (signed-in users, or devices for anonymous traffic) per UTC day from `dau_mv`. */
export async function dailyActiveUsers(deps: Deps, query: { from?: string; to?: string }): Promise<DauReport> {
  const range = dayRange(query, {
    today: utcDay(deps.clock.now()),
    maxDays: deps.config.analytics.dauMaxRangeDays,
    reversedPath: "from",
  });
  if (Array.isArray(range)) throw ApiError.validation(range);
  const rows = await select<{ day: string; users: string | number }>(
    deps,
    `SELECT toString(date) AS day, toUInt64(uniqMerge(unique_users)) AS users
     FROM dau_mv WHERE date BETWEEN {from:Date} AND {to:Date}
     GROUP BY date ORDER BY date`,
    range,
  );
  return { items: rows.map((r) => ({ date: r.day, users: Number(r.users) })) };
}

/**
 * Each signed-in user's first active UTC day (their cohort) in [from, to], and which of them were active
 * exactly 1, 7 and 30 days later, in one query. Candidates are the users active in [from, to] (a cohort's
 * members were active on its day); their first day comes from `retention_first_days` (all of history, so a
 * user first seen before `from` is not in these cohorts), their later days from `retention_user_days`.
 */
const RETENTION_QUERY = `
SELECT
    toString(cohort_day) AS cohort,
    count() AS users,
    countIf(has(returned, cohort_day + 1)) AS day1,
    countIf(has(returned, cohort_day + 7)) AS day7,
    countIf(has(returned, cohort_day + 30)) AS day30
FROM
(
    SELECT user_id, min(first_seen) AS cohort_day, groupUniqArray(seen_on) AS returned
    FROM
    (
        SELECT user_id, CAST(first_day AS Nullable(Date)) AS first_seen, CAST(NULL AS Nullable(Date)) AS seen_on
        FROM retention_first_days
        WHERE user_id IN (
            SELECT user_id FROM retention_user_days WHERE active_date BETWEEN {from:Date} AND {to:Date}
        )
        UNION ALL
        SELECT user_id, CAST(NULL AS Nullable(Date)), CAST(active_date AS Nullable(Date))
        FROM retention_user_days
        WHERE active_date BETWEEN {from:Date} + 1 AND {to:Date} + 30
    )
    GROUP BY user_id
    HAVING cohort_day BETWEEN {from:Date} AND {to:Date}
)
GROUP BY cohort_day
ORDER BY cohort_day`;

/**
 * Classic N-day retention per cohort: a cohort is the signed-in users whose first active UTC day (any event)
 * it is; `dayN` counts those active exactly N days later (not "on or after"), null until that day has ended.
 * Anonymous devices form no cohorts. Cohorts without users are left out.
 */
export async function retentionReport(
  deps: Deps,
  query: { from?: string | undefined; to?: string | undefined },
): Promise<RetentionReport> {
  const today = utcDay(deps.clock.now());
  const range = dayRange(query, {
    today,
    maxDays: deps.config.analytics.retentionMaxRangeDays,
    reversedPath: query.to === undefined ? "from" : "to",
  });
  if (Array.isArray(range)) throw ApiError.validation(range);
  const rows = await select<RetentionRow>(deps, RETENTION_QUERY, range);
  return { items: rows.map((row) => retentionCohort(row, today)) };
}

async function select<T>(deps: Deps, query: string, params: DayRange): Promise<T[]> {
  try {
    const result = await deps.clickhouse.query({ query, query_params: { ...params }, format: "JSONEachRow" });
    return await result.json<T>();
  } catch (error) {
    throw asClickHouseOutage(error);
  }
}
