import { describe, expect, it } from "vitest";
import { call, roundTrips, waits } from "../support/api";
import { publishedPost } from "../support/posts";
import { crowd } from "../support/users";

/**
 * Warm reads wait on no Data API call: read once (cold), then again; the second answer comes from Redis.
 * Round trips and waits come from Server-Timing (deterministic), never from the clock.
 */
describe("warm reads", () => {
  it("answer from Redis alone the second time", async () => {
    const [me, other] = await crowd(2);
    const post = await publishedPost(other);
    await call("POST", `/v1/posts/${post.id}/comments`, { token: me.accessToken, body: { content: "first" } });
    await call("PUT", `/v1/users/${other.id}/follow`, { token: me.accessToken });
    const reads: [string, string, string | undefined][] = [
      ["post", `/v1/posts/${post.id}`, me.accessToken],
      ["me", "/v1/me", me.accessToken],
      ["profile", `/v1/users/${other.username}`, me.accessToken],
      ["profile (anonymous)", `/v1/users/${other.username}`, undefined],
      ["unread count", "/v1/notifications/unread-count", other.accessToken],
      ["notifications", "/v1/notifications", other.accessToken],
      ["flags", "/v1/flags", me.accessToken],
      ["leaderboard", "/v1/leaderboards/daily", me.accessToken],
      ["comments", `/v1/posts/${post.id}/comments`, me.accessToken],
    ];
    // Flags and boards are shared by every caller: another suite's write may drop them between two reads.
    const shared = new Set(["flags", "leaderboard"]);
    for (const [name, path, token] of reads) {
      const cold = await call("GET", path, { token });
      expect(cold.status, `${name}: ${cold.text}`).toBe(200);
      let warm = await call("GET", path, { token });
      if (shared.has(name) && (roundTrips(warm.headers).mongo ?? 0) > 0) warm = await call("GET", path, { token });
      expect(warm.status).toBe(200);
      expect({ name, mongo: roundTrips(warm.headers).mongo }).toEqual({ name, mongo: 0 });
      // At most three Redis waits: the rate limit (with the caller's standing), the cache, one more lookup.
      expect(waits(warm.headers).redis, name).toBeLessThanOrEqual(3);
    }
  });

  it("show every write at once: no cached answer outlives the change it describes", async () => {
    const [me, other] = await crowd(2);
    const post = await publishedPost(other);
    const get = <T>(path: string, token?: string) => call<T>("GET", path, { token }).then((r) => r.body);
    // Warm everything first.
    await get(`/v1/me`, me.accessToken);
    await get(`/v1/users/${other.username}`, me.accessToken);
    await get(`/v1/notifications/unread-count`, other.accessToken);
    await get(`/v1/notifications`, other.accessToken);
    await get(`/v1/posts/${post.id}/comments`, me.accessToken);

    await call("PATCH", "/v1/me", { token: me.accessToken, body: { bio: "fresh bio" } });
    expect((await get<{ bio: string }>("/v1/me", me.accessToken)).bio).toBe("fresh bio");

    await call("PUT", `/v1/users/${other.id}/follow`, { token: me.accessToken });
    const profile = await get<{ viewer: { following: boolean }; followersCount: number }>(
      `/v1/users/${other.username}`,
      me.accessToken,
    );
    expect(profile.viewer.following).toBe(true);
    expect((await get<{ followingCount: number }>("/v1/me", me.accessToken)).followingCount).toBe(1);

    const comment = await call<{ id: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: me.accessToken,
      body: { content: "hello" },
    });
    const comments = await get<{ items: { id: string }[] }>(`/v1/posts/${post.id}/comments`, me.accessToken);
    expect(comments.items.map((c) => c.id)).toContain(comment.body.id);
    expect((await get<{ count: number }>("/v1/notifications/unread-count", other.accessToken)).count).toBe(2);
    const inbox = await get<{ items: { type: string }[] }>("/v1/notifications", other.accessToken);
    expect(inbox.items.map((i) => i.type).sort()).toEqual(["comment", "follow"]);

    await call("POST", "/v1/notifications/read", { token: other.accessToken, body: { all: true } });
    expect((await get<{ count: number }>("/v1/notifications/unread-count", other.accessToken)).count).toBe(0);
    await call("DELETE", `/v1/comments/${comment.body.id}`, { token: me.accessToken });
    const after = await get<{ items: { id: string }[] }>(`/v1/posts/${post.id}/comments`);
    expect(after.items.map((c) => c.id)).not.toContain(comment.body.id);
  });

  it("still show a held comment to its author, and only to them", async () => {
    const [author, commenter, reader] = await crowd(3);
    const post = await publishedPost(author);
    await call("GET", `/v1/posts/${post.id}/comments`); // the public page is cached
    const { testDeps } = await import("../support/deps");
    const deps = testDeps();
    const { ObjectId } = await import("../../src/platform/ids");
    await deps.db.users.updateOne({ _id: new ObjectId(commenter.id) }, { $set: { shadowBanned: true } });
    const held = await call<{ id: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: commenter.accessToken,
      body: { content: "only I can see this" },
    });
    const mine = await call<{ items: { id: string }[] }>("GET", `/v1/posts/${post.id}/comments`, {
      token: commenter.accessToken,
    });
    expect(mine.body.items.map((c) => c.id)).toContain(held.body.id);
    const theirs = await call<{ items: { id: string }[] }>("GET", `/v1/posts/${post.id}/comments`, {
      token: reader.accessToken,
    });
    expect(theirs.body.items.map((c) => c.id)).not.toContain(held.body.id);
  });
});
