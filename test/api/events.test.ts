import { describe, expect, it } from "vitest";
import { call, roundTrips } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";

const deps = testDeps();

function event(sessionId: string, overrides: Record<string, unknown> = {}) {
  return {
    event: "screen_view",
    timestamp: new Date().toISOString(),
    sessionId,
    deviceId: "device-1",
    platform: "ios",
    appVersion: "1.4.0",
    properties: { screen: "feed" },
    ...overrides,
  };
}

const buffered = (sessionId: string) => deps.db.analyticsEvents.find({ sessionId }, { limit: 1000 });

describe("POST /v1/events", () => {
  it("accepts a batch with 202 and buffers every event with a server-assigned id", async () => {
    const sessionId = crypto.randomUUID();
    const res = await call("POST", "/v1/events", {
      body: { events: [event(sessionId), event(sessionId, { event: "vote_cast", source: "referral", campaign: "x" })] },
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 2 });
    const docs = await buffered(sessionId);
    expect(docs).toHaveLength(2);
    expect(new Set(docs.map((d) => d.eventId)).size).toBe(2);
    for (const d of docs) expect(d.eventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(docs.map((d) => d.event).sort()).toEqual(["screen_view", "vote_cast"]);
    expectEvery(docs, (d) => d.flushBatchId === null && d.receivedAt instanceof Date);
  });

  it("costs one MongoDB round trip and no ClickHouse call", async () => {
    const sessionId = crypto.randomUUID();
    const res = await call("POST", "/v1/events", {
      body: { events: Array.from({ length: 100 }, () => event(sessionId)) },
    });
    expect(res.status).toBe(202);
    expect(roundTrips(res.headers)).toMatchObject({ mongo: 1, clickhouse: 0 });
  });

  it.each([
    ["no events", { events: [] }, "events"],
    ["101 events", { events: Array.from({ length: 101 }, () => event("s")) }, "events"],
    ["a missing field", { events: [{ ...event("s"), deviceId: undefined }] }, "events.0.deviceId"],
    ["an unknown field", { events: [{ ...event("s"), userId: "someone-else" }] }, "events.0.userId"],
    ["a bad platform", { events: [event("s", { platform: "symbian" })] }, "events.0.platform"],
    ["a non-ISO timestamp", { events: [event("s", { timestamp: "yesterday" })] }, "events.0.timestamp"],
    ["a bad event name", { events: [event("s", { event: "has spaces" })] }, "events.0.event"],
    ["properties that are not an object", { events: [event("s", { properties: [1, 2] })] }, "events.0.properties"],
    ["a body that is not an object", [1, 2, 3], ""],
  ])("rejects %s with a 400 naming the field", async (_name, body, path) => {
    const res = await call<{ code: string; errors: { path: string }[] }>("POST", "/v1/events", { body });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("validation_failed");
    expect(res.body.errors.map((e) => e.path)).toContain(path);
  });

  it("rejects a timestamp too far in the past or future, writing none of the batch", async () => {
    const sessionId = crypto.randomUUID();
    const old = new Date(Date.now() - 8 * 86_400_000).toISOString();
    const future = new Date(Date.now() + 2 * 3_600_000).toISOString();
    const res = await call<{ errors: { path: string }[] }>("POST", "/v1/events", {
      body: {
        events: [event(sessionId), event(sessionId, { timestamp: old }), event(sessionId, { timestamp: future })],
      },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e) => e.path)).toEqual(["events.1.timestamp", "events.2.timestamp"]);
    expect(await buffered(sessionId)).toHaveLength(0);
  });

  it("answers 503 with Retry-After, not 500, when MongoDB is down", async () => {
    const down = appWith({ DATA_API_URL: "http://127.0.0.1:9/app/data-api/endpoint/data/v1" });
    const res = await call("POST", "/v1/events", { body: { events: [event("s")] } }, down);
    expect(res.status).toBe(503);
    expect((res.body as { code: string }).code).toBe("unavailable");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
  });
});
