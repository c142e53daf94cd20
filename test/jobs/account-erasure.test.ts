import { describe, expect, it } from "vitest";
import { relationMember } from "../../src/core/relations";
import { type CollectionKey, collections } from "../../src/db/collections";
import type { EventRow } from "../../src/features/analytics/flush";
import { accountErasureJob } from "../../src/features/privacy/erasure";
import { relationsRead, warmRelations } from "../../src/features/relations/service";
import type { PublicUser } from "../../src/features/users/schema";
import { EJSON } from "../../src/platform/ejson";
import { ObjectId } from "../../src/platform/ids";
import type { Collection } from "../../src/platform/mongo/client";
import { runOp } from "../../src/platform/redis-ops";
import { runJob } from "../../src/scheduler/runner";
import { type ApiResponse, call } from "../support/api";
import { testDeps } from "../support/deps";
import { grant } from "../support/gems";
import { completedGeneration, publishedPost } from "../support/posts";
import { idToken, signupUser, type TestUser, users, userWithRole } from "../support/users";

// Every run of this job lives in this file, so no other suite's run can hold its lease. With no grace period
// the job also erases accounts other suites deleted; their assertions hold either way (the account is gone).
const deps = testDeps();
const noGrace = testDeps({ ACCOUNT_DELETION_GRACE_DAYS: "0" });

class SimulatedCrash extends Error {}

interface Scene {
  victim: TestUser;
  idol: TestUser;
  fan: TestUser;
}

const oid = (u: TestUser) => new ObjectId(u.id);
const profile = (u: TestUser) => call<PublicUser>("GET", `/v1/users/${u.username}`);

/** A user with personal data everywhere (profile, device, OAuth link, follows both ways), then deleted. */
async function deletedAccount(): Promise<Scene> {
  const [victim, idol, fan] = await Promise.all([signupUser(), signupUser(), signupUser()]);
  const device = { deviceId: "victim-phone", platform: "ios", pushToken: "push-secret" };
  expect(
    (await call("POST", "/v1/auth/login", { body: { login: victim.username, password: victim.password, ...device } }))
      .status,
  ).toBe(200);
  expect(
    (
      await call("PATCH", "/v1/me", {
        token: victim.accessToken,
        body: { bio: "about me", avatarUrl: "https://cdn.example/me.png" },
      })
    ).status,
  ).toBe(200);
  const google = await idToken("google", { sub: crypto.randomUUID() });
  expect(
    (await call("POST", "/v1/me/oauth/google", { token: victim.accessToken, body: { idToken: google } })).status,
  ).toBe(204);
  expect((await call("PUT", `/v1/users/${idol.id}/follow`, { token: victim.accessToken })).status).toBe(204);
  expect((await call("PUT", `/v1/users/${victim.id}/follow`, { token: fan.accessToken })).status).toBe(204);
  expect((await call("PUT", `/v1/users/${idol.id}/follow`, { token: fan.accessToken })).status).toBe(204);
  // The counterparts' public profiles are cached with the victim still counted.
  expect((await profile(idol)).body.followersCount).toBe(2);
  expect((await profile(fan)).body.followingCount).toBe(2);
  expect((await call("DELETE", "/v1/me", { token: victim.accessToken })).status).toBe(202);
  return { victim, idol, fan };
}

async function expectErased({ victim, idol, fan }: Scene): Promise<void> {
  const doc = await deps.db.users.findOne({ _id: oid(victim) });
  expect(doc).toMatchObject({
    username: `deleted_${victim.id}`,
    usernameLower: `deleted_${victim.id}`,
    email: null,
    emailVerified: false,
    passwordHash: null,
    displayName: "Deleted account",
    bio: "",
    avatarUrl: null,
    oauthProviders: [],
    devices: [],
    followersCount: 0,
    followingCount: 0,
  });
  expect(doc?.erasedAt).toBeInstanceOf(Date);
  expect(doc).not.toHaveProperty("erasureCounterparts");
  const stored = JSON.stringify(doc);
  for (const personal of [victim.email, victim.username, "push-secret", "victim-phone", "about me"]) {
    expect(stored).not.toContain(personal);
  }

  expect(await deps.db.follows.find({ $or: [{ followerId: oid(victim) }, { followingId: oid(victim) }] })).toEqual([]);
  expect(await deps.db.sessions.find({ userId: oid(victim) })).toEqual([]);
  expect(await deps.db.emailTokens.find({ userId: oid(victim) })).toEqual([]);
  expect(await deps.db.emailOutbox.find({ userId: oid(victim) })).toEqual([]);

  // Counterparts' counts equal their remaining follow documents, in the database and in public profiles.
  for (const [who, followers, following] of [
    [idol, 1, 0],
    [fan, 0, 1],
  ] as const) {
    const [edgesIn, edgesOut] = await Promise.all([
      deps.db.follows.find({ followingId: oid(who) }),
      deps.db.follows.find({ followerId: oid(who) }),
    ]);
    expect([edgesIn.length, edgesOut.length]).toEqual([followers, following]);
    expect(await deps.db.users.findOne({ _id: oid(who) })).toMatchObject({
      followersCount: followers,
      followingCount: following,
    });
    expect((await profile(who)).body).toMatchObject({ followersCount: followers, followingCount: following });
  }

  const audits = await deps.db.auditLogs.find({ userId: oid(victim), action: "account_erased" });
  expect(audits).toHaveLength(1);
  expect(audits[0]).toMatchObject({ actorId: null, dataCategory: "security_event" });
}

