import { env } from "cloudflare:workers";
import { base64url, decodeJwt, type JWTPayload, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import type { SessionView, TokenPair } from "../../src/features/auth/schema";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { expectProblem } from "../support/problems";
import { signupUser, type TestUser } from "../support/users";

const deps = testDeps();

const me = (token: string) => call("GET", "/v1/me", { token });
const refresh = (refreshToken: string) => call<TokenPair>("POST", "/v1/auth/refresh", { body: { refreshToken } });
const login = (u: TestUser, device: Record<string, string> = {}) =>
  call<TokenPair>("POST", "/v1/auth/login", { body: { login: u.username, password: u.password, ...device } });
const sessions = (token: string) => call<{ items: SessionView[] }>("GET", "/v1/auth/sessions", { token });
const sessionIdOf = (accessToken: string) => String(decodeJwt(accessToken).sid);

describe("access tokens", () => {
  let user: TestUser;
  let other: TestUser;
  let claims: JWTPayload;
  const secret = new TextEncoder().encode(env.JWT_SECRET!);

  /** A token with the user's real claims, signed with the real secret unless told otherwise. */
  function forge(options: { alg?: string; aud?: string; iss?: string; exp?: number; extra?: JWTPayload } = {}) {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ sid: claims.sid, role: claims.role, tier: claims.tier, ...options.extra })
      .setProtectedHeader({ alg: options.alg ?? "HS256", typ: "JWT" })
      .setSubject(String(claims.sub))
      .setIssuer(options.iss ?? String(claims.iss))
      .setAudience(options.aud ?? String(claims.aud))
      .setIssuedAt(now - 60)
      .setExpirationTime(options.exp ?? now + 600)
      .sign(secret);
  }

  const encode = (value: unknown) => base64url.encode(JSON.stringify(value));

  beforeAll(async () => {
    [user, other] = await Promise.all([signupUser(), signupUser()]);
    claims = decodeJwt(user.accessToken);
  });

  it("accepts the issued token, and a token forged here with the same secret and claims (the baseline)", async () => {
    expect((await me(user.accessToken)).status).toBe(200);
    // Proves the forgeries below differ from a valid token only in the one property each changes.
    expect((await me(await forge())).status).toBe(200);
  });

  it("refuses a token whose payload was changed (signature no longer matches)", async () => {
    const [header, , signature] = user.accessToken.split(".");
    const payload = encode({ ...claims, sub: other.id, role: "admin" });
    expectProblem(await me(`${header}.${payload}.${signature}`), 401, "unauthorized");
  });

  it("refuses an expired token", async () => {
    expectProblem(await me(await forge({ exp: Math.floor(Date.now() / 1000) - 5 })), 401, "unauthorized");
  });

  it.each([
    ["a wrong audience", { aud: "someone-else" }],
    ["a wrong issuer", { iss: "https://evil.example" }],
    ["a role that does not exist", { extra: { role: "superadmin" } }],
    ["a tier that does not exist", { extra: { tier: "platinum" } }],
    ["HS512 with the right secret (the algorithm is pinned to HS256)", { alg: "HS512" }],
  ])("refuses %s", async (_name, options) => {
    expectProblem(await me(await forge(options)), 401, "unauthorized");
  });

  it("refuses an unsigned token (alg: none)", async () => {
    const unsigned = `${encode({ alg: "none", typ: "JWT" })}.${encode(claims)}.`;
    expectProblem(await me(unsigned), 401, "unauthorized");
  });

  it.each([
    ["no Authorization header", undefined],
    ["the token without the Bearer scheme", "TOKEN"],
    ["another scheme", "Basic dXNlcjpwYXNz"],
    ["garbage after Bearer", "Bearer not-a-jwt"],
    ["three garbage segments", "Bearer a.b.c"],
    ["an empty Bearer", "Bearer "],
  ])("refuses %s with 401 and WWW-Authenticate", async (_name, header) => {
    const value = header === "TOKEN" ? user.accessToken : header;
    const res = await call("GET", "/v1/me", { headers: value === undefined ? {} : { authorization: value } });
    expectProblem(res, 401, "unauthorized");
    expect(res.headers.get("www-authenticate")).toContain("Bearer");
  });
});

