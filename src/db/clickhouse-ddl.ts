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
];
