import { describe, expect, it } from "vitest";
import {
  completeInterruptedTransfers,
  giftFee,
  giftPlatformFees,
  type TransferMetadata,
} from "../../src/features/gems/gifts";
import { moveGems } from "../../src/features/gems/ledger";
import { ledgerKeys } from "../../src/features/gems/ledger-keys";
import type { GiftResult } from "../../src/features/gems/schema";
import { ObjectId } from "../../src/platform/ids";
import { type ApiResponse, call, uniqueIp, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { balanceOf, grant } from "../support/gems";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();
type GemBalance = { balance: number; totalEarned: number; totalSpent: number };
const { minGems, maxGems, platformFeeBasisPoints: feeBp } = deps.config.gifts;

const giftEntriesOf = (u: TestUser) =>
  deps.db.gemTransactions.find({ userId: new ObjectId(u.id), source: "gift", status: "applied" });

function gift(
  from: TestUser,
  toId: string,
  body: Record<string, unknown>,
  key: string | null = crypto.randomUUID(),
  ip = uniqueIp(),
): Promise<ApiResponse<GiftResult>> {
  return call<GiftResult>("POST", `/v1/users/${toId}/gifts`, {
    token: from.accessToken,
    body,
    headers: key === null ? {} : { "Idempotency-Key": key },
    ip,
  });
}

describe("POST /v1/users/{id}/gifts", () => {
  it("debits the sender, credits the receiver minus the fee, links both entries and notifies the receiver", async () => {
    const [sender, receiver] = await crowd(2);
    await grant(sender, 500);
    const amount = 123;
    const { platformFee, payout } = giftFee(amount, feeBp);
    const res = await gift(sender, receiver.id, { amount, message: "nice pics" });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      platformFee,
      payout,
      transaction: { type: "spend", source: "gift", amount: -amount, balanceAfter: 500 - amount },
    });
    expect(platformFee + payout).toBe(amount);

    const mine = await call<GemBalance>("GET", "/v1/me/gems", { token: sender.accessToken });
    const theirs = await call<GemBalance>("GET", "/v1/me/gems", { token: receiver.accessToken });
    expect(mine.body).toMatchObject({ balance: 500 - amount, totalSpent: amount });
    expect(theirs.body).toMatchObject({ balance: payout, totalEarned: payout });

    const [debit] = await giftEntriesOf(sender);
    const [credit] = await giftEntriesOf(receiver);
    expect(debit!.metadata).toMatchObject({ transferId: res.body.transferId, platformFee, payout, amount });
    expect(credit).toMatchObject({ type: "earn", amount: payout, referenceId: res.body.transferId });
    expect(credit!.metadata.transferId).toBe(res.body.transferId);

    const notes = await deps.db.notifications.find({ userId: new ObjectId(receiver.id) });
    expect(notes).toEqual([
      expect.objectContaining({ title: `@${sender.username} sent you ${payout} gems`, body: "nice pics" }),
    ]);
  });

  it("waits on one MongoDB call: debit, credit and what they owe in one transaction", async () => {
    const [sender, receiver] = await crowd(2);
    await grant(sender, 100);
    const res = await gift(sender, receiver.id, { amount: 50 });
    expect(res.status, res.text).toBe(201);
    expect(waits(res.headers)).toMatchObject({ mongo: 1 });
    expect(res.body.transaction.description).toBe(`Gift to @${receiver.username}`);
    // After the answer: both entries carry their balances and the debit names the receiver.
    const [debit] = await giftEntriesOf(sender);
    const [credit] = await giftEntriesOf(receiver);
    expect(debit).toMatchObject({ balanceBefore: 100, balanceAfter: 50, description: `Gift to @${receiver.username}` });
    expect(credit).toMatchObject({ balanceBefore: 0, balanceAfter: res.body.payout });
    // A short balance moves nothing, costs a second call (the rejected debit), and replays as a 402.
    const key = crypto.randomUUID();
    const short = await gift(sender, receiver.id, { amount: 60 }, key);
    expectProblem(short, 402, "insufficient_gems");
    expect(await balanceOf(sender)).toBe(50);
    await deps.redis.del(deps.keys.idempotency(`gift:${sender.id}`, key));
    await grant(sender, 100);
    expectProblem(await gift(sender, receiver.id, { amount: 60 }, key), 402, "insufficient_gems");
    expect(await balanceOf(sender)).toBe(150);
  });

  it("replays the first answer for the same key and body, moving gems once", async () => {
    const [sender, receiver] = await crowd(2);
    await grant(sender, 100);
    const key = crypto.randomUUID();
    const first = await gift(sender, receiver.id, { amount: 40 }, key);
    const again = await gift(sender, receiver.id, { amount: 40 }, key);
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.text).toBe(first.text);
    expectProblem(await gift(sender, receiver.id, { amount: 41 }, key), 422, "idempotency_mismatch");
    expect(await balanceOf(sender)).toBe(60);
    expect(await balanceOf(receiver)).toBe(giftFee(40, feeBp).payout);
    // Even without the Redis record, the ledger's key makes a retry a no-op.
    await deps.redis.del(deps.keys.idempotency(`gift:${sender.id}`, key));
    const retried = await gift(sender, receiver.id, { amount: 40 }, key);
    expect(retried.body).toEqual(first.body);
    expect(await balanceOf(sender)).toBe(60);
    expect(await giftEntriesOf(receiver)).toHaveLength(1);
  });

  it("keeps both balances and the platform's fee total exact under 20 concurrent gifts both ways", async () => {
    const [a, b] = await crowd(2);
    await Promise.all([grant(a, 10_000), grant(b, 10_000)]);
    const amountsAB = Array.from({ length: 10 }, (_, i) => minGems + 7 * i + 3);
    const amountsBA = Array.from({ length: 10 }, (_, i) => minGems + 11 * i + 1);
    const ip = uniqueIp();
    const answers = await Promise.all([
      ...amountsAB.map((amount) => gift(a, b.id, { amount }, undefined, ip)),
      ...amountsBA.map((amount) => gift(b, a.id, { amount }, undefined, ip)),
    ]);
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(201));
    const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
    const payouts = (xs: number[]) => sum(xs.map((x) => giftFee(x, feeBp).payout));
    const fees = (xs: number[]) => sum(xs.map((x) => giftFee(x, feeBp).platformFee));
    expect(await balanceOf(a)).toBe(10_000 - sum(amountsAB) + payouts(amountsBA));
    expect(await balanceOf(b)).toBe(10_000 - sum(amountsBA) + payouts(amountsAB));
    expect(await giftPlatformFees(deps, { senderIds: [a.id, b.id] })).toBe(fees(amountsAB) + fees(amountsBA));
    // Money is conserved: what left both accounts = what arrived + the platform's fees.
    const entries = [...(await giftEntriesOf(a)), ...(await giftEntriesOf(b))];
    expect(entries).toHaveLength(40);
    expect(sum(entries.map((e) => e.amount))).toBe(-(fees(amountsAB) + fees(amountsBA)));
  });

  it("answers 402 and moves nothing when the sender cannot cover the gift", async () => {
    const [sender, receiver] = await crowd(2);
    await grant(sender, minGems);
    expectProblem(await gift(sender, receiver.id, { amount: minGems + 1 }), 402, "insufficient_gems");
    expect(await balanceOf(sender)).toBe(minGems);
    expect(await balanceOf(receiver)).toBe(0);
    expect(await giftEntriesOf(receiver)).toHaveLength(0);
  });

  it("answers 400 naming the field for bad amounts, long messages, a missing key and a gift to yourself", async () => {
    const [sender, receiver] = await crowd(2);
    await grant(sender, maxGems + 10);
    for (const amount of [0, -5, 1.5, "10", maxGems + 1, minGems - 1, null]) {
      const res = await gift(sender, receiver.id, { amount });
      expectProblem(res, 400, "validation_failed");
      expect(fieldPaths(res), `amount ${amount}`).toEqual(["amount"]);
    }
    const noAmount = await gift(sender, receiver.id, { message: "hi" });
    expect(fieldPaths(noAmount)).toEqual(["amount"]);
    const long = await gift(sender, receiver.id, { amount: minGems, message: "x".repeat(201) });
    expect(fieldPaths(long)).toEqual(["message"]);
    const extra = await gift(sender, receiver.id, { amount: minGems, to: "someone" });
    expect(fieldPaths(extra)).toEqual(["to"]);
    const noKey = await gift(sender, receiver.id, { amount: minGems }, null);
    expectProblem(noKey, 400, "validation_failed");
    expect(fieldPaths(noKey)).toEqual(["Idempotency-Key"]);
    const self = await gift(sender, sender.id, { amount: minGems });
    expectProblem(self, 400, "validation_failed");
    expect(fieldPaths(self)).toEqual(["id"]);
    expect((await gift(sender, receiver.id, { amount: minGems, message: "x".repeat(200) })).status).toBe(201);
    expect(await balanceOf(sender)).toBe(maxGems + 10 - minGems);
    expectProblem(
      await call("POST", `/v1/users/${receiver.id}/gifts`, {
        body: { amount: minGems },
        headers: { "Idempotency-Key": crypto.randomUUID() },
        ip: uniqueIp(),
      }),
      401,
      "unauthorized",
    );
  });

  it("answers 400 naming id for a malformed id, and knows the caller's own id in upper case", async () => {
    const [sender] = await crowd(1);
    await grant(sender, 1_000);
    for (const id of ["not-an-id", `${sender.id.slice(0, 23)}g`]) {
      expectProblem(await gift(sender, id, { amount: minGems }), 400, "validation_failed");
    }
    const self = await gift(sender, sender.id.toUpperCase(), { amount: minGems });
    expectProblem(self, 400, "validation_failed");
    expect(fieldPaths(self)).toEqual(["id"]);
    expect(self.body).toMatchObject({ errors: [{ message: expect.stringContaining("yourself") }] });
    expect(await balanceOf(sender)).toBe(1_000);
  });

  it("answers 404 for unknown, deleted, banned and shadow-banned receivers", async () => {
    const [sender, deleted, banned, shadow] = await crowd(4);
    await grant(sender, 1_000);
    await Promise.all([
      deps.db.users.updateOne({ _id: new ObjectId(deleted.id) }, { $set: { deletedAt: new Date() } }),
      deps.db.users.updateOne({ _id: new ObjectId(banned.id) }, { $set: { bannedAt: new Date() } }),
      deps.db.users.updateOne({ _id: new ObjectId(shadow.id) }, { $set: { shadowBanned: true } }),
    ]);
    for (const id of [new ObjectId().toHexString(), deleted.id, banned.id, shadow.id]) {
      expectProblem(await gift(sender, id, { amount: minGems }), 404, "not_found");
    }
    expect(await balanceOf(sender)).toBe(1_000);
  });
});

