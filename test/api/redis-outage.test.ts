import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { forgetRulesInMemory } from "../../src/features/flags/service";
import { ObjectId } from "../../src/platform/ids";
import { type ApiResponse, call, roundTrips, uniqueIp } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { CLOSED_PORT_URL, eventually, FAULT_TIMEOUTS, type FaultRig, faultRig } from "../support/faults";
import { completedGeneration, publishedPost } from "../support/posts";
import { operations } from "../support/spec";
import {
  crowd,
  signupConsents,
  signupUser,
  TEST_EMAIL_DOMAIN,
  type TestUser,
  uniqueName,
  userWithRole,
} from "../support/users";

/**
 * Redis unreachable, four ways, with real processes: the Upstash REST URL on a closed port, the Upstash REST
 * server paused (SIGSTOP), redis-server paused behind it, and redis-server killed (then restarted). For every
 * route family, the answer is either the documented fail-open one (reads; RATE_LIMIT_FAIL_MODE=open, the
 * default) or a 503 with Retry-After, never a 500; and for every write, MongoDB holds exactly what the answer
 * says: a write that answered success is there, a write that answered 503 left nothing behind.
 */

type Fetcher = (request: Request) => Promise<Response>;

const deps = testDeps();
let rig: FaultRig;

interface Outage {
  name: string;
  app(overrides?: Record<string, string>): Fetcher;
  begin(): Promise<void>;
  end(): Promise<void>;
}

const outages: Outage[] = [
  {
    name: "the Upstash REST URL on a closed port",
    app: (overrides = {}) => appWith({ UPSTASH_REDIS_REST_URL: CLOSED_PORT_URL, ...FAULT_TIMEOUTS, ...overrides }),
    begin: async () => {},
    end: async () => {},
  },
  {
    name: "the Upstash REST server paused (SIGSTOP)",
    app: (overrides) => rig.app(overrides),
    begin: () => rig.pause("upstash"),
    end: () => rig.resume("upstash"),
  },
  {
    name: "redis-server paused (SIGSTOP) behind the Upstash REST server",
    app: (overrides) => rig.app(overrides),
    begin: () => rig.pause("redis"),
    end: () => rig.resume("redis"),
  },
  {
    name: "redis-server killed",
    app: (overrides) => rig.app(overrides),
    begin: () => rig.kill("redis"),
    end: async () => {
      await rig.restart("redis");
      await eventually(async () => {
        const health = await call<{ checks: { redis: { ok: boolean } } }>("GET", "/health", {}, rig.app());
        return health.body.checks.redis.ok;
      }, "redis answering again through the Upstash REST server");
    },
  },
];

beforeAll(async () => {
  rig = await faultRig();
});

afterAll(async () => {
  await rig?.close();
});

/** A 503 `unavailable` with Retry-After: what a request that needed Redis answers without it. */
function expectUnavailable(res: ApiResponse): void {
  expect(res.status, res.text).toBe(503);
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  expect((res.body as { code: string }).code).toBe("unavailable");
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
}

const oid = (id: string) => new ObjectId(id);

