import { describe, expect, it } from "vitest";
import { trendingJob } from "../../src/features/feeds/trending";
import { ObjectId } from "../../src/platform/ids";
import { runJob } from "../../src/scheduler/runner";
import { call, roundTrips } from "../support/api";
import { testDeps } from "../support/deps";
import { publishedPost } from "../support/posts";
import { crowd, shadowBan, uniqueName } from "../support/users";

const deps = testDeps();

interface Page {
  items: { id: string; userId: string; viewer: { voted: boolean } }[];
  nextCursor: string | null;
}

async function walk(path: string, token?: string, between?: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const res: { status: number; body: Page } = await call<Page>(
      "GET",
      `${path}${sep}limit=4${cursor ? `&cursor=${cursor}` : ""}`,
      { token },
    );
    expect(res.status).toBe(200);
    seen.push(...res.body.items.map((p) => p.id));
    cursor = res.body.nextCursor;
    if (between) await between();
  } while (cursor);
  return seen;
}

describe("feeds", () => {
  it("walks pages with cursors while 50 new posts arrive: no duplicates, no gaps", async () => {
    const [author] = await crowd(1);
    const tag = uniqueName("tag").toLowerCase();
    const before: string[] = [];
    for (let i = 0; i < 30; i++) before.push((await publishedPost(author, { tags: [tag] })).id);
    let added = 0;
    const seen = await walk(`/v1/tags/${tag}/posts`, undefined, async () => {
      const batch = Math.min(10, 50 - added);
      added += batch;
      await Promise.all(Array.from({ length: batch }, () => publishedPost(author, { tags: [tag] })));
    });
    expect(added).toBe(50);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(before));
  });

  it("keeps private, held-back and shadow-banned authors' posts out of every feed, search and tag", async () => {
    const [author, shadow, viewer] = await crowd(3);
    const tag = uniqueName("vis").toLowerCase();
    const word = uniqueName("word").toLowerCase();
    const prompt = `a ${word} over the city`;
    const visible = await publishedPost(author, { tags: [tag] }, prompt);
    const priv = await publishedPost(author, { tags: [tag], visibility: "private" }, prompt);
    await shadowBan(shadow);
    const shadowed = await publishedPost(shadow, { tags: [tag] }, prompt);
    const check = async (path: string, token?: string) =>
      (await walk(path, token)).filter((id) => [visible.id, priv.id, shadowed.id].includes(id));
    expect(await check(`/v1/tags/${tag}/posts`, viewer.accessToken)).toEqual([visible.id]);
    expect(await check(`/v1/search/posts?q=${word}`, viewer.accessToken)).toEqual([visible.id]);
    expect(await check(`/v1/users/${shadow.id}/posts`, viewer.accessToken)).toEqual([]);
    expect(await check(`/v1/users/${author.id}/posts`)).toEqual([visible.id]);
    // Authors still see their own.
    expect(await check(`/v1/users/${author.id}/posts`, author.accessToken)).toEqual(
      expect.arrayContaining([visible.id, priv.id]),
    );
    expect(await check(`/v1/users/${shadow.id}/posts`, shadow.accessToken)).toEqual([shadowed.id]);
    expect((await call("GET", `/v1/posts/${shadowed.id}`, { token: viewer.accessToken })).status).toBe(404);
  });

  it("shows followed authors' public and followers-only posts in the following feed", async () => {
    const [author, follower] = await crowd(2);
    const pub = await publishedPost(author);
    const fol = await publishedPost(author, { visibility: "followers" });
    const priv = await publishedPost(author, { visibility: "private" });
    await call("PUT", `/v1/users/${author.id}/follow`, { token: follower.accessToken });
    const seen = await walk("/v1/feeds/following", follower.accessToken);
    expect(seen).toEqual(expect.arrayContaining([pub.id, fol.id]));
    expect(seen).not.toContain(priv.id);
    expect((await call("GET", "/v1/feeds/following")).status).toBe(401);
  });

  it("caches the first following page per viewer and drops it when they follow someone new", async () => {
    const [a, b, reader] = await crowd(3);
    const fromA = await publishedPost(a);
    const fromB = await publishedPost(b);
    await call("PUT", `/v1/users/${a.id}/follow`, { token: reader.accessToken });
    const first = await call<Page>("GET", "/v1/feeds/following", { token: reader.accessToken });
    expect(first.body.items.map((p) => p.id)).toEqual([fromA.id]);
    expect(await deps.redis.get(deps.keys.feedFollowing(reader.id, 0))).not.toBeNull();
    await call("PUT", `/v1/users/${b.id}/follow`, { token: reader.accessToken });
    const after = await call<Page>("GET", "/v1/feeds/following", { token: reader.accessToken });
    expect(after.body.items.map((p) => p.id)).toEqual([fromB.id, fromA.id]);
    // A vote shows at once on the cached page.
    await call("PUT", `/v1/posts/${fromA.id}/vote`, { token: reader.accessToken });
    const voted = await call<Page>("GET", "/v1/feeds/following", { token: reader.accessToken });
    expect(voted.body.items.find((p) => p.id === fromA.id)?.viewer.voted).toBe(true);
  });

  it("fills viewer.voted in feed pages", async () => {
    const [author, voter] = await crowd(2);
    const tag = uniqueName("v").toLowerCase();
    const a = await publishedPost(author, { tags: [tag] });
    const b = await publishedPost(author, { tags: [tag] });
    await call("PUT", `/v1/posts/${a.id}/vote`, { token: voter.accessToken });
    const page = await call<Page>("GET", `/v1/tags/${tag}/posts`, { token: voter.accessToken });
    const voted = Object.fromEntries(page.body.items.map((p) => [p.id, p.viewer.voted]));
    expect(voted).toEqual({ [a.id]: true, [b.id]: false });
  });

  it("serves a cached first page of the trending feed without touching MongoDB", async () => {
    await call("GET", "/v1/feeds/trending");
    const cached = await call<Page>("GET", "/v1/feeds/trending");
    expect(cached.status).toBe(200);
    // The rate-limit check travels with the cache read: one Redis round trip, no MongoDB call.
    expect(roundTrips(cached.headers)).toMatchObject({ redis: 1, mongo: 0 });
  });

  it("rejects bad kinds, limits and cursors with 400", async () => {
    expect((await call("GET", "/v1/feeds/sideways")).status).toBe(400);
    expect((await call("GET", "/v1/feeds/new?limit=101")).status).toBe(400);
    expect((await call("GET", "/v1/feeds/new?cursor=bogus")).status).toBe(400);
    expect((await call("GET", "/v1/search/posts")).status).toBe(400);
  });
});

