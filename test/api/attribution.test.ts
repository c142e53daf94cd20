import { beforeAll, describe, expect, it } from "vitest";
import { type EventRow, flushAnalyticsJob, type ServerEventRow } from "../../src/features/analytics/flush";
import { shiftDay } from "../../src/features/analytics/reports";
import { ObjectId } from "../../src/platform/ids";
import { utcDay } from "../../src/platform/time";
import { runJob } from "../../src/scheduler/runner";
import { call } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { expectProblem, fieldPaths } from "../support/problems";
import { idToken, signupConsents, signupUser, type TestUser, userWithRole } from "../support/users";

const deps = testDeps();
// Sources, session ids and devices of this file carry this, so rows are told apart from other files' and runs'.
const marker = crypto.randomUUID().slice(0, 8);
const today = () => utcDay(new Date());
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Line {
  source: string | null;
  signups: number;
  day7Eligible: number;
  day7: number;
  day7Rate: number | null;
}

let admin: TestUser;
beforeAll(async () => {
  admin = await userWithRole("admin");
});

async function report(query: string) {
  const res = await call<{ from: string; to: string; items: Line[] }>(
    "GET",
    `/v1/admin/analytics/attribution${query}`,
    { token: admin.accessToken },
  );
  expect(res.status, res.text).toBe(200);
  return res.body;
}

/** Flushes until nothing by or about these people (or with this file's session id) is buffered, twice in a row. */
async function flushFor(ids: string[]): Promise<void> {
  let quiet = 0;
  for (let attempt = 0; attempt < 150; attempt++) {
    await runJob(deps, flushAnalyticsJob, { trigger: "test" });
    const left = await deps.db.analyticsEvents.findOne(
      { $or: [{ ownerId: { $in: ids } }, { userId: { $in: ids } }, { sessionId: marker }] },
      { projection: { _id: 1 } },
    );
    quiet = left ? 0 : quiet + 1;
    if (quiet === 2) return;
    await pause(150);
  }
  throw new Error("the events were never flushed");
}

const attributionIn = async (userId: string) =>
  (await deps.db.users.findOne({ _id: new ObjectId(userId) }, { projection: { attribution: 1 } }))?.attribution;

describe("first-touch attribution", () => {
  it("is stored once at signup, the referrer without its query, and nothing later changes it", async () => {
    const first = {
      source: `ig-${marker}`,
      medium: "social",
      campaign: "spring",
      referrer: "https://www.instagram.example/p/abc?igsh=secret-token#top",
    };
    const user = await signupUser({ attribution: first });
    const stored = { ...first, referrer: "https://www.instagram.example/p/abc" };
    expect(await attributionIn(user.id)).toEqual(stored);

    // Not through the profile…
    const patched = await call("PATCH", "/v1/me", {
      token: user.accessToken,
      body: { attribution: { source: "other" } },
    });
    expectProblem(patched, 400, "validation_failed");
    // …nor a second signup under the same name…
    const again = await call("POST", "/v1/auth/signup", {
      body: {
        username: user.username,
        email: user.email,
        password: user.password,
        ...signupConsents(),
        attribution: { source: "x" },
      },
    });
    expectProblem(again, 409, "conflict");
    // …nor events with other attribution (they are the events', not the account's).
    const events = [
      {
        event: "screen_view",
        timestamp: new Date().toISOString(),
        sessionId: marker,
        deviceId: `d-${marker}`,
        platform: "android",
        appVersion: "3.2.0",
        source: `later-${marker}`,
        medium: "email",
      },
    ];
    expect((await call("POST", "/v1/events", { token: user.accessToken, body: { events } })).status).toBe(202);
    expect(await attributionIn(user.id)).toEqual(stored);

    await flushFor([user.id]);
    const lines = (await report(`?from=${today()}&to=${today()}`)).items;
    expect(lines.find((l) => l.source === first.source)).toMatchObject({ signups: 1 });
    expect(lines.find((l) => l.source === `later-${marker}`)).toBeUndefined();
  });

  it("is kept from the sign-in that creates an account with a provider, and not changed by the next", async () => {
    const sub = `sub-${crypto.randomUUID()}`;
    const token = () => idToken("google", { sub });
    const signIn = async (attribution: Record<string, string>) =>
      call<{ user: { id: string } }>("POST", "/v1/auth/oauth/google", {
        body: { idToken: await token(), attribution },
      });
    const created = await signIn({ source: `gg-${marker}`, campaign: "launch" });
    expect(created.status, created.text).toBe(200);
    const again = await signIn({ source: "somewhere-else" });
    expect(again.body.user.id).toBe(created.body.user.id);
    expect(await attributionIn(created.body.user.id)).toEqual({
      source: `gg-${marker}`,
      medium: null,
      campaign: "launch",
      referrer: null,
    });
  });

  it("refuses attribution that is not plain campaign text, naming the field", async () => {
    const res = await call("POST", "/v1/auth/signup", {
      body: {
        username: `attr_${marker}`,
        email: `attr-${marker}@example.test`,
        password: "correct horse battery",
        ...signupConsents(),
        attribution: { source: "x".repeat(65), utm_term: "y" },
      },
    });
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toEqual(["attribution.source", "attribution.utm_term"]);
  });
});

