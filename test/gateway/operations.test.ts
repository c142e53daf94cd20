import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { MongoNetworkError, MongoServerError } from "mongodb";
import { describe, expect, it } from "vitest";
import { ApiKeyVerifier } from "../../gateway/auth";
import { MongoBackend, mapMongoError } from "../../gateway/backends/mongodb";
import { loadGatewayConfig } from "../../gateway/config";
import { freePort } from "../../scripts/local/ports";
import { API_KEY, startTestGateway, uniqueName } from "./harness";

/** Running the gateway: configuration, the CLI, request logs, a MongoDB that is down, error mapping. */

describe("configuration from the environment", () => {
  it("reads every setting with its default", () => {
    const options = loadGatewayConfig({ DATA_API_KEYS: "k1, k2" });
    expect(options).toEqual({
      port: 8081,
      host: "127.0.0.1",
      apiKeys: ["k1", "k2"],
      databases: ["circle"],
      backend: { kind: "embedded" },
    });
    const full = loadGatewayConfig({
      DATA_API_KEYS: "k",
      GATEWAY_PORT: "9000",
      GATEWAY_HOST: "0.0.0.0",
      DATA_API_DATABASES: "circle,analytics",
      MONGODB_URI: "mongodb://db:27017/?maxPoolSize=20",
      GATEWAY_MAX_BODY_BYTES: "1000",
      GATEWAY_MAX_LIMIT: "10",
      GATEWAY_MAX_TIME_MS: "500",
      GATEWAY_MAX_BATCH_OPERATIONS: "20",
    });
    expect(full).toMatchObject({
      port: 9000,
      host: "0.0.0.0",
      databases: ["circle", "analytics"],
      backend: { kind: "mongodb", uri: "mongodb://db:27017/?maxPoolSize=20" },
      maxBodyBytes: 1000,
      maxLimit: 10,
      maxTimeMS: 500,
      maxBatchOperations: 20,
    });
    expect(loadGatewayConfig({ DATA_API_KEYS: "k", GATEWAY_DATA_DIR: ".data/docs" }).backend).toEqual({
      kind: "embedded",
      dataDir: ".data/docs",
    });
    expect(
      loadGatewayConfig({ DATA_API_KEYS: "k", GATEWAY_DATA_DIR: ".data/docs", GATEWAY_COMPACT_BYTES: "65536" }).backend,
    ).toEqual({ kind: "embedded", dataDir: ".data/docs", compactAfterBytes: 65_536 });
  });

  it.each([
    [{}, "DATA_API_KEYS"],
    [{ DATA_API_KEYS: " , " }, "DATA_API_KEYS"],
    [{ DATA_API_KEYS: "k", GATEWAY_PORT: "http" }, "GATEWAY_PORT"],
    [{ DATA_API_KEYS: "k", GATEWAY_PORT: "70000" }, "GATEWAY_PORT"],
    [{ DATA_API_KEYS: "k", MONGODB_URI: "postgres://x" }, "MONGODB_URI"],
    [{ DATA_API_KEYS: "k", GATEWAY_MAX_LIMIT: "-5" }, "GATEWAY_MAX_LIMIT"],
    [{ DATA_API_KEYS: "k", GATEWAY_MAX_TIME_MS: "0" }, "GATEWAY_MAX_TIME_MS"],
    [{ DATA_API_KEYS: "k", GATEWAY_COMPACT_BYTES: "lots" }, "GATEWAY_COMPACT_BYTES"],
  ])("rejects %j naming %s", (env, name) => {
    expect(() => loadGatewayConfig(env)).toThrow(name);
  });

  it("never echoes a secret in the error", () => {
    expect(() => loadGatewayConfig({ DATA_API_KEYS: "k", MONGODB_URI: "mongo://user:hunter2@db" })).toThrow(
      /^(?!.*hunter2)/,
    );
  });
});

