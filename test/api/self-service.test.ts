import { decodeJwt } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import type { AuthResult, TokenPair } from "../../src/features/auth/schema";
import type { DeviceList, DeviceView, Me, PublicUser } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips, seenBodies, uniqueIp } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { expectProblem, fieldPaths, withoutRequestId } from "../support/problems";
import {
  crowd,
  idToken,
  mailedToken,
  mailsOf,
  signupConsents,
  signupUser,
  TEST_EMAIL_DOMAIN,
  type TestUser,
  uniqueName,
} from "../support/users";

const deps = testDeps();

type Fetcher = (request: Request) => Promise<Response>;
type Provider = "google" | "apple";

const me = (token: string) => call<Me>("GET", "/v1/me", { token });
const refresh = (refreshToken: string) => call<TokenPair>("POST", "/v1/auth/refresh", { body: { refreshToken } });
const login = (loginName: string, password: string, extra: Record<string, string> = {}, fetcher?: Fetcher) =>
  call<AuthResult>("POST", "/v1/auth/login", { body: { login: loginName, password, ...extra } }, fetcher);
const changePassword = (token: string, body: unknown, fetcher?: Fetcher) =>
  call("POST", "/v1/me/password", { token, body }, fetcher);
const changeEmail = (token: string, body: unknown, fetcher?: Fetcher) =>
  call("POST", "/v1/me/email", { token, body }, fetcher);
const verify = (token: string) => call("POST", "/v1/auth/email/verify", { body: { token } });
const resend = (token: string, fetcher?: Fetcher) => call("POST", "/v1/auth/email/resend", { token }, fetcher);
const unlink = (token: string, provider: string) => call("DELETE", `/v1/me/oauth/${provider}`, { token });
const putDevice = (token: string, deviceId: string, body: unknown, fetcher?: Fetcher) =>
  call<DeviceView>("PUT", `/v1/me/devices/${deviceId}`, { token, body }, fetcher);
const deleteDevice = (token: string, deviceId: string) => call("DELETE", `/v1/me/devices/${deviceId}`, { token });
const listDevices = (token: string) => call<DeviceList>("GET", "/v1/me/devices", { token });

const userDoc = (id: string) => deps.db.users.findOne({ _id: new ObjectId(id) });
const devicesOf = async (id: string) => (await userDoc(id))?.devices ?? [];
const auditOf = (id: string, action: string) =>
  deps.db.auditLogs.find({ userId: new ObjectId(id), action }, { sort: { timestamp: 1 } });
const newAddress = () => `${uniqueName("ne")}@${TEST_EMAIL_DOMAIN}`;

interface OAuthAccount {
  id: string;
  sub: string;
  email: string;
  accessToken: string;
  refreshToken: string;
}

/** An account made by signing in with a provider: no password. */
async function oauthAccount(provider: Provider = "google", device: Record<string, string> = {}): Promise<OAuthAccount> {
  const sub = crypto.randomUUID();
  const email = `${uniqueName("oa")}@${TEST_EMAIL_DOMAIN}`;
  const res = await call<AuthResult>("POST", `/v1/auth/oauth/${provider}`, {
    body: { idToken: await idToken(provider, { sub, email, email_verified: true }), ...device },
  });
  if (res.status !== 200) throw new Error(`oauth sign-in failed: ${res.status} ${res.text}`);
  return { id: res.body.user.id, sub, email, accessToken: res.body.accessToken, refreshToken: res.body.refreshToken };
}

async function link(accessToken: string, provider: Provider): Promise<string> {
  const sub = crypto.randomUUID();
  const token = await idToken(provider, { sub, email: newAddress(), email_verified: true });
  const res = await call("POST", `/v1/me/oauth/${provider}`, { token: accessToken, body: { idToken: token } });
  expect(res.status, res.text).toBe(204);
  return sub;
}

/** Whether the stored hash still accepts this password (a login with it). */
async function verifyStored(user: TestUser, password: string): Promise<boolean> {
  return (await login(user.username, password)).status === 200;
}

