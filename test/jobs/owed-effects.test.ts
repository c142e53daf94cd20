import { describe, expect, it } from "vitest";
import type { JobContext } from "../../src/core/jobs";
import type { Deps } from "../../src/deps";
import { defineOwed, incrementsOn, owe, type SettleOutcome, settleOwed } from "../../src/features/owed/effects";
import { eraseUser as eraseOwed, exportSections as exportOwed } from "../../src/features/owed/privacy";
import { owedEffectsJob, sweepOwed } from "../../src/features/owed/sweep";
import { ObjectId } from "../../src/platform/ids";
import { call, owedCarriedOut, owedRecords, uniqueIp } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { runUntilDone } from "../support/jobs";
import { publishedPost } from "../support/posts";
import { crowd, type TestUser } from "../support/users";

/**
 * What writes owe after their answer (features/owed): recorded with the write, carried out right after the
 * response, and by the `owed-effects` sweep when that run never happened (the isolate died), failed, or died
 * holding its claim — in every case exactly once.
 */

const deps = testDeps();
/** The sweep as a cron run would see records the moment they are written (no grace for the request's own run). */
const eager = testDeps({ OWED_EFFECTS_SWEEP_GRACE_SECONDS: "0" });
/** An isolate that dies right after each answer: nothing runs after the response. */
const dying = appWith({ OWED_EFFECTS_AFTER_RESPONSE: "false" });

/** One sweep pass outside the job runner (no lease), so several can overlap as runs on two isolates would. */
async function sweepOnce(on: Deps): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const started = performance.now();
  const ctx: JobContext = {
    deps: on,
    runId: crypto.randomUUID(),
    startedAt: on.clock.now(),
    timeLeft: () => 20_000 - (performance.now() - started),
    count: (name, by = 1) => {
      counts[name] = (counts[name] ?? 0) + by;
    },
    report: () => {},
    checkpoint: async () => {},
  };
  await sweepOwed(ctx);
  return counts;
}

const byUser = (data: { userId: ObjectId }) => [data.userId];
const userDoc = (u: TestUser) => deps.db.users.findOne({ _id: new ObjectId(u.id) });
const voteGroup = (author: TestUser, postId: string) =>
  deps.db.notifications.findOne({ userId: new ObjectId(author.id), aggregationKey: `vote:${postId}` });

async function votedPost(): Promise<{ author: TestUser; postId: string }> {
  const [author] = await crowd(1);
  const post = await publishedPost(author);
  await call("GET", `/v1/posts/${post.id}`);
  return { author, postId: post.id };
}

