import { describe, expect, it } from "vitest";
import { creatorAnalytics } from "../../src/features/analytics/creator";
import { flushAnalyticsJob } from "../../src/features/analytics/flush";
import { authorCredit, settlementJob } from "../../src/features/gems/settlement";
import { currentWindows } from "../../src/features/leaderboards/periods";
import { newVoteDoc } from "../../src/features/votes/documents";
import { newObjectId, ObjectId } from "../../src/platform/ids";
import { type RunResult, runJob } from "../../src/scheduler/runner";
import { call, uniqueIp } from "../support/api";
import { testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { publishedPost } from "../support/posts";
import { crowd, signupUser } from "../support/users";

// All settlement runs live in this file (they settle every payable vote), so no other suite's run holds the
// lease while these assert.
const deps = testDeps({ SETTLEMENT_BATCH_VOTES: "100" });
const HOUR = 3_600_000;

class SimulatedCrash extends Error {}

async function seedVotes(authors: { id: string }[], perAuthor: number) {
  const createdAt = new Date(Date.now() - HOUR);
  const votes = authors.flatMap((a) =>
    Array.from({ length: perAuthor }, () =>
      newVoteDoc({
        postId: newObjectId(),
        userId: newObjectId(),
        postAuthorId: new ObjectId(a.id),
        deviceId: null,
        ipHash: "seed",
        sessionId: "seed",
        createdAt,
        fraudScore: 0,
        flagged: false,
        shadow: false,
      }),
    ),
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

/** Gems earned today per user in creator analytics, once the analytics flush has moved their events. */
async function gemsEarnedInAnalytics(userIds: string[]): Promise<Map<string, number>> {
  for (let attempt = 0; ; attempt++) {
    await runJob(deps, flushAnalyticsJob, { trigger: "test" });
    const left = await deps.db.analyticsEvents.findOne({ ownerId: { $in: userIds } }, { projection: { _id: 1 } });
    if (!left) break;
    if (attempt === 100) throw new Error("the gem_earned events were never flushed");
    await new Promise((r) => setTimeout(r, 150));
  }
  // As GET /v1/me/analytics reads them.
  const today = new Date().toISOString().slice(0, 10);
  const gems = new Map<string, number>();
  for (const id of userIds) {
    const viewer = { id, sessionId: "s", role: "user" as const, tier: "free" as const };
    gems.set(id, (await creatorAnalytics(deps, viewer, { from: today, to: today })).totals.gemsEarned);
  }
  return gems;
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

  it("credits 1,000 votes on 50 authors exactly once through a crash and two overlapping runs", async () => {
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

    // Two runs that really overlap. Run A resumes the crashed batch; once it has claimed it, its lease is dropped
    // (as if it had expired) and run B starts, takes the lease and works on the same unfinished batch. A waits
    // until B has written that batch's entries, then carries on at the same time as B.
    const dropLease = () => deps.redis.del(deps.keys.jobLease(settlementJob.name)).then(() => {});
    let second: Promise<RunResult> | undefined;
    let secondWorked = () => {};
    const secondHasWorked = new Promise<void>((resolve) => {
      secondWorked = resolve;
    });
    const first = await runJob(deps, settlementJob, {
      trigger: "test-overlap-a",
      onCheckpoint: async (name) => {
        if (name !== "claimed" || second) return;
        await dropLease();
        second = runJob(deps, settlementJob, {
          trigger: "test-overlap-b",
          onCheckpoint: (step) => {
            if (step === "entries-written") secondWorked();
          },
        });
        // If B found nothing to do the test fails below; don't wait forever for it.
        void second.finally(secondWorked);
        await secondHasWorked;
      },
    });
    const overlapping = await second;
    expect(overlapping?.outcome).toBeDefined();
    expect(overlapping?.outcome).not.toBe("skipped");
    expect(first.counts.batches ?? 0).toBeGreaterThan(0);
    expect(overlapping?.counts.batches ?? 0).toBeGreaterThan(0);
    await settleUntilDone();

    const ids = authors.map((a) => new ObjectId(a.id));
    const users = await deps.db.users.find({ _id: { $in: ids } });
    expect(users).toHaveLength(authors.length);
    const entries = await deps.db.gemTransactions.find({ userId: { $in: ids }, source: "votes" }, { limit: 10_000 });
    for (const user of users) {
      const isBoosted = boosted.some((b) => b.id === user._id.toHexString());
      expect(user.gemBalance).toBe(isBoosted ? 40 : 20);
      const mine = entries.filter((e) => e.userId.equals(user._id));
      expectEvery(mine, (e) => e.status === "applied", "the author's entries");
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
    expectEvery(settled, (v) => v.gemAwarded && typeof v.gemBatchId === "string");
    // One entry per author per batch.
    const perBatch = new Set(entries.map((e) => `${e.referenceId}:${e.userId.toHexString()}`));
    expect(perBatch.size).toBe(entries.length);
    // Creator analytics counted each author's gems exactly once too (`gem_earned` per entry, crash and overlap).
    const gems = await gemsEarnedInAnalytics(authors.map((a) => a.id));
    for (const user of users) expect(gems.get(user._id.toHexString()), "gems in analytics").toBe(user.gemBalance);
  });

  it("pays nothing for flagged, shadow-banned or too-recent votes", async () => {
    const [author] = await crowd(1);
    const [vote] = await seedVotes([author], 1);
    await deps.db.votes.insertMany([
      { ...vote!, _id: newObjectId(), postId: newObjectId(), flagged: true },
      { ...vote!, _id: newObjectId(), postId: newObjectId(), shadow: true },
      { ...vote!, _id: newObjectId(), postId: newObjectId(), createdAt: new Date() },
    ]);
    await settleUntilDone();
    expect((await deps.db.users.findOne({ _id: new ObjectId(author.id) }))?.gemBalance).toBe(1);
  });

  it("credits a deleted author's votes to the ledger but never puts them back on a leaderboard", async () => {
    const [author, active] = await crowd(2);
    await seedVotes([author, active], 2);
    await deps.db.users.updateOne({ _id: new ObjectId(author.id) }, { $set: { deletedAt: new Date() } });
    await settleUntilDone();
    expect((await deps.db.users.findOne({ _id: new ObjectId(author.id) }))?.gemBalance).toBe(2);
    const boards = currentWindows(new Date(), deps.keys).map((w) => w.key);
    const scores = (id: string) => Promise.all(boards.map(async (key) => Number(await deps.redis.zscore(key, id))));
    expect(await scores(active.id)).toEqual([2, 2, 2]);
    expect(await scores(author.id)).toEqual([0, 0, 0]);
  });
});

describe("settlement's fraud review", () => {
  const voteAs = (token: string, postId: string, ip: string, device: string) =>
    call("PUT", `/v1/posts/${postId}/vote`, { token, ip, headers: { "x-device-id": device } });
  const earnedBy = async (userId: string) =>
    (await deps.db.gemTransactions.find({ userId: new ObjectId(userId), source: "votes" })).reduce(
      (sum, e) => sum + e.amount,
      0,
    );
  /** An account with a history: a year old, with posts of its own. */
  const establish = (ids: string[]) =>
    deps.db.users.updateMany(
      { _id: { $in: ids.map((id) => new ObjectId(id)) } },
      { $set: { createdAt: new Date(Date.now() - 400 * 24 * HOUR), totalPosts: 5 } },
    );
  const ageVotes = (postIds: string[]) =>
    deps.db.votes.updateMany(
      { postId: { $in: postIds.map((id) => new ObjectId(id)) } },
      { $set: { createdAt: new Date(Date.now() - HOUR) } },
    );

  it("pays none of a sock-puppet ring on one address, a ring across addresses, or a second account on the owner's phone", async () => {
    const phone = `phone-${crypto.randomUUID()}`;
    const owner = await signupUser({ deviceId: phone, platform: "ios" });
    const puppet = await signupUser({ deviceId: phone, platform: "ios" });
    const [fan, ...puppets] = await crowd(12);
    await establish([fan.id, owner.id]);
    const posts = [await publishedPost(owner), await publishedPost(owner)];
    const ids = posts.map((p) => p.id);
    // Eight fresh accounts on one address, each with a made-up device id.
    const farm = uniqueIp();
    for (const p of puppets.slice(0, 8)) await voteAs(p.accessToken, ids[0]!, farm, crypto.randomUUID());
    // Three fresh accounts on addresses of their own, voting for this author only.
    for (const p of puppets.slice(8, 11)) {
      for (const id of ids) await voteAs(p.accessToken, id, uniqueIp(), crypto.randomUUID());
    }
    // The owner's second account, on the owner's phone.
    await voteAs(puppet.accessToken, ids[0]!, uniqueIp(), phone);
    // One real fan.
    for (const id of ids) await voteAs(fan.accessToken, id, uniqueIp(), crypto.randomUUID());
    await ageVotes(ids);
    await settleUntilDone();

    expect(await earnedBy(owner.id)).toBe(2 * deps.config.gems.perVote);
    const votes = await deps.db.votes.find({ postId: { $in: ids.map((id) => new ObjectId(id)) } });
    expect(votes).toHaveLength(8 + 6 + 1 + 2);
    const voteOf = (userId: string) => votes.find((v) => v.userId.toHexString() === userId);
    const reasonsOf = (userId: string) => voteOf(userId)?.fraudReasons ?? [];
    // The farm's later votes were already flagged when cast (young accounts crowding an address); the review
    // withheld the rest.
    const flaggedAtVote = puppets.slice(0, 8).filter((p) => !voteOf(p.id)?.fraudReasons);
    expectEvery(flaggedAtVote, (p) => (voteOf(p.id)?.fraudScore ?? 0) >= deps.config.votes.fraudFlagThreshold);
    expectEvery(
      puppets.slice(0, 8).filter((p) => voteOf(p.id)?.fraudReasons),
      (p) => reasonsOf(p.id).includes("ip_cluster"),
    );
    expectEvery(puppets.slice(0, 8), (p) => voteOf(p.id)?.flagged === true);
    expectEvery(puppets.slice(8, 11), (p) => reasonsOf(p.id).includes("single_author_ring"));
    expect(reasonsOf(puppet.id)).toContain("linked_device");
    expect(votes.filter((v) => v.gemAwarded).map((v) => v.userId.toHexString())).toEqual([fan.id, fan.id]);
  });
});
