/**
 * ClickHouse schema (seed 000's analytics tables). Every statement is idempotent (`IF NOT EXISTS`), and the
 * migration creates only objects whose name is missing, in this order: a changed object needs a new name.
 *
 * `events` keeps the seed's columns and ordering and adds a deduplication window: the flush job tags every
 * batch with `insert_deduplication_token`, so a batch re-sent after a crash is dropped by ClickHouse itself.
 *
 * `dau_mv` counts an actor per day: the user id when the event was signed in, otherwise `device:<device id>`.
 *
 * Retention (signed-in users only; anonymous devices form no cohorts) is kept in two tables, each filled by
 * a materialized view from `events` and read by `GET /v1/admin/analytics/retention` in one query:
 * - `retention_user_days`: one row per (active UTC day, user) with any event that day (a duplicate across
 *   inserted blocks until merged is harmless: readers take distinct days);
 * - `retention_first_days`: each user's first active UTC day (`min`, so late or repeated rows only ever move it
 *   earlier, never wrong), one row per user once merged: cohorts come from it without scanning every user-day.
 * Days are UTC (`toDate(timestamp, 'UTC')`) whatever the server's time zone.
 *
 * They replace the seed's `retention_mv` (a window function in a materialized view: ClickHouse sees one
 * inserted block at a time, so it cannot be maintained) and the first attempt at fixing it,
 * `retention_activity_mv` + the view `retention`, which counted only `session_start` events (an account's
 * signup day, whose session started anonymously, was lost) and mixed anonymous devices into cohorts. Those two
 * are no longer created; an existing database keeps them (nothing reads them; the materialized view still
 * runs on every insert) until `DROP VIEW IF EXISTS retention` and `DROP VIEW IF EXISTS retention_activity_mv`.
 *
 * No backfill is needed: before the change that added these tables the API stored every event anonymously
 * (`user_id = ''`), and `npm run migrate` runs before the Worker that records user ids is deployed. If
 * signed-in events ever reached `events` without these views, re-derive them (idempotent: both tables
 * tolerate repeated rows):
 *   INSERT INTO retention_user_days SELECT toDate(timestamp, 'UTC'), user_id FROM events
 *     WHERE user_id != '' GROUP BY 1, 2;
 *   INSERT INTO retention_first_days SELECT user_id, min(toDate(timestamp, 'UTC')) FROM events
 *     WHERE user_id != '' GROUP BY user_id;
 */
export const clickhouseDdl: { name: string; sql: string }[] = [
  // (Objects are created in this order; columns added to an existing table are named `table.column`.)
  {
    name: "events",
    sql: `CREATE TABLE IF NOT EXISTS events (
    event_id        UUID,
    event_name      LowCardinality(String),
    user_id         String,
    session_id      String,
    device_id       String,
    platform        LowCardinality(String),
    app_version     String,
    properties      String,
    source          LowCardinality(String),
    campaign        LowCardinality(String),
    timestamp       DateTime64(3),
    date            Date MATERIALIZED toDate(timestamp)
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(date)
ORDER BY (event_name, date, user_id, timestamp)
SETTINGS non_replicated_deduplication_window = 10000`,
  },
  {
    name: "dau_mv",
    sql: `CREATE MATERIALIZED VIEW IF NOT EXISTS dau_mv
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(date)
ORDER BY date
AS SELECT
    toDate(timestamp) AS date,
    uniqState(if(user_id = '', concat('device:', device_id), user_id)) AS unique_users
FROM events
GROUP BY date`,
  },
  {
    name: "retention_user_days",
    sql: `CREATE TABLE IF NOT EXISTS retention_user_days (
    active_date Date,
    user_id     String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(active_date)
ORDER BY (active_date, user_id)`,
  },
  {
    name: "retention_user_days_mv",
    sql: `CREATE MATERIALIZED VIEW IF NOT EXISTS retention_user_days_mv TO retention_user_days AS
SELECT toDate(timestamp, 'UTC') AS active_date, user_id
FROM events
WHERE user_id != ''
GROUP BY active_date, user_id`,
  },
  {
    name: "retention_first_days",
    sql: `CREATE TABLE IF NOT EXISTS retention_first_days (
    user_id   String,
    first_day SimpleAggregateFunction(min, Date)
) ENGINE = AggregatingMergeTree()
ORDER BY user_id`,
  },
  {
    name: "retention_first_days_mv",
    sql: `CREATE MATERIALIZED VIEW IF NOT EXISTS retention_first_days_mv TO retention_first_days AS
SELECT user_id, min(toDate(timestamp, 'UTC')) AS first_day
FROM events
WHERE user_id != ''
GROUP BY user_id`,
  },
  ...creatorAnalyticsDdl(),
];

