import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";
import { createClient } from "redis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/local/ports";
import { type RunningRedis, startRedisServer } from "../../scripts/local/redis";
import { type RunningUpstashServer, startUpstashServer } from "../../scripts/local/upstash-server";
import { expectEvery } from "../support/expect";

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
      expectEvery(results, (r) => r.limit === 5);
      // Scripts are now known by the client's SHA: a later check costs a single EVALSHA.
      const other = new Ratelimit({ redis: direct, limiter, analytics: false, prefix: key(name) });
      const before = upstash.stats().commands;
      expect((await other.limit("user-2")).success).toBe(true);
      expect(upstash.stats().commands - before).toBe(1);
    });
  }
});

describe("pub/sub over server-sent events with @upstash/redis", () => {
  type Subscriber = ReturnType<Redis["subscribe"]>;
  type Received = { channel: string; message: unknown; pattern?: string };

  /** A subscriber of the official client, with what it received and a promise for its confirmation. */
  function listen(subscriber: Subscriber, pattern = false) {
    const received: Received[] = [];
    const errors: Error[] = [];
    const confirmed = new Promise<number>((resolveConfirmed) => {
      subscriber.on(pattern ? "psubscribe" : "subscribe", (count) => resolveConfirmed(count));
    });
    if (pattern) subscriber.on("pmessage", (m) => received.push(m));
    else subscriber.on("message", (m) => received.push(m));
    subscriber.on("error", (e) => errors.push(e));
    return { subscriber, received, errors, confirmed };
  }

  /** The promise's value, or a clear failure instead of the test's own timeout. */
  async function within<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Redis's own view, on a connection of the test's: how many connections are in SUBSCRIBE mode. */
  async function pubsubConnections(): Promise<number> {
    const observer = createClient({ url: redisServer.url });
    await observer.connect();
    try {
      const list = String(await observer.sendCommand(["CLIENT", "LIST", "TYPE", "pubsub"]));
      return list.split("\n").filter((line) => line.trim() !== "").length;
    } finally {
      await observer.close();
    }
  }

  afterEach(async () => {
    await until(() => upstash.stats().streams === 0, "every stream to close");
  });

  it("subscribe: a publish from another client arrives in order, with its channel", async () => {
    const channel = key("events");
    const sub = listen(auto.subscribe(channel));
    const perChannel: unknown[] = [];
    sub.subscriber.on(`message:${channel}`, (m) => perChannel.push(m.message));
    expect(await within(sub.confirmed, "the subscription")).toBe(1);

    const messages = [{ n: 1, text: "héllo, wörld 🌍" }, "plain, with commas", { n: 3, nested: { ok: true } }, 42];
    for (const message of messages) expect(await direct.publish(channel, message)).toBe(1);
    await until(() => sub.received.length === messages.length, "all messages");
    expect(sub.received).toEqual(messages.map((message) => ({ channel, message })));
    expect(perChannel).toEqual(messages);
    expect(sub.errors).toEqual([]);
    await sub.subscriber.unsubscribe();
  });

  it("psubscribe: only matching channels arrive, with the pattern and the channel", async () => {
    const prefix = key("room");
    const pattern = `${prefix}:*:chat`;
    const sub = listen(auto.psubscribe(pattern), true);
    expect(await within(sub.confirmed, "the subscription")).toBe(1);

    await direct.publish(`${prefix}:1:chat`, { text: "first" });
    await direct.publish(`${prefix}:1:users`, { text: "not for the pattern" });
    await direct.publish(`${prefix}:2:chat`, { text: "second" });
    await until(() => sub.received.length === 2, "both matching messages");
    await new Promise((r) => setTimeout(r, 50));
    expect(sub.received).toEqual([
      { pattern, channel: `${prefix}:1:chat`, message: { text: "first" } },
      { pattern, channel: `${prefix}:2:chat`, message: { text: "second" } },
    ]);
    await sub.subscriber.unsubscribe();
  });

  it("every subscriber, by channel or by pattern, gets every message", async () => {
    const channel = key("fanout");
    const subs = [
      listen(auto.subscribe(channel)),
      listen(direct.subscribe(channel)),
      listen(direct.psubscribe(`${channel.slice(0, -3)}*`), true),
    ];
    await within(Promise.all(subs.map((s) => s.confirmed)), "three subscriptions");
    expect(upstash.stats().streams).toBe(3);

    for (let i = 0; i < 10; i++) expect(await direct.publish(channel, { i })).toBe(3);
    await until(() => subs.every((s) => s.received.length === 10), "ten messages on every subscriber");
    for (const sub of subs)
      expect(sub.received.map((m) => m.message)).toEqual(Array.from({ length: 10 }, (_, i) => ({ i })));
    await Promise.all(subs.map((s) => s.subscriber.unsubscribe()));
  });

  it("unsubscribe stops delivery and closes the stream's Redis connection", async () => {
    const [first, second] = [key("one"), key("two")];
    const before = await pubsubConnections();
    const subscriber = auto.subscribe([first, second]);
    const received: Received[] = [];
    subscriber.on("message", (m) => received.push(m));
    await until(() => upstash.stats().streams === 2, "two streams");
    await until(async () => (await direct.publish(first, "probe")) === 1, "the first subscription");
    await until(async () => (await direct.publish(second, "probe")) === 1, "the second subscription");
    expect(await pubsubConnections()).toBe(before + 2);

    await subscriber.unsubscribe([first]);
    expect(subscriber.getSubscribedChannels()).toEqual([second]);
    await until(() => upstash.stats().streams === 1, "the first stream to close");
    await until(async () => (await pubsubConnections()) === before + 1, "its Redis connection to close");
    expect(await direct.publish(first, "after")).toBe(0);
    expect(await direct.publish(second, "after")).toBe(1);
    await until(() => received.some((m) => m.channel === second && m.message === "after"), "the second channel");
    expect(received.filter((m) => m.message === "after")).toEqual([{ channel: second, message: "after" }]);

    await subscriber.unsubscribe();
    await until(async () => (await pubsubConnections()) === before, "every Redis connection to close");
    expect(await direct.publish(second, "gone")).toBe(0);
  });

  it("stopping the server ends open streams and their Redis connections", async () => {
    const before = await pubsubConnections();
    const other = await startUpstashServer({ port: await freePort(), redisUrl: redisServer.url, token: TOKEN });
    const client = new Redis({ url: other.url, token: TOKEN, retry: false });
    const sub = listen(client.subscribe(key("shutdown")));
    await within(sub.confirmed, "the subscription");
    expect(await pubsubConnections()).toBe(before + 1);
    await within(other.stop(), "the server to stop");
    expect(other.stats().streams).toBe(0);
    await until(async () => (await pubsubConnections()) === before, "the stream's Redis connection to close");
  });

  it("a wrong token gets 401 and no stream", async () => {
    const wrong = new Redis({ url: upstash.url, token: "wrong-token", enableAutoPipelining: false, retry: false });
    const sub = listen(wrong.subscribe(key("private")));
    await until(() => sub.errors.length === 1, "the subscriber's error");
    expect(sub.errors[0]?.message).toMatch(/Unauthorized/);
    expect(upstash.stats().streams).toBe(0);

    const res = await fetch(`${upstash.url}/subscribe/x`, {
      method: "POST",
      headers: { Authorization: "Bearer wrong-token", Accept: "text/event-stream" },
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "Unauthorized" });
  });

  it("speaks the wire format: data lines, text even with Upstash-Encoding: base64, _token accepted", async () => {
    const channel = key("wire");
    const abort = new AbortController();
    const res = await fetch(`${upstash.url}/subscribe/${encodeURIComponent(channel)}?_token=${TOKEN}`, {
      method: "POST",
      headers: { Accept: "text/event-stream", "Upstash-Encoding": "base64" },
      body: "[]",
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = res.body?.getReader();
    if (!reader) throw new Error("no body");
    const decoder = new TextDecoder();
    let text = "";
    const readUntil = async (part: string) => {
      while (!text.includes(part)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${part}`);
        text += decoder.decode(value, { stream: true });
      }
    };
    await readUntil("\n\n");
    expect(text).toBe(`data: subscribe,${channel},1\n\n`);
    await direct.publish(channel, "hello, wörld");
    await readUntil("wörld");
    expect(text).toBe(`data: subscribe,${channel},1\n\ndata: message,${channel},hello, wörld\n\n`);
    abort.abort();

    const missing = await fetch(`${upstash.url}/subscribe`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, Accept: "text/event-stream" },
    });
    expect(missing.status).toBe(400);
  });
});

describe("Upstash REST server while redis-server is down", () => {
  it("answers 503 at once (no queueing until Redis returns) and serves again once redis-server is back", async () => {
    const ownDir = mkdtempSync(join(tmpdir(), "upstash-down-"));
    const port = await freePort();
    let own = await startRedisServer({ port, dir: ownDir });
    const server = await startUpstashServer({ port: await freePort(), redisUrl: own.url, token: TOKEN });
    const ping = () =>
      fetch(`${server.url}/pipeline`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify([["PING"]]),
        signal: AbortSignal.timeout(5_000),
      });
    try {
      expect((await ping()).status).toBe(200);
      process.kill(own.pid, "SIGKILL");
      await own.stop();
      const started = performance.now();
      const down = await ping();
      expect(down.status).toBe(503);
      expect(((await down.json()) as { error: string }).error).toMatch(/^ERR /);
      expect(performance.now() - started).toBeLessThan(1_000);

      own = await startRedisServer({ port, dir: ownDir });
      const deadline = Date.now() + 10_000;
      let status = 0;
      while (Date.now() < deadline && status !== 200) {
        status = (await ping()).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(200);
    } finally {
      await server.stop();
      await own.stop();
      rmSync(ownDir, { recursive: true, force: true });
    }
  });
});
