import { beforeAll, describe, expect, it } from "vitest";
import type { PublicUser } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { emailsIn } from "../support/leaks";
import { expectProblem, type Problem } from "../support/problems";
import { signupUser, type TestUser } from "../support/users";

const deps = testDeps();

interface Export {
  exportedAt: string;
  user: Record<string, unknown>;
  sessions: Record<string, unknown>[];
  following: { followerId: string; followingId: string }[];
  followers: { followerId: string; followingId: string }[];
  auditLogs: { action: string; userId: string }[];
}

const login = (u: TestUser) =>
  call<{ refreshToken: string }>("POST", "/v1/auth/login", { body: { login: u.username, password: u.password } });

describe("GET /v1/me/export", () => {
  let user: TestUser;
  let idol: TestUser;
  let fan: TestUser;
  beforeAll(async () => {
    [user, idol, fan] = await Promise.all([signupUser(), signupUser(), signupUser()]);
    await Promise.all([
      call("PUT", `/v1/users/${idol.id}/follow`, { token: user.accessToken }),
      call("PUT", `/v1/users/${user.id}/follow`, { token: fan.accessToken }),
      login(user),
    ]);
  });

  it("contains the caller's profile, sessions, follows and audit log, and no secret", async () => {
    const res = await call<Export>("GET", "/v1/me/export", { token: user.accessToken });
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("content-disposition")).toContain("attachment");
    const data = res.body;
    expect(data.user).toMatchObject({ _id: user.id, username: user.username, email: user.email, trustScore: 50 });
    expect(data.sessions).toHaveLength(2);
    for (const s of data.sessions) {
      expect(s.userId).toBe(user.id);
      expect(s).not.toHaveProperty("refreshTokenHash");
      expect(s).not.toHaveProperty("previousTokenHashes");
    }
    expect(data.following.map((f) => f.followingId)).toEqual([idol.id]);
    expect(data.followers.map((f) => f.followerId)).toEqual([fan.id]);
    expect(data.auditLogs.map((a) => a.action)).toEqual(expect.arrayContaining(["signup", "login"]));
    expectEvery(data.auditLogs, (a) => a.userId === user.id);

    for (const secret of ["passwordHash", "$pbkdf2", "refreshTokenHash", "tokenHash", "previousTokenHashes"]) {
      expect(res.text).not.toContain(secret);
    }
    expect(res.text).not.toContain(user.refreshToken);
    expect(emailsIn(res.text)).toEqual([user.email]);
    expect(await deps.db.auditLogs.findOne({ userId: new ObjectId(user.id), action: "data_exported" })).not.toBeNull();
  });

  it("answers 401 without a token", async () => {
    expectProblem(await call("GET", "/v1/me/export"), 401, "unauthorized");
  });
});

describe("DELETE /v1/me", () => {
  let user: TestUser;
  let other: TestUser;
  let deleteStatus = 0;
  let erasureAfter = "";
  beforeAll(async () => {
    [user, other] = await Promise.all([signupUser(), signupUser()]);
    // Cache the public profile first: deletion must take it down at once.
    expect((await call("GET", `/v1/users/${user.username}`)).status).toBe(200);
    const res = await call<{ erasureAfter: string }>("DELETE", "/v1/me", { token: user.accessToken });
    deleteStatus = res.status;
    erasureAfter = res.body.erasureAfter;
  });

  it("accepts with 202 and says when personal data will be erased (after the grace period)", async () => {
    expect(deleteStatus).toBe(202);
    const days = (Date.parse(erasureAfter) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
    const doc = await deps.db.users.findOne({ _id: new ObjectId(user.id) });
    expect(doc?.deletedAt).toBeInstanceOf(Date);
    expect(await deps.db.sessions.find({ userId: new ObjectId(user.id), revokedAt: null })).toEqual([]);
    expect(
      await deps.db.auditLogs.findOne({ userId: new ObjectId(user.id), action: "account_deleted" }),
    ).not.toBeNull();
  });

  it("makes the account disappear: its old token 401 everywhere, refresh 401, login 401, profile 404", async () => {
    // The access token is a JWT that stays cryptographically valid for up to 15 minutes; the account standing
    // (read with every authenticated request) says the account is deleted, so it stops at once.
    const refusedToken = async (method: string, path: string, body?: unknown) => {
      const res = await call(method, path, { token: user.accessToken, body });
      expectProblem(res, 401, "unauthorized");
      expect((res.body as Problem).detail).toBe("This account has been deleted.");
    };
    await refusedToken("GET", "/v1/me");
    await refusedToken("PATCH", "/v1/me", { bio: "x" });
    await refusedToken("GET", "/v1/me/export");
    await refusedToken("POST", "/v1/me/checkin");
    await refusedToken("DELETE", "/v1/me");
    expectProblem(
      await call("POST", "/v1/auth/refresh", { body: { refreshToken: user.refreshToken } }),
      401,
      "unauthorized",
    );
    const signIn = await login(user);
    expectProblem(signIn, 401, "unauthorized");
    // Indistinguishable from a wrong password.
    const wrong = await call("POST", "/v1/auth/login", { body: { login: other.username, password: "wrong password" } });
    expect((signIn.body as unknown as Problem).detail).toBe((wrong.body as Problem).detail);
    expectProblem(await call("GET", `/v1/users/${user.username}`), 404, "not_found");
  });

  it("lets the deleted account's still-valid token follow nobody", async () => {
    const res = await call("PUT", `/v1/users/${other.id}/follow`, { token: user.accessToken });
    expectProblem(res, 401, "unauthorized");
    expect(await deps.db.follows.find({ followerId: new ObjectId(user.id) })).toEqual([]);
    const profile = await call<PublicUser>("GET", `/v1/users/${other.username}`);
    expect(profile.body.followersCount).toBe(0);
  });

  it("stops the deleted account's still-valid token from voting or queueing generations at once", async () => {
    const { publishedPost } = await import("../support/posts");
    const post = await publishedPost(other);
    expectProblem(await call("PUT", `/v1/posts/${post.id}/vote`, { token: user.accessToken }), 401, "unauthorized");
    expect(await deps.db.votes.find({ userId: new ObjectId(user.id) })).toEqual([]);
    expectProblem(
      await call("POST", "/v1/generations", { token: user.accessToken, body: { prompt: "a quiet harbour at dawn" } }),
      401,
      "unauthorized",
    );
    expect(await deps.db.generationJobs.find({ userId: new ObjectId(user.id) })).toEqual([]);
  });

  it("makes the account unfollowable", async () => {
    const fan = await signupUser();
    expectProblem(await call("PUT", `/v1/users/${user.id}/follow`, { token: fan.accessToken }), 404, "not_found");
    expectProblem(await call("GET", `/v1/users/${user.id}/followers`), 404, "not_found");
  });
});
