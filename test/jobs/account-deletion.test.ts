import { describe, expect, it } from "vitest";
import { accountDeletionJob } from "../../src/features/privacy/deletion";
import { ObjectId } from "../../src/platform/ids";
import { runJob } from "../../src/scheduler/runner";
import { call } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { publishedPost } from "../support/posts";
import { expectProblem } from "../support/problems";
import { signupUser, type TestUser, users } from "../support/users";

// Every run of this job lives in this file. With no delay it also settles deletions other suites left
// unsettled; that is what it is for, and their results hold either way.
const deps = testDeps();
const PER_PASS = 10;
const sweep = testDeps({
  ACCOUNT_DELETION_SWEEP_DELAY_SECONDS: "0",
  ACCOUNT_DELETION_RECOUNT_THREADS: String(PER_PASS),
});
const onePassPerRequest = appWith({ ACCOUNT_DELETION_RECOUNT_THREADS: String(PER_PASS) });

class SimulatedCrash extends Error {}

const oid = (id: string) => new ObjectId(id);

async function comment(u: TestUser, postId: string, content: string, parentId?: string): Promise<string> {
  const res = await call<{ id: string }>("POST", `/v1/posts/${postId}/comments`, {
    token: u.accessToken,
    body: { content, ...(parentId ? { parentId } : {}) },
  });
  expect(res.status, res.text).toBe(201);
  return res.body.id;
}

interface Scene {
  victim: TestUser;
  posts: string[];
  parents: string[];
}

/**
 * A victim who commented on `postCount` posts of others (twice on the first) and replied to `parentCount`
 * comments of others; the threads hold other people's comments too, which must stay counted.
 */
async function commenter(postCount: number, parentCount: number): Promise<Scene> {
  const [victim, author, other] = await users(3);
  const posts = await Promise.all(Array.from({ length: postCount }, () => publishedPost(author).then((p) => p.id)));
  const parents = await Promise.all(
    posts.map(async (postId, i) => {
      await comment(other, postId, "someone else's comment");
      await comment(victim, postId, "the victim's comment");
      if (i === 0) await comment(victim, postId, "the victim again");
      if (i >= parentCount) return null;
      const parent = await comment(other, postId, "a comment the victim answers");
      await comment(victim, postId, "the victim's reply", parent);
      await comment(other, postId, "another reply", parent);
      return parent;
    }),
  ).then((ids) => ids.filter((id): id is string => id !== null));
  return { victim, posts, parents };
}

/** Every thread's stored count equals what it holds that others can see, and the victim's comments are gone. */
async function expectExactCounts({ victim, posts, parents }: Scene): Promise<void> {
  const live = { deletedAt: null, authorShadowBanned: { $ne: true } };
  const [postDocs, parentDocs, victimLive] = await Promise.all([
    deps.db.posts.find({ _id: { $in: posts.map(oid) } }),
    deps.db.comments.find({ _id: { $in: parents.map(oid) } }),
    deps.db.comments.find({ userId: oid(victim.id), deletedAt: null }),
  ]);
  expect(victimLive).toEqual([]);
  for (const post of postDocs) {
    const counted = await deps.db.comments.find({ postId: post._id, ...live });
    expect(post.commentCount, post._id.toHexString()).toBe(counted.length);
  }
  for (const parent of parentDocs) {
    const replies = await deps.db.comments.find({ parentId: parent._id, ...live });
    expect(parent.repliesCount, parent._id.toHexString()).toBe(replies.length);
    expect(parent.repliesCount).toBe(1);
  }
  expect(postDocs.map((p) => p.commentCount).sort()).toEqual(posts.map((_, i) => (i < parents.length ? 3 : 1)).sort());
}