describe("POST /v1/me/password", () => {
  it("changes the password: the other session stops at once (refresh and access), the caller's goes on", async () => {
    const user = await signupUser();
    const elsewhere = (await login(user.username, user.password)).body;
    const bystander = await signupUser();
    expect((await me(elsewhere.accessToken)).status).toBe(200);

    const res = await changePassword(user.accessToken, {
      currentPassword: user.password,
      newPassword: "a much better secret",
    });
    expect(res.status, res.text).toBe(204);
    expect(res.text).toBe("");

    // The other device: its access token is refused now, not in 15 minutes, and its refresh token is dead.
    expectProblem(await me(elsewhere.accessToken), 401, "unauthorized");
    expectProblem(await refresh(elsewhere.refreshToken), 401, "unauthorized");
    // The caller's session keeps working, access and refresh.
    expect((await me(user.accessToken)).status).toBe(200);
    const rotated = await refresh(user.refreshToken);
    expect(rotated.status).toBe(200);
    expect((await me(rotated.body.accessToken)).status).toBe(200);

    expect((await login(user.username, user.password)).status).toBe(401);
    expect((await login(user.email, "a much better secret")).status).toBe(200);
    expect((await userDoc(user.id))?.passwordHash).toMatch(/^\$pbkdf2-sha256\$i=100000\$/);

    const [entry] = await auditOf(user.id, "password_changed");
    expect(entry?.metadata).toEqual({ sessionsRevoked: 1 });
    const [notice] = await mailsOf(user.id, "password_changed");
    expect(notice).toMatchObject({ to: user.email, data: { username: user.username } });
    expect(Object.keys(notice?.data ?? {}).sort()).toEqual(["changedAt", "username"]);
    // Someone else's sessions are untouched.
    expect((await me(bystander.accessToken)).status).toBe(200);
    expect((await refresh(bystander.refreshToken)).status).toBe(200);
  });

  it("spends a reset link mailed before the change", async () => {
    const user = await signupUser();
    expect((await call("POST", "/v1/auth/password/forgot", { body: { email: user.email } })).status).toBe(202);
    const resetToken = await mailedToken(user.id, "password_reset");
    const changed = await changePassword(user.accessToken, {
      currentPassword: user.password,
      newPassword: "changed while signed in",
    });
    expect(changed.status).toBe(204);
    const reset = await call("POST", "/v1/auth/password/reset", {
      body: { token: resetToken, password: "someone else's pick" },
    });
    expectProblem(reset, 400, "validation_failed");
    expect(fieldPaths(reset)).toEqual(["token"]);
    expect((await login(user.username, "changed while signed in")).status).toBe(200);
  });

  it("refuses a wrong current password with 403 naming currentPassword, changes nothing, audits it", async () => {
    const user = await signupUser();
    const elsewhere = (await login(user.username, user.password)).body;
    const res = await changePassword(user.accessToken, {
      currentPassword: "not my password",
      newPassword: "whatever123",
    });
    const problem = expectProblem(res, 403, "forbidden");
    expect(problem.errors?.map((e) => e.path)).toEqual(["currentPassword"]);
    // 403, not 401: the caller's token is fine and must not look expired to the app.
    expect(res.headers.get("www-authenticate")).toBeNull();
    expect((await me(user.accessToken)).status).toBe(200);
    expect((await me(elsewhere.accessToken)).status).toBe(200);
    expect((await login(user.username, user.password)).status).toBe(200);
    expect(await auditOf(user.id, "password_check_failed")).toEqual([
      expect.objectContaining({ metadata: { purpose: "password_change" } }),
    ]);
    expect(await mailsOf(user.id, "password_changed")).toEqual([]);
  });

  it("counts attempts against the account's login limit: 429 after it, for the right password and for login", async () => {
    const tight = appWith({ RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: "3" });
    const user = await signupUser();
    for (let i = 0; i < 3; i++) {
      const wrong = await changePassword(
        user.accessToken,
        { currentPassword: `guess ${i}`, newPassword: "x".repeat(12) },
        tight,
      );
      expect(wrong.status).toBe(403);
    }
    const right = await changePassword(
      user.accessToken,
      { currentPassword: user.password, newPassword: "x".repeat(12) },
      tight,
    );
    expectProblem(right, 429, "rate_limited");
    expect(Number(right.headers.get("retry-after"))).toBeGreaterThan(0);
    // One budget: the sign-in form, from another address, is spent too; and so is the email change.
    expectProblem(
      await call(
        "POST",
        "/v1/auth/login",
        { body: { login: user.username, password: user.password }, ip: uniqueIp() },
        tight,
      ),
      429,
      "rate_limited",
    );
    expectProblem(
      await changeEmail(user.accessToken, { email: newAddress(), password: user.password }, tight),
      429,
      "rate_limited",
    );
    expect(await verifyStored(user, user.password)).toBe(true);
  });

  it("answers 409 no_password for an account without one (pointing to the reset flow)", async () => {
    const account = await oauthAccount();
    const res = await changePassword(account.accessToken, {
      currentPassword: "anything",
      newPassword: "new password!",
    });
    const problem = expectProblem(res, 409, "conflict");
    expect(problem.reason).toBe("no_password");
    expect(problem.detail).toContain("/v1/auth/password/forgot");
    expect((await userDoc(account.id))?.passwordHash).toBeNull();
  });

  it.each([
    ["no newPassword", { currentPassword: "correct horse battery" }, ["newPassword"]],
    ["no currentPassword", { newPassword: "long enough secret" }, ["currentPassword"]],
    ["a short newPassword", { currentPassword: "correct horse battery", newPassword: "short" }, ["newPassword"]],
    [
      "the same password again",
      { currentPassword: "correct horse battery", newPassword: "correct horse battery" },
      ["newPassword"],
    ],
    [
      "an unknown field",
      { currentPassword: "correct horse battery", newPassword: "long enough secret", role: "admin" },
      ["role"],
    ],
    ["a number", { currentPassword: 12345678, newPassword: "long enough secret" }, ["currentPassword"]],
  ])("answers 400 for %s, naming the field", async (_name, body, paths) => {
    const user = (await crowd(1))[0];
    const res = await changePassword(user.accessToken, body);
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toEqual(paths);
  });

  it("answers 401 without a token", async () => {
    expectProblem(
      await call("POST", "/v1/me/password", { body: { currentPassword: "a", newPassword: "long enough secret" } }),
      401,
      "unauthorized",
    );
  });
});

