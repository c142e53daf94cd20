import { beforeAll, describe, expect, it } from "vitest";
import type { Me } from "../../src/features/users/schema";
import { sha256Hex } from "../../src/platform/crypto";
import { ObjectId } from "../../src/platform/ids";
import { seenBodies } from "../support/api";
import { testDeps } from "../support/deps";
import { emailRecorder, emailsIn } from "../support/leaks";
import { idToken, mailedToken, signupConsents, TEST_EMAIL_DOMAIN, uniqueName } from "../support/users";

// Exercises every identity route a client uses, as three users and as anonymous callers, then scans every
// response body this file saw for secrets and for email addresses that are not the caller's own.
const deps = testDeps();
const api = emailRecorder();
const SECRETS = ["passwordHash", "$pbkdf2", "refreshTokenHash", "previousTokenHashes", "tokenHash"];

interface Account {
  id: string;
  username: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

async function signUp(): Promise<Account> {
  const username = uniqueName("sec");
  const email = `${username}@${TEST_EMAIL_DOMAIN}`;
  const password = "correct horse battery";
  const res = await api.as<{ user: Me; accessToken: string; refreshToken: string }>(email, "POST", "/v1/auth/signup", {
    body: { username, email, password, deviceId: `device-${username}`, platform: "ios", ...signupConsents() },
  });
  expect(res.status, res.text).toBe(201);
  return { id: res.body.user.id, username, email, password, ...res.body };
}

describe("what responses reveal", () => {
  let ann: Account;
  let ben: Account;
  let cat: Account;

  beforeAll(async () => {
    [ann, ben, cat] = [await signUp(), await signUp(), await signUp()];
    const as = (u: Account, method: string, path: string, body?: unknown) =>
      api.as(u.email, method, path, { token: u.accessToken, body });
    const anonymous = (method: string, path: string, body?: unknown) => api.as(null, method, path, { body });

    // Sessions: login by email and username, refresh, list.
    const login = await api.as<{ accessToken: string; refreshToken: string }>(ann.email, "POST", "/v1/auth/login", {
      body: { login: ann.email, password: ann.password, deviceId: "ann-tablet", platform: "android", pushToken: "p" },
    });
    expect(login.status).toBe(200);
    expect(
      (await api.as(ben.email, "POST", "/v1/auth/login", { body: { login: ben.username, password: ben.password } }))
        .status,
    ).toBe(200);
    const rotated = await api.as<{ refreshToken: string }>(ann.email, "POST", "/v1/auth/refresh", {
      body: { refreshToken: ann.refreshToken },
    });
    expect(rotated.status).toBe(200);
    expect((await as(ann, "GET", "/v1/auth/sessions")).status).toBe(200);

    // Profiles.
    for (const u of [ann, ben, cat]) expect((await as(u, "GET", "/v1/me")).status).toBe(200);
    expect((await as(ann, "PATCH", "/v1/me", { bio: "hello", displayName: "Ann" })).status).toBe(200);
    expect((await as(ann, "GET", `/v1/users/${ben.username}`)).status).toBe(200);
    expect((await anonymous("GET", `/v1/users/${ann.username}`)).status).toBe(200);
    expect((await as(ann, "POST", "/v1/me/checkin")).status).toBe(200);

    // Follows, and the lists that show other people.
    for (const [from, to] of [
      [ann, ben],
      [cat, ben],
      [ben, ann],
    ] as const) {
      expect((await as(from, "PUT", `/v1/users/${to.id}/follow`)).status).toBe(204);
    }
    expect((await anonymous("GET", `/v1/users/${ben.id}/followers`)).status).toBe(200);
    expect((await as(ann, "GET", `/v1/users/${ben.id}/followers`)).status).toBe(200);
    expect((await as(ben, "GET", `/v1/users/${ben.id}/following`)).status).toBe(200);
    expect((await as(cat, "GET", `/v1/users/${ann.username}`)).status).toBe(200);

    // The caller's own export.
    expect((await as(ann, "GET", "/v1/me/export")).status).toBe(200);

    // Failures that involve someone else's email must not echo it back.
    expect((await anonymous("POST", "/v1/auth/login", { login: ben.email, password: "wrong password" })).status).toBe(
      401,
    );
    expect(
      (await anonymous("POST", "/v1/auth/login", { login: `x${ben.email}`, password: "wrong password" })).status,
    ).toBe(401);
    const duplicate = {
      username: uniqueName("dup"),
      email: ben.email,
      password: "correct horse battery",
      ...signupConsents(),
    };
    expect((await anonymous("POST", "/v1/auth/signup", duplicate)).status).toBe(409);
    expect((await anonymous("POST", "/v1/auth/password/forgot", { email: cat.email })).status).toBe(202);
    const google = await idToken("google", { sub: crypto.randomUUID(), email: cat.email, email_verified: true });
    expect((await anonymous("POST", "/v1/auth/oauth/google", { idToken: google })).status).toBe(409);
    expect((await as(ann, "DELETE", `/v1/auth/sessions/${new ObjectId().toHexString()}`)).status).toBe(404);
  });

  it("saw a real sample of responses, some carrying their caller's own email", () => {
    expect(seenBodies.length).toBeGreaterThanOrEqual(api.exchanges.length);
    expect(api.exchanges.length).toBeGreaterThan(25);
    // The detector works: own emails are found where they belong (signup, login, /v1/me, export).
    expect(api.exchanges.filter((e) => e.ownEmail && emailsIn(e.text).includes(e.ownEmail)).length).toBeGreaterThan(5);
  });

  it.each(SECRETS)("never sends %s in any response body", (secret) => {
    expect(seenBodies.filter((body) => body.includes(secret))).toEqual([]);
  });

  it("never sends a response containing another user's email", () => {
    expect(api.leaks()).toEqual([]);
  });

  it("stores refresh tokens and emailed tokens only as SHA-256 hashes", async () => {
    const sessions = await deps.db.sessions.find({ userId: new ObjectId(ann.id) });
    expect(sessions.length).toBeGreaterThan(0);
    expect(JSON.stringify(sessions)).not.toContain(ann.refreshToken);
    const hashes = sessions.flatMap((s) => [s.refreshTokenHash, ...s.previousTokenHashes]);
    expect(hashes).toContain(await sha256Hex(ann.refreshToken));

    const token = await mailedToken(cat.id, "password_reset");
    const stored = await deps.db.emailTokens.find({ userId: new ObjectId(cat.id) });
    expect(JSON.stringify(stored)).not.toContain(token);
    expect(stored.map((t) => t.tokenHash)).toContain(await sha256Hex(token));
  });
});
