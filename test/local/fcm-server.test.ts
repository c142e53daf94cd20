import { generateKeyPair, importPKCS8, type JWTPayload, SignJWT } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type DeviceView,
  fakeRegistrationToken,
  type RunningFcmServer,
  type SentPush,
  type ServiceAccountJson,
  startFcmServer,
} from "../../scripts/local/fcm-server";
import { freePort } from "../../scripts/local/ports";

const MESSAGING = "https://www.googleapis.com/auth/firebase.messaging";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const PROJECT = "circle-test";

let fcm: RunningFcmServer;
let account: ServiceAccountJson;
let accessToken: string;

beforeAll(async () => {
  fcm = await startFcmServer({ port: await freePort(), projectId: PROJECT });
  account = fcm.serviceAccount;
  accessToken = await exchange(await assertion());
});

afterAll(async () => {
  await fcm?.stop();
});

beforeEach(async () => {
  await fetch(`${fcm.url}/__reset`, { method: "POST" });
});

type Claims = JWTPayload & { scope?: string };

/** A service-account assertion as Google's client libraries build it; `claims`/`key`/`kid` bend it. */
async function assertion(
  claims: Partial<Claims> = {},
  options: { key?: CryptoKey; kid?: string; sa?: ServiceAccountJson } = {},
): Promise<string> {
  const sa = options.sa ?? account;
  const now = Math.floor(Date.now() / 1000);
  const key = options.key ?? (await importPKCS8(sa.private_key, "RS256"));
  return new SignJWT({
    iss: sa.client_email,
    aud: sa.token_uri,
    scope: MESSAGING,
    iat: now,
    exp: now + 3600,
    ...claims,
  })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: options.kid ?? sa.private_key_id })
    .sign(key);
}

