import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiResponse, call, roundTrips } from "../support/api";
import { type FaultRig, faultRig } from "../support/faults";
import { crowd } from "../support/users";

/**
 * One request spends at most REQUEST_STORE_BUDGET_MS waiting on stores that fail: timeouts, read retries and
 * their backoff all come out of it, and a store that failed is not waited on again in the same request. Measured
 * against stores paused with SIGSTOP (an assertion on a bound, with room for a loaded machine, not a benchmark).
 */

/** Room for the healthy work around the dead store on a loaded 2-core CI machine. */
const SLACK_MS = 600;

let rig: FaultRig;

beforeAll(async () => {
  rig = await faultRig({ gateway: true });
});

afterAll(async () => {
  await rig?.close();
});

async function timed<T>(request: () => Promise<ApiResponse<T>>): Promise<{ res: ApiResponse<T>; ms: number }> {
  const started = performance.now();
  const res = await request();
  return { res, ms: performance.now() - started };
}

/** Milliseconds the request spent in Redis round trips, from its Server-Timing header. */
function redisTimeMs(res: ApiResponse): number {
  const match = /redis;desc="\d+";dur=([\d.]+)/.exec(res.headers.get("server-timing") ?? "");
  return Number(match?.[1] ?? Number.NaN);
}

describe("the request store budget", () => {
  it("waits on a paused Redis once per request, then serves the read from MongoDB", async () => {
    const [reader, author] = await crowd(2);
    const app = rig.app({ REQUEST_REDIS_TIMEOUT_MS: "800", REQUEST_STORE_BUDGET_MS: "4000" });
    await rig.pause("redis");
    try {
      // A signed-in profile read touches Redis three times in sequence when its caches are cold (rate limit with
      // the cached profile and relations, the relations refill, the profile refill): only the first may wait.
      const { res, ms } = await timed(() =>
        call("GET", `/v1/users/${author.username}`, { token: reader.accessToken }, app),
      );
      expect(res.status, res.text).toBe(200);
      expect(roundTrips(res.headers).redis).toBe(1);
      expect(redisTimeMs(res)).toBeLessThan(800 + SLACK_MS);
      expect(ms).toBeLessThan(800 + SLACK_MS);
      // A feed page: rate limit with the cached page, then the relations, page and live vote counts.
      const feed = await timed(() => call("GET", "/v1/feeds/new", { token: reader.accessToken }, app));
      expect(feed.res.status, feed.res.text).toBe(200);
      expect(roundTrips(feed.res.headers).redis).toBe(1);
      expect(feed.ms).toBeLessThan(800 + SLACK_MS);
    } finally {
      await rig.resume("redis");
    }
  });

  it("keeps MongoDB read retries within the budget and then answers 503 with Retry-After", async () => {
    const [someone] = await crowd(1);
    // Three attempts of 1 s each (plus backoff) would take over 3 s; the budget allows 1.2 s in all, so the
    // second attempt gets only what the first left.
    const app = rig.app(
      { STORE_TIMEOUT_MS: "1000", DATA_API_READ_RETRIES: "2", REQUEST_STORE_BUDGET_MS: "1200" },
      { mongo: "rig" },
    );
    await rig.pause("gateway");
    try {
      const { res, ms } = await timed(() => call("GET", `/v1/users/${someone.username}`, {}, app));
      expect(res.status, res.text).toBe(503);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(roundTrips(res.headers).mongo).toBe(2);
      expect(ms).toBeLessThan(1200 + SLACK_MS);
    } finally {
      await rig.resume("gateway");
    }
  });

  it("bounds a write against paused Redis and MongoDB by the one budget", async () => {
    const [member] = await crowd(1);
    const app = rig.app(
      { STORE_TIMEOUT_MS: "3000", REQUEST_REDIS_TIMEOUT_MS: "600", REQUEST_STORE_BUDGET_MS: "1500" },
      { mongo: "rig" },
    );
    await Promise.all([rig.pause("redis"), rig.pause("gateway")]);
    try {
      // Rate limit (Redis), then the account standing (MongoDB), then the check-in itself: each would wait its
      // own timeout without the budget.
      const { res, ms } = await timed(() => call("POST", "/v1/me/checkin", { token: member.accessToken }, app));
      expect(res.status, res.text).toBe(503);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(ms).toBeLessThan(1500 + SLACK_MS);
    } finally {
      await Promise.all([rig.resume("redis"), rig.resume("gateway")]);
    }
  });
});
