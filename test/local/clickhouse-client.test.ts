import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@clickhouse/client-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningClickHouseServer, startClickHouseServer } from "../../scripts/local/clickhouse-server";
import { freePort } from "../../scripts/local/ports";
import { type ClickHouseClient, ClickHouseError, createClickHouse } from "../../src/platform/clickhouse";
import { StoreUnavailableError } from "../../src/platform/errors";

/**
 * The Worker's ClickHouse client (src/platform/clickhouse.ts) sends what @clickhouse/client-web sends for the
 * same calls, and reads the answers of ClickHouse's HTTP interface (the local one over chDB) as it does.
 */

const USER = "default";
const PASSWORD = "test-password-0123";

interface Received {
  method: string;
  path: string;
  params: [string, string][];
  authorization: string | undefined;
  contentType: string | undefined;
  body: string;
}

/** An HTTP server that records each request and answers like ClickHouse with one JSONEachRow row. */
async function startRecorder(): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? "/", "http://recorder");
    received.push({
      method: req.method ?? "",
      path: url.pathname,
      // The query id is a fresh UUID per request in both clients.
      params: [...url.searchParams].map(([k, v]) => [
        k,
        k === "query_id" ? (/^[0-9a-f-]{36}$/.test(v) ? "uuid" : v) : v,
      ]),
      authorization: req.headers.authorization,
      contentType: req.headers["content-type"],
      body: Buffer.concat(chunks).toString("utf8"),
    });
    res.writeHead(200, { "content-type": "application/x-ndjson" }).end('{"ok":1}\n');
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, server };
}

/** The official client, configured as the Worker configured it before it had its own. */
function official(url: string, database = "circle") {
  return createClient({
    url,
    username: USER,
    password: PASSWORD,
    database,
    request_timeout: 5_000,
    clickhouse_settings: { date_time_input_format: "best_effort" },
  });
}

const ours = (url: string, database = "circle") =>
  createClickHouse({ url, user: USER, password: PASSWORD, database, timeoutMs: 5_000 });

type Call = (client: Pick<ClickHouseClient, "query" | "command" | "insert" | "ping">) => Promise<unknown>;

const calls: [string, Call][] = [
  [
    "a query with parameters of every kind",
    (c) =>
      c.query({
        query: "SELECT {s:String}, {n:Int64}, {list:Array(String)}, {nothing:Nullable(String)} ;;",
        query_params: {
          s: "tab\tnew\nline\rquote' back\\slash — ünïcode",
          n: -42,
          f: 1.5,
          nan: Number.NaN,
          inf: Number.POSITIVE_INFINITY,
          big: 9007199254740993n,
          yes: true,
          list: ["a'b", "c\\d", null, 3, false],
          nothing: null,
          at: new Date("2026-11-30T12:00:00.123Z"),
          whole: new Date("2026-11-30T12:00:00Z"),
          map: { k: "v", n: 1 },
        },
        format: "JSONEachRow",
      }),
  ],
  [
    "a query with its own settings",
    (c) =>
      c.query({ query: "SELECT 1", format: "JSONEachRow", clickhouse_settings: { max_execution_time: 5, a: true } }),
  ],
  [
    "a command with parameters",
    (c) =>
      c.command({
        query: "  DELETE FROM events WHERE user_id = {userId:String} OR has({devices:Array(String)}, device_id);  ",
        query_params: { userId: "u1", devices: ["d1", "d2"] },
      }),
  ],
  ["a command without parameters", (c) => c.command({ query: "CREATE TABLE t (x UInt8) ENGINE = Memory" })],
  [
    "an insert with a deduplication token",
    (c) =>
      c.insert({
        table: " events ",
        values: [
          { a: 1, s: "x\ny", nested: { b: [1, 2] } },
          { a: 2, s: "ü", nested: null },
        ],
        format: "JSONEachRow",
        clickhouse_settings: { insert_deduplication_token: "batch:0", insert_deduplicate: 1 },
      }),
  ],
  ["an insert of no rows (sends nothing)", (c) => c.insert({ table: "events", values: [], format: "JSONEachRow" })],
  ["a ping", (c) => c.ping()],
];