describe("account-erasure job", () => {
  it("leaves a deleted account alone during the grace period", async () => {
    const { victim } = await deletedAccount();
    const run = await runJob(deps, accountErasureJob, { trigger: "test" });
    expect(run.outcome).toBe("succeeded");
    const doc = await deps.db.users.findOne({ _id: oid(victim) });
    expect(doc).toMatchObject({ email: victim.email, username: victim.username });
    expect(doc?.erasedAt ?? null).toBeNull();
  });

  it("erases personal data, removes follows, fixes the counterparts' counts and audits the erasure", async () => {
    const scene = await deletedAccount();
    const run = await runJob(noGrace, accountErasureJob, { trigger: "test" });
    expect(run.outcome).toBe("succeeded");
    expect(run.counts.accounts).toBeGreaterThanOrEqual(1);
    await expectErased(scene);
    expect(await deps.db.jobRuns.findOne({ runId: run.runId })).toMatchObject({
      job: "account-erasure",
      outcome: "succeeded",
    });

    // A second run has nothing left to do for this account and changes nothing.
    const before = await deps.db.users.findOne({ _id: oid(scene.victim) });
    expect((await runJob(noGrace, accountErasureJob, { trigger: "test" })).outcome).toBe("succeeded");
    expect(await deps.db.users.findOne({ _id: oid(scene.victim) })).toEqual(before);
    await expectErased(scene);
  });

  it("frees the erased account's username and email for a new account", async () => {
    const scene = await deletedAccount();
    expect((await runJob(noGrace, accountErasureJob, { trigger: "test" })).outcome).toBe("succeeded");
    const again = await signupUser({ username: scene.victim.username, email: scene.victim.email });
    expect(again.id).not.toBe(scene.victim.id);
    expect((await profile(scene.victim)).body.id).toBe(again.id);
  });

  it.each([
    "hidden",
    "counterparts-recorded",
    "edges-deleted",
    "copies-scrubbed",
    "analytics-erased",
    "features-erased",
    "audited",
    "erased-one",
  ])("leaves a consistent result when a run crashes at %s and the next run finishes", async (crashPoint) => {
    const scene = await deletedAccount();
    // Deleted long ago, so this account is the first the run picks up, and the crash hits its erasure. Left
    // unsettled, as if its request had died, so the run settles it first (the `hidden` checkpoint).
    await deps.db.users.updateOne(
      { _id: oid(scene.victim) },
      { $set: { deletedAt: new Date(Date.UTC(2000, 0, 1)), deletionSettledAt: null } },
    );
    const crashed = await runJob(noGrace, accountErasureJob, {
      trigger: "test",
      onCheckpoint: (name) => {
        if (name === crashPoint) throw new SimulatedCrash(`killed at ${name}`);
      },
    });
    expect(crashed.outcome).toBe("failed");
    expect(crashed.error).toContain(`killed at ${crashPoint}`);
    // The crash really interrupted this account: only the last checkpoint comes after `erasedAt`.
    const midway = await deps.db.users.findOne({ _id: oid(scene.victim) });
    expect(midway?.erasedAt instanceof Date).toBe(crashPoint === "erased-one");

    const rerun = await runJob(noGrace, accountErasureJob, { trigger: "test" });
    expect(rerun.outcome).toBe("succeeded");
    await expectErased(scene);
  });
});