for (const outage of outages) {
  describe(`with ${outage.name}`, () => {
    let app: Fetcher;
    let author: TestUser;
    let post: { id: string; voteCount: number };

    beforeAll(async () => {
      [author] = await crowd(1);
      post = await publishedPost(author);
      app = outage.app();
      await outage.begin();
    });

    afterAll(async () => {
      await outage.end();
    });

    afterEach(() => {
      forgetRulesInMemory();
    });

    // Reads fail open: the answer comes from MongoDB, without the cache.

    it("serves GET /v1/feeds/new from MongoDB", async () => {
      const res = await call<{ items: { id: string; createdAt: string }[] }>("GET", "/v1/feeds/new", {}, app);
      expect(res.status, res.text).toBe(200);
      // The newest page as MongoDB has it now: this file's post, unless other suites published a page of newer ones.
      const page = res.body.items;
      if (!page.some((p) => p.id === post.id)) {
        const published = (await deps.db.posts.findOne({ _id: oid(post.id) }))?.createdAt.toISOString() ?? "";
        expect(page).toHaveLength(20);
        expect(page.filter((p) => p.createdAt < published)).toEqual([]);
      }
    });

    it("serves a signed-in GET /v1/feeds/following from MongoDB", async () => {
      const [reader] = await crowd(1);
      await deps.db.follows.insertOne({
        _id: new ObjectId(),
        followerId: oid(reader.id),
        followingId: oid(author.id),
        createdAt: new Date(),
      });
      const res = await call<{ items: { id: string }[] }>(
        "GET",
        "/v1/feeds/following",
        { token: reader.accessToken },
        app,
      );
      expect(res.status, res.text).toBe(200);
      expect(res.body.items.map((p) => p.id)).toContain(post.id);
    });

    it("serves GET /v1/users/{username} from MongoDB", async () => {
      const res = await call<{ id: string; username: string }>("GET", `/v1/users/${author.username}`, {}, app);
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ id: author.id, username: author.username });
    });

    it("serves GET /v1/posts/{id} with its stored counts", async () => {
      const [reader] = await crowd(1);
      const res = await call<{ id: string; voteCount: number }>(
        "GET",
        `/v1/posts/${post.id}`,
        { token: reader.accessToken },
        app,
      );
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ id: post.id, voteCount: 0 });
    });

    it("serves GET /v1/flags from MongoDB", async () => {
      const [reader] = await crowd(1);
      const res = await call<{ flags: Record<string, boolean> }>(
        "GET",
        "/v1/flags",
        { token: reader.accessToken },
        app,
      );
      expect(res.status, res.text).toBe(200);
      expect(typeof res.body.flags).toBe("object");
    });

    it("serves GET /v1/me, reading the account standing from MongoDB", async () => {
      const [me] = await crowd(1);
      const res = await call<{ id: string }>("GET", "/v1/me", { token: me.accessToken }, app);
      expect(res.status, res.text).toBe(200);
      expect(res.body.id).toBe(me.id);
    });

    // Redis holds the only copy: a 503.

    it("answers GET /v1/leaderboards/daily with 503 (the boards live in Redis)", async () => {
      expectUnavailable(await call("GET", "/v1/leaderboards/daily", {}, app));
    });

    // Writes whose rules need Redis before anything is written: 503, and nothing written.

    it("refuses POST /v1/auth/signup with 503 and creates no account", async () => {
      const username = uniqueName("so");
      const body = {
        username,
        email: `${username}@${TEST_EMAIL_DOMAIN}`,
        password: "correct horse battery",
        ...signupConsents(),
      };
      expectUnavailable(await call("POST", "/v1/auth/signup", { body }, app));
      expect(await deps.db.users.findOne({ usernameLower: username.toLowerCase() })).toBeNull();
    });

    it("refuses POST /v1/auth/login with 503 and opens no session", async () => {
      const user = await signupUser();
      const sessionsBefore = await deps.db.sessions.find({ userId: oid(user.id) });
      const res = await call(
        "POST",
        "/v1/auth/login",
        { body: { login: user.username, password: user.password } },
        app,
      );
      expectUnavailable(res);
      expect(await deps.db.sessions.find({ userId: oid(user.id) })).toHaveLength(sessionsBefore.length);
    });

    it("refuses PUT /v1/posts/{id}/vote with 503 and records no vote (quota and fraud signals need Redis)", async () => {
      const [voter] = await crowd(1);
      expectUnavailable(await call("PUT", `/v1/posts/${post.id}/vote`, { token: voter.accessToken }, app));
      expect(await deps.db.votes.findOne({ postId: oid(post.id), userId: oid(voter.id) })).toBeNull();
    });

    it("refuses POST /v1/generations with 503 and queues no job (the quota needs Redis)", async () => {
      const [creator] = await crowd(1);
      const res = await call(
        "POST",
        "/v1/generations",
        { token: creator.accessToken, body: { prompt: "a quiet harbour" } },
        app,
      );
      expectUnavailable(res);
      expect(await deps.db.generationJobs.findOne({ userId: oid(creator.id) })).toBeNull();
    });

    it("refuses POST /v1/reports with 503 and files no report (the reporter's limit needs Redis)", async () => {
      const [reporter] = await crowd(1);
      const res = await call(
        "POST",
        "/v1/reports",
        { token: reporter.accessToken, body: { targetType: "post", targetId: post.id, reason: "spam" } },
        app,
      );
      expectUnavailable(res);
      expect(await deps.db.reports.findOne({ reporterId: oid(reporter.id) })).toBeNull();
    });

    it("refuses PUT /v1/users/{id}/block with 503 and stores no block (the cached relations must go first)", async () => {
      const [blocker] = await crowd(1);
      expectUnavailable(await call("PUT", `/v1/users/${author.id}/block`, { token: blocker.accessToken }, app));
      expect(await deps.db.blocks.findOne({ userId: oid(blocker.id) })).toBeNull();
    });

    it("refuses PATCH and DELETE /v1/posts/{id} by the owner with 503 and changes nothing (the cached copy must go first)", async () => {
      const [owner] = await crowd(1);
      const own = await publishedPost(owner);
      const patch = await call(
        "PATCH",
        `/v1/posts/${own.id}`,
        { token: owner.accessToken, body: { visibility: "private" } },
        app,
      );
      expectUnavailable(patch);
      expectUnavailable(await call("DELETE", `/v1/posts/${own.id}`, { token: owner.accessToken }, app));
      expect(await deps.db.posts.findOne({ _id: oid(own.id) })).toMatchObject({
        visibility: "public",
        deletedAt: null,
      });
    });

    // Writes that need no Redis to be right: they commit and answer their success.

    it("counts POST /v1/me/checkin and pays its reward", async () => {
      const [member] = await crowd(1);
      const res = await call<{ currentStreak: number; gemsAwarded: number }>(
        "POST",
        "/v1/me/checkin",
        { token: member.accessToken },
        app,
      );
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ currentStreak: 1, gemsAwarded: 5 });
      expect(await deps.db.users.findOne({ _id: oid(member.id) })).toMatchObject({ currentStreak: 1, gemBalance: 5 });
      expect(await deps.db.gemTransactions.find({ userId: oid(member.id), status: "applied" })).toHaveLength(1);
    });

    it("follows with PUT /v1/users/{id}/follow (204) and stores the follow and both counts", async () => {
      const [fan, idol] = await crowd(2);
      const res = await call("PUT", `/v1/users/${idol.id}/follow`, { token: fan.accessToken }, app);
      expect(res.status, res.text).toBe(204);
      expect(await deps.db.follows.findOne({ followerId: oid(fan.id), followingId: oid(idol.id) })).not.toBeNull();
      expect(await deps.db.users.findOne({ _id: oid(idol.id) })).toMatchObject({ followersCount: 1 });
      expect(await deps.db.users.findOne({ _id: oid(fan.id) })).toMatchObject({ followingCount: 1 });
    });

    it("unfollows with DELETE /v1/users/{id}/follow (204) and removes the follow", async () => {
      const [fan, idol] = await crowd(2);
      expect((await call("PUT", `/v1/users/${idol.id}/follow`, { token: fan.accessToken })).status).toBe(204);
      const res = await call("DELETE", `/v1/users/${idol.id}/follow`, { token: fan.accessToken }, app);
      expect(res.status, res.text).toBe(204);
      expect(await deps.db.follows.findOne({ followerId: oid(fan.id), followingId: oid(idol.id) })).toBeNull();
      expect(await deps.db.users.findOne({ _id: oid(idol.id) })).toMatchObject({ followersCount: 0 });
    });

    it("publishes with POST /v1/posts (201) and stores the post", async () => {
      const [creator] = await crowd(1);
      const generationId = await completedGeneration(creator);
      const res = await call<{ id: string }>(
        "POST",
        "/v1/posts",
        { token: creator.accessToken, body: { generationId } },
        app,
      );
      expect(res.status, res.text).toBe(201);
      expect(await deps.db.posts.findOne({ _id: oid(res.body.id) })).toMatchObject({ generationId: oid(generationId) });
    });

    it("comments with POST /v1/posts/{id}/comments (201), stores it and marks the post for a recount", async () => {
      const [commenter] = await crowd(1);
      const res = await call<{ id: string }>(
        "POST",
        `/v1/posts/${post.id}/comments`,
        { token: commenter.accessToken, body: { content: "lovely light" } },
        app,
      );
      expect(res.status, res.text).toBe(201);
      expect(await deps.db.comments.findOne({ _id: oid(res.body.id) })).toMatchObject({ content: "lovely light" });
      expect((await deps.db.posts.findOne({ _id: oid(post.id) }))?.countersStale).toBeGreaterThan(0);
    });

    it("shares with POST /v1/posts/{id}/share (200) and stores the share", async () => {
      const [sharer] = await crowd(1);
      const res = await call<{ shareCount: number }>(
        "POST",
        `/v1/posts/${post.id}/share`,
        { token: sharer.accessToken },
        app,
      );
      expect(res.status, res.text).toBe(200);
      expect(await deps.db.shares.findOne({ postId: oid(post.id), userId: oid(sharer.id) })).not.toBeNull();
    });
  });
}