describe("trending job", () => {
  it("scores recent posts so that the trending feed ranks the most engaged post first", async () => {
    const [author, ...voters] = await crowd(6);
    const category = uniqueName("cat").toLowerCase().slice(0, 20);
    const quiet = await publishedPost(author, { category });
    const popular = await publishedPost(author, { category });
    await Promise.all(voters.map((v) => call("PUT", `/v1/posts/${popular.id}/vote`, { token: v.accessToken })));
    await deps.db.posts.updateOne({ _id: new ObjectId(popular.id) }, { $set: { voteCount: 5, viewCount: 20 } });
    const run = await runJob(deps, trendingJob, { trigger: "test" });
    expect(run.outcome).toBe("succeeded");
    const scored = await deps.db.posts.findOne({ _id: new ObjectId(popular.id) });
    expect(scored!.trendingScore).toBeGreaterThan(0);
    expect(scored!.hotScore).toBeGreaterThan(0);
    const feed = await call<Page>("GET", `/v1/feeds/category/${category}`);
    expect(feed.body.items.map((p) => p.id)).toEqual([popular.id, quiet.id]);
  });

  it("pays the authors of the top trending posts a bonus once per post per day, and tells them", async () => {
    const [star] = await crowd(1);
    const post = await publishedPost(star);
    // Far more engagement than anything else in the suite: this post leads the run.
    await deps.db.posts.updateOne({ _id: new ObjectId(post.id) }, { $set: { voteCount: 1_000_000 } });
    const bonus = deps.config.gems.trendingBonus;

    const first = await runJob(deps, trendingJob, { trigger: "test" });
    expect(first.outcome).toBe("succeeded");
    const again = await runJob(deps, trendingJob, { trigger: "test" });
    expect(again.outcome).toBe("succeeded");

    const entries = await deps.db.gemTransactions.find({ userId: new ObjectId(star.id) });
    expect(entries.map((e) => [e.source, e.amount, e.referenceId, e.status])).toEqual([
      ["trending_bonus", bonus, post.id, "applied"],
    ]);
    expect((await deps.db.users.findOne({ _id: new ObjectId(star.id) }))?.gemBalance).toBe(bonus);
    const notes = await call<{ items: { type: string; actionPayload: { postId?: string } }[] }>(
      "GET",
      "/v1/notifications",
      { token: star.accessToken },
    );
    expect(notes.body.items.filter((n) => n.type === "trending").map((n) => n.actionPayload.postId)).toEqual([post.id]);
  });
});
