import { describe, expect, it } from "vitest";
import type { TransactionSource } from "../../src/db";
import { moveGems } from "../../src/features/gems/ledger";
import { periodWindow } from "../../src/features/leaderboards/periods";
import { leaderboardsJob } from "../../src/features/leaderboards/rebuild";
import { ObjectId } from "../../src/platform/ids";
import { keys } from "../../src/platform/keys";
import { runJob } from "../../src/scheduler/runner";
import { call, roundTrips } from "../support/api";
import { testDeps } from "../support/deps";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, userWithRole } from "../support/users";

const deps = testDeps();

interface Board {
  period: string;
  items: { rank: number; user: { id: string; username: string }; score: number }[];
  me: { rank: number; score: number } | null;
}

// Scores far above anything other suites earn, so these users hold the top of today's shared boards.
const BIG = 1_000_000_000;

function earn(userId: string, amount: number, source: TransactionSource = "trending_bonus") {
  return moveGems(deps, {
    userId: new ObjectId(userId),
    type: source === "admin" ? "admin_adjust" : "earn",
    source,
    amount,
    description: "test earning",
    idempotencyKey: `test:${crypto.randomUUID()}`,
  });
}

describe("leaderboards", () => {
  it("ranks earners with shared ranks for ties and the caller's own standing, on every period", async () => {
    const [a, b, c, d] = await crowd(4);
    await Promise.all([earn(a.id, 4 * BIG), earn(b.id, 3 * BIG), earn(c.id, 3 * BIG), earn(d.id, 2 * BIG)]);
    // Gifts and admin adjustments move balances, not ranks.
    await earn(d.id, 10 * BIG, "admin");

    for (const period of ["daily", "weekly", "alltime"]) {
      const res = await call<Board>("GET", `/v1/leaderboards/${period}?limit=4`, { token: d.accessToken });
      expect(res.status).toBe(200);
      expect(res.body.period).toBe(period);
      const [first, second, third, fourth] = res.body.items;
      expect([first?.user.id, first?.rank, first?.score]).toEqual([a.id, 1, 4 * BIG]);
      expect(new Set([second?.user.id, third?.user.id])).toEqual(new Set([b.id, c.id]));
      expect([second?.rank, third?.rank, second?.score, third?.score]).toEqual([2, 2, 3 * BIG, 3 * BIG]);
      expect([fourth?.user.id, fourth?.rank, fourth?.score]).toEqual([d.id, 4, 2 * BIG]);
      expect(res.body.me).toEqual({ rank: 4, score: 2 * BIG });
      expect(JSON.stringify(res.body)).not.toContain("email");
    }
    const anonymous = await call<Board>("GET", "/v1/leaderboards/weekly?limit=1");
    expect(anonymous.body.items[0]?.user.id).toBe(a.id);
    expect(anonymous.body.me).toBeNull();
  });

  it("answers cold with one MongoDB read, then warm from one Redis pipeline after the rate limit", async () => {
    const [u] = await crowd(1);
    await earn(u.id, 5);
    const cold = await call<Board>("GET", "/v1/leaderboards/alltime?limit=7", { token: u.accessToken });
    expect(cold.body.me?.score).toBe(5);
    expect(roundTrips(cold.headers)).toMatchObject({ redis: 3, mongo: 1 });
    const warm = await call<Board>("GET", "/v1/leaderboards/alltime?limit=7", { token: u.accessToken });
    expect(warm.body.me).toEqual(cold.body.me);
    expect(roundTrips(warm.headers)).toMatchObject({ redis: 2, mongo: 0 });
    // The caller's own standing is never cached.
    await earn(u.id, 4);
    const after = await call<Board>("GET", "/v1/leaderboards/alltime?limit=7", { token: u.accessToken });
    expect(after.body.me?.score).toBe(9);
  });

  it("gives a caller who earned nothing a null standing", async () => {
    const [u] = await crowd(1);
    const res = await call<Board>("GET", "/v1/leaderboards/daily", { token: u.accessToken });
    expect(res.status).toBe(200);
    expect(res.body.me).toBeNull();
  });

  it("refuses an unknown period or a bad limit, naming the field", async () => {
    const period = await call("GET", "/v1/leaderboards/monthly");
    expectProblem(period, 400, "validation_failed");
    expect(fieldPaths(period)).toEqual(["period"]);
    const limit = await call("GET", "/v1/leaderboards/daily?limit=0");
    expectProblem(limit, 400, "validation_failed");
    expect(fieldPaths(limit)).toEqual(["limit"]);
  });

  it("rebuilds a board Redis lost from the ledger, leaving out banned people, and keeps live scores", async () => {
    const [kept, banned, late] = await crowd(3);
    await Promise.all([earn(kept.id, 5 * BIG), earn(banned.id, 6 * BIG)]);
    await deps.db.users.updateOne({ _id: new ObjectId(banned.id) }, { $set: { bannedAt: new Date() } });
    const daily = periodWindow("daily", new Date(), keys).key;
    await deps.redis.del(daily);

    const run = await runJob(deps, leaderboardsJob, {
      trigger: "test",
      // An earning that lands while the job rebuilds is neither lost nor counted twice.
      onCheckpoint: async (name) => {
        if (name === "rebuilt-daily") await earn(late.id, 1);
      },
    });
    expect(run.outcome).toBe("succeeded");
    expect(run.counts.rebuilt).toBeGreaterThanOrEqual(1);
    expect(await deps.redis.zscore(daily, kept.id)).toBe(5 * BIG);
    expect(await deps.redis.zscore(daily, banned.id)).toBeNull();
    expect(await deps.redis.zscore(daily, late.id)).toBe(1);
    expect(await deps.redis.ttl(daily)).toBeGreaterThan(0);

    // A second run finds every board present and rebuilds nothing.
    const again = await runJob(deps, leaderboardsJob, { trigger: "test" });
    expect(again.counts.rebuilt ?? 0).toBe(0);
  });
});