describe("POST /v1/auth/refresh", () => {
  it("rotates: a new refresh token and a working access token for the same session", async () => {
    const user = await signupUser();
    const res = await refresh(user.refreshToken);
    expect(res.status, res.text).toBe(200);
    expect(res.body.expiresIn).toBe(900);
    expect(res.body.refreshToken).not.toBe(user.refreshToken);
    expect(sessionIdOf(res.body.accessToken)).toBe(sessionIdOf(user.accessToken));
    expect((await me(res.body.accessToken)).status).toBe(200);
    // The chain goes on.
    expect((await refresh(res.body.refreshToken)).status).toBe(200);
  });

  it("treats a rotated token presented again as theft: 401, and the whole session dies", async () => {
    const user = await signupUser();
    const rotated = await refresh(user.refreshToken);
    expect(rotated.status).toBe(200);

    expectProblem(await refresh(user.refreshToken), 401, "unauthorized");
    // The legitimate holder's newer token is revoked with the session.
    expectProblem(await refresh(rotated.body.refreshToken), 401, "unauthorized");
    const session = await deps.db.sessions.findOne({ _id: new ObjectId(sessionIdOf(user.accessToken)) });
    expect(session).toMatchObject({ revokedReason: "refresh_token_reuse" });
    expect(session?.revokedAt).toBeInstanceOf(Date);
    const audit = await deps.db.auditLogs.findOne({ userId: new ObjectId(user.id), action: "token_reuse_detected" });
    expect(audit?.metadata.sessionId).toBe(sessionIdOf(user.accessToken));
    // Other sessions of the account are untouched.
    const elsewhere = await login(user);
    expect((await refresh(elsewhere.body.refreshToken)).status).toBe(200);
  });

  it("lets exactly one of 10 concurrent refreshes with the same token succeed (5 sessions raced at once)", async () => {
    const racers = await Promise.all(Array.from({ length: 5 }, () => signupUser()));
    const rounds = await Promise.all(
      racers.map((user) => Promise.all(Array.from({ length: 10 }, () => refresh(user.refreshToken)))),
    );
    for (const [i, responses] of rounds.entries()) {
      const statuses = responses.map((r) => r.status).sort();
      expect(statuses).toEqual([200, ...Array(9).fill(401)]);
      // The nine losers presented a token that had just been rotated away, which API.md treats as reuse.
      const session = await deps.db.sessions.findOne({ _id: new ObjectId(sessionIdOf(racers[i]!.accessToken)) });
      expect(session?.revokedReason).toBe("refresh_token_reuse");
    }
  });

  it.each([
    ["a token nobody issued", { refreshToken: "z".repeat(43) }, 401],
    ["a too-short token", { refreshToken: "short" }, 400],
    ["a missing token", {}, 400],
  ])("answers %s with %i", async (_name, body, status) => {
    const res = await call("POST", "/v1/auth/refresh", { body });
    expectProblem(res, status, status === 400 ? "validation_failed" : "unauthorized");
  });
});

