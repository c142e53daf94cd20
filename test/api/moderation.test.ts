import { beforeAll, describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips, waits } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { publishedPost } from "../support/posts";
import { expectProblem, fieldPaths } from "../support/problems";
import {
  crowd as newCrowd,
  signupUser,
  TEST_EMAIL_DOMAIN,
  type TestUser,
  uniqueName,
  userWithRole,
} from "../support/users";

const deps = testDeps();
const DAY_MS = 86_400_000;

interface Page {
  items: { id: string }[];
  nextCursor: string | null;
}
interface QueueItem {
  targetType: string;
  targetId: string;
  reportCount: number;
  totalWeight: number;
  snapshot: { text: string | null; imageUrl: string | null; authorId: string; username: string };
  reports: { id: string; reporterId: string; weight: number; status: string; assignedTo: string | null }[];
}

const report = (user: TestUser, body: Record<string, unknown>) =>
  call<{ id: string; status: string }>("POST", "/v1/reports", { token: user.accessToken, body });
const reportPost = (user: TestUser, postId: string, reason = "spam") =>
  report(user, { targetType: "post", targetId: postId, reason });
const act = (moderator: TestUser, body: Record<string, unknown>) =>
  call<{ id: string; action: string; reportIds: string[] }>("POST", "/v1/admin/moderation-actions", {
    token: moderator.accessToken,
    body,
  });
const user = (id: string) => deps.db.users.findOne({ _id: new ObjectId(id) });

/** Makes an account old enough that the standard (not the new-account) threshold applies to its content. */
async function age(u: TestUser, days = 30) {
  await deps.db.users.updateOne(
    { _id: new ObjectId(u.id) },
    { $set: { createdAt: new Date(Date.now() - days * DAY_MS) } },
  );
}

/**
 * People with a history: reporters' weight grows with account age (new accounts barely count), so the suite's
 * reporters are a year old. Authors are made new again where a test needs the new-account threshold.
 */
async function crowd<N extends number>(n: N) {
  const people = await newCrowd(n);
  await deps.db.users.updateMany(
    { _id: { $in: (people as TestUser[]).map((p) => new ObjectId(p.id)) } },
    { $set: { createdAt: new Date(Date.now() - 365 * DAY_MS) } },
  );
  return people;
}

/** Every post id a feed path yields, walking up to 10 pages of 100. */
async function feedIds(path: string, token?: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 10; i++) {
    const sep = path.includes("?") ? "&" : "?";
    const res: { status: number; body: Page; text: string } = await call<Page>(
      "GET",
      `${path}${sep}limit=100${cursor ? `&cursor=${cursor}` : ""}`,
      { token },
    );
    expect(res.status, `${path}: ${res.text}`).toBe(200);
    ids.push(...res.body.items.map((p) => p.id));
    cursor = res.body.nextCursor;
    if (!cursor) break;
  }
  return ids;
}

/** A post reachable through every feed: a unique tag, category and prompt word, and a follower. */
async function postInEveryFeed(author: TestUser, follower: TestUser) {
  const tag = uniqueName("t").toLowerCase();
  const category = uniqueName("c").toLowerCase().slice(0, 30);
  const word = uniqueName("w").toLowerCase();
  await call("PUT", `/v1/users/${author.id}/follow`, { token: follower.accessToken });
  const post = await publishedPost(author, { tags: [tag], category }, `a ${word} in the rain`);
  const feeds: [string, string | undefined][] = [
    ["/v1/feeds/new", undefined],
    ["/v1/feeds/trending", undefined],
    ["/v1/feeds/hot", undefined],
    ["/v1/feeds/top", undefined],
    ["/v1/feeds/following", follower.accessToken],
    [`/v1/feeds/category/${category}`, undefined],
    [`/v1/tags/${tag}/posts`, undefined],
    [`/v1/users/${author.id}/posts`, follower.accessToken],
    [`/v1/search/posts?q=${word}`, undefined],
  ];
  return { post, feeds };
}

/** The post's presence in each feed, first pages as served (cached ones included) and walked in full. */
async function presence(postId: string, feeds: [string, string | undefined][]): Promise<boolean[]> {
  return Promise.all(
    feeds.map(async ([path, token]) => {
      const first = await call<Page>("GET", path, { token });
      expect(first.status).toBe(200);
      const onFirstPage = first.body.items.some((p) => p.id === postId);
      const anywhere = (await feedIds(path, token)).includes(postId);
      // A hidden post must be gone from the served first page too (caches dropped in the same request).
      return onFirstPage || anywhere;
    }),
  );
}

