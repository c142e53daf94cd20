import type { Deps } from "../../deps";
import { asClickHouseOutage } from "../../platform/clickhouse";
import { isObjectIdHex, ObjectId } from "../../platform/ids";
import { finishFlushBatch } from "./flush";

/** Rows per exported page. */
const EXPORT_PAGE_ROWS = 500;
/** Rounds of finishing claimed flush batches before giving up (a flush keeps claiming the account's events). */
const BUFFER_ROUNDS = 5;

/** One page of an export section: plain JSON items, no secrets. */
export interface ExportPage {
  section: string;
  items: unknown[];
}

/**
 * What creator analytics holds about a user, for `GET /v1/me/export`, page by page:
 * - `attribution`: the first-touch attribution stored with the account at signup;
 * - `creatorAnalytics`: their days (UTC) as `GET /v1/me/analytics` shows them, every day with any activity;
 * - `postAnalytics`: the same per post;
 * - `recordedActivity`: what the API recorded them doing (votes, follows, comments, shares, profile views, …),
 *   from ClickHouse and from the buffer (not yet flushed).
 * Others' identities are never in it beyond the ids the user acted on (whom they followed, whose post).
 */
export async function* exportSections(deps: Deps, userId: string): AsyncGenerator<ExportPage> {
  if (!isObjectIdHex(userId)) return;
  const user = await deps.db.users.findOne({ _id: new ObjectId(userId) }, { projection: { attribution: 1 } });
  yield { section: "attribution", items: user?.attribution ? [user.attribution] : [] };
  yield* pages(
    deps,
    "creatorAnalytics",
    `SELECT toString(day) AS date, sum(pv) AS profileViews, sum(imp) AS impressions, sum(eng) AS engagements,
        sum(fg) AS followersGained, sum(fl) AS followersLost, sum(gems) AS gemsEarned
     FROM (
        SELECT toDate(slot, 'UTC') AS day, toInt64(uniqExactMerge(profile_viewers)) AS pv, toInt64(0) AS imp,
            toInt64(0) AS eng, toInt64(sum(followers_gained)) AS fg, toInt64(sum(followers_lost)) AS fl,
            toInt64(0) AS gems
        FROM creator_stats WHERE user_id = {user:String} GROUP BY day
        UNION ALL
        SELECT day, toInt64(0), toInt64(sum(v)), toInt64(sum(e)), toInt64(0), toInt64(0), toInt64(0)
        FROM (
            SELECT toDate(slot, 'UTC') AS day, post_id, uniqExactMerge(viewers) AS v,
                sum(votes) + sum(comments) + sum(shares) + sum(saves) AS e
            FROM post_stats WHERE owner_id = {user:String} GROUP BY day, post_id
        ) GROUP BY day
        UNION ALL
        SELECT toDate(slot, 'UTC') AS day, toInt64(0), toInt64(0), toInt64(0), toInt64(0), toInt64(0),
            toInt64(sum(amount))
        FROM creator_gems FINAL WHERE user_id = {user:String} GROUP BY day
     )
     GROUP BY day ORDER BY day`,
    userId,
    ["profileViews", "impressions", "engagements", "followersGained", "followersLost", "gemsEarned"],
  );
  yield* pages(
    deps,
    "postAnalytics",
    `SELECT post_id AS postId, toString(toDate(slot, 'UTC')) AS date, toInt64(uniqExactMerge(viewers)) AS impressions,
        toInt64(sum(votes)) AS votes, toInt64(sum(comments)) AS comments, toInt64(sum(shares)) AS shares,
        toInt64(sum(saves)) AS saves
     FROM post_stats WHERE owner_id = {user:String}
     GROUP BY postId, date ORDER BY postId, date`,
    userId,
    ["impressions", "votes", "comments", "shares", "saves"],
  );
  const buffered = await deps.db.analyticsEvents.find(
    { origin: "server", userId },
    { sort: { _id: 1 }, projection: { event: 1, ownerId: 1, postId: 1, amount: 1, timestamp: 1 } },
  );
  const bufferedItems = buffered.map((e) => ({
    event: e.event,
    ownerId: e.ownerId ?? null,
    postId: e.postId ?? null,
    timestamp: e.timestamp.toISOString(),
  }));
  if (bufferedItems.length > 0) yield { section: "recordedActivity", items: bufferedItems };
  yield* pages(
    deps,
    "recordedActivity",
    `SELECT event_name AS event, nullIf(owner_id, '') AS ownerId, nullIf(post_id, '') AS postId,
        formatDateTime(timestamp, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC') AS timestamp
     FROM server_events WHERE actor_id = {user:String}
     ORDER BY timestamp, event_id`,
    userId,
  );
}