/**
 * Attribution, the events the API records itself, and creator analytics (issue 17).
 *
 * - `events` gains `medium` and `referrer` (attribution beside `source` and `campaign`) and `owner_id`: the
 *   author of the post an app event is about, filled in by the flush job (for `post_impression`), since the
 *   app knows only the post.
 * - `server_events`: what the API records itself (`vote_cast`, `followed`, `gem_earned`, …, see
 *   features/analytics/activity.ts): who did it (`actor_id`, or a signed-out viewer's `device_id`), whose
 *   analytics it counts toward (`owner_id`), the post and an amount. Kept apart from the app's `events`, so
 *   daily actives and retention still mean "people using the app" (a gem payout makes nobody active).
 * - Per user and per post, in 15-minute slots (UTC), aggregated by materialized views as rows arrive:
 *   `creator_stats` (distinct profile viewers, followers gained and lost), `post_stats` (distinct viewers of a
 *   post's impressions, net votes, comments, shares, net saves) and `creator_gems` (gems earned, one row per
 *   ledger entry: a ReplacingMergeTree read with FINAL, so an entry a crashed settlement run recorded twice
 *   counts once). A day is a calendar day of the reader's time zone, so it is summed from slots at read time:
 *   every zone's offset is a whole number of quarter hours, and distinct counts (uniqExact states) merge
 *   exactly across the slots of a day, so "one impression per viewer per post per day" holds in any zone.
 *   uniqExact keeps 128-bit hashes of the viewers, not their ids.
 * - `user_attribution`: each account's first-touch attribution, from its `signed_up` event.
 * Self-engagement never counts (an author's own views, impressions, comments, …).
 */