async function tokenRequest(form: Record<string, string>, tokenUri = account.token_uri): Promise<Response> {
  return fetch(tokenUri, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
}

async function exchange(signed: string, tokenUri = account.token_uri): Promise<string> {
  const res = await tokenRequest({ grant_type: JWT_BEARER, assertion: signed }, tokenUri);
  const body = (await res.json()) as { access_token: string };
  if (res.status !== 200) throw new Error(`token exchange failed: ${JSON.stringify(body)}`);
  return body.access_token;
}

async function push(
  message: unknown,
  options: { token?: string | null; project?: string; url?: string; validateOnly?: boolean } = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  const bearer = options.token === undefined ? accessToken : options.token;
  if (bearer !== null) headers.Authorization = `Bearer ${bearer}`;
  const res = await fetch(`${options.url ?? fcm.url}/v1/projects/${options.project ?? PROJECT}/messages:send`, {
    method: "POST",
    headers,
    body: JSON.stringify(options.validateOnly ? { message, validate_only: true } : { message }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

async function device(token: string): Promise<DeviceView> {
  return (await (await fetch(`${fcm.url}/__devices/${encodeURIComponent(token)}`)).json()) as DeviceView;
}

async function sentPushes(query = ""): Promise<SentPush[]> {
  return (await (await fetch(`${fcm.url}/__sent${query}`)).json()) as SentPush[];
}

describe("service account", () => {
  it("is a key file whose token_uri points at this server, also served at /__service-account.json", async () => {
    expect(account).toMatchObject({
      type: "service_account",
      project_id: PROJECT,
      client_email: `firebase-adminsdk-local@${PROJECT}.iam.gserviceaccount.com`,
      token_uri: `${fcm.url}/token`,
    });
    expect(account.private_key_id).toMatch(/^[0-9a-f]{40}$/);
    expect(account.private_key).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    expect(await (await fetch(`${fcm.url}/__service-account.json`)).json()).toEqual(account);
  });

  it("gets a fresh key each start", async () => {
    const other = await startFcmServer({ port: await freePort(), projectId: PROJECT });
    try {
      expect(other.serviceAccount.private_key).not.toBe(account.private_key);
      // This server's key is no use against the other one.
      const res = await tokenRequest(
        { grant_type: JWT_BEARER, assertion: await assertion({ aud: other.serviceAccount.token_uri }) },
        other.serviceAccount.token_uri,
      );
      expect(await res.json()).toEqual({ error: "invalid_grant", error_description: "Invalid JWT Signature." });
    } finally {
      await other.stop();
    }
  });
});

describe("POST /token (JWT bearer grant)", () => {
  it("exchanges a valid assertion for a Bearer token valid 3599 s", async () => {
    const res = await tokenRequest({ grant_type: JWT_BEARER, assertion: await assertion() });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toContain("no-store");
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["access_token", "expires_in", "token_type"]);
    expect(body).toMatchObject({ expires_in: 3599, token_type: "Bearer" });
    expect(body.access_token).toMatch(/^ya29\./);
  });

  const refusals: [string, () => Promise<Record<string, string>>, Record<string, string>][] = [
    [
      "signed with another key",
      async () => ({
        grant_type: JWT_BEARER,
        assertion: await assertion({}, { key: (await generateKeyPair("RS256")).privateKey }),
      }),
      { error: "invalid_grant", error_description: "Invalid JWT Signature." },
    ],
    [
      "naming a key id the account does not have",
      async () => ({ grant_type: JWT_BEARER, assertion: await assertion({}, { kid: "0".repeat(40) }) }),
      { error: "invalid_grant", error_description: "Invalid JWT Signature." },
    ],
    [
      "for Google's audience instead of this token_uri",
      async () => ({
        grant_type: JWT_BEARER,
        assertion: await assertion({ aud: "https://oauth2.googleapis.com/token" }),
      }),
      { error: "invalid_grant", error_description: "Invalid JWT: Failed audience check." },
    ],
    [
      "expired",
      async () => {
        const now = Math.floor(Date.now() / 1000);
        return { grant_type: JWT_BEARER, assertion: await assertion({ iat: now - 7200, exp: now - 3600 }) };
      },
      {
        error: "invalid_grant",
        error_description:
          "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values and use a clock with skew to account for clock differences between systems.",
      },
    ],
    [
      "longer than an hour",
      async () => {
        const now = Math.floor(Date.now() / 1000);
        return { grant_type: JWT_BEARER, assertion: await assertion({ iat: now, exp: now + 3601 }) };
      },
      {
        error: "invalid_grant",
        error_description:
          "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values and use a clock with skew to account for clock differences between systems.",
      },
    ],
    [
      "from an unknown account",
      async () => ({
        grant_type: JWT_BEARER,
        assertion: await assertion({ iss: "someone@else.iam.gserviceaccount.com" }),
      }),
      { error: "invalid_grant", error_description: "Invalid grant: account not found" },
    ],
    [
      "without a scope",
      async () => ({ grant_type: JWT_BEARER, assertion: await assertion({ scope: "" }) }),
      { error: "invalid_scope", error_description: "Invalid OAuth scope or ID token audience provided." },
    ],
    [
      "with another grant type",
      async () => ({ grant_type: "client_credentials", assertion: await assertion() }),
      { error: "unsupported_grant_type", error_description: "Invalid grant_type: client_credentials" },
    ],
  ];
  for (const [what, form, expected] of refusals) {
    it(`refuses an assertion ${what}`, async () => {
      const res = await tokenRequest(await form());
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual(expected);
    });
  }

  it("refuses an HS256 assertion even when it is otherwise right", async () => {
    const now = Math.floor(Date.now() / 1000);
    const hs = await new SignJWT({
      iss: account.client_email,
      aud: account.token_uri,
      scope: MESSAGING,
      iat: now,
      exp: now + 60,
    })
      .setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode(account.private_key));
    const res = await tokenRequest({ grant_type: JWT_BEARER, assertion: hs });
    expect(await res.json()).toEqual({ error: "invalid_grant", error_description: "Invalid JWT Signature." });
  });
});

describe("POST /v1/projects/{projectId}/messages:send", () => {
  it("accepts a message to a token and answers its name", async () => {
    const token = fakeRegistrationToken();
    const res = await push({
      token,
      notification: { title: "New like", body: "Ada liked your image" },
      data: { postId: "p1" },
    });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(["name"]);
    expect(res.body.name).toMatch(new RegExp(`^projects/${PROJECT}/messages/0:\\d+%[0-9a-f]{16}$`));
    const [sent, ...rest] = await sentPushes();
    expect(rest).toEqual([]);
    expect(sent).toMatchObject({
      name: res.body.name,
      projectId: PROJECT,
      target: { kind: "token", value: token },
      message: { token, notification: { title: "New like", body: "Ada liked your image" }, data: { postId: "p1" } },
    });
  });

  it("accepts lowerCamelCase and snake_case names alike and records them snake_case", async () => {
    const token = fakeRegistrationToken();
    const res = await push({
      token,
      android: {
        collapseKey: "likes",
        priority: "HIGH",
        ttl: "3600s",
        notification: { notificationCount: "3", tag: "likes" },
      },
      apns: { headers: { "apns-priority": "10" }, payload: { aps: { badge: 3 } } },
      fcmOptions: { analyticsLabel: "likes" },
    });
    expect(res.status).toBe(200);
    const [sent] = await sentPushes();
    expect(sent?.message).toEqual({
      token,
      android: {
        collapse_key: "likes",
        priority: "HIGH",
        ttl: "3600s",
        notification: { notification_count: 3, tag: "likes" },
      },
      apns: { headers: { "apns-priority": "10" }, payload: { aps: { badge: 3 } } },
      fcm_options: { analytics_label: "likes" },
    });
  });

  it("validate_only checks the message without delivering it", async () => {
    const token = fakeRegistrationToken();
    const res = await push({ token, notification: { title: "Dry run" } }, { validateOnly: true });
    expect(res).toMatchObject({ status: 200, body: { name: `projects/${PROJECT}/messages/fake_message_id` } });
    expect(await sentPushes()).toEqual([]);
    expect((await device(token)).delivered).toBe(0);
    expect((await push({ notification: { title: "Dry run" } }, { validateOnly: true })).status).toBe(400);
  });

  it("records topic and condition messages, which reach no single device", async () => {
    expect((await push({ topic: "weekly-digest", notification: { title: "Digest" } })).status).toBe(200);
    expect((await push({ condition: "'news' in topics && 'sport' in topics", data: { kind: "x" } })).status).toBe(200);
    const sent = await sentPushes();
    expect(sent.map((s) => s.target)).toEqual([
      { kind: "topic", value: "weekly-digest" },
      { kind: "condition", value: "'news' in topics && 'sport' in topics" },
    ]);
  });

  it("filters /__sent by token", async () => {
    const [a, b] = [fakeRegistrationToken(), fakeRegistrationToken()];
    await push({ token: a, data: { n: "1" } });
    await push({ token: b, data: { n: "2" } });
    await push({ token: a, data: { n: "3" } });
    expect((await sentPushes(`?token=${encodeURIComponent(a)}`)).map((s) => s.message.data)).toEqual([
      { n: "1" },
      { n: "3" },
    ]);
  });
});

describe("send authentication", () => {
  const authHint =
    "Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
  const errorInfo = (reason: string) => [
    {
      "@type": "type.googleapis.com/google.rpc.ErrorInfo",
      reason,
      domain: "googleapis.com",
      metadata: { service: "fcm.googleapis.com", method: "google.firebase.fcm.v1.FcmService.SendMessage" },
    },
  ];
  const message = () => ({ token: fakeRegistrationToken(), notification: { title: "hi" } });

  it("answers 401 UNAUTHENTICATED without a token, with a token it never issued, and after expiry", async () => {
    const missing = await push(message(), { token: null });
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="https://accounts.google.com/"');
    expect(missing.body).toEqual({
      error: {
        code: 401,
        message: `Request is missing required authentication credential. ${authHint}`,
        status: "UNAUTHENTICATED",
        details: errorInfo("CREDENTIALS_MISSING"),
      },
    });

    const forged = await push(message(), { token: "ya29.not-issued-here" });
    expect(forged.status).toBe(401);
    expect(forged.body).toMatchObject({
      error: {
        code: 401,
        status: "UNAUTHENTICATED",
        message: `Request had invalid authentication credentials. ${authHint}`,
      },
    });

    const own = await exchange(await assertion());
    expect((await push(message(), { token: own })).status).toBe(200);
    const expired = await (await fetch(`${fcm.url}/__access-tokens`, { method: "DELETE" })).json();
    expect(expired).toMatchObject({ expired: expect.any(Number) });
    const after = await push(message(), { token: own });
    expect(after.status).toBe(401);
    expect(after.body).toEqual({
      error: {
        code: 401,
        message: `Request had invalid authentication credentials. ${authHint}`,
        status: "UNAUTHENTICATED",
        details: errorInfo("ACCESS_TOKEN_EXPIRED"),
      },
    });
    accessToken = await exchange(await assertion());
    expect((await sentPushes()).length).toBe(1);
  });

  it("expires access tokens 3599 s after issue", async () => {
    let clock = Date.now();
    const timed = await startFcmServer({ port: await freePort(), projectId: PROJECT, now: () => clock });
    try {
      const token = await exchange(await assertion({}, { sa: timed.serviceAccount }), timed.serviceAccount.token_uri);
      clock += 3598_000;
      expect((await push(message(), { token, url: timed.url })).status).toBe(200);
      clock += 2_000;
      const late = await push(message(), { token, url: timed.url });
      expect(late.status).toBe(401);
      expect((late.body.error as { details: unknown }).details).toEqual(errorInfo("ACCESS_TOKEN_EXPIRED"));
    } finally {
      await timed.stop();
    }
  });

  it("refuses a token without a messaging scope (403) and a project the account is not in (403)", async () => {
    const datastore = await exchange(await assertion({ scope: "https://www.googleapis.com/auth/datastore" }));
    const noScope = await push(message(), { token: datastore });
    expect(noScope.status).toBe(403);
    expect(noScope.body).toMatchObject({
      error: { code: 403, status: "PERMISSION_DENIED", message: "Request had insufficient authentication scopes." },
    });
    const cloud = await exchange(await assertion({ scope: "https://www.googleapis.com/auth/cloud-platform" }));
    expect((await push(message(), { token: cloud })).status).toBe(200);

    const elsewhere = await push(message(), { project: "someone-elses-project" });
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.body).toMatchObject({ error: { code: 403, status: "PERMISSION_DENIED" } });
    expect(await sentPushes()).toHaveLength(1);
  });
});

describe("message validation", () => {
  it("answers a non-string data value exactly as FCM's documented example", async () => {
    const res = await push({ token: fakeRegistrationToken(), data: { score: 12 } });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: {
        code: 400,
        message: "Invalid value at 'message.data[0].value' (TYPE_STRING), 12",
        status: "INVALID_ARGUMENT",
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            fieldViolations: [
              {
                field: "message.data[0].value",
                description: "Invalid value at 'message.data[0].value' (TYPE_STRING), 12",
              },
            ],
          },
        ],
      },
    });
  });

  it("answers a malformed registration token exactly as FCM's documented example", async () => {
    for (const token of ["abc123", `${fakeRegistrationToken()} `, `"${fakeRegistrationToken()}"`]) {
      const res = await push({ token, notification: { title: "hi" } });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        error: {
          code: 400,
          message: "The registration token is not a valid FCM registration token",
          status: "INVALID_ARGUMENT",
          details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: "INVALID_ARGUMENT" }],
        },
      });
    }
  });

  it("requires exactly one target", async () => {
    const none = await push({ notification: { title: "to nobody" } });
    expect(none.status).toBe(400);
    expect((none.body.error as { message: string }).message).toBe("Recipient of the message is not set.");
    const two = await push({ token: fakeRegistrationToken(), topic: "news" });
    expect(two.status).toBe(400);
    expect((two.body.error as { message: string }).message).toBe(
      "Invalid JSON payload received. Oneof field 'target' is already set. Cannot set 'topic'",
    );
  });

  const invalid: [string, Record<string, unknown>, string][] = [
    [
      "an unknown field",
      { notification: { title: "x", subtitle: "y" } },
      `Invalid JSON payload received. Unknown name "subtitle" at 'message.notification': Cannot find field.`,
    ],
    [
      "a number for a string",
      { notification: { title: 5 } },
      "Invalid value at 'message.notification.title' (TYPE_STRING), 5",
    ],
    [
      "an unknown enum value",
      { android: { priority: "URGENT" } },
      `Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), "URGENT"`,
    ],
    [
      "a duration without 's'",
      { android: { ttl: "1h" } },
      `Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), "1h"`,
    ],
    [
      "a non-integer count",
      { android: { notification: { notification_count: 1.5 } } },
      "Invalid value at 'message.android.notification.notification_count' (TYPE_INT32), 1.5",
    ],
    [
      "a string for an object",
      { apns: "high" },
      `Invalid value at 'message.apns' (type.googleapis.com/google.firebase.fcm.v1.ApnsConfig), "high"`,
    ],
    [
      "a non-string header",
      { webpush: { headers: { TTL: 60 } } },
      "Invalid value at 'message.webpush.headers[0].value' (TYPE_STRING), 60",
    ],
  ];
  for (const [what, fields, message] of invalid) {
    it(`refuses ${what}`, async () => {
      const res = await push({ token: fakeRegistrationToken(), ...fields });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: { code: 400, status: "INVALID_ARGUMENT", message } });
    });
  }

  it("reports every violation at once", async () => {
    const res = await push({ token: fakeRegistrationToken(), data: { a: 1, b: "ok", c: true } });
    expect((res.body.error as { message: string }).message).toBe(
      "Invalid value at 'message.data[0].value' (TYPE_STRING), 1\nInvalid value at 'message.data[2].value' (TYPE_STRING), true",
    );
  });

  it("refuses reserved data keys, bad topics and conditions, and oversized data", async () => {
    const cases = [
      { token: fakeRegistrationToken(), data: { from: "me" } },
      { token: fakeRegistrationToken(), data: { "google.sent_time": "1" } },
      { topic: "/topics/news" },
      { condition: "news && sport" },
      {
        condition: "'a' in topics || 'b' in topics || 'c' in topics || 'd' in topics || 'e' in topics || 'f' in topics",
      },
      { token: fakeRegistrationToken(), data: { blob: "x".repeat(4096) } },
    ];
    for (const message of cases) {
      const res = await push(message);
      expect(res.status, JSON.stringify(message)).toBe(400);
      expect(res.body).toMatchObject({
        error: {
          status: "INVALID_ARGUMENT",
          details: expect.arrayContaining([
            { "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: "INVALID_ARGUMENT" },
          ]),
        },
      });
    }
    expect(await sentPushes()).toEqual([]);
  });
});

