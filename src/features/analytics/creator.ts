import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { Deps } from "../../deps";
import { asClickHouseOutage } from "../../platform/clickhouse";
import { ObjectId } from "../../platform/ids";
import { canonicalTimeZone, localDay } from "../../platform/time";
import { type DayRange, dayRange } from "./reports";
import type { CreatorAnalytics, PostAnalytics } from "./schema";
import { totalsOf, zeroFilled } from "./series";

const CREATOR_METRICS = [
  "profileViews",
  "impressions",
  "engagements",
  "followersGained",
  "followersLost",
  "gemsEarned",
] as const;
const POST_METRICS = ["impressions", "votes", "comments", "shares", "saves", "engagements"] as const;

/**
 * Slots (15-minute, UTC) that can belong to the local days [from, to] of some zone: offsets run from −12 h to
 * +14 h, so a local day starts at most 14 h before its UTC namesake and ends at most 12 h after it. Narrows the
 * scan to the primary key; the exact day comes from `toDate(slot, tz)`.
 */
const SLOTS_OF_DAYS = `slot >= toDateTime({from:Date}, 'UTC') - INTERVAL 14 HOUR
    AND slot < toDateTime({to:Date}, 'UTC') + INTERVAL 36 HOUR`;

/**
 * One user's days: distinct profile viewers and follows from `creator_stats`, impressions (distinct viewers
 * per post and day, summed over posts) and engagements from `post_stats`, gems from `creator_gems` (FINAL:
 * one row per ledger entry however often it was recorded). One query, summed into calendar days of `tz`.
 */
const CREATOR_QUERY = `
SELECT toString(day) AS date,
    sum(profile_views) AS profileViews, sum(impressions) AS impressions, sum(engagements) AS engagements,
    sum(followers_gained) AS followersGained, sum(followers_lost) AS followersLost, sum(gems) AS gemsEarned
FROM
(
    SELECT toDate(slot, {tz:String}) AS day, toInt64(uniqExactMerge(profile_viewers)) AS profile_views,
        toInt64(0) AS impressions, toInt64(0) AS engagements, toInt64(sum(followers_gained)) AS followers_gained,
        toInt64(sum(followers_lost)) AS followers_lost, toInt64(0) AS gems
    FROM creator_stats
    WHERE user_id = {user:String} AND ${SLOTS_OF_DAYS}
    GROUP BY day
    UNION ALL
    SELECT day, toInt64(0), toInt64(sum(viewers)), toInt64(sum(engaged)), toInt64(0), toInt64(0), toInt64(0)
    FROM
    (
        SELECT toDate(slot, {tz:String}) AS day, post_id, uniqExactMerge(viewers) AS viewers,
            sum(votes) + sum(comments) + sum(shares) + sum(saves) AS engaged
        FROM post_stats
        WHERE owner_id = {user:String} AND ${SLOTS_OF_DAYS}
        GROUP BY day, post_id
    )
    GROUP BY day
    UNION ALL
    SELECT toDate(slot, {tz:String}) AS day, toInt64(0), toInt64(0), toInt64(0), toInt64(0), toInt64(0),
        toInt64(sum(amount))
    FROM creator_gems FINAL
    WHERE user_id = {user:String} AND ${SLOTS_OF_DAYS}
    GROUP BY day
)
WHERE day BETWEEN {from:Date} AND {to:Date}
GROUP BY day
ORDER BY day`;

/** One post's days from `post_stats` (its rows are keyed by author, so another author's post has none). */
const POST_QUERY = `
SELECT date, impressions, v AS votes, c AS comments, sh AS shares, sv AS saves, v + c + sh + sv AS engagements
FROM
(
    SELECT toString(toDate(slot, {tz:String})) AS date, toInt64(uniqExactMerge(viewers)) AS impressions,
        toInt64(sum(votes)) AS v, toInt64(sum(comments)) AS c, toInt64(sum(shares)) AS sh, toInt64(sum(saves)) AS sv
    FROM post_stats
    WHERE owner_id = {user:String} AND post_id = {post:String} AND ${SLOTS_OF_DAYS}
    GROUP BY date
)
WHERE date BETWEEN toString({from:Date}) AND toString({to:Date})
ORDER BY date`;

/**
 * The zone a user's days are counted in: their settings' zone (on the account standing, so it costs no read),
 * UTC without one; a zone the runtime does not know falls back to UTC rather than failing the request.
 */
export function analyticsZone(timeZone: string | undefined): string {
  return (timeZone && canonicalTimeZone(timeZone)) || "UTC";
}

function rangeIn(
  deps: Deps,
  timeZone: string,
  query: { from?: string | undefined; to?: string | undefined },
): DayRange {
  const range = dayRange(query, {
    today: localDay(deps.clock.now(), timeZone),
    maxDays: deps.config.analytics.creatorMaxRangeDays,
    reversedPath: query.to === undefined ? "from" : "to",
  });
  if (Array.isArray(range)) throw ApiError.validation(range);
  return range;
}

async function select<T>(deps: Deps, query: string, params: Record<string, unknown>): Promise<T[]> {
  try {
    const result = await deps.clickhouse.query({ query, query_params: params, format: "JSONEachRow" });
    return await result.json<T>();
  } catch (error) {
    throw asClickHouseOutage(error);
  }
}

/**
 * The caller's own analytics per calendar day of their zone, every day of the range present (zeros where
 * nothing happened), with totals. Reads ClickHouse only: one query, no MongoDB call.
 */
export async function creatorAnalytics(
  deps: Deps,
  viewer: Viewer,
  query: { from?: string | undefined; to?: string | undefined },
  timeZone = "UTC",
): Promise<CreatorAnalytics> {
  const tz = analyticsZone(timeZone);
  const range = rangeIn(deps, tz, query);
  const rows = await select<{ date: string }>(deps, CREATOR_QUERY, { ...range, tz, user: viewer.id });
  const items = zeroFilled(range.from, range.to, CREATOR_METRICS, rows);
  return { timezone: tz, ...range, totals: totalsOf(CREATOR_METRICS, items), items };
}

/**
 * One post's analytics for its author; anyone else (and a deleted or missing post) gets the 404 a missing
 * post gets. The ownership read and the ClickHouse query run together (the query is keyed by the caller as
 * author, so it finds nothing for another's post): one MongoDB and one ClickHouse wait, overlapping. Days
 * before the post existed are left out.
 */
export async function postAnalytics(
  deps: Deps,
  viewer: Viewer,
  postId: string,
  query: { from?: string | undefined; to?: string | undefined },
  timeZone = "UTC",
): Promise<PostAnalytics> {
  const tz = analyticsZone(timeZone);
  const range = rangeIn(deps, tz, query);
  const [post, rows] = await Promise.all([
    deps.db.posts.findOne(
      { _id: new ObjectId(postId), userId: new ObjectId(viewer.id), deletedAt: null },
      { projection: { createdAt: 1 } },
    ),
    select<{ date: string }>(deps, POST_QUERY, { ...range, tz, user: viewer.id, post: postId.toLowerCase() }),
  ]);
  if (!post) throw ApiError.notFound("No such post.");
  const createdOn = localDay(post.createdAt, tz);
  const from = laterDay(range.from, createdOn);
  const items = from <= range.to ? zeroFilled(from, range.to, POST_METRICS, rows) : [];
  return { postId, timezone: tz, from, to: range.to, totals: totalsOf(POST_METRICS, items), items };
}

/** The later of two `YYYY-MM-DD` days (they compare as strings). */
function laterDay(a: string, b: string): string {
  return [a, b].sort()[1] ?? a;
}
