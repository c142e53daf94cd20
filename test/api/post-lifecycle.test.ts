import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { call, waits } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { completedGeneration, fromNow, postIn, publishedPost } from "../support/posts";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser, uniqueName } from "../support/users";

const deps = testDeps();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

interface Post {
  id: string;
  status: string;
  publishAt: string | null;
  publishedAt: string | null;
  createdAt: string;
  isPinned: boolean;
  moderationStatus: string;
  tags: string[];
}
interface Page {
  items: { id: string }[];
  nextCursor: string | null;
}

const patch = (who: TestUser, id: string, body: Record<string, unknown>, fetcher?: Parameters<typeof call>[3]) =>
  call<Post>("PATCH", `/v1/posts/${id}`, { token: who.accessToken, body }, fetcher);
const totalPosts = async (who: TestUser) =>
  (await deps.db.users.findOne({ _id: new ObjectId(who.id) }, { projection: { totalPosts: 1 } }))?.totalPosts;
const ids = (res: { body: Page }) => res.body.items.map((p) => p.id);

/** Every list someone else could find the post in: the author's profile, the tag, the new feed and search. */
async function seenByOthers(author: TestUser, viewer: TestUser, post: { id: string }, tag: string) {
  const token = viewer.accessToken;
  const [direct, profile, byTag, fresh, search] = await Promise.all([
    call("GET", `/v1/posts/${post.id}`, { token }),
    call<Page>("GET", `/v1/users/${author.id}/posts?limit=50`, { token }),
    call<Page>("GET", `/v1/tags/${tag}/posts?limit=50`, { token }),
    call<Page>("GET", "/v1/feeds/new?limit=100", { token }),
    call<Page>("GET", `/v1/search/posts?q=${tag}&limit=50`, { token }),
  ]);
  return {
    direct: direct.status === 200,
    profile: ids(profile).includes(post.id),
    tag: ids(byTag).includes(post.id),
    feed: ids(fresh).includes(post.id),
    search: ids(search).includes(post.id),
  };
}
const nowhere = { direct: false, profile: false, tag: false, feed: false, search: false };
const everywhere = { direct: true, profile: true, tag: true, feed: true, search: true };