describe("unregistered tokens", () => {
  const unregisteredBody = {
    error: {
      code: 404,
      message: "Requested entity was not found.",
      status: "NOT_FOUND",
      details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: "UNREGISTERED" }],
    },
  };

  it("answers 404 UNREGISTERED once the app is uninstalled, and delivers again after reinstall", async () => {
    const token = fakeRegistrationToken();
    expect((await push({ token, notification: { title: "before" } })).status).toBe(200);
    const marked = await fetch(`${fcm.url}/__tokens/${encodeURIComponent(token)}/unregister`, { method: "POST" });
    expect(await marked.json()).toEqual({ token, unregistered: true });
    const res = await push({ token, notification: { title: "after" } });
    expect(res.status).toBe(404);
    expect(res.body).toEqual(unregisteredBody);
    expect((await device(token)).unregistered).toBe(true);

    await fetch(`${fcm.url}/__tokens/${encodeURIComponent(token)}/register`, { method: "POST" });
    expect((await push({ token, notification: { title: "again" } })).status).toBe(200);
    expect((await sentPushes()).map((s) => (s.message.notification as { title: string }).title)).toEqual([
      "before",
      "again",
    ]);
  });

  it("takes tokens that are unregistered from the start as an option", async () => {
    const gone = fakeRegistrationToken();
    const other = await startFcmServer({ port: await freePort(), unregisteredTokens: [gone] });
    try {
      const token = await exchange(await assertion({}, { sa: other.serviceAccount }), other.serviceAccount.token_uri);
      const res = await push({ token: gone, data: { a: "b" } }, { token, url: other.url, project: other.projectId });
      expect(res).toMatchObject({ status: 404, body: unregisteredBody });
    } finally {
      await other.stop();
    }
  });
});