describe("POST /v1/me/email", () => {
  it("changes the address end to end: pending, link to the new address, notices to the old, single use", async () => {
    const user = await signupUser();
    const next = newAddress();
    const res = await changeEmail(user.accessToken, { email: next.toUpperCase(), password: user.password });
    expect(res.status, res.text).toBe(202);

    const pending = (await me(user.accessToken)).body;
    expect(pending).toMatchObject({ email: user.email, pendingEmail: next, emailVerified: false });
    expect(Date.parse(pending.pendingEmailExpiresAt ?? "") - Date.now()).toBeGreaterThan(47 * 3_600_000);
    // Not public, and not an address one can sign in with yet.
    const profile = await call<PublicUser>("GET", `/v1/users/${user.username}`);
    expect(profile.text).not.toContain("@");
    expect((await login(next, user.password)).status).toBe(401);

    const [link] = await mailsOf(user.id, "verify_email_change");
    expect(link).toMatchObject({ to: next, data: { username: user.username } });
    // The token travels only until the mail is sent; the outbox forgets it then.
    expect(
      Object.keys(link?.data ?? {})
        .filter((k) => k !== "token")
        .sort(),
    ).toEqual(["expiresAt", "username"]);
    const [requested] = await mailsOf(user.id, "email_change_requested");
    expect(requested?.to).toBe(user.email);
    expect(requested?.data).not.toHaveProperty("token");
    expect(requested?.data.newEmailMasked).toBe(`${next[0]}***@${TEST_EMAIL_DOMAIN}`);
    expect(JSON.stringify(requested)).not.toContain(next);

    const token = await mailedToken(user.id, "verify_email_change");
    expect((await verify(token)).status).toBe(204);
    expect((await me(user.accessToken)).body).toMatchObject({
      email: next,
      emailVerified: true,
      pendingEmail: null,
      pendingEmailExpiresAt: null,
    });
    const [changed] = await mailsOf(user.id, "email_changed");
    expect(changed).toMatchObject({
      to: user.email,
      data: { username: user.username, newEmailMasked: requested?.data.newEmailMasked },
    });
    expect(changed?.data).not.toHaveProperty("token");
    const [entry] = await auditOf(user.id, "email_changed");
    expect(entry?.metadata).toEqual({
      from: `${user.email[0]}***@${TEST_EMAIL_DOMAIN}`,
      to: requested?.data.newEmailMasked,
    });
    expect(JSON.stringify(await auditOf(user.id, "email_change_requested"))).not.toContain(next);

    const again = await verify(token);
    expectProblem(again, 400, "validation_failed");
    expect(fieldPaths(again)).toEqual(["token"]);
    expect((await login(next, user.password)).status).toBe(200);
    expect((await login(user.email, user.password)).status).toBe(401);
    // The old address is free again.
    expect((await signupUser({ email: user.email })).id).not.toBe(user.id);
  });

  it("spends links mailed to the old address once the change is applied", async () => {
    const user = await signupUser();
    const verifyOld = await mailedToken(user.id, "verify_email");
    expect((await call("POST", "/v1/auth/password/forgot", { body: { email: user.email } })).status).toBe(202);
    const resetOld = await mailedToken(user.id, "password_reset");
    expect((await changeEmail(user.accessToken, { email: newAddress(), password: user.password })).status).toBe(202);
    expect((await verify(await mailedToken(user.id, "verify_email_change"))).status).toBe(204);
    expectProblem(await verify(verifyOld), 400, "validation_failed");
    expectProblem(
      await call("POST", "/v1/auth/password/reset", { body: { token: resetOld, password: "taken over by mail" } }),
      400,
      "validation_failed",
    );
  });

  it("refuses with 409 and changes nothing when the address is taken between request and confirmation", async () => {
    const user = await signupUser();
    const contested = newAddress();
    expect((await changeEmail(user.accessToken, { email: contested, password: user.password })).status).toBe(202);
    const token = await mailedToken(user.id, "verify_email_change");
    const rival = await signupUser({ email: contested });

    const before = await userDoc(user.id);
    const res = await verify(token);
    expect(expectProblem(res, 409, "conflict").reason).toBe("email_taken");
    const after = await userDoc(user.id);
    expect(after).toMatchObject({ email: user.email, emailVerified: false, pendingEmail: contested });
    expect(after?.updatedAt).toEqual(before?.updatedAt);
    expect((await userDoc(rival.id))?.email).toBe(contested);
    expect(await mailsOf(user.id, "email_changed")).toEqual([]);
    expect(await auditOf(user.id, "email_changed")).toEqual([]);
    // The link was handed back: it still answers 409, not "already used".
    expect(expectProblem(await verify(token), 409, "conflict").reason).toBe("email_taken");
    expect((await login(user.email, user.password)).status).toBe(200);
  });

  it("refuses an address another account has with the same 409 signup gives, before sending anything", async () => {
    const [user, other] = [await signupUser(), await signupUser()];
    const res = await changeEmail(user.accessToken, { email: other.email, password: user.password });
    expectProblem(res, 409, "conflict");
    const username = uniqueName();
    const signup = await call("POST", "/v1/auth/signup", {
      body: { username, email: other.email, password: "correct horse battery", ...signupConsents() },
    });
    expect(withoutRequestId(res)).toEqual(withoutRequestId(signup));
    expect((await userDoc(user.id))?.pendingEmail ?? null).toBeNull();
    expect(await mailsOf(user.id, "verify_email_change")).toEqual([]);
  });

  it("refuses a wrong password with 403 naming password, and stores nothing", async () => {
    const user = await signupUser();
    const res = await changeEmail(user.accessToken, { email: newAddress(), password: "not the password" });
    expect(expectProblem(res, 403, "forbidden").errors?.map((e) => e.path)).toEqual(["password"]);
    expect((await me(user.accessToken)).body.pendingEmail).toBeNull();
    expect(await mailsOf(user.id, "verify_email_change")).toEqual([]);
    expect(await auditOf(user.id, "password_check_failed")).toEqual([
      expect.objectContaining({ metadata: { purpose: "email_change" } }),
    ]);
  });

  it("replaces an earlier request: only the newest link works", async () => {
    const user = await signupUser();
    const [first, second] = [newAddress(), newAddress()];
    expect((await changeEmail(user.accessToken, { email: first, password: user.password })).status).toBe(202);
    const firstToken = await mailedToken(user.id, "verify_email_change");
    expect((await changeEmail(user.accessToken, { email: second, password: user.password })).status).toBe(202);
    expect((await me(user.accessToken)).body.pendingEmail).toBe(second);
    expectProblem(await verify(firstToken), 400, "validation_failed");
    expect((await verify(await mailedToken(user.id, "verify_email_change"))).status).toBe(204);
    expect((await me(user.accessToken)).body.email).toBe(second);
  });

  it("stops showing a pending change once its link has expired", async () => {
    const user = await signupUser();
    expect((await changeEmail(user.accessToken, { email: newAddress(), password: user.password })).status).toBe(202);
    await deps.db.users.updateOne(
      { _id: new ObjectId(user.id) },
      { $set: { pendingEmailExpiresAt: new Date(Date.now() - 1000) } },
    );
    expect((await me(user.accessToken)).body).toMatchObject({ pendingEmail: null, pendingEmailExpiresAt: null });
  });

  it("limits change links per account (429)", async () => {
    const tight = appWith({ RATE_LIMIT_VERIFICATION_EMAIL_PER_ACCOUNT: "2" });
    const user = await signupUser();
    for (let i = 0; i < 2; i++) {
      expect(
        (await changeEmail(user.accessToken, { email: newAddress(), password: user.password }, tight)).status,
      ).toBe(202);
    }
    expectProblem(
      await changeEmail(user.accessToken, { email: newAddress(), password: user.password }, tight),
      429,
      "rate_limited",
    );
    expect(await mailsOf(user.id, "verify_email_change")).toHaveLength(2);
  });

  it("answers 409 no_password for an account without one", async () => {
    const account = await oauthAccount("apple");
    const res = await changeEmail(account.accessToken, { email: newAddress(), password: "anything at all" });
    expect(expectProblem(res, 409, "conflict").reason).toBe("no_password");
  });

  it.each([
    ["a malformed email", { email: "not-an-email", password: "correct horse battery" }, ["email"]],
    ["no email", { password: "correct horse battery" }, ["email"]],
    ["no password", { email: "someone@example.test" }, ["password"]],
    ["an unknown field", { email: "someone@example.test", password: "x", emailVerified: true }, ["emailVerified"]],
  ])("answers 400 for %s, naming the field", async (_name, body, paths) => {
    const user = (await crowd(1))[0];
    const res = await changeEmail(user.accessToken, body);
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toEqual(paths);
  });

  it("answers 400 naming email for the caller's current address", async () => {
    const user = await signupUser();
    const res = await changeEmail(user.accessToken, { email: user.email.toUpperCase(), password: user.password });
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toEqual(["email"]);
  });
});

