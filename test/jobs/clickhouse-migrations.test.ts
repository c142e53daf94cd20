import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clickhouseDdl } from "../../src/db/clickhouse-ddl";
import { migrateClickHouse } from "../../src/db/migrate";
import { type ClickHouseClient, createClickHouse } from "../../src/platform/clickhouse";
import { testConfig, testDeps } from "../support/deps";

const deps = testDeps();
const config = testConfig();
// A database of its own, set up as one migrated before attribution and creator analytics existed.
const database = `migration_${crypto.randomUUID().replace(/-/g, "").slice(0, 12)}`;
let client: ClickHouseClient;

const FIRST_NEW = "events.medium";

async function rows<T>(query: string): Promise<T[]> {
  return (await client.query({ query, format: "JSONEachRow" })).json<T>();
}

beforeAll(async () => {
  await deps.clickhouse.command({ query: `CREATE DATABASE ${database}` });
  client = createClickHouse({ ...config.clickhouse, database, timeoutMs: 30_000 });
  const before = clickhouseDdl.slice(
    0,
    clickhouseDdl.findIndex((o) => o.name === FIRST_NEW),
  );
  expect(before.map((o) => o.name)).toContain("retention_first_days_mv");
  for (const { sql } of before) await client.command({ query: sql });
  await client.insert({
    table: "events",
    format: "JSONEachRow",
    values: [
      {
        event_id: crypto.randomUUID(),
        event_name: "screen_view",
        user_id: "old-user",
        session_id: "s",
        device_id: "d",
        platform: "ios",
        app_version: "3.0.0",
        properties: "{}",
        source: "organic",
        campaign: "",
        timestamp: "2026-01-05T10:00:00.000Z",
      },
    ],
  });
});

afterAll(async () => {
  await client?.close();
  await deps.clickhouse.command({ query: `DROP DATABASE IF EXISTS ${database}` });
});

describe("ClickHouse migrations", () => {
  it("add the new columns to an existing events table and create the new objects, in order, once", async () => {
    const created = await migrateClickHouse(client);
    const expected = clickhouseDdl.slice(clickhouseDdl.findIndex((o) => o.name === FIRST_NEW)).map((o) => o.name);
    expect(created).toEqual(expected);
    expect(created).toEqual(
      expect.arrayContaining(["events.referrer", "events.owner_id", "server_events", "post_stats"]),
    );
    // Rows from before keep their values, the new columns read empty.
    expect(await rows("SELECT user_id, source, medium, referrer, owner_id FROM events")).toEqual([
      { user_id: "old-user", source: "organic", medium: "", referrer: "", owner_id: "" },
    ]);
    expect(await migrateClickHouse(client)).toEqual([]);
  });

  it("leave views that fill the creator tables as rows arrive", async () => {
    const at = "2026-01-06T10:20:00.000Z";
    await client.insert({
      table: "events",
      format: "JSONEachRow",
      values: [
        {
          event_id: crypto.randomUUID(),
          event_name: "post_impression",
          user_id: "viewer",
          session_id: "s",
          device_id: "d",
          platform: "ios",
          app_version: "3.2.0",
          properties: JSON.stringify({ postId: "p1" }),
          source: "",
          campaign: "",
          owner_id: "author",
          timestamp: at,
        },
      ],
    });
    const serverEvent = (event_name: string, actor_id: string, extra: Record<string, unknown> = {}) => ({
      event_id: crypto.randomUUID(),
      event_name,
      actor_id,
      device_id: "",
      owner_id: "author",
      post_id: "",
      amount: 0,
      source: "",
      medium: "",
      campaign: "",
      referrer: "",
      timestamp: at,
      ...extra,
    });
    await client.insert({
      table: "server_events",
      format: "JSONEachRow",
      values: [
        serverEvent("followed", "fan"),
        serverEvent("vote_cast", "fan", { post_id: "p1" }),
        serverEvent("gem_earned", "", { amount: 7 }),
        serverEvent("signed_up", "author", { source: "ads" }),
      ],
    });
    expect(
      await rows(`SELECT post_id, toString(slot) AS slot, toInt64(uniqExactMerge(viewers)) AS impressions,
                         toInt64(sum(votes)) AS votes FROM post_stats GROUP BY post_id, slot`),
    ).toEqual([{ post_id: "p1", slot: "2026-01-06 10:15:00", impressions: 1, votes: 1 }]);
    expect(await rows("SELECT toInt64(sum(followers_gained)) AS gained FROM creator_stats")).toEqual([{ gained: 1 }]);
    expect(await rows("SELECT toInt64(sum(amount)) AS gems FROM creator_gems FINAL")).toEqual([{ gems: 7 }]);
    expect(await rows("SELECT user_id, source FROM user_attribution")).toEqual([{ user_id: "author", source: "ads" }]);
  });
});