/** A value only this test's victim has: long and random, so finding it anywhere means it was not erased. */
const unique = (label: string) => `${label}-${crypto.randomUUID().replace(/-/g, "")}`;

const ok = async <T>(pending: Promise<ApiResponse<T>>, status: number): Promise<ApiResponse<T>> => {
  const res = await pending;
  expect(res.status, res.text).toBe(status);
  return res;
};

interface Victim {
  user: TestUser;
  /** Everything personal the stores held about the victim before erasure (read back from them). */
  personal: string[];
  blocker: TestUser;
  postIds: string[];
}

/**
 * A victim whose personal data reaches every collection there is: profile, devices and push tokens, pending
 * email, OAuth, sessions, referral, follows, blocks and mutes, a post with prompts and caption, comments, a
 * vote and a share, gifts both ways with a message, reports by and about them, an appeal, notifications
 * they caused, audit entries, buffered and archived analytics (signed in and anonymous from their device).
 */
async function victimEverywhere(): Promise<Victim> {
  const [referrer, idol, friend, blocker, muted, reporter] = await users(6);
  const moderator = await userWithRole("moderator");
  const code = (await call<{ referralCode: string }>("GET", "/v1/me", { token: referrer.accessToken })).body
    .referralCode;
  const text = {
    displayName: unique("Name"),
    bio: unique("bio"),
    avatarUrl: `https://cdn.example/${unique("avatar")}.png`,
    prompt: unique("prompt"),
    negativePrompt: unique("negative"),
    caption: unique("caption"),
    comment: unique("comment"),
    reply: unique("reply"),
    giftMessage: unique("gift"),
    report: unique("report"),
    appeal: unique("appeal"),
    pendingEmail: `${unique("new").slice(0, 20)}@example.test`,
    pushToken: unique("push"),
    devicePushToken: unique("push2"),
    signupDevice: unique("signup-device"),
    loginDevice: unique("login-device"),
    voteDevice: unique("vote-device"),
    appDevice: unique("app-device"),
    eventDevice: unique("event-device"),
    oauthSub: unique("sub"),
  };
  const user = await signupUser({
    referralCode: code,
    deviceId: text.signupDevice,
    platform: "ios",
    displayName: text.displayName,
  });
  const t = user.accessToken;
  const idolPost = await publishedPost(idol);
  await ok(
    call("POST", "/v1/auth/login", {
      body: { login: user.username, password: user.password, deviceId: text.loginDevice, pushToken: text.pushToken },
    }),
    200,
  );
  await ok(call("PATCH", "/v1/me", { token: t, body: { bio: text.bio, avatarUrl: text.avatarUrl } }), 200);
  await ok(
    call("PUT", `/v1/me/devices/${text.appDevice}`, {
      token: t,
      body: { platform: "android", pushToken: text.devicePushToken },
    }),
    200,
  );
  await ok(
    call("POST", "/v1/me/email", { token: t, body: { email: text.pendingEmail, password: user.password } }),
    202,
  );
  const google = await idToken("google", { sub: text.oauthSub });
  await ok(call("POST", "/v1/me/oauth/google", { token: t, body: { idToken: google } }), 204);
  await ok(call("PUT", `/v1/users/${idol.id}/follow`, { token: t }), 204);
  await ok(call("PUT", `/v1/users/${user.id}/follow`, { token: idol.accessToken }), 204);
  await ok(call("PUT", `/v1/users/${friend.id}/block`, { token: t }), 204);
  await ok(call("PUT", `/v1/users/${muted.id}/mute`, { token: t }), 204);
  await ok(call("PUT", `/v1/users/${user.id}/block`, { token: blocker.accessToken }), 204);

  const generationId = await completedGeneration(user, text.prompt);
  await deps.db.generationJobs.updateOne(
    { _id: new ObjectId(generationId) },
    { $set: { negativePrompt: text.negativePrompt } },
  );
  const post = await ok(
    call<{ id: string }>("POST", "/v1/posts", { token: t, body: { generationId, shareCaption: text.caption } }),
    201,
  );
  const ownPostId = post.body.id;
  const top = await ok(
    call<{ id: string }>("POST", `/v1/posts/${idolPost.id}/comments`, { token: t, body: { content: text.comment } }),
    201,
  );
  const topId = top.body.id;
  await ok(
    call("POST", `/v1/posts/${idolPost.id}/comments`, {
      token: idol.accessToken,
      body: { content: "thanks!", parentId: topId },
    }),
    201,
  );
  await ok(call("POST", `/v1/posts/${ownPostId}/comments`, { token: t, body: { content: text.reply } }), 201);
  await ok(
    call("PUT", `/v1/posts/${idolPost.id}/vote`, { token: t, headers: { "x-device-id": text.voteDevice } }),
    200,
  );
  await ok(call("POST", `/v1/posts/${idolPost.id}/share`, { token: t }), 200);
  await Promise.all([grant(user, 100), grant(idol, 100)]);
  await ok(
    call("POST", `/v1/users/${idol.id}/gifts`, {
      token: t,
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: { amount: 20, message: text.giftMessage },
    }),
    201,
  );
  await ok(
    call("POST", `/v1/users/${user.id}/gifts`, {
      token: idol.accessToken,
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: { amount: 10 },
    }),
    201,
  );
  await ok(
    call("POST", "/v1/reports", {
      token: t,
      body: { targetType: "post", targetId: idolPost.id, reason: "spam", description: text.report },
    }),
    201,
  );
  await ok(
    call("POST", "/v1/reports", {
      token: reporter.accessToken,
      body: { targetType: "post", targetId: ownPostId, reason: "spam" },
    }),
    201,
  );
  await ok(
    call("POST", "/v1/reports", {
      token: reporter.accessToken,
      body: { targetType: "user", targetId: user.id, reason: "spam" },
    }),
    201,
  );
  const warned = await call<{ id: string }>("POST", "/v1/admin/moderation-actions", {
    token: moderator.accessToken,
    body: { targetType: "user", targetId: user.id, action: "warn", reason: "be nice" },
  });
  expect(warned.status, warned.text).toBe(201);
  await ok(
    call("POST", "/v1/appeals", { token: t, body: { moderationActionId: warned.body.id, reason: text.appeal } }),
    201,
  );
  const event = (deviceId: string) => ({
    event: "screen_view",
    timestamp: new Date().toISOString(),
    sessionId: crypto.randomUUID(),
    deviceId,
    platform: "ios",
    appVersion: "3.1.0",
  });
  await ok(call("POST", "/v1/events", { token: t, body: { events: [event(text.eventDevice)] } }), 202);
  await ok(call("POST", "/v1/events", { body: { events: [event(text.eventDevice)] } }), 202);
  const row = (userId: string): EventRow => ({
    event_id: crypto.randomUUID(),
    event_name: "screen_view",
    user_id: userId,
    session_id: crypto.randomUUID(),
    device_id: text.eventDevice,
    platform: "ios",
    app_version: "3.1.0",
    properties: "{}",
    source: "",
    campaign: "",
    timestamp: new Date().toISOString(),
  });
  await deps.clickhouse.insert({ table: "events", values: [row(user.id), row("")], format: "JSONEachRow" });

  // Read back what the stores hold that identifies the victim: the values above, and the IP hashes and
  // session ids the API derived from the victim's requests.
  const me = new ObjectId(user.id);
  const [sessions, votes, referrals, audits] = await Promise.all([
    deps.db.sessions.find({ userId: me }),
    deps.db.votes.find({ userId: me }),
    deps.db.referrals.find({ referredUserId: me }),
    deps.db.auditLogs.find({ userId: me }),
  ]);
  const derived = [
    ...sessions.flatMap((s) => [s.ipHash, s._id.toHexString()]),
    ...votes.flatMap((v) => [v.ipHash, v.sessionId]),
    ...referrals.map((r) => r.ipHash),
    ...audits.map((a) => a.ipHash),
  ].filter((v): v is string => typeof v === "string");
  expect(derived.length).toBeGreaterThanOrEqual(6);
  const personal = [user.username, user.email, ...Object.values(text), ...new Set(derived)];

  // Cached now, so erasure must take the victim out of them.
  await warmRelations(deps, blocker.id);
  expect((await runOp(deps.redis, relationsRead(deps, blocker.id))).members).toContain(
    relationMember.blocking(user.id),
  );
  await ok(call("DELETE", "/v1/me", { token: t }), 202);
  return { user, personal, blocker, postIds: [ownPostId] };
}

