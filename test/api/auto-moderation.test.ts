import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { HeldItem } from "../../src/features/moderation/schema";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { jobDoc } from "../support/generations";
import { fieldPaths } from "../support/problems";
import { crowd, type TestUser, userWithRole } from "../support/users";

// Screening at creation: a high NSFW score from the GPU worker flags a post, a banned word in a prompt or a
// comment holds it pending; held content is hidden from others and waits in the moderator queue, reports or not.
const deps = testDeps();
const WORKER_TOKEN = (env as unknown as Record<string, string>).GPU_WORKER_TOKEN ?? "";
const BANNED = `banned${crypto.randomUUID().slice(0, 8)}`;
const strict = appWith({ POST_BANNED_WORDS: BANNED });

/** A job claimed and completed through the worker API, with what the generator reported. */
async function generatedBy(author: TestUser, completion: Record<string, unknown>): Promise<string> {
  const model = `test-model-${crypto.randomUUID().slice(0, 12)}`;
  const job = jobDoc(model, { userId: new ObjectId(author.id) });
  await deps.db.generationJobs.insertOne(job);
  const id = job._id.toHexString();
  const worker = { token: WORKER_TOKEN };
  const claimed = await call("POST", "/v1/internal/generations/claim", {
    ...worker,
    body: { workerId: "w", models: [model] },
  });
  expect(claimed.status, claimed.text).toBe(200);
  const done = await call("POST", `/v1/internal/generations/${id}/complete`, {
    ...worker,
    body: {
      workerId: "w",
      imageUrl: `https://cdn.example.test/${id}.png`,
      thumbnailUrl: `https://cdn.example.test/${id}.thumb.png`,
      imageWidth: 512,
      imageHeight: 512,
      generationTimeMs: 900,
      ...completion,
    },
  });
  expect(done.status, done.text).toBe(200);
  return id;
}

async function queued(moderator: TestUser, targetId: string): Promise<HeldItem | undefined> {
  let cursor: string | null = null;
  for (let page = 0; page < 50; page++) {
    const res: { status: number; body: { items: HeldItem[]; nextCursor: string | null } } = await call(
      "GET",
      `/v1/admin/moderation-queue?limit=100${cursor ? `&cursor=${cursor}` : ""}`,
      { token: moderator.accessToken },
    );
    expect(res.status).toBe(200);
    const found = res.body.items.find((i) => i.targetId === targetId);
    if (found || !res.body.nextCursor) return found;
    cursor = res.body.nextCursor;
  }
  return undefined;
}

const approve = (moderator: TestUser, targetType: string, targetId: string) =>
  call("POST", "/v1/admin/moderation-actions", {
    token: moderator.accessToken,
    body: { targetType, targetId, action: "approve", reason: "reviewed" },
  });

