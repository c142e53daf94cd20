import { beforeAll, describe, expect, it } from "vitest";
import type { AnalyticsEventDoc } from "../../src/db";
import type { Deps } from "../../src/deps";
import { flushAnalyticsJob as analyticsFlushJob } from "../../src/features/analytics/flush";
import { newObjectId, ObjectId } from "../../src/platform/ids";
import { type RunResult, runJob } from "../../src/scheduler/runner";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { EJSON_SHAPED_PROPERTIES } from "../support/events";
import { expectEvery } from "../support/expect";
import { signupUser, type TestUser, userWithRole } from "../support/users";

// The flush job drains the whole buffer and one run at a time holds its lease across the suite, and another
// file (the retention report's) flushes too. So every run here that must do the work itself retries while
// skipped, a scenario that needs its events still buffered starts over if another run took them first, and
// what is asserted is where the events end up (exactly once in ClickHouse, gone from the buffer).
const deps = testDeps();
const smallBatches = testDeps({ ANALYTICS_FLUSH_BATCH_SIZE: "1000" });
let admin: TestUser;
let adminToken = "";
beforeAll(async () => {
  admin = await userWithRole("admin");
  adminToken = admin.accessToken;
});

class SimulatedCrash extends Error {}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A run that holds the lease itself: one skipped because another file's run held it is retried. */
async function ownRun(on: Deps, options: Parameters<typeof runJob>[2]): Promise<RunResult> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const run = await runJob(on, analyticsFlushJob, options);
    if (run.outcome !== "skipped") return run;
    await pause(100);
  }
  throw new Error("the analytics-flush lease was never free");
}

/** Flushes until none of the marker's events is buffered (whichever run moves them). */
async function drain(marker: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    await runJob(deps, analyticsFlushJob, { trigger: "test" });
    if ((await bufferedCount(marker)) === 0) return;
    await pause(100);
  }
  throw new Error("the buffered events were never flushed");
}

async function postEvents(
  marker: string,
  requests: number,
  perRequest: number,
  userOf?: (i: number) => string,
  now = Date.now(),
  tokenOf?: (request: number) => string | undefined,
) {
  const statuses = await Promise.all(
    Array.from({ length: requests }, async (_, r) => {
      const events = Array.from({ length: perRequest }, (_, i) => ({
        event: i % 10 === 0 ? "session_start" : "screen_view",
        timestamp: new Date(now - i).toISOString(),
        sessionId: marker,
        deviceId: userOf ? userOf(r * perRequest + i) : `device-${r}`,
        platform: "android",
        appVersion: "2.0.0",
        properties: { n: r * perRequest + i, quote: `it's "quoted"\n` },
      }));
      const token = tokenOf?.(r);
      return (await call("POST", "/v1/events", { body: { events }, ...(token ? { token } : {}) })).status;
    }),
  );
  expectEvery(statuses, (s) => s === 202);
}

async function clickhouseCounts(marker: string): Promise<{ rows: number; distinct: number }> {
  const result = await deps.clickhouse.query({
    query: "SELECT count() AS rows, uniqExact(event_id) AS distinct FROM events WHERE session_id = {marker:String}",
    query_params: { marker },
    format: "JSONEachRow",
  });
  const [row] = await result.json<{ rows: string; distinct: string }>();
  return { rows: Number(row?.rows), distinct: Number(row?.distinct) };
}

const bufferedCount = async (marker: string) =>
  (await deps.db.analyticsEvents.aggregate([{ $match: { sessionId: marker } }, { $count: "n" }]))[0]?.n ?? 0;

