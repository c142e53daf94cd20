import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/local/ports";
import { type RunningRedis, startRedisServer } from "../../scripts/local/redis";
import { type RunningUpstashServer, startUpstashServer } from "../../scripts/local/upstash-server";

// @upstash/redis reads this when a client is built: no telemetry headers from tests.
process.env.UPSTASH_DISABLE_TELEMETRY = "1";

const TOKEN = "test-token-0123456789";

let dir: string;
let redisServer: RunningRedis;
let upstash: RunningUpstashServer;
/** One command per HTTP request (`POST /`). */
let direct: Redis;
/** The client's default: commands batched into `/pipeline` requests. */
let auto: Redis;

const key = (name: string) => `t:${name}:${Math.random().toString(36).slice(2)}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "upstash-test-"));
  redisServer = await startRedisServer({ port: await freePort(), dir });
  upstash = await startUpstashServer({ port: await freePort(), redisUrl: redisServer.url, token: TOKEN });
  direct = new Redis({ url: upstash.url, token: TOKEN, enableAutoPipelining: false, retry: false });
  auto = new Redis({ url: upstash.url, token: TOKEN, enableAutoPipelining: true, retry: false });
});

afterAll(async () => {
  await upstash?.stop();
  await redisServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("Upstash REST server with @upstash/redis", () => {
  it("round-trips strings exactly, including unicode and base64-looking values", async () => {
    const values = ["hello", "héllo wörld 🌍 日本語", "OK", "T0s=", 'line\nbreak\ttab \\ "quotes"', "\u0000nul", ""];
    for (const value of values) {
      const k = key("str");
      expect(await direct.set(k, value)).toBe("OK");
      expect(await direct.get(k)).toBe(value);
      expect(await auto.get(k)).toBe(value);
    }
  });

  it("serializes and deserializes JSON values automatically", async () => {
    const k = key("json");
    const doc = { name: "Zoë", tags: ["a", "b"], nested: { n: 1.5, ok: true, none: null } };
    await direct.set(k, doc);
    expect(await direct.get(k)).toEqual(doc);
    await direct.set(k, 42);
    expect(await direct.get(k)).toBe(42);
  });

  it("incr, expire and ttl", async () => {
    const k = key("counter");
    expect(await direct.incr(k)).toBe(1);
    expect(await direct.incrby(k, 5)).toBe(6);
    expect(await direct.ttl(k)).toBe(-1);
    expect(await direct.expire(k, 100)).toBe(1);
    const ttl = await direct.ttl(k);
    expect(ttl).toBeGreaterThan(90);
    expect(ttl).toBeLessThanOrEqual(100);
    expect(await direct.ttl(key("missing"))).toBe(-2);
  });

  it("sorted sets, sets and hashes", async () => {
    const z = key("zset");
    expect(await direct.zadd(z, { score: 2, member: "b" }, { score: 1.5, member: "a" })).toBe(2);
    expect(await direct.zrange(z, 0, -1, { withScores: true })).toEqual(["a", 1.5, "b", 2]);
    expect(await direct.zscore(z, "a")).toBe(1.5);

    const s = key("set");
    expect(await direct.sadd(s, "x", "y", "ü")).toBe(3);
    expect((await direct.smembers(s)).sort()).toEqual(["x", "y", "ü"].sort());

    const h = key("hash");
    expect(await direct.hset(h, { a: "1", b: "two", c: "ç" })).toBe(3);
    expect(await direct.hgetall(h)).toEqual({ a: 1, b: "two", c: "ç" });
    expect(await direct.hget(h, "b")).toBe("two");
  });

  it("pipeline() sends one request and returns every result", async () => {
    const k = key("pipe");
    const before = upstash.stats();
    const results = await direct.pipeline().set(k, "v").incr(`${k}:n`).get(k).incr(`${k}:n`).exec();
    expect(results).toEqual(["OK", 1, "v", 2]);
    const after = upstash.stats();
    expect(after.requests - before.requests).toBe(1);
    expect(after.commands - before.commands).toBe(4);
  });

  it("multi() runs as one MULTI/EXEC transaction", async () => {
    const k = key("tx");
    await direct.set(k, "10");
    const results = await direct.multi().incr(k).incrby(k, 5).get(k).exec();
    expect(results).toEqual([11, 16, 16]);
  });

  it("multi() reports a runtime error per command, as Redis does, and applies the rest", async () => {
    const k = key("txerr");
    await direct.set(k, "not a number");
    const res = await fetch(`${upstash.url}/multi-exec`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify([
        ["SET", `${k}:a`, "1"],
        ["INCR", k],
        ["GET", `${k}:a`],
      ]),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { result?: unknown; error?: string }[];
    expect(body[0]).toEqual({ result: "OK" });
    expect(body[1]?.error).toMatch(/not an integer/);
    expect(body[2]).toEqual({ result: "1" });

    // A command Redis refuses to queue aborts the whole transaction: nothing runs.
    const aborted = await fetch(`${upstash.url}/multi-exec`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify([["SET", `${k}:b`, "1"], ["GET"]]),
    });
    expect(aborted.status).toBe(400);
    expect(((await aborted.json()) as { error: string }).error).toMatch(/^EXECABORT/);
    expect(await direct.exists(`${k}:b`)).toBe(0);
  });

  it("auto-pipelining batches concurrent commands into one request per kind", async () => {
    const k = key("auto");
    const before = upstash.stats();
    const writes = await Promise.all([auto.set(`${k}:a`, "1"), auto.set(`${k}:b`, "2"), auto.incr(`${k}:c`)]);
    expect(writes).toEqual(["OK", "OK", 1]);
    const mid = upstash.stats();
    expect(mid.requests - before.requests).toBe(1);
    expect(mid.commands - before.commands).toBe(3);

    const reads = await Promise.all([auto.get(`${k}:a`), auto.get(`${k}:b`), auto.get(`${k}:c`), auto.exists(k)]);
    expect(reads).toEqual([1, 2, 1, 0]);
    expect(upstash.stats().requests - mid.requests).toBe(1);
  });

  it("eval, evalsha and script load/exists", async () => {
    const k = key("lua");
    const script = "redis.call('SET', KEYS[1], ARGV[1]); return {KEYS[1], redis.call('GET', KEYS[1]), 7}";
    expect(await direct.eval(script, [k], ["välue"])).toEqual([k, "välue", 7]);
    const sha = await direct.scriptLoad(script);
    expect(sha).toBe(createHash("sha1").update(script).digest("hex"));
    expect(await direct.evalsha(sha, [k], ["again"])).toEqual([k, "again", 7]);
    expect(await direct.scriptExists(sha, "0".repeat(40))).toEqual([1, 0]);
    await expect(direct.evalsha("f".repeat(40), [], [])).rejects.toThrow(/NOSCRIPT/);
  });

  it("accepts Upstash-only shebang flags and keeps the client's SHA", async () => {
    const script = "#!lua flags=allow-key-locking\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])";
    const sha = createHash("sha1").update(script).digest("hex");
    const k = key("flagged");
    await expect(direct.evalsha(sha, [k], [1])).rejects.toThrow(/NOSCRIPT/);
    expect(await direct.eval(script, [k], [2])).toBe(2);
    expect(await direct.evalsha(sha, [k], [3])).toBe(5);
    expect(await direct.scriptExists(sha)).toEqual([1]);
    expect(await direct.scriptLoad(script)).toBe(sha);
  });

  it("rejects a wrong token with 401", async () => {
    const wrong = new Redis({ url: upstash.url, token: "wrong-token", enableAutoPipelining: false, retry: false });
    await expect(wrong.get("x")).rejects.toThrow(/Unauthorized/);
    const res = await fetch(`${upstash.url}/get/x`);
    expect(res.status).toBe(401);
  });

  it("surfaces an unknown command as a client error (HTTP 400)", async () => {
    await expect(direct.exec(["NOSUCHCOMMAND", "x"])).rejects.toThrow(/unknown command/i);
    await expect(auto.exec(["NOSUCHCOMMAND", "x"])).rejects.toThrow(/unknown command/i);
    const res = await fetch(upstash.url, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(["NOSUCHCOMMAND"]),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/unknown command/i);
  });

  it("speaks the raw protocol: base64 only when asked, path-style commands", async () => {
    const k = key("raw");
    const headers = { Authorization: `Bearer ${TOKEN}` };
    let res = await fetch(`${upstash.url}/set/${encodeURIComponent(k)}/caf%C3%A9?EX=100`, { headers });
    expect(await res.json()).toEqual({ result: "OK" });
    res = await fetch(`${upstash.url}/get/${encodeURIComponent(k)}`, { headers });
    expect(await res.json()).toEqual({ result: "café" });
    res = await fetch(upstash.url, {
      method: "POST",
      headers: { ...headers, "Upstash-Encoding": "base64" },
      body: JSON.stringify(["MGET", k, `${k}:none`]),
    });
    expect(await res.json()).toEqual({ result: [Buffer.from("café").toString("base64"), null] });
    res = await fetch(`${upstash.url}/pipeline`, {
      method: "POST",
      headers: { ...headers, "Upstash-Encoding": "base64" },
      body: JSON.stringify([["PING"], ["TTL", k], ["SET", k, "x"]]),
    });
    expect(await res.json()).toEqual([
      { result: Buffer.from("PONG").toString("base64") },
      { result: 100 },
      { result: "OK" },
    ]);
  });
});

describe("@upstash/ratelimit over the local server", () => {
  for (const [name, limiter] of [
    ["slidingWindow", Ratelimit.slidingWindow(5, "60 s")],
    ["fixedWindow", Ratelimit.fixedWindow(5, "60 s")],
  ] as const) {
    it(`${name}: exactly 5 of 8 concurrent requests pass`, async () => {
      const ratelimit = new Ratelimit({ redis: auto, limiter, analytics: false, prefix: key(name) });
      const results = await Promise.all(Array.from({ length: 8 }, () => ratelimit.limit("user-1")));
      expect(results.filter((r) => r.success)).toHaveLength(5);
      expect(results.every((r) => r.limit === 5)).toBe(true);
      // Scripts are now known by the client's SHA: a later check costs a single EVALSHA.
      const other = new Ratelimit({ redis: direct, limiter, analytics: false, prefix: key(name) });
      const before = upstash.stats().commands;
      expect((await other.limit("user-2")).success).toBe(true);
      expect(upstash.stats().commands - before).toBe(1);
    });
  }
});
