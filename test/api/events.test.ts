import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { fromStoredJson } from "../../src/platform/mongo/client-json";
import { call, roundTrips, uniqueIp } from "../support/api";
import { appWith, appWithLateWrites, eventually, testDeps } from "../support/deps";
import { EJSON_SHAPED_PROPERTIES } from "../support/events";
import { expectEvery } from "../support/expect";
import { expectProblem, fieldPaths } from "../support/problems";
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
    expect(res.body).toEqual({ accepted: 2, duplicates: 0 });
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
    expect(res.body).toEqual({ accepted: 3, duplicates: 0 });
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

describe("POST /v1/events: properties are plain data", () => {
  it("keeps EJSON wrappers, operators, $-prefixed, dotted and __proto__ keys as the JSON the client sent", async () => {
    const sessionId = crypto.randomUUID();
    const body = `{"events": [${JSON.stringify(event(sessionId, { properties: 0 })).replace('"properties":0', `"properties":${EJSON_SHAPED_PROPERTIES}`)}]}`;
    const res = await call("POST", "/v1/events", { rawBody: body, headers: { "content-type": "application/json" } });
    expect(res.status, res.text).toBe(202);
    const [doc] = await buffered(sessionId);
    const sent = JSON.parse(EJSON_SHAPED_PROPERTIES) as Record<string, unknown>;
    expect(doc?.propertiesJson).toBe(JSON.stringify(sent));
    const back = fromStoredJson(doc!.propertiesJson!) as Record<string, unknown>;
    expect(Object.keys(back)).toEqual(Object.keys(sent));
    expect(back.d).toEqual({ $date: "not-a-date" });
    expect(Object.getOwnPropertyDescriptor(back, "__proto__")?.value).toEqual({ polluted: true });
    // The buffer stays readable for every later reader (the flush, exports).
    expect(await deps.db.analyticsEvents.find({ sessionId })).toHaveLength(1);
  });

  it.each([
    ["nested 17 levels", nested(17), "events.0.properties"],
    ["nested 120 levels", nested(120), "events.0.properties"],
    [
      "nested 3,000 levels (arrays)",
      { a: JSON.parse(`${"[".repeat(3_000)}${"]".repeat(3_000)}`) },
      "events.0.properties",
    ],
    ["over 8 KiB", { pad: "é".repeat(4_200) }, "events.0.properties"],
    ["with a key over 64 characters", { ["k".repeat(65)]: 1 }, "events.0.properties"],
  ])("answers 400 naming the field for properties %s, writing nothing", async (_name, properties, path) => {
    const sessionId = crypto.randomUUID();
    const res = await call("POST", "/v1/events", { body: { events: [event(sessionId, { properties })] } });
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toEqual([path]);
    expect(await buffered(sessionId)).toHaveLength(0);
  });

  it("accepts 16 levels of nesting", async () => {
    const sessionId = crypto.randomUUID();
    const res = await call("POST", "/v1/events", { body: { events: [event(sessionId, { properties: nested(16) })] } });
    expect(res.status, res.text).toBe(202);
  });
});