describe("POST /v1/reports", () => {
  it("files a report (201) that keeps a snapshot even after the content is edited or deleted", async () => {
    const [author, reporter] = await crowd(2);
    const moderator = await userWithRole("moderator");
    const post = await publishedPost(author, {}, "a quiet harbour at dawn");
    const comment = await call<{ id: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: author.accessToken,
      body: { content: "original words" },
    });
    const res = await report(reporter, {
      targetType: "comment",
      targetId: comment.body.id,
      reason: "harassment",
      description: "rude",
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      targetType: "comment",
      targetId: comment.body.id,
      reason: "harassment",
      description: "rude",
      status: "pending",
    });
    const postReport = await reportPost(reporter, post.id, "nsfw");
    expect(postReport.status).toBe(201);

    await call("PATCH", `/v1/comments/${comment.body.id}`, { token: author.accessToken, body: { content: "edited" } });
    expect((await call("DELETE", `/v1/posts/${post.id}`, { token: author.accessToken })).status).toBe(204);

    const stored = await deps.db.reports.find({ reporterId: new ObjectId(reporter.id) });
    const byType = Object.fromEntries(stored.map((r) => [r.targetType, r.snapshot]));
    expect(byType.comment).toMatchObject({ text: "original words", authorId: author.id, username: author.username });
    expect(byType.post).toMatchObject({
      text: "a quiet harbour at dawn",
      imageUrl: post.imageUrl,
      authorId: author.id,
      username: author.username,
    });
    const queue = await call<{ items: QueueItem[] }>("GET", "/v1/admin/reports?limit=100", {
      token: moderator.accessToken,
    });
    const item = queue.body.items.find((i) => i.targetId === comment.body.id);
    expect(item?.snapshot.text).toBe("original words");
  });

  it("counts 20 concurrent reports by one reporter once: exactly one 201, the rest 409 problem+json", async () => {
    const [author, reporter] = await crowd(2);
    const post = await publishedPost(author);
    const responses = await Promise.all(Array.from({ length: 20 }, () => reportPost(reporter, post.id)));
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of responses.filter((x) => x.status !== 201)) expectProblem(r, 409, "conflict");
    expect(await deps.db.reports.find({ targetId: new ObjectId(post.id) })).toHaveLength(1);
  });

  it("refuses reporting yourself or your own content (403), unknown or invisible targets (404)", async () => {
    const [author, other] = await crowd(2);
    const post = await publishedPost(author);
    const hidden = await publishedPost(other, { visibility: "private" });
    expectProblem(await reportPost(author, post.id), 403, "forbidden");
    expectProblem(await report(author, { targetType: "user", targetId: author.id, reason: "spam" }), 403, "forbidden");
    expectProblem(await reportPost(author, new ObjectId().toHexString()), 404, "not_found");
    expectProblem(await reportPost(author, hidden.id), 404, "not_found");
    expectProblem(
      await report(author, { targetType: "comment", targetId: new ObjectId().toHexString(), reason: "spam" }),
      404,
      "not_found",
    );
    expectProblem(
      await report(author, { targetType: "user", targetId: new ObjectId().toHexString(), reason: "spam" }),
      404,
      "not_found",
    );
  });

  it("answers 400 problem+json naming the field for bad input, 401 without a token", async () => {
    const [author, reporter] = await crowd(2);
    const post = await publishedPost(author);
    const badReason = await report(reporter, { targetType: "post", targetId: post.id, reason: "ugly" });
    expectProblem(badReason, 400, "validation_failed");
    expect(fieldPaths(badReason)).toEqual(["reason"]);
    const long = await report(reporter, {
      targetType: "post",
      targetId: post.id,
      reason: "other",
      description: "x".repeat(501),
    });
    expect(fieldPaths(long)).toEqual(["description"]);
    expect(fieldPaths(await report(reporter, { targetType: "song", targetId: post.id, reason: "spam" }))).toEqual([
      "targetType",
    ]);
    expect(fieldPaths(await report(reporter, { targetType: "post", targetId: "nope", reason: "spam" }))).toEqual([
      "targetId",
    ]);
    expect(
      fieldPaths(await report(reporter, { targetType: "post", targetId: post.id, reason: "spam", weight: 9 })),
    ).toEqual(["weight"]);
    expectProblem(
      await call("POST", "/v1/reports", { body: { targetType: "post", targetId: post.id, reason: "spam" } }),
      401,
      "unauthorized",
    );
  });

  it("rate-limits reporters with a sliding window (429 with Retry-After)", async () => {
    const limited = appWith({ MODERATION_REPORTS_PER_WINDOW: "2" });
    const [author, reporter] = await crowd(2);
    const posts = await Promise.all([publishedPost(author), publishedPost(author), publishedPost(author)]);
    const send = (postId: string) =>
      call(
        "POST",
        "/v1/reports",
        { token: reporter.accessToken, body: { targetType: "post", targetId: postId, reason: "spam" } },
        limited,
      );
    expect((await send(posts[0]!.id)).status).toBe(201);
    expect((await send(posts[1]!.id)).status).toBe(201);
    const refused = await send(posts[2]!.id);
    expectProblem(refused, 429, "rate_limited");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });
});

