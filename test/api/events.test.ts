import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { expectProblem } from "../support/problems";
import { signupUser } from "../support/users";

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
    // No token: anonymous, counted by device.
    expectEvery(docs, (d) => d.userId === null);
  });

  it("stores every event of a signed-in caller with the caller's user id", async () => {
    const user = await signupUser();
    const sessionId = crypto.randomUUID();
    const res = await call("POST", "/v1/events", {
      token: user.accessToken,
      body: {
        events: [
          event(sessionId, { deviceId: "phone" }),
          event(sessionId, { deviceId: "tablet", event: "vote_cast" }),
          event(sessionId, { deviceId: "phone", timestamp: new Date(Date.now() - 3 * 86_400_000).toISOString() }),
        ],
      },
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 3 });
    const docs = await buffered(sessionId);
    expect(docs).toHaveLength(3);
    expectEvery(docs, (d) => d.userId === user.id);
  });

  it.each([
    ["anonymous", false],
    ["signed in", true],
  ])("costs one Redis and one MongoDB round trip and no ClickHouse call (%s)", async (_name, signedIn) => {
    const sessionId = crypto.randomUUID();
    const token = signedIn ? (await signupUser()).accessToken : undefined;
    const res = await call("POST", "/v1/events", {
      ...(token ? { token } : {}),
      body: { events: Array.from({ length: 100 }, () => event(sessionId)) },
    });
    expect(res.status).toBe(202);
    expect(roundTrips(res.headers)).toMatchObject({ redis: 1, mongo: 1, clickhouse: 0 });
    expect(await buffered(sessionId)).toHaveLength(100);
  });

  it("refuses a token that fails verification with 401 instead of recording the events anonymously", async () => {
    const user = await signupUser();
    const bindings = env as unknown as Record<string, string>;
    const [header, payload, signature] = user.accessToken.split(".") as [string, string, string];
    // The user's valid token, its payload rewritten to name someone else, the signature kept.
    const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
    const otherUser = btoa(JSON.stringify({ ...claims, sub: new ObjectId().toHexString() }))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
    const issuedAt = Math.floor(Date.now() / 1000) - 3_600;
    const expired = await new SignJWT({ sid: new ObjectId().toHexString(), role: "user", tier: "free" })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(user.id)
      .setIssuer(bindings.JWT_ISSUER ?? "circle-api")
      .setAudience(bindings.JWT_AUDIENCE ?? "circle-app")
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + 60)
      .sign(new TextEncoder().encode(bindings.JWT_SECRET));
    const wrongKey = await new SignJWT({ sid: new ObjectId().toHexString(), role: "user", tier: "free" })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(user.id)
      .setIssuer(bindings.JWT_ISSUER ?? "circle-api")
      .setAudience(bindings.JWT_AUDIENCE ?? "circle-app")
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode("a-different-secret-of-at-least-32-characters"));
    const sessionId = crypto.randomUUID();
    for (const token of [`${header}.${otherUser}.${signature}`, expired, wrongKey, "not-a-jwt"]) {
      const res = await call("POST", "/v1/events", { token, body: { events: [event(sessionId)] } });
      expectProblem(res, 401, "unauthorized");
    }
    const malformedHeader = await call("POST", "/v1/events", {
      headers: { authorization: "Basic dXNlcjpwYXNz" },
      body: { events: [event(sessionId)] },
    });
    expectProblem(malformedHeader, 401, "unauthorized");
    expect(await buffered(sessionId)).toHaveLength(0);
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