describe("what the client sends", () => {
  let recorder: Awaited<ReturnType<typeof startRecorder>>;
  beforeAll(async () => {
    recorder = await startRecorder();
  });
  afterAll(() => new Promise<void>((resolve) => recorder.server.close(() => resolve())));

  it.each(calls)("%s: the same request as @clickhouse/client-web", async (_label, call) => {
    for (const database of ["circle", "default"]) {
      recorder.received.length = 0;
      await call(official(recorder.url, database) as unknown as ClickHouseClient);
      const theirs = recorder.received.splice(0);
      await call(ours(recorder.url, database));
      const mine = recorder.received.splice(0);
      expect(mine).toEqual(theirs);
    }
  });
});

describe("against ClickHouse's HTTP interface (chDB)", () => {
  let dir: string;
  let server: RunningClickHouseServer;
  let client: ClickHouseClient;
  let reference: ReturnType<typeof official>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "clickhouse-client-"));
    server = await startClickHouseServer({ port: await freePort(), dataDir: dir, user: USER, password: PASSWORD });
    client = ours(server.url, "default");
    reference = official(server.url, "default");
    await client.command({
      query: "CREATE TABLE rows (id UInt32, label String, at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY id",
    });
  });

  afterAll(async () => {
    await reference?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("inserts rows and reads them back as the official client reads them, whole and streamed", async () => {
    const values = Array.from({ length: 20_000 }, (_, i) => ({
      id: i,
      label: `row ${i} — "quoted"\n`,
      at: new Date(Date.UTC(2026, 0, 1) + i).toISOString(),
    }));
    await client.insert({ table: "rows", values, format: "JSONEachRow" });
    const query = "SELECT id, label, at FROM rows WHERE id >= {from:UInt32} ORDER BY id";
    const mine = await (await client.query({ query, query_params: { from: 10 }, format: "JSONEachRow" })).json();
    const theirs = await (await reference.query({ query, query_params: { from: 10 }, format: "JSONEachRow" })).json();
    expect(mine).toHaveLength(19_990);
    expect(mine).toEqual(theirs);

    const reader = (await client.query({ query, query_params: { from: 0 }, format: "JSONEachRow" }))
      .stream<{ id: number; label: string }>()
      .getReader();
    const streamed: { id: number; label: string }[] = [];
    let batches = 0;
    for (let next = await reader.read(); !next.done; next = await reader.read()) {
      batches++;
      for (const row of next.value) streamed.push(row.json());
    }
    expect(streamed.map((r) => r.id)).toEqual(values.map((v) => v.id));
    expect(streamed[7]?.label).toBe(values[7]?.label);
    expect(batches).toBeGreaterThan(1);
  });

  it("answers an exception as a ClickHouseError with ClickHouse's code and name", async () => {
    const unknownTable = await client.query({ query: "SELECT * FROM missing", format: "JSONEachRow" }).catch((e) => e);
    expect(unknownTable).toBeInstanceOf(ClickHouseError);
    expect(unknownTable).toMatchObject({ code: "60", type: "UNKNOWN_TABLE" });
    const syntax = await client.command({ query: "SELEC nonsense" }).catch((e) => e);
    const theirs = await reference.command({ query: "SELEC nonsense" }).catch((e) => e);
    expect(syntax).toBeInstanceOf(ClickHouseError);
    expect(syntax.code).toBe("62");
    // Read exactly as client-web reads it (whose pattern takes "(SELEC" from the quoted query for the name).
    expect({ code: syntax.code, type: syntax.type, message: syntax.message }).toEqual({
      code: theirs.code,
      type: theirs.type,
      message: theirs.message,
    });
  });

  it("pings: true with the right password, a ClickHouseError with the wrong one", async () => {
    expect(await client.ping()).toEqual({ success: true });
    const wrong = createClickHouse({
      url: server.url,
      user: USER,
      password: "wrong",
      database: "default",
      timeoutMs: 5_000,
    });
    const result = await wrong.ping();
    expect(result.success).toBe(false);
    expect(!result.success && result.error).toMatchObject({ code: "516", type: "AUTHENTICATION_FAILED" });
  });

  it("is an outage (StoreUnavailableError) when nothing answers", async () => {
    const nowhere = createClickHouse({
      url: `http://127.0.0.1:${await freePort()}`,
      user: USER,
      password: PASSWORD,
      database: "default",
      timeoutMs: 2_000,
    });
    await expect(nowhere.query({ query: "SELECT 1", format: "JSONEachRow" })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    const ping = await nowhere.ping();
    expect(!ping.success && ping.error).toBeInstanceOf(StoreUnavailableError);
  });
});