describe("analytics flush job", () => {
  it("moves 10,000 events posted in 100 requests to ClickHouse exactly once and empties the buffer", async () => {
    const marker = crypto.randomUUID();
    const startedAt = new Date();
    await postEvents(marker, 100, 100);
    expect(await bufferedCount(marker)).toBe(10_000);

    const run = await ownRun(deps, { trigger: "test" });
    expect(run.outcome).toBe("succeeded");
    expect(await clickhouseCounts(marker)).toEqual({ rows: 10_000, distinct: 10_000 });
    expect(await bufferedCount(marker)).toBe(0);
    // The runs that finished meanwhile (this one, or another file's that got there first) report the move.
    const finished = await deps.db.jobRuns.find(
      { job: "analytics-flush", finishedAt: { $gte: startedAt }, outcome: "succeeded" },
      { limit: 1_000 },
    );
    expect(finished.reduce((sum, r) => sum + (r.counts.events ?? 0), 0)).toBeGreaterThanOrEqual(10_000);

    const recorded = await deps.db.jobRuns.findOne({ runId: run.runId });
    expect(recorded).toMatchObject({ job: "analytics-flush", outcome: "succeeded", trigger: "test" });
    expect(recorded?.finishedAt).toBeInstanceOf(Date);
  });

  it.each(["claimed", "inserted"])(
    "loses and duplicates nothing when a run crashes half-way (at %s) and is run again",
    async (crashPoint) => {
      let marker = "";
      let crashed: RunResult | undefined;
      let atCrash = { rows: 0, distinct: 0 };
      // Another file's run may move these events before this one gets to crash; then start over.
      for (let attempt = 0; attempt < 3 && crashed?.outcome !== "failed"; attempt++) {
        marker = crypto.randomUUID();
        await postEvents(marker, 100, 100);
        let checkpoints = 0;
        crashed = await ownRun(smallBatches, {
          trigger: "test",
          onCheckpoint: async (name) => {
            // Let a few batches through, then die between two steps of the sixth.
            if (name === crashPoint && ++checkpoints === 6) {
              atCrash = await clickhouseCounts(marker);
              throw new SimulatedCrash(`killed at ${name}`);
            }
          },
        });
      }
      expect(crashed?.outcome).toBe("failed");
      expect(crashed?.error).toContain("killed");
      expect(atCrash.rows).toBeLessThan(10_000);

      const rerun = await ownRun(smallBatches, { trigger: "test" });
      expect(rerun.outcome).toBe("succeeded");
      expect(await clickhouseCounts(marker)).toEqual({ rows: 10_000, distinct: 10_000 });
      expect(await bufferedCount(marker)).toBe(0);
    },
  );

  it("refuses an overlapping run (recorded as skipped) and still delivers every event once", async () => {
    const marker = crypto.randomUUID();
    await postEvents(marker, 20, 100);
    let runs: RunResult[] = [];
    // Both skipped: another file's run held the lease; try the pair again.
    for (let attempt = 0; attempt < 100 && !runs.some((r) => r.outcome !== "skipped"); attempt++) {
      if (attempt > 0) await pause(100);
      runs = await Promise.all([
        runJob(smallBatches, analyticsFlushJob, { trigger: "test-a" }),
        runJob(smallBatches, analyticsFlushJob, { trigger: "test-b" }),
      ]);
    }
    expect(runs.map((r) => r.outcome).sort()).toEqual(["skipped", "succeeded"]);
    const skipped = runs.find((r) => r.outcome === "skipped")!;
    expect(await deps.db.jobRuns.findOne({ runId: skipped.runId })).toMatchObject({ outcome: "skipped" });
    expect(await clickhouseCounts(marker)).toEqual({ rows: 2_000, distinct: 2_000 });
  });

  it("stays exact even if two runs overlap without the lease (lease expired mid-run)", async () => {
    const marker = crypto.randomUUID();
    await postEvents(marker, 30, 100);
    // Drop the lease as soon as each run takes it, so both really work at the same time.
    const dropLease = () => smallBatches.redis.del(smallBatches.keys.jobLease(analyticsFlushJob.name)).then(() => {});
    const runs = await Promise.all([
      runJob(smallBatches, analyticsFlushJob, { trigger: "test-a", onCheckpoint: dropLease }),
      runJob(smallBatches, analyticsFlushJob, { trigger: "test-b", onCheckpoint: dropLease }),
    ]);
    expectEvery(runs, (r) => r.outcome !== "failed");
    await ownRun(smallBatches, { trigger: "test-c" });
    expect(await clickhouseCounts(marker)).toEqual({ rows: 3_000, distinct: 3_000 });
  });

  it("can be triggered by an admin through the API, and by nobody else", async () => {
    const user = await signupUser();
    expect((await call("POST", "/v1/admin/jobs/analytics-flush/run")).status).toBe(401);
    expect((await call("POST", "/v1/admin/jobs/analytics-flush/run", { token: "wrong.token.value" })).status).toBe(401);
    expect((await call("POST", "/v1/admin/jobs/analytics-flush/run", { token: user.accessToken })).status).toBe(403);
    expect((await call("GET", "/v1/admin/jobs/runs?limit=0", { token: adminToken })).status).toBe(400);
    expect((await call("POST", "/v1/admin/jobs/nope/run", { token: adminToken })).status).toBe(404);
    const trigger = () =>
      call<{ outcome: string; job: string }>("POST", "/v1/admin/jobs/analytics-flush/run", { token: adminToken });
    let res = await trigger();
    for (let attempt = 0; attempt < 100 && res.body.outcome === "skipped"; attempt++) {
      await pause(100);
      res = await trigger();
    }
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ job: "analytics-flush", outcome: "succeeded" });
    const runs = await call<{ items: { job: string }[] }>("GET", "/v1/admin/jobs/runs?job=analytics-flush&limit=3", {
      token: adminToken,
    });
    expect(runs.body.items).toHaveLength(3);
  });
});