describe("with RATE_LIMIT_FAIL_MODE=closed and the Upstash REST URL on a closed port", () => {
  const closed = () =>
    appWith({ UPSTASH_REDIS_REST_URL: CLOSED_PORT_URL, RATE_LIMIT_FAIL_MODE: "closed", ...FAULT_TIMEOUTS });

  it("answers cache-first reads with 503 before any MongoDB work, instead of serving them unlimited", async () => {
    const feed = await call("GET", "/v1/feeds/trending", { ip: uniqueIp() }, closed());
    expectUnavailable(feed);
    expect(roundTrips(feed.headers).mongo).toBe(0);
    const [someone] = await crowd(1);
    const profile = await call("GET", `/v1/users/${someone.username}`, {}, closed());
    expectUnavailable(profile);
    expect(roundTrips(profile.headers).mongo).toBe(0);
  });

  it("answers writes with 503 before anything is written", async () => {
    const [fan, idol] = await crowd(2);
    expectUnavailable(await call("PUT", `/v1/users/${idol.id}/follow`, { token: fan.accessToken }, closed()));
    expect(await deps.db.follows.findOne({ followerId: oid(fan.id) })).toBeNull();
    expectUnavailable(await call("POST", "/v1/me/checkin", { token: fan.accessToken }, closed()));
    expect(await deps.db.gemTransactions.findOne({ userId: oid(fan.id) })).toBeNull();
  });
});

