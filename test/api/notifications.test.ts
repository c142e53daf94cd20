import { describe, expect, it } from "vitest";
import type { Notification } from "../../src/features/notifications/schema";
import { notify, registerNotificationListener } from "../../src/features/notifications/service";
import { ObjectId } from "../../src/platform/ids";
import { newTally, withIoTally } from "../../src/platform/io";
import { call, roundTrips, uniqueIp, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { publishedPost } from "../support/posts";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, shadowBan, type TestUser } from "../support/users";

const deps = testDeps();

interface Page {
  items: Notification[];
  nextCursor: string | null;
}

const vote = (voter: TestUser, postId: string) =>
  call("PUT", `/v1/posts/${postId}/vote`, { token: voter.accessToken, ip: uniqueIp() });
const list = (user: TestUser, query = "") =>
  call<Page>("GET", `/v1/notifications${query}`, { token: user.accessToken });
const unread = async (user: TestUser) =>
  (await call<{ count: number }>("GET", "/v1/notifications/unread-count", { token: user.accessToken })).body.count;
const markRead = (user: TestUser, body: unknown) =>
  call("POST", "/v1/notifications/read", { token: user.accessToken, body });
const setPolicy = (user: TestUser, body: unknown) =>
  call("PATCH", "/v1/me/notification-policy", { token: user.accessToken, body });
/** Makes a user look older than NOTIFICATION_NEW_ACCOUNT_DAYS, so only the rule under test applies. */
const age = (users: TestUser[]) =>
  deps.db.users.updateMany(
    { _id: { $in: users.map((u) => new ObjectId(u.id)) } },
    { $set: { createdAt: new Date(Date.now() - 30 * 86_400_000) } },
  );

