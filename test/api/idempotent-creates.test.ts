import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { utcDay } from "../../src/platform/time";
import { type ApiResponse, call, roundTrips, uniqueIp } from "../support/api";
import { appWithLateWrites, eventually, testDeps } from "../support/deps";
import { throughWorkerEntry } from "../support/entry";
import { completedGeneration, publishedPost } from "../support/posts";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, mailsOf, signupConsents, TEST_EMAIL_DOMAIN, type TestUser, uniqueName } from "../support/users";

// Creates that accept an Idempotency-Key: a retry after a 503 whose write the Data API applied anyway (its answer
// held back past STORE_TIMEOUT_MS, see test/setup/hold-proxy.ts) makes exactly one thing and gets it back;
// concurrent identical requests make one; the same key with another body is a 422.
const deps = testDeps();
type Fetcher = (request: Request) => Promise<Response>;

const comment = (user: TestUser, postId: string, body: Record<string, unknown>, key?: string, app?: Fetcher) =>
  call<{ id: string; content: string }>(
    "POST",
    `/v1/posts/${postId}/comments`,
    { token: user.accessToken, body, headers: key ? { "Idempotency-Key": key } : {}, ip: uniqueIp() },
    app,
  );

function expectOneAnswer(answers: ApiResponse<{ id?: string }>[]): string {
  const created = answers.filter((r) => r.status === 201);
  for (const r of answers.filter((r) => r.status !== 201)) expectProblem(r, 409, "conflict");
  expect(created.length, answers.map((r) => r.status).join(",")).toBeGreaterThanOrEqual(1);
  const ids = new Set(created.map((r) => r.body.id));
  expect(ids.size).toBe(1);
  return [...ids][0] as string;
}