describe("POST /v1/reports: one Data API wait, and no stale cache lets a report through", () => {
  it("files reports on a post, a comment and a user with one wait each; weight and snapshot follow the answer", async () => {
    const [author, reporter] = await crowd(2);
    const post = await publishedPost(author, {}, "a harbour at night");
    await call("GET", `/v1/posts/${post.id}`, { token: reporter.accessToken });
    const comment = await call<{ id: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: author.accessToken,
      body: { content: "buy my stuff" },
    });
    // The comment dropped the post's cached copy: the post's report goes on its lasting facts.
    const targets = [
      ["post", post.id],
      ["comment", comment.body.id],
      ["user", author.id],
    ] as const;
    for (const [targetType, targetId] of targets) {
      const res = await report(reporter, { targetType, targetId, reason: "harassment" });
      expect(res.status, `${targetType}: ${res.text}`).toBe(201);
      expect({ targetType, waits: waits(res.headers).mongo, calls: roundTrips(res.headers).mongo }).toEqual({
        targetType,
        waits: 1,
        calls: 1,
      });
    }
    const stored = await deps.db.reports.find({ reporterId: new ObjectId(reporter.id) });
    expect(Object.fromEntries(stored.map((r) => [r.targetType, [r.weight, r.snapshot?.authorId]]))).toEqual({
      post: [1, author.id],
      comment: [1, author.id],
      user: [1, author.id],
    });
    const texts = Object.fromEntries(stored.map((r) => [r.targetType, r.snapshot?.text]));
    expect([texts.post, texts.comment]).toEqual(["a harbour at night", "buy my stuff"]);
    expect((await user(author.id))?.reportCount).toBe(3);
    // Your own content is refused from the caches alone.
    const own = await reportPost(author, post.id);
    expectProblem(own, 403, "forbidden");
    expect(waits(own.headers).mongo ?? 0).toBe(0);
  });

  it("finds content deleted or removed since it was cached gone (404), and files nothing", async () => {
    const [author, reporter] = await crowd(2);
    const deleted = await publishedPost(author);
    const other = await publishedPost(author);
    await call("GET", `/v1/posts/${deleted.id}`, { token: reporter.accessToken });
    const comment = await call<{ id: string }>("POST", `/v1/posts/${other.id}/comments`, {
      token: author.accessToken,
      body: { content: "soon removed" },
    });
    // Changes whose cache drops failed: the copy and the facts still say they are there.
    await deps.db.posts.updateOne({ _id: new ObjectId(deleted.id) }, { $set: { deletedAt: new Date() } });
    await deps.db.comments.updateOne({ _id: new ObjectId(comment.body.id) }, { $set: { moderationStatus: "removed" } });
    expectProblem(await reportPost(reporter, deleted.id), 404, "not_found");
    expectProblem(
      await report(reporter, { targetType: "comment", targetId: comment.body.id, reason: "spam" }),
      404,
      "not_found",
    );
    expect(await deps.db.reports.find({ reporterId: new ObjectId(reporter.id) })).toHaveLength(0);
  });

  it("lets a follower report a followers-only post from its cached copy, and nobody else", async () => {
    const [author, follower, stranger] = await crowd(3);
    await call("PUT", `/v1/users/${author.id}/follow`, { token: follower.accessToken });
    const post = await publishedPost(author, { visibility: "followers" });
    expect((await call("GET", `/v1/posts/${post.id}`, { token: follower.accessToken })).status).toBe(200);
    const res = await reportPost(follower, post.id);
    expect(res.status, res.text).toBe(201);
    expect(waits(res.headers)).toMatchObject({ mongo: 1 });
    expectProblem(await reportPost(stranger, post.id), 404, "not_found");
    expect(await deps.db.reports.find({ targetId: new ObjectId(post.id) })).toHaveLength(1);
  });
});