describe("automatic moderation", () => {
  let moderator: TestUser;
  beforeAll(async () => {
    moderator = await userWithRole("moderator");
  });

  it("flags a post whose image the generator scored over the NSFW threshold, and queues it without a report", async () => {
    const [author, other] = await crowd(2);
    const generationId = await generatedBy(author, {
      nsfwScore: 0.97,
      refinedPrompt: "a refined lighthouse",
      modelVersion: "sdxl-turbo-1.1",
    });
    const post = await call<{ id: string; moderationStatus: string }>("POST", "/v1/posts", {
      token: author.accessToken,
      body: { generationId },
    });
    expect(post.status, post.text).toBe(201);
    expect(post.body.moderationStatus).toBe("flagged");
    const stored = await deps.db.posts.findOne({ _id: new ObjectId(post.body.id) });
    expect(stored).toMatchObject({
      nsfwScore: 0.97,
      refinedPrompt: "a refined lighthouse",
      modelVersion: "sdxl-turbo-1.1",
    });
    expect((await call("GET", `/v1/posts/${post.body.id}`, { token: other.accessToken })).status).toBe(404);

    const item = await queued(moderator, post.body.id);
    expect(item).toMatchObject({ targetType: "post", status: "flagged", source: "nsfw_score", nsfwScore: 0.97 });
    expect((await approve(moderator, "post", post.body.id)).status).toBe(201);
    expect((await call("GET", `/v1/posts/${post.body.id}`, { token: other.accessToken })).status).toBe(200);
    expect(await queued(moderator, post.body.id)).toBeUndefined();
  });

  it("lets an ordinary score through", async () => {
    const [author] = await crowd(1);
    const generationId = await generatedBy(author, { nsfwScore: 0.1 });
    const post = await call<{ moderationStatus: string }>("POST", "/v1/posts", {
      token: author.accessToken,
      body: { generationId },
    });
    expect(post.body.moderationStatus).toBe("approved");
  });

  it("holds a comment with a banned word: hidden from others, not counted, no notice, queued; approval shows it", async () => {
    const [author, commenter, reader] = await crowd(3);
    const generationId = await generatedBy(author, {});
    const post = await call<{ id: string }>("POST", "/v1/posts", { token: author.accessToken, body: { generationId } });
    const held = await call<{ id: string }>(
      "POST",
      `/v1/posts/${post.body.id}/comments`,
      { token: commenter.accessToken, body: { content: `what a ${BANNED.toUpperCase()} picture` } },
      strict,
    );
    expect(held.status, held.text).toBe(201);
    const seen = await call<{ items: { id: string }[] }>("GET", `/v1/posts/${post.body.id}/comments`, {
      token: reader.accessToken,
    });
    expect(seen.body.items.map((c) => c.id)).not.toContain(held.body.id);
    const mine = await call<{ items: { id: string }[] }>("GET", `/v1/posts/${post.body.id}/comments`, {
      token: commenter.accessToken,
    });
    expect(mine.body.items.map((c) => c.id)).toContain(held.body.id);
    expect((await deps.db.posts.findOne({ _id: new ObjectId(post.body.id) }))?.commentCount).toBe(0);
    expect(await deps.db.notifications.findOne({ userId: new ObjectId(author.id), type: "comment" })).toBeNull();

    expect(await queued(moderator, held.body.id)).toMatchObject({
      targetType: "comment",
      status: "pending",
      source: "banned_words",
      postId: post.body.id,
    });
    expect((await approve(moderator, "comment", held.body.id)).status).toBe(201);
    const after = await call<{ items: { id: string }[] }>("GET", `/v1/posts/${post.body.id}/comments`, {
      token: reader.accessToken,
    });
    expect(after.body.items.map((c) => c.id)).toContain(held.body.id);
    expect((await deps.db.posts.findOne({ _id: new ObjectId(post.body.id) }))?.commentCount).toBe(1);
  });

  it("refuses worker fields out of range and non-https image links, naming the field", async () => {
    const id = new ObjectId().toHexString();
    const body = (extra: Record<string, unknown>) => ({
      imageUrl: "https://cdn.example.test/x.png",
      thumbnailUrl: "https://cdn.example.test/x.png",
      imageWidth: 1,
      imageHeight: 1,
      generationTimeMs: 1,
      ...extra,
    });
    const complete = (extra: Record<string, unknown>) =>
      call("POST", `/v1/internal/generations/${id}/complete`, { token: WORKER_TOKEN, body: body(extra) });
    expect(fieldPaths(await complete({ nsfwScore: 1.5 }))).toContain("nsfwScore");
    expect(fieldPaths(await complete({ imageUrl: "javascript:alert(1)" }))).toContain("imageUrl");
    expect(fieldPaths(await complete({ thumbnailUrl: "file:///etc/passwd" }))).toContain("thumbnailUrl");
    expect(fieldPaths(await complete({ imageUrl: "http://cdn.example.test/x.png" }))).toContain("imageUrl");
  });
});