/** Every document of a collection, paged by `_id` (the walk must not stop at a limit). */
async function* everyDocument(collection: Collection<{ _id: ObjectId }>) {
  let after: ObjectId | null = null;
  for (;;) {
    const page: { _id: ObjectId }[] = await collection.find(after ? { _id: { $gt: after } } : {}, {
      sort: { _id: 1 },
      limit: 5_000,
    });
    yield* page;
    const last = page.at(-1);
    if (page.length < 5_000 || !last) return;
    after = last._id;
  }
}

/** Where (collection and document id) any of `values` still appears in MongoDB. */
async function foundInMongo(values: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const key of Object.keys(collections) as CollectionKey[]) {
    for await (const doc of everyDocument(deps.db[key] as unknown as Collection<{ _id: ObjectId }>)) {
      const stored = EJSON.stringify(doc, { relaxed: true });
      for (const value of values) if (stored.includes(value)) found.push(`${collections[key]} ${doc._id}: ${value}`);
    }
  }
  return found;
}

/** Where any of `values` still appears in ClickHouse: every table of the database, materialized views' too. */
async function foundInClickHouse(values: string[]): Promise<string[]> {
  const tables = await (
    await deps.clickhouse.query({
      query: "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT LIKE '%View'",
      format: "JSONEachRow",
    })
  ).json<{ name: string }>();
  expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(["events", "retention_user_days"]));
  const found: string[] = [];
  for (const { name } of tables) {
    const rows = await (
      await deps.clickhouse.query({
        query: `SELECT toString(tuple(*)) AS row FROM \`${name.replace(/`/g, "")}\` WHERE multiSearchAny(toString(tuple(*)), {values:Array(String)})`,
        query_params: { values },
        format: "JSONEachRow",
      })
    ).json<{ row: string }>();
    for (const { row } of rows) found.push(`${name}: ${row}`);
  }
  return found;
}