describe("POST /v1/events: eventId", () => {
  it("records an event once however often its request is retried, also concurrently", async () => {
    const sessionId = crypto.randomUUID();
    const ids = Array.from({ length: 5 }, () => crypto.randomUUID());
    const events = ids.map((eventId, i) => event(sessionId, { eventId, properties: { i } }));
    const first = await call("POST", "/v1/events", { body: { events } });
    expect(first.body).toEqual({ accepted: 5, duplicates: 0 });
    const retries = await Promise.all(
      Array.from({ length: 10 }, () => call("POST", "/v1/events", { body: { events } })),
    );
    for (const retry of retries) {
      expect(retry.status).toBe(202);
      expect(retry.body).toEqual({ accepted: 5, duplicates: 5 });
    }
    const docs = await buffered(sessionId);
    expect(docs.map((d) => d.eventId).sort()).toEqual(ids.sort());
    expectEvery(docs, (d) => d.clientEventId === true);
  });

  it("records each event once when a retry follows a 503 whose insert was applied", async () => {
    const sessionId = crypto.randomUUID();
    const events = Array.from({ length: 4 }, () => event(sessionId, { eventId: crypto.randomUUID() }));
    const lost = await call("POST", "/v1/events", { body: { events } }, appWithLateWrites());
    expectProblem(lost, 503, "unavailable");
    await eventually(async () => (await buffered(sessionId)).length === 4, "the held insert");
    const retry = await call("POST", "/v1/events", { body: { events } });
    expect(retry.body).toEqual({ accepted: 4, duplicates: 4 });
    expect(await buffered(sessionId)).toHaveLength(4);
  });

  it("keeps the new events of a request that repeats some, and normalizes the id to lower case", async () => {
    const sessionId = crypto.randomUUID();
    const id = crypto.randomUUID();
    await call("POST", "/v1/events", { body: { events: [event(sessionId, { eventId: id })] } });
    const res = await call("POST", "/v1/events", {
      body: {
        events: [event(sessionId, { eventId: id.toUpperCase() }), event(sessionId, { eventId: crypto.randomUUID() })],
      },
    });
    expect(res.body).toEqual({ accepted: 2, duplicates: 1 });
    expect(await buffered(sessionId)).toHaveLength(2);
  });

  it.each(["not-a-uuid", "0b6f4c3e6a9c4c2e9a432f1d5f3f7e10", 42, ""])(
    "answers 400 naming the field for eventId %j",
    async (eventId) => {
      const res = await call("POST", "/v1/events", { body: { events: [event("s", { eventId })] } });
      expectProblem(res, 400, "validation_failed");
      expect(fieldPaths(res)).toEqual(["events.0.eventId"]);
    },
  );
});

describe("POST /v1/events: size limits", () => {
  it("caps one request's body at ANALYTICS_MAX_REQUEST_BYTES (413), below the other routes' cap", async () => {
    const small = appWith({ ANALYTICS_MAX_REQUEST_BYTES: "4096" });
    const sessionId = crypto.randomUUID();
    const body = {
      events: Array.from({ length: 10 }, () => event(sessionId, { properties: { pad: "x".repeat(400) } })),
    };
    expect(JSON.stringify(body).length).toBeGreaterThan(4_096);
    expectProblem(await call("POST", "/v1/events", { body }, small), 413, "payload_too_large");
    // The same body without a Content-Length (streamed) is measured as it is read.
    const streamed = await small(
      new Request("http://circle.test/v1/events", {
        method: "POST",
        headers: { "content-type": "application/json", "cf-connecting-ip": uniqueIp() },
        body: new Blob([JSON.stringify(body)]).stream(),
        duplex: "half",
      } as RequestInit),
    );
    expect(streamed.status).toBe(413);
    expect(await buffered(sessionId)).toHaveLength(0);
    // Another route still takes bodies up to HTTP_MAX_BODY_BYTES.
    const other = await call("POST", "/v1/auth/login", { body: { login: "x".repeat(8_000), password: "x" } }, small);
    expect(other.status).not.toBe(413);
  });

  it("refuses an address past its byte budget with 429 and Retry-After, still in one Redis round trip", async () => {
    const budget = appWith({ ANALYTICS_INGEST_BYTES_PER_IP: "20000", ANALYTICS_INGEST_WINDOW_SECONDS: "3600" });
    const ip = uniqueIp();
    const sessionId = crypto.randomUUID();
    const body = {
      events: Array.from({ length: 10 }, () => event(sessionId, { properties: { pad: "x".repeat(500) } })),
    };
    const size = new TextEncoder().encode(JSON.stringify(body)).length;
    const allowed = Math.floor(20_000 / size);
    const answers = [];
    for (let i = 0; i < allowed + 2; i++) answers.push(await call("POST", "/v1/events", { body, ip }, budget));
    expect(answers.slice(0, allowed).map((r) => r.status)).toEqual(Array(allowed).fill(202));
    expect(roundTrips(answers[0]!.headers)).toMatchObject({ redis: 1, mongo: 1 });
    for (const refused of answers.slice(allowed)) {
      expect(expectProblem(refused, 429, "rate_limited").reason).toBe("byte_budget");
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(roundTrips(refused.headers)).toMatchObject({ redis: 1, mongo: 0 });
    }
    expect(await buffered(sessionId)).toHaveLength(allowed * 10);
    // Another address has its own budget.
    expect((await call("POST", "/v1/events", { body }, budget)).status).toBe(202);
  });
});

function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: true };
  for (let i = 1; i < levels; i++) value = { next: value };
  return value;
}