function creatorAnalyticsDdl(): { name: string; sql: string }[] {
  const slot = "toStartOfFifteenMinutes(timestamp)";
  const viewer = "if(%s = '', concat('device:', device_id), %s)";
  return [
    {
      name: "events.medium",
      sql: "ALTER TABLE events ADD COLUMN IF NOT EXISTS medium LowCardinality(String) DEFAULT '' AFTER campaign",
    },
    {
      name: "events.referrer",
      sql: "ALTER TABLE events ADD COLUMN IF NOT EXISTS referrer String DEFAULT '' AFTER medium",
    },
    {
      name: "events.owner_id",
      sql: "ALTER TABLE events ADD COLUMN IF NOT EXISTS owner_id String DEFAULT '' AFTER referrer",
    },
    {
      name: "server_events",
      sql: `CREATE TABLE IF NOT EXISTS server_events (
    event_id    UUID,
    event_name  LowCardinality(String),
    actor_id    String,
    device_id   String,
    owner_id    String,
    post_id     String,
    amount      Int64,
    source      LowCardinality(String),
    medium      LowCardinality(String),
    campaign    LowCardinality(String),
    referrer    String,
    timestamp   DateTime64(3, 'UTC'),
    date        Date MATERIALIZED toDate(timestamp, 'UTC')
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(date)
ORDER BY (owner_id, event_name, timestamp)
SETTINGS non_replicated_deduplication_window = 10000`,
    },
    {
      name: "creator_stats",
      sql: `CREATE TABLE IF NOT EXISTS creator_stats (
    user_id           String,
    slot              DateTime('UTC'),
    profile_viewers   AggregateFunction(uniqExact, String),
    followers_gained  SimpleAggregateFunction(sum, Int64),
    followers_lost    SimpleAggregateFunction(sum, Int64)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(slot)
ORDER BY (user_id, slot)`,
    },
    {
      name: "creator_profile_views_mv",
      sql: `CREATE MATERIALIZED VIEW IF NOT EXISTS creator_profile_views_mv TO creator_stats AS
SELECT owner_id AS user_id, ${slot} AS slot, uniqExactState(${viewer.replaceAll("%s", "actor_id")}) AS profile_viewers
FROM server_events
WHERE event_name = 'profile_viewed' AND owner_id != '' AND actor_id != owner_id
GROUP BY user_id, slot`,
    },
    {
      name: "creator_follows_mv",
      sql: `CREATE MATERIALIZED VIEW IF NOT EXISTS creator_follows_mv TO creator_stats AS
SELECT owner_id AS user_id, ${slot} AS slot,
    toInt64(countIf(event_name = 'followed')) AS followers_gained,
    toInt64(countIf(event_name = 'unfollowed')) AS followers_lost
FROM server_events
WHERE event_name IN ('followed', 'unfollowed') AND owner_id != '' AND actor_id != owner_id
GROUP BY user_id, slot`,
    },
    {
      name: "post_stats",
      sql: `CREATE TABLE IF NOT EXISTS post_stats (
    owner_id  String,
    post_id   String,
    slot      DateTime('UTC'),
    viewers   AggregateFunction(uniqExact, String),
    votes     SimpleAggregateFunction(sum, Int64),
    comments  SimpleAggregateFunction(sum, Int64),
    shares    SimpleAggregateFunction(sum, Int64),
    saves     SimpleAggregateFunction(sum, Int64)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(slot)
ORDER BY (owner_id, post_id, slot)`,
    },
    {
      name: "post_impressions_mv",
      sql: `CREATE MATERIALIZED VIEW IF NOT EXISTS post_impressions_mv TO post_stats AS
SELECT owner_id, JSONExtractString(properties, 'postId') AS post_id, ${slot} AS slot,
    uniqExactState(${viewer.replaceAll("%s", "user_id")}) AS viewers
FROM events
WHERE event_name = 'post_impression' AND owner_id != '' AND user_id != owner_id
GROUP BY owner_id, post_id, slot`,
    },
    {
      name: "post_engagement_mv",
      sql: `CREATE MATERIALIZED VIEW IF NOT EXISTS post_engagement_mv TO post_stats AS
SELECT owner_id, post_id, ${slot} AS slot,
    toInt64(countIf(event_name = 'vote_cast')) - toInt64(countIf(event_name = 'vote_removed')) AS votes,
    toInt64(countIf(event_name = 'comment_created')) AS comments,
    toInt64(countIf(event_name = 'shared')) AS shares,
    toInt64(countIf(event_name = 'post_saved')) - toInt64(countIf(event_name = 'post_unsaved')) AS saves
FROM server_events
WHERE event_name IN ('vote_cast', 'vote_removed', 'comment_created', 'shared', 'post_saved', 'post_unsaved')
    AND owner_id != '' AND post_id != '' AND actor_id != owner_id
GROUP BY owner_id, post_id, slot`,
    },
    {
      name: "creator_gems",
      sql: `CREATE TABLE IF NOT EXISTS creator_gems (
    user_id   String,
    slot      DateTime('UTC'),
    event_id  UUID,
    amount    Int64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(slot)
ORDER BY (user_id, slot, event_id)`,
    },
    {
      name: "creator_gems_mv",
      sql: `CREATE MATERIALIZED VIEW IF NOT EXISTS creator_gems_mv TO creator_gems AS
SELECT owner_id AS user_id, ${slot} AS slot, event_id, amount
FROM server_events
WHERE event_name = 'gem_earned' AND owner_id != '' AND amount > 0`,
    },
    {
      name: "user_attribution",
      sql: `CREATE TABLE IF NOT EXISTS user_attribution (
    user_id       String,
    signed_up_at  DateTime64(3, 'UTC'),
    source        LowCardinality(String),
    medium        LowCardinality(String),
    campaign      LowCardinality(String),
    referrer      String
) ENGINE = ReplacingMergeTree()
ORDER BY user_id`,
    },
    {
      name: "user_attribution_mv",
      sql: `CREATE MATERIALIZED VIEW IF NOT EXISTS user_attribution_mv TO user_attribution AS
SELECT owner_id AS user_id, timestamp AS signed_up_at, source, medium, campaign, referrer
FROM server_events
WHERE event_name = 'signed_up' AND owner_id != ''`,
    },
  ];
}
