import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { eraseUser } from "../../src/features/generations/privacy";
import { ObjectId } from "../../src/platform/ids";
import { call, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { jobDoc } from "../support/generations";
import { completedGeneration } from "../support/posts";
import { crowd, signupConsents, type TestUser, uniqueName } from "../support/users";

// POST /v1/posts of a completed generation, and signing up, wait on one Data API call; a stale cache (the job
// posted meanwhile, a shadow ban the standing missed) lets nothing wrong through.
const deps = testDeps();
const WORKER_TOKEN = (env as unknown as Record<string, string>).GPU_WORKER_TOKEN ?? "";

interface PostBody {
  id: string;
  imageUrl: string;
  prompt: string;
}

const publish = (author: TestUser, generationId: string) =>
  call<PostBody>("POST", "/v1/posts", { token: author.accessToken, body: { generationId } });

/** The author's standing cached, as after any earlier request of theirs. */
const signedIn = async (u: TestUser) =>
  expect((await call("GET", "/v1/me", { token: u.accessToken })).status).toBe(200);

const userDoc = async (id: string) => deps.db.users.findOne({ _id: new ObjectId(id) });
const postsOf = (generationId: string) => deps.db.posts.find({ generationId: new ObjectId(generationId) });

describe("POST /v1/posts waits on one Data API call", () => {
  it("a generation completed by the worker is published with one Data API wait", async () => {
    const [author] = await crowd(1);
    await signedIn(author);
    const model = `test-model-${crypto.randomUUID().slice(0, 12)}`;
    const job = jobDoc(model, { userId: new ObjectId(author.id), prompt: "a harbour in fog" });
    await deps.db.generationJobs.insertOne(job);
    const id = job._id.toHexString();
    const worker = { token: WORKER_TOKEN };
    expect(
      (await call("POST", "/v1/internal/generations/claim", { ...worker, body: { workerId: "w", models: [model] } }))
        .status,
    ).toBe(200);
    const done = await call("POST", `/v1/internal/generations/${id}/complete`, {
      ...worker,
      body: {
        workerId: "w",
        imageUrl: `https://cdn.example.test/${id}.png`,
        thumbnailUrl: `https://cdn.example.test/${id}.thumb.png`,
        imageWidth: 640,
        imageHeight: 480,
        generationTimeMs: 800,
      },
    });
    expect(done.status, done.text).toBe(200);

    const res = await publish(author, id);
    expect(res.status, res.text).toBe(201);
    expect(waits(res.headers)).toMatchObject({ mongo: 1 });
    expect(res.body).toMatchObject({ imageUrl: `https://cdn.example.test/${id}.png`, prompt: "a harbour in fog" });
    expect((await deps.db.generationJobs.findOne({ _id: job._id }))?.postId?.toHexString()).toBe(res.body.id);
    expect((await userDoc(author.id))?.totalPosts).toBe(1);
    // The followers' feed source: the post is there, published, with the job's image.
    const stored = await deps.db.posts.findOne({ _id: new ObjectId(res.body.id) });
    expect(stored).toMatchObject({ status: "published", imageWidth: 640, imageHeight: 480, authorShadowBanned: false });
  });

  it("without the job's cached fields it still publishes, reading the job and the author (two waits)", async () => {
    const [author] = await crowd(1);
    await signedIn(author);
    const generationId = await completedGeneration(author, undefined, { cached: false });
    const res = await publish(author, generationId);
    expect(res.status, res.text).toBe(201);
    expect(waits(res.headers)).toMatchObject({ mongo: 2 });
    expect((await userDoc(author.id))?.totalPosts).toBe(1);
  });

  it("concurrent requests for one cached job make exactly one post; the others get 409 already_posted", async () => {
    const [author] = await crowd(1);
    await signedIn(author);
    const generationId = await completedGeneration(author);
    const answers = await Promise.all(Array.from({ length: 6 }, () => publish(author, generationId)));
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
    for (const a of answers.filter((x) => x.status === 409)) expect(a.text).toContain("already_posted");
    expect(await postsOf(generationId)).toHaveLength(1);
    expect((await userDoc(author.id))?.totalPosts).toBe(1);
  });

  it("a job posted meanwhile (its cached fields still there) is a 409 and makes no second post", async () => {
    const [author] = await crowd(1);
    await signedIn(author);
    const generationId = await completedGeneration(author);
    expect((await publish(author, generationId)).status).toBe(201);
    const again = await publish(author, generationId);
    expect(again.status, again.text).toBe(409);
    expect(again.text).toContain("already_posted");
    expect(await postsOf(generationId)).toHaveLength(1);
    expect((await userDoc(author.id))?.totalPosts).toBe(1);
  });

  it("someone else's cached job is a 404 and is left unposted", async () => {
    const [author, other] = await crowd(2);
    await signedIn(other);
    const generationId = await completedGeneration(author);
    const res = await publish(other, generationId);
    expect(res.status, res.text).toBe(404);
    expect((await deps.db.generationJobs.findOne({ _id: new ObjectId(generationId) }))?.postId).toBeNull();
    expect((await userDoc(other.id))?.totalPosts ?? 0).toBe(0);
  });

  it("a shadow ban the cached standing missed still marks the post (authorShadowBanned) and counts it once", async () => {
    const [author] = await crowd(1);
    await signedIn(author);
    // Banned in MongoDB only: the drop of the standing was lost, so the standing still says not banned.
    await deps.db.users.updateOne({ _id: new ObjectId(author.id) }, { $set: { shadowBanned: true } });
    const generationId = await completedGeneration(author);
    const res = await publish(author, generationId);
    expect(res.status, res.text).toBe(201);
    const stored = await deps.db.posts.findOne({ _id: new ObjectId(res.body.id) });
    expect(stored?.authorShadowBanned).toBe(true);
    expect(await postsOf(generationId)).toHaveLength(1);
    expect((await userDoc(author.id))?.totalPosts).toBe(1);
    // The stale standing was dropped: the next post is marked from a fresh one.
    const next = await publish(author, await completedGeneration(author));
    expect(next.status).toBe(201);
    expect((await deps.db.posts.findOne({ _id: new ObjectId(next.body.id) }))?.authorShadowBanned).toBe(true);
  });

  it("an avatar change the cached standing missed still shows the new avatar on the post", async () => {
    const [author] = await crowd(1);
    await signedIn(author);
    const avatarUrl = `https://cdn.example.test/avatars/${uniqueName()}.png`;
    await deps.db.users.updateOne({ _id: new ObjectId(author.id) }, { $set: { avatarUrl } });
    const res = await publish(author, await completedGeneration(author));
    expect(res.status, res.text).toBe(201);
    expect((await deps.db.posts.findOne({ _id: new ObjectId(res.body.id) }))?.userAvatarUrl).toBe(avatarUrl);
  });
});

describe("erasure of the account", () => {
  it("drops the cached fields (prompt included) of its completed jobs", async () => {
    const [author] = await crowd(1);
    const generationId = await completedGeneration(author, "a private prompt");
    const key = deps.keys.generationPostFacts(generationId);
    expect(await deps.redis.get(key)).not.toBeNull();
    await eraseUser(deps, author.id);
    await eraseUser(deps, author.id); // restartable: a second run changes nothing
    expect(await deps.redis.get(key)).toBeNull();
  });
});

describe("POST /v1/auth/signup waits on one Data API call", () => {
  it("the account, its session and the rest are one call: the new account's relations are cached with no read", async () => {
    const username = uniqueName();
    const res = await call<{ accessToken: string }>("POST", "/v1/auth/signup", {
      body: { username, email: `${username}@example.test`, password: "correct horse battery", ...signupConsents() },
    });
    expect(res.status, res.text).toBe(201);
    expect(waits(res.headers)).toMatchObject({ mongo: 1 });
  });

  it("a block of the new account right after signup applies to it (the relations cached at signup move with it)", async () => {
    const username = uniqueName();
    const [blocker] = await crowd(1);
    const res = await call<{ accessToken: string; user: { id: string } }>("POST", "/v1/auth/signup", {
      body: { username, email: `${username}@example.test`, password: "correct horse battery", ...signupConsents() },
    });
    expect(res.status, res.text).toBe(201);
    expect((await call("PUT", `/v1/users/${res.body.user.id}/block`, { token: blocker.accessToken })).status).toBe(204);
    const follow = await call("PUT", `/v1/users/${blocker.id}/follow`, { token: res.body.accessToken });
    expect(follow.status, follow.text).toBe(404);
  });
});
