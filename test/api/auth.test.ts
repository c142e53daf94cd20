import { decodeJwt } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import type { Me } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";
import { type ApiResponse, call, uniqueIp, waits } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { expectProblem, fieldPaths, withoutRequestId } from "../support/problems";
import {
  mailedToken,
  signupConsents,
  signupUser,
  TEST_EMAIL_DOMAIN,
  type TestUser,
  uniqueName,
} from "../support/users";

const deps = testDeps();
const PASSWORD = "correct horse battery";

interface AuthResult {
  user: Me;
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

function signupBody(overrides: Record<string, unknown> = {}) {
  const username = uniqueName("s");
  return { username, email: `${username}@${TEST_EMAIL_DOMAIN}`, password: PASSWORD, ...signupConsents(), ...overrides };
}

const signup = (body: Record<string, unknown>, ip?: string) =>
  call<AuthResult>("POST", "/v1/auth/signup", { body, ip });
const login = (body: Record<string, unknown>, fetcher?: (r: Request) => Promise<Response>, ip?: string) =>
  call<AuthResult>("POST", "/v1/auth/login", { body, ip }, fetcher);
const refresh = (refreshToken: string) => call("POST", "/v1/auth/refresh", { body: { refreshToken } });
const userDoc = (id: string) => deps.db.users.findOne({ _id: new ObjectId(id) });

describe("POST /v1/auth/signup", () => {
  it("creates an account: 201 with the caller's Me (no secrets), a 15-minute token pair, defaults stored", async () => {
    const body = signupBody({
      email: `Mixed.${uniqueName()}@Example.TEST`,
      displayName: "Ada",
      deviceId: "d-1",
      platform: "ios",
    });
    const res = await signup(body);
    expect(res.status, res.text).toBe(201);
    const { user } = res.body;
    expect(user).toMatchObject({
      username: body.username,
      email: String(body.email).toLowerCase(),
      emailVerified: false,
      displayName: "Ada",
      role: "user",
      tier: "free",
      gemBalance: 0,
      currentStreak: 0,
      longestStreak: 0,
      followersCount: 0,
      followingCount: 0,
      hasPassword: true,
      oauthProviders: [],
    });
    expect(user.id).toMatch(/^[0-9a-f]{24}$/);
    expect(user.referralCode).toMatch(/^[A-Z0-9]{8}$/);
    expect(res.text).not.toContain("passwordHash");
    expect(res.text).not.toContain("$pbkdf2");
    expect(res.body.expiresIn).toBe(900);
    expect(res.body.refreshToken.length).toBeGreaterThanOrEqual(32);
    const claims = decodeJwt(res.body.accessToken);
    expect(claims).toMatchObject({ sub: user.id, role: "user", tier: "free" });
    expect(claims.exp! - claims.iat!).toBe(900);

    const stored = await userDoc(user.id);
    expect(stored).toMatchObject({
      usernameLower: String(body.username).toLowerCase(),
      email: String(body.email).toLowerCase(),
      trustScore: 50,
      tier: "free",
      role: "user",
      referralCode: user.referralCode,
      referredBy: null,
      deletedAt: null,
      devices: [expect.objectContaining({ deviceId: "d-1", platform: "ios" })],
    });
    expect(stored?.referralCode).toHaveLength(8);
    expect(stored?.passwordHash).toMatch(/^\$pbkdf2-sha256\$i=100000\$/);
    expect(stored?.passwordHash).not.toContain(PASSWORD);
    expect(await deps.db.auditLogs.findOne({ userId: new ObjectId(user.id), action: "signup" })).not.toBeNull();

    // The tokens work at once.
    const me = await call<Me>("GET", "/v1/me", { token: res.body.accessToken });
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(user.id);
    expect((await refresh(res.body.refreshToken)).status).toBe(200);
  });

  it("refuses a username taken in any letter case with 409, and creates nothing", async () => {
    const first = signupBody({ username: uniqueName("Case") });
    expect((await signup(first)).status).toBe(201);
    const again = signupBody({ username: String(first.username).toUpperCase() });
    expectProblem(await signup(again), 409, "conflict");
    expect(await deps.db.users.findOne({ email: again.email })).toBeNull();
  });

  it("refuses an email already in use (in any letter case) with 409", async () => {
    const first = signupBody();
    expect((await signup(first)).status).toBe(201);
    const res = await signup(signupBody({ email: String(first.email).toUpperCase() }));
    expectProblem(res, 409, "conflict");
  });

  it.each([
    ["a username with a dash", { username: "bad-name" }, "username"],
    ["a username with a space", { username: "bad name" }, "username"],
    ["a 2-character username", { username: "ab" }, "username"],
    ["a 31-character username", { username: "a".repeat(31) }, "username"],
    ["a malformed email", { email: "not-an-email" }, "email"],
    ["a 7-character password", { password: "1234567" }, "password"],
    ["a lower-case referral code", { referralCode: "abcd2345" }, "referralCode"],
    ["a short referral code", { referralCode: "ABC" }, "referralCode"],
    ["a referral code nobody has", { referralCode: "ZZZZZZZZ" }, "referralCode"],
    ["a bad platform", { platform: "symbian" }, "platform"],
  ])("rejects %s with a 400 naming the field, creating nothing", async (_name, overrides, path) => {
    const body = signupBody(overrides);
    const res = await signup(body);
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toContain(path);
    expect(await deps.db.users.findOne({ email: String(body.email).toLowerCase() })).toBeNull();
  });

  it.each(["role", "tier", "gemBalance", "trustScore", "emailVerified"])(
    "rejects the unknown or privileged field %s with 400",
    async (field) => {
      const body = signupBody({ [field]: field === "emailVerified" ? true : "admin" });
      const problem = expectProblem(await signup(body), 400, "validation_failed");
      expect(problem.errors).toContainEqual({ path: field, message: "unknown field" });
      expect(await deps.db.users.findOne({ email: body.email })).toBeNull();
    },
  );

  it("lets exactly one of 20 concurrent signups for one username (in mixed cases) win; the rest get 409", async () => {
    const base = uniqueName("Race");
    const variants = [base, base.toLowerCase(), base.toUpperCase()];
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        signup(signupBody({ username: variants[i % 3], email: `race${i}.${base}@${TEST_EMAIL_DOMAIN}` })),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    expect(await deps.db.users.find({ usernameLower: base.toLowerCase() })).toHaveLength(1);
  });

  it("records who referred the new user (a referrals document, not yet validated)", async () => {
    const referrer = await signupUser();
    const code = (await userDoc(referrer.id))!.referralCode;
    const res = await signup(signupBody({ referralCode: code, platform: "android", installSource: "qr_code" }));
    expect(res.status, res.text).toBe(201);
    const newId = new ObjectId(res.body.user.id);
    expect((await deps.db.users.findOne({ _id: newId }))?.referredBy?.toHexString()).toBe(referrer.id);
    const referrals = await deps.db.referrals.find({ referredUserId: newId });
    expect(referrals).toHaveLength(1);
    expect(referrals[0]).toMatchObject({
      referralCode: code,
      validated: false,
      installSource: "qr_code",
      platform: "android",
      bonusGemsAwarded: 0,
    });
    expect(String(referrals[0]?.referrerId)).toBe(referrer.id);
  });

  it("limits signups per IP: 429 with Retry-After once the limit is used", async () => {
    const tight = appWith({ RATE_LIMIT_SIGNUP_PER_IP: "2" });
    const ip = uniqueIp();
    const send = () => call("POST", "/v1/auth/signup", { body: signupBody(), ip }, tight);
    expect((await send()).status).toBe(201);
    expect((await send()).status).toBe(201);
    const refused = await send();
    expectProblem(refused, 429, "rate_limited");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // Another IP is not affected.
    expect((await call("POST", "/v1/auth/signup", { body: signupBody(), ip: uniqueIp() }, tight)).status).toBe(201);
  });
});

describe("POST /v1/auth/login", () => {
  let userA: TestUser;
  beforeAll(async () => {
    const username = uniqueName("Al");
    userA = await signupUser({ username, email: `${username}@${TEST_EMAIL_DOMAIN}` });
  });

  it.each([
    ["the username", (u: TestUser) => u.username],
    ["the username in another case", (u: TestUser) => u.username.toUpperCase()],
    ["the email", (u: TestUser) => u.email],
    ["the email in upper case, with spaces around", (u: TestUser) => ` ${u.email.toUpperCase()} `],
  ])("signs in by %s: 200 with Me and a fresh token pair", async (_name, loginOf) => {
    const res = await login({ login: loginOf(userA), password: userA.password });
    expect(res.status, res.text).toBe(200);
    expect(res.body.user).toMatchObject({ id: userA.id, username: userA.username, email: userA.email.toLowerCase() });
    expect(res.body.expiresIn).toBe(900);
    expect(res.body.refreshToken).not.toBe(userA.refreshToken);
    expect(res.text).not.toContain("passwordHash");
    expect((await call("GET", "/v1/me", { token: res.body.accessToken })).status).toBe(200);
  });

  it("answers a wrong password and an unknown account with the same 401, and audits both", async () => {
    const wrongPassword = await login({ login: userA.username, password: "not the password" });
    const unknownUser = await login({ login: uniqueName("nobody"), password: userA.password });
    const unknownEmail = await login({ login: `${uniqueName("nobody")}@${TEST_EMAIL_DOMAIN}`, password: "x" });
    const wrong = expectProblem(wrongPassword, 401, "unauthorized");
    const unknown = expectProblem(unknownUser, 401, "unauthorized");
    expectProblem(unknownEmail, 401, "unauthorized");
    expect(withoutRequestId(unknownUser)).toEqual(withoutRequestId(wrongPassword));
    expect(withoutRequestId(unknownEmail)).toEqual(withoutRequestId(wrongPassword));
    expect(unknownUser.headers.get("www-authenticate")).toBe(wrongPassword.headers.get("www-authenticate"));

    const failed = await deps.db.auditLogs.findOne({ requestId: wrong.requestId });
    expect(failed).toMatchObject({ action: "login_failed", metadata: { reason: "password" } });
    expect(failed?.userId?.toHexString()).toBe(userA.id);
    const noAccount = await deps.db.auditLogs.findOne({ requestId: unknown.requestId });
    expect(noAccount).toMatchObject({ action: "login_failed", userId: null, metadata: { reason: "no_account" } });
  });

  it("audits a successful login with the request id and a keyed hash of the IP (never the IP itself)", async () => {
    const ip = uniqueIp();
    const res = await login({ login: userA.username, password: userA.password }, undefined, ip);
    expect(res.status).toBe(200);
    const entry = await deps.db.auditLogs.findOne({ requestId: res.headers.get("x-request-id") });
    expect(entry).toMatchObject({ action: "login", dataCategory: "security_event" });
    expect(entry?.userId?.toHexString()).toBe(userA.id);
    expect(entry?.ipHash).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.stringify(entry)).not.toContain(ip);
  });

  it("waits on the account's read and one write (session, sign-in fields, audit, new-device mail) besides the hash", async () => {
    const owner = await signupUser();
    const res = await login({ login: owner.username, password: owner.password, deviceId: `dev-${uniqueName()}` });
    expect(res.status, res.text).toBe(200);
    // The read fetches the password hash, which must be checked before anything is written.
    expect(waits(res.headers)).toMatchObject({ mongo: 2 });
    const session = await deps.db.sessions.findOne({
      _id: new ObjectId(decodeJwt(res.body.accessToken).sid as string),
    });
    expect(session?.userId.toHexString()).toBe(owner.id);
    const mails = await deps.db.emailOutbox.find({ userId: new ObjectId(owner.id), template: "new_sign_in" });
    expect(mails.length).toBeGreaterThan(0);
  });

  it("records the device: a known deviceId is updated in place, a new one is added, values stored verbatim", async () => {
    const devicesOf = async () => (await userDoc(userA.id))?.devices ?? [];
    const signIn = async (device: Record<string, string>) =>
      expect((await login({ login: userA.username, password: userA.password, ...device })).status).toBe(200);

    await signIn({ deviceId: "phone-1", platform: "ios", pushToken: "push-a" });
    expect(await devicesOf()).toEqual([
      expect.objectContaining({ deviceId: "phone-1", platform: "ios", pushToken: "push-a" }),
    ]);

    await signIn({ deviceId: "phone-1", platform: "ios", pushToken: "push-b" });
    const updated = await devicesOf();
    expect(updated).toHaveLength(1);
    expect(updated[0]).toMatchObject({ deviceId: "phone-1", pushToken: "push-b" });
    expect(updated[0]?.lastSeenAt).toBeInstanceOf(Date);

    // Strings that look like aggregation field paths must be stored as given, not evaluated.
    await signIn({ deviceId: "$email", platform: "android", pushToken: "$passwordHash" });
    const both = await devicesOf();
    expect(both).toHaveLength(2);
    expect(both).toContainEqual(
      expect.objectContaining({ deviceId: "$email", platform: "android", pushToken: "$passwordHash" }),
    );
  });

  it("limits attempts per IP: 429 with Retry-After, even for the right password; other IPs unaffected", async () => {
    const tight = appWith({ RATE_LIMIT_LOGIN_PER_IP: "3" });
    const ip = uniqueIp();
    for (let i = 0; i < 3; i++) {
      expect((await login({ login: userA.username, password: "wrong password" }, tight, ip)).status).toBe(401);
    }
    const refused = await login({ login: userA.username, password: userA.password }, tight, ip);
    expectProblem(refused, 429, "rate_limited");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await login({ login: userA.username, password: userA.password }, tight, uniqueIp())).status).toBe(200);
  });

  it("locks out only the address guessing: ten wrong passwords from one place, and the owner elsewhere still signs in", async () => {
    const userB = await signupUser();
    const tight = appWith({ RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT_AND_IP: "3" });
    const attacker = uniqueIp();
    const attempt = (loginName: string, password: string, ip = attacker) =>
      login({ login: loginName, password }, tight, ip);
    expect((await attempt(userB.username, "wrong password")).status).toBe(401);
    expect((await attempt(userB.username.toUpperCase(), "wrong password")).status).toBe(401);
    expect((await attempt(userB.email, "wrong password")).status).toBe(401);
    // Switching between username and email buys no more guesses from here…
    const refused = await attempt(userB.email.toUpperCase(), userB.password);
    expectProblem(refused, 429, "rate_limited");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // …and the owner, from their own address, is not locked out.
    expect((await attempt(userB.username, userB.password, uniqueIp())).status).toBe(200);
  });

  it("caps guessing spread over many addresses, but lets the owner's known device through", async () => {
    const device = `phone-${crypto.randomUUID()}`;
    const owner = await signupUser({ deviceId: device, platform: "ios" });
    const tight = appWith({ RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: "3" });
    for (let i = 0; i < 3; i++) {
      expect((await login({ login: owner.username, password: `guess ${i}` }, tight, uniqueIp())).status).toBe(401);
    }
    // A fourth address, even with the right password and a made-up device: the account's budget is spent.
    expectProblem(
      await login({ login: owner.username, password: owner.password, deviceId: "made-up" }, tight, uniqueIp()),
      429,
      "rate_limited",
    );
    // The device owner signed in on before still works.
    expect(
      (await login({ login: owner.username, password: owner.password, deviceId: device }, tight, uniqueIp())).status,
    ).toBe(200);
  });

  it("counts only failures: signing in many times from one place uses no budget", async () => {
    const regular = await signupUser();
    const tight = appWith({ RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT_AND_IP: "2" });
    const ip = uniqueIp();
    for (let i = 0; i < 5; i++) {
      expect((await login({ login: regular.username, password: regular.password }, tight, ip)).status).toBe(200);
    }
  });
});

