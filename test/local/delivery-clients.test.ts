import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningEmailServer, startEmailServer } from "../../scripts/local/email-server";
import { fakeRegistrationToken, type RunningFcmServer, startFcmServer } from "../../scripts/local/fcm-server";
import { freePort } from "../../scripts/local/ports";
import { type FcmMessage, type FcmSettings, sendPush } from "../../src/platform/fcm";
import { type OutgoingEmail, sendEmail } from "../../src/platform/resend";

// The Worker's provider clients against the stand-ins (real HTTP, real RS256 assertions, real error bodies).

const API_KEY = "re_client_test_0123456789";
let resend: RunningEmailServer;
let fcm: RunningFcmServer;
let push: FcmSettings;

beforeAll(async () => {
  resend = await startEmailServer({ apiKey: API_KEY, port: await freePort() });
  fcm = await startFcmServer({ port: await freePort(), projectId: "circle-clients" });
  const sa = fcm.serviceAccount;
  push = {
    apiUrl: fcm.url,
    timeoutMs: 5_000,
    account: {
      projectId: sa.project_id,
      privateKeyId: sa.private_key_id,
      privateKey: sa.private_key,
      clientEmail: sa.client_email,
      tokenUri: sa.token_uri,
    },
  };
});

afterAll(async () => {
  await Promise.all([resend?.stop(), fcm?.stop()]);
});

const mail = (overrides: Partial<OutgoingEmail> = {}): OutgoingEmail => ({
  from: "Circle <no-reply@circle.example>",
  to: "reader@example.test",
  subject: "Hello",
  text: "Hi",
  html: "<p>Hi</p>",
  tags: [{ name: "template", value: "verify_email" }],
  idempotencyKey: `circle-email-${crypto.randomUUID()}`,
  ...overrides,
});
const settings = (overrides: Partial<{ baseUrl: string; apiKey: string }> = {}) => ({
  baseUrl: resend.url,
  apiKey: API_KEY,
  timeoutMs: 5_000,
  ...overrides,
});
const issued = async () => ((await (await fetch(`${fcm.url}/__access-tokens`)).json()) as { issued: number }).issued;

describe("Resend client", () => {
  it("sends once per Idempotency-Key: a repeat gets the first id, a changed body counts as already sent", async () => {
    const first = mail();
    const sent = await sendEmail(settings(), first);
    expect(sent).toMatchObject({ kind: "sent", id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(await sendEmail(settings(), first)).toEqual(sent);
    expect(await sendEmail(settings(), { ...first, subject: "Hello again" })).toEqual({ kind: "already_sent" });
    const delivered = (await (await fetch(`${resend.url}/__sent?to=reader@example.test`)).json()) as unknown[];
    expect(delivered).toHaveLength(1);
  });

  it("classifies refusals: outages and bad keys are retried, broken mail is not", async () => {
    await fetch(`${resend.url}/__faults`, {
      method: "POST",
      body: JSON.stringify({ status: 503, count: 1, retryAfterSeconds: 3, to: "down@example.test" }),
    });
    expect(await sendEmail(settings(), mail({ to: "down@example.test" }))).toEqual({
      kind: "retry",
      error: { status: 503, name: "service_unavailable", message: "API is temporarily unavailable" },
      retryAfterSeconds: 3,
    });
    expect(await sendEmail(settings({ apiKey: "re_revoked" }), mail())).toMatchObject({
      kind: "retry",
      error: { status: 403, name: "invalid_api_key" },
    });
    expect(await sendEmail(settings(), mail({ from: "nobody" }))).toMatchObject({
      kind: "rejected",
      error: { status: 422, name: "validation_error" },
    });
    const closed = `http://127.0.0.1:${await freePort()}`;
    expect(await sendEmail(settings({ baseUrl: closed }), mail())).toMatchObject({
      kind: "retry",
      error: { status: 0, name: "network_error" },
    });
  });
});

describe("FCM client", () => {
  const note = (token: string): FcmMessage => ({ token, notification: { title: "hi" } });

  it("signs one assertion and reuses its access token until FCM says it expired", async () => {
    const before = await issued();
    for (let i = 0; i < 3; i++)
      expect(await sendPush(push, note(fakeRegistrationToken()))).toMatchObject({ kind: "sent" });
    expect(await issued()).toBe(before + 1);
    // Every token expires early (a rotated key, a clock jump): the next send gets a fresh one and goes through.
    await fetch(`${fcm.url}/__access-tokens`, { method: "DELETE" });
    expect(await sendPush(push, note(fakeRegistrationToken()))).toMatchObject({ kind: "sent" });
    expect(await issued()).toBe(before + 2);
  });

  it("reports uninstalled and malformed tokens as dead, and nothing else", async () => {
    const gone = fakeRegistrationToken();
    await fetch(`${fcm.url}/__tokens/${gone}/unregister`, { method: "POST" });
    expect(await sendPush(push, note(gone))).toMatchObject({
      kind: "bad_token",
      error: { status: 404, name: "UNREGISTERED" },
    });
    expect(await sendPush(push, note("abc123"))).toMatchObject({
      kind: "bad_token",
      error: { status: 400, name: "INVALID_ARGUMENT" },
    });
    // Our own payload at fault: the token is fine.
    const broken = { ...note(fakeRegistrationToken()), data: { count: 3 } } as unknown as FcmMessage;
    expect(await sendPush(push, broken)).toMatchObject({ kind: "rejected", error: { status: 400 } });
    // Even when FCM files it under INVALID_ARGUMENT, a named field of ours is not the token's fault.
    const reserved = { ...note(fakeRegistrationToken()), data: { from: "circle" } };
    expect(await sendPush(push, reserved)).toMatchObject({
      kind: "rejected",
      error: { status: 400, name: "INVALID_ARGUMENT" },
    });
  });

  it("asks for a retry when FCM is unavailable, with its Retry-After", async () => {
    const token = fakeRegistrationToken();
    await fetch(`${fcm.url}/__faults`, {
      method: "POST",
      body: JSON.stringify({ status: 503, count: 1, retryAfterSeconds: 9, token }),
    });
    expect(await sendPush(push, note(token))).toMatchObject({
      kind: "retry",
      error: { status: 503, name: "UNAVAILABLE" },
      retryAfterSeconds: 9,
    });
    expect(await sendPush(push, note(token))).toMatchObject({ kind: "sent" });
  });
});
