import { describe, expect, it } from "vitest";
import { call, roundTrips, uniqueIp } from "../support/api";
import { appWith } from "../support/deps";

describe("global per-IP rate limit", () => {
  const limited = appWith({ RATE_LIMIT_API_MAX_REQUESTS: "5", RATE_LIMIT_API_WINDOW_SECONDS: "60" });

  it("lets exactly the limit through when requests arrive at once, then answers 429 with Retry-After", async () => {
    const ip = uniqueIp();
    const responses = await Promise.all(Array.from({ length: 12 }, () => call("GET", "/v1/nope", { ip }, limited)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 404)).toHaveLength(5);
    const rejected = responses.filter((r) => r.status === 429);
    expect(rejected).toHaveLength(7);
    for (const r of rejected) {
      expect(r.headers.get("content-type")).toContain("application/problem+json");
      expect((r.body as { code: string }).code).toBe("rate_limited");
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(r.headers.get("ratelimit-limit")).toBe("5");
      expect(r.headers.get("ratelimit-remaining")).toBe("0");
    }
  });

  it("sends RateLimit headers on allowed responses and counts down", async () => {
    const ip = uniqueIp();
    const first = await call("GET", "/health", { ip }, limited);
    const second = await call("GET", "/health", { ip }, limited);
    expect(first.headers.get("ratelimit-limit")).toBe("5");
    expect(Number(first.headers.get("ratelimit-remaining"))).toBe(4);
    expect(Number(second.headers.get("ratelimit-remaining"))).toBe(3);
    expect(Number(first.headers.get("ratelimit-reset"))).toBeGreaterThanOrEqual(1);
  });

  it("keeps separate buckets per IP", async () => {
    const [a, b] = [uniqueIp(), uniqueIp()];
    for (let i = 0; i < 5; i++) await call("GET", "/v1/nope", { ip: a }, limited);
    expect((await call("GET", "/v1/nope", { ip: a }, limited)).status).toBe(429);
    expect((await call("GET", "/v1/nope", { ip: b }, limited)).status).toBe(404);
  });

  it("costs one Redis round trip per check", async () => {
    const res = await call("GET", "/v1/nope", { ip: uniqueIp() }, limited);
    expect(roundTrips(res.headers).redis).toBe(1);
  });

  it("refuses cache-first reads over the limit too, before any MongoDB work, in the same single round trip", async () => {
    const ip = uniqueIp();
    const responses = [];
    for (let i = 0; i < 7; i++) responses.push(await call("GET", "/v1/feeds/trending", { ip }, limited));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const refused = responses[5]!;
    expect((refused.body as { code: string }).code).toBe("rate_limited");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(roundTrips(refused.headers)).toMatchObject({ redis: 1, mongo: 0 });
    expect(responses[1]!.headers.get("ratelimit-remaining")).toBe("3");
  });

  it("counts a cache-first read that never reaches the cache (bad input) against the limit", async () => {
    const ip = uniqueIp();
    const statuses = [];
    for (let i = 0; i < 6; i++)
      statuses.push((await call("GET", "/v1/feeds/trending?limit=0", { ip }, limited)).status);
    expect(statuses).toEqual([400, 400, 400, 400, 400, 429]);
  });

  it("fails open by default when Redis is unreachable", async () => {
    const noRedis = appWith({ UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9", STORE_TIMEOUT_MS: "500" });
    const res = await call("GET", "/v1/nope", { ip: uniqueIp() }, noRedis);
    expect(res.status).toBe(404);
    expect(res.headers.get("ratelimit-limit")).toBeNull();
  });

  it("answers 503 with Retry-After when configured to fail closed", async () => {
    const closed = appWith({ UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9", RATE_LIMIT_FAIL_MODE: "closed" });
    const res = await call("GET", "/v1/nope", { ip: uniqueIp() }, closed);
    expect(res.status).toBe(503);
    expect((res.body as { code: string }).code).toBe("unavailable");
    expect(res.headers.get("retry-after")).toBe("5");
  });
});