describe("GET /v1/admin/analytics/dau", () => {
  it("counts distinct users per day from ClickHouse after a flush", async () => {
    const marker = crypto.randomUUID();
    // Six days ago: no other suite posts events on that day, so the count is this test's alone.
    const sixDaysAgo = Date.now() - 6 * 86_400_000;
    const day = new Date(sixDaysAgo).toISOString().slice(0, 10);
    const before = await call<{ items: { date: string; users: number }[] }>("GET", "/v1/admin/analytics/dau", {
      token: adminToken,
    });
    const usersBefore = before.body.items.find((i) => i.date === day)?.users ?? 0;
    // 3 requests × 50 events over 7 distinct (anonymous) devices.
    await postEvents(marker, 3, 50, (i) => `dau-${marker}-${i % 7}`, Date.parse(`${day}T12:00:00Z`));
    await drain(marker);
    const after = await call<{ items: { date: string; users: number }[] }>(
      "GET",
      `/v1/admin/analytics/dau?from=${day}&to=${day}`,
      { token: adminToken },
    );
    expect(after.status).toBe(200);
    expect(after.body.items).toEqual([{ date: day, users: usersBefore + 7 }]);
  });

  it("counts a signed-in user once across devices, and anonymous traffic by device", async () => {
    const marker = crypto.randomUUID();
    // Two days ago: no other suite posts events on that day.
    const day = new Date(Date.now() - 2 * 86_400_000).toISOString().slice(0, 10);
    const dau = async () =>
      (
        await call<{ items: { date: string; users: number }[] }>(
          "GET",
          `/v1/admin/analytics/dau?from=${day}&to=${day}`,
          { token: adminToken },
        )
      ).body.items.find((i) => i.date === day)?.users ?? 0;
    const usersBefore = await dau();
    const [multiDevice, oneDevice] = await Promise.all([signupUser(), signupUser()]);
    // Requests 0–2: one user on three devices; 3: another on one; 4–5: anonymous, five devices between them.
    const tokens = [
      multiDevice.accessToken,
      multiDevice.accessToken,
      multiDevice.accessToken,
      oneDevice.accessToken,
      undefined,
      undefined,
    ];
    const devices = (i: number) => {
      const request = Math.floor(i / 20);
      return request < 3
        ? `multi-${marker}-${request}`
        : request === 3
          ? `single-${marker}`
          : `anon-${marker}-${i % 5}`;
    };
    await postEvents(marker, 6, 20, devices, Date.parse(`${day}T12:00:00Z`), (r) => tokens[r]);
    await drain(marker);

    const result = await deps.clickhouse.query({
      query: `SELECT user_id, uniqExact(device_id) AS devices, count() AS rows
              FROM events WHERE session_id = {marker:String} GROUP BY user_id ORDER BY rows DESC`,
      query_params: { marker },
      format: "JSONEachRow",
    });
    const byUser = (await result.json<{ user_id: string; devices: string; rows: string }>()).map((r) => ({
      userId: r.user_id,
      devices: Number(r.devices),
      rows: Number(r.rows),
    }));
    expect(byUser).toEqual([
      { userId: multiDevice.id, devices: 3, rows: 60 },
      { userId: "", devices: 5, rows: 40 },
      { userId: oneDevice.id, devices: 1, rows: 20 },
    ]);
    // Each user once, plus the five anonymous devices.
    expect(await dau()).toBe(usersBefore + 7);
  });

  it.each([
    ["from after to", "?from=2026-02-02&to=2026-02-01", "from"],
    ["a malformed date", "?from=02/01/2026", "from"],
    ["a range over the maximum", "?from=2020-01-01&to=2026-01-01", "from"],
  ])("rejects %s with 400", async (_name, query, path) => {
    const res = await call<{ errors: { path: string }[] }>("GET", `/v1/admin/analytics/dau${query}`, {
      token: adminToken,
    });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e) => e.path)).toContain(path);
  });

  it("requires the admin role", async () => {
    expect((await call("GET", "/v1/admin/analytics/dau")).status).toBe(401);
    expect((await call("GET", "/v1/admin/analytics/dau", { token: (await signupUser()).accessToken })).status).toBe(
      403,
    );
  });
});