describe("password reset", () => {
  it("answers forgot with the same empty 202 whether or not the email has an account", async () => {
    const user = await signupUser();
    const known = await call("POST", "/v1/auth/password/forgot", { body: { email: user.email } });
    const unknown = await call("POST", "/v1/auth/password/forgot", {
      body: { email: `${uniqueName("ghost")}@${TEST_EMAIL_DOMAIN}` },
    });
    expect(known.status).toBe(202);
    expect(unknown.status).toBe(202);
    expect(known.text).toBe(unknown.text);
    expect(known.headers.get("content-type")).toBe(unknown.headers.get("content-type"));
    expectProblem(
      await call("POST", "/v1/auth/password/forgot", { body: { email: "nope" } }),
      400,
      "validation_failed",
    );
  });

  it("resets with the mailed token: 204, old password refused, new accepted, every session revoked, single use", async () => {
    const user = await signupUser();
    const second = await login({ login: user.username, password: user.password });
    expect(second.status).toBe(200);
    expect((await call("POST", "/v1/auth/password/forgot", { body: { email: user.email } })).status).toBe(202);
    const token = await mailedToken(user.id, "password_reset");

    const reset = await call("POST", "/v1/auth/password/reset", { body: { token, password: "a brand new secret" } });
    expect(reset.status, reset.text).toBe(204);
    expect((await login({ login: user.username, password: user.password })).status).toBe(401);
    expect((await login({ login: user.username, password: "a brand new secret" })).status).toBe(200);
    for (const old of [user.refreshToken, second.body.refreshToken]) {
      expectProblem(await refresh(old), 401, "unauthorized");
    }
    const again = await call("POST", "/v1/auth/password/reset", { body: { token, password: "yet another secret" } });
    expectProblem(again, 400, "validation_failed");
    expect(fieldPaths(again)).toContain("token");
    expect((await login({ login: user.username, password: "a brand new secret" })).status).toBe(200);
    const audit = await deps.db.auditLogs.findOne({ userId: new ObjectId(user.id), action: "password_reset" });
    expect(audit?.metadata.sessionsRevoked).toBe(2);
  });

  it.each([
    ["a short garbage token", "garbage"],
    ["a well-formed token nobody issued", "x".repeat(43)],
  ])("refuses %s with 400", async (_name, token) => {
    const res = await call("POST", "/v1/auth/password/reset", { body: { token, password: "long enough secret" } });
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toContain("token");
  });

  it("refuses an expired reset token with 400 and leaves the password alone", async () => {
    const user = await signupUser();
    expect((await call("POST", "/v1/auth/password/forgot", { body: { email: user.email } })).status).toBe(202);
    const token = await mailedToken(user.id, "password_reset");
    await deps.db.emailTokens.updateMany(
      { userId: new ObjectId(user.id), purpose: "password_reset" },
      { $set: { expiresAt: new Date(Date.now() - 1000) } },
    );
    const res = await call("POST", "/v1/auth/password/reset", { body: { token, password: "a brand new secret" } });
    expectProblem(res, 400, "validation_failed");
    expect((await login({ login: user.username, password: user.password })).status).toBe(200);
  });

  it("refuses a short new password with 400 naming it", async () => {
    const res = await call("POST", "/v1/auth/password/reset", { body: { token: "x".repeat(43), password: "short" } });
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toContain("password");
  });
});

describe("POST /v1/auth/email/verify", () => {
  it("verifies with the mailed token (204, emailVerified true), once; the token is no password-reset token", async () => {
    const user = await signupUser();
    const token = await mailedToken(user.id, "verify_email");
    const wrongPurpose = await call("POST", "/v1/auth/password/reset", {
      body: { token, password: "hijacked password" },
    });
    expectProblem(wrongPurpose, 400, "validation_failed");

    const res = await call("POST", "/v1/auth/email/verify", { body: { token } });
    expect(res.status, res.text).toBe(204);
    expect((await call<Me>("GET", "/v1/me", { token: user.accessToken })).body.emailVerified).toBe(true);
    expectProblem(await call("POST", "/v1/auth/email/verify", { body: { token } }), 400, "validation_failed");
    expect((await login({ login: user.username, password: user.password })).status).toBe(200);
  });

  it("refuses a garbage token with 400", async () => {
    const res: ApiResponse = await call("POST", "/v1/auth/email/verify", { body: { token: "y".repeat(40) } });
    expectProblem(res, 400, "validation_failed");
  });
});
