import { exports } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventRow } from "../../src/features/analytics/flush";
import { currentWindows } from "../../src/features/leaderboards/periods";
import type { Post } from "../../src/features/posts/schema";
import { FEATURE_SECTIONS } from "../../src/features/privacy/features";
import { EXPORT_SECTIONS, type ExportSectionName } from "../../src/features/privacy/schema";
import type { PublicUser } from "../../src/features/users/schema";
import { newObjectId, ObjectId } from "../../src/platform/ids";
import { call, roundTrips, waits } from "../support/api";
import { registrationToken } from "../support/delivery";
import { appWith, testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { emailsIn } from "../support/leaks";
import { publishedPost } from "../support/posts";
import { expectProblem, type Problem } from "../support/problems";
import { mailedToken, signupUser, type TestUser, users, userWithRole } from "../support/users";

const deps = testDeps();
type Published = Awaited<ReturnType<typeof publishedPost>>;

type Item = Record<string, unknown> & { _id?: string };
type Export = { [N in ExportSectionName]: Item[] } & Record<keyof typeof FEATURE_SECTIONS, Item[]> & {
    analyticsEvents: Item[];
    schemaVersion: number;
    exportedAt: string;
    user: Record<string, unknown>;
    itemCounts: Record<string, number>;
    complete: boolean;
  };

const login = (u: TestUser, body: Record<string, unknown> = {}) =>
  call<{ refreshToken: string; accessToken: string }>("POST", "/v1/auth/login", {
    body: { login: u.username, password: u.password, ...body },
  });

type Fetcher = (request: Request) => Promise<Response>;
const worker = (exports as unknown as { default: { fetch: Fetcher } }).default;

/** The export, and how many chunks its body arrived in (more than one: it was streamed, not built whole). */
async function exportOf(u: TestUser, fetcher: Fetcher = (r) => worker.fetch(r)) {
  let chunks = 0;
  const counting: Fetcher = async (request) => {
    const response = await fetcher(request);
    if (!response.body) return response;
    const [mine, counted] = response.body.tee();
    const reader = counted.getReader();
    const drained = (async () => {
      while (!(await reader.read()).done) chunks += 1;
    })();
    const text = await new Response(mine).text();
    await drained;
    return new Response(text, { status: response.status, headers: response.headers });
  };
  const res = await call<Export>("GET", "/v1/me/export", { token: u.accessToken }, counting);
  return { res, chunks };
}

const comment = async (u: TestUser, postId: string, content: string, parentId?: string) => {
  const res = await call<{ id: string }>("POST", `/v1/posts/${postId}/comments`, {
    token: u.accessToken,
    body: { content, ...(parentId ? { parentId } : {}) },
  });
  expect(res.status, res.text).toBe(201);
  return res.body.id;
};

const ok = async (pending: Promise<{ status: number; text: string }>, status = 204) => {
  const res = await pending;
  expect(res.status, res.text).toBe(status);
  return res;
};

describe("GET /v1/me/export", () => {
  let user: TestUser;
  let idol: TestUser;
  let fan: TestUser;
  let referred: TestUser;
  let moderator: TestUser;
  // Well formed, so the pushes this account's new followers cause do not prune it as dead.
  const pushToken = registrationToken();
  const newEmail = `new${crypto.randomUUID().slice(0, 8)}@example.test`;
  const archivedSession = crypto.randomUUID();
  const bufferedSession = crypto.randomUUID();
  const flag = `export-target-${crypto.randomUUID().slice(0, 8)}`;
  let ownPost: Published;
  let idolPost: Published;
  let actionId = "";

  beforeAll(async () => {
    [idol, fan, moderator] = await Promise.all([signupUser(), signupUser(), userWithRole("moderator")]);
    const idolCode = (await call<{ referralCode: string }>("GET", "/v1/me", { token: idol.accessToken })).body
      .referralCode;
    user = await signupUser({ referralCode: idolCode });
    const myCode = (await call<{ referralCode: string }>("GET", "/v1/me", { token: user.accessToken })).body
      .referralCode;
    referred = await signupUser({ referralCode: myCode });
    const [someone, muted] = await users(2);
    [ownPost, idolPost] = await Promise.all([publishedPost(user), publishedPost(idol)]);
    await Promise.all([
      ok(call("PUT", `/v1/users/${idol.id}/follow`, { token: user.accessToken })),
      ok(call("PUT", `/v1/users/${user.id}/follow`, { token: fan.accessToken })),
      ok(call("PUT", `/v1/users/${someone.id}/block`, { token: user.accessToken })),
      ok(call("PUT", `/v1/users/${muted.id}/mute`, { token: user.accessToken })),
      ok(login(user), 200),
      ok(call("PUT", `/v1/me/devices/phone-1`, { token: user.accessToken, body: { platform: "ios", pushToken } }), 200),
      ok(
        call("POST", "/v1/me/email", { token: user.accessToken, body: { email: newEmail, password: user.password } }),
        202,
      ),
      ok(call("PUT", `/v1/posts/${idolPost.id}/vote`, { token: user.accessToken }), 200),
      ok(call("POST", `/v1/posts/${idolPost.id}/share`, { token: user.accessToken }), 200),
      ok(call("POST", "/v1/me/checkin", { token: user.accessToken }), 200),
      ok(
        call("POST", "/v1/reports", {
          token: user.accessToken,
          body: { targetType: "post", targetId: idolPost.id, reason: "spam" },
        }),
        201,
      ),
      ok(
        call("POST", "/v1/events", {
          token: user.accessToken,
          body: {
            events: [
              {
                event: "screen_view",
                timestamp: new Date().toISOString(),
                sessionId: bufferedSession,
                deviceId: "phone-1",
                platform: "ios",
                appVersion: "3.1.0",
              },
            ],
          },
        }),
        202,
      ),
      deps.clickhouse.insert({
        table: "events",
        values: [archivedRow(user.id, archivedSession)],
        format: "JSONEachRow",
      }),
      deps.db.featureFlags.insertOne({
        _id: newObjectId(),
        name: flag,
        description: "targets the exporting user and someone else",
        enabled: true,
        rolloutPercentage: 0,
        targetTiers: [],
        targetUserIds: [new ObjectId(user.id), new ObjectId(someone.id)],
        isExperiment: false,
        variants: [],
        createdAt: new Date(),
        updatedAt: new Date(),
      }),
    ]);
    await comment(user, ownPost.id, "my own words");
    const action = await call<{ id: string }>("POST", "/v1/admin/moderation-actions", {
      token: moderator.accessToken,
      body: { targetType: "post", targetId: ownPost.id, action: "remove_content", reason: "test" },
    });
    expect(action.status, action.text).toBe(201);
    actionId = action.body.id;
    await ok(
      call("POST", "/v1/appeals", {
        token: user.accessToken,
        body: { moderationActionId: actionId, reason: "unfair" },
      }),
      201,
    );
  });

  afterAll(async () => {
    await deps.db.featureFlags.deleteOne({ name: flag });
  });

  it("holds every section of the caller's data, counted, versioned and closed", async () => {
    const { res } = await exportOf(user);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(res.headers.get("content-disposition")).toContain("attachment");
    const data = res.body;
    expect(Object.keys(data)).toEqual([
      "schemaVersion",
      "exportedAt",
      "user",
      ...Object.keys(EXPORT_SECTIONS),
      ...Object.keys(FEATURE_SECTIONS),
      "itemCounts",
      "complete",
    ]);
    expect(data.schemaVersion).toBe(2);
    expect(data.complete).toBe(true);
    for (const name of [...Object.keys(EXPORT_SECTIONS), ...Object.keys(FEATURE_SECTIONS)] as ExportSectionName[]) {
      expect(data.itemCounts[name], name).toBe(data[name]?.length);
    }
    expect(data.user).toMatchObject({
      _id: user.id,
      username: user.username,
      email: user.email,
      pendingEmail: newEmail,
    });

    const ids = (items: Item[], field = "_id") => items.map((i) => i[field]);
    const mine = new ObjectId(user.id);
    expect(data.devices).toMatchObject([{ deviceId: "phone-1", platform: "ios", hasPushToken: true }]);
    expect(data.sessions).toHaveLength(2);
    expect(data.emailTokens.map((t) => t.purpose).sort()).toEqual(["email_change", "email_verification"]);
    expect(data.emailOutbox.map((m) => m.template)).toEqual(
      expect.arrayContaining(["verify_email", "verify_email_change", "email_change_requested"]),
    );
    expect(ids(data.posts)).toEqual([ownPost.id]);
    expect(data.comments.map((c) => c.content)).toEqual(["my own words"]);
    expect(ids(data.votes, "postId")).toEqual([idolPost.id]);
    expect(ids(data.shares, "postId")).toEqual([idolPost.id]);
    expect(data.generations).toHaveLength(1);
    expect(data.generations[0]).toMatchObject({ prompt: ownPost.prompt, postId: ownPost.id });
    expect(data.gemTransactions.map((t) => t.source)).toContain("daily_login");
    expect(ids(data.following, "followingId")).toEqual([idol.id]);
    expect(ids(data.followers, "followerId")).toEqual([fan.id]);
    expect(data.blocksAndMutes.map((b) => b.kind).sort()).toEqual(["block", "mute"]);
    expect(ids(data.referralsMade, "referredUserId")).toEqual([referred.id]);
    expect(ids(data.referredBy, "referrerId")).toEqual([idol.id]);
    expect(data.notifications.map((n) => n.type)).toContain("follow");
    expect(ids(data.reportsMade, "targetId")).toEqual([idolPost.id]);
    expect(ids(data.moderationActions)).toEqual([actionId]);
    expect(data.appeals).toMatchObject([{ moderationActionId: actionId, reason: "unfair" }]);
    expect(data.featureFlags).toEqual([expect.objectContaining({ name: flag })]);
    expect(data.auditLogs.map((a) => a.action)).toEqual(expect.arrayContaining(["signup", "login", "data_exported"]));
    expectEvery(data.auditLogs, (a) => a.userId === user.id);
    expect(data.analyticsArchive.filter((e) => e.sessionId === archivedSession)).toHaveLength(1);
    // The signed-in event is in the buffer or, if a flush moved it meanwhile, in the archive.
    const buffered = [...(data.analyticsEvents ?? []), ...data.analyticsArchive].filter(
      (e) => e.sessionId === bufferedSession,
    );
    expect(buffered.length).toBeGreaterThanOrEqual(1);
    expectEvery([...(data.analyticsEvents ?? []), ...data.analyticsArchive], (e) => e.userId === user.id);
    expect(
      await deps.db.auditLogs.findOne({ userId: mine, action: "data_exported" }, { projection: { _id: 1 } }),
    ).not.toBeNull();
  });

  it("never includes a secret, another person's email, a moderator's identity or a flag's other targets", async () => {
    const { res } = await exportOf(user);
    const token = await mailedToken(user.id, "verify_email_change");
    for (const secret of [
      "passwordHash",
      "$pbkdf2",
      "refreshTokenHash",
      "tokenHash",
      "previousTokenHashes",
      pushToken,
      token,
      user.refreshToken,
      moderator.id,
    ]) {
      expect(res.text).not.toContain(secret);
    }
    expect([...new Set(emailsIn(res.text))].sort()).toEqual([user.email, newEmail].sort());
    // The referred person's signup signals stay theirs.
    expect(res.body.referralsMade[0]).not.toHaveProperty("ipHash");
    expect(res.body.referralsMade[0]).not.toHaveProperty("deviceId");
    expect(JSON.stringify(res.body.featureFlags)).not.toContain("targetUserIds");
  });

  it("reads the account and every first page in one MongoDB and one ClickHouse round trip before answering", async () => {
    const { res } = await exportOf(user);
    expect(res.status).toBe(200);
    expect(roundTrips(res.headers)).toMatchObject({ mongo: 1, clickhouse: 1 });
    expect(waits(res.headers)).toMatchObject({ mongo: 1, clickhouse: 1 });
  });

  it("answers 503 with Retry-After, not a broken download, when ClickHouse is down", async () => {
    const { res } = await exportOf(user, appWith({ CLICKHOUSE_URL: "http://127.0.0.1:9" }));
    expectProblem(res, 503, "unavailable");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("answers 401 without a token", async () => {
    expectProblem(await call("GET", "/v1/me/export"), 401, "unauthorized");
  });
});

function archivedRow(userId: string, sessionId: string, at = new Date()): EventRow {
  return {
    event_id: crypto.randomUUID(),
    event_name: "screen_view",
    user_id: userId,
    session_id: sessionId,
    device_id: "phone-1",
    platform: "ios",
    app_version: "3.1.0",
    properties: JSON.stringify({ screen: "feed" }),
    source: "",
    campaign: "",
    timestamp: at.toISOString(),
  };
}

describe("GET /v1/me/export of a heavy account", () => {
  const VOTES = 10_250;
  const ARCHIVED = 1_100;
  let heavy: TestUser;
  let voteIds: string[] = [];
  const session = crypto.randomUUID();

  beforeAll(async () => {
    heavy = await signupUser();
    const userId = new ObjectId(heavy.id);
    const now = Date.now();
    const votes = Array.from({ length: VOTES }, (_, i) => ({
      _id: newObjectId(),
      postId: newObjectId(),
      userId,
      postAuthorId: newObjectId(),
      deviceId: null,
      ipHash: null,
      sessionId: null,
      gemAwarded: true,
      gemBatchId: "export-test",
      createdAt: new Date(now - i),
      fraudScore: 0,
      flagged: false,
      shadow: false,
    }));
    voteIds = votes.map((v) => v._id.toHexString());
    // Written straight to the stores: the export is under test here, not voting.
    for (let at = 0; at < votes.length; at += 2_500) await deps.db.votes.insertMany(votes.slice(at, at + 2_500));
    // Rows a millisecond apart, some sharing a millisecond, so paging crosses equal timestamps too.
    const rows = Array.from({ length: ARCHIVED }, (_, i) =>
      archivedRow(heavy.id, session, new Date(now - Math.floor(i / 3))),
    );
    await deps.clickhouse.insert({ table: "events", values: rows, format: "JSONEachRow" });
  });

  afterAll(async () => {
    await deps.db.votes.deleteMany({ userId: new ObjectId(heavy.id) });
  });

  it("streams every record exactly once, past any page or section size", async () => {
    const { res, chunks } = await exportOf(heavy);
    expect(res.status, res.text.slice(0, 300)).toBe(200);
    const data = res.body;
    expect(data.complete).toBe(true);
    const exported = data.votes.map((v) => String(v._id));
    expect(exported).toHaveLength(VOTES);
    expect(new Set(exported).size).toBe(VOTES);
    expect(new Set(exported)).toEqual(new Set(voteIds));
    expect(data.itemCounts.votes).toBe(VOTES);
    const events = data.analyticsArchive.filter((e) => e.sessionId === session).map((e) => String(e.eventId));
    expect(events).toHaveLength(ARCHIVED);
    expect(new Set(events).size).toBe(ARCHIVED);
    // Pages were written as they were read.
    expect(chunks).toBeGreaterThan(VOTES / deps.config.privacy.exportPageItems);
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
    expect(doc?.deletionSettledAt).toBeInstanceOf(Date);
    expect(await deps.db.sessions.find({ userId: new ObjectId(user.id), revokedAt: null })).toEqual([]);
    expect(await deps.db.auditLogs.find({ userId: new ObjectId(user.id), action: "account_deleted" })).toHaveLength(1);
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

interface Thread {
  id: string;
  userId: string | null;
  username: string | null;
  content: string | null;
  deleted: boolean;
  repliesCount: number;
  replies: { id: string }[];
}

describe("DELETE /v1/me takes the account's posts and comments away from everyone at once", () => {
  let victim: TestUser;
  let author: TestUser;
  let replier: TestUser;
  let fan: TestUser;
  let victimPost: Published;
  let quietPost: Published;
  let authorPost: Published;
  const word = `w${crypto.randomUUID().replace(/-/g, "").slice(0, 12)}`;
  const ids = { victimTop: "", replyToVictim: "", replierTop: "", victimReply: "", victimOnOwn: "" };
  let before: { commentCount: number; threads: Thread[] };
  let deletion: { status: number; headers: Headers };

  const threadsOf = async (postId: string) =>
    (await call<{ items: Thread[] }>("GET", `/v1/posts/${postId}/comments`, { token: fan.accessToken })).body.items;
  const postOf = (postId: string, token?: string) => call<Post>("GET", `/v1/posts/${postId}`, token ? { token } : {});
  const feedIds = async (path: string, token?: string) => {
    const res = await call<{ items: Post[] }>("GET", path, token ? { token } : {});
    expect(res.status, res.text).toBe(200);
    return res.body.items.map((p) => p.id);
  };
  const boards = () => currentWindows(new Date(), deps.keys).map((w) => w.key);

  beforeAll(async () => {
    [victim, author, replier, fan] = await users(4);
    await ok(call("PUT", `/v1/users/${victim.id}/follow`, { token: fan.accessToken }));
    [victimPost, quietPost, authorPost] = await Promise.all([
      publishedPost(victim, { tags: [word] }, `a ${word} in the rain`),
      publishedPost(victim),
      publishedPost(author),
    ]);
    ids.victimTop = await comment(victim, authorPost.id, "victim's top-level comment");
    ids.replyToVictim = await comment(replier, authorPost.id, "a reply to the victim", ids.victimTop);
    ids.replierTop = await comment(replier, authorPost.id, "the replier's own comment");
    ids.victimReply = await comment(victim, authorPost.id, "victim replies to the replier", ids.replierTop);
    ids.victimOnOwn = await comment(victim, victimPost.id, "victim on their own post");
    await ok(call("POST", "/v1/me/checkin", { token: victim.accessToken }), 200);

    // Everything that shows the victim is cached or visible now.
    expect(await feedIds("/v1/feeds/new")).toContain(victimPost.id);
    expect(new Set(await feedIds("/v1/feeds/following", fan.accessToken))).toEqual(
      new Set([victimPost.id, quietPost.id]),
    );
    expect(await feedIds(`/v1/search/posts?q=${word}`)).toEqual([victimPost.id]);
    expect(await feedIds(`/v1/tags/${word}/posts`)).toEqual([victimPost.id]);
    expect((await call("GET", `/v1/users/${victim.username}`)).status).toBe(200);
    // Direct links are served from each post's cached copy once read: one with the victim's comment under it, one
    // without.
    expect((await postOf(victimPost.id, fan.accessToken)).status).toBe(200);
    expect((await postOf(quietPost.id, fan.accessToken)).status).toBe(200);
    const scores = await Promise.all(boards().map((key) => deps.redis.zscore(key, victim.id)));
    expect(scores.map(Number)).toEqual([5, 5, 5]);
    before = { commentCount: (await postOf(authorPost.id)).body.commentCount, threads: await threadsOf(authorPost.id) };

    const res = await call("DELETE", "/v1/me", { token: victim.accessToken });
    expect(res.status, res.text).toBe(202);
    deletion = res;
  });

  it("takes the account's posts out of every feed, search, tag, profile and direct link, for everyone", async () => {
    for (const token of [undefined, fan.accessToken, author.accessToken]) {
      expectProblem(await postOf(victimPost.id, token), 404, "not_found");
      expectProblem(await postOf(quietPost.id, token), 404, "not_found");
      expectProblem(await call("GET", `/v1/posts/${victimPost.id}/comments`, token ? { token } : {}), 404, "not_found");
    }
    expect(await feedIds("/v1/feeds/new")).not.toContain(victimPost.id);
    expect(await feedIds("/v1/feeds/following", fan.accessToken)).toEqual([]);
    expect(await feedIds(`/v1/search/posts?q=${word}`)).toEqual([]);
    expect(await feedIds(`/v1/tags/${word}/posts`)).toEqual([]);
    expectProblem(await call("GET", `/v1/users/${victim.id}/posts`), 404, "not_found");
    expectProblem(await call("GET", `/v1/users/${victim.username}`), 404, "not_found");
    expectProblem(await call("PUT", `/v1/posts/${victimPost.id}/vote`, { token: fan.accessToken }), 404, "not_found");
  });

  it("leaves a placeholder where others replied to the account, and nothing of its own replies", async () => {
    expect(before.threads.map((t) => t.id)).toEqual([ids.victimTop, ids.replierTop]);
    const threads = await threadsOf(authorPost.id);
    expect(threads.map((t) => t.id)).toEqual([ids.victimTop, ids.replierTop]);
    const [placeholder, replierTop] = threads as [Thread, Thread];
    expect(placeholder).toMatchObject({ deleted: true, userId: null, username: null, content: null, repliesCount: 1 });
    expect(placeholder.replies.map((r) => r.id)).toEqual([ids.replyToVictim]);
    expect(replierTop).toMatchObject({ deleted: false, repliesCount: 0, replies: [] });
    expect(JSON.stringify(threads)).not.toContain(victim.username);
  });

  it("keeps commentCount and repliesCount exact", async () => {
    expect(before.commentCount).toBe(4);
    expect((await postOf(authorPost.id)).body.commentCount).toBe(2);
    const stored = await deps.db.comments.find({ postId: new ObjectId(authorPost.id), deletedAt: null });
    expect(stored.map((c) => c._id.toHexString()).sort()).toEqual([ids.replyToVictim, ids.replierTop].sort());
    const top = await deps.db.comments.findOne({ _id: new ObjectId(ids.replierTop) });
    expect(top?.repliesCount).toBe(0);
  });

  it("takes the account off the leaderboards", async () => {
    const scores = await Promise.all(boards().map((key) => deps.redis.zscore(key, victim.id)));
    expect(scores).toEqual([null, null, null]);
  });

  it("waits on MongoDB twice and on Redis once besides the rate limit", () => {
    expect(waits(deletion.headers)).toMatchObject({ mongo: 2, redis: 2, clickhouse: 0 });
    expect(roundTrips(deletion.headers)).toMatchObject({ mongo: 2, redis: 2 });
  });
});
