import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ClickHouseClient, ClickHouseError, type ClickHouseSettings, createClient } from "@clickhouse/client-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningClickHouseServer, startClickHouseServer } from "../../scripts/local/clickhouse-server";
import { freePort } from "../../scripts/local/ports";

const USER = "default";
const PASSWORD = "test-password-0123";

let dir: string;
let server: RunningClickHouseServer;
let client: ClickHouseClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "clickhouse-test-"));
  server = await startClickHouseServer({ port: await freePort(), dataDir: dir, user: USER, password: PASSWORD });
  client = createClient({ url: server.url, username: USER, password: PASSWORD });
});

afterAll(async () => {
  await client?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function rows<T>(query: string, query_params?: Record<string, unknown>): Promise<T[]> {
  const result = await client.query({ query, query_params, format: "JSONEachRow" });
  return result.json<T>();
}

async function clickHouseError(promise: Promise<unknown>): Promise<ClickHouseError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ClickHouseError);
  return error as ClickHouseError;
}

describe("ClickHouse HTTP server over chDB with @clickhouse/client-web", () => {
  it("answers ping and GET /ping", async () => {
    expect(await client.ping()).toEqual({ success: true });
    const res = await fetch(`${server.url}/ping`);
    expect(await res.text()).toBe("Ok.\n");
  });

  it("creates a table, inserts 10,000 JSONEachRow rows with ISO timestamps and counts them", async () => {
    await client.command({
      query: `CREATE TABLE IF NOT EXISTS events (
        id UInt32, user String, at DateTime64(3, 'UTC')
      ) ENGINE = MergeTree ORDER BY id`,
    });
    const values = Array.from({ length: 10_000 }, (_, i) => ({
      id: i,
      user: `user-${i % 100}`,
      at: new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString(),
    }));
    const insert = await client.insert({
      table: "events",
      values,
      format: "JSONEachRow",
      clickhouse_settings: { date_time_input_format: "best_effort" },
    });
    expect(insert.executed).toBe(true);
    expect(JSON.parse(insert.response_headers["x-clickhouse-summary"] as string).written_rows).toBe("10000");

    const [stats] = await rows<{ n: string | number; users: number; first: string; last: string }>(
      "SELECT count() AS n, uniqExact(user) AS users, min(at) AS first, max(at) AS last FROM events",
    );
    expect(Number(stats?.n)).toBe(10_000);
    expect(stats?.users).toBe(100);
    expect(stats?.first).toBe("2024-01-01 00:00:00.000");
    expect(stats?.last).toBe("2024-01-01 02:46:39.000");
  });

  it("does not leak per-request settings into later queries", async () => {
    const [row] = await rows<{ format: string; compatibility: string }>(
      "SELECT getSetting('date_time_input_format') AS format, getSetting('compatibility') AS compatibility",
    );
    expect(row).toEqual({ format: "basic", compatibility: "25.8" });
  });

  it("a request with force_data_skipping_indices does not break later reads of a MergeTree table", async () => {
    await client.command({
      query: `CREATE TABLE IF NOT EXISTS skipping (id UInt32, tag String, INDEX tag_idx tag TYPE bloom_filter GRANULARITY 1)
              ENGINE = MergeTree ORDER BY id`,
    });
    await client.insert({
      table: "skipping",
      values: [
        { id: 1, tag: "a" },
        { id: 2, tag: "b" },
      ],
      format: "JSONEachRow",
    });
    const forced = await client.query({
      query: "SELECT id FROM skipping WHERE tag = 'b'",
      format: "JSONEachRow",
      clickhouse_settings: { force_data_skipping_indices: "tag_idx" },
    });
    expect(await forced.json()).toEqual([{ id: 2 }]);
    // The setting really was in force for that request: a filter the index cannot serve is refused.
    const refused = await clickHouseError(
      client.query({
        query: "SELECT id FROM skipping WHERE id > 0",
        clickhouse_settings: { force_data_skipping_indices: "tag_idx" },
      }),
    );
    expect(refused.type).toBe("INDEX_NOT_USED");

    expect(await rows("SELECT id, tag FROM skipping ORDER BY id")).toEqual([
      { id: 1, tag: "a" },
      { id: 2, tag: "b" },
    ]);
    expect(await rows("SELECT id FROM skipping WHERE id > 1")).toEqual([{ id: 2 }]);
  });

  it("a numeric setting sent with one request is back to its default for the next", async () => {
    const query = "SELECT number FROM numbers(10)";
    const limited = await clickHouseError(client.query({ query, clickhouse_settings: { max_result_rows: "3" } }));
    expect(limited.type).toBe("TOO_MANY_ROWS_OR_BYTES");
    expect(await rows(query)).toHaveLength(10);
    const state = await rows<{ name: string; value: string; changed: number }>(
      `SELECT name, value, changed FROM system.settings
       WHERE name IN ('max_result_rows', 'force_data_skipping_indices', 'date_time_input_format') ORDER BY name`,
    );
    expect(state).toEqual([
      // basic is the server's default for 25.8, applied by compatibility: that is what marks it changed.
      { name: "date_time_input_format", value: "basic", changed: 1 },
      { name: "force_data_skipping_indices", value: "", changed: 0 },
      { name: "max_result_rows", value: "0", changed: 0 },
    ]);
  });

  it("an insert's deduplication token is its own: the next insert is neither dropped nor tagged with it", async () => {
    // What the analytics flush relies on: a token sent with one chunk must not stay set for the next one,
    // or ClickHouse would drop every later chunk as a repeat of the first.
    await client.command({
      query: `CREATE TABLE IF NOT EXISTS dedup (id UInt32) ENGINE = MergeTree ORDER BY id
              SETTINGS non_replicated_deduplication_window = 100`,
    });
    const insert = (ids: number[], token?: string) =>
      client.insert({
        table: "dedup",
        values: ids.map((id) => ({ id })),
        format: "JSONEachRow",
        clickhouse_settings: token ? { insert_deduplication_token: token, insert_deduplicate: 1 } : {},
      });
    await insert([1, 2], "batch:0");
    await insert([3]);
    await insert([1, 2], "batch:0"); // a repeat: dropped
    await insert([4], "batch:1");
    expect(await rows("SELECT id FROM dedup ORDER BY id")).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }]);
    expect(
      await rows(
        `SELECT name, changed FROM system.settings
         WHERE name IN ('insert_deduplication_token', 'insert_deduplicate', 'mutations_sync') ORDER BY name`,
      ),
    ).toEqual([
      { name: "insert_deduplicate", changed: 0 },
      { name: "insert_deduplication_token", changed: 0 },
      { name: "mutations_sync", changed: 0 },
    ]);
  });

  it("a SET without a session lasts for its own request only", async () => {
    await client.command({ query: "SET max_result_rows = 2" });
    expect(await rows("SELECT number FROM numbers(5)")).toHaveLength(5);
  });

  it("a query that fails part-way through its result leaves nothing behind for the next one", async () => {
    // JSON writes its header before the third row throws.
    const failed = await clickHouseError(
      client.query({ query: "SELECT throwIf(number = 3) AS x FROM numbers(5)", format: "JSON" }),
    );
    expect(failed.type).toBe("FUNCTION_THROW_IF_VALUE_IS_NON_ZERO");
    const next = await client.query({ query: "SELECT 1 AS one", format: "JSON" });
    expect(await next.json()).toMatchObject({ data: [{ one: 1 }], rows: 1 });

    await clickHouseError(client.query({ query: "SELECT throwIf(number = 3) FROM numbers(5)", format: "JSON" }));
    const raw = await fetch(server.url, {
      method: "POST",
      headers: { Authorization: `Basic ${btoa(`${USER}:${PASSWORD}`)}` },
      body: "SELECT 'next'",
    });
    expect(await raw.text()).toBe("next\n");
  });

  it("binds query parameters exactly (quotes, backslashes, newlines, tabs, unicode, arrays, dates, numbers)", async () => {
    const tricky = `it's "quoted" \\ back\\slash \\n not-a-newline\nnew line\ttab 🌍 Zoë ${"`"}`;
    const long = `${"x".repeat(5000)}'\\\n`; // long enough that the client moves params into a multipart body
    const [row] = await rows<Record<string, unknown>>(
      `SELECT {s:String} AS s, {arr:Array(String)} AS arr, {at:DateTime64(3, 'UTC')} AS at, {day:Date} AS day,
              {n:Int64} AS n, {f:Float64} AS f, {flag:Bool} AS flag, {none:Nullable(String)} AS none,
              {long:String} = {long2:String} AS same_long, length({long:String}) AS long_len,
              {col:Identifier} AS col_value
       FROM (SELECT 1 AS one)`,
      {
        s: tricky,
        arr: [tricky, "", "b"],
        at: new Date("2024-02-29T12:34:56.789Z"),
        day: "2024-02-29",
        n: -9007199254740991,
        f: 0.125,
        flag: true,
        none: null,
        long,
        long2: long,
        col: "one",
      },
    );
    expect(row).toEqual({
      s: tricky,
      arr: [tricky, "", "b"],
      at: "2024-02-29 12:34:56.789",
      day: "2024-02-29",
      n: -9007199254740991,
      f: 0.125,
      flag: true,
      none: null,
      same_long: 1,
      long_len: long.length,
      col_value: 1,
    });
  });

  it("materialized view with uniqState into AggregatingMergeTree, read with uniqMerge and through a view", async () => {
    await client.command({
      query: "CREATE TABLE IF NOT EXISTS visits (day Date, visitor String) ENGINE = MergeTree ORDER BY day",
    });
    await client.command({
      query: `CREATE TABLE IF NOT EXISTS visits_daily (day Date, visitors AggregateFunction(uniq, String))
              ENGINE = AggregatingMergeTree ORDER BY day`,
    });
    await client.command({
      query: `CREATE MATERIALIZED VIEW IF NOT EXISTS visits_daily_mv TO visits_daily AS
              SELECT day, uniqState(visitor) AS visitors FROM visits GROUP BY day`,
    });
    await client.command({
      query: `CREATE VIEW IF NOT EXISTS visits_per_day AS
              SELECT day, uniqMerge(visitors) AS visitors FROM visits_daily GROUP BY day`,
    });
    // Two inserts make two parts with overlapping visitors: only uniqMerge gives the right answer.
    await client.insert({
      table: "visits",
      values: [
        { day: "2024-03-01", visitor: "a" },
        { day: "2024-03-01", visitor: "b" },
        { day: "2024-03-02", visitor: "a" },
      ],
      format: "JSONEachRow",
    });
    await client.insert({
      table: "visits",
      values: [
        { day: "2024-03-01", visitor: "a" },
        { day: "2024-03-01", visitor: "c" },
      ],
      format: "JSONEachRow",
    });
    const merged = await rows<{ day: string; visitors: number }>(
      "SELECT day, uniqMerge(visitors) AS visitors FROM visits_daily GROUP BY day ORDER BY day",
    );
    expect(merged).toEqual([
      { day: "2024-03-01", visitors: 3 },
      { day: "2024-03-02", visitors: 1 },
    ]);
    const viaView = await client.query({ query: "SELECT * FROM visits_per_day ORDER BY day", format: "JSON" });
    expect((await viaView.json<{ day: string; visitors: number }>()).data).toEqual(merged);
    expect(await rows("EXISTS TABLE visits_daily_mv")).toEqual([{ result: 1 }]);
    expect(await rows("EXISTS TABLE no_such_table")).toEqual([{ result: 0 }]);
  });

  it("returns CSV, TabSeparated, JSONCompactEachRow and exec() output", async () => {
    const query = "SELECT number AS n, concat('v', toString(number)) AS s FROM numbers(2)";
    expect(await (await client.query({ query, format: "CSV" })).text()).toBe('0,"v0"\n1,"v1"\n');
    expect(await (await client.query({ query, format: "TabSeparated" })).text()).toBe("0\tv0\n1\tv1\n");
    expect(await (await client.query({ query, format: "JSONCompactEachRow" })).json()).toEqual([
      [0, "v0"],
      [1, "v1"],
    ]);
    const exec = await client.exec({ query: `${query} FORMAT JSONEachRow` });
    expect(await new Response(exec.stream).text()).toBe('{"n":0,"s":"v0"}\n{"n":1,"s":"v1"}\n');
  });

  it("sends response headers and gzip-compresses when the client asks", async () => {
    const gzip = createClient({ url: server.url, username: USER, password: PASSWORD, compression: { response: true } });
    const result = await gzip.query({ query: "SELECT 1 AS one", format: "JSONEachRow", query_id: "my-query-id" });
    expect(await result.json()).toEqual([{ one: 1 }]);
    expect(result.query_id).toBe("my-query-id");
    expect(result.response_headers["x-clickhouse-query-id"]).toBe("my-query-id");
    expect(result.response_headers["x-clickhouse-format"]).toBe("JSONEachRow");
    expect(JSON.parse(result.response_headers["x-clickhouse-summary"] as string)).toMatchObject({ read_rows: "1" });
    await gzip.close();

    const raw = await fetch(`${server.url}/?enable_http_compression=1`, {
      method: "POST",
      headers: { Authorization: `Basic ${btoa(`${USER}:${PASSWORD}`)}`, "Accept-Encoding": "gzip" },
      body: "SELECT 1",
    });
    expect(raw.headers.get("content-encoding")).toBe("gzip");
    expect(await raw.text()).toBe("1\n");
  });

  it("accepts X-ClickHouse-User/Key headers and rejects a wrong password with AUTHENTICATION_FAILED (516)", async () => {
    const ok = await fetch(`${server.url}/?query=SELECT%20'hi'`, {
      headers: { "X-ClickHouse-User": USER, "X-ClickHouse-Key": PASSWORD },
    });
    expect(await ok.text()).toBe("hi\n");

    const wrong = createClient({ url: server.url, username: USER, password: "nope" });
    const error = await clickHouseError(wrong.query({ query: "SELECT 1" }));
    expect(error.code).toBe("516");
    expect(error.type).toBe("AUTHENTICATION_FAILED");
    expect((await wrong.ping()).success).toBe(false);
    await wrong.close();

    const raw = await fetch(`${server.url}/?query=SELECT%201`);
    expect(raw.status).toBe(403);
    expect(raw.headers.get("x-clickhouse-exception-code")).toBe("516");
  });

  it("surfaces a syntax error (62, HTTP 400) and an unknown table (60, HTTP 404) as ClickHouseError", async () => {
    const syntax = await clickHouseError(client.query({ query: "SELEC 1" }));
    expect(syntax.code).toBe("62");
    const multi = await clickHouseError(client.command({ query: "SELECT 1; SELECT 2" }));
    expect(multi.code).toBe("62");
    const unknown = await clickHouseError(client.query({ query: "SELECT * FROM no_such_table" }));
    expect(unknown.code).toBe("60");
    expect(unknown.type).toBe("UNKNOWN_TABLE");

    const auth = { Authorization: `Basic ${btoa(`${USER}:${PASSWORD}`)}` };
    const bad = await fetch(server.url, { method: "POST", headers: auth, body: "SELEC 1" });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("x-clickhouse-exception-code")).toBe("62");
    expect(await bad.text()).toMatch(/^Code: 62\. DB::Exception: .*\(SYNTAX_ERROR\) \(version [^)]+\)\n$/s);
    const missing = await fetch(server.url, { method: "POST", headers: auth, body: "SELECT * FROM no_such_table" });
    expect(missing.status).toBe(404);
  });

  it("queues 20 concurrent queries and answers each correctly", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        rows<{ i: number; n: string | number }>("SELECT {i:UInt32} AS i, count() AS n FROM events", { i }),
      ),
    );
    results.forEach((result, i) => {
      expect(result).toHaveLength(1);
      expect(result[0]?.i).toBe(i);
      expect(Number(result[0]?.n)).toBe(10_000);
    });
  });
});

