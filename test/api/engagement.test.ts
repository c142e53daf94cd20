import { describe, expect, it } from "vitest";
import { trendingJob } from "../../src/features/feeds/trending";
import { countersJob } from "../../src/features/ranking/counters";
import { ObjectId } from "../../src/platform/ids";
import { DAY_MS } from "../../src/platform/time";
import { call, uniqueIp, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { runUntilDone } from "../support/jobs";
import { publishedPost } from "../support/posts";
import { crowd, shadowBan, uniqueName } from "../support/users";

const deps = testDeps();

interface Page {
  items: { id: string }[];
  nextCursor: string | null;
}

const share = (postId: string, token?: string) =>
  call<{ shareCount: number; shareableUrl: string }>("POST", `/v1/posts/${postId}/share`, { token });
const view = (postId: string, options: { token?: string; device?: string; ip?: string } = {}) =>
  call<{ viewCount: number }>("GET", `/v1/posts/${postId}`, {
    token: options.token,
    ip: options.ip,
    headers: options.device ? { "x-device-id": options.device } : {},
  });
const stored = async (postId: string) => (await deps.db.posts.findOne({ _id: new ObjectId(postId) }))!;

/** Backdates a post as if it had been published `days` ago. */
async function backdate(postId: string, days: number) {
  await deps.db.posts.updateOne(
    { _id: new ObjectId(postId) },
    { $set: { createdAt: new Date(Date.now() - days * DAY_MS) } },
  );
}

/** Where each of `ids` stands in a whole feed, walked page by page. */
async function positionsIn(path: string, ids: string[]): Promise<string[]> {
  const wanted = new Set(ids);
  const found: string[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const res: { status: number; body: Page } = await call<Page>(
      "GET",
      `${path}${sep}limit=100${cursor ? `&cursor=${cursor}` : ""}`,
    );
    expect(res.status).toBe(200);
    found.push(...res.body.items.map((p) => p.id).filter((id) => wanted.has(id)));
    cursor = found.length === wanted.size ? null : res.body.nextCursor;
  } while (cursor);
  return found;
}

describe("POST /v1/posts/{id}/share", () => {
  it("needs a signed-in caller", async () => {
    const [author] = await crowd(1);
    const post = await publishedPost(author);
    expect((await share(post.id)).status).toBe(401);
    expect((await stored(post.id)).shareCount).toBe(0);
  });

  it("counts once per person however often (and however concurrently) they share", async () => {
    const [author, fan, other] = await crowd(3);
    const post = await publishedPost(author);
    const storm = await Promise.all(Array.from({ length: 20 }, () => share(post.id, fan.accessToken)));
    expectEvery(storm, (r) => r.status === 200 && r.body.shareableUrl.endsWith(post.id));
    expect((await share(post.id, other.accessToken)).body.shareCount).toBe(2);
    expect((await stored(post.id)).shareCount).toBe(2);
    expect(await deps.db.shares.find({ postId: new ObjectId(post.id) })).toHaveLength(2);
  });

  it("waits on one MongoDB call: the share and the count in one transaction", async () => {
    const [author, fan] = await crowd(2);
    const post = await publishedPost(author);
    await call("GET", `/v1/posts/${post.id}`); // the post being shared is in the cache
    const res = await share(post.id, fan.accessToken);
    expect(res.status, res.text).toBe(200);
    expect(res.body.shareCount).toBe(1);
    expect(waits(res.headers)).toMatchObject({ mongo: 1 });
    expect((await call<{ shareCount: number }>("GET", `/v1/posts/${post.id}`)).body.shareCount).toBe(1);
  });

  it("gives the author the link but never counts their own shares", async () => {
    const [author] = await crowd(1);
    const post = await publishedPost(author);
    const own = await Promise.all(Array.from({ length: 10 }, () => share(post.id, author.accessToken)));
    expectEvery(own, (r) => r.status === 200 && r.body.shareCount === 0 && r.body.shareableUrl.endsWith(post.id));
    expect((await stored(post.id)).shareCount).toBe(0);
  });

  it("does not count a shadow-banned account's share, before or after the counters job", async () => {
    const [author, shadow] = await crowd(2);
    const post = await publishedPost(author);
    await shadowBan(shadow);
    expect((await share(post.id, shadow.accessToken)).body.shareCount).toBe(0);
    await runUntilDone(countersJob);
    expect((await stored(post.id)).shareCount).toBe(0);
  });
});

describe("views", () => {
  it("count once per signed-in viewer, even when they open the post many times at once", async () => {
    const [author, reader, second] = await crowd(3);
    const post = await publishedPost(author);
    const opens = await Promise.all(Array.from({ length: 10 }, () => view(post.id, { token: reader.accessToken })));
    expectEvery(opens, (r) => r.status === 200 && r.body.viewCount === 1);
    expect((await view(post.id, { token: second.accessToken })).body.viewCount).toBe(2);
    expect((await view(post.id, { token: author.accessToken })).body.viewCount).toBe(2);
  });

  it("count once per device for signed-out viewers, and once per address without a device id", async () => {
    const [author] = await crowd(1);
    const post = await publishedPost(author);
    // The same device from ever-new addresses is one viewer…
    for (let i = 0; i < 5; i++) await view(post.id, { device: "phone-1" });
    // …and so is one address that sends no device id.
    const ip = uniqueIp();
    for (let i = 0; i < 5; i++) await view(post.id, { ip });
    expect((await view(post.id, { device: "phone-2" })).body.viewCount).toBe(3);
  });

  it("cap signed-out views from one address however many device ids it invents", async () => {
    const [author] = await crowd(1);
    const post = await publishedPost(author);
    const ip = uniqueIp();
    const cap = deps.config.posts.anonymousViewsPerIp;
    const bombing = await Promise.all(
      Array.from({ length: cap + 30 }, (_, i) => view(post.id, { ip, device: `fake-${i}` })),
    );
    expectEvery(bombing, (r) => r.status === 200);
    expect(Math.max(...bombing.map((r) => r.body.viewCount))).toBe(cap);
    await runUntilDone(countersJob);
    expect((await stored(post.id)).viewCount).toBe(cap);
  });
});

describe("ranking", () => {
  it("counts only qualified engagement: not the author's comments, flagged votes or shadow-banned shares", async () => {
    const [author, fan, commenter, shadow] = await crowd(4);
    const post = await publishedPost(author);
    await shadowBan(shadow);
    for (let i = 0; i < 5; i++) {
      await call("POST", `/v1/posts/${post.id}/comments`, { token: author.accessToken, body: { content: `me ${i}` } });
    }
    // One person's three comments make one commenter.
    for (let i = 0; i < 3; i++) {
      await call("POST", `/v1/posts/${post.id}/comments`, { token: commenter.accessToken, body: { content: `c${i}` } });
    }
    await call("PUT", `/v1/posts/${post.id}/vote`, { token: fan.accessToken });
    await share(post.id, shadow.accessToken);
    await share(post.id, fan.accessToken);
    // A vote the fraud check flagged counts in `voteCount` but not in the ranking.
    const [flaggedVoter] = await crowd(1);
    await call("PUT", `/v1/posts/${post.id}/vote`, { token: flaggedVoter.accessToken });
    await deps.db.votes.updateOne(
      { postId: new ObjectId(post.id), userId: new ObjectId(flaggedVoter.id) },
      { $set: { flagged: true } },
    );
    await runUntilDone(countersJob);
    const after = await stored(post.id);
    expect(after.voteCount).toBe(2);
    expect(after.shareCount).toBe(1);
    expect(after.commentCount).toBe(8);
    expect(after.rankedEngagement).toEqual({ votes: 1, comments: 1, shares: 1 });
    const w = deps.config.ranking.weights;
    expect(after.engagementScore).toBeCloseTo(w.vote + w.comment + w.share + w.view * after.viewCount, 9);
  });

  it("rescores a post of any age when its engagement moves (top and category feeds)", async () => {
    const [author, ...voters] = await crowd(5);
    const category = uniqueName("cat").toLowerCase().slice(0, 20);
    const old = await publishedPost(author, { category });
    const fresh = await publishedPost(author, { category });
    await backdate(old.id, 30);
    await Promise.all(voters.map((v) => call("PUT", `/v1/posts/${old.id}/vote`, { token: v.accessToken })));
    await call("PUT", `/v1/posts/${fresh.id}/vote`, { token: voters[0].accessToken });
    await runUntilDone(countersJob);
    const scored = await stored(old.id);
    expect(scored.engagementScore).toBeGreaterThan((await stored(fresh.id)).engagementScore);
    expect(await positionsIn("/v1/feeds/top", [fresh.id, old.id])).toEqual([old.id, fresh.id]);
    // Trending decays with age: a 30-day-old post with four votes still trails a fresh one with one.
    expect(await positionsIn(`/v1/feeds/category/${category}`, [old.id, fresh.id])).toEqual([fresh.id, old.id]);
  });

  it("orders hot by engagement among posts of an age, and lets recency win over a day", async () => {
    const [author, ...voters] = await crowd(6);
    const quiet = await publishedPost(author);
    const liked = await publishedPost(author);
    const yesterday = await publishedPost(author);
    await backdate(yesterday.id, 1);
    await Promise.all(
      voters.flatMap((v) => [
        call("PUT", `/v1/posts/${liked.id}/vote`, { token: v.accessToken }),
        call("PUT", `/v1/posts/${yesterday.id}/vote`, { token: v.accessToken }),
      ]),
    );
    await runUntilDone(countersJob);
    expect(await positionsIn("/v1/feeds/hot", [quiet.id, liked.id, yesterday.id])).toEqual([
      liked.id,
      quiet.id,
      yesterday.id,
    ]);
  });

  it("re-decays trending with the clock in the trending job, and new posts show in hot before any job", async () => {
    const [author, voter] = await crowd(2);
    const post = await publishedPost(author);
    expect((await positionsIn("/v1/feeds/hot", [post.id])).length).toBe(1);
    await call("PUT", `/v1/posts/${post.id}/vote`, { token: voter.accessToken });
    await runUntilDone(countersJob);
    const before = await stored(post.id);
    await backdate(post.id, 2);
    await runUntilDone(trendingJob);
    const after = await stored(post.id);
    expect(after.trendingScore).toBeLessThan(before.trendingScore);
    expect(after.trendingScore).toBeGreaterThan(0);
    expect(after.engagementScore).toBe(before.engagementScore);
  });
});