describe("notifications: vote aggregation", () => {
  it("groups 50 votes into one item (count 50, 8 newest actors), re-opens it on the 51st, ignores re-votes", async () => {
    const [author, ...voters] = await crowd(52);
    const post = await publishedPost(author);
    const fifty = voters.slice(0, 50);
    for (const v of fifty) expect((await vote(v, post.id)).status).toBe(200);

    const page = await list(author);
    expect(page.status).toBe(200);
    const votes = page.body.items.filter((i) => i.type === "vote");
    expect(votes).toHaveLength(1);
    const item = votes[0]!;
    expect(item).toMatchObject({
      aggregationCount: 50,
      aggregationKey: `vote:${post.id}`,
      read: false,
      actionType: "open_post",
      actionPayload: { postId: post.id },
    });
    const newestFirst = fifty.slice(-8).reverse();
    expect(item.sampleActors.map((a) => a.id)).toEqual(newestFirst.map((v) => v.id));
    expect(item.sampleActors[0]).toMatchObject({ username: newestFirst[0]!.username });
    expect(item.title).toBe(`${newestFirst[0]!.username} and 49 others voted on your post`);
    expect(await unread(author)).toBe(1);

    const read = await markRead(author, { ids: [item.id] });
    expect(read.status).toBe(204);
    expect(waits(read.headers)).toMatchObject({ mongo: 1 }); // one update; the cached inbox dropped after it
    expect((await list(author)).body.items[0]).toMatchObject({ id: item.id, read: true });
    expect(await unread(author)).toBe(0);

    // One more voter: the same item, unread again, 51.
    const last = voters[50]!;
    expect((await vote(last, post.id)).status).toBe(200);
    const after = (await list(author)).body.items;
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ id: item.id, read: false, aggregationCount: 51 });
    expect(after[0]!.sampleActors[0]!.id).toBe(last.id);
    expect(after[0]!.sampleActors).toHaveLength(8);
    expect(await unread(author)).toBe(1);

    // The same voter unvoting and voting again neither counts twice nor re-opens the item.
    await markRead(author, { all: true });
    const first = fifty[0]!;
    expect((await call("DELETE", `/v1/posts/${post.id}/vote`, { token: first.accessToken })).status).toBe(204);
    expect((await vote(first, post.id)).status).toBe(200);
    const again = (await list(author)).body.items;
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ aggregationCount: 51, read: true });
    expect(again[0]!.sampleActors[0]!.id).toBe(last.id);
  });

  it("stores one document per group, and the write costs exactly one MongoDB round trip, after the vote's answer", async () => {
    const [author, mute, a, b, c] = await crowd(5);
    const post = await publishedPost(author);
    const mutedPost = await publishedPost(mute);
    await call("PATCH", "/v1/me", { token: mute.accessToken, body: { notificationPreferences: { inApp: false } } });
    // Both posts warm in the cache, so every vote reads the same.
    await Promise.all([post, mutedPost].map((p) => call("GET", `/v1/posts/${p.id}`)));

    const opening = await vote(a, post.id);
    const joining = await vote(b, post.id);
    const dropped = await vote(c, mutedPost.id);
    expect([opening.status, joining.status, dropped.status]).toEqual([200, 200, 200]);
    const stored = await deps.db.notifications.find({ userId: new ObjectId(author.id) });
    expect(stored).toHaveLength(1);
    expect(stored[0]?.actorIds.map((x) => x.toHexString())).toEqual([a.id, b.id]);
    // The notification is owed by the vote and written after its answer: the votes cost the same either way.
    const mongo = (r: typeof opening) => roundTrips(r.headers).mongo ?? 0;
    expect(mongo(opening)).toBe(mongo(joining));
    expect(mongo(opening)).toBe(mongo(dropped));
    // Its own cost: the recipients' read, plus the write when the recipient takes it (inApp=false: none).
    const cost = async (voter: TestUser, p: { id: string }, recipient: TestUser) => {
      const tally = newTally();
      await withIoTally(tally, () =>
        notify(deps, { type: "vote", recipientId: recipient.id, actorId: voter.id, postId: p.id }),
      );
      return tally.roundTrips.mongo;
    };
    const [d] = await crowd(1);
    expect((await cost(d, post, author)) - (await cost(d, mutedPost, mute))).toBe(1);
    expect(await deps.db.notifications.find({ userId: new ObjectId(mute.id) })).toHaveLength(0);
  });

  it("counts each of 50 concurrent voters exactly once", async () => {
    const [author, ...voters] = await crowd(51);
    const post = await publishedPost(author);
    const responses = await Promise.all(voters.map((v) => vote(v, post.id)));
    expectEvery(responses, (r) => r.status === 200);
    const groups = await deps.db.notifications.find({ userId: new ObjectId(author.id) });
    const counted = groups.flatMap((g) => g.actorIds.map((x) => x.toHexString()));
    expect(counted.sort()).toEqual(voters.map((v) => v.id).sort());
    // One open group per recipient and key (a unique partial index): simultaneous first votes share it.
    expect(groups.map((g) => [g.aggregationCount, g.openGroup])).toEqual([[50, true]]);
  });

  it("closes a group that aged out of the window and opens a fresh one for the next event", async () => {
    const [author, early, late] = await crowd(3);
    const post = await publishedPost(author);
    expect((await vote(early, post.id)).status).toBe(200);
    const hours = deps.config.notifications.aggregationWindowHours;
    await deps.db.notifications.updateMany(
      { userId: new ObjectId(author.id) },
      { $set: { createdAt: new Date(Date.now() - (hours + 1) * 3_600_000) } },
    );
    expect((await vote(late, post.id)).status).toBe(200);

    const groups = await deps.db.notifications.find({ userId: new ObjectId(author.id) }, { sort: { createdAt: 1 } });
    expect(groups.map((g) => [g.aggregationCount, g.openGroup ?? null, g.closedAt instanceof Date])).toEqual([
      [1, null, true],
      [1, true, false],
    ]);
    expect(groups.map((g) => g.actorIds[0]?.toHexString())).toEqual([early.id, late.id]);
  });

  it("never notifies shadow-banned voters' votes, shadow-banned commenters' comments or flagged votes", async () => {
    const [author, shadow, ...sharingIp] = await crowd(10);
    await shadowBan(shadow);
    const post = await publishedPost(author);
    expect((await vote(shadow, post.id)).status).toBe(200);
    const commented = await call("POST", `/v1/posts/${post.id}/comments`, {
      token: shadow.accessToken,
      body: { content: "hidden" },
    });
    expect(commented.status).toBe(201);
    expect((await list(author)).body.items).toHaveLength(0);

    // Eight accounts from one IP: the later ones are flagged as fraud and do not notify.
    const ip = uniqueIp();
    for (const v of sharingIp) await call("PUT", `/v1/posts/${post.id}/vote`, { token: v.accessToken, ip });
    const flagged = await deps.db.votes.find({ postId: new ObjectId(post.id), flagged: true });
    expect(flagged.length).toBeGreaterThan(0);
    const items = (await list(author)).body.items;
    expect(items).toHaveLength(1);
    expect(items[0]!.aggregationCount).toBe(sharingIp.length - flagged.length);
  });
});

