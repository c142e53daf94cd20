import { generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { createRemoteJWKSet, errors, importPKCS8, jwtVerify, SignJWT } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  ANDROID_PUBLISHER_SCOPE,
  GOOGLE_ISSUER,
  type RunningPlayServer,
  startPlayServer,
} from "../../scripts/local/play-server";
import { freePort } from "../../scripts/local/ports";
import { type Receiver, startReceiver } from "./receiver";

const PACKAGE = "app.circle.test";
const AUDIENCE = "https://api.circle.test/v1/billing/google/rtdn";
const PUSH_ACCOUNT = "rtdn-push@circle-test.iam.gserviceaccount.com";

let play: RunningPlayServer;
let receiver: Receiver;

beforeAll(async () => {
  play = await startPlayServer({
    port: await freePort(),
    packageName: PACKAGE,
    pushAudience: AUDIENCE,
    pushServiceAccountEmail: PUSH_ACCOUNT,
  });
  receiver = await startReceiver();
});

afterAll(async () => {
  await play?.stop();
  await receiver?.stop();
});

beforeEach(() => {
  receiver.deliveries.length = 0;
  receiver.answer(200, { ok: true });
});

const purchaseToken = () => `${randomBytes(12).toString("hex")}.AO-J1Oz${randomBytes(24).toString("base64url")}`;

async function put(path: string, body: unknown): Promise<Response> {
  return fetch(`${play.url}${path}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function post(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${play.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** The push check the Worker is to make: Google's JWKS, issuer, audience, the push service account. */
async function verifyPush(authorization: string | undefined) {
  const token = /^Bearer (.+)$/.exec(authorization ?? "")?.[1];
  if (!token) throw new Error("no bearer token");
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(play.jwksUrl)), {
    issuer: GOOGLE_ISSUER,
    audience: AUDIENCE,
    algorithms: ["RS256"],
  });
  if (payload.email !== PUSH_ACCOUNT || payload.email_verified !== true) throw new Error("wrong push account");
  return payload;
}

/** A service-account JWT-bearer assertion built from the key file, as Google's auth libraries build it. */
async function assertion(claims: Record<string, unknown> = {}, key?: KeyObject) {
  const account = play.serviceAccount;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: account.client_email,
    scope: ANDROID_PUBLISHER_SCOPE,
    aud: account.token_uri,
    iat: now,
    exp: now + 3600,
    ...claims,
  })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: account.private_key_id })
    .sign(key ?? (await importPKCS8(account.private_key, "RS256")));
}

async function exchange(form: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(play.serviceAccount.token_uri, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function accessToken(claims: Record<string, unknown> = {}): Promise<string> {
  const { status, json } = await exchange({
    grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
    assertion: await assertion(claims),
  });
  expect(status).toBe(200);
  return String(json.access_token);
}

function subscriptionUrl(token: string, pkg = PACKAGE): string {
  return `${play.androidPublisherUrl}/applications/${pkg}/purchases/subscriptionsv2/tokens/${encodeURIComponent(token)}`;
}

describe("Google Play stand-in: RTDN push", () => {
  it("serves Google's JWKS shape with public RSA keys only", async () => {
    const res = await fetch(play.jwksUrl);
    expect(res.headers.get("cache-control")).toMatch(/max-age=\d+/);
    const { keys } = (await res.json()) as { keys: Record<string, string>[] };
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: "RSA", alg: "RS256", use: "sig", e: "AQAB" });
    expect(keys[0]?.kid).toMatch(/^[0-9a-f]{40}$/);
    expect(keys[0]).not.toHaveProperty("d");
  });

  it("pushes a DeveloperNotification with an OIDC token the Worker can verify", async () => {
    receiver.answer(204, null);
    const token = purchaseToken();
    const { status, json } = await post("/__notify", {
      target: receiver.url,
      purchaseToken: token,
      notificationType: "SUBSCRIPTION_PURCHASED",
      subscriptionId: "circle.pro",
      attributes: { origin: "test" },
    });
    expect(status).toBe(200);
    expect(json.status).toBe(204);

    const delivery = receiver.deliveries[0];
    expect(delivery?.headers["content-type"]).toBe("application/json");
    const claims = await verifyPush(delivery?.headers.authorization);
    expect(claims.sub).toBe(claims.azp);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(3600);

    const push = JSON.parse(delivery?.body ?? "{}") as {
      message: Record<string, unknown>;
      subscription: string;
    };
    expect(push.subscription).toMatch(/^projects\/[^/]+\/subscriptions\/[^/]+$/);
    expect(push.message.messageId).toBe(json.messageId);
    expect(push.message.message_id).toBe(push.message.messageId);
    expect(push.message.publish_time).toBe(push.message.publishTime);
    expect(Number.isNaN(Date.parse(String(push.message.publishTime)))).toBe(false);
    expect(push.message.attributes).toEqual({ origin: "test" });

    const notification = JSON.parse(Buffer.from(String(push.message.data), "base64").toString("utf8"));
    expect(notification).toEqual({
      version: "1.0",
      packageName: PACKAGE,
      eventTimeMillis: expect.stringMatching(/^\d{13}$/),
      subscriptionNotification: {
        version: "1.0",
        notificationType: 4,
        purchaseToken: token,
        subscriptionId: "circle.pro",
      },
    });
  });

  it("accepts numeric codes and sends test notifications", async () => {
    await post("/__notify", { target: receiver.url, purchaseToken: "t", notificationType: 13 });
    await post("/__notify", { target: receiver.url, purchaseToken: "t", notificationType: "TEST" });
    const [expired, test] = receiver.deliveries.map((d) => {
      const { message } = JSON.parse(d.body) as { message: { data: string } };
      return JSON.parse(Buffer.from(message.data, "base64").toString("utf8")) as Record<string, unknown>;
    });
    expect(expired?.subscriptionNotification).toEqual({ version: "1.0", notificationType: 13, purchaseToken: "t" });
    expect(test?.testNotification).toEqual({ version: "1.0" });
    expect(test).not.toHaveProperty("subscriptionNotification");
  });

  it.each([
    ["wrong-key", errors.JWSSignatureVerificationFailed],
    ["wrong-audience", errors.JWTClaimValidationFailed],
    ["expired", errors.JWTExpired],
  ] as const)("forge %s fails the push check", async (forge, failure) => {
    const { status } = await post("/__notify", {
      target: receiver.url,
      purchaseToken: purchaseToken(),
      notificationType: 2,
      forge,
    });
    expect(status).toBe(200);
    await expect(verifyPush(receiver.deliveries[0]?.headers.authorization)).rejects.toBeInstanceOf(failure);
  });

  it("rejects unknown notification types and reports an unreachable target", async () => {
    expect((await post("/__notify", { target: receiver.url, purchaseToken: "t", notificationType: 99 })).status).toBe(
      400,
    );
    expect(
      (await post("/__notify", { target: receiver.url, purchaseToken: "t", notificationType: "NOPE" })).status,
    ).toBe(400);
    expect(receiver.deliveries).toHaveLength(0);
    const closed = await post("/__notify", {
      target: `http://127.0.0.1:${await freePort()}/`,
      purchaseToken: "t",
      notificationType: 2,
    });
    expect(closed.json.status).toBe(0);
  });
});