describe("report thresholds", () => {
  it("hides a post from every feed right after the report that crosses the threshold; approving brings it back", async () => {
    const [author, follower, ...reporters] = await crowd(7);
    const moderator = await userWithRole("moderator");
    await age(author);
    const { post, feeds } = await postInEveryFeed(author, follower);
    expect(await presence(post.id, feeds)).toEqual(feeds.map(() => true));

    for (const r of reporters.slice(0, 4)) expect((await reportPost(r, post.id)).status).toBe(201);
    // Four reports of weight 1 stay under the threshold of 5.
    expect(await presence(post.id, feeds)).toEqual(feeds.map(() => true));

    const crossing = await reportPost(reporters[4]!, post.id);
    expect(crossing.status).toBe(201);
    expect(await presence(post.id, feeds)).toEqual(feeds.map(() => false));
    expectProblem(await call("GET", `/v1/posts/${post.id}`, { token: follower.accessToken }), 404, "not_found");
    const own = await call<{ moderationStatus: string }>("GET", `/v1/posts/${post.id}`, { token: author.accessToken });
    expect(own.body.moderationStatus).toBe("flagged");
    const flag = await deps.db.moderationActions.findOne({ targetId: new ObjectId(post.id), action: "flag" });
    expect(flag).toMatchObject({ source: "report_threshold", performedBy: "system", appealable: false });
    expect(flag?.reportIds).toHaveLength(5);

    let item: QueueItem | undefined;
    let cursor: string | null = null;
    do {
      const res: { body: { items: QueueItem[]; nextCursor: string | null } } = await call(
        "GET",
        `/v1/admin/reports?status=pending&limit=100${cursor ? `&cursor=${cursor}` : ""}`,
        { token: moderator.accessToken },
      );
      item = res.body.items.find((i) => i.targetId === post.id);
      cursor = res.body.nextCursor;
    } while (!item && cursor);
    expect(item).toMatchObject({ targetType: "post", reportCount: 5, totalWeight: 5 });
    expect(item?.reports.map((r) => r.reporterId).sort()).toEqual(reporters.map((r) => r.id).sort());

    const approved = await act(moderator, { targetType: "post", targetId: post.id, action: "approve", reason: "fine" });
    expect(approved.status, approved.text).toBe(201);
    expect(approved.body.reportIds).toHaveLength(5);
    expect(await presence(post.id, feeds)).toEqual(feeds.map(() => true));
    const reports = await deps.db.reports.find({ targetId: new ObjectId(post.id) });
    expect(reports.map((r) => r.status)).toEqual(Array(5).fill("dismissed"));
    // Dismissed reporters lose a little trust; the author keeps theirs.
    expect((await user(reporters[0]!.id))?.trustScore).toBe(49);
    expect((await user(author.id))?.trustScore).toBe(50);
  });

  it("records one automatic flag when many reports cross the threshold at once", async () => {
    const [author, ...reporters] = await crowd(9);
    await age(author);
    const post = await publishedPost(author);
    const responses = await Promise.all(reporters.map((r) => reportPost(r, post.id)));
    expect(responses.map((r) => r.status)).toEqual(reporters.map(() => 201));
    expect((await deps.db.posts.findOne({ _id: new ObjectId(post.id) }))?.moderationStatus).toBe("flagged");
    expect(await deps.db.moderationActions.find({ targetId: new ObjectId(post.id), action: "flag" })).toHaveLength(1);
  });

  it("does not let shadow-banned reporters' reports count", async () => {
    const [author, ...reporters] = await crowd(4);
    await deps.db.users.updateMany(
      { _id: { $in: reporters.map((r) => new ObjectId(r.id)) } },
      { $set: { shadowBanned: true } },
    );
    const post = await publishedPost(author);
    for (const r of reporters) expect((await reportPost(r, post.id)).status).toBe(201);
    expect((await deps.db.posts.findOne({ _id: new ObjectId(post.id) }))?.moderationStatus).toBe("approved");
  });

  it("hides content of very new accounts at a lower threshold (3 reports instead of 5)", async () => {
    const [author, ...reporters] = await crowd(5);
    await age(author, 0);
    const post = await publishedPost(author);
    expect((await reportPost(reporters[0]!, post.id)).status).toBe(201);
    expect((await reportPost(reporters[1]!, post.id)).status).toBe(201);
    expect((await deps.db.posts.findOne({ _id: new ObjectId(post.id) }))?.moderationStatus).toBe("approved");
    expect((await reportPost(reporters[2]!, post.id)).status).toBe(201);
    expect((await deps.db.posts.findOne({ _id: new ObjectId(post.id) }))?.moderationStatus).toBe("flagged");
    // Hidden pending review, it is still reportable by someone who saw it (and still 404 to read).
    expect((await reportPost(reporters[3]!, post.id)).status).toBe(201);
    expectProblem(await call("GET", `/v1/posts/${post.id}`, { token: reporters[3]!.accessToken }), 404, "not_found");
  });

  it("hides a reported comment from others (not its author) and queues a reported user", async () => {
    const [author, viewer, ...reporters] = await crowd(5);
    await age(author, 0);
    const post = await publishedPost(author);
    const comment = await call<{ id: string }>("POST", `/v1/posts/${post.id}/comments`, {
      token: author.accessToken,
      body: { content: "buy followers at spam.example" },
    });
    for (const r of reporters) {
      expect((await report(r, { targetType: "comment", targetId: comment.body.id, reason: "spam" })).status).toBe(201);
      expect((await report(r, { targetType: "user", targetId: author.id, reason: "spam" })).status).toBe(201);
    }
    const list = (token: string) =>
      call<{ items: { id: string }[] }>("GET", `/v1/posts/${post.id}/comments`, { token }).then((r) =>
        r.body.items.map((c) => c.id),
      );
    expect(await list(viewer.accessToken)).not.toContain(comment.body.id);
    expect(await list(author.accessToken)).toContain(comment.body.id);
    // A hidden comment leaves the post's count; approving it puts it back.
    const count = async () => (await deps.db.posts.findOne({ _id: new ObjectId(post.id) }))?.commentCount;
    expect(await count()).toBe(0);
    const moderator = await userWithRole("moderator");
    const approved = await act(moderator, {
      targetType: "comment",
      targetId: comment.body.id,
      action: "approve",
      reason: "ok",
    });
    expect(approved.status).toBe(201);
    expect(await list(viewer.accessToken)).toContain(comment.body.id);
    expect(await count()).toBe(1);
    expect((await user(author.id))?.moderationQueuedAt).toBeInstanceOf(Date);
    expect((await user(author.id))?.reportCount).toBe(6);
  });
});

