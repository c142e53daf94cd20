import { beforeAll, describe, expect, it } from "vitest";
import { type EventRow, flushAnalyticsJob } from "../../src/features/analytics/flush";
import { shiftDay } from "../../src/features/analytics/reports";
import { ObjectId } from "../../src/platform/ids";
import { utcDay } from "../../src/platform/time";
import { runJob } from "../../src/scheduler/runner";
import { call, roundTrips } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { expectProblem, fieldPaths } from "../support/problems";
import { signupUser, type TestUser, users, userWithRole } from "../support/users";

const deps = testDeps();
// Every event of this file carries this session id, so the flush can be waited for and rows told apart.
const marker = crypto.randomUUID();
const today = utcDay(new Date());
const daysAgo = (n: number) => shiftDay(today, -n);

// Old cohorts live on days no other file (nor the API: it refuses events older than
// ANALYTICS_MAX_EVENT_AGE_HOURS) can write to: a random day 400–3,000 days back, different every run. Their
// rows go straight into ClickHouse's `events`, as the flush job would write them, since no request could
// carry such old timestamps; the retention tables fill from `events` either way.
const D = daysAgo(400 + Math.floor(Math.random() * 2_600));
const dayOf = (offset: number) => shiftDay(D, offset);

interface Cohort {
  cohort: string;
  users: number;
  day1: number | null;
  day7: number | null;
  day30: number | null;
}

let admin: TestUser;

function row(userId: string, day: string, time = "12:00:00.000", deviceId = `device-${userId}`): EventRow {
  return {
    event_id: crypto.randomUUID(),
    event_name: "screen_view",
    user_id: userId,
    session_id: marker,
    device_id: deviceId,
    platform: "ios",
    app_version: "3.1.0",
    properties: "{}",
    source: "",
    campaign: "",
    timestamp: `${day}T${time}Z`,
  };
}

const newUserId = () => new ObjectId().toHexString();

/** Writes rows into ClickHouse's `events` directly (for days the API cannot accept). */
async function insertDirectly(rows: EventRow[]): Promise<void> {
  await deps.clickhouse.insert({ table: "events", values: rows, format: "JSONEachRow" });
}

/** Posts events for one caller (signed in with `token`, or anonymous) at 12:00 UTC of each day. */
async function postEvents(token: string | undefined, deviceId: string, days: string[]): Promise<void> {
  const events = days.map((day, i) => ({
    event: i === 0 ? "session_start" : "screen_view",
    timestamp: `${day}T12:00:00.000Z`,
    sessionId: marker,
    deviceId,
    platform: "android",
    appVersion: "3.1.0",
  }));
  const res = await call("POST", "/v1/events", { body: { events }, ...(token ? { token } : {}) });
  expect(res.status, res.text).toBe(202);
}

/**
 * Flushes this file's events with the job. Only one flush run holds the lease at a time across the suite, and
 * other files flush too: a skipped run is retried until none of this file's events is left in the buffer.
 */
async function flushOwnEvents(): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    await runJob(deps, flushAnalyticsJob, { trigger: "test" });
    const left = await deps.db.analyticsEvents.aggregate([{ $match: { sessionId: marker } }, { $count: "n" }]);
    if ((left[0]?.n ?? 0) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error("the buffered events were never flushed");
}

async function report(query = "", token = admin.accessToken) {
  return call<{ items: Cohort[] }>("GET", `/v1/admin/analytics/retention${query}`, { token });
}