describe("account-deletion job", () => {
  it("finishes the recount of an account with more threads than one pass takes", async () => {
    const scene = await commenter(23, 12);
    const res = await call("DELETE", "/v1/me", { token: scene.victim.accessToken }, onePassPerRequest);
    expect(res.status, res.text).toBe(202);
    // The request hid everything and recounted the first pass's threads only.
    const midway = await deps.db.users.findOne({ _id: oid(scene.victim.id) });
    expect(midway?.deletionSettledAt ?? null).toBeNull();
    expect(midway?.deletionRecountAfter?.posts).toBeInstanceOf(ObjectId);
    const recounted = await deps.db.posts.find({
      _id: { $in: scene.posts.map(oid) },
      uncountedAccounts: oid(scene.victim.id),
    });
    expect(recounted).toHaveLength(PER_PASS);
    expect(await deps.db.comments.find({ userId: oid(scene.victim.id), deletedAt: null })).toEqual([]);

    const run = await runJob(sweep, accountDeletionJob, { trigger: "test" });
    expect(run.outcome).toBe("succeeded");
    expect(run.counts.passes).toBeGreaterThanOrEqual(2);
    const settled = await deps.db.users.findOne({ _id: oid(scene.victim.id) });
    expect(settled?.deletionSettledAt).toBeInstanceOf(Date);
    expect(settled).not.toHaveProperty("deletionRecountAfter");
    await expectExactCounts(scene);
  });

  it("takes each account's comments out of a count once, however often the recount runs", async () => {
    const scene = await commenter(3, 2);
    expect((await call("DELETE", "/v1/me", { token: scene.victim.accessToken })).status).toBe(202);
    await expectExactCounts(scene);
    // As if the settlement had never been recorded: everything runs again.
    await deps.db.users.updateOne(
      { _id: oid(scene.victim.id) },
      { $set: { deletionSettledAt: null }, $unset: { deletionRecountAfter: "" } },
    );
    expect((await runJob(sweep, accountDeletionJob, { trigger: "test" })).outcome).toBe("succeeded");
    expect((await runJob(sweep, accountDeletionJob, { trigger: "test" })).outcome).toBe("succeeded");
    await expectExactCounts(scene);
  });

  it.each(["hidden", "recounted"])(
    "completes a deletion whose request died after marking the account, even when a run crashes at %s",
    async (crashPoint) => {
      const scene = await commenter(PER_PASS + 3, 2);
      const [fan] = await users(1);
      expect((await call("PUT", `/v1/users/${scene.victim.id}/follow`, { token: fan.accessToken })).status).toBe(204);
      const own = await publishedPost(scene.victim);
      // Cached with the victim in them: the fan's following page and the victim's profile.
      expect(
        (
          await call<{ items: { id: string }[] }>("GET", "/v1/feeds/following", { token: fan.accessToken })
        ).body.items.map((p) => p.id),
      ).toEqual([own.id]);
      expect((await call("GET", `/v1/users/${scene.victim.username}`)).status).toBe(200);
      // The request got as far as marking the account (its first write) and no further; deleted long ago, so
      // this account is the first the run picks up, and the crash hits it.
      await deps.db.users.updateOne(
        { _id: oid(scene.victim.id) },
        { $set: { deletedAt: new Date(Date.UTC(2001, 0, 1)), deletionSettledAt: null } },
      );
      const crashed = await runJob(sweep, accountDeletionJob, {
        trigger: "test",
        onCheckpoint: (name) => {
          if (name === crashPoint) throw new SimulatedCrash(`killed at ${name}`);
        },
      });
      expect(crashed.outcome).toBe("failed");
      expect(crashed.error).toContain(`killed at ${crashPoint}`);

      expect((await runJob(sweep, accountDeletionJob, { trigger: "test" })).outcome).toBe("succeeded");
      await expectExactCounts(scene);
      expectProblem(await call("GET", `/v1/posts/${own.id}`, { token: fan.accessToken }), 404, "not_found");
      expect(
        (await call<{ items: unknown[] }>("GET", "/v1/feeds/following", { token: fan.accessToken })).body.items,
      ).toEqual([]);
      expectProblem(await call("GET", `/v1/users/${scene.victim.username}`), 404, "not_found");
      // The account standing was forgotten, so the victim's live token stops.
      expectProblem(await call("GET", "/v1/me", { token: scene.victim.accessToken }), 401, "unauthorized");
      expect(await deps.db.sessions.find({ userId: oid(scene.victim.id), revokedAt: null })).toEqual([]);
      expect(await deps.db.auditLogs.find({ userId: oid(scene.victim.id), action: "account_deleted" })).toHaveLength(1);
    },
  );

  it("answers 202 once the content is hidden even if Redis then fails, and the job does the rest", async () => {
    const scene = await commenter(2, 1);
    const own = await publishedPost(scene.victim);
    expect((await call("GET", `/v1/users/${scene.victim.username}`)).status).toBe(200);
    const redisDown = appWith({ UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9" });
    const res = await call("DELETE", "/v1/me", { token: scene.victim.accessToken }, redisDown);
    expect(res.status, res.text).toBe(202);
    expectProblem(await call("GET", `/v1/posts/${own.id}`), 404, "not_found");
    const owed = await deps.db.users.findOne({ _id: oid(scene.victim.id) });
    expect(owed?.deletedAt).toBeInstanceOf(Date);
    expect(owed?.deletionSettledAt ?? null).toBeNull();

    expect((await runJob(sweep, accountDeletionJob, { trigger: "test" })).outcome).toBe("succeeded");
    expect((await deps.db.users.findOne({ _id: oid(scene.victim.id) }))?.deletionSettledAt).toBeInstanceOf(Date);
    await expectExactCounts(scene);
    expectProblem(await call("GET", `/v1/users/${scene.victim.username}`), 404, "not_found");
    expectProblem(await call("GET", "/v1/me", { token: scene.victim.accessToken }), 401, "unauthorized");
  });

  it("leaves accounts inside the sweep delay to their own request", async () => {
    const victim = await signupUser();
    const post = await publishedPost(victim);
    await deps.db.users.updateOne(
      { _id: oid(victim.id) },
      { $set: { deletedAt: new Date(), deletionSettledAt: null } },
    );
    const delayed = testDeps({ ACCOUNT_DELETION_SWEEP_DELAY_SECONDS: "3600" });
    expect((await runJob(delayed, accountDeletionJob, { trigger: "test" })).outcome).toBe("succeeded");
    expect(await deps.db.posts.findOne({ _id: oid(post.id) })).toMatchObject({ deletedAt: null });
    // Past the delay, it is settled like any other.
    expect((await runJob(sweep, accountDeletionJob, { trigger: "test" })).outcome).toBe("succeeded");
    expect((await deps.db.posts.findOne({ _id: oid(post.id) }))?.deletedAt).toBeInstanceOf(Date);
  });
});
