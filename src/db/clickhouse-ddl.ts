/**
 * ClickHouse schema (seed 000's analytics tables). Every statement is idempotent (`IF NOT EXISTS`).
 *
 * `events` keeps the seed's columns and ordering and adds a deduplication window: the flush job tags every
 * batch with `insert_deduplication_token`, so a batch re-sent after a crash is dropped by ClickHouse itself.
 *
 * The seed's `retention_mv` cannot exist: a materialized view sees one inserted block at a time, so a window
 * function over a user's whole history (`min(timestamp) OVER (PARTITION BY user_id)`) is rejected/meaningless
 * there. Instead `retention_activity_mv` stores each (user, active day) once, and the plain view `retention`
 * derives cohorts (a user's first active day) at query time.
 *
 * Both count an actor: the user id when the event was signed in, otherwise `device:<device id>`.
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
    name: "retention_activity_mv",
    sql: `CREATE MATERIALIZED VIEW IF NOT EXISTS retention_activity_mv
ENGINE = ReplacingMergeTree()
ORDER BY (user_id, active_date)
AS SELECT
    if(user_id = '', concat('device:', device_id), user_id) AS user_id,
    toDate(timestamp) AS active_date
FROM events
WHERE event_name = 'session_start'
GROUP BY user_id, active_date`,
  },
  {
    name: "retention",
    sql: `CREATE VIEW IF NOT EXISTS retention AS
SELECT
    cohort_date,
    active_date,
    dateDiff('day', cohort_date, active_date) AS day_number,
    uniqExact(user_id) AS users
FROM
(
    SELECT user_id, active_date, min(active_date) OVER (PARTITION BY user_id) AS cohort_date
    FROM (SELECT DISTINCT user_id, active_date FROM retention_activity_mv)
)
GROUP BY cohort_date, active_date
ORDER BY cohort_date, active_date`,
  },
];
