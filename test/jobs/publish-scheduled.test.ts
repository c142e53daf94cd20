import { describe, expect, it } from "vitest";
import type { JobContext } from "../../src/core/jobs";
import { createDeps, type Deps } from "../../src/deps";
import { publishScheduled, publishScheduledJob } from "../../src/features/posts/publish-scheduled";
import { ObjectId } from "../../src/platform/ids";
import { runJob } from "../../src/scheduler/runner";
import { call } from "../support/api";
import { appWith, testConfig, testDeps } from "../support/deps";
import { barrier } from "../support/jobs";
import { completedGeneration, fromNow, postIn } from "../support/posts";
import { crowd, type TestUser, userWithRole } from "../support/users";

const deps = testDeps();
const MINUTE = 60_000;

/** Deps whose clock stands at `ms` from now: the job sees that moment as now. */
function depsAt(ms: number): Deps {
  const at = new Date(Date.now() + ms);
  return createDeps(testConfig(), { clock: { now: () => at } });
}

/** A run of the job's logic without the scheduler's lease, so that several can really overlap. */
function unleasedRun(on: Deps, checkpoint: (name: string) => Promise<void> = async () => {}): Promise<unknown> {
  const ctx: JobContext = {
    deps: on,
    runId: crypto.randomUUID(),
    startedAt: on.clock.now(),
    timeLeft: () => 60_000,
    count: () => {},
    report: () => {},
    checkpoint,
  };
  return publishScheduled(ctx);
}

const follow = (who: TestUser, author: TestUser) =>
  call("PUT", `/v1/users/${author.id}/follow`, { token: who.accessToken });
const stored = (ids: string[]) => deps.db.posts.find({ _id: { $in: ids.map((id) => new ObjectId(id)) } });
const totalPosts = async (who: TestUser) =>
  (await deps.db.users.findOne({ _id: new ObjectId(who.id) }, { projection: { totalPosts: 1 } }))?.totalPosts;
/** The "new post" notifications a user got, per post id. */
async function announcementsTo(who: TestUser, postIds: string[]): Promise<Record<string, number>> {
  const docs = await deps.db.notifications.find({
    userId: new ObjectId(who.id),
    aggregationKey: { $in: postIds.map((id) => `post:${id}`) },
  });
  const out: Record<string, number> = {};
  for (const d of docs) out[d.aggregationKey.slice(5)] = (out[d.aggregationKey.slice(5)] ?? 0) + d.aggregationCount;
  return out;
}

describe("publish-scheduled", () => {
  it("publishes each due post exactly once and tells each follower once, however many runs overlap", async () => {
    const [author, ...followers] = await crowd(4);
    await Promise.all(followers.map((f) => follow(f, author)));
    const posts = await Promise.all(
      Array.from({ length: 5 }, () => postIn(author, { status: "scheduled", publishAt: fromNow(6 * MINUTE) })),
    );
    const ids = posts.map((p) => p.id);
    const later = depsAt(10 * MINUTE);
    // All three read the same due posts before any of them publishes one.
    const together = barrier("due", 3);
    await Promise.all([unleasedRun(later, together), unleasedRun(later, together), unleasedRun(later, together)]);

    const after = await stored(ids);
    expect(after.map((p) => p.status)).toEqual(Array(5).fill("published"));
    expect(after.every((p) => p.publishedBy === null && p.publishAt === null && p.fanout === null)).toBe(true);
    // Published as new at the moment of the run, not when it was scheduled.
    expect(after.every((p) => p.createdAt.getTime() === later.clock.now().getTime())).toBe(true);
    expect(await totalPosts(author)).toBe(5);
    for (const f of followers) {
      expect(await announcementsTo(f, ids)).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    }
    // Another run finds nothing more to do.
    await unleasedRun(depsAt(11 * MINUTE));
    expect(await totalPosts(author)).toBe(5);
  });

  it("catches up after an outage: every post whose time has passed goes out on the next run, later ones wait", async () => {
    const [author] = await crowd(1);
    const due = await Promise.all(
      [6, 20, 50].map((m) => postIn(author, { status: "scheduled", publishAt: fromNow(m * MINUTE) })),
    );
    const notYet = await postIn(author, { status: "scheduled", publishAt: fromNow(5 * 60 * MINUTE) });
    // No run for two hours, then one.
    const run = await runJob(depsAt(120 * MINUTE), publishScheduledJob, { trigger: "test" });
    expect(run.outcome).toBe("succeeded");
    expect((await stored(due.map((p) => p.id))).map((p) => p.status)).toEqual(["published", "published", "published"]);
    expect((await stored([notYet.id]))[0]?.status).toBe("scheduled");
    expect(await totalPosts(author)).toBe(3);
    const shown = await call<{ status: string }>("GET", `/v1/posts/${due[0]!.id}`);
    expect(shown.body.status).toBe("published");
  });

  it("counts posts once when a run dies between publishing and counting them: the next run finishes", async () => {
    const [author] = await crowd(1);
    const posts = await Promise.all(
      Array.from({ length: 3 }, () => postIn(author, { status: "scheduled", publishAt: fromNow(6 * MINUTE) })),
    );
    const crashed = await runJob(depsAt(10 * MINUTE), publishScheduledJob, {
      trigger: "test",
      onCheckpoint: (name) => {
        if (name === "published") throw new Error("crash after publishing");
      },
    });
    expect(crashed.outcome).toBe("failed");
    expect((await stored(posts.map((p) => p.id))).every((p) => p.status === "published" && p.publishedBy)).toBe(true);
    expect(await totalPosts(author)).toBe(0);
    // Too soon for another run to take the batch for a dead one: nothing is counted twice.
    await runJob(depsAt(11 * MINUTE), publishScheduledJob, { trigger: "test" });
    expect(await totalPosts(author)).toBe(0);
    // A lease later, the batch is finished once.
    const leaseMs = deps.config.jobs.leaseSeconds * 1000;
    await runJob(depsAt(10 * MINUTE + leaseMs + 5_000), publishScheduledJob, { trigger: "test" });
    await runJob(depsAt(10 * MINUTE + 2 * leaseMs), publishScheduledJob, { trigger: "test" });
    expect(await totalPosts(author)).toBe(3);
    expect((await stored(posts.map((p) => p.id))).every((p) => p.publishedBy === null)).toBe(true);
  });

  it("never publishes a post its author unscheduled or rescheduled after the run read it as due", async () => {
    const [author] = await crowd(1);
    const [unscheduled, rescheduled] = await Promise.all([
      postIn(author, { status: "scheduled", publishAt: fromNow(6 * MINUTE) }),
      postIn(author, { status: "scheduled", publishAt: fromNow(6 * MINUTE) }),
    ]);
    const token = author.accessToken;
    const later = fromNow(3 * 60 * MINUTE);
    let moved = false;
    // The author acts while the run holds the due posts it read, before it writes.
    await unleasedRun(depsAt(10 * MINUTE), async (name) => {
      if (name !== "due" || moved) return;
      moved = true;
      await call("PATCH", `/v1/posts/${unscheduled.id}`, { token, body: { status: "draft" } });
      await call("PATCH", `/v1/posts/${rescheduled.id}`, { token, body: { publishAt: later } });
    });
    expect(moved).toBe(true);
    const [a, b] = await stored([unscheduled.id, rescheduled.id]);
    expect([a?.status, b?.status]).toEqual(["draft", "scheduled"]);
    expect(b?.publishAt?.toISOString()).toBe(later);
    expect(await totalPosts(author)).toBe(0);
  });

  it("never publishes a scheduled post its author deleted", async () => {
    const [author] = await crowd(1);
    const post = await postIn(author, { status: "scheduled", publishAt: fromNow(6 * MINUTE) });
    expect((await call("DELETE", `/v1/posts/${post.id}`, { token: author.accessToken })).status).toBe(204);
    await unleasedRun(depsAt(10 * MINUTE));
    const [after] = await stored([post.id]);
    expect(after).toMatchObject({ status: "scheduled", publishAt: null });
    expect(after?.deletedAt).toBeInstanceOf(Date);
    expect(await totalPosts(author)).toBe(0);
  });
});

