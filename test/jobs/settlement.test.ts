import { describe, expect, it } from "vitest";
import { authorCredit, settlementJob } from "../../src/features/gems/settlement";
import { newObjectId, ObjectId } from "../../src/platform/ids";
import { type RunResult, runJob } from "../../src/scheduler/runner";
import { testDeps } from "../support/deps";
import { crowd } from "../support/users";

// All settlement runs live in this file (they settle every payable vote), so no other suite's run holds the
// lease while these assert.
const deps = testDeps({ SETTLEMENT_BATCH_VOTES: "100" });
const HOUR = 3_600_000;

class SimulatedCrash extends Error {}

async function seedVotes(authors: { id: string }[], perAuthor: number) {
  const createdAt = new Date(Date.now() - HOUR);
  const votes = authors.flatMap((a) =>
    Array.from({ length: perAuthor }, () => ({
      _id: newObjectId(),
      postId: newObjectId(),
      userId: newObjectId(),
      postAuthorId: new ObjectId(a.id),
      deviceId: null,
      ipHash: "seed",
      sessionId: "seed",
      gemAwarded: false,
      gemBatchId: null,
      createdAt,
      fraudScore: 0,
      flagged: false,
      shadow: false,
    })),
  );
  await deps.db.votes.insertMany(votes);
  return votes;
}

async function settleUntilDone(): Promise<RunResult[]> {
  const runs: RunResult[] = [];
  for (let i = 0; i < 20; i++) {
    const run = await runJob(deps, settlementJob, { trigger: "test" });
    runs.push(run);
    if (run.outcome === "succeeded") return runs;
  }
  throw new Error("settlement did not finish");
}

describe("vote settlement", () => {
  it("computes an author's credit with the referral multiplier for votes cast inside the window", () => {
    const window = { from: new Date("2026-11-22T12:00:00Z"), until: new Date("2026-11-23T12:00:00Z") };
    const votes = [
      new Date("2026-11-22T11:59:59Z"),
      new Date("2026-11-23T11:00:00Z"),
      new Date("2026-11-23T11:59:59Z"),
      new Date("2026-11-23T12:30:00Z"),
    ];
    expect(
      authorCredit(
        votes.map((createdAt) => ({ createdAt })),
        window,
        1,
        2,
      ),
    ).toEqual({ amount: 6, baseAmount: 4, boosted: 2 });
    expect(
      authorCredit(
        votes.map((createdAt) => ({ createdAt })),
        null,
        3,
        2,
      ),
    ).toEqual({ amount: 12, baseAmount: 12, boosted: 0 });
  });

  it("credits 1,000 votes on 50 authors exactly once through a crash, a re-run and a concurrent run", async () => {
    const authors = await crowd(50);
    const boosted = authors.slice(0, 10);
    await deps.db.users.updateMany(
      { _id: { $in: boosted.map((a) => new ObjectId(a.id)) } },
      { $set: { referralBonusExpiresAt: new Date(Date.now() + HOUR) } },
    );
    const votes = await seedVotes(authors, 20);

    // Killed half-way: after moving balances in the fifth batch, before recording the entries as applied.
    let batches = 0;
    const crashed = await runJob(deps, settlementJob, {
      trigger: "test",
      onCheckpoint: (name) => {
        if (name === "balances-moved" && ++batches === 5) throw new SimulatedCrash("killed");
      },
    });
    expect(crashed.outcome).toBe("failed");

    // A re-run and a second run at the same moment, the second one without the lease (as if it had expired).
    const dropLease = () => deps.redis.del(deps.keys.jobLease(settlementJob.name)).then(() => {});
    await Promise.all([
      settleUntilDone(),
      runJob(deps, settlementJob, { trigger: "test-overlap", onCheckpoint: dropLease }),
    ]);
    await settleUntilDone();

    const ids = authors.map((a) => new ObjectId(a.id));
    const users = await deps.db.users.find({ _id: { $in: ids } });
    const entries = await deps.db.gemTransactions.find({ userId: { $in: ids }, source: "votes" }, { limit: 10_000 });
    for (const user of users) {
      const isBoosted = boosted.some((b) => b.id === user._id.toHexString());
      expect(user.gemBalance).toBe(isBoosted ? 40 : 20);
      const mine = entries.filter((e) => e.userId.equals(user._id));
      expect(mine.every((e) => e.status === "applied")).toBe(true);
      expect(mine.reduce((s, e) => s + e.amount, 0)).toBe(user.gemBalance);
      // Each entry records the balance it produced: they chain up to the current balance.
      const recorded = mine.filter((e) => e.balanceAfter !== null).sort((x, y) => x.balanceAfter! - y.balanceAfter!);
      for (const e of recorded) expect(e.balanceAfter! - e.balanceBefore!).toBe(e.amount);
      expect(recorded.at(-1)?.balanceAfter).toBe(user.gemBalance);
      expect(user.totalGemsEarned).toBe(user.gemBalance);
      // Leaderboards saw each author's earnings exactly once, crash and overlap included.
      expect(await deps.redis.zscore(deps.keys.leaderboardAlltime(), user._id.toHexString())).toBe(user.gemBalance);
    }
    // One grouped "gems from votes" notice per author, however many batches paid them.
    const notices = await deps.db.notifications.find({ userId: { $in: ids }, type: "gem_earned" }, { limit: 1_000 });
    expect(notices).toHaveLength(authors.length);
    const settled = await deps.db.votes.find({ _id: { $in: votes.map((v) => v._id) } }, { limit: 2_000 });
    expect(settled.every((v) => v.gemAwarded && typeof v.gemBatchId === "string")).toBe(true);
    // One entry per author per batch.
    const perBatch = new Set(entries.map((e) => `${e.referenceId}:${e.userId.toHexString()}`));
    expect(perBatch.size).toBe(entries.length);
  });

  it("pays nothing for flagged, shadow-banned or too-recent votes", async () => {
    const [author] = await crowd(1);
    const [vote] = await seedVotes([author!], 1);
    await deps.db.votes.insertMany([
      { ...vote!, _id: newObjectId(), postId: newObjectId(), flagged: true },
      { ...vote!, _id: newObjectId(), postId: newObjectId(), shadow: true },
      { ...vote!, _id: newObjectId(), postId: newObjectId(), createdAt: new Date() },
    ]);
    await settleUntilDone();
    expect((await deps.db.users.findOne({ _id: new ObjectId(author!.id) }))?.gemBalance).toBe(1);
  });
});