describe("POST /v1/auth/logout", () => {
  it("revokes the current session only: its refresh token then fails with 401", async () => {
    const user = await signupUser();
    const other = await login(user);
    const res = await call("POST", "/v1/auth/logout", { token: user.accessToken });
    expect(res.status).toBe(204);
    expectProblem(await refresh(user.refreshToken), 401, "unauthorized");
    expect((await refresh(other.body.refreshToken)).status).toBe(200);
    expectProblem(await call("POST", "/v1/auth/logout"), 401, "unauthorized");
  });

  it("ends the access token on routes where sign-in is optional too (a 401, not a silent signed-in view)", async () => {
    const user = await signupUser();
    const { publishedPost } = await import("../support/posts");
    const post = await publishedPost(user);
    expect((await call("GET", `/v1/posts/${post.id}`, { token: user.accessToken })).status).toBe(200);
    expect((await call("POST", "/v1/auth/logout", { token: user.accessToken })).status).toBe(204);
    expectProblem(await call("GET", `/v1/posts/${post.id}`, { token: user.accessToken }), 401, "unauthorized");
    expectProblem(
      await call("POST", "/v1/events", {
        token: user.accessToken,
        body: {
          events: [
            {
              event: "app_open",
              timestamp: new Date().toISOString(),
              sessionId: "s",
              deviceId: "d",
              platform: "ios",
              appVersion: "1.0.0",
            },
          ],
        },
      }),
      401,
      "unauthorized",
    );
  });
});

describe("GET and DELETE /v1/auth/sessions", () => {
  let user: TestUser;
  let phone: TokenPair;
  let stranger: TestUser;
  beforeAll(async () => {
    [user, stranger] = await Promise.all([signupUser(), signupUser()]);
    phone = (await login(user, { deviceId: "phone-9", platform: "android" })).body;
  });

  it("lists the caller's live sessions, marking the current one, without token hashes", async () => {
    const res = await sessions(user.accessToken);
    expect(res.status).toBe(200);
    const ids = res.body.items.map((s) => s.id);
    expect(ids.sort()).toEqual([sessionIdOf(user.accessToken), sessionIdOf(phone.accessToken)].sort());
    const current = res.body.items.filter((s) => s.current);
    expect(current.map((s) => s.id)).toEqual([sessionIdOf(user.accessToken)]);
    expect(res.body.items.find((s) => s.id === sessionIdOf(phone.accessToken))).toMatchObject({
      deviceId: "phone-9",
      platform: "android",
      current: false,
    });
    expect(res.text).not.toMatch(/hash/i);
    // Seen from the phone, the phone's session is the current one.
    const fromPhone = await sessions(phone.accessToken);
    expect(fromPhone.body.items.find((s) => s.current)?.id).toBe(sessionIdOf(phone.accessToken));
    expect((await sessions(stranger.accessToken)).body.items.map((s) => s.id)).toEqual([
      sessionIdOf(stranger.accessToken),
    ]);
  });

  it("answers 404 for another user's session and leaves it working", async () => {
    const theirs = sessionIdOf(stranger.accessToken);
    expectProblem(await call("DELETE", `/v1/auth/sessions/${theirs}`, { token: user.accessToken }), 404, "not_found");
    const still = await refresh(stranger.refreshToken);
    expect(still.status).toBe(200);
    stranger = { ...stranger, refreshToken: still.body.refreshToken };
  });

  it("revokes one of the caller's own sessions: 204, its refresh token fails, it leaves the list", async () => {
    const target = sessionIdOf(phone.accessToken);
    const res = await call("DELETE", `/v1/auth/sessions/${target}`, { token: user.accessToken });
    expect(res.status).toBe(204);
    expectProblem(await refresh(phone.refreshToken), 401, "unauthorized");
    expect((await sessions(user.accessToken)).body.items.map((s) => s.id)).toEqual([sessionIdOf(user.accessToken)]);
    // Already revoked: nothing left to revoke.
    expectProblem(await call("DELETE", `/v1/auth/sessions/${target}`, { token: user.accessToken }), 404, "not_found");
    expect((await refresh(user.refreshToken)).status).toBe(200);
  });

  it("answers 400 for a malformed id and 401 without a token", async () => {
    expectProblem(
      await call("DELETE", "/v1/auth/sessions/not-an-id", { token: user.accessToken }),
      400,
      "validation_failed",
    );
    expectProblem(await call("DELETE", `/v1/auth/sessions/${new ObjectId().toHexString()}`), 401, "unauthorized");
    expectProblem(await call("GET", "/v1/auth/sessions"), 401, "unauthorized");
  });
});