describe("account-erasure job, across every store", () => {
  it("leaves nothing personal of the erased account in any collection or ClickHouse table", async () => {
    const { user, personal, blocker, postIds } = await victimEverywhere();
    // Before: the victim is all over the stores (which proves the walk looks in the right places).
    const before = await foundInMongo(personal);
    for (const where of [
      "users",
      "posts",
      "comments",
      "generation_jobs",
      "votes",
      "referrals",
      "sessions",
      "audit_logs",
      "gem_transactions",
      "notifications",
      "reports",
      "appeals",
      "email_outbox",
      "email_tokens",
      "analytics_events",
    ]) {
      expect(
        before.some((f) => f.startsWith(`${where} `)),
        where,
      ).toBe(true);
    }
    // ClickHouse keeps no account record, so there even the account's id must go.
    const inAnalytics = [...personal, user.id];
    const analyticsBefore = await foundInClickHouse(inAnalytics);
    for (const table of ["events", "retention_user_days", "retention_first_days"]) {
      expect(
        analyticsBefore.some((f) => f.startsWith(`${table}: `)),
        table,
      ).toBe(true);
    }

    const run = await runJob(noGrace, accountErasureJob, { trigger: "test" });
    expect(run.outcome, run.error ?? "").toBe("succeeded");

    expect(await foundInMongo(personal)).toEqual([]);
    expect(await foundInClickHouse(inAnalytics)).toEqual([]);
    // The cached relation sets of the people it was blocked with no longer name it.
    const relations = await runOp(deps.redis, relationsRead(deps, blocker.id));
    expect((relations.members ?? []).filter((m) => m.includes(user.id))).toEqual([]);
    // What stays is anonymous: the account's id with its ledger, and its (hidden) content.
    const me = new ObjectId(user.id);
    expect(await deps.db.users.findOne({ _id: me })).toMatchObject({ username: `deleted_${user.id}` });
    expect((await deps.db.gemTransactions.find({ userId: me })).length).toBeGreaterThanOrEqual(2);
    const posts = await deps.db.posts.find({ _id: { $in: postIds.map((id) => new ObjectId(id)) } });
    expect(posts).toHaveLength(1);
    expect(posts[0]?.deletedAt).toBeInstanceOf(Date);
    expect(await deps.db.blocks.find({ $or: [{ userId: me }, { targetId: me }] })).toEqual([]);
    expect(await deps.db.shares.find({ userId: me })).toEqual([]);

    // Running again changes nothing.
    const erased = await deps.db.users.findOne({ _id: me });
    expect((await runJob(noGrace, accountErasureJob, { trigger: "test" })).outcome).toBe("succeeded");
    expect(await deps.db.users.findOne({ _id: me })).toEqual(erased);
  });
});