/** A query's rows as pages of EXPORT_PAGE_ROWS, read with LIMIT/OFFSET (each page one query). */
async function* pages(
  deps: Deps,
  section: string,
  query: string,
  userId: string,
  counts: readonly string[] = [],
): AsyncGenerator<ExportPage> {
  for (let offset = 0; ; offset += EXPORT_PAGE_ROWS) {
    let rows: Record<string, unknown>[];
    try {
      const result = await deps.clickhouse.query({
        query: `${query} LIMIT {limit:UInt32} OFFSET {offset:UInt64}`,
        query_params: { user: userId, limit: EXPORT_PAGE_ROWS, offset },
        format: "JSONEachRow",
      });
      rows = await result.json<Record<string, unknown>>();
    } catch (error) {
      throw asClickHouseOutage(error);
    }
    // 64-bit counts arrive as strings; the export has them as plain JSON numbers.
    const items = rows.map((row) =>
      Object.fromEntries(Object.entries(row).map(([k, v]) => [k, counts.includes(k) ? Number(v) : v])),
    );
    if (items.length > 0) yield { section, items };
    if (items.length < EXPORT_PAGE_ROWS) return;
  }
}

/**
 * Erases the user from creator analytics, idempotently (a crashed run is finished by running it again):
 * 1. the events recorded about or by them still in the buffer (a batch a flush has claimed is finished into
 *    ClickHouse first, exactly once as the flush would, so nothing arrives there after step 2);
 * 2. in ClickHouse: the events they did or that counted toward them (their signed-out devices' profile views
 *    too), their days and their posts' days, gems, attribution; others' impressions of their posts keep the
 *    impression but no longer name them as the author.
 * What stays is what others' numbers are made of without naming them: counts, and uniqExact states, which
 * hold 128-bit hashes of viewers, never ids.
 */
export async function eraseUser(deps: Deps, userId: string): Promise<void> {
  if (!isObjectIdHex(userId)) return;
  const id = userId.toLowerCase();
  const user = await deps.db.users.findOne({ _id: new ObjectId(id) }, { projection: { devices: 1 } });
  const devices = (user?.devices ?? []).map((d) => d.deviceId);
  const theirs = {
    origin: "server",
    $or: [{ userId: id }, { ownerId: id }, ...(devices.length ? [{ userId: null, deviceId: { $in: devices } }] : [])],
  };
  for (let round = 1; ; round++) {
    const claimed = await deps.db.analyticsEvents.aggregate<{ _id: string }>([
      { $match: { ...theirs, flushBatchId: { $type: "string" } } },
      { $group: { _id: "$flushBatchId" } },
    ]);
    for (const batch of claimed) await finishFlushBatch(deps, batch._id);
    await deps.db.analyticsEvents.deleteMany({ ...theirs, flushBatchId: null });
    if (!(await deps.db.analyticsEvents.findOne(theirs, { projection: { _id: 1 } }))) break;
    if (round === BUFFER_ROUNDS) throw new Error("the account's buffered server events keep being claimed");
  }
  const params = { user: id, devices };
  try {
    for (const query of [
      `DELETE FROM server_events
       WHERE actor_id = {user:String} OR owner_id = {user:String}
          OR (actor_id = '' AND device_id != '' AND has({devices:Array(String)}, device_id))`,
      "DELETE FROM creator_stats WHERE user_id = {user:String}",
      "DELETE FROM post_stats WHERE owner_id = {user:String}",
      "DELETE FROM creator_gems WHERE user_id = {user:String}",
      "DELETE FROM user_attribution WHERE user_id = {user:String}",
    ]) {
      await deps.clickhouse.command({ query, query_params: params });
    }
    await deps.clickhouse.command({
      query: "ALTER TABLE events UPDATE owner_id = '' WHERE owner_id = {user:String}",
      query_params: params,
      clickhouse_settings: { mutations_sync: "2" },
    });
  } catch (error) {
    throw asClickHouseOutage(error);
  }
}