describe("API keys", () => {
  it("accepts any configured key and nothing else", async () => {
    const verifier = new ApiKeyVerifier(["alpha", "beta"]);
    expect(await verifier.verify("alpha")).toBe(true);
    expect(await verifier.verify("beta")).toBe(true);
    expect(await verifier.verify("alph")).toBe(false);
    expect(await verifier.verify("alphaa")).toBe(false);
    expect(await verifier.verify("")).toBe(false);
    expect(await verifier.verify(undefined)).toBe(false);
    expect(() => new ApiKeyVerifier([])).toThrow();
  });
});

describe("request log", () => {
  it("writes one JSON line per request with method, action, collection, status and ms, and no secrets", async () => {
    const lines: string[] = [];
    const gateway = await startTestGateway("embedded", { log: (line) => lines.push(line) });
    try {
      const coll = uniqueName("logged");
      await gateway.client.ok("insertOne", coll, { document: { secret: "do-not-log-me" } });
      await gateway.client.call("find", coll, {}, { apiKey: "wrong-key-xyz" });
      await gateway.client.call("insertOne", coll, { document: { _id: 1, $where: "x" } });
      const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(entries).toHaveLength(3);
      expect(entries[0]).toMatchObject({ method: "POST", action: "insertOne", collection: coll, status: 200 });
      expect(typeof entries[0]?.ms).toBe("number");
      expect(entries[1]).toMatchObject({ action: "find", status: 401, error_code: "Unauthorized" });
      expect(entries[2]).toMatchObject({ status: 400, error_code: "ForbiddenOperator" });
      const all = lines.join("\n");
      expect(all).not.toContain(API_KEY);
      expect(all).not.toContain("wrong-key-xyz");
      expect(all).not.toContain("do-not-log-me");
    } finally {
      await gateway.stop();
    }
  });
});

describe("a MongoDB that cannot be reached", () => {
  it("answers 503 Unavailable with Retry-After, and /health says so", async () => {
    const port = await freePort();
    const gateway = await startTestGateway("mongodb", {
      database: "circle_down",
      backend: {
        kind: "mongodb",
        uri: `mongodb://127.0.0.1:${port}/?serverSelectionTimeoutMS=300&connectTimeoutMS=300`,
      },
    });
    try {
      const response = await gateway.client.call("find", "anything", { filter: {} });
      expect(response.status).toBe(503);
      expect(response.body.error_code).toBe("Unavailable");
      expect(response.headers.get("retry-after")).toBe("1");
      expect(JSON.stringify(response.body)).not.toContain("    at ");
      const health = await fetch(`${gateway.gateway.origin}/health`);
      expect(health.status).toBe(503);
      expect(await health.json()).toEqual({ ok: false, backend: "mongodb" });
    } finally {
      await gateway.stop();
    }
  });
});

describe("MongoDB driver errors", () => {
  const serverError = (fields: Record<string, unknown>) => new MongoServerError({ errmsg: "boom", ...fields });

  it("maps duplicate keys, timeouts, index conflicts, bad input and outages", () => {
    const duplicate = mapMongoError(
      serverError({ code: 11000, errmsg: "E11000 duplicate key", keyPattern: { email: 1 }, keyValue: { email: "a" } }),
    );
    expect(duplicate.status).toBe(409);
    expect(duplicate.toBody()).toEqual({
      error: "E11000 duplicate key",
      error_code: "DuplicateKey",
      keyPattern: { email: 1 },
      keyValue: { email: "a" },
    });
    expect(mapMongoError(serverError({ code: 50, codeName: "MaxTimeMSExpired" })).code).toBe("ExecutionTimeout");
    expect(mapMongoError(serverError({ code: 50 })).status).toBe(504);
    expect(mapMongoError(serverError({ code: 86 })).code).toBe("IndexConflict");
    expect(mapMongoError(serverError({ code: 2, errmsg: "unknown operator: $x" })).toBody()).toEqual({
      error: "unknown operator: $x",
      error_code: "InvalidParameter",
    });
    expect(mapMongoError(serverError({ code: 66 })).code).toBe("InvalidParameter");
    expect(mapMongoError(serverError({ code: 16410 })).code).toBe("InvalidParameter");
    expect(mapMongoError(serverError({ code: 10107, codeName: "NotWritablePrimary" })).code).toBe("Unavailable");
    expect(mapMongoError(new MongoNetworkError("socket closed")).status).toBe(503);
    const internal = mapMongoError(new Error("secret detail"));
    expect(internal.toBody()).toEqual({ error: "internal error", error_code: "InternalError" });
  });
});

