import { describe, expect, it } from "vitest";
import type { Me } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { expectProblem } from "../support/problems";
import { signupUser, type TestUser } from "../support/users";

const deps = testDeps();
const DAY_MS = 86_400_000;

interface Checkin {
  currentStreak: number;
  longestStreak: number;
  gemsAwarded: number;
  date: string;
}

const checkin = (u: TestUser) => call<Checkin>("POST", "/v1/me/checkin", { token: u.accessToken });
const utcDay = (msAgo = 0) => new Date(Date.now() - msAgo).toISOString().slice(0, 10);

/** Pretends the user's last check-in happened on another day (the server clock is real), cache included. */
async function lastCheckedIn(u: TestUser, day: string, currentStreak: number, longestStreak: number) {
  await deps.db.users.updateOne(
    { _id: new ObjectId(u.id) },
    { $set: { lastActiveDate: day, currentStreak, longestStreak } },
  );
  await deps.redis.del(deps.keys.userStreak(u.id));
}

describe("POST /v1/me/checkin", () => {
  it("starts a streak of 1 today (UTC) and pays the daily reward; a repeat the same day changes nothing", async () => {
    const user = await signupUser();
    const before = utcDay();
    const first = await checkin(user);
    expect(first.status, first.text).toBe(200);
    expect(first.body).toMatchObject({ currentStreak: 1, longestStreak: 1, gemsAwarded: 5 });
    expect([before, utcDay()]).toContain(first.body.date);

    const again = await checkin(user);
    expect(again.body).toEqual({ ...first.body, gemsAwarded: 0 });
    const me = await call<Me>("GET", "/v1/me", { token: user.accessToken });
    expect(me.body).toMatchObject({ currentStreak: 1, longestStreak: 1, gemBalance: 5 });
    const ledger = await call<{ items: { source: string; amount: number; balanceAfter: number }[] }>(
      "GET",
      "/v1/me/gems/transactions",
      { token: user.accessToken },
    );
    expect(ledger.body.items).toEqual([expect.objectContaining({ source: "daily_login", amount: 5, balanceAfter: 5 })]);
  });

  it("counts 10 concurrent check-ins once, on a first day and on the day after", async () => {
    const user = await signupUser();
    const storm = () => Promise.all(Array.from({ length: 10 }, () => checkin(user)));
    const first = await storm();
    expect(first.map((r) => r.status)).toEqual(Array(10).fill(200));
    for (const r of first) expect(r.body).toMatchObject({ currentStreak: 1, longestStreak: 1 });
    expect(first.map((r) => r.body.gemsAwarded).sort()).toEqual([...Array(9).fill(0), 5]);
    expect(await deps.db.users.findOne({ _id: new ObjectId(user.id) })).toMatchObject({
      currentStreak: 1,
      longestStreak: 1,
      lastActiveDate: first[0]?.body.date,
    });

    await lastCheckedIn(user, utcDay(DAY_MS), 1, 1);
    const next = await storm();
    for (const r of next) expect(r.body).toMatchObject({ currentStreak: 2, longestStreak: 2 });
    // The streak moved (the last check-in was rewound to yesterday), but the daily reward is keyed by the real
    // UTC day, which has already been paid: nothing more.
    expect(next.map((r) => r.body.gemsAwarded)).toEqual(Array(10).fill(0));
    expect(await deps.db.users.findOne({ _id: new ObjectId(user.id) })).toMatchObject({
      currentStreak: 2,
      gemBalance: 5,
    });
  });

  it("extends the streak after yesterday's check-in, and restarts it after a missed day keeping the longest", async () => {
    const user = await signupUser();
    await lastCheckedIn(user, utcDay(DAY_MS), 1, 1);
    const extended = await checkin(user);
    expect(extended.body).toMatchObject({ currentStreak: 2, longestStreak: 2 });
    expect((await checkin(user)).body).toMatchObject({ currentStreak: 2, longestStreak: 2 });

    await lastCheckedIn(user, utcDay(3 * DAY_MS), 2, 2);
    const restarted = await checkin(user);
    expect(restarted.body).toMatchObject({ currentStreak: 1, longestStreak: 2 });

    // A long streak continues past the longest so far.
    await lastCheckedIn(user, utcDay(DAY_MS), 6, 6);
    expect((await checkin(user)).body).toMatchObject({ currentStreak: 7, longestStreak: 7 });
  });

  it("waits on one MongoDB call, and a repeat the same day on none", async () => {
    const user = await signupUser();
    await lastCheckedIn(user, utcDay(DAY_MS), 6, 6);
    const seventh = await checkin(user);
    expect(seventh.status, seventh.text).toBe(200);
    // The daily reward and the 7-day milestone's bonus (owed with the check-in, paid after the answer).
    expect(seventh.body).toMatchObject({ currentStreak: 7, gemsAwarded: 5 + 20 });
    expect(waits(seventh.headers)).toMatchObject({ mongo: 1 });
    const me = await call<Me>("GET", "/v1/me", { token: user.accessToken });
    expect(me.body.gemBalance).toBe(25);
    const ledger = await call<{ items: { source: string; balanceAfter: number }[] }>(
      "GET",
      "/v1/me/gems/transactions",
      {
        token: user.accessToken,
      },
    );
    expect(ledger.body.items.map((e) => [e.source, e.balanceAfter]).sort()).toEqual([
      ["daily_login", 5],
      ["streak_bonus", 25],
    ]);
    const inbox = await call<{ items: { type: string }[] }>("GET", "/v1/notifications", { token: user.accessToken });
    expect(inbox.body.items.map((n) => n.type)).toEqual(["streak"]);

    const repeat = await checkin(user);
    expect(repeat.body).toEqual({ ...seventh.body, gemsAwarded: 0 });
    expect(roundTrips(repeat.headers).mongo).toBe(0);
  });

  it("caches the streak in Redis under user:streak:{id}", async () => {
    const user = await signupUser();
    const res = await checkin(user);
    const cached = await deps.redis.get<Record<string, unknown>>(deps.keys.userStreak(user.id));
    expect(deps.keys.userStreak(user.id)).toBe(`user:streak:${user.id}`);
    expect(cached).toEqual({ currentStreak: 1, longestStreak: 1, lastActiveDate: res.body.date });
    const ttl = await deps.redis.ttl(deps.keys.userStreak(user.id));
    expect(ttl).toBeGreaterThan(0);
  });

  it("answers 401 without a token", async () => {
    expectProblem(await call("POST", "/v1/me/checkin"), 401, "unauthorized");
  });
});
