import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis as UpstashSdk } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/local/ports";
import { type RunningRedis, startRedisServer } from "../../scripts/local/redis";
import { type RunningUpstashServer, startUpstashServer } from "../../scripts/local/upstash-server";
import { EJSON } from "../../src/platform/ejson";
import { StoreUnavailableError } from "../../src/platform/errors";
import type { RateLimitDecision } from "../../src/platform/ratelimit";
import { createRedis } from "../../src/platform/redis";
import * as ops from "../../src/platform/redis-ops";
import { type Redis, subscribe, UpstashError } from "../../src/platform/upstash";

/**
 * The API's own Upstash client (src/platform/upstash.ts) against the local Upstash REST server and a real
 * redis-server, side by side with @upstash/redis, which it replaced: the same values, replies and errors come
 * back through both, so what the code relied on in the SDK still holds.
 */

process.env.UPSTASH_DISABLE_TELEMETRY = "1";
const TOKEN = "client-test-token-0123";

let dir: string;
let redisServer: RunningRedis;
let upstash: RunningUpstashServer;
let ours: Redis;
let sdk: UpstashSdk;

const key = (name: string) => `c:${name}:${Math.random().toString(36).slice(2)}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "redis-client-test-"));
  redisServer = await startRedisServer({ port: await freePort(), dir });
  upstash = await startUpstashServer({ port: await freePort(), redisUrl: redisServer.url, token: TOKEN });
  ours = createRedis({ url: upstash.url, token: TOKEN, timeoutMs: 5_000 });
  // The SDK as the Worker used to build it: retries off, auto-pipelining and base64 replies as by default.
  sdk = new UpstashSdk({ url: upstash.url, token: TOKEN, retry: false, enableTelemetry: false });
});

afterAll(async () => {
  await upstash?.stop();
  await redisServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Batch = Record<string, ops.RedisOp<unknown>>;

/** Runs named operations through the SDK's pipeline (what runOps did before). */
const throughSdk = <M extends Record<string, ops.RedisOp<unknown>>>(batch: M) =>
  ops.runOps(sdk as unknown as Redis, batch);

describe("values written by one client read the same through the other", () => {
  const values: [string, unknown][] = [
    ["an object", { name: "Zoë 🌍", tags: ["a", "b"], nested: { n: 1.5, ok: true, none: null } }],
    ["an array", [1, "two", null]],
    ["a number", 42],
    ["a float", -3.25],
    ["a boolean", true],
    ["plain text with commas", "plain, text"],
    ["text that looks like base64", "T0s="],
    ["text that looks like a long number", "12345678901234567890"],
    ["an id", "0123456789abcdef01234567"],
  ];
  for (const [what, value] of values) {
    it(`${what}: set by ours, got by both; set by the SDK, got by ours`, async () => {
      const mine = key("mine");
      const theirs = key("theirs");
      await ops.runOp(ours, ops.setValue(mine, value, 60));
      await throughSdk({ set: ops.setValue(theirs, value, 60) });
      const read = await ops.runOps(ours, { mine: ops.getValue(mine), theirs: ops.getValue(theirs) });
      expect(read).toEqual({ mine: value, theirs: value });
      expect(await sdk.get(mine)).toEqual(value);
    });
  }

  it("a cached document keeps its ObjectIds and Dates (canonical EJSON) across clients", async () => {
    const k = key("doc");
    const doc = EJSON.parse(
      '{"_id":{"$oid":"0123456789abcdef01234567"},"at":{"$date":"2024-05-01T00:00:00Z"}}',
    ) as object;
    await ops.runOp(ours, ops.setDocument(k, doc, 60));
    expect(await ops.runOp(ours, ops.getDocument(k))).toEqual(doc);
    expect((await throughSdk({ doc: ops.getDocument(k) })).doc).toEqual(doc);
  });
});

describe("named operations answer what they answered through the SDK", () => {
  /** The same steps on two key spaces, one through each client, and both results side by side. */
  async function bothWays(steps: (p: string) => Batch[]) {
    const [a, b] = [key("ours"), key("sdk")];
    const mine: unknown[] = [];
    const theirs: unknown[] = [];
    for (const batch of steps(a)) mine.push(await ops.runOps(ours, batch));
    for (const batch of steps(b)) theirs.push(await throughSdk(batch));
    return { mine, theirs };
  }

  it("counters, sets, guarded values, leases and idempotency claims", async () => {
    const { mine, theirs } = await bothWays((p): Batch[] => [
      {
        counted: ops.addToCountedSet(`${p}:set`, "m1", 60),
        window: ops.countInWindow(`${p}:n`, 60, 3),
        missing: ops.incrementIfPresent(`${p}:c`, 1, 60),
        seeded: ops.seedCounter(`${p}:c`, 7, 60),
      },
      {
        moved: ops.incrementIfPresent(`${p}:c`, -2, 60),
        members: ops.areMembers(`${p}:set`, ["m1", "m2"]),
        exist: ops.keysExist([`${p}:set`, `${p}:none`]),
        some: ops.someMembers(`${p}:set`, 5),
        values: ops.getValues([`${p}:n`, `${p}:none`]),
        guarded: ops.readGuardedSet(`${p}:g`, `${p}:gen`),
      },
      {
        filled: ops.fillGuardedSet(`${p}:g`, `${p}:gen`, "0", ["x", "y"], 60),
        lease: ops.acquireLease(`${p}:lease`, "owner", 30_000),
        again: ops.acquireLease(`${p}:lease`, "other", 30_000),
        claim: ops.claimOrGet(`${p}:idem`, { state: "pending" }, 60),
        claimed: ops.claimOrGet(`${p}:idem`, { state: "other" }, 60),
        field: ops.setField(`${p}:h`, "f", { v: [1, 2] }, 60),
      },
      {
        guarded: ops.readGuardedSet(`${p}:g`, `${p}:gen`),
        field: ops.getField(`${p}:h`, "f"),
        released: ops.releaseLease(`${p}:lease`, "other"),
        taken: ops.takeValue(`${p}:idem`),
        views: ops.countViewOnce({
          viewerKey: `${p}:viewer`,
          windowSeconds: 60,
          pendingKey: `${p}:pending`,
          pendingTtlSeconds: 60,
          dirtyKey: `${p}:dirty`,
          member: "post",
        }),
      },
      { deltas: ops.takeAndClear([`${p}:pending`, `${p}:none`]), gone: ops.deleteKeys([`${p}:set`, `${p}:none`]) },
    ]);
    expect(mine).toEqual(theirs);
    // What the code relies on, spelled out: SMISMEMBER's 1/0 as booleans, a script's false as null, SET NX GET.
    expect(mine[1]).toMatchObject({ members: [true, false], moved: 5, exist: [true, false] });
    expect(mine[0]).toMatchObject({ missing: null, seeded: 7, window: 3, counted: 1 });
    expect(mine[2]).toMatchObject({ lease: true, again: false, claim: null, claimed: { state: "pending" } });
    expect(mine[3]).toMatchObject({ field: { v: [1, 2] }, released: false, views: { counted: true, pending: 1 } });
  });

  it("leaderboards: entries counted once, standings with ties, the top with scores", async () => {
    const { mine, theirs } = await bothWays((p): Batch[] => {
      const boards = {
        counted: { key: `${p}:counted`, ttlSeconds: 60 },
        daily: { key: `${p}:d`, expireAt: Math.floor(Date.now() / 1000) + 600 },
        weekly: { key: `${p}:w`, expireAt: Math.floor(Date.now() / 1000) + 6000 },
        alltime: { key: `${p}:a` },
      };
      const entries = [
        { id: "e1", member: "u1", amount: 5 },
        { id: "e2", member: "u2", amount: 2.5 },
        { id: "e3", member: "u3", amount: 5 },
      ];
      return [
        { added: ops.addOncePerEntry(boards, entries) },
        { again: ops.addOncePerEntry(boards, entries) },
        {
          top: ops.topMembers(`${p}:a`, 10),
          first: ops.standing(`${p}:a`, "u3"),
          third: ops.standing(`${p}:a`, "u2"),
          none: ops.standing(`${p}:a`, "nobody"),
        },
        { merge: ops.mergeSortedSet(`${p}:a`, [{ member: "u2", score: 9 }], null) },
        { top: ops.topMembers(`${p}:a`, 2), gone: ops.removeFromSortedSets([`${p}:a`, `${p}:d`], "u1") },
        { top: ops.topMembers(`${p}:a`, 10) },
      ];
    });
    expect(mine).toEqual(theirs);
    expect(mine[0]).toEqual({ added: 3 });
    expect(mine[1]).toEqual({ again: 0 });
    expect(mine[2]).toMatchObject({ first: { rank: 1, score: 5 }, third: { rank: 3, score: 2.5 }, none: null });
    expect((mine[4] as { top: unknown }).top).toEqual([
      { member: "u2", score: 9 },
      { member: "u3", score: 5 },
    ]);
  });

  it("the rate limiter's script: the same decisions (its clock aside)", async () => {
    const { mine, theirs } = await bothWays((p) =>
      Array.from({ length: 4 }, () => ({ limit: ops.slidingWindow(`${p}:rl`, 3, 60) })),
    );
    const decisions = (list: unknown[]) =>
      list.map((r) => {
        const { allowed, remaining, limit } = (r as { limit: RateLimitDecision }).limit;
        return { allowed, remaining, limit };
      });
    expect(decisions(mine)).toEqual(decisions(theirs));
    expect(decisions(mine).map((d) => d.allowed)).toEqual([true, true, true, false]);
  });
});

describe("errors", () => {
  it("an error reply inside a pipeline rejects the call, naming the command as the SDK does; the others ran", async () => {
    const [a, b] = [key("err"), key("err")];
    const failing = (k: string) => ({
      set: ops.setValue(k, "not a number", 60),
      bump: ops.countInWindow(k, 60),
    });
    const mine = await ops.runOps(ours, failing(a)).catch((e: unknown) => e);
    const theirs = await throughSdk(failing(b)).catch((e: unknown) => e);
    expect(mine).toBeInstanceOf(UpstashError);
    expect(mine).not.toBeInstanceOf(StoreUnavailableError);
    expect((mine as Error).message).toBe((theirs as Error).message);
    expect((mine as Error).message).toMatch(/^Command 2 \[ incrby \] failed: ERR value is not an integer/);
    expect(await ours.get(a)).toBe("not a number");
  });

  it("a refused token is a configuration error, not an outage", async () => {
    const wrong = createRedis({ url: upstash.url, token: "wrong-token", timeoutMs: 5_000 });
    const error = await wrong.ping().catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toMatch(/^Unauthorized/);
  });

  it("a connection that drops is an outage, and is not retried (a write could apply twice)", async () => {
    let connections = 0;
    const dropping = createNetServer((socket) => {
      connections++;
      socket.destroy();
    });
    const port = await freePort();
    await new Promise<void>((resolve) => dropping.listen(port, "127.0.0.1", resolve));
    try {
      const flaky = createRedis({ url: `http://127.0.0.1:${port}`, token: TOKEN, timeoutMs: 5_000 });
      await expect(ops.runOp(flaky, ops.countInWindow(key("n"), 60))).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(connections).toBe(1);
    } finally {
      await new Promise((resolve) => dropping.close(resolve));
    }
    const closed = createRedis({ url: `http://127.0.0.1:${await freePort()}`, token: TOKEN, timeoutMs: 5_000 });
    await expect(closed.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it("a proxy's error page instead of Upstash's JSON is an outage", async () => {
    // What a front in the way answers while Upstash is unreachable.
    const proxy = createServer((_req, res) => {
      res.writeHead(502, { "content-type": "text/html" }).end("<html><body>502 Bad Gateway</body></html>");
    });
    const port = await freePort();
    await new Promise<void>((resolve) => proxy.listen(port, "127.0.0.1", resolve));
    try {
      const behindProxy = createRedis({ url: `http://127.0.0.1:${port}`, token: TOKEN, timeoutMs: 5_000 });
      const error = await behindProxy.ping().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as Error).message).toMatch(/Unable to parse response body: <html>/);
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

describe("single commands", () => {
  it("answer as the SDK's: ping, get, set, exists, ttl, zscore, keys, del", async () => {
    const k = key("single");
    expect(await ours.ping()).toBe("PONG");
    expect(await ours.set(k, { a: 1 }, { ex: 100 })).toBe("OK");
    expect(await ours.get(k)).toEqual({ a: 1 });
    expect(await ours.exists(k, `${k}:none`)).toBe(1);
    expect(await ours.ttl(k)).toBe(await sdk.ttl(k));
    await sdk.zadd(`${k}:z`, { score: 2.5, member: "m" });
    expect(await ours.zscore(`${k}:z`, "m")).toBe(2.5);
    expect(await ours.zscore(`${k}:z`, "none")).toBeNull();
    expect((await ours.keys(`${k}*`)).sort()).toEqual((await sdk.keys(`${k}*`)).sort());
    expect(await ours.del(k, `${k}:z`, `${k}:none`)).toBe(2);
    expect(await ours.get(k)).toBeNull();
  });
});

describe("the pub/sub subscriber", () => {
  async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it("confirms, then delivers published messages decoded, in order; closing ends the stream", async () => {
    const channel = key("events");
    const received: unknown[] = [];
    let confirmed = 0;
    const stop = subscribe({ url: upstash.url, token: TOKEN }, channel, {
      subscribed: (count) => {
        confirmed = count;
      },
      message: (message, from) => received.push({ from, message }),
      failed: (error) => received.push({ error: error.message }),
    });
    await until(() => confirmed === 1, "the confirmation");
    const events = [{ type: "message", text: "a, b 🌍" }, { type: "read" }];
    for (const event of events) expect(await ops.runOp(ours, ops.publish(channel, JSON.stringify(event)))).toBe(1);
    expect(await sdk.publish(channel, "plain, text")).toBe(1);
    await until(() => received.length === 3, "three messages");
    expect(received).toEqual([...events, "plain, text"].map((message) => ({ from: channel, message })));
    stop();
    await until(() => upstash.stats().streams === 0, "the stream to close");
    expect(await ops.runOp(ours, ops.publish(channel, "{}"))).toBe(0);
  });

  it("reports a refused token, and a server that is not there", async () => {
    const failures: string[] = [];
    subscribe({ url: upstash.url, token: "wrong-token" }, key("private"), { failed: (e) => failures.push(e.message) });
    const port = await freePort();
    subscribe({ url: `http://127.0.0.1:${port}`, token: TOKEN }, key("nowhere"), {
      failed: () => failures.push("no server"),
    });
    await until(() => failures.length === 2, "both failures");
    expect(failures.sort()).toEqual(["Unauthorized", "no server"]);
  });
});