describe("owed effects", () => {
  it("finishes a vote whose isolate died after the answer, once, on the sweep", async () => {
    const { author, postId } = await votedPost();
    const [voter] = await crowd(1);
    const res = await call(
      "PUT",
      `/v1/posts/${postId}/vote`,
      { token: voter.accessToken, ip: uniqueIp(), awaitOwed: false },
      dying,
    );
    expect(res.status, res.text).toBe(200);
    expect(owedRecords(res.headers)).toBe(1);
    const record = await deps.db.owedEffects.findOne({ requestId: res.headers.get("x-request-id") });
    expect(record).toMatchObject({ state: "pending", attempts: 0 });
    // The vote is recorded; what it owes is not done yet.
    expect((await userDoc(author))?.totalVotesReceived).toBe(0);
    expect(await voteGroup(author, postId)).toBeNull();

    // Within the grace the sweep leaves it to the request's own run…
    await sweepOnce(deps);
    expect((await deps.db.owedEffects.findOne({ _id: record!._id }))?.state).toBe("pending");
    // …after it (the grace is over), the sweep carries it out, and a second sweep finds nothing left to do.
    await deps.db.owedEffects.updateOne({ _id: record!._id }, { $set: { dueAt: new Date(Date.now() - 1) } });
    expect(await sweepOnce(deps)).toMatchObject({ done: 1 });
    expect(await sweepOnce(deps)).not.toHaveProperty("done");
    expect(await deps.db.owedEffects.findOne({ _id: record!._id })).toMatchObject({ state: "done", attempts: 1 });
    expect((await userDoc(author))?.totalVotesReceived).toBe(1);
    expect((await userDoc(voter))?.totalVotesGiven).toBe(1);
    expect(await voteGroup(author, postId)).toMatchObject({ aggregationCount: 1, read: false });
  });

  it("carries out each of 20 votes once while sweeps race their after-response runs", async () => {
    const { author, postId } = await votedPost();
    const voters = await crowd(20);
    // Records are due at once, so the sweeps compete with each request's own run for every one of them.
    const racing = appWith({ OWED_EFFECTS_SWEEP_GRACE_SECONDS: "0" });
    let voting = true;
    const sweepOutcomes: Record<string, number> = {};
    const sweeper = async () => {
      while (voting) {
        for (const [name, n] of Object.entries(await sweepOnce(eager)))
          sweepOutcomes[name] = (sweepOutcomes[name] ?? 0) + n;
      }
    };
    const sweepers = Promise.all([sweeper(), sweeper(), sweeper()]);
    const responses = await Promise.all(
      voters.map((v) =>
        call("PUT", `/v1/posts/${postId}/vote`, { token: v.accessToken, ip: uniqueIp(), awaitOwed: false }, racing),
      ),
    );
    await Promise.all(responses.map((r) => owedCarriedOut(r.headers)));
    voting = false;
    await sweepers;
    expectEvery(responses, (r) => r.status === 200);
    // The sweeps really took part: they found records while the requests' own runs were going.
    expect((sweepOutcomes.done ?? 0) + (sweepOutcomes.taken ?? 0)).toBeGreaterThan(0);
    expect((await userDoc(author))?.totalVotesReceived).toBe(20);
    const given = await deps.db.users.find({ _id: { $in: voters.map((v) => new ObjectId(v.id)) } });
    expectEvery(given, (u) => u.totalVotesGiven === 1, "voters' totals");
    expect((await voteGroup(author, postId))?.aggregationCount).toBe(20);
  });

  it("takes over a record whose run died holding it, once its claim runs out", async () => {
    const { author, postId } = await votedPost();
    const [voter] = await crowd(1);
    const res = await call("PUT", `/v1/posts/${postId}/vote`, { token: voter.accessToken, awaitOwed: false }, dying);
    const record = await deps.db.owedEffects.findOne({ requestId: res.headers.get("x-request-id") });
    // A run took it and died: its claim still holds for a while.
    const claimEnd = new Date(Date.now() + 60_000);
    await deps.db.owedEffects.updateOne(
      { _id: record!._id },
      { $set: { claimId: "a run that died", dueAt: claimEnd }, $inc: { attempts: 1 } },
    );
    await sweepOnce(eager);
    expect((await userDoc(author))?.totalVotesReceived).toBe(0);
    // The claim ran out.
    await deps.db.owedEffects.updateOne({ _id: record!._id }, { $set: { dueAt: new Date(Date.now() - 1) } });
    await sweepOnce(eager);
    expect(await deps.db.owedEffects.findOne({ _id: record!._id })).toMatchObject({ state: "done", attempts: 2 });
    expect((await userDoc(author))?.totalVotesReceived).toBe(1);
  });

  it("commits a slow run and the run that took it over once between them", async () => {
    const [subject] = await crowd(1);
    const gates: (() => void)[] = [];
    const slowCount = defineOwed<{ userId: ObjectId }>(
      "test.slow-count",
      async (on, data) => {
        await new Promise<void>((open) => gates.push(open));
        return { commit: incrementsOn(on, "users", [{ id: data.userId, inc: { totalVotesGiven: 1 } }]) };
      },
      byUser,
    );
    const owed = owe(deps, [slowCount({ userId: new ObjectId(subject.id) })]);
    await deps.db.batch([owed.step]);

    const slow = settleOwed(eager, owed.record._id);
    await until(() => gates.length === 1);
    // The slow run's claim runs out while it still works; a second run takes the record over.
    await deps.db.owedEffects.updateOne({ _id: owed.record._id }, { $set: { dueAt: new Date(Date.now() - 1) } });
    const takeover = settleOwed(eager, owed.record._id);
    await until(() => gates.length === 2);
    for (const open of gates) open();
    const outcomes: SettleOutcome[] = await Promise.all([slow, takeover]);
    expect(outcomes.sort()).toEqual(["done", "taken"]);
    expect((await userDoc(subject))?.totalVotesGiven).toBe(1);
  });

  it("repeats only the follow-ups of a record whose run died between its commit and its cache drops", async () => {
    const [subject] = await crowd(1);
    const followUps: string[] = [];
    const countThenDrop = defineOwed<{ userId: ObjectId }>(
      "test.count-then-drop",
      async (on, data) => ({
        commit: incrementsOn(on, "users", [{ id: data.userId, inc: { totalVotesGiven: 1 } }]),
        after: async () => {
          followUps.push(data.userId.toHexString());
        },
      }),
      byUser,
    );
    const owed = owe(deps, [countThenDrop({ userId: new ObjectId(subject.id) })]);
    await deps.db.batch([owed.step]);
    expect(await settleOwed(eager, owed.record._id)).toBe("done");
    expect((await userDoc(subject))?.totalVotesGiven).toBe(1);
    expect(followUps).toEqual([subject.id]);

    // Another record whose run committed (its counter moved) and died before the follow-ups.
    const interrupted = owe(deps, [countThenDrop({ userId: new ObjectId(subject.id) })]);
    await deps.db.batch([
      deps.db.owedEffects.inBatch.insertOne({
        ...interrupted.record,
        state: "committed",
        claimId: "a run that died",
        attempts: 1,
        dueAt: new Date(Date.now() - 1),
      }),
      deps.db.users.inBatch.updateOne({ _id: new ObjectId(subject.id) }, { $inc: { totalVotesGiven: 1 } }),
    ]);
    await sweepOnce(eager);
    expect(await deps.db.owedEffects.findOne({ _id: interrupted.record._id })).toMatchObject({ state: "done" });
    expect(followUps).toEqual([subject.id, subject.id]);
    expect((await userDoc(subject))?.totalVotesGiven).toBe(2);
  });

  it("retries a failing run after a backoff and marks it failed after the last attempt", async () => {
    const [subject] = await crowd(1);
    let failures = 1;
    const flaky = defineOwed<{ userId: ObjectId }>(
      "test.flaky",
      async (on, data) => {
        if (failures-- > 0) throw new Error("the notification store is having a moment");
        return { commit: incrementsOn(on, "users", [{ id: data.userId, inc: { totalVotesGiven: 1 } }]) };
      },
      byUser,
    );
    const owed = owe(deps, [flaky({ userId: new ObjectId(subject.id) })]);
    await deps.db.batch([owed.step]);
    expect(await settleOwed(eager, owed.record._id)).toBe("retry");
    const failed = await deps.db.owedEffects.findOne({ _id: owed.record._id });
    expect(failed).toMatchObject({ state: "pending", attempts: 1, lastError: expect.stringContaining("moment") });
    expect(failed!.dueAt.getTime()).toBeGreaterThan(Date.now() + 20_000);
    // Once the backoff is over the sweep runs it again.
    await deps.db.owedEffects.updateOne({ _id: owed.record._id }, { $set: { dueAt: new Date(Date.now() - 1) } });
    await sweepOnce(eager);
    expect(await deps.db.owedEffects.findOne({ _id: owed.record._id })).toMatchObject({ state: "done", attempts: 2 });
    expect((await userDoc(subject))?.totalVotesGiven).toBe(1);

    const broken = defineOwed<Record<string, never>>(
      "test.broken",
      async () => {
        throw new Error("always");
      },
      () => [],
    );
    const hopeless = owe(deps, [broken({})]);
    await deps.db.batch([hopeless.step]);
    const lastTry = testDeps({ OWED_EFFECTS_SWEEP_GRACE_SECONDS: "0", OWED_EFFECTS_MAX_ATTEMPTS: "2" });
    expect(await settleOwed(lastTry, hopeless.record._id)).toBe("retry");
    await deps.db.owedEffects.updateOne({ _id: hopeless.record._id }, { $set: { dueAt: new Date(Date.now() - 1) } });
    expect(await settleOwed(lastTry, hopeless.record._id)).toBe("failed");
    expect(await deps.db.owedEffects.findOne({ _id: hopeless.record._id })).toMatchObject({
      state: "failed",
      attempts: 2,
    });
  });

  it("exports a person's records (kinds and state, no data) and erases the finished ones", async () => {
    const { author, postId } = await votedPost();
    const [voter] = await crowd(1);
    await call("PUT", `/v1/posts/${postId}/vote`, { token: voter.accessToken });
    const pending = await call("PUT", `/v1/posts/${postId}/vote`, { token: author.accessToken, awaitOwed: false });
    expect(pending.status).toBe(403); // one's own post: nothing owed
    const sections: { section: string; items: unknown[] }[] = [];
    for await (const page of exportOwed(deps, voter.id)) sections.push(page);
    expect(sections).toEqual([
      {
        section: "owedEffects",
        items: [expect.objectContaining({ effects: ["vote.totals", "notify"], state: "done" })],
      },
    ]);
    expect(JSON.stringify(sections)).not.toContain(author.id);
    // An unfinished record about them stays until it is done.
    const [later] = await crowd(1);
    await call("PUT", `/v1/posts/${postId}/vote`, { token: later.accessToken, awaitOwed: false }, dying);
    await eraseOwed(deps, voter.id);
    await eraseOwed(deps, later.id);
    await eraseOwed(deps, later.id);
    expect(await deps.db.owedEffects.find({ subjects: new ObjectId(voter.id) })).toHaveLength(0);
    expect(await deps.db.owedEffects.find({ subjects: new ObjectId(later.id) })).toEqual([
      expect.objectContaining({ state: "pending" }),
    ]);
  });

  it("runs as a scheduled job", async () => {
    const run = await runUntilDone(owedEffectsJob);
    expect(run.outcome).toBe("succeeded");
  });
});

