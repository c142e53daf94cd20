import { describe, expect, it } from "vitest";
import type { Finding } from "../../src/core/jobs";
import type { GemTransactionDoc } from "../../src/db";
import { pendingEntry } from "../../src/features/gems/ledger";
import { reconciliationJob } from "../../src/features/reconciliation/job";
import { newObjectId, ObjectId } from "../../src/platform/ids";
import { type RunResult, runJob } from "../../src/scheduler/runner";
import { testDeps } from "../support/deps";
import { crowd } from "../support/users";

const deps = testDeps();
const TEN_MINUTES_AGO = () => new Date(Date.now() - 600_000);

/** A ledger entry as a request that died right after writing it would have left it. */
function interruptedEntry(userId: string, amount: number): GemTransactionDoc {
  return pendingEntry(
    {
      userId: new ObjectId(userId),
      type: amount > 0 ? "earn" : "spend",
      source: amount > 0 ? "admin" : "cosmetic",
      amount,
      description: "interrupted",
      idempotencyKey: `test:${crypto.randomUUID()}`,
    },
    TEN_MINUTES_AGO(),
  );
}

async function reconcile(): Promise<RunResult> {
  for (let i = 0; i < 10; i++) {
    const run = await runJob(deps, reconciliationJob, { trigger: "test" });
    if (run.outcome !== "skipped") return run;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("reconciliation never got the lease");
}

const user = async (id: string) => (await deps.db.users.findOne({ _id: new ObjectId(id) }))!;
const about = (run: RunResult, id: string) => run.findings.filter((f: Finding) => f.userId === id);

describe("gem reconciliation job", () => {
  it("completes interrupted movements exactly once: applies, finishes or rejects them", async () => {
    const [fresh, half, broke] = await crowd(3);
    // 1. Written, never applied.
    const unapplied = interruptedEntry(fresh.id, 30);
    // 2. Balance moved, entry never marked applied.
    const moved = interruptedEntry(half.id, 12);
    await deps.db.users.updateOne(
      { _id: moved.userId },
      { $inc: { gemBalance: 12, totalGemsEarned: 12 }, $push: { ledgerApplied: moved._id } },
    );
    // 3. A spend the balance cannot cover any more.
    const uncovered = interruptedEntry(broke.id, -5);
    await deps.db.gemTransactions.insertMany([unapplied, moved, uncovered]);

    const run = await reconcile();
    expect(run.outcome).toBe("succeeded");
    expect((await user(fresh.id)).gemBalance).toBe(30);
    expect((await user(half.id)).gemBalance).toBe(12);
    expect((await user(broke.id)).gemBalance).toBe(0);
    const entries = await deps.db.gemTransactions.find({ _id: { $in: [unapplied._id, moved._id, uncovered._id] } });
    const status = new Map(entries.map((e) => [e._id.toHexString(), e.status]));
    expect([unapplied, moved, uncovered].map((e) => status.get(e._id.toHexString()))).toEqual([
      "applied",
      "applied",
      "rejected",
    ]);
    expect(about(run, fresh.id)).toEqual([expect.objectContaining({ kind: "interrupted_entry", outcome: "applied" })]);
    expect(about(run, half.id)).toEqual([expect.objectContaining({ kind: "interrupted_entry", outcome: "finished" })]);
    expect(about(run, broke.id)).toEqual([expect.objectContaining({ kind: "interrupted_entry", outcome: "rejected" })]);

    // Nothing left to do: a second run moves nothing and finds these users consistent.
    const again = await reconcile();
    expect((await user(fresh.id)).gemBalance).toBe(30);
    expect((await user(half.id)).gemBalance).toBe(12);
    for (const u of [fresh, half, broke]) expect(about(again, u.id)).toEqual([]);
  });

  it("reports every balance that differs from its ledger, and negative balances, in job_runs", async () => {
    const [edited, negative, honest] = await crowd(3);
    const { moveGems } = await import("../../src/features/gems/ledger");
    for (const u of [edited, negative, honest]) {
      await moveGems(deps, {
        userId: new ObjectId(u.id),
        type: "earn",
        source: "admin",
        amount: 10,
        description: "test",
        idempotencyKey: `test:${crypto.randomUUID()}`,
      });
    }
    await deps.db.users.updateOne({ _id: new ObjectId(edited.id) }, { $inc: { gemBalance: 5 } });
    await deps.db.users.updateOne({ _id: new ObjectId(negative.id) }, { $set: { gemBalance: -3 } });

    const run = await reconcile();
    expect(about(run, edited.id)).toEqual([
      {
        kind: "balance_mismatch",
        userId: edited.id,
        cached: { balance: 15, earned: 10, spent: 0 },
        ledger: { balance: 10, earned: 10, spent: 0 },
      },
    ]);
    expect(
      about(run, negative.id)
        .map((f) => f.kind)
        .sort(),
    ).toEqual(["balance_mismatch", "negative_balance"]);
    expect(about(run, honest.id)).toEqual([]);
    // Reported, not silently rewritten: a mismatch needs a person.
    expect((await user(edited.id)).gemBalance).toBe(15);
    const stored = await deps.db.jobRuns.findOne({ runId: run.runId });
    expect(stored!.findings.filter((f) => f.userId === edited.id)).toHaveLength(1);
    const listed = await deps.db.jobRuns.findOne({ runId: run.runId });
    expect(listed!.counts.findings).toBeGreaterThanOrEqual(3);
  });

  it("pays a validated referral whose bonus was never paid, once", async () => {
    const [referrer, friend] = await crowd(2);
    await deps.db.referrals.insertOne({
      _id: newObjectId(),
      referrerId: new ObjectId(referrer.id),
      referralCode: "TESTCODE",
      referredUserId: new ObjectId(friend.id),
      installSource: "direct_link",
      platform: null,
      bonusGemsAwarded: 40,
      bonusMultiplierActive: true,
      bonusExpiresAt: new Date(Date.now() + 3_600_000),
      ipHash: "a",
      deviceId: null,
      fraudScore: 0,
      validated: true,
      status: "validated",
      validatedAt: TEN_MINUTES_AGO(),
      rewardTransactionId: null,
      createdAt: TEN_MINUTES_AGO(),
    });
    await reconcile();
    await reconcile();
    const doc = await user(referrer.id);
    expect(doc.gemBalance).toBe(40);
    expect(doc.referralCount).toBe(1);
    expect(doc.referralBonusExpiresAt!.getTime()).toBeGreaterThan(Date.now());
  });

  it("finishes a gift whose request died before the debit moved: debit, then credit, in one run", async () => {
    const [sender, receiver] = await crowd(2);
    const { moveGems } = await import("../../src/features/gems/ledger");
    const { giftFee } = await import("../../src/features/gems/gifts");
    await moveGems(deps, {
      userId: new ObjectId(sender.id),
      type: "admin_adjust",
      source: "admin",
      amount: 100,
      description: "test",
      idempotencyKey: `test:${crypto.randomUUID()}`,
    });
    const { platformFee, payout } = giftFee(50, deps.config.gifts.platformFeeBasisPoints);
    const transferId = newObjectId().toHexString();
    await deps.db.gemTransactions.insertOne({
      ...interruptedEntry(sender.id, -50),
      source: "gift",
      referenceType: "gift",
      referenceId: transferId,
      metadata: {
        transferId,
        senderId: sender.id,
        senderUsername: sender.username,
        recipientId: receiver.id,
        amount: 50,
        platformFee,
        payout,
        message: null,
      },
    });
    const run = await reconcile();
    expect(run.counts.giftCreditsCompleted).toBeGreaterThanOrEqual(1);
    expect((await user(sender.id)).gemBalance).toBe(50);
    expect((await user(receiver.id)).gemBalance).toBe(payout);
    await reconcile();
    expect((await user(receiver.id)).gemBalance).toBe(payout);
  });

  it("puts on today's leaderboards an earning a crash kept off them, once", async () => {
    const [earner] = await crowd(1);
    const entry = {
      ...interruptedEntry(earner.id, 9),
      source: "votes" as const,
      status: "applied" as const,
      createdAt: new Date(),
      appliedAt: new Date(),
    };
    // The ledger and the balance moved; the process died before the boards heard of it.
    await deps.db.gemTransactions.insertOne(entry);
    await deps.db.users.updateOne(
      { _id: entry.userId },
      { $inc: { gemBalance: 9, totalGemsEarned: 9 }, $push: { ledgerApplied: entry._id } },
    );
    const { periodWindow } = await import("../../src/features/leaderboards/periods");
    const daily = periodWindow("daily", new Date(), deps.keys).key;
    expect(await deps.redis.zscore(daily, earner.id)).toBeNull();

    const run = await reconcile();
    expect(run.counts.leaderboardEntriesRestored).toBeGreaterThanOrEqual(1);
    await reconcile();
    for (const key of [daily, periodWindow("weekly", new Date(), deps.keys).key, deps.keys.leaderboardAlltime()]) {
      expect(await deps.redis.zscore(key, earner.id)).toBe(9);
    }
  });
});