describe("leaderboards and moderation", () => {
  it("takes a banned or shadow-banned person off every current board", async () => {
    const [banned, shadowed] = await crowd(2);
    const moderator = await userWithRole("moderator");
    await Promise.all([earn(banned.id, 7), earn(shadowed.id, 7)]);
    const daily = periodWindow("daily", new Date(), keys).key;
    expect(await deps.redis.zscore(daily, banned.id)).toBe(7);
    for (const [u, action] of [
      [banned, "ban"],
      [shadowed, "shadow_ban"],
    ] as const) {
      const res = await call("POST", "/v1/admin/moderation-actions", {
        token: moderator.accessToken,
        body: { targetType: "user", targetId: u.id, action, reason: "vote ring" },
      });
      expect(res.status, res.text).toBe(201);
    }
    for (const key of [daily, periodWindow("weekly", new Date(), keys).key, keys.leaderboardAlltime()]) {
      expect(await deps.redis.zscore(key, banned.id)).toBeNull();
      expect(await deps.redis.zscore(key, shadowed.id)).toBeNull();
    }
  });
});

describe("leaderboard periods", () => {
  it("roll over at UTC midnight and on Monday for weeks", () => {
    const sunday = new Date("2026-11-29T23:59:59.999Z");
    const monday = new Date("2026-11-30T00:00:00.000Z");
    expect(periodWindow("daily", sunday, keys).key).toBe("leaderboard:daily:2026-11-29");
    expect(periodWindow("daily", monday, keys).key).toBe("leaderboard:daily:2026-11-30");
    expect(periodWindow("weekly", sunday, keys)).toMatchObject({
      key: "leaderboard:weekly:2026-11-23",
      start: new Date("2026-11-23T00:00:00Z"),
      end: monday,
    });
    expect(periodWindow("weekly", monday, keys).key).toBe("leaderboard:weekly:2026-11-30");
    expect(periodWindow("alltime", monday, keys)).toMatchObject({ key: "leaderboard:alltime", start: null });
  });
});