describe("POST /v1/posts/{id}/comments with Idempotency-Key", () => {
  it("a retry after a 503 whose write was applied gets the first comment back; the count moves once", async () => {
    const [author, commenter] = await crowd(2);
    const post = await publishedPost(author);
    const key = crypto.randomUUID();
    const body = { content: "first!" };
    const lost = await comment(commenter, post.id, body, key, appWithLateWrites());
    expectProblem(lost, 503, "unavailable");
    const applied = await eventually(
      () => deps.db.comments.findOne({ postId: new ObjectId(post.id), userId: new ObjectId(commenter.id) }),
      "the held comment write",
    );
    const retry = await comment(commenter, post.id, body, key);
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body.id).toBe(applied._id.toHexString());
    expect(await deps.db.comments.find({ postId: new ObjectId(post.id) })).toHaveLength(1);
    expect((await deps.db.posts.findOne({ _id: new ObjectId(post.id) }))?.commentCount).toBe(1);
  });

  it("20 identical requests at once make one comment: that 201 (replayed) or a 409 while it runs", async () => {
    const [author, commenter] = await crowd(2);
    const post = await publishedPost(author);
    const key = crypto.randomUUID();
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => comment(commenter, post.id, { content: "hi" }, key)),
    );
    const id = expectOneAnswer(answers);
    const replay = await comment(commenter, post.id, { content: "hi" }, key);
    expect(replay.status).toBe(201);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body.id).toBe(id);
    expect(await deps.db.comments.find({ postId: new ObjectId(post.id) })).toHaveLength(1);
    expect((await deps.db.posts.findOne({ _id: new ObjectId(post.id) }))?.commentCount).toBe(1);
  });

  it("answers 422 for the key with another body, also once Redis forgot the first request", async () => {
    const [author, commenter] = await crowd(2);
    const post = await publishedPost(author);
    const key = crypto.randomUUID();
    expect((await comment(commenter, post.id, { content: "one" }, key)).status).toBe(201);
    expectProblem(await comment(commenter, post.id, { content: "two" }, key), 422, "idempotency_mismatch");
    await deps.redis.del(deps.keys.idempotency(`comment:${commenter.id}`, key));
    expectProblem(await comment(commenter, post.id, { content: "two" }, key), 422, "idempotency_mismatch");
    const again = await comment(commenter, post.id, { content: "one" }, key);
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBeNull();
    expect(await deps.db.comments.find({ postId: new ObjectId(post.id) })).toHaveLength(1);
  });

  it("keys are per user, and a request without one comments every time", async () => {
    const [author, a, b] = await crowd(3);
    const post = await publishedPost(author);
    const key = crypto.randomUUID();
    const [ra, rb] = await Promise.all([
      comment(a, post.id, { content: "x" }, key),
      comment(b, post.id, { content: "x" }, key),
    ]);
    expect([ra.status, rb.status]).toEqual([201, 201]);
    expect((await comment(a, post.id, { content: "x" })).status).toBe(201);
    expect((await comment(a, post.id, { content: "x" })).status).toBe(201);
    expect(await deps.db.comments.find({ postId: new ObjectId(post.id) })).toHaveLength(4);
    const bad = await comment(a, post.id, { content: "x" }, "tab\there");
    expectProblem(bad, 400, "validation_failed");
    expect(fieldPaths(bad)).toEqual(["Idempotency-Key"]);
  });

  it("a 415 for the wrong Content-Type keeps no answer under the key: the corrected request comments", async () => {
    const [author, commenter] = await crowd(2);
    const post = await publishedPost(author);
    const path = `/v1/posts/${post.id}/comments`;
    const body = JSON.stringify({ content: "fixed" });
    const asText = crypto.randomUUID();
    const plain = await call("POST", path, {
      token: commenter.accessToken,
      rawBody: body,
      headers: { "content-type": "text/plain", "Idempotency-Key": asText },
    });
    expectProblem(plain, 415, "unsupported_media_type");
    // Refused before the key is claimed: the rate limit is its only Redis round trip.
    expect(roundTrips(plain.headers).redis).toBe(1);
    // A body without any Content-Type (bytes, so the Request adds none) claims the key; the 415 releases it.
    const untyped = crypto.randomUUID();
    const bare = await throughWorkerEntry(
      new Request(`http://circle.test${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${commenter.accessToken}`, "Idempotency-Key": untyped },
        body: new TextEncoder().encode(body),
      }),
    );
    expect(bare.status).toBe(415);
    for (const key of [asText, untyped]) {
      const fixed = await comment(commenter, post.id, { content: "fixed" }, key);
      expect(fixed.status, fixed.text).toBe(201);
      expect(fixed.headers.get("idempotent-replayed")).toBeNull();
    }
    expect(await deps.db.comments.find({ postId: new ObjectId(post.id) })).toHaveLength(2);
  });
});

const report = (user: TestUser, body: Record<string, unknown>, key?: string, app?: Fetcher) =>
  call<{ id: string }>(
    "POST",
    "/v1/reports",
    { token: user.accessToken, body, headers: key ? { "Idempotency-Key": key } : {}, ip: uniqueIp() },
    app,
  );

describe("POST /v1/reports with Idempotency-Key", () => {
  it("a retry after a 503 whose write was applied gets the first report back instead of a 409", async () => {
    const [author, reporter] = await crowd(2);
    const post = await publishedPost(author);
    const key = crypto.randomUUID();
    const body = { targetType: "post", targetId: post.id, reason: "spam" };
    expectProblem(await report(reporter, body, key, appWithLateWrites()), 503, "unavailable");
    const applied = await eventually(
      () => deps.db.reports.findOne({ reporterId: new ObjectId(reporter.id), targetId: new ObjectId(post.id) }),
      "the held report write",
    );
    const retry = await report(reporter, body, key);
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body.id).toBe(applied._id.toHexString());
    // Without the key the same report is the usual conflict.
    expectProblem(await report(reporter, body), 409, "conflict");
    expect(await deps.db.reports.find({ targetId: new ObjectId(post.id) })).toHaveLength(1);
    expect((await deps.db.users.findOne({ _id: new ObjectId(author.id) }))?.reportCount).toBe(1);
  });

  it("10 identical requests at once file one report; another body under the key is a 422", async () => {
    const [author, reporter] = await crowd(2);
    const post = await publishedPost(author);
    const key = crypto.randomUUID();
    const body = { targetType: "post", targetId: post.id, reason: "harassment", description: "mean" };
    expectOneAnswer(await Promise.all(Array.from({ length: 10 }, () => report(reporter, body, key))));
    expectProblem(await report(reporter, { ...body, description: "other" }, key), 422, "idempotency_mismatch");
    expect(await deps.db.reports.find({ targetId: new ObjectId(post.id) })).toHaveLength(1);
    expect((await deps.db.users.findOne({ _id: new ObjectId(author.id) }))?.reportCount).toBe(1);
  });
});