describe("drafts", () => {
  it("stay the author's alone — out of every feed, profile, count and search — until published, then are new", async () => {
    const [author, other] = await crowd(2);
    const tag = uniqueName("t");
    const draft = await postIn(author, { status: "draft", tags: [tag] });
    expect(draft).toMatchObject({ status: "draft", publishAt: null, publishedAt: null });
    expect(await seenByOthers(author, other, draft, tag)).toEqual(nowhere);
    expect((await call("GET", `/v1/posts/${draft.id}`)).status).toBe(404);
    expect(await totalPosts(author)).toBe(0);
    const own = await call<Page>("GET", `/v1/users/${author.id}/posts?status=draft`, { token: author.accessToken });
    expect(ids(own)).toEqual([draft.id]);

    const published = await patch(author, draft.id, { status: "published" });
    expect(published.status).toBe(200);
    expect(published.body).toMatchObject({ status: "published" });
    // Its place in feeds starts at publication, not when the draft was made.
    expect(published.body.createdAt).toBe(published.body.publishedAt);
    expect(Date.parse(published.body.createdAt)).toBeGreaterThanOrEqual(Date.parse(String(draft.createdAt)));
    expect(await totalPosts(author)).toBe(1);
    expect(await seenByOthers(author, other, draft, tag)).toEqual(everywhere);
  });

  it("are published once however many requests race to publish one: the author's count moves once", async () => {
    const [author] = await crowd(1);
    const draft = await postIn(author, { status: "draft" });
    const answers = await Promise.all(
      Array.from({ length: 30 }, () => patch(author, draft.id, { status: "published" })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(30).fill(200));
    expect(new Set(answers.map((a) => a.body.publishedAt)).size).toBe(1);
    expect(await totalPosts(author)).toBe(1);
  });
});

describe("the transition table", () => {
  it("refuses a move it does not allow with a 409 naming both states, and changes nothing", async () => {
    const [author] = await crowd(1);
    const post = await postIn(author, { status: "draft" });
    const refused = async (body: Record<string, unknown>, from: string, to: string) => {
      const problem = expectProblem(await patch(author, post.id, body), 409, "conflict");
      expect(problem).toMatchObject({ reason: "invalid_transition" });
      expect(problem.detail).toBe(`A post cannot go from ${from} to ${to}.`);
    };
    await refused({ status: "archived" }, "draft", "archived");
    await refused({ status: "pending_review" }, "draft", "pending_review");
    expect((await patch(author, post.id, { status: "published" })).status).toBe(200);
    await refused({ status: "draft" }, "published", "draft");
    await refused({ status: "scheduled", publishAt: fromNow(DAY) }, "published", "scheduled");
    expect((await patch(author, post.id, { status: "archived" })).body.status).toBe("archived");
    await refused({ status: "scheduled", publishAt: fromNow(DAY) }, "archived", "scheduled");
    await refused({ status: "draft" }, "archived", "draft");
    const stored = await deps.db.posts.findOne({ _id: new ObjectId(post.id) });
    expect(stored).toMatchObject({ status: "archived", publishAt: null });
  });

  it("treats the state a post is in already as done: 200, nothing moves", async () => {
    const [author] = await crowd(1);
    const post = await publishedPost(author);
    const again = await patch(author, post.id, { status: "published" });
    expect(again.status).toBe(200);
    expect(again.body.createdAt).toBe(post.createdAt);
    expect(await totalPosts(author)).toBe(1);
  });
});

describe("archiving", () => {
  it("takes a post out of feeds, profile and counts for everyone else and gives up its pin; restoring brings it back where it was", async () => {
    const [author, other] = await crowd(2);
    const tag = uniqueName("t");
    const post = await publishedPost(author, { tags: [tag] });
    expect((await patch(author, post.id, { isPinned: true })).body.isPinned).toBe(true);
    const archived = await patch(author, post.id, { status: "archived" });
    expect(archived.body).toMatchObject({ status: "archived", isPinned: false });
    expect(await seenByOthers(author, other, post, tag)).toEqual(nowhere);
    expect(await totalPosts(author)).toBe(0);
    const user = await deps.db.users.findOne({ _id: new ObjectId(author.id) });
    expect(user?.pinnedPostIds ?? []).toEqual([]);
    const mine = await call<Page>("GET", `/v1/users/${author.id}/posts?status=archived`, { token: author.accessToken });
    expect(ids(mine)).toEqual([post.id]);
    expect(expectProblem(await patch(author, post.id, { isPinned: true }), 409, "conflict").reason).toBe(
      "not_published",
    );

    const restored = await patch(author, post.id, { status: "published" });
    expect(restored.body).toMatchObject({ status: "published", createdAt: post.createdAt });
    expect(await totalPosts(author)).toBe(1);
    expect(await seenByOthers(author, other, post, tag)).toEqual(everywhere);
  });
});

describe("scheduling", () => {
  it("takes publishAt 5 minutes to 30 days ahead, and only with status scheduled (400 naming publishAt)", async () => {
    const [author] = await crowd(1);
    const generationId = await completedGeneration(author);
    const create = (body: Record<string, unknown>) =>
      call("POST", "/v1/posts", { token: author.accessToken, body: { generationId, ...body } });
    for (const body of [
      { status: "scheduled", publishAt: fromNow(2 * 60_000) },
      { status: "scheduled", publishAt: fromNow(31 * DAY) },
      { status: "scheduled" },
      { status: "draft", publishAt: fromNow(DAY) },
      { status: "scheduled", publishAt: "tomorrow" },
    ]) {
      const res = await create(body);
      expectProblem(res, 400, "validation_failed");
      expect(fieldPaths(res)).toEqual(["publishAt"]);
    }
    expect(await deps.db.posts.findOne({ generationId: new ObjectId(generationId) })).toBeNull();
  });

  it("keeps a scheduled post to its author, and lets them reschedule it or make it a draft again", async () => {
    const [author, other] = await crowd(2);
    const tag = uniqueName("t");
    const when = fromNow(2 * DAY);
    const post = await postIn(author, { status: "scheduled", publishAt: when, tags: [tag] });
    expect(post).toMatchObject({ status: "scheduled", publishAt: when, publishedAt: null });
    expect(await seenByOthers(author, other, post, tag)).toEqual(nowhere);
    expect(await totalPosts(author)).toBe(0);

    const later = fromNow(3 * DAY);
    expect((await patch(author, post.id, { publishAt: later })).body).toMatchObject({
      status: "scheduled",
      publishAt: later,
    });
    const draft = await patch(author, post.id, { status: "draft" });
    expect(draft.body).toMatchObject({ status: "draft", publishAt: null });
    const stored = await deps.db.posts.findOne({ _id: new ObjectId(post.id) });
    expect(stored).toMatchObject({ scheduleSlot: null, scheduleDaySlot: null });
  });

  it("holds at most POST_SCHEDULED_MAX_PER_USER scheduled posts per author, even when many are scheduled at once", async () => {
    const limited = appWith({ POST_SCHEDULED_MAX_PER_USER: "3", POST_SCHEDULED_MAX_PER_DAY: "25" });
    const [author] = await crowd(1);
    const generations = await Promise.all(Array.from({ length: 6 }, () => completedGeneration(author)));
    const answers = await Promise.all(
      generations.map((generationId, i) =>
        call(
          "POST",
          "/v1/posts",
          { token: author.accessToken, body: { generationId, status: "scheduled", publishAt: fromNow((i + 2) * DAY) } },
          limited,
        ),
      ),
    );
    expect(answers.filter((a) => a.status === 201)).toHaveLength(3);
    for (const refused of answers.filter((a) => a.status !== 201)) {
      expect(expectProblem(refused, 409, "conflict").reason).toBe("schedule_limit");
    }
    const scheduled = await deps.db.posts.find({ userId: new ObjectId(author.id), status: "scheduled" });
    expect(scheduled).toHaveLength(3);
    // Unscheduling one frees its place.
    const freed = await patch(author, scheduled[0]!._id.toHexString(), { status: "draft" }, limited);
    expect(freed.status).toBe(200);
    expect((await postIn(author, { status: "scheduled", publishAt: fromNow(9 * DAY) }, limited)).status).toBe(
      "scheduled",
    );
  });

  it("holds at most POST_SCHEDULED_MAX_PER_DAY for one UTC day, even when scheduled at once", async () => {
    const limited = appWith({ POST_SCHEDULED_MAX_PER_DAY: "2" });
    const [author] = await crowd(1);
    // Noon UTC, five days on: every post below falls on that one day.
    const day = new Date(Date.now() + 5 * DAY);
    day.setUTCHours(12, 0, 0, 0);
    const sameDay = (minutes: number) => new Date(day.getTime() + minutes * 60_000).toISOString();
    const generations = await Promise.all(Array.from({ length: 5 }, () => completedGeneration(author)));
    const answers = await Promise.all(
      generations.map((generationId, i) =>
        call(
          "POST",
          "/v1/posts",
          { token: author.accessToken, body: { generationId, status: "scheduled", publishAt: sameDay(i) } },
          limited,
        ),
      ),
    );
    expect(answers.filter((a) => a.status === 201)).toHaveLength(2);
    for (const refused of answers.filter((a) => a.status !== 201)) {
      expect(expectProblem(refused, 409, "conflict").reason).toBe("schedule_daily_limit");
    }
    // Another day has room.
    const nextDay = new Date(day.getTime() + DAY).toISOString();
    expect((await postIn(author, { status: "scheduled", publishAt: nextDay }, limited)).status).toBe("scheduled");
  });
});

describe("moderation holds", () => {
  it("make a published draft pending_review (seen by nobody else) until a moderator decides; the author may archive it", async () => {
    const strict = appWith({ POST_BANNED_WORDS: "forbiddenword" });
    const [author, other] = await crowd(2);
    const generationId = await completedGeneration(author, "a forbiddenword in the sky");
    const created = await call<Post>(
      "POST",
      "/v1/posts",
      { token: author.accessToken, body: { generationId, status: "draft" } },
      strict,
    );
    // The draft already tells its author what publishing it will meet; the hold starts only then.
    expect(created.body).toMatchObject({ status: "draft", moderationStatus: "pending" });
    const queued = await deps.db.posts.findOne({ _id: new ObjectId(created.body.id) });
    expect(queued?.moderationHold ?? null).toBeNull();

    const published = await patch(author, created.body.id, { status: "published" }, strict);
    expect(published.body.status).toBe("pending_review");
    expect((await call("GET", `/v1/posts/${created.body.id}`, { token: other.accessToken })).status).toBe(404);
    const held = await deps.db.posts.findOne({ _id: new ObjectId(created.body.id) });
    expect(held?.moderationHold?.source).toBe("banned_words");
    const problem = expectProblem(
      await patch(author, created.body.id, { status: "published" }, strict),
      409,
      "conflict",
    );
    expect(problem.detail).toBe("A post cannot go from pending_review to published.");
    expect((await patch(author, created.body.id, { status: "archived" }, strict)).body.status).toBe("archived");
  });
});

describe("waits", () => {
  it("a publish waits on one MongoDB batch: the move and its author's count together (the post taken from Redis)", async () => {
    const [author] = await crowd(1);
    const draft = await postIn(author, { status: "draft" });
    // The author's own read caches the post.
    expect((await call("GET", `/v1/posts/${draft.id}`, { token: author.accessToken })).status).toBe(200);
    const res = await patch(author, draft.id, { status: "published" });
    expect(res.status).toBe(200);
    expect(waits(res.headers).mongo).toBe(1);
  });
});