describe("the device tray", () => {
  const like = (token: string, n: number, extra: Record<string, unknown> = {}) => ({
    token,
    notification: { title: `${n} new likes`, body: `Your image has ${n} new likes` },
    data: { postId: "p1", likes: String(n) },
    android: { notification: { tag: "likes:p1", notification_count: n } },
    apns: { headers: { "apns-collapse-id": "likes:p1" }, payload: { aps: { badge: n } } },
    webpush: { notification: { tag: "likes:p1" } },
    ...extra,
  });

  it("a later notification with the same collapse identity replaces the shown one on every platform", async () => {
    const token = fakeRegistrationToken();
    const first = await push(like(token, 1));
    const second = await push(like(token, 2));
    const view = await device(token);
    expect(view.delivered).toBe(2);
    for (const platform of ["android", "ios", "web"] as const) {
      expect(view.tray[platform], platform).toHaveLength(1);
      expect(view.tray[platform][0]).toMatchObject({
        message: second.body.name,
        title: "2 new likes",
        body: "Your image has 2 new likes",
        data: { postId: "p1", likes: "2" },
        collapseId: "likes:p1",
        replaces: first.body.name,
      });
    }
    expect(view.tray.ios[0]?.badge).toBe(2);
    expect(view.tray.android[0]?.badge).toBe(2);
    expect(view.tray.web[0]?.badge).toBeNull();
    expect(view.appBadge).toBe(2);
  });

  it("different identities stack newest first; a message without one never replaces anything", async () => {
    const token = fakeRegistrationToken();
    await push(like(token, 1));
    await push({ token, notification: { title: "Ada followed you" } });
    await push({ token, notification: { title: "Grace followed you" } });
    await push({
      ...like(token, 1),
      android: { notification: { tag: "comments:p1" } },
      apns: { headers: { "apns-collapse-id": "comments:p1" } },
      webpush: { notification: { tag: "comments:p1" } },
      notification: { title: "New comment" },
    });
    const { tray } = await device(token);
    expect(tray.android.map((n) => n.title)).toEqual([
      "New comment",
      "Grace followed you",
      "Ada followed you",
      "1 new likes",
    ]);
    expect(tray.ios.map((n) => n.collapseId)).toEqual(["comments:p1", null, null, "likes:p1"]);
  });

  it("platform fields override the common notification, per platform", async () => {
    const token = fakeRegistrationToken();
    await push({
      token,
      notification: { title: "Common title", body: "Common body" },
      android: { notification: { title: "Android title" } },
      apns: { payload: { aps: { alert: { title: "iOS title", body: "iOS body" }, badge: 7 } } },
      webpush: { notification: { body: "Web body" } },
    });
    const { tray } = await device(token);
    expect([tray.android[0]?.title, tray.android[0]?.body]).toEqual(["Android title", "Common body"]);
    expect([tray.ios[0]?.title, tray.ios[0]?.body, tray.ios[0]?.badge]).toEqual(["iOS title", "iOS body", 7]);
    expect([tray.web[0]?.title, tray.web[0]?.body]).toEqual(["Common title", "Web body"]);
  });

  it("android.collapse_key alone does not replace a shown notification (it only collapses offline queues)", async () => {
    const token = fakeRegistrationToken();
    await push({ token, notification: { title: "one" }, android: { collapse_key: "digest" } });
    await push({ token, notification: { title: "two" }, android: { collapse_key: "digest" } });
    expect((await device(token)).tray.android.map((n) => n.title)).toEqual(["two", "one"]);
  });

  it("data-only and silent badge pushes show nothing but are delivered; the badge still updates", async () => {
    const token = fakeRegistrationToken();
    await push(like(token, 4));
    await push({ token, data: { sync: "feed" } });
    await push({ token, apns: { payload: { aps: { badge: 0, "content-available": 1 } } } });
    const view = await device(token);
    expect(view.delivered).toBe(3);
    expect(view.tray.ios).toHaveLength(1);
    expect(view.tray.ios[0]?.badge).toBe(4);
    expect(view.appBadge).toBe(0);

    expect((await fetch(`${fcm.url}/__devices/${encodeURIComponent(token)}`, { method: "DELETE" })).status).toBe(204);
    expect((await device(token)).tray).toEqual({ android: [], ios: [], web: [] });
  });
});

