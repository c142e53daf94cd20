import { ApiError } from "../../core/errors";
import type { Attribution } from "../../db";
import type { Deps } from "../../deps";
import { asClickHouseOutage } from "../../platform/clickhouse";
import { utcDay } from "../../platform/time";
import { dayRange } from "./reports";
import type { AttributionInput, AttributionReport, AttributionSource } from "./schema";

/**
 * A referrer as stored: a web address loses its query, fragment and credentials (they can carry tokens and
 * personal data; the page is what attribution needs); anything else (an app id, an install-referrer string)
 * is kept as sent.
 */
export function cleanReferrer(referrer: string): string {
  try {
    const url = new URL(referrer);
    if (url.protocol === "http:" || url.protocol === "https:") return `${url.origin}${url.pathname}`;
  } catch {
    // not a URL
  }
  return referrer;
}

/** The attribution to store from what the app sent, or null when it sent none. */
export function attributionOf(input: AttributionInput | undefined): Attribution | null {
  if (!input || Object.values(input).every((v) => v === undefined)) return null;
  return {
    source: input.source ?? null,
    medium: input.medium ?? null,
    campaign: input.campaign ?? null,
    referrer: input.referrer === undefined ? null : cleanReferrer(input.referrer),
  };
}

/** Signups per first-touch source and how many came back exactly 7 days later, in one query. */
const ATTRIBUTION_QUERY = `
SELECT
    source,
    count() AS signups,
    countIf(measured) AS day7_eligible,
    countIf(measured AND has(days, signup_day + 7)) AS day7
FROM
(
    SELECT a.source AS source, a.signup_day AS signup_day, a.signup_day + 7 < {today:Date} AS measured, r.days AS days
    FROM
    (
        SELECT user_id, argMin(source, signed_up_at) AS source, toDate(min(signed_up_at), 'UTC') AS signup_day
        FROM user_attribution
        WHERE toDate(signed_up_at, 'UTC') BETWEEN {from:Date} AND {to:Date}
        GROUP BY user_id
    ) AS a
    LEFT JOIN
    (
        SELECT user_id, groupUniqArray(active_date) AS days
        FROM retention_user_days
        WHERE active_date BETWEEN {from:Date} + 7 AND {to:Date} + 7
        GROUP BY user_id
    ) AS r USING (user_id)
)
GROUP BY source
ORDER BY signups DESC, source`;

interface AttributionRow {
  source: string;
  signups: string | number;
  day7_eligible: string | number;
  day7: string | number;
}

/** One source's line of the report (64-bit counts arrive as strings; "" is a signup without a source). */
export function attributionLine(row: AttributionRow): AttributionSource {
  const eligible = Number(row.day7_eligible);
  const day7 = Number(row.day7);
  return {
    source: row.source === "" ? null : row.source,
    signups: Number(row.signups),
    day7Eligible: eligible,
    day7,
    day7Rate: eligible > 0 ? Math.round((day7 / eligible) * 10_000) / 10_000 : null,
  };
}

/**
 * Accounts that signed up on the UTC days [from, to], per first-touch source, with classic day-7 retention:
 * how many of those whose seventh day has ended were active on exactly that day (any event sent signed in,
 * as the retention report counts activity).
 */
export async function attributionReport(
  deps: Deps,
  query: { from?: string | undefined; to?: string | undefined },
): Promise<AttributionReport> {
  const today = utcDay(deps.clock.now());
  const range = dayRange(query, {
    today,
    maxDays: deps.config.analytics.attributionMaxRangeDays,
    reversedPath: query.to === undefined ? "from" : "to",
  });
  if (Array.isArray(range)) throw ApiError.validation(range);
  try {
    const result = await deps.clickhouse.query({
      query: ATTRIBUTION_QUERY,
      query_params: { ...range, today },
      format: "JSONEachRow",
    });
    const rows = await result.json<AttributionRow>();
    return { from: range.from, to: range.to, items: rows.map(attributionLine) };
  } catch (error) {
    throw asClickHouseOutage(error);
  }
}
