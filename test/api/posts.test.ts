import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { completedGeneration, publishedPost } from "../support/posts";
import { expectProblem } from "../support/problems";
import { crowd, type TestUser } from "../support/users";

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
    const { countersJob } = await import("../../src/features/ranking/counters");
    const { runUntilDone } = await import("../support/jobs");
    const [author, ...readers] = await crowd(4);
    const post = await publishedPost(author);
    const views: number[] = [];
    for (const reader of readers) {
      views.push(
        (await call<{ viewCount: number }>("GET", `/v1/posts/${post.id}`, { token: reader.accessToken })).body
          .viewCount,
      );
    }
    expect(views).toEqual([1, 2, 3]);
    const own = await call<{ viewCount: number }>("GET", `/v1/posts/${post.id}`, { token: author.accessToken });
    expect(own.body.viewCount).toBe(3);
    await runUntilDone(countersJob);
    expect((await deps.db.posts.findOne({ _id: new ObjectId(post.id) }))?.viewCount).toBe(3);
    const [late] = await crowd(1);
    const after = await call<{ viewCount: number }>("GET", `/v1/posts/${post.id}`, { token: late.accessToken });
    expect(after.body.viewCount).toBe(4);
  });
});

describe("GET /v1/posts/{id} from the cache", () => {
  it("costs no MongoDB call when warm, signed in or not, and shows edits, comments and moderation at once", async () => {
    const [author, reader] = await crowd(2);
    const post = await publishedPost(author, { tags: ["before"] });
    await call("GET", `/v1/posts/${post.id}`, { token: reader.accessToken });
    const warm = await call<{ tags: string[]; viewer: { voted: boolean } }>("GET", `/v1/posts/${post.id}`, {
      token: reader.accessToken,
    });
    expect(roundTrips(warm.headers)).toMatchObject({ mongo: 0 });
    expect(waits(warm.headers)).toMatchObject({ redis: 3, mongo: 0 });
    expect(roundTrips((await call("GET", `/v1/posts/${post.id}`)).headers)).toMatchObject({ mongo: 0 });
    // Changes show in the very next read.
    await call("PATCH", `/v1/posts/${post.id}`, { token: author.accessToken, body: { tags: ["after"] } });
    await call("PUT", `/v1/posts/${post.id}/vote`, { token: reader.accessToken });
    await call("POST", `/v1/posts/${post.id}/comments`, { token: reader.accessToken, body: { content: "nice" } });
    const fresh = await call<{ tags: string[]; commentCount: number; voteCount: number; viewer: { voted: boolean } }>(
      "GET",
      `/v1/posts/${post.id}`,
      { token: reader.accessToken },
    );
    expect(fresh.body).toMatchObject({ tags: ["after"], commentCount: 1, voteCount: 1, viewer: { voted: true } });
    await call("DELETE", `/v1/posts/${post.id}`, { token: author.accessToken });
    expect((await call("GET", `/v1/posts/${post.id}`, { token: reader.accessToken })).status).toBe(404);
  });
});

describe("pinned posts", () => {
  const pin = (user: TestUser, postId: string, isPinned = true) =>
    call<{ isPinned: boolean }>("PATCH", `/v1/posts/${postId}`, { token: user.accessToken, body: { isPinned } });
  const listOf = (viewer: TestUser | null, authorId: string, query = "") =>
    call<{ items: { id: string; isPinned: boolean }[]; nextCursor: string | null }>(
      "GET",
      `/v1/users/${authorId}/posts${query}`,
      viewer ? { token: viewer.accessToken } : {},
    );

  it("lead the author's list, newest pin first, and never repeat on later pages", async () => {
    const [author, reader] = await crowd(2);
    const posts = [];
    for (let i = 0; i < 6; i++) posts.push(await publishedPost(author));
    const [p0, p1, , p3] = posts as [(typeof posts)[0], (typeof posts)[0], unknown, (typeof posts)[0]];
    for (const p of [p0, p3, p1]) expect((await pin(author, p.id)).status).toBe(200);

    const first = await listOf(reader, author.id, "?limit=2");
    expect(first.body.items.map((p) => p.id)).toEqual([p1.id, p3.id, p0.id, posts[5]?.id, posts[4]?.id]);
    expect(first.body.items.slice(0, 3).every((p) => p.isPinned)).toBe(true);
    const second = await listOf(reader, author.id, `?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((p) => p.id)).toEqual([posts[2]?.id]);
    expect(second.body.nextCursor).toBeNull();
  });

  it("allows at most three: a fourth is a 409 pin_limit, even when four are pinned at once", async () => {
    const [author] = await crowd(1);
    const posts = await Promise.all(Array.from({ length: 5 }, () => publishedPost(author)));
    const answers = await Promise.all(posts.map((p) => pin(author, p.id)));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(3);
    const refused = answers.filter((a) => a.status === 409);
    expect(refused).toHaveLength(2);
    for (const r of refused) expect(expectProblem(r, 409, "conflict").reason).toBe("pin_limit");
    const pinned = await deps.db.posts.find({ userId: new ObjectId(author.id), isPinned: true });
    expect(pinned).toHaveLength(3);
    // Unpinning frees a slot; deleting a pinned post frees one too.
    const [kept] = pinned as [(typeof pinned)[0]];
    expect((await pin(author, kept._id.toHexString(), false)).status).toBe(200);
    const freed = posts.find((p) => !pinned.some((d) => d._id.toHexString() === p.id));
    expect((await pin(author, freed?.id ?? "")).status).toBe(200);
    const victim = pinned[1]?._id.toHexString() ?? "";
    expect((await call("DELETE", `/v1/posts/${victim}`, { token: author.accessToken })).status).toBe(204);
    expect((await pin(author, kept._id.toHexString())).status).toBe(200);
  });
});