describe("fault injection", () => {
  const fault = (body: unknown) => fetch(`${fcm.url}/__faults`, { method: "POST", body: JSON.stringify(body) });

  it("fails the next N sends as FCM does when unavailable, then recovers", async () => {
    await fault({ status: 503, count: 2, retryAfterSeconds: 7 });
    const token = fakeRegistrationToken();
    for (let i = 0; i < 2; i++) {
      const res = await push({ token, notification: { title: "retry me" } });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("7");
      expect(res.body).toEqual({
        error: {
          code: 503,
          message: "The service is currently unavailable.",
          status: "UNAVAILABLE",
          details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: "UNAVAILABLE" }],
        },
      });
    }
    expect((await push({ token, notification: { title: "retry me" } })).status).toBe(200);
    expect((await device(token)).tray.android).toHaveLength(1);
  });

  it("429 is RESOURCE_EXHAUSTED / QUOTA_EXCEEDED with Retry-After, until cleared", async () => {
    await fault({ status: 429 });
    for (let i = 0; i < 3; i++) {
      const res = await push({ topic: "news", data: { a: "b" } });
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBe("1");
      expect(res.body).toMatchObject({
        error: { code: 429, status: "RESOURCE_EXHAUSTED", details: [{ errorCode: "QUOTA_EXCEEDED" }] },
      });
    }
    await fetch(`${fcm.url}/__faults`, { method: "DELETE" });
    expect((await push({ topic: "news", data: { a: "b" } })).status).toBe(200);
    expect(await sentPushes()).toHaveLength(1);
  });
});

