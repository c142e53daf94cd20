import { ApiError, type FieldError } from "../../core/errors";
import type { AnalyticsEventDoc } from "../../db";
import type { Deps } from "../../deps";
import { asClickHouseOutage } from "../../platform/clickhouse";
import { newObjectId, newUuid } from "../../platform/ids";
import { DAY_MS, HOUR_MS, utcDay } from "../../platform/time";
import type { ClientEvent, DauReport, IngestEventsResult } from "./schema";

/**
 * Buffers client events in `analytics_events` with one write round trip. Event ids are assigned here, so a
 * client retrying a request cannot make ClickHouse see the same id twice with different contents.
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
    return {
      _id: newObjectId(),
      eventId: newUuid(),
      event: e.event,
      userId: caller.userId,
      sessionId: e.sessionId,
      deviceId: e.deviceId,
      platform: e.platform,
      appVersion: e.appVersion,
      properties: e.properties ?? {},
      source: e.source ?? null,
      campaign: e.campaign ?? null,
      timestamp,
      receivedAt: now,
      flushBatchId: null,
    };
  });
  if (errors.length) throw ApiError.validation(errors);

  await deps.db.analyticsEvents.insertMany(docs);
  return { accepted: docs.length };
}

/** Daily active users (signed-in users, or devices for anonymous traffic) per UTC day from `dau_mv`. */
export async function dailyActiveUsers(deps: Deps, range: { from?: string; to?: string }): Promise<DauReport> {
  const to = range.to ?? utcDay(deps.clock.now());
  const from = range.from ?? utcDay(new Date(Date.parse(to) - 29 * DAY_MS));
  const days = (Date.parse(to) - Date.parse(from)) / DAY_MS + 1;
  if (days < 1) throw ApiError.validation([{ path: "from", message: "must not be after `to`" }]);
  const maxDays = deps.config.analytics.dauMaxRangeDays;
  if (days > maxDays) throw ApiError.validation([{ path: "from", message: `range must not exceed ${maxDays} days` }]);

  try {
    const result = await deps.clickhouse.query({
      query: `SELECT toString(date) AS day, toUInt64(uniqMerge(unique_users)) AS users
              FROM dau_mv WHERE date BETWEEN {from:Date} AND {to:Date}
              GROUP BY date ORDER BY date`,
      query_params: { from, to },
      format: "JSONEachRow",
    });
    const rows = await result.json<{ day: string; users: string | number }>();
    return { items: rows.map((r) => ({ date: r.day, users: Number(r.users) })) };
  } catch (error) {
    throw asClickHouseOutage(error);
  }
}
