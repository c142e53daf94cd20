import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { completedGeneration, publishedPost } from "../support/posts";
import { crowd } from "../support/users";

const deps = testDeps();

describe("POST /v1/posts", () => {
  it("publishes a completed generation once, with the author denormalized and tags normalized", async () => {
    const [author] = await crowd(1);
    const generationId = await completedGeneration(author);
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        call<{ id: string; username: string; tags: string[]; hasWatermark: boolean; shareableUrl: string }>(
          "POST",
          "/v1/posts",
          {
            token: author.accessToken,
            body: { generationId, tags: ["#Sunset", "sunset", "Sea"], category: "Landscape" },
          },
        ),
      ),
    );
    const created = responses.filter((r) => r.status === 201);
    expect(created).toHaveLength(1);
    expect(responses.filter((r) => r.status === 409)).toHaveLength(9);
    const post = created[0]!.body;
    expect(post).toMatchObject({ username: author.username, tags: ["sunset", "sea"], hasWatermark: true });
    expect(post.shareableUrl).toContain(post.id);
    expect((await deps.db.users.findOne({ _id: new ObjectId(author.id) }))?.totalPosts).toBe(1);
  });

  it("answers 404 for someone else's generation and 400 for bad input", async () => {
    const [author, other] = await crowd(2);
    const generationId = await completedGeneration(author);
    expect((await call("POST", "/v1/posts", { token: other.accessToken, body: { generationId } })).status).toBe(404);
    const bad = await call<{ errors: { path: string }[] }>("POST", "/v1/posts", {
      token: author.accessToken,
      body: { generationId, tags: Array.from({ length: 11 }, (_, i) => `t${i}`), visibility: "everyone" },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e) => e.path)).toEqual(expect.arrayContaining(["tags", "visibility"]));
    expect(
      (await call("POST", "/v1/posts", { token: author.accessToken, body: { generationId, voteCount: 5 } })).status,
    ).toBe(400);
  });

  it("holds back a post whose prompt has a banned word (pending, out of feeds)", async () => {
    const { appWith } = await import("../support/deps");
    const strict = appWith({ POST_BANNED_WORDS: "forbiddenword" });
    const [author, other] = await crowd(2);
    const generationId = await completedGeneration(author, "a forbiddenword in the sky");
    const res = await call<{ id: string; moderationStatus: string }>(
      "POST",
      "/v1/posts",
      { token: author.accessToken, body: { generationId } },
      strict,
    );
    expect(res.body.moderationStatus).toBe("pending");
    expect((await call("GET", `/v1/posts/${res.body.id}`, { token: other.accessToken })).status).toBe(404);
    expect((await call("GET", `/v1/posts/${res.body.id}`, { token: author.accessToken })).status).toBe(200);
  });
});

describe("post visibility, edits and deletion", () => {
  it("shows private posts only to the author and followers-only posts only to followers", async () => {
    const [author, follower, stranger] = await crowd(3);
    const priv = await publishedPost(author, { visibility: "private" });
    const fol = await publishedPost(author, { visibility: "followers" });
    await call("PUT", `/v1/users/${author.id}/follow`, { token: follower.accessToken });
    expect((await call("GET", `/v1/posts/${priv.id}`, { token: follower.accessToken })).status).toBe(404);
    expect((await call("GET", `/v1/posts/${priv.id}`)).status).toBe(404);
    expect((await call("GET", `/v1/posts/${fol.id}`, { token: follower.accessToken })).status).toBe(200);
    expect((await call("GET", `/v1/posts/${fol.id}`, { token: stranger.accessToken })).status).toBe(404);
    expect((await call("GET", `/v1/posts/${priv.id}`, { token: author.accessToken })).status).toBe(200);
  });

  it("lets only the author edit and delete, and keeps totalPosts exact", async () => {
    const [author, other] = await crowd(2);
    const post = await publishedPost(author);
    expect(
      (await call("PATCH", `/v1/posts/${post.id}`, { token: other.accessToken, body: { isPinned: true } })).status,
    ).toBe(404);
    const edited = await call<{ isPinned: boolean; tags: string[] }>("PATCH", `/v1/posts/${post.id}`, {
      token: author.accessToken,
      body: { isPinned: true, tags: ["Moon"] },
    });
    expect(edited.body).toMatchObject({ isPinned: true, tags: ["moon"] });
    expect(
      (await call("PATCH", `/v1/posts/${post.id}`, { token: author.accessToken, body: { voteCount: 9 } })).status,
    ).toBe(400);
    expect((await call("DELETE", `/v1/posts/${post.id}`, { token: other.accessToken })).status).toBe(404);
    const deletes = await Promise.all(
      Array.from({ length: 5 }, () => call("DELETE", `/v1/posts/${post.id}`, { token: author.accessToken })),
    );
    expect(deletes.filter((r) => r.status === 204)).toHaveLength(1);
    expect((await call("GET", `/v1/posts/${post.id}`, { token: author.accessToken })).status).toBe(404);
    expect((await deps.db.users.findOne({ _id: new ObjectId(author.id) }))?.totalPosts).toBe(0);
  });

  it("counts views by others (not the author) and writes them to MongoDB with the counters job", async () => {
    const { countersJob } = await import("../../src/features/votes/counters");
    const { runJob } = await import("../../src/scheduler/runner");
    const [author, reader] = await crowd(2);
    const post = await publishedPost(author);
    const views: number[] = [];
    for (let i = 0; i < 3; i++) {
      views.push(
        (await call<{ viewCount: number }>("GET", `/v1/posts/${post.id}`, { token: reader.accessToken })).body
          .viewCount,
      );
    }
    expect(views).toEqual([1, 2, 3]);
    const own = await call<{ viewCount: number }>("GET", `/v1/posts/${post.id}`, { token: author.accessToken });
    expect(own.body.viewCount).toBe(0);
    for (let i = 0; i < 5; i++)
      if ((await runJob(deps, countersJob, { trigger: "test" })).outcome === "succeeded") break;
    expect((await deps.db.posts.findOne({ _id: new ObjectId(post.id) }))?.viewCount).toBe(3);
    const after = await call<{ viewCount: number }>("GET", `/v1/posts/${post.id}`, { token: reader.accessToken });
    expect(after.body.viewCount).toBe(4);
  });

  it("counts shares and returns the shareable URL", async () => {
    const [author] = await crowd(1);
    const post = await publishedPost(author);
    const shares = await Promise.all(
      Array.from({ length: 5 }, () =>
        call<{ shareCount: number; shareableUrl: string }>("POST", `/v1/posts/${post.id}/share`),
      ),
    );
    expect(Math.max(...shares.map((s) => s.body.shareCount))).toBe(5);
    expect(shares[0]!.body.shareableUrl).toContain(post.id);
  });
});