beforeAll(async () => {
  admin = await userWithRole("admin");

  // Cohort D: five users first seen on D; three back on D+1, two on D+7, one on D+30.
  const [a, b, c, d, e] = [newUserId(), newUserId(), newUserId(), newUserId(), newUserId()];
  // Cohort D+1: two users; one back the next day, one exactly 7 days later.
  const [f, g] = [newUserId(), newUserId()];
  // Cohort D-1: one user, back on D (so active on D without belonging to D's cohort).
  const h = newUserId();
  await insertDirectly([
    // a: every day that counts, several events and two devices on its first day: one user, counted once.
    row(a, dayOf(0), "08:00:00.000", "a-phone"),
    row(a, dayOf(0), "09:00:00.000", "a-tablet"),
    row(a, dayOf(0), "21:00:00.000", "a-phone"),
    row(a, dayOf(1)),
    row(a, dayOf(2)),
    row(a, dayOf(7)),
    row(a, dayOf(30)),
    // b: back on day 1 and day 7.
    row(b, dayOf(0)),
    row(b, dayOf(1)),
    row(b, dayOf(7)),
    // c: back on day 1 only, at the first millisecond of that UTC day.
    row(c, dayOf(0)),
    row(c, dayOf(1), "00:00:00.000"),
    // d: only the last millisecond of its first day: still day 0, never back.
    row(d, dayOf(0), "23:59:59.999"),
    // e: near misses on every side of 7 and 30 ("exactly day N", not "on or after").
    row(e, dayOf(0)),
    row(e, dayOf(6)),
    row(e, dayOf(8)),
    row(e, dayOf(29)),
    row(e, dayOf(31)),
    row(f, dayOf(1)),
    row(f, dayOf(2)),
    row(g, dayOf(1)),
    row(g, dayOf(8)),
    row(h, dayOf(-1)),
    row(h, dayOf(0)),
    // Anonymous devices on the same days: no cohort of their own, no change to the others.
    ...Array.from({ length: 6 }, (_, i) => [row("", dayOf(0), "10:00:00.000", `anon-${marker}-${i}`)]).flat(),
    ...Array.from({ length: 6 }, (_, i) => [row("", dayOf(1), "10:00:00.000", `anon-${marker}-${i}`)]).flat(),
  ]);

  // Ten days ago (direct insert: beyond what the API accepts): day 1 and day 7 are over, day 30 is not.
  const [i, j] = [newUserId(), newUserId()];
  await insertDirectly([row(i, daysAgo(10)), row(i, daysAgo(9)), row(i, daysAgo(3)), row(j, daysAgo(10))]);

  // Five days ago, through the API with real tokens and flushed by the job: the path the app takes.
  const [k, l, m] = await users(3);
  await Promise.all([
    postEvents(k.accessToken, `k-phone-${marker}`, [daysAgo(5)]),
    postEvents(k.accessToken, `k-tablet-${marker}`, [daysAgo(5), daysAgo(4)]),
    postEvents(l.accessToken, `l-phone-${marker}`, [daysAgo(5)]),
    postEvents(m.accessToken, `m-phone-${marker}`, [daysAgo(5), daysAgo(3)]),
    ...Array.from({ length: 4 }, (_, n) => postEvents(undefined, `anon-${marker}-recent-${n}`, [daysAgo(5)])),
  ]);
  await flushOwnEvents();
});