describe("POST /v1/auth/email/resend", () => {
  it("mails a fresh link for an unverified address; earlier links stop working", async () => {
    const user = await signupUser();
    const first = await mailedToken(user.id, "verify_email");
    const res = await resend(user.accessToken);
    expect(res.status, res.text).toBe(202);
    const mails = await mailsOf(user.id, "verify_email");
    expect(mails).toHaveLength(2);
    expect(mails[1]?.to).toBe(user.email);
    const fresh = await mailedToken(user.id, "verify_email");
    expect(fresh).not.toBe(first);
    expectProblem(await verify(first), 400, "validation_failed");
    expect((await verify(fresh)).status).toBe(204);
    expect((await me(user.accessToken)).body.emailVerified).toBe(true);
  });

  it("sends nothing for a verified address, with the same 202", async () => {
    const user = await signupUser();
    expect((await verify(await mailedToken(user.id, "verify_email"))).status).toBe(204);
    const res = await resend(user.accessToken);
    expect(res.status).toBe(202);
    expect(await mailsOf(user.id, "verify_email")).toHaveLength(1);
  });

  it("is limited per account: 429 with Retry-After beyond the budget, others unaffected", async () => {
    const tight = appWith({ RATE_LIMIT_VERIFICATION_EMAIL_PER_ACCOUNT: "2" });
    const [user, other] = [await signupUser(), await signupUser()];
    expect((await resend(user.accessToken, tight)).status).toBe(202);
    expect((await resend(user.accessToken, tight)).status).toBe(202);
    const refused = await resend(user.accessToken, tight);
    expectProblem(refused, 429, "rate_limited");
    expect(refused.headers.get("retry-after")).toBeTruthy();
    expect(await mailsOf(user.id, "verify_email")).toHaveLength(3);
    expect((await resend(other.accessToken, tight)).status).toBe(202);
  });

  it("answers 401 without a token", async () => {
    expectProblem(await call("POST", "/v1/auth/email/resend"), 401, "unauthorized");
  });
});

