import { beforeAll, describe, expect, it } from "vitest";
import { flushAnalyticsJob as analyticsFlushJob } from "../../src/features/analytics/flush";
import { type RunResult, runJob } from "../../src/scheduler/runner";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { signupUser, type TestUser, userWithRole } from "../support/users";

// Every flush test lives in this file: the flush job drains the whole buffer, and tests in one file run in
// sequence, so no other suite's flush run can hold the lease while these assert on outcomes.
const deps = testDeps();
const smallBatches = testDeps({ ANALYTICS_FLUSH_BATCH_SIZE: "1000" });
let admin: TestUser;
let adminToken = "";
beforeAll(async () => {
  admin = await userWithRole("admin");
  adminToken = admin.accessToken;
});

class SimulatedCrash extends Error {}

async function postEvents(
  marker: string,
  requests: number,
  perRequest: number,
  userOf?: (i: number) => string,
  now = Date.now(),
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
      return (await call("POST", "/v1/events", { body: { events } })).status;
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
    await postEvents(marker, 100, 100);
    expect(await bufferedCount(marker)).toBe(10_000);

    const run = await runJob(deps, analyticsFlushJob, { trigger: "test" });
    expect(run.outcome).toBe("succeeded");
    expect(run.counts.events).toBeGreaterThanOrEqual(10_000);
    expect(await clickhouseCounts(marker)).toEqual({ rows: 10_000, distinct: 10_000 });
    expect(await bufferedCount(marker)).toBe(0);

    const recorded = await deps.db.jobRuns.findOne({ runId: run.runId });
    expect(recorded).toMatchObject({ job: "analytics-flush", outcome: "succeeded", trigger: "test" });
    expect(recorded?.finishedAt).toBeInstanceOf(Date);
  });

  it.each(["claimed", "inserted"])(
    "loses and duplicates nothing when a run crashes half-way (at %s) and is run again",
    async (crashPoint) => {
      const marker = crypto.randomUUID();
      await postEvents(marker, 100, 100);
      let checkpoints = 0;
      const crashed = await runJob(smallBatches, analyticsFlushJob, {
        trigger: "test",
        onCheckpoint: (name) => {
          // Let a few batches through, then die between two steps of the sixth.
          if (name === crashPoint && ++checkpoints === 6) throw new SimulatedCrash(`killed at ${name}`);
        },
      });
      expect(crashed.outcome).toBe("failed");
      expect(crashed.error).toContain("killed");
      const partial = await clickhouseCounts(marker);
      expect(partial.rows).toBeLessThan(10_000);

      const rerun = await runJob(smallBatches, analyticsFlushJob, { trigger: "test" });
      expect(rerun.outcome).toBe("succeeded");
      expect(await clickhouseCounts(marker)).toEqual({ rows: 10_000, distinct: 10_000 });
      expect(await bufferedCount(marker)).toBe(0);
    },
  );

  it("refuses an overlapping run (recorded as skipped) and still delivers every event once", async () => {
    const marker = crypto.randomUUID();
    await postEvents(marker, 20, 100);
    const runs: RunResult[] = await Promise.all([
      runJob(smallBatches, analyticsFlushJob, { trigger: "test-a" }),
      runJob(smallBatches, analyticsFlushJob, { trigger: "test-b" }),
    ]);
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
    await runJob(smallBatches, analyticsFlushJob, { trigger: "test-c" });
    expect(await clickhouseCounts(marker)).toEqual({ rows: 3_000, distinct: 3_000 });
  });

  it("can be triggered by an admin through the API, and by nobody else", async () => {
    const user = await signupUser();
    expect((await call("POST", "/v1/admin/jobs/analytics-flush/run")).status).toBe(401);
    expect((await call("POST", "/v1/admin/jobs/analytics-flush/run", { token: "wrong.token.value" })).status).toBe(401);
    expect((await call("POST", "/v1/admin/jobs/analytics-flush/run", { token: user.accessToken })).status).toBe(403);
    expect((await call("GET", "/v1/admin/jobs/runs?limit=0", { token: adminToken })).status).toBe(400);
    expect((await call("POST", "/v1/admin/jobs/nope/run", { token: adminToken })).status).toBe(404);
    const res = await call<{ outcome: string; job: string }>("POST", "/v1/admin/jobs/analytics-flush/run", {
      token: adminToken,
    });
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
    await runJob(deps, analyticsFlushJob, { trigger: "test" });
    const after = await call<{ items: { date: string; users: number }[] }>(
      "GET",
      `/v1/admin/analytics/dau?from=${day}&to=${day}`,
      { token: adminToken },
    );
    expect(after.status).toBe(200);
    expect(after.body.items).toEqual([{ date: day, users: usersBefore + 7 }]);
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