describe("GET /v1/admin/analytics/retention", () => {
  it("gives each cohort's size and how many came back exactly 1, 7 and 30 days later", async () => {
    const res = await report(`?from=${dayOf(0)}&to=${dayOf(1)}`);
    expect(res.status).toBe(200);
    expect(res.body.items).toEqual([
      { cohort: dayOf(0), users: 5, day1: 3, day7: 2, day30: 1 },
      { cohort: dayOf(1), users: 2, day1: 1, day7: 1, day30: 0 },
    ]);
  });

  it("puts a user in the cohort of their first active day only", async () => {
    // h was active on D too, but was first seen on D-1.
    const res = await report(`?from=${dayOf(-1)}&to=${dayOf(-1)}`);
    expect(res.body.items).toEqual([{ cohort: dayOf(-1), users: 1, day1: 1, day7: 0, day30: 0 }]);
    const wider = await report(`?from=${dayOf(-1)}&to=${dayOf(1)}`);
    expect(wider.body.items.map((c) => [c.cohort, c.users])).toEqual([
      [dayOf(-1), 1],
      [dayOf(0), 5],
      [dayOf(1), 2],
    ]);
  });

  it("leaves out days without a cohort, anonymous traffic included", async () => {
    // D+2 and D+7 saw only returning users (and D, D+1 anonymous devices): no cohort starts there.
    const res = await report(`?from=${dayOf(2)}&to=${dayOf(40)}`);
    expect(res.status).toBe(200);
    expect(res.body.items).toEqual([]);
  });

  it("counts signed-in callers of POST /v1/events by account across devices, and never anonymous devices", async () => {
    const res = await report(`?from=${daysAgo(5)}&to=${daysAgo(5)}`);
    // k (two devices), l and m; the four anonymous devices of that day form no cohort. Day 7 and day 30 are
    // still to come: null, not 0.
    expect(res.body.items).toEqual([{ cohort: daysAgo(5), users: 3, day1: 1, day7: null, day30: null }]);
  });

  it("says null for a day N that has not ended yet", async () => {
    const res = await report(`?from=${daysAgo(10)}&to=${daysAgo(10)}`);
    expect(res.body.items).toEqual([{ cohort: daysAgo(10), users: 2, day1: 1, day7: 1, day30: null }]);
  });

  it("covers the last 30 days by default, in one ClickHouse query", async () => {
    const res = await report();
    expect(res.status).toBe(200);
    expect(roundTrips(res.headers)).toMatchObject({ clickhouse: 1 });
    const cohorts = res.body.items.map((c) => c.cohort);
    expect(cohorts).toEqual([...cohorts].sort());
    for (const cohort of cohorts) {
      expect(cohort >= daysAgo(29) && cohort <= today, cohort).toBe(true);
    }
    expect(res.body.items).toEqual(
      expect.arrayContaining([
        { cohort: daysAgo(10), users: 2, day1: 1, day7: 1, day30: null },
        { cohort: daysAgo(5), users: 3, day1: 1, day7: null, day30: null },
      ]),
    );
    // `to` alone: the 30 days up to it.
    const upTo = await report(`?to=${dayOf(28)}`);
    expect(upTo.body.items.map((c) => c.cohort)).toEqual([dayOf(-1), dayOf(0), dayOf(1)]);
    const notBack = await report(`?to=${dayOf(29)}`);
    expect(notBack.body.items.map((c) => c.cohort)).toEqual([dayOf(0), dayOf(1)]);
  });

  it.each([
    ["`from` after `to`", "?from=2026-02-02&to=2026-02-01", "to"],
    ["`from` in the future without `to`", `?from=${shiftDay(today, 1)}`, "from"],
    ["a malformed date", "?from=02/01/2026", "from"],
    ["a day that does not exist", "?to=2026-02-30", "to"],
    ["a word for a date", "?from=yesterday", "from"],
    ["a day before 1970", "?from=1969-12-31&to=1970-01-10", "from"],
    ["a day after 2099", "?from=2100-01-01&to=2100-01-02", "from"],
    ["a range over the maximum", "?from=2020-01-01&to=2026-01-01", "from"],
  ])("rejects %s with a 400 naming the field", async (_name, query, path) => {
    const res = await report(query);
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toContain(path);
  });

  it("answers 503 with Retry-After, not 500, when ClickHouse is down", async () => {
    const down = appWith({ CLICKHOUSE_URL: "http://127.0.0.1:9" });
    const res = await call("GET", "/v1/admin/analytics/retention", { token: admin.accessToken }, down);
    expectProblem(res, 503, "unavailable");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("is for admins only", async () => {
    expectProblem(await call("GET", "/v1/admin/analytics/retention"), 401, "unauthorized");
    const user = await signupUser();
    expectProblem(await report("", user.accessToken), 403, "forbidden");
    const moderator = await userWithRole("moderator");
    expectProblem(await report("", moderator.accessToken), 403, "forbidden");
  });
});