describe("POST /v1/admin/moderation-actions", () => {
  let moderator: TestUser;
  beforeAll(async () => {
    moderator = await userWithRole("moderator");
  });

  it("removes content (soft): out of feeds, reports actioned, trust moved; restore brings it back", async () => {
    const [author, follower, r1, r2] = await crowd(4);
    await age(author);
    const { post, feeds } = await postInEveryFeed(author, follower);
    await reportPost(r1, post.id);
    await reportPost(r2, post.id, "nsfw");
    const removed = await act(moderator, {
      targetType: "post",
      targetId: post.id,
      action: "remove_content",
      reason: "nudity",
      notifyUser: true,
    });
    expect(removed.status, removed.text).toBe(201);
    expect(removed.body).toMatchObject({ action: "remove_content", source: "manual_review", appealable: true });
    expect(await presence(post.id, feeds)).toEqual(feeds.map(() => false));
    const reports = await deps.db.reports.find({ targetId: new ObjectId(post.id) });
    expect(reports.map((r) => [r.status, r.actionTaken])).toEqual([
      ["actioned", "removed"],
      ["actioned", "removed"],
    ]);
    expect((await user(author.id))?.trustScore).toBe(40);
    expect((await user(r1.id))?.trustScore).toBe(52);
    expect((await user(r1.id))?.reportsActioned).toBe(1);
    const notices = await deps.db.notifications.find({ userId: new ObjectId(author.id), type: "moderation" });
    expect(notices.map((n) => n.title)).toContain("Your content was removed by a moderator");

    const restored = await act(moderator, { targetType: "post", targetId: post.id, action: "restore", reason: "ok" });
    expect(restored.status).toBe(201);
    expect(await presence(post.id, feeds)).toEqual(feeds.map(() => true));
  });

  it("shadow-bans: the author's posts leave others' feeds and search but stay visible to them; their votes pay nothing", async () => {
    const [author, follower, other] = await crowd(3);
    const { post, feeds } = await postInEveryFeed(author, follower);
    const otherPost = await publishedPost(other);
    const res = await act(moderator, {
      targetType: "user",
      targetId: author.id,
      action: "shadow_ban",
      reason: "spam ring",
    });
    expect(res.status, res.text).toBe(201);
    expect(await presence(post.id, feeds)).toEqual(feeds.map(() => false));
    expectProblem(await call("GET", `/v1/posts/${post.id}`, { token: follower.accessToken }), 404, "not_found");
    // The author notices nothing.
    expect((await call("GET", `/v1/posts/${post.id}`, { token: author.accessToken })).status).toBe(200);
    expect(await feedIds(`/v1/users/${author.id}/posts`, author.accessToken)).toContain(post.id);
    // New posts are born shadowed too.
    const later = await publishedPost(author);
    expect(await feedIds(`/v1/users/${author.id}/posts`, follower.accessToken)).not.toContain(later.id);

    const vote = await call<{ voteCount: number }>("PUT", `/v1/posts/${otherPost.id}/vote`, {
      token: author.accessToken,
    });
    expect(vote.status).toBe(200);
    const stored = await deps.db.votes.findOne({
      postId: new ObjectId(otherPost.id),
      userId: new ObjectId(author.id),
    });
    // Settlement pays only votes matching { shadow: { $ne: true } } (src/features/gems/settlement.ts).
    expect(stored?.shadow).toBe(true);
    const payable = await deps.db.votes.find({ _id: stored!._id, shadow: { $ne: true } });
    expect(payable).toHaveLength(0);
    expect((await call<{ voteCount: number }>("GET", `/v1/posts/${otherPost.id}`)).body.voteCount).toBe(0);

    const lifted = await act(moderator, { targetType: "user", targetId: author.id, action: "unban", reason: "ok" });
    expect(lifted.status).toBe(201);
    expect(await presence(post.id, feeds)).toEqual(feeds.map(() => true));
  });

  it("bans: sessions revoked (refresh fails), the access token stops at once, sign-in refused; audited", async () => {
    const target = await signupUser();
    const res = await act(moderator, {
      targetType: "user",
      targetId: target.id,
      action: "ban",
      reason: "threats",
      durationHours: 72,
    });
    expect(res.status, res.text).toBe(201);
    expectProblem(await call("GET", "/v1/me", { token: target.accessToken }), 401, "unauthorized");
    expectProblem(
      await call("POST", "/v1/auth/refresh", { body: { refreshToken: target.refreshToken } }),
      401,
      "unauthorized",
    );
    expectProblem(
      await call("POST", "/v1/auth/login", { body: { login: target.username, password: target.password } }),
      401,
      "unauthorized",
    );
    // Write routes refuse the banned account.
    const [author] = await crowd(1);
    const post = await publishedPost(author);
    expectProblem(await reportPost(target, post.id), 401, "unauthorized");
    expectProblem(await call("PUT", `/v1/posts/${post.id}/vote`, { token: target.accessToken }), 401, "unauthorized");
    expect((await user(target.id))?.banExpiresAt?.getTime()).toBeGreaterThan(Date.now() + 71 * 3_600_000);

    const audit = await call<{
      items: { action: string; userId: string; actorId: string; metadata: { action: string } }[];
    }>("GET", `/v1/admin/audit?action=moderation_action&userId=${target.id}`, { token: moderator.accessToken });
    expect(audit.status).toBe(200);
    expect(audit.body.items).toHaveLength(1);
    expect(audit.body.items[0]).toMatchObject({
      userId: target.id,
      actorId: moderator.id,
      metadata: { action: "ban" },
    });
    expect(audit.text).not.toContain(TEST_EMAIL_DOMAIN);
  });

  it("keeps signed-in routes up when Redis is unreachable (the ban cut-off check fails open by default)", async () => {
    const [someone] = await crowd(1);
    const noRedis = appWith({ UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9", STORE_TIMEOUT_MS: "500" });
    expect((await call("GET", "/v1/me", { token: someone.accessToken }, noRedis)).status).toBe(200);
    const closed = appWith({ UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9", RATE_LIMIT_FAIL_MODE: "closed" });
    expectProblem(await call("GET", "/v1/me", { token: someone.accessToken }, closed), 503, "unavailable");
  });

  it("lets a timed ban lift itself when it has expired", async () => {
    const target = await signupUser();
    expect(
      (await act(moderator, { targetType: "user", targetId: target.id, action: "ban", reason: "cool off" })).status,
    ).toBe(201);
    await deps.db.users.updateOne(
      { _id: new ObjectId(target.id) },
      { $set: { banExpiresAt: new Date(Date.now() - 1_000) } },
    );
    const login = await call("POST", "/v1/auth/login", { body: { login: target.username, password: target.password } });
    expect(login.status).toBe(200);
  });

  it("answers 400 naming the field for bad actions, 404 for unknown targets", async () => {
    const [author] = await crowd(1);
    const post = await publishedPost(author);
    const wrongKind = await act(moderator, { targetType: "post", targetId: post.id, action: "ban", reason: "x" });
    expectProblem(wrongKind, 400, "validation_failed");
    expect(fieldPaths(wrongKind)).toEqual(["action"]);
    expect(
      fieldPaths(await act(moderator, { targetType: "post", targetId: post.id, action: "nuke", reason: "x" })),
    ).toEqual(["action"]);
    expect(fieldPaths(await act(moderator, { targetType: "post", targetId: post.id, action: "approve" }))).toEqual([
      "reason",
    ]);
    expect(
      fieldPaths(
        await act(moderator, {
          targetType: "user",
          targetId: author.id,
          action: "ban",
          reason: "x",
          expiresAt: "2001-01-01T00:00:00Z",
        }),
      ),
    ).toEqual(["expiresAt"]);
    expect(
      fieldPaths(
        await act(moderator, {
          targetType: "post",
          targetId: post.id,
          action: "approve",
          reason: "x",
          reportIds: [new ObjectId().toHexString()],
        }),
      ),
    ).toEqual(["reportIds"]);
    expectProblem(
      await act(moderator, {
        targetType: "post",
        targetId: new ObjectId().toHexString(),
        action: "approve",
        reason: "x",
      }),
      404,
      "not_found",
    );
  });
});

describe("moderator routes", () => {
  it("answer 403 to a user and 401 without a token", async () => {
    const [plain] = await crowd(1);
    const id = new ObjectId().toHexString();
    const routes: [string, string, unknown?][] = [
      ["GET", "/v1/admin/reports"],
      ["POST", `/v1/admin/reports/${id}/assign`],
      ["POST", "/v1/admin/moderation-actions", { targetType: "post", targetId: id, action: "approve", reason: "x" }],
      ["GET", "/v1/admin/appeals"],
      ["POST", `/v1/admin/appeals/${id}/decision`, { decision: "denied" }],
      ["GET", "/v1/admin/audit"],
    ];
    for (const [method, path, body] of routes) {
      expectProblem(await call(method, path, { token: plain.accessToken, body }), 403, "forbidden");
      expectProblem(await call(method, path, { body }), 401, "unauthorized");
    }
  });

  it("assigns a report to the calling moderator; an unknown report id is 404, a malformed one 400", async () => {
    const moderator = await userWithRole("moderator");
    const [author, reporter] = await crowd(2);
    const post = await publishedPost(author);
    const filed = await reportPost(reporter, post.id);
    const assigned = await call<{ id: string; assignedTo: string }>(
      "POST",
      `/v1/admin/reports/${filed.body.id}/assign`,
      {
        token: moderator.accessToken,
      },
    );
    expect(assigned.status, assigned.text).toBe(200);
    expect(assigned.body).toMatchObject({ id: filed.body.id, assignedTo: moderator.id });
    expect(waits(assigned.headers)).toMatchObject({ mongo: 1 });
    expectProblem(
      await call("POST", `/v1/admin/reports/${new ObjectId().toHexString()}/assign`, { token: moderator.accessToken }),
      404,
      "not_found",
    );
    expectProblem(
      await call("POST", "/v1/admin/reports/nope/assign", { token: moderator.accessToken }),
      400,
      "validation_failed",
    );
  });

  it("lists the queue oldest first, one item per target, with cursor pages", async () => {
    const moderator = await userWithRole("moderator");
    const [author, a, b] = await crowd(3);
    const first = await publishedPost(author);
    const second = await publishedPost(author);
    await reportPost(a, first.id);
    await reportPost(b, second.id);
    await reportPost(b, first.id, "nsfw");
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { items: QueueItem[]; nextCursor: string | null } } = await call(
        "GET",
        `/v1/admin/reports?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
        { token: moderator.accessToken },
      );
      expect(page.status).toBe(200);
      ids.push(...page.body.items.map((i) => i.targetId));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.indexOf(first.id)).toBeLessThan(ids.indexOf(second.id));
    const bad = await call("GET", "/v1/admin/reports?status=open", { token: moderator.accessToken });
    expect(fieldPaths(bad)).toEqual(["status"]);
  });

  it("keeps moderators to moderation entries in the audit log; filters validate", async () => {
    const moderator = await userWithRole("moderator");
    const admin = await userWithRole("admin");
    expectProblem(
      await call("GET", "/v1/admin/audit?action=login", { token: moderator.accessToken }),
      403,
      "forbidden",
    );
    const all = await call<{ items: { action: string }[] }>("GET", "/v1/admin/audit?limit=100", {
      token: moderator.accessToken,
    });
    expectEvery(all.body.items, (e) => ["moderation_action", "appeal_decided"].includes(e.action));
    const logins = await call<{ items: { action: string }[] }>(
      "GET",
      `/v1/admin/audit?action=login&userId=${admin.id}`,
      { token: admin.accessToken },
    );
    expect(logins.body.items.length).toBeGreaterThan(0);
    expect(logins.text).not.toContain(TEST_EMAIL_DOMAIN);
    expect(fieldPaths(await call("GET", "/v1/admin/audit?from=yesterday", { token: admin.accessToken }))).toEqual([
      "from",
    ]);
    expect(fieldPaths(await call("GET", "/v1/admin/audit?actorId=zz", { token: admin.accessToken }))).toEqual([
      "actorId",
    ]);
  });
});

describe("report brigading", () => {
  it("lets accounts made a minute ago neither hide a post nor reach the threshold fast; established reporters still can", async () => {
    const [author] = await crowd(1);
    await age(author, 0);
    const post = await publishedPost(author);
    // Three, then twenty, throwaway accounts: new reporters weigh a fifth, and weight from them alone never hides.
    const brigade = await newCrowd(20);
    for (const r of brigade.slice(0, 3)) expect((await reportPost(r, post.id)).status).toBe(201);
    const stored = async () => (await deps.db.posts.findOne({ _id: new ObjectId(post.id) }))?.moderationStatus;
    expect(await stored()).toBe("approved");
    const weights = (await deps.db.reports.find({ targetId: new ObjectId(post.id) })).map((r) => r.weight);
    expectEvery(weights, (w) => w === deps.config.moderation.newReporterFactor);
    for (const r of brigade.slice(3)) expect((await reportPost(r, post.id)).status).toBe(201);
    expect(await stored()).toBe("approved");
    // …but it waits for a moderator, with every report and its weight.
    const moderator = await userWithRole("moderator");
    let item: QueueItem | undefined;
    let cursor: string | null = null;
    do {
      const res: { body: { items: QueueItem[]; nextCursor: string | null } } = await call(
        "GET",
        `/v1/admin/reports?status=pending&limit=100${cursor ? `&cursor=${cursor}` : ""}`,
        { token: moderator.accessToken },
      );
      item = res.body.items.find((i) => i.targetId === post.id);
      cursor = res.body.nextCursor;
    } while (!item && cursor);
    expect(item?.reportCount).toBe(20);
    // One established reporter is enough to let the crossing hide it.
    const [regular] = await crowd(1);
    expect((await reportPost(regular, post.id)).status).toBe(201);
    expect(await stored()).toBe("flagged");
  });
});