describe("MongoDB bulk writes as raw write commands", () => {
  type Command = Record<string, unknown>;

  /** A MongoBackend whose database answers write commands from a script (no server needed). */
  function scriptedBackend(replies: Command[]): { backend: MongoBackend; commands: Command[] } {
    const backend = new MongoBackend({ uri: "mongodb://127.0.0.1:1", maxTimeMS: 1234 });
    const commands: Command[] = [];
    const client = (backend as unknown as { client: { db: (name: string) => unknown } }).client;
    client.db = () => ({
      command: async (command: Command) => {
        commands.push(command);
        return replies.shift() ?? { ok: 1, n: 0 };
      },
    });
    return { backend, commands };
  }

  const ns = { database: "circle", collection: "votes" };
  const duplicate = { index: 1, code: 11000, errmsg: "E11000 dup", keyPattern: { k: 1 }, keyValue: { k: "x" } };

  it("groups consecutive operations, counts results and maps ids to operation indexes", async () => {
    const { backend, commands } = scriptedBackend([
      { ok: 1, n: 2 },
      { ok: 1, n: 3, nModified: 1, upserted: [{ index: 1, _id: "new" }] },
      { ok: 1, n: 4 },
    ]);
    const result = await backend.bulkWrite(
      ns,
      [
        { insertOne: { document: { _id: "a" } } },
        { insertOne: { document: { k: "b" } } },
        { updateOne: { filter: { _id: "a" }, update: { $set: { v: 1 } }, upsert: false } },
        { updateMany: { filter: { v: 0 }, update: [{ $set: { v: 1 } }], upsert: true } },
        { replaceOne: { filter: { _id: "z" }, replacement: { v: 2 }, upsert: false } },
        { deleteMany: { filter: { v: 9 } } },
      ],
      true,
    );
    expect(commands.map((command) => Object.keys(command)[0])).toEqual(["insert", "update", "delete"]);
    expect(commands[0]).toMatchObject({ insert: "votes", ordered: true, maxTimeMS: 1234 });
    expect(commands[1]?.updates).toEqual([
      { q: { _id: "a" }, u: { $set: { v: 1 } }, upsert: false, multi: false },
      { q: { v: 0 }, u: [{ $set: { v: 1 } }], upsert: true, multi: true },
      { q: { _id: "z" }, u: { v: 2 }, upsert: false, multi: false },
    ]);
    expect(commands[2]?.deletes).toEqual([{ q: { v: 9 }, limit: 0 }]);
    expect(result).toMatchObject({
      insertedCount: 2,
      matchedCount: 2,
      modifiedCount: 1,
      deletedCount: 4,
      upsertedCount: 1,
      upsertedIds: { 3: "new" },
    });
    expect(result.insertedIds[0]).toBe("a");
    expect(result.insertedIds[1]).toBeDefined();
    await backend.close();
  });

  it("ordered: stops after the batch with a write error and reports keyPattern, keyValue and the partial result", async () => {
    const { backend, commands } = scriptedBackend([{ ok: 1, n: 1, writeErrors: [duplicate] }]);
    const error = await backend
      .bulkWrite(
        ns,
        [
          { insertOne: { document: { _id: 1, k: "w" } } },
          { insertOne: { document: { _id: 2, k: "x" } } },
          { insertOne: { document: { _id: 3, k: "y" } } },
          { deleteOne: { filter: { _id: 1 } } },
        ],
        true,
      )
      .catch((caught: unknown) => caught);
    expect(commands).toHaveLength(1);
    expect(error).toMatchObject({ code: "DuplicateKey", status: 409 });
    expect((error as { toBody(): unknown }).toBody()).toEqual({
      error: "E11000 dup",
      error_code: "DuplicateKey",
      keyPattern: { k: 1 },
      keyValue: { k: "x" },
      writeErrors: [duplicate],
      result: expect.objectContaining({ insertedCount: 1, insertedIds: { 0: 1 } }),
    });
    await backend.close();
  });

  it("unordered: keeps going and insertMany reports ids in order", async () => {
    const { backend } = scriptedBackend([{ ok: 1, n: 2, writeErrors: [duplicate] }]);
    const error = await backend
      .insertMany(ns, [{ _id: 1 }, { _id: 2 }, { _id: 3 }], false)
      .catch((caught: unknown) => caught);
    expect((error as { extra: Record<string, unknown> }).extra.result).toEqual({
      insertedCount: 2,
      insertedIds: [1, 3],
    });
    await backend.close();
  });
});