describe("named sessions (session_id) with @clickhouse/client-web", () => {
  const sessionClient = (session_id: string, clickhouse_settings?: ClickHouseSettings) =>
    createClient({ url: server.url, username: USER, password: PASSWORD, session_id, clickhouse_settings });

  async function sessionRows<T>(c: ClickHouseClient, query: string, settings?: ClickHouseSettings): Promise<T[]> {
    const result = await c.query({ query, format: "JSONEachRow", clickhouse_settings: settings });
    return result.json<T>();
  }

  it("a temporary table lives in its session only", async () => {
    const a = sessionClient(`a-${randomUUID()}`);
    const b = sessionClient(`b-${randomUUID()}`);
    try {
      await a.command({ query: "CREATE TEMPORARY TABLE scratch (id UInt32, who String)" });
      await a.insert({ table: "scratch", values: [{ id: 1, who: "a" }], format: "JSONEachRow" });
      await a.command({ query: "INSERT INTO scratch VALUES (2, 'a')" });
      expect(await sessionRows(a, "SELECT id, who FROM scratch ORDER BY id")).toEqual([
        { id: 1, who: "a" },
        { id: 2, who: "a" },
      ]);

      expect((await clickHouseError(b.query({ query: "SELECT * FROM scratch" }))).type).toBe("UNKNOWN_TABLE");
      expect((await clickHouseError(client.query({ query: "SELECT * FROM scratch" }))).type).toBe("UNKNOWN_TABLE");
      // B's table of the same name is B's own.
      await b.command({ query: "CREATE TEMPORARY TABLE scratch (id UInt32, who String)" });
      await b.insert({ table: "scratch", values: [{ id: 9, who: "b" }], format: "JSONEachRow" });
      expect(await sessionRows(b, "SELECT id, who FROM scratch")).toEqual([{ id: 9, who: "b" }]);
      expect(await sessionRows(a, "SELECT count() AS n FROM scratch")).toEqual([{ n: 2 }]);

      // Without a session a temporary table is gone as soon as its request is.
      await client.command({ query: "CREATE TEMPORARY TABLE loose (id UInt8)" });
      expect((await clickHouseError(client.query({ query: "SELECT * FROM loose" }))).type).toBe("UNKNOWN_TABLE");
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a SET stays in its session; a setting sent with one request does not replace it", async () => {
    const a = sessionClient(`a-${randomUUID()}`);
    const b = sessionClient(`b-${randomUUID()}`);
    const five = "SELECT number FROM numbers(5)";
    try {
      await a.command({ query: "SET max_result_rows = 1" });
      expect((await clickHouseError(a.query({ query: five }))).type).toBe("TOO_MANY_ROWS_OR_BYTES");
      expect(await sessionRows(b, five)).toHaveLength(5);
      expect(await rows(five)).toHaveLength(5);

      expect(await sessionRows(a, five, { max_result_rows: "10", result_overflow_mode: "throw" })).toHaveLength(5);
      expect((await clickHouseError(a.query({ query: five }))).type).toBe("TOO_MANY_ROWS_OR_BYTES");
      // A setting the session never SET goes back to unset there too.
      await sessionRows(a, "SELECT 1", { force_data_skipping_indices: "none" });
      expect(
        await sessionRows(a, "SELECT changed FROM system.settings WHERE name = 'force_data_skipping_indices'"),
      ).toEqual([{ changed: 0 }]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a session's SET and temporary tables never reach session-less requests, which the API's flush makes", async () => {
    const a = sessionClient(`a-${randomUUID()}`);
    try {
      await client.command({
        query: `CREATE TABLE IF NOT EXISTS guarded (id UInt32) ENGINE = MergeTree ORDER BY id
                SETTINGS non_replicated_deduplication_window = 100`,
      });
      // The session turns deduplication off and shadows the table with a temporary one of the same name.
      await a.command({ query: "SET insert_deduplicate = 0" });
      await a.command({ query: "CREATE TEMPORARY TABLE guarded (id UInt32)" });
      await a.insert({ table: "guarded", values: [{ id: 100 }], format: "JSONEachRow" });
      const tokenised = (id: number) =>
        client.insert({
          table: "guarded",
          values: [{ id }],
          format: "JSONEachRow",
          clickhouse_settings: { insert_deduplication_token: "same-chunk" },
        });
      await tokenised(1);
      await tokenised(1);
      expect(await rows("SELECT id FROM guarded")).toEqual([{ id: 1 }]);
      expect(await sessionRows(a, "SELECT id FROM guarded")).toEqual([{ id: 100 }]);
      expect(await sessionRows(a, "SELECT getSetting('insert_deduplicate') AS on")).toEqual([{ on: false }]);
      expect(await rows("SELECT getSetting('insert_deduplicate') AS on")).toEqual([{ on: true }]);
    } finally {
      await a.close();
    }
  });

  it("USE switches the session's database; the database option switches it for one request", async () => {
    await client.command({ query: "CREATE DATABASE IF NOT EXISTS side" });
    const id = `a-${randomUUID()}`;
    const a = sessionClient(id);
    try {
      await a.command({ query: "USE side" });
      expect(await sessionRows(a, "SELECT currentDatabase() AS db")).toEqual([{ db: "side" }]);
      expect(await rows("SELECT currentDatabase() AS db")).toEqual([{ db: "default" }]);
      const other = createClient({
        url: server.url,
        username: USER,
        password: PASSWORD,
        session_id: id,
        database: "system",
      });
      expect(await sessionRows(other, "SELECT currentDatabase() AS db")).toEqual([{ db: "system" }]);
      await other.close();
      expect(await sessionRows(a, "SELECT currentDatabase() AS db")).toEqual([{ db: "side" }]);
    } finally {
      await a.close();
    }
  });

  it("a session in use refuses a concurrent request with SESSION_IS_LOCKED (373)", async () => {
    const id = `busy-${randomUUID()}`;
    const a = sessionClient(id);
    try {
      const slow = a.query({ query: "SELECT sleep(0.5) AS slept", format: "JSONEachRow" });
      await new Promise((r) => setTimeout(r, 100));
      const locked = await clickHouseError(a.query({ query: "SELECT 1" }));
      expect(locked.code).toBe("373");
      expect(locked.type).toBe("SESSION_IS_LOCKED");
      expect(locked.message).toBe(`Session ${id} is locked by a concurrent client. `);
      expect(await (await slow).json()).toEqual([{ slept: 0 }]);
      // Once the query is done the session is free again.
      expect(await sessionRows(a, "SELECT 2 AS two")).toEqual([{ two: 2 }]);

      const blocker = a.query({ query: "SELECT sleep(0.5)" });
      await new Promise((r) => setTimeout(r, 100));
      const raw = await fetch(`${server.url}/?session_id=${id}`, {
        method: "POST",
        headers: { Authorization: `Basic ${btoa(`${USER}:${PASSWORD}`)}` },
        body: "SELECT 1",
      });
      expect(raw.status).toBe(500);
      expect(raw.headers.get("x-clickhouse-exception-code")).toBe("373");
      expect(await raw.text()).toMatch(
        new RegExp(
          `^Code: 373\\. DB::Exception: Session ${id} is locked by a concurrent client\\. \\(SESSION_IS_LOCKED\\) \\(version [^)]+\\)\\n$`,
        ),
      );
      await blocker;
    } finally {
      await a.close();
    }
  });

  it("a session expires session_timeout seconds after its last request", async () => {
    const id = `short-${randomUUID()}`;
    const a = sessionClient(id, { session_timeout: "1" });
    try {
      await a.command({ query: "CREATE TEMPORARY TABLE brief (id UInt8)" });
      await a.command({ query: "SET max_result_rows = 1" });
      await new Promise((r) => setTimeout(r, 600));
      // A request within the timeout keeps it alive and restarts the clock.
      expect(await sessionRows(a, "SELECT count() AS n FROM brief", { session_check: 1 })).toEqual([{ n: 0 }]);
      await new Promise((r) => setTimeout(r, 600));
      expect(await sessionRows(a, "SELECT count() AS n FROM brief", { session_check: 1 })).toEqual([{ n: 0 }]);

      await new Promise((r) => setTimeout(r, 1300));
      const gone = await clickHouseError(a.query({ query: "SELECT 1", clickhouse_settings: { session_check: 1 } }));
      expect(gone.code).toBe("372");
      expect(gone.type).toBe("SESSION_NOT_FOUND");
      // Without session_check the same id starts a fresh session: no table, no SET.
      expect((await clickHouseError(a.query({ query: "SELECT * FROM brief" }))).type).toBe("UNKNOWN_TABLE");
      expect(await sessionRows(a, "SELECT number FROM numbers(3)")).toHaveLength(3);
    } finally {
      await a.close();
    }
  });

  it("close_session=1 ends the session with its request; a session_timeout over the maximum is refused", async () => {
    const id = `closing-${randomUUID()}`;
    const a = sessionClient(id);
    try {
      await a.command({ query: "CREATE TEMPORARY TABLE closing (id UInt8)" });
      await a.command({ query: "SELECT count() FROM closing", clickhouse_settings: { close_session: 1 } });
      const gone = await clickHouseError(a.query({ query: "SELECT 1", clickhouse_settings: { session_check: 1 } }));
      expect(gone.type).toBe("SESSION_NOT_FOUND");

      const tooLong = await clickHouseError(
        a.query({ query: "SELECT 1", clickhouse_settings: { session_timeout: "3601" } }),
      );
      expect(tooLong.code).toBe("374");
      expect(tooLong.type).toBe("INVALID_SESSION_TIMEOUT");
    } finally {
      await a.close();
    }
  });
});