describe("every operation in /openapi.json with the Upstash REST URL on a closed port", () => {
  it("answers something other than a 500, and any 503 with Retry-After", async () => {
    const admin = await userWithRole("admin");
    const app = appWith({ UPSTASH_REDIS_REST_URL: CLOSED_PORT_URL, ...FAULT_TIMEOUTS });
    // Deleting the account goes last: every other call needs it.
    const ops = (await operations()).sort(
      (a, b) =>
        Number(a.path === "/v1/me" && a.method === "DELETE") - Number(b.path === "/v1/me" && b.method === "DELETE"),
    );
    const seen: string[] = [];
    for (const op of ops) {
      const path = op.path.replace(/\{([^}]+)\}/g, (_all, name: string) =>
        name === "username" ? admin.username : name === "provider" ? "google" : new ObjectId().toHexString(),
      );
      const withBody = ["POST", "PUT", "PATCH"].includes(op.method);
      const res = await call(op.method, path, { token: admin.accessToken, ...(withBody ? { body: {} } : {}) }, app);
      seen.push(`${op.method} ${op.path} ${res.status}`);
      expect(res.status, `${op.method} ${op.path}: ${res.text}`).not.toBe(500);
      if (res.status === 503)
        expect(Number(res.headers.get("retry-after")), `${op.method} ${op.path}`).toBeGreaterThan(0);
    }
    expect(seen.length).toBeGreaterThan(50);
  });
});