describe("the gateway CLI", () => {
  const tsxLoader = ["--import", "tsx"];

  function startCli(env: Record<string, string>): { child: ChildProcess; lines: AsyncIterator<string> } {
    const child = spawn(process.execPath, [...tsxLoader, "gateway/server.ts"], {
      cwd: process.cwd(),
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
    return { child, lines };
  }

  function exitOf(child: ChildProcess): Promise<number | null> {
    return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  }

  it("serves, logs JSON lines and stops gracefully on SIGTERM", async () => {
    const port = await freePort();
    const { child, lines } = startCli({
      DATA_API_KEYS: "cli-key",
      GATEWAY_PORT: String(port),
      DATA_API_DATABASES: "circle",
    });
    const exited = exitOf(child);
    try {
      const ready = JSON.parse((await lines.next()).value as string) as { url: string; backend: string };
      expect(ready.backend).toBe("embedded");
      const response = await fetch(`${ready.url}/action/insertOne`, {
        method: "POST",
        headers: { apiKey: "cli-key", "content-type": "application/json" },
        body: JSON.stringify({ dataSource: "circle", database: "circle", collection: "c", document: { a: 1 } }),
      });
      expect(response.status).toBe(200);
      const logLine = JSON.parse((await lines.next()).value as string) as Record<string, unknown>;
      expect(logLine).toMatchObject({ method: "POST", action: "insertOne", collection: "c", status: 200 });
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });

  it("exits naming the missing setting", async () => {
    const { child } = startCli({ GATEWAY_PORT: "1" });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    expect(await exitOf(child)).toBe(2);
    expect(stderr).toContain("DATA_API_KEYS");
  });
});

describe("the gateway on Deno", () => {
  it("serves the same protocol from gateway/deno.ts and stops on SIGTERM", async () => {
    const port = await freePort();
    const child = spawn(
      "node_modules/.bin/deno",
      [
        "run",
        "--sloppy-imports",
        "--allow-net",
        "--allow-env",
        "--allow-read",
        "--allow-write",
        "--allow-sys",
        "gateway/deno.ts",
      ],
      {
        cwd: process.cwd(),
        env: {
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "",
          DENO_NO_UPDATE_CHECK: "1",
          DATA_API_KEYS: "deno-key",
          GATEWAY_PORT: String(port),
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const origin = `http://127.0.0.1:${port}`;
      let ready = false;
      for (let attempt = 0; attempt < 120 && !ready; attempt++) {
        ready = await fetch(`${origin}/health`).then(
          (response) => response.ok,
          () => false,
        );
        if (!ready) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(ready, output).toBe(true);
      const response = await fetch(`${origin}/v1/action/insertOne`, {
        method: "POST",
        headers: { apiKey: "deno-key", "content-type": "application/ejson" },
        body: JSON.stringify({
          dataSource: "circle",
          database: "circle",
          collection: "c",
          document: { at: { $date: "2024-01-01T00:00:00Z" } },
        }),
      });
      expect(response.status).toBe(200);
      const found = await fetch(`${origin}/v1/action/find`, {
        method: "POST",
        headers: { apiKey: "deno-key" },
        body: JSON.stringify({ dataSource: "circle", database: "circle", collection: "c" }),
      });
      expect(await found.text()).toContain('"$date":"2024-01-01T00:00:00Z"');
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});