describe("notifications: follows, comments, replies", () => {
  it("notifies the followed user once per follower, not on idempotent repeats", async () => {
    const [target, fan] = await crowd(2);
    for (let i = 0; i < 2; i++) {
      expect((await call("PUT", `/v1/users/${target.id}/follow`, { token: fan.accessToken })).status).toBe(204);
    }
    const items = (await list(target)).body.items;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      type: "follow",
      aggregationCount: 1,
      actionType: "open_profile",
      actionPayload: { userId: fan.id },
      title: `${fan.username} followed you`,
    });
    expect((await list(fan)).body.items).toHaveLength(0);
  });

  it("sends comments to the post author and replies to the parent's author, never to oneself", async () => {
    const [author, userA, userB] = await crowd(3);
    const post = await publishedPost(author);
    const comment = (who: TestUser, body: Record<string, unknown>) =>
      call<{ id: string }>("POST", `/v1/posts/${post.id}/comments`, { token: who.accessToken, body });

    const top = await comment(userA, { content: "lovely" });
    expect(top.status).toBe(201);
    await comment(author, { content: "thanks", parentId: top.body.id }); // author replies: userA gets a reply
    await comment(userB, { content: "agreed", parentId: top.body.id }); // userB: userA (reply) and author (comment)
    await comment(userA, { content: "self", parentId: top.body.id }); // userA replying to herself: author only

    const forAuthor = (await list(author)).body.items;
    expect(forAuthor.map((i) => i.type)).toEqual(["comment"]);
    expect(forAuthor[0]).toMatchObject({ aggregationKey: `comment:${post.id}`, aggregationCount: 2 });
    expect(forAuthor[0]!.sampleActors.map((a) => a.id)).toEqual([userB.id, userA.id]);

    const forUserA = (await list(userA)).body.items;
    expect(forUserA.map((i) => i.type)).toEqual(["reply"]);
    expect(forUserA[0]).toMatchObject({ aggregationKey: `reply:${top.body.id}`, aggregationCount: 2 });
    expect(forUserA[0]!.sampleActors.map((a) => a.id)).toEqual([userB.id, author.id]);
    expect(forUserA[0]!.title).toBe(`${userB.username} and 1 other replied to your comment`);
    expect((await list(userB)).body.items).toHaveLength(0);
  });

  it("calls registered listeners with the stored notification, and survives a failing one", async () => {
    const [target, fan] = await crowd(2);
    const seen: string[] = [];
    const off = [
      registerNotificationListener(async (n) => {
        seen.push(`${n.type}:${n.userId.toHexString()}:${n.aggregationCount}`);
      }),
      registerNotificationListener(async () => {
        throw new Error("push provider down");
      }),
    ];
    try {
      const res = await call("PUT", `/v1/users/${target.id}/follow`, { token: fan.accessToken });
      expect(res.status).toBe(204);
    } finally {
      for (const f of off) f();
    }
    expect(seen).toContain(`follow:${target.id}:1`);
  });
});