describe("owed effects of comments and reports", () => {
  const post = (id: string) => deps.db.posts.findOne({ _id: new ObjectId(id) });
  /**
   * Makes the request's record due (its grace over) and lets two overlapping sweeps at it, twice: it is done,
   * by one run, and a later sweep finds nothing left of it.
   */
  async function sweepTwiceAtOnce(requestId: string | null): Promise<void> {
    const record = await deps.db.owedEffects.findOne({ requestId });
    expect(record).toMatchObject({ state: "pending", attempts: 0 });
    await deps.db.owedEffects.updateOne({ _id: record!._id }, { $set: { dueAt: new Date(Date.now() - 1) } });
    await Promise.all([sweepOnce(deps), sweepOnce(deps)]);
    await Promise.all([sweepOnce(deps), sweepOnce(deps)]);
    expect(await deps.db.owedEffects.findOne({ _id: record!._id })).toMatchObject({ state: "done", attempts: 1 });
  }

  it("finishes a reply whose isolate died after the answer, once, on the sweep: counts and notifications", async () => {
    const [author, fan, replier] = await crowd(3);
    const target = await publishedPost(author);
    const top = await call<{ id: string }>("POST", `/v1/posts/${target.id}/comments`, {
      token: fan.accessToken,
      body: { content: "first" },
    });
    const res = await call<{ id: string }>(
      "POST",
      `/v1/posts/${target.id}/comments`,
      { token: replier.accessToken, body: { content: "second", parentId: top.body.id }, awaitOwed: false },
      dying,
    );
    expect(res.status, res.text).toBe(201);
    expect(owedRecords(res.headers)).toBe(1);
    const requestId = res.headers.get("x-request-id");
    // The reply is there (and on the page its author reads next); what it owes is not done yet.
    const page = await call<{ items: { id: string; replies: { id: string }[] }[] }>(
      "GET",
      `/v1/posts/${target.id}/comments`,
    );
    expect(page.body.items[0]?.replies.map((r) => r.id)).toEqual([res.body.id]);
    expect((await post(target.id))?.commentCount).toBe(1);
    expect((await deps.db.comments.findOne({ _id: new ObjectId(top.body.id) }))?.repliesCount).toBe(0);
    const notices = () => deps.db.notifications.find({ userId: { $in: [author, fan].map((u) => new ObjectId(u.id)) } });
    expect((await notices()).map((n) => n.type)).toEqual(["comment"]);

    await sweepTwiceAtOnce(requestId);
    expect((await post(target.id))?.commentCount).toBe(2);
    expect((await deps.db.comments.findOne({ _id: new ObjectId(top.body.id) }))?.repliesCount).toBe(1);
    const after = await notices();
    expect(after.map((n) => [n.type, n.aggregationCount]).sort()).toEqual([
      ["comment", 2],
      ["reply", 1],
    ]);
    // The cached copies the counts show were dropped by the sweep's run.
    const shown = await call<{ commentCount: number }>("GET", `/v1/posts/${target.id}`, { token: fan.accessToken });
    expect(shown.body.commentCount).toBe(2);
  });

  it("finishes a report whose isolate died after the answer, once, on the sweep: weight, snapshot, count, threshold", async () => {
    const [author, ...reporters] = await crowd(4);
    // A year-old reporter weighs 1; content of a brand-new account is hidden at 3 (see moderation/trust.ts).
    await deps.db.users.updateMany(
      { _id: { $in: reporters.map((r) => new ObjectId(r.id)) } },
      { $set: { createdAt: new Date(Date.now() - 365 * 86_400_000) } },
    );
    const target = await publishedPost(author);
    const comment = await call<{ id: string }>("POST", `/v1/posts/${target.id}/comments`, {
      token: author.accessToken,
      body: { content: "buy followers at spam.example" },
    });
    const file = (who: TestUser, app?: (request: Request) => Promise<Response>) =>
      call<{ id: string }>(
        "POST",
        "/v1/reports",
        {
          token: who.accessToken,
          body: { targetType: "comment", targetId: comment.body.id, reason: "spam" },
          awaitOwed: false,
        },
        app,
      );
    for (const r of reporters.slice(0, 2)) await owedCarriedOut((await file(r)).headers);
    const crossing = await file(reporters[2]!, dying);
    expect(crossing.status, crossing.text).toBe(201);
    expect(owedRecords(crossing.headers)).toBe(1);
    const filed = () => deps.db.reports.findOne({ _id: new ObjectId(crossing.body.id) });
    const status = async () =>
      (await deps.db.comments.findOne({ _id: new ObjectId(comment.body.id) }))?.moderationStatus;
    // Filed, not yet weighed: no weight, no snapshot, not counted, and the comment still shown.
    expect(await filed()).toMatchObject({ status: "pending", weight: null, snapshot: null });
    expect((await userDoc(author))?.reportCount).toBe(2);
    expect(await status()).toBe("approved");

    await sweepTwiceAtOnce(crossing.headers.get("x-request-id"));
    expect(await filed()).toMatchObject({ weight: 1, snapshot: { text: "buy followers at spam.example" } });
    expect((await userDoc(author))?.reportCount).toBe(3);
    expect(await status()).toBe("flagged");
    expect(
      await deps.db.moderationActions.find({ targetId: new ObjectId(comment.body.id), action: "flag" }),
    ).toHaveLength(1);
  });
});

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