describe("faults scoped to one device", () => {
  const fault = (body: unknown) => fetch(`${fcm.url}/__faults`, { method: "POST", body: JSON.stringify(body) });

  it("fail only messages to that token, until cleared for it", async () => {
    const [down, fine] = [fakeRegistrationToken(), fakeRegistrationToken()];
    expect((await fault({ status: 503, token: down, retryAfterSeconds: 2 })).status).toBe(200);
    const refused = await push({ token: down, notification: { title: "x" } });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("2");
    expect((await push({ token: fine, notification: { title: "x" } })).status).toBe(200);
    expect((await push({ token: down, notification: { title: "x" } })).status).toBe(503);
    expect((await (await fetch(`${fcm.url}/__faults?token=${down}`)).json()) as unknown).toMatchObject({
      fault: { status: 503, remaining: null },
    });
    expect((await fetch(`${fcm.url}/__faults?token=${down}`, { method: "DELETE" })).status).toBe(204);
    expect((await push({ token: down, notification: { title: "x" } })).status).toBe(200);
    expect((await fault({ status: 503, token: "" })).status).toBe(400);
  });

  it("count down per token", async () => {
    const token = fakeRegistrationToken();
    await fault({ status: 500, count: 1, token });
    expect((await push({ token, data: { a: "b" } })).status).toBe(500);
    expect((await push({ token, data: { a: "b" } })).status).toBe(200);
  });
});

describe("GET /__access-tokens", () => {
  it("counts the access tokens handed out", async () => {
    const before = ((await (await fetch(`${fcm.url}/__access-tokens`)).json()) as { issued: number }).issued;
    await exchange(await assertion());
    expect(await (await fetch(`${fcm.url}/__access-tokens`)).json()).toEqual({ issued: before + 1 });
  });
});

describe("the push page", () => {
  it("lists recent pushes newest first with everything escaped", async () => {
    const token = fakeRegistrationToken();
    await push({ token, notification: { title: "older" } });
    await push({ token, notification: { title: "<img src=x onerror=alert(1)>" }, data: { html: "<b>bold</b>" } });
    const res = await fetch(`${fcm.url}/`);
    expect(res.headers.get("content-security-policy")).toMatch(/default-src 'none'/);
    const page = await res.text();
    expect(page).not.toContain("<img");
    expect(page).toContain("&lt;img src=x onerror=alert(1)&gt;");
    expect(page.indexOf("onerror")).toBeLessThan(page.indexOf("older"));
  });
});
