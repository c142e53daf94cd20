import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips } from "../support/api";
import { testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { grant } from "../support/gems";
import { publishedPost } from "../support/posts";
import { expectProblem } from "../support/problems";
import { crowd, type TestUser, uniqueName } from "../support/users";

const deps = testDeps();

interface Profile {
  id: string;
  followersCount: number;
  followingCount: number;
  viewer?: { following: boolean; followedBy: boolean; blocked: boolean; muted: boolean };
}
interface Page {
  items: { id: string; userId?: string; username?: string }[];
  nextCursor: string | null;
}

const block = (who: TestUser, target: TestUser) =>
  call("PUT", `/v1/users/${target.id}/block`, { token: who.accessToken });
const mute = (who: TestUser, target: TestUser) =>
  call("PUT", `/v1/users/${target.id}/mute`, { token: who.accessToken });
const follow = (who: TestUser, target: TestUser) =>
  call("PUT", `/v1/users/${target.id}/follow`, { token: who.accessToken });
const profileOf = (target: TestUser, viewer?: TestUser) =>
  call<Profile>("GET", `/v1/users/${target.username}`, { token: viewer?.accessToken });
const idsOf = (page: { body: Page }) => page.body.items.map((i) => i.id);

describe("PUT/DELETE /v1/users/{id}/block", () => {
  it("refuses yourself with a 400 naming id and unknown people with a 404", async () => {
    const [me] = await crowd(1);
    const self = await block(me, me);
    expectProblem(self, 400, "validation_failed");
    expect(JSON.stringify(self.body)).toContain('"id"');
    const ghost = { ...me, id: new ObjectId().toHexString() };
    expectProblem(await block(me, ghost), 404, "not_found");
  });

  it("is idempotent under concurrency: one block, every call 204", async () => {
    const [me, them] = await crowd(2);
    const calls = await Promise.all(Array.from({ length: 10 }, () => block(me, them)));
    expectEvery(calls, (r) => r.status === 204);
    const docs = await deps.db.blocks.find({ userId: new ObjectId(me.id), targetId: new ObjectId(them.id) });
    expect(docs).toHaveLength(1);
    const list = await call<Page>("GET", "/v1/me/blocks", { token: me.accessToken });
    expect(idsOf(list)).toEqual([them.id]);
  });

  it("ends the follows both ways, with exact counters, even racing new follows", async () => {
    const [a, b] = await crowd(2);
    await follow(a, b);
    await follow(b, a);
    await Promise.all([block(a, b), follow(a, b), follow(b, a), block(a, b)]);
    expect(await deps.db.follows.find({ followerId: { $in: [new ObjectId(a.id), new ObjectId(b.id)] } })).toEqual([]);
    const people = await deps.db.users.find({ _id: { $in: [new ObjectId(a.id), new ObjectId(b.id)] } });
    expectEvery(people, (p) => p.followersCount === 0 && p.followingCount === 0);
    // Neither can follow again while the block stands.
    expectProblem(await follow(a, b), 404, "not_found");
    expectProblem(await follow(b, a), 404, "not_found");
  });

  it("makes each invisible and untouchable to the other, both ways", async () => {
    const [blocker, blocked, bystander] = await crowd(3);
    await grant(blocker, 100);
    await grant(blocked, 100);
    const byBlocker = await publishedPost(blocker);
    const byBlocked = await publishedPost(blocked);
    const theirComment = await call<{ id: string }>("POST", `/v1/posts/${byBlocker.id}/comments`, {
      token: blocked.accessToken,
      body: { content: "before the block" },
    });
    const myComment = await call<{ id: string }>("POST", `/v1/posts/${byBlocked.id}/comments`, {
      token: blocker.accessToken,
      body: { content: "also before" },
    });
    expect(await block(blocker, blocked)).toMatchObject({ status: 204 });

    for (const [me, other, theirPost, theirCommentId, otherPost] of [
      [blocker, blocked, byBlocked, theirComment.body.id, byBlocker],
      [blocked, blocker, byBlocker, myComment.body.id, byBlocked],
    ] as const) {
      const token = me.accessToken;
      expectProblem(await profileOf(other, me), 404, "not_found");
      expectProblem(await call("GET", `/v1/posts/${theirPost.id}`, { token }), 404, "not_found");
      expectProblem(await call("GET", `/v1/users/${other.id}/posts`, { token }), 404, "not_found");
      expectProblem(await call("PUT", `/v1/posts/${theirPost.id}/vote`, { token }), 404, "not_found");
      expectProblem(await call("POST", `/v1/posts/${theirPost.id}/share`, { token }), 404, "not_found");
      expectProblem(
        await call("POST", `/v1/posts/${theirPost.id}/comments`, { token, body: { content: "hi" } }),
        404,
        "not_found",
      );
      // A reply to the other's comment on a post both could see.
      expectProblem(
        await call("POST", `/v1/posts/${otherPost.id}/comments`, {
          token,
          body: { content: "reply", parentId: theirCommentId },
        }),
        404,
        "not_found",
      );
      expectProblem(
        await call("POST", `/v1/users/${other.id}/gifts`, {
          token,
          body: { amount: 10 },
          headers: { "Idempotency-Key": crypto.randomUUID() },
        }),
        404,
        "not_found",
      );
      expectProblem(
        await call("POST", "/v1/reports", { token, body: { targetType: "user", targetId: other.id, reason: "spam" } }),
        404,
        "not_found",
      );
    }
    // The other's comments are gone from threads each can still open…
    const thread = await call<Page>("GET", `/v1/posts/${byBlocker.id}/comments`, { token: blocker.accessToken });
    expect(idsOf(thread)).not.toContain(theirComment.body.id);
    // …while everyone else sees both people as before.
    expect((await profileOf(blocked, bystander)).status).toBe(200);
    const open = await call<Page>("GET", `/v1/posts/${byBlocker.id}/comments`, { token: bystander.accessToken });
    expect(idsOf(open)).toContain(theirComment.body.id);
  });

  it("leaves the other's posts out of every feed, the cached first page included, at no extra round trip", async () => {
    const [viewer, blocked, other] = await crowd(3);
    const tag = uniqueName("t").toLowerCase();
    const hidden = await publishedPost(blocked, { tags: [tag] });
    const shown = await publishedPost(other, { tags: [tag] });
    // Warm the viewer's relations and the shared first page, then block.
    await call("GET", "/v1/feeds/new", { token: viewer.accessToken });
    await block(viewer, blocked);
    const first = await call<Page>("GET", "/v1/feeds/new", { token: viewer.accessToken });
    expect(idsOf(first)).toContain(shown.id);
    expect(idsOf(first)).not.toContain(hidden.id);
    const again = await call<Page>("GET", "/v1/feeds/new", { token: viewer.accessToken });
    // Redis only: the rate limit, cached page and relations together, then viewer.voted; no MongoDB call.
    expect(roundTrips(again.headers)).toMatchObject({ redis: 2, mongo: 0 });
    const anonymous = await call<Page>("GET", "/v1/feeds/new");
    expect(roundTrips(anonymous.headers)).toMatchObject({ redis: 1, mongo: 0 });
    // Pages after the first, and the tag feed.
    const later = await call<Page>("GET", "/v1/feeds/new?limit=50", { token: viewer.accessToken });
    expect(idsOf(later)).not.toContain(hidden.id);
    const tagged = await call<Page>("GET", `/v1/tags/${tag}/posts`, { token: viewer.accessToken });
    expect(idsOf(tagged)).toEqual([shown.id]);
    // The blocked person doesn't see the blocker's posts either.
    const mine = await publishedPost(viewer, { tags: [tag] });
    const theirs = await call<Page>("GET", `/v1/tags/${tag}/posts`, { token: blocked.accessToken });
    expect(idsOf(theirs)).not.toContain(mine.id);
    expect(idsOf(theirs)).toContain(shown.id);
  });

  it("drops the notifications between them and records no new ones", async () => {
    const [author, fan] = await crowd(2);
    const post = await publishedPost(author);
    await call("PUT", `/v1/posts/${post.id}/vote`, { token: fan.accessToken });
    await follow(fan, author);
    const count = async () =>
      (await call<{ count: number }>("GET", "/v1/notifications/unread-count", { token: author.accessToken })).body
        .count;
    expect(await count()).toBe(2);
    await block(author, fan);
    expect(await count()).toBe(0);
    const list = await call<Page>("GET", "/v1/notifications", { token: author.accessToken });
    expect(list.body.items).toEqual([]);
  });

  it("undoes with DELETE (idempotent): both see each other again, and the follows stay ended", async () => {
    const [a, b] = await crowd(2);
    await follow(a, b);
    await block(b, a);
    const unblocks = await Promise.all(
      Array.from({ length: 5 }, () => call("DELETE", `/v1/users/${a.id}/block`, { token: b.accessToken })),
    );
    expectEvery(unblocks, (r) => r.status === 204);
    expect((await profileOf(a, b)).body.viewer).toEqual({
      following: false,
      followedBy: false,
      blocked: false,
      muted: false,
    });
    expect((await profileOf(b, a)).status).toBe(200);
    expect(idsOf(await call<Page>("GET", "/v1/me/blocks", { token: b.accessToken }))).toEqual([]);
  });

  it("holds when its cached relations are rebuilt while blocks change (the rebuild never caches a stale set)", async () => {
    const [me, ...others] = await crowd(6);
    const drop = () => deps.redis.del(deps.keys.relations(me.id));
    // Many rebuilds (reads with the set dropped) racing blocks and unblocks.
    await Promise.all(
      others.flatMap((o, i) => [
        drop().then(() => profileOf(o, me)),
        i % 2 === 0
          ? block(me, o)
          : block(me, o).then(() => call("DELETE", `/v1/users/${o.id}/block`, { token: me.accessToken })),
        drop().then(() => call("GET", "/v1/feeds/new?limit=5", { token: me.accessToken })),
      ]),
    );
    const statuses = await Promise.all(others.map(async (o) => (await profileOf(o, me)).status));
    expect(statuses).toEqual(others.map((_, i) => (i % 2 === 0 ? 404 : 200)));
  });
});

describe("the cached relations", () => {
  it("refuse a rebuild that read MongoDB before a change landed (it would cache a stale set)", async () => {
    const [me, them] = await crowd(2);
    const { fillGuardedSet, readGuardedSet, runOp } = await import("../../src/platform/redis-ops");
    const key = deps.keys.relations(me.id);
    const generationKey = deps.keys.relationsGeneration(me.id);
    await deps.redis.del(key);
    // A rebuild starts: the set is missing, and MongoDB (read now) holds no block yet…
    const before = await runOp(deps.redis, readGuardedSet(key, generationKey));
    expect(before.members).toBeNull();
    // …the block lands…
    expect((await block(me, them)).status).toBe(204);
    // …and the rebuild's result, written last, is refused.
    expect(await runOp(deps.redis, fillGuardedSet(key, generationKey, before.generation, [], 60))).toBe(false);
    expectProblem(await profileOf(them, me), 404, "not_found");
    // A rebuild that started after the change is cached.
    const after = await runOp(deps.redis, readGuardedSet(key, generationKey));
    expect(after.members).not.toBeNull();
    expect(after.members).toContain(`b>${them.id}`);
  });
});

describe("PUT/DELETE /v1/users/{id}/mute", () => {
  it("takes the muted person out of the muter's feeds and notifications, silently and one way", async () => {
    const [muter, muted] = await crowd(2);
    await follow(muter, muted);
    const post = await publishedPost(muted);
    const mine = await publishedPost(muter);
    expect((await mute(muter, muted)).status).toBe(204);
    const following = await call<Page>("GET", "/v1/feeds/following", { token: muter.accessToken });
    expect(idsOf(following)).not.toContain(post.id);
    const recent = await call<Page>("GET", "/v1/feeds/new?limit=50", { token: muter.accessToken });
    expect(idsOf(recent)).not.toContain(post.id);
    // Still following, still reachable directly; the muted person sees and may act as before.
    expect((await profileOf(muted, muter)).body.viewer).toEqual({
      following: true,
      followedBy: false,
      blocked: false,
      muted: true,
    });
    expect((await call("GET", `/v1/posts/${post.id}`, { token: muter.accessToken })).status).toBe(200);
    expect((await call("PUT", `/v1/posts/${mine.id}/vote`, { token: muted.accessToken })).status).toBe(200);
    expect((await profileOf(muter, muted)).body.viewer).toMatchObject({ followedBy: true, blocked: false });
    // …but the muter hears nothing of it.
    const unread = await call<{ count: number }>("GET", "/v1/notifications/unread-count", {
      token: muter.accessToken,
    });
    expect(unread.body.count).toBe(0);
    expect(idsOf(await call<Page>("GET", "/v1/me/mutes", { token: muter.accessToken }))).toEqual([muted.id]);
    expect((await call("DELETE", `/v1/users/${muted.id}/mute`, { token: muter.accessToken })).status).toBe(204);
    const back = await call<Page>("GET", "/v1/feeds/following", { token: muter.accessToken });
    expect(idsOf(back)).toContain(post.id);
  });
});