describe("completeInterruptedTransfers", () => {
  it("writes the missing credit of a gift whose process died after the debit, once", async () => {
    const [sender, receiver] = await crowd(2);
    await grant(sender, 200);
    const since = new Date(Date.now() - 60_000);
    const amount = 50;
    const { platformFee, payout } = giftFee(amount, feeBp);
    const transfer: TransferMetadata = {
      transferId: new ObjectId().toHexString(),
      senderId: sender.id,
      senderUsername: sender.username,
      recipientId: receiver.id,
      amount,
      platformFee,
      payout,
      message: null,
    };
    // The debit as sendGift writes it, then the "crash": no credit.
    await moveGems(deps, {
      userId: new ObjectId(sender.id),
      type: "spend",
      source: "gift",
      amount: -amount,
      referenceType: "gift",
      referenceId: transfer.transferId,
      description: `Gift to @${receiver.username}`,
      metadata: { ...transfer },
      idempotencyKey: ledgerKeys.giftDebit(sender.id, crypto.randomUUID()),
    });
    expect(await balanceOf(receiver)).toBe(0);

    const first = await completeInterruptedTransfers(deps, since);
    expect(first.completed).toBeGreaterThanOrEqual(1);
    expect(await balanceOf(receiver)).toBe(payout);
    const again = await Promise.all([
      completeInterruptedTransfers(deps, since),
      completeInterruptedTransfers(deps, since),
    ]);
    expectEvery(again, (r) => r.failed === 0);
    expect(await balanceOf(receiver)).toBe(payout);
    const credits = await giftEntriesOf(receiver);
    expect(credits).toEqual([expect.objectContaining({ amount: payout, referenceId: transfer.transferId })]);
    expect(await balanceOf(sender)).toBe(200 - amount);
  });
});
