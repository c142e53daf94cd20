import { describe, expect, it } from "vitest";
import { forgetStanding } from "../../src/core/standing";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { publishedPost } from "../support/posts";
import { crowd } from "../support/users";

const deps = testDeps();

interface Thread {
  id: string;
  content: string | null;
  repliesCount: number;
  deleted: boolean;
  isEdited: boolean;
  replies: { id: string; content: string | null }[];
}

const commentCount = async (postId: string) =>
  (await deps.db.posts.findOne({ _id: new ObjectId(postId) }))?.commentCount;

describe("comments", () => {
  it("threads replies under their top-level comment and keeps counts exact under concurrency", async () => {
    const [author, a, b] = await crowd(3);
    const post = await publishedPost(author);
    const top = await call<{ id: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: a.accessToken,
      body: { content: "Lovely light" },
    });
    expect(top.status).toBe(201);
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call<{ id: string; parentId: string }>("POST", `/v1/posts/${post.id}/comments`, {
          token: b.accessToken,
          body: { content: `reply ${i}`, parentId: top.body.id },
        }),
      ),
    );
    expectEvery(replies, (r) => r.status === 201 && r.body.parentId === top.body.id);
    // A reply to a reply joins the same thread.
    const nested = await call<{ parentId: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: a.accessToken,
      body: { content: "thanks", parentId: replies[0]!.body.id },
    });
    expect(nested.body.parentId).toBe(top.body.id);
    expect(await commentCount(post.id)).toBe(22);
    const list = await call<{ items: Thread[] }>("GET", `/v1/posts/${post.id}/comments`);
    expect(list.body.items).toHaveLength(1);
    expect(list.body.items[0]).toMatchObject({ repliesCount: 21 });
    expect(list.body.items[0]!.replies).toHaveLength(21);
  });

  it("lets the author edit (marked edited) and delete; a moderator may delete; others get 404", async () => {
    const [author, writer, other] = await crowd(3);
    const post = await publishedPost(author);
    const c = await call<{ id: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: writer.accessToken,
      body: { content: "first" },
    });
    expect(
      (await call("PATCH", `/v1/comments/${c.body.id}`, { token: other.accessToken, body: { content: "x" } })).status,
    ).toBe(404);
    const edited = await call<{ content: string; isEdited: boolean }>("PATCH", `/v1/comments/${c.body.id}`, {
      token: writer.accessToken,
      body: { content: "first, edited" },
    });
    expect(edited.body).toMatchObject({ content: "first, edited", isEdited: true });
    expect((await call("DELETE", `/v1/comments/${c.body.id}`, { token: other.accessToken })).status).toBe(404);
    const deletes = await Promise.all(
      Array.from({ length: 5 }, () => call("DELETE", `/v1/comments/${c.body.id}`, { token: writer.accessToken })),
    );
    expect(deletes.filter((r) => r.status === 204)).toHaveLength(1);
    expect(await commentCount(post.id)).toBe(0);

    const second = await call<{ id: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: writer.accessToken,
      body: { content: "again" },
    });
    await deps.db.users.updateOne({ _id: new ObjectId(other.id) }, { $set: { role: "moderator" } });
    // As an admin's role change would: the account's standing (read on every request) is rebuilt.
    await forgetStanding(deps, other.id);
    const { signAccessToken } = await import("../../src/platform/tokens");
    const { tokenSettingsOf } = await import("../../src/platform/tokens");
    const modToken = await signAccessToken(
      { sub: other.id, sid: new ObjectId().toHexString(), role: "moderator", tier: "free" },
      tokenSettingsOf(deps.config.auth),
      new Date(),
    );
    expect((await call("DELETE", `/v1/comments/${second.body.id}`, { token: modToken })).status).toBe(204);
    expect((await deps.db.comments.findOne({ _id: new ObjectId(second.body.id) }))?.deletedBy).toBe("moderator");
  });

  it("edits and deletes with one MongoDB wait each; the counts follow the delete once", async () => {
    const [author, fan] = await crowd(2);
    const post = await publishedPost(author);
    const top = await call<{ id: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: fan.accessToken,
      body: { content: "first" },
    });
    const reply = await call<{ id: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: fan.accessToken,
      body: { content: "second", parentId: top.body.id },
    });
    expect(await commentCount(post.id)).toBe(2);
    const edited = await call("PATCH", `/v1/comments/${reply.body.id}`, {
      token: fan.accessToken,
      body: { content: "second, edited" },
    });
    expect(edited.status, edited.text).toBe(200);
    expect(waits(edited.headers)).toMatchObject({ mongo: 1 });
    // Deleted twice at once: one delete, counted down once.
    const deletes = await Promise.all(
      [1, 2].map(() => call("DELETE", `/v1/comments/${reply.body.id}`, { token: fan.accessToken })),
    );
    expect(deletes.map((r) => r.status).sort()).toEqual([204, 404]);
    expectEvery(deletes, (r) => waits(r.headers).mongo === 1, "deletes' MongoDB waits");
    expect(await commentCount(post.id)).toBe(1);
    expect((await deps.db.comments.findOne({ _id: new ObjectId(top.body.id) }))?.repliesCount).toBe(0);
    const deleted = await deps.db.comments.findOne({ _id: new ObjectId(reply.body.id) });
    expect(deleted?.deletedBy).toBe("author");
    const shown = await call<{ commentCount: number }>("GET", `/v1/posts/${post.id}`);
    expect(shown.body.commentCount).toBe(1);
  });

  it("rejects empty or too long content, a parent from another post, and comments on invisible posts", async () => {
    const [author, writer] = await crowd(2);
    const post = await publishedPost(author);
    const other = await publishedPost(author);
    const priv = await publishedPost(author, { visibility: "private" });
    const on = (id: string, body: unknown) =>
      call<{ errors?: { path: string }[] }>("POST", `/v1/posts/${id}/comments`, { token: writer.accessToken, body });
    expect((await on(post.id, { content: "   " })).body.errors?.[0]?.path).toBe("content");
    expect((await on(post.id, { content: "x".repeat(1001) })).status).toBe(400);
    const c = await on(other.id, { content: "elsewhere" });
    expect((await on(post.id, { content: "hi", parentId: (c.body as unknown as { id: string }).id })).status).toBe(404);
    expect((await on(priv.id, { content: "hi" })).status).toBe(404);
    expect((await call("GET", `/v1/posts/${priv.id}/comments`, { token: writer.accessToken })).status).toBe(404);
  });

  it("comments and replies wait on one Data API call, also once the post's cached copy is gone", async () => {
    const [author, fan, other] = await crowd(3);
    const post = await publishedPost(author);
    await call("GET", `/v1/posts/${post.id}`, { token: fan.accessToken }); // as the app does: the post is on screen
    const top = await call<{ id: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: fan.accessToken,
      body: { content: "Lovely light" },
    });
    expect(top.status, top.text).toBe(201);
    expect(waits(top.headers)).toMatchObject({ mongo: 1 });
    expect(roundTrips(top.headers)).toMatchObject({ mongo: 1 });
    // The comment dropped the post's copy (its count moved); the reply finds the post's lasting facts and the
    // parent's facts in Redis.
    const reply = await call<{ parentId: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: other.accessToken,
      body: { content: "Agreed", parentId: top.body.id },
    });
    expect(reply.status, reply.text).toBe(201);
    expect(reply.body.parentId).toBe(top.body.id);
    expect(waits(reply.headers)).toMatchObject({ mongo: 1 });
    expect(roundTrips(reply.headers)).toMatchObject({ mongo: 1 });
    // What they owed followed the answers, once each.
    expect(await commentCount(post.id)).toBe(2);
    expect((await deps.db.comments.findOne({ _id: new ObjectId(top.body.id) }))?.repliesCount).toBe(1);
    const shown = await call<{ commentCount: number }>("GET", `/v1/posts/${post.id}`, { token: fan.accessToken });
    expect(shown.body.commentCount).toBe(2);
    const inbox = await deps.db.notifications.find({ userId: new ObjectId(author.id) });
    expect(inbox.map((n) => [n.type, n.aggregationCount])).toEqual([["comment", 2]]);
    // Read once (cold), the page then waits on Redis alone: the post's copy and the page, looked up together.
    const path = `/v1/posts/${post.id}/comments`;
    expect((await call("GET", path, { token: fan.accessToken })).status).toBe(200);
    const warm = await call<{ items: { replies: unknown[] }[] }>("GET", path, { token: fan.accessToken });
    expect(warm.body.items[0]?.replies).toHaveLength(1);
    expect(waits(warm.headers)).toMatchObject({ redis: 2, mongo: 0 });
  });

  it("lets no stale cache through: a post or parent gone since it was cached, a standing that missed a ban", async () => {
    const [author, fan] = await crowd(2);
    const post = await publishedPost(author);
    const top = await call<{ id: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: fan.accessToken,
      body: { content: "first" },
    });
    const on = (postId: string, body: Record<string, unknown>) =>
      call("POST", `/v1/posts/${postId}/comments`, { token: fan.accessToken, body });
    // The parent deleted while its facts stayed cached: the reply's own transaction finds it gone.
    await deps.db.comments.updateOne({ _id: new ObjectId(top.body.id) }, { $set: { deletedAt: new Date() } });
    const orphan = await on(post.id, { content: "reply", parentId: top.body.id });
    expect(orphan.status, orphan.text).toBe(404);
    expect(waits(orphan.headers)).toMatchObject({ mongo: 1 });

    // Posts deleted or hidden while their cached copy stayed (a drop that failed).
    const deleted = await publishedPost(author);
    const hidden = await publishedPost(author);
    for (const p of [deleted, hidden]) await call("GET", `/v1/posts/${p.id}`, { token: fan.accessToken });
    await deps.db.posts.updateOne({ _id: new ObjectId(deleted.id) }, { $set: { deletedAt: new Date() } });
    await deps.db.posts.updateOne({ _id: new ObjectId(hidden.id) }, { $set: { moderationStatus: "flagged" } });
    for (const p of [deleted, hidden]) expect((await on(p.id, { content: "hi" })).status).toBe(404);
    const mine = await deps.db.comments.find({ userId: new ObjectId(fan.id) });
    expect(mine.map((c) => c._id.toHexString())).toEqual([top.body.id]);

    // A shadow ban whose standing drop failed: the comment is recorded as the ban says, hidden and not counted.
    await deps.db.users.updateOne({ _id: new ObjectId(fan.id) }, { $set: { shadowBanned: true } });
    const shadowed = await on(post.id, { content: "still here?" });
    expect(shadowed.status, shadowed.text).toBe(201);
    const stored = await deps.db.comments.findOne({ _id: new ObjectId((shadowed.body as { id: string }).id) });
    expect(stored?.authorShadowBanned).toBe(true);
    // Only the first comment counts (its deletion above went around the API).
    expect(await commentCount(post.id)).toBe(1);
  });

  it("copies the author's current avatar, also when the standing still holds the old one", async () => {
    const [author, fan] = await crowd(2);
    const post = await publishedPost(author);
    const avatarOf = async (body: unknown) =>
      (await deps.db.comments.findOne({ _id: new ObjectId((body as { id: string }).id) }))?.userAvatarUrl;
    const patched = await call("PATCH", "/v1/me", {
      token: fan.accessToken,
      body: { avatarUrl: "https://cdn.example.test/new.png" },
    });
    expect(patched.status, patched.text).toBe(200);
    const first = await call("POST", `/v1/posts/${post.id}/comments`, {
      token: fan.accessToken,
      body: { content: "a" },
    });
    expect(await avatarOf(first.body)).toBe("https://cdn.example.test/new.png");
    // Changed behind the standing's back (its drop failed): the write's own check catches it.
    await deps.db.users.updateOne(
      { _id: new ObjectId(fan.id) },
      { $set: { avatarUrl: "https://cdn.example.test/newer.png" } },
    );
    const second = await call("POST", `/v1/posts/${post.id}/comments`, {
      token: fan.accessToken,
      body: { content: "b" },
    });
    expect(second.status, second.text).toBe(201);
    expect(await avatarOf(second.body)).toBe("https://cdn.example.test/newer.png");
  });
});