async function clickhouseRows(marker: string): Promise<{ event_id: string; properties: string }[]> {
  const result = await deps.clickhouse.query({
    query:
      "SELECT toString(event_id) AS event_id, properties FROM events WHERE session_id = {marker:String} ORDER BY event_id",
    query_params: { marker },
    format: "JSONEachRow",
  });
  return result.json<{ event_id: string; properties: string }>();
}

const anEvent = (marker: string, extra: Record<string, unknown> = {}) => ({
  event: "screen_view",
  timestamp: new Date().toISOString(),
  sessionId: marker,
  deviceId: "device-q",
  platform: "ios",
  appVersion: "3.0.0",
  ...extra,
});

describe("analytics flush: client data", () => {
  it("delivers EJSON-shaped properties to ClickHouse as exactly the JSON the client sent", async () => {
    const marker = crypto.randomUUID();
    const json = JSON.stringify(anEvent(marker, { properties: 0 })).replace(
      '"properties":0',
      `"properties":${EJSON_SHAPED_PROPERTIES}`,
    );
    const res = await call("POST", "/v1/events", {
      rawBody: `{"events":[${json}]}`,
      headers: { "content-type": "application/json" },
    });
    expect(res.status, res.text).toBe(202);
    await drain(marker);
    const rows = await clickhouseRows(marker);
    expect(rows.map((r) => r.properties)).toEqual([JSON.stringify(JSON.parse(EJSON_SHAPED_PROPERTIES))]);
  });

  it("records a retried event once in ClickHouse, also when the retry arrives after the first copy was flushed", async () => {
    const marker = crypto.randomUUID();
    const ids = Array.from({ length: 3 }, () => crypto.randomUUID());
    const events = ids.map((eventId, i) => anEvent(marker, { eventId, properties: { i } }));
    expect((await call("POST", "/v1/events", { body: { events } })).status).toBe(202);
    await drain(marker);
    const startedAt = new Date();
    // The answer was lost; the app sends the same events again, twice, and one new one.
    const freshId = crypto.randomUUID();
    const fresh = anEvent(marker, { eventId: freshId });
    for (let i = 0; i < 2; i++) {
      const again = await call("POST", "/v1/events", { body: { events: i === 0 ? [...events, fresh] : events } });
      expect(again.status).toBe(202);
      await drain(marker);
    }
    const rows = await clickhouseRows(marker);
    expect(rows.map((r) => r.event_id).sort()).toEqual([...ids, freshId].sort());
    const runs = await deps.db.jobRuns.find(
      { job: "analytics-flush", finishedAt: { $gte: startedAt } },
      { limit: 1_000 },
    );
    expect(runs.reduce((sum, r) => sum + (r.counts.duplicates ?? 0), 0)).toBeGreaterThanOrEqual(6);
  });

  it("sets aside an event it cannot decode or deliver, delivers the rest, and reports it", async () => {
    const marker = crypto.randomUUID();
    const startedAt = new Date();
    await postEvents(marker, 1, 20);
    // Written the way the API wrote properties before they were kept as JSON text: the Data API read the
    // client's `{"$date": "not-a-date"}` as an invalid date, which no later read could decode.
    const legacy = (extra: Partial<AnalyticsEventDoc> & Record<string, unknown>): AnalyticsEventDoc => ({
      _id: newObjectId(),
      eventId: crypto.randomUUID(),
      event: "screen_view",
      userId: null,
      sessionId: marker,
      deviceId: "legacy",
      platform: "ios",
      appVersion: "1.0.0",
      source: null,
      campaign: null,
      timestamp: new Date(),
      receivedAt: new Date(),
      flushBatchId: null,
      ...extra,
    });
    // Sent signed in: the quarantined copies still name their sender, for export and erasure.
    const sender = newObjectId().toHexString();
    const poisoned = [
      legacy({ userId: sender, properties: { d: { $date: "not-a-date" } } }),
      legacy({ userId: sender, properties: { id: { $oid: "5f0000000000000000000000" } } }),
      legacy({ eventId: "not-a-uuid", properties: {} }),
    ];
    const plainLegacy = legacy({ properties: { screen: "feed", "a.b": 1 } });
    for (const doc of [...poisoned, plainLegacy]) await deps.db.analyticsEvents.insertOne(doc);
    await postEvents(marker, 1, 20);

    await drain(marker);
    const rows = await clickhouseRows(marker);
    expect(rows).toHaveLength(41);
    expect(rows.find((r) => r.event_id === plainLegacy.eventId)?.properties).toBe('{"screen":"feed","a.b":1}');
    const kept = await deps.db.analyticsQuarantine.find({ _id: { $in: poisoned.map((d) => d._id) } });
    expect(kept.map((k) => k._id.toHexString()).sort()).toEqual(poisoned.map((d) => d._id.toHexString()).sort());
    const byId = new Map(kept.map((k) => [k._id.toHexString(), k]));
    expect(byId.get(poisoned[0]!._id.toHexString())).toMatchObject({ reason: "undecodable", userId: sender });
    expect(byId.get(poisoned[0]!._id.toHexString())?.documentJson).toContain('"$numberLong":"NaN"');
    expect(byId.get(poisoned[1]!._id.toHexString())).toMatchObject({ reason: "invalid", userId: sender });
    expect(byId.get(poisoned[2]!._id.toHexString())).toMatchObject({
      reason: "invalid",
      eventId: "not-a-uuid",
      userId: null,
    });

    // Whichever run took the batch succeeded and reported what it set aside.
    const runs = await deps.db.jobRuns.find(
      { job: "analytics-flush", startedAt: { $gte: startedAt }, "counts.quarantined": { $gt: 0 } },
      { limit: 1_000 },
    );
    expectEvery(runs, (r) => r.outcome !== "failed", "runs that quarantined");
    const reported = runs.flatMap((r) => r.findings).filter((f) => f.kind === "events_quarantined");
    const reportedIds = reported.flatMap((f) => f.bufferIds as string[]);
    for (const doc of poisoned) expect(reportedIds).toContain(doc._id.toHexString());
    // Nothing of the marker is left to block a later run.
    expect(await bufferedCount(marker)).toBe(0);
    expect(await deps.db.analyticsEvents.findOne({ _id: new ObjectId(poisoned[0]!._id.toHexString()) })).toBeNull();
  });
});