describe("DELETE /v1/me/oauth/{provider}", () => {
  it("refuses to unlink the only way to sign in (409 last_sign_in_method), and the link stays", async () => {
    const account = await oauthAccount("google");
    const res = await unlink(account.accessToken, "google");
    expect(expectProblem(res, 409, "conflict").reason).toBe("last_sign_in_method");
    expect((await me(account.accessToken)).body.oauthProviders).toEqual(["google"]);
    expect(await auditOf(account.id, "oauth_unlinked")).toEqual([]);
  });

  it("unlinks when a password exists: 204, audited, then 404; the identity no longer signs in to the account", async () => {
    const user = await signupUser();
    const sub = await link(user.accessToken, "google");
    expect((await me(user.accessToken)).body.oauthProviders).toEqual(["google"]);
    const res = await unlink(user.accessToken, "google");
    expect(res.status, res.text).toBe(204);
    expect((await me(user.accessToken)).body.oauthProviders).toEqual([]);
    expect(await auditOf(user.id, "oauth_unlinked")).toEqual([
      expect.objectContaining({ metadata: { provider: "google" } }),
    ]);
    expectProblem(await unlink(user.accessToken, "google"), 404, "not_found");
    const again = await call<AuthResult>("POST", "/v1/auth/oauth/google", {
      body: { idToken: await idToken("google", { sub }) },
    });
    expect(again.status).toBe(200);
    expect(again.body.user.id).not.toBe(user.id);
  });

  it("unlinks one of two providers of a passwordless account, then refuses the last; concurrent unlinks keep one", async () => {
    const account = await oauthAccount("google");
    await link(account.accessToken, "apple");
    expect((await unlink(account.accessToken, "apple")).status).toBe(204);
    expect(expectProblem(await unlink(account.accessToken, "google"), 409, "conflict").reason).toBe(
      "last_sign_in_method",
    );

    const racer = await oauthAccount("apple");
    await link(racer.accessToken, "google");
    const both = await Promise.all([unlink(racer.accessToken, "google"), unlink(racer.accessToken, "apple")]);
    expect(both.map((r) => r.status).sort()).toEqual([204, 409]);
    expect((await me(racer.accessToken)).body.oauthProviders).toHaveLength(1);
  });

  it("answers 404 for a provider it does not know, 400 for a malformed name, and leaves others' links alone", async () => {
    const [user, other] = [await signupUser(), await signupUser()];
    await link(other.accessToken, "apple");
    expectProblem(await unlink(user.accessToken, "facebook"), 404, "not_found");
    expectProblem(await unlink(user.accessToken, "apple"), 404, "not_found");
    const bad = await unlink(user.accessToken, "Not%20A%20Provider");
    expectProblem(bad, 400, "validation_failed");
    expect(fieldPaths(bad)).toEqual(["provider"]);
    expect((await me(other.accessToken)).body.oauthProviders).toEqual(["apple"]);
  });
});