describe("new post announcements", () => {
  it("reach followers right after a post is published, before any job runs", async () => {
    const [author, fan] = await crowd(2);
    await follow(fan, author);
    const draft = await postIn(author, { status: "draft" });
    const fresh = await postIn(author, {});
    await call("PATCH", `/v1/posts/${draft.id}`, { token: author.accessToken, body: { status: "published" } });
    // The announcement runs after the answer: give it a moment (until nothing is owed any more), no job.
    const settled = async () => (await stored([draft.id, fresh.id])).every((p) => p.fanout === null);
    for (let i = 0; i < 50 && !(await settled()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await settled()).toBe(true);
    expect(await announcementsTo(fan, [draft.id, fresh.id])).toEqual({ [draft.id]: 1, [fresh.id]: 1 });
  });

  it("reach followers once they can see the post: not those who mute the author; a private or held one when it opens", async () => {
    const strict = appWith({ POST_BANNED_WORDS: "forbiddenword" });
    const [author, fan, muter] = await crowd(3);
    await Promise.all([follow(fan, author), follow(muter, author)]);
    await call("PUT", `/v1/users/${author.id}/mute`, { token: muter.accessToken });
    const open = await postIn(author, {});
    const secret = await postIn(author, { visibility: "private" });
    const generationId = await completedGeneration(author, "a forbiddenword at sea");
    const held = await call<{ id: string; status: string }>(
      "POST",
      "/v1/posts",
      { token: author.accessToken, body: { generationId } },
      strict,
    );
    expect(held.body.status).toBe("pending_review");
    const all = [open.id, secret.id, held.body.id];

    await unleasedRun(depsAt(0));
    expect(await announcementsTo(fan, all)).toEqual({ [open.id]: 1 });
    expect(await announcementsTo(muter, all)).toEqual({});

    const moderator = await userWithRole("moderator");
    const approved = await call("POST", "/v1/admin/moderation-actions", {
      token: moderator.accessToken,
      body: { targetType: "post", targetId: held.body.id, action: "approve", reason: "fine" },
    });
    expect(approved.status, approved.text).toBe(201);
    // The private post is news once followers can see it.
    await call("PATCH", `/v1/posts/${secret.id}`, { token: author.accessToken, body: { visibility: "followers" } });
    await unleasedRun(depsAt(0));
    expect(await announcementsTo(fan, all)).toEqual({ [open.id]: 1, [held.body.id]: 1, [secret.id]: 1 });
    expect(await announcementsTo(muter, all)).toEqual({});
    const inbox = await call<{ items: { type: string; title: string; actionPayload: { postId?: string } }[] }>(
      "GET",
      "/v1/notifications",
      { token: fan.accessToken },
    );
    const item = inbox.body.items.find((n) => n.actionPayload.postId === open.id);
    expect(item).toMatchObject({ type: "post", title: `${author.username} shared a new post` });
  });
});