describe("Google Play stand-in: service-account OAuth and the Play Developer API", () => {
  it("exposes a service-account key file whose token_uri is the stand-in", () => {
    expect(play.serviceAccount).toMatchObject({
      type: "service_account",
      token_uri: `${play.url}/token`,
      client_email: expect.stringMatching(/@.+\.iam\.gserviceaccount\.com$/),
    });
    expect(play.serviceAccount.private_key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it("exchanges a JWT-bearer assertion for a token and answers SubscriptionPurchaseV2", async () => {
    const token = purchaseToken();
    const expiryTime = "2031-05-01T10:00:00.000Z";
    const stored = await put(`/__purchases/${encodeURIComponent(token)}`, {
      productId: "circle.pro",
      subscriptionState: "ACTIVE",
      expiryTime,
      obfuscatedExternalAccountId: "user-42",
    });
    expect(stored.status).toBe(200);

    const { status, json } = await exchange({
      grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
      assertion: await assertion(),
    });
    expect(status).toBe(200);
    expect(json).toEqual({ access_token: expect.stringMatching(/^ya29\./), expires_in: 3599, token_type: "Bearer" });

    const res = await fetch(subscriptionUrl(token), { headers: { Authorization: `Bearer ${json.access_token}` } });
    expect(res.status).toBe(200);
    const purchase = (await res.json()) as Record<string, unknown>;
    expect(purchase).toMatchObject({
      kind: "androidpublisher#subscriptionPurchaseV2",
      regionCode: "US",
      subscriptionState: "SUBSCRIPTION_STATE_ACTIVE",
      latestOrderId: expect.stringMatching(/^GPA\.\d{4}-\d{4}-\d{4}-\d{5}$/),
      acknowledgementState: "ACKNOWLEDGEMENT_STATE_PENDING",
      externalAccountIdentifiers: { obfuscatedExternalAccountId: "user-42" },
      lineItems: [{ productId: "circle.pro", expiryTime, autoRenewingPlan: { autoRenewEnabled: true } }],
    });
    expect(Number.isNaN(Date.parse(String(purchase.startTime)))).toBe(false);
    expect(purchase).not.toHaveProperty("testPurchase");
    expect(purchase).not.toHaveProperty("canceledStateContext");
  });

  it("follows state changes set through the control endpoint", async () => {
    const token = purchaseToken();
    const bearer = { Authorization: `Bearer ${await accessToken()}` };
    await put(`/__purchases/${token}`, { productId: "circle.pro", subscriptionState: "ACTIVE", testPurchase: true });
    await put(`/__purchases/${token}`, { subscriptionState: "SUBSCRIPTION_STATE_CANCELED" });
    let purchase = (await (await fetch(subscriptionUrl(token), { headers: bearer })).json()) as Record<string, unknown>;
    expect(purchase).toMatchObject({
      subscriptionState: "SUBSCRIPTION_STATE_CANCELED",
      testPurchase: {},
      canceledStateContext: { userInitiatedCancellation: { cancelTime: expect.any(String) } },
      lineItems: [{ productId: "circle.pro", autoRenewingPlan: { autoRenewEnabled: false } }],
    });

    await put(`/__purchases/${token}`, { subscriptionState: "IN_GRACE_PERIOD", autoRenewEnabled: true });
    purchase = (await (await fetch(subscriptionUrl(token), { headers: bearer })).json()) as Record<string, unknown>;
    expect(purchase.subscriptionState).toBe("SUBSCRIPTION_STATE_IN_GRACE_PERIOD");
    expect(purchase).not.toHaveProperty("canceledStateContext");

    expect((await put(`/__purchases/${purchaseToken()}`, { subscriptionState: "ACTIVE" })).status).toBe(400); // no product
    expect((await put(`/__purchases/${token}`, { subscriptionState: "SLEEPING" })).status).toBe(400);
  });

  it("acknowledges a purchase through the v1 endpoint", async () => {
    const token = purchaseToken();
    play.setPurchase(token, { productId: "circle.pro" });
    const bearer = { Authorization: `Bearer ${await accessToken()}` };
    const ack = await fetch(
      `${play.androidPublisherUrl}/applications/${PACKAGE}/purchases/subscriptions/circle.pro/tokens/${token}:acknowledge`,
      { method: "POST", headers: { ...bearer, "content-type": "application/json" }, body: "{}" },
    );
    expect(ack.status).toBe(200);
    expect(await ack.text()).toBe("");
    const purchase = (await (await fetch(subscriptionUrl(token), { headers: bearer })).json()) as Record<
      string,
      unknown
    >;
    expect(purchase.acknowledgementState).toBe("ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED");
  });

  it("answers Google's errors: 401 bad token, 403 missing scope, 404 unknown purchase", async () => {
    const token = purchaseToken();
    play.setPurchase(token, { productId: "circle.pro" });

    const anonymous = await fetch(subscriptionUrl(token), { headers: { Authorization: "Bearer ya29.not-issued" } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toMatch(/error="invalid_token"/);
    expect(await anonymous.json()).toMatchObject({
      error: { code: 401, status: "UNAUTHENTICATED", errors: [{ reason: "authError", location: "Authorization" }] },
    });
    expect((await fetch(subscriptionUrl(token))).status).toBe(401);

    const wrongScope = await accessToken({ scope: "https://www.googleapis.com/auth/cloud-platform" });
    const forbidden = await fetch(subscriptionUrl(token), { headers: { Authorization: `Bearer ${wrongScope}` } });
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ error: { code: 403, status: "PERMISSION_DENIED" } });

    const bearer = { Authorization: `Bearer ${await accessToken()}` };
    const missing = await fetch(subscriptionUrl(purchaseToken()), { headers: bearer });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error: {
        code: 404,
        message: "The purchase token was not found.",
        errors: [
          {
            message: "The purchase token was not found.",
            domain: "global",
            reason: "purchaseTokenNotFound",
            location: "token",
            locationType: "parameter",
          },
        ],
        status: "NOT_FOUND",
      },
    });
    // Purchases belong to their package.
    expect((await fetch(subscriptionUrl(token, "app.other"), { headers: bearer })).status).toBe(404);
  });

  it("refuses bad assertions the way Google's token endpoint does", async () => {
    const grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    const wrongGrant = await exchange({ grant_type: "client_credentials", assertion: await assertion() });
    expect(wrongGrant).toMatchObject({ status: 400, json: { error: "unsupported_grant_type" } });

    const otherKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const forged = await exchange({ grant_type: grant, assertion: await assertion({}, otherKey) });
    expect(forged).toMatchObject({
      status: 400,
      json: { error: "invalid_grant", error_description: "Invalid JWT Signature." },
    });

    const now = Math.floor(Date.now() / 1000);
    const longLived = await exchange({ grant_type: grant, assertion: await assertion({ iat: now, exp: now + 7200 }) });
    expect(longLived.status).toBe(400);
    expect(String(longLived.json.error_description)).toMatch(/short-lived token/);

    const stale = await exchange({
      grant_type: grant,
      assertion: await assertion({ iat: now - 7200, exp: now - 3600 }),
    });
    expect(stale).toMatchObject({ status: 400, json: { error: "invalid_grant" } });

    const wrongAudience = await exchange({
      grant_type: grant,
      assertion: await assertion({ aud: "https://example.com/token" }),
    });
    expect(String(wrongAudience.json.error_description)).toMatch(/audience/);

    const stranger = await exchange({
      grant_type: grant,
      assertion: await assertion({ iss: "someone@else.iam.gserviceaccount.com" }),
    });
    expect(stranger).toMatchObject({ status: 400, json: { error: "invalid_grant" } });

    // Google's own token URL is an accepted audience too, so a Worker may use either.
    const canonical = await exchange({
      grant_type: grant,
      assertion: await assertion({ aud: "https://oauth2.googleapis.com/token" }),
    });
    expect(canonical.status).toBe(200);
  });
});

describe("Google Play stand-in: pushes handed back, keys chosen up front", () => {
  it("answers a push's headers and body without delivering it, verifiable like a delivered one", async () => {
    const token = purchaseToken();
    const { status, json } = await post("/__push", { purchaseToken: token, notificationType: "SUBSCRIPTION_RENEWED" });
    expect(status).toBe(200);
    expect(receiver.deliveries).toHaveLength(0);
    const headers = json.headers as Record<string, string>;
    await expect(verifyPush(headers.Authorization)).resolves.toMatchObject({ aud: AUDIENCE });
    const body = JSON.parse(String(json.body)) as { message: { data: string; messageId: string } };
    expect(body.message.messageId).toBe(json.messageId);
    const notification = JSON.parse(Buffer.from(body.message.data, "base64").toString("utf8"));
    expect(notification.subscriptionNotification).toEqual({
      version: "1.0",
      notificationType: 2,
      purchaseToken: token,
    });
    const forged = await post("/__push", { purchaseToken: token, notificationType: 2, forge: "wrong-audience" });
    await expect(verifyPush((forged.json.headers as Record<string, string>).Authorization)).rejects.toThrow();
  });

  it("signs the Developer API caller's key file with a key given up front, and defaults the audience to the endpoint", async () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const planned = await startPlayServer({
      port: await freePort(),
      serviceAccount: {
        privateKeyPem: pem,
        keyId: "planned-key",
        clientEmail: "planned@circle-test.iam.gserviceaccount.com",
      },
    });
    try {
      expect(planned.pushAudience).toMatch(/\/v1\/billing\/google$/);
      expect(planned.serviceAccount).toMatchObject({
        private_key: pem,
        private_key_id: "planned-key",
        client_email: "planned@circle-test.iam.gserviceaccount.com",
      });
      const now = Math.floor(Date.now() / 1000);
      const signed = await new SignJWT({ scope: ANDROID_PUBLISHER_SCOPE })
        .setProtectedHeader({ alg: "RS256", kid: "planned-key" })
        .setIssuer("planned@circle-test.iam.gserviceaccount.com")
        .setAudience(planned.serviceAccount.token_uri)
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .sign(privateKey);
      const res = await fetch(planned.serviceAccount.token_uri, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion: signed }),
      });
      expect(res.status).toBe(200);
    } finally {
      await planned.stop();
    }
  });
});