describe("events carry medium and referrer", () => {
  it("beside source and campaign, into ClickHouse, a web referrer without its query", async () => {
    const deviceId = `d-${marker}-${crypto.randomUUID()}`;
    const event = {
      event: "app_open",
      timestamp: new Date().toISOString(),
      sessionId: marker,
      deviceId,
      platform: "ios",
      appVersion: "3.2.0",
      source: "newsletter",
      medium: "email",
      campaign: "weekly-48",
      referrer: "https://mail.example/inbox/123?session=abc",
    };
    expect((await call("POST", "/v1/events", { body: { events: [event] } })).status).toBe(202);
    await flushFor([]);
    const result = await deps.clickhouse.query({
      query: "SELECT source, medium, campaign, referrer FROM events WHERE device_id = {d:String}",
      query_params: { d: deviceId },
      format: "JSONEachRow",
    });
    expect(await result.json()).toEqual([
      { source: "newsletter", medium: "email", campaign: "weekly-48", referrer: "https://mail.example/inbox/123" },
    ]);
  });
});

describe("GET /v1/admin/analytics/attribution", () => {
  it("counts today's signups under their source; day 7 is not measurable yet", async () => {
    const [a, b] = [`a-${marker}`, `b-${marker}`];
    const people = await Promise.all([
      signupUser({ attribution: { source: a } }),
      signupUser({ attribution: { source: a, medium: "cpc" } }),
      signupUser({ attribution: { source: b } }),
    ]);
    await flushFor(people.map((p) => p.id));
    const lines = (await report(`?from=${today()}&to=${today()}`)).items;
    expect(lines.find((l) => l.source === a)).toEqual({
      source: a,
      signups: 2,
      day7Eligible: 0,
      day7: 0,
      day7Rate: null,
    });
    expect(lines.find((l) => l.source === b)).toEqual({
      source: b,
      signups: 1,
      day7Eligible: 0,
      day7: 0,
      day7Rate: null,
    });
  });

  it("gives signups and day-7 retention by source: active exactly 7 days after the signup day", async () => {
    // A random day 400–3,000 days back, which no request can write to (as the retention report's test does):
    // rows go straight into ClickHouse as the flush writes them.
    const D = shiftDay(today(), -(400 + Math.floor(Math.random() * 2_600)));
    const [ads, social] = [`ads-${marker}`, `social-${marker}`];
    const id = () => new ObjectId().toHexString();
    const [u1, u2, u3, u4, u5, u6, u7] = [id(), id(), id(), id(), id(), id(), id()];
    const signup = (user: string, day: string, source: string, time = "10:00:00.000"): ServerEventRow => ({
      event_id: crypto.randomUUID(),
      event_name: "signed_up",
      actor_id: user,
      device_id: "",
      owner_id: user,
      post_id: "",
      amount: 0,
      source,
      medium: "",
      campaign: "",
      referrer: "",
      timestamp: `${day}T${time}Z`,
    });
    const active = (user: string, day: string, time = "12:00:00.000"): EventRow => ({
      event_id: crypto.randomUUID(),
      event_name: "screen_view",
      user_id: user,
      session_id: marker,
      device_id: `d-${user}`,
      platform: "ios",
      app_version: "3.2.0",
      properties: "{}",
      source: "",
      campaign: "",
      timestamp: `${day}T${time}Z`,
    });
    await deps.clickhouse.insert({
      table: "server_events",
      format: "JSONEachRow",
      values: [
        signup(u1, D, ads),
        signup(u2, D, ads),
        signup(u3, D, ads, "23:59:59.000"),
        signup(u4, D, social),
        signup(u5, D, social),
        signup(u6, D, ""),
        // The next day's cohort: in a two-day range only.
        signup(u7, shiftDay(D, 1), ads),
      ],
    });
    await deps.clickhouse.insert({
      table: "events",
      format: "JSONEachRow",
      values: [
        active(u1, shiftDay(D, 7)),
        // Near misses: the day before and after day 7.
        active(u2, shiftDay(D, 6)),
        active(u2, shiftDay(D, 8)),
        // Twice on day 7, at its first and last millisecond: once.
        active(u3, shiftDay(D, 7), "00:00:00.000"),
        active(u3, shiftDay(D, 7), "23:59:59.999"),
        active(u4, shiftDay(D, 7)),
        active(u7, shiftDay(D, 8)),
      ],
    });
    const mine = (lines: Line[]) => lines.filter((l) => l.source?.endsWith(marker) || l.source === null);

    const oneDay = await report(`?from=${D}&to=${D}`);
    expect(oneDay).toMatchObject({ from: D, to: D });
    expect(mine(oneDay.items)).toEqual([
      { source: ads, signups: 3, day7Eligible: 3, day7: 2, day7Rate: 0.6667 },
      { source: social, signups: 2, day7Eligible: 2, day7: 1, day7Rate: 0.5 },
      { source: null, signups: 1, day7Eligible: 1, day7: 0, day7Rate: 0 },
    ]);
    const twoDays = await report(`?from=${D}&to=${shiftDay(D, 1)}`);
    expect(mine(twoDays.items)[0]).toEqual({ source: ads, signups: 4, day7Eligible: 4, day7: 3, day7Rate: 0.75 });
  });

  it("refuses a range over the limit or reversed, naming the field", async () => {
    const long = await call("GET", "/v1/admin/analytics/attribution?from=2020-01-01&to=2026-01-01", {
      token: admin.accessToken,
    });
    expectProblem(long, 400, "validation_failed");
    expect(fieldPaths(long)).toEqual(["from"]);
    const reversed = await call("GET", "/v1/admin/analytics/attribution?from=2026-01-02&to=2026-01-01", {
      token: admin.accessToken,
    });
    expectProblem(reversed, 400, "validation_failed");
    expect(fieldPaths(reversed)).toEqual(["to"]);
  });

  it("is for admins only, and answers 503 with Retry-After when ClickHouse is down", async () => {
    const user = await signupUser();
    expectProblem(await call("GET", "/v1/admin/analytics/attribution", { token: user.accessToken }), 403, "forbidden");
    const down = appWith({ CLICKHOUSE_URL: "http://127.0.0.1:9" });
    const res = await call("GET", "/v1/admin/analytics/attribution", { token: admin.accessToken }, down);
    expectProblem(res, 503, "unavailable");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
  });
});