describe("POST /v1/posts with Idempotency-Key", () => {
  it("a retry after a 503 whose post was written gets that post instead of a 409; totalPosts moves once", async () => {
    const [author] = await crowd(1);
    const generationId = await completedGeneration(author);
    const key = crypto.randomUUID();
    const publish = (app?: Fetcher, withKey = key) =>
      call<{ id: string }>(
        "POST",
        "/v1/posts",
        { token: author.accessToken, body: { generationId }, headers: withKey ? { "Idempotency-Key": withKey } : {} },
        app,
      );
    expectProblem(await publish(appWithLateWrites({ actions: ["batch"] })), 503, "unavailable");
    const applied = await eventually(
      () => deps.db.posts.findOne({ generationId: new ObjectId(generationId) }),
      "the held post write",
    );
    const retry = await publish();
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body.id).toBe(applied._id.toHexString());
    expectProblem(await publish(undefined, crypto.randomUUID()), 409, "conflict");
    expect((await deps.db.users.findOne({ _id: new ObjectId(author.id) }))?.totalPosts).toBe(1);
    expect(await deps.db.posts.find({ userId: new ObjectId(author.id) })).toHaveLength(1);
  });
});

describe("POST /v1/generations with Idempotency-Key", () => {
  const generate = (user: TestUser, key: string, prompt = "a lighthouse at dusk", app?: Fetcher) =>
    call<{ id: string; quota: { remaining: number } }>(
      "POST",
      "/v1/generations",
      { token: user.accessToken, body: { prompt }, headers: { "Idempotency-Key": key } },
      app,
    );
  const jobsOf = (user: TestUser) => deps.db.generationJobs.find({ userId: new ObjectId(user.id) });
  const quotaUsed = async (user: TestUser) =>
    Number((await deps.redis.get<number>(deps.keys.rateGen(user.id, utcDay(new Date())))) ?? 0);

  it("a retry after a 503 whose job was queued gets that job back: one job, charged at most once", async () => {
    const [user] = await crowd(1);
    const key = crypto.randomUUID();
    const lost = await generate(user, key, undefined, appWithLateWrites({ actions: ["insertOne"] }));
    expectProblem(lost, 503, "unavailable");
    const applied = await eventually(async () => (await jobsOf(user))[0], "the held job insert");
    const retry = await generate(user, key);
    expect(retry.status, retry.text).toBe(202);
    expect(retry.body.id).toBe(applied._id.toHexString());
    expect(await jobsOf(user)).toHaveLength(1);
    expect(await quotaUsed(user)).toBeLessThanOrEqual(1);
    expectProblem(await generate(user, key, "another prompt"), 422, "idempotency_mismatch");
    expect(await jobsOf(user)).toHaveLength(1);
  });

  it("10 identical requests at once queue one job and take one unit of quota", async () => {
    const [user] = await crowd(1);
    const key = crypto.randomUUID();
    const answers = await Promise.all(Array.from({ length: 10 }, () => generate(user, key)));
    for (const r of answers.filter((r) => r.status !== 202)) expectProblem(r, 409, "conflict");
    const ids = new Set(answers.filter((r) => r.status === 202).map((r) => r.body.id));
    expect(ids.size, answers.map((r) => r.status).join(",")).toBe(1);
    expect((await jobsOf(user)).map((j) => j._id.toHexString())).toEqual([...ids]);
    expect(await quotaUsed(user)).toBe(1);
    // Redis forgetting the answer changes nothing: the job's own key finds it.
    await deps.redis.del(deps.keys.idempotency(`generation:${user.id}`, key));
    const again = await generate(user, key);
    expect(again.status).toBe(202);
    expect(again.body.id).toBe([...ids][0]);
    expect(await jobsOf(user)).toHaveLength(1);
    expect(await quotaUsed(user)).toBe(1);
  });
});