describe("notifications: reading and policy", () => {
  it("counts unread, marks only the caller's own ids, and pages with a cursor", async () => {
    const [me, other, ...fans] = await crowd(5);
    await call("PUT", `/v1/users/${other.id}/follow`, { token: fans[0]!.accessToken });
    for (const p of [0, 1, 2]) {
      const post = await publishedPost(me);
      await vote(fans[p]!, post.id);
    }
    expect(await unread(me)).toBe(3);
    const theirs = (await list(other)).body.items[0]!;
    expect((await markRead(me, { ids: [theirs.id] })).status).toBe(204);
    expect((await list(other)).body.items[0]).toMatchObject({ id: theirs.id, read: false });

    const first = await list(me, "?limit=2");
    expect(first.body.items).toHaveLength(2);
    expect(first.body.nextCursor).not.toBeNull();
    const second = await list(me, `?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.items).toHaveLength(1);
    expect(second.body.nextCursor).toBeNull();
    const all = [...first.body.items, ...second.body.items];
    expect(new Set(all.map((i) => i.id)).size).toBe(3);
    expect(all.map((i) => i.updatedAt)).toEqual([...all.map((i) => i.updatedAt)].sort().reverse());

    await markRead(me, { ids: [all[0]!.id] });
    expect(await unread(me)).toBe(2);
    expect((await list(me, "?unread=true")).body.items.map((i) => i.id)).toEqual(all.slice(1).map((i) => i.id));
  });

  it("drops or filters by policy, and drops everything for inApp=false", async () => {
    const [me, stranger, friend, newbie] = await crowd(4);
    await age([me, stranger, friend]);
    await call("PUT", `/v1/users/${friend.id}/follow`, { token: me.accessToken });

    expect((await call("GET", "/v1/me/notification-policy", { token: me.accessToken })).body).toEqual({
      notFollowing: "accept",
      newAccounts: "accept",
    });
    const dropped = await setPolicy(me, { notFollowing: "drop" });
    expect(dropped.status).toBe(200);
    expect(dropped.body).toEqual({ notFollowing: "drop", newAccounts: "accept" });

    await call("PUT", `/v1/users/${me.id}/follow`, { token: stranger.accessToken });
    await call("PUT", `/v1/users/${me.id}/follow`, { token: friend.accessToken });
    let items = (await list(me)).body.items;
    expect(items.flatMap((i) => i.sampleActors.map((a) => a.id))).toEqual([friend.id]);

    // Filter: new accounts are stored but held back from the default list and the count.
    expect((await setPolicy(me, { notFollowing: "accept", newAccounts: "filter" })).status).toBe(200);
    const before = await unread(me);
    const post = await publishedPost(me);
    await vote(newbie, post.id);
    items = (await list(me)).body.items;
    expect(items.some((i) => i.type === "vote")).toBe(false);
    expect(await unread(me)).toBe(before);
    const held = (await list(me, "?filtered=true")).body.items;
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ type: "vote", aggregationCount: 1 });
    expect(held[0]!.sampleActors[0]!.id).toBe(newbie.id);

    // inApp=false: nothing is stored at all.
    await call("PATCH", "/v1/me", { token: me.accessToken, body: { notificationPreferences: { inApp: false } } });
    const total = await deps.db.notifications.find({ userId: new ObjectId(me.id) });
    await vote(stranger, post.id);
    expect(await deps.db.notifications.find({ userId: new ObjectId(me.id) })).toEqual(total);
  });

  it("rejects bad input with 400 naming the field, and anonymous callers with 401", async () => {
    const [me] = await crowd(1);
    const cases: [ReturnType<typeof call>, string][] = [
      [markRead(me, { ids: ["nothex"] }), "ids.0"],
      [markRead(me, { ids: [] }), "ids"],
      [markRead(me, { ids: [new ObjectId().toHexString()], extra: 1 }), "extra"],
      [setPolicy(me, { notFollowing: "maybe" }), "notFollowing"],
      [setPolicy(me, { sometimes: "drop" }), "sometimes"],
      [list(me, "?limit=0"), "limit"],
      [list(me, "?unread=yes"), "unread"],
    ];
    for (const [pending, field] of cases) {
      const res = await pending;
      expectProblem(res, 400, "validation_failed");
      expect(JSON.stringify(fieldPaths(res)), res.text).toContain(field);
    }
    for (const [method, path] of [
      ["GET", "/v1/notifications"],
      ["GET", "/v1/notifications/unread-count"],
      ["POST", "/v1/notifications/read"],
      ["GET", "/v1/me/notification-policy"],
      ["PATCH", "/v1/me/notification-policy"],
    ] as const) {
      expectProblem(
        await call(method, path, { body: method === "GET" ? undefined : { all: true } }),
        401,
        "unauthorized",
      );
    }
  });
});