describe("PUT and DELETE /v1/me/devices/{deviceId}", () => {
  it("registers a device and answers it as stored, without echoing the push token", async () => {
    const user = (await crowd(1))[0];
    const pushToken = `apns-${crypto.randomUUID()}`;
    const res = await putDevice(user.accessToken, "iphone-15.A1", {
      platform: "ios",
      pushToken,
      appVersion: "2.4.1+88",
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({
      deviceId: "iphone-15.A1",
      platform: "ios",
      hasPushToken: true,
      appVersion: "2.4.1+88",
      lastSeenAt: expect.any(String),
    });
    expect(res.text).not.toContain(pushToken);
    expect(await devicesOf(user.id)).toEqual([
      expect.objectContaining({ deviceId: "iphone-15.A1", platform: "ios", pushToken, appVersion: "2.4.1+88" }),
    ]);
    const list = await listDevices(user.accessToken);
    expect(list.body.items).toEqual([res.body]);
    expect(list.text).not.toContain(pushToken);
    // One write for the caller's list (no read first), plus one for other accounts when a push token is sent.
    // (Measured once the account's standing is cached: the first request of a token may read it from MongoDB.)
    const again = await putDevice(user.accessToken, "iphone-15.A1", { platform: "ios", pushToken });
    expect(roundTrips(again.headers).mongo).toBe(2);
    const plain = await putDevice(user.accessToken, "iphone-15.A1", { platform: "ios" });
    expect(roundTrips(plain.headers).mongo).toBe(1);
  });

  it("is idempotent: 10 concurrent PUTs of one device leave one entry", async () => {
    const user = (await crowd(1))[0];
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        putDevice(user.accessToken, "pixel-8", { platform: "android", pushToken: `fcm-${i}`, appVersion: `1.0.${i}` }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    const devices = await devicesOf(user.id);
    expect(devices).toHaveLength(1);
    expect(devices[0]?.deviceId).toBe("pixel-8");
    // Whichever write came last, the record is one of those sent, whole.
    const i = Number(devices[0]?.appVersion?.split(".")[2]);
    expect(devices[0]?.pushToken).toBe(`fcm-${i}`);
  });

  it("replaces the record: an omitted push token is cleared", async () => {
    const user = (await crowd(1))[0];
    expect(
      (await putDevice(user.accessToken, "tab", { platform: "android", pushToken: "fcm-x", appVersion: "3.0" })).body
        .hasPushToken,
    ).toBe(true);
    const res = await putDevice(user.accessToken, "tab", { platform: "android" });
    expect(res.body).toMatchObject({ hasPushToken: false, appVersion: null });
    expect(await devicesOf(user.id)).toEqual([expect.objectContaining({ pushToken: null, appVersion: null })]);
    expect((await putDevice(user.accessToken, "tab", { platform: "android", pushToken: null })).status).toBe(200);
  });

  it("moves a push token from another account (and from the caller's other devices), keeping their device entries", async () => {
    const [previous, current, bystander] = await crowd(3);
    const pushToken = `fcm-${crypto.randomUUID()}`;
    expect((await putDevice(previous.accessToken, "shared-phone", { platform: "android", pushToken })).status).toBe(
      200,
    );
    expect((await putDevice(previous.accessToken, "laptop", { platform: "web", pushToken: "web-push-1" })).status).toBe(
      200,
    );
    expect((await putDevice(bystander.accessToken, "own", { platform: "ios", pushToken: "apns-own" })).status).toBe(
      200,
    );

    expect((await putDevice(current.accessToken, "shared-phone", { platform: "android", pushToken })).status).toBe(200);
    expect(await devicesOf(previous.id)).toEqual([
      expect.objectContaining({ deviceId: "shared-phone", pushToken: null }),
      expect.objectContaining({ deviceId: "laptop", pushToken: "web-push-1" }),
    ]);
    expect(await devicesOf(current.id)).toEqual([expect.objectContaining({ deviceId: "shared-phone", pushToken })]);
    expect(await devicesOf(bystander.id)).toEqual([expect.objectContaining({ pushToken: "apns-own" })]);

    // The same token re-registered under a new install id on the same account: the old entry loses it.
    expect(
      (await putDevice(current.accessToken, "shared-phone-reinstalled", { platform: "android", pushToken })).status,
    ).toBe(200);
    const mine = await devicesOf(current.id);
    expect(mine.filter((d) => d.pushToken === pushToken).map((d) => d.deviceId)).toEqual(["shared-phone-reinstalled"]);
    expect(mine).toHaveLength(2);
  });

  it("deletes idempotently, only from the caller's own list", async () => {
    const [user, other] = await crowd(2);
    expect((await putDevice(user.accessToken, "old-phone", { platform: "ios" })).status).toBe(200);
    expect((await putDevice(other.accessToken, "old-phone", { platform: "ios", pushToken: "apns-other" })).status).toBe(
      200,
    );
    expect((await deleteDevice(user.accessToken, "old-phone")).status).toBe(204);
    expect((await deleteDevice(user.accessToken, "old-phone")).status).toBe(204);
    expect((await deleteDevice(user.accessToken, "never-registered")).status).toBe(204);
    expect(await devicesOf(user.id)).toEqual([]);
    expect(await devicesOf(other.id)).toEqual([
      expect.objectContaining({ deviceId: "old-phone", pushToken: "apns-other" }),
    ]);
    expect((await listDevices(user.accessToken)).body.items).toEqual([]);
  });

  it("keeps the most recently seen devices up to the cap; re-registering one moves it to the front", async () => {
    const capped = appWith({ DEVICES_PER_USER: "3" });
    const user = (await crowd(1))[0];
    for (const id of ["d1", "d2", "d3"]) {
      expect((await putDevice(user.accessToken, id, { platform: "web" }, capped)).status).toBe(200);
    }
    expect((await putDevice(user.accessToken, "d1", { platform: "web" }, capped)).status).toBe(200);
    expect((await devicesOf(user.id)).map((d) => d.deviceId)).toEqual(["d2", "d3", "d1"]);
    expect((await putDevice(user.accessToken, "d4", { platform: "web" }, capped)).status).toBe(200);
    expect((await devicesOf(user.id)).map((d) => d.deviceId)).toEqual(["d3", "d1", "d4"]);
    expect((await listDevices(user.accessToken)).body.items.map((d) => d.deviceId)).toEqual(["d4", "d1", "d3"]);
  });

  it.each([
    ["an unknown platform", "dev-1", { platform: "symbian" }, ["platform"]],
    ["no platform", "dev-1", { pushToken: "t" }, ["platform"]],
    ["an empty push token", "dev-1", { platform: "ios", pushToken: "" }, ["pushToken"]],
    ["an oversized push token", "dev-1", { platform: "ios", pushToken: "p".repeat(513) }, ["pushToken"]],
    ["a malformed appVersion", "dev-1", { platform: "ios", appVersion: "$where" }, ["appVersion"]],
    ["an unknown field", "dev-1", { platform: "ios", lastSeenAt: "2020-01-01T00:00:00Z" }, ["lastSeenAt"]],
    ["a device id with a space", "bad%20id", { platform: "ios" }, ["deviceId"]],
    ["a device id with a dollar", "%24email", { platform: "ios" }, ["deviceId"]],
    ["a 129-character device id", "d".repeat(129), { platform: "ios" }, ["deviceId"]],
  ])("answers 400 for %s, naming the field", async (_name, deviceId, body, paths) => {
    const user = (await crowd(1))[0];
    const res = await putDevice(user.accessToken, deviceId, body);
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toEqual(paths);
    expect(await devicesOf(user.id)).toEqual([]);
  });

  it("accepts a 128-character device id and refuses a bad one on DELETE too", async () => {
    const user = (await crowd(1))[0];
    expect((await putDevice(user.accessToken, "d".repeat(128), { platform: "web" })).status).toBe(200);
    const bad = await deleteDevice(user.accessToken, "d".repeat(129));
    expectProblem(bad, 400, "validation_failed");
    expect(fieldPaths(bad)).toEqual(["deviceId"]);
  });

  it("answers 401 without a token", async () => {
    expectProblem(await call("PUT", "/v1/me/devices/x", { body: { platform: "ios" } }), 401, "unauthorized");
    expectProblem(await call("DELETE", "/v1/me/devices/x"), 401, "unauthorized");
    expectProblem(await call("GET", "/v1/me/devices"), 401, "unauthorized");
  });
});

describe("devices recorded at sign-in", () => {
  it("login registers the install with its push token and app version, and takes the token from another account", async () => {
    const [previous] = await crowd(1);
    const user = await signupUser();
    const pushToken = `fcm-${crypto.randomUUID()}`;
    expect((await putDevice(previous.accessToken, "family-tablet", { platform: "android", pushToken })).status).toBe(
      200,
    );

    const res = await login(user.username, user.password, {
      deviceId: "family-tablet",
      platform: "android",
      pushToken,
      appVersion: "5.1.0",
    });
    expect(res.status, res.text).toBe(200);
    expect(await devicesOf(user.id)).toEqual([
      expect.objectContaining({ deviceId: "family-tablet", platform: "android", pushToken, appVersion: "5.1.0" }),
    ]);
    expect(await devicesOf(previous.id)).toEqual([
      expect.objectContaining({ deviceId: "family-tablet", pushToken: null }),
    ]);

    // Signing in again without the token keeps what is stored (a sign-in is not a device update).
    expect((await login(user.username, user.password, { deviceId: "family-tablet" })).status).toBe(200);
    expect(await devicesOf(user.id)).toEqual([
      expect.objectContaining({ deviceId: "family-tablet", platform: "android", pushToken, appVersion: "5.1.0" }),
    ]);
  });

  it("OAuth sign-in registers the install the same way", async () => {
    const [previous] = await crowd(1);
    const pushToken = `apns-${crypto.randomUUID()}`;
    expect((await putDevice(previous.accessToken, "iphone", { platform: "ios", pushToken })).status).toBe(200);
    const account = await oauthAccount("apple", { deviceId: "iphone", platform: "ios", pushToken, appVersion: "7.0" });
    expect(await devicesOf(account.id)).toEqual([
      expect.objectContaining({ deviceId: "iphone", platform: "ios", pushToken, appVersion: "7.0" }),
    ]);
    expect(await devicesOf(previous.id)).toEqual([expect.objectContaining({ deviceId: "iphone", pushToken: null })]);
    const sessions = await call<{ items: { deviceId: string | null; current: boolean }[] }>(
      "GET",
      "/v1/auth/sessions",
      {
        token: account.accessToken,
      },
    );
    expect(sessions.body.items).toEqual([expect.objectContaining({ deviceId: "iphone", current: true })]);
  });

  it("refuses a malformed appVersion or push token at sign-in with 400 naming it", async () => {
    const user = await signupUser();
    const res = await login(user.username, user.password, { deviceId: "x", appVersion: "not a version" });
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toEqual(["appVersion"]);
    const oauth = await call("POST", "/v1/auth/oauth/google", {
      body: { idToken: await idToken("google", { sub: crypto.randomUUID() }), pushToken: "" },
    });
    expectProblem(oauth, 400, "validation_failed");
    expect(fieldPaths(oauth)).toEqual(["pushToken"]);
  });
});

describe("profiles", () => {
  let user: TestUser;
  beforeAll(async () => {
    user = await signupUser();
  });

  it("PublicUser carries profileTheme; Me stays a superset of it", async () => {
    expect((await call("PATCH", "/v1/me", { token: user.accessToken, body: { profileTheme: "classic" } })).status).toBe(
      200,
    );
    const profile = await call<PublicUser>("GET", `/v1/users/${user.username}`);
    expect(profile.body.profileTheme).toBe("classic");
    expect(profile.text).not.toMatch(/pendingEmail|@/);
    const own = await me(user.accessToken);
    expect(Object.keys(own.body)).toEqual(expect.arrayContaining(Object.keys(profile.body)));
    expect(own.body).toMatchObject({ profileTheme: "classic", pendingEmail: null });
  });

  it("keeps the session id of the caller in the access token after a password change (sanity)", async () => {
    const before = decodeJwt(user.accessToken).sid;
    expect(
      (await changePassword(user.accessToken, { currentPassword: user.password, newPassword: "profile test secret" }))
        .status,
    ).toBe(204);
    const sessions = await call<{ items: { id: string }[] }>("GET", "/v1/auth/sessions", { token: user.accessToken });
    expect(sessions.body.items.map((s) => s.id)).toEqual([before]);
  });
});

describe("what this file's responses revealed", () => {
  it("never a push token, a password hash or an email token", async () => {
    const tokens = (await deps.db.emailTokens.find({}, { projection: { tokenHash: 1 }, limit: 5000 })).map(
      (t) => t.tokenHash,
    );
    const leaks = seenBodies.filter(
      (body) =>
        /pbkdf2|passwordHash|"pushToken"\s*:\s*"|apns-|fcm-|web-push-/.test(body) ||
        tokens.some((hash) => body.includes(hash)),
    );
    expect(leaks).toEqual([]);
  });
});