describe("POST /v1/auth/signup with Idempotency-Key", () => {
  const signupBody = () => {
    const username = uniqueName("s");
    return {
      username,
      email: `${username}@${TEST_EMAIL_DOMAIN}`,
      password: "correct horse battery",
      ...signupConsents(),
    };
  };
  const signup = (body: Record<string, unknown>, key?: string, app?: Fetcher) =>
    call<{ user: { id: string }; accessToken: string; refreshToken: string }>(
      "POST",
      "/v1/auth/signup",
      { body, headers: key ? { "Idempotency-Key": key } : {}, ip: uniqueIp() },
      app,
    );

  it("a retry after a 503 whose signup was written signs in to that account, once, with its email queued once", async () => {
    const body = signupBody();
    const key = crypto.randomUUID();
    expectProblem(await signup(body, key, appWithLateWrites()), 503, "unavailable");
    const applied = await eventually(
      () => deps.db.users.findOne({ usernameLower: body.username.toLowerCase() }),
      "the held signup",
    );
    const retry = await signup(body, key);
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body.user.id).toBe(applied._id.toHexString());
    const me = await call<{ id: string }>("GET", "/v1/me", { token: retry.body.accessToken });
    expect(me.body.id).toBe(applied._id.toHexString());
    expect(await mailsOf(applied._id.toHexString(), "verify_email")).toHaveLength(1);
    // Without the key the same signup is the usual conflict.
    expectProblem(await signup(body), 409, "conflict");
  });

  it("10 identical signups at once make one account; every answer signs in to it", async () => {
    const body = signupBody();
    const key = crypto.randomUUID();
    const answers = await Promise.all(Array.from({ length: 10 }, () => signup(body, key)));
    expect(answers.map((r) => r.status)).toEqual(Array(10).fill(201));
    expect(new Set(answers.map((r) => r.body.user.id)).size).toBe(1);
    expect(await deps.db.users.find({ usernameLower: body.username.toLowerCase() })).toHaveLength(1);
    const refreshed = await call("POST", "/v1/auth/refresh", { body: { refreshToken: answers[9]!.body.refreshToken } });
    expect(refreshed.status).toBe(200);
  });

  it("a malformed key is a 400 naming it, also when the body is wrong too", async () => {
    for (const key of ["tab\there", "k".repeat(256)]) {
      const res = await signup({ username: "x" }, key);
      expectProblem(res, 400, "validation_failed");
      expect(fieldPaths(res)).toEqual(["idempotency-key"]);
    }
  });

  it("answers 422 for the key with another body or password, and never stores the answer's tokens", async () => {
    const body = signupBody();
    const key = crypto.randomUUID();
    const first = await signup(body, key);
    expect(first.status).toBe(201);
    expectProblem(await signup({ ...body, password: "another long password" }, key), 422, "idempotency_mismatch");
    expectProblem(await signup({ ...body, displayName: "Someone" }, key), 422, "idempotency_mismatch");
    const keys = await deps.redis.keys(`*${key}*`);
    const stored = await Promise.all(keys.map((k) => deps.redis.get<unknown>(k)));
    expect(JSON.stringify(stored)).not.toContain(first.body.refreshToken);
  });
});
