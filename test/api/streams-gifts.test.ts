import { describe, expect, it } from "vitest";
import type { Viewer } from "../../src/core/viewer";
import { giftFee, transferGift } from "../../src/features/gems/gifts";
import { ledgerKeys } from "../../src/features/gems/ledger-keys";
import { sendStreamGift } from "../../src/features/streams/gifts";
import { streamMaintenanceJob } from "../../src/features/streams/maintenance";
import { ObjectId } from "../../src/platform/ids";
import { type ApiResponse, call, uniqueIp } from "../support/api";
import { testDeps } from "../support/deps";
import { balanceOf, grant } from "../support/gems";
import { runUntilDone } from "../support/jobs";
import { openSocket } from "../support/messaging";
import { expectProblem, fieldPaths } from "../support/problems";
import { act, createdStream, getStream, type StreamBody, scheduledFor } from "../support/streams";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();
const feeBp = deps.config.gifts.platformFeeBasisPoints;

interface GiftAnswer {
  transaction: { amount: number; balanceAfter: number };
  platformFee: number;
  payout: number;
  transferId: string;
  streamId: string;
  giftTotal: number;
}
interface Gifters {
  items: { rank: number; user: { id: string }; amount: number }[];
}

function gift(
  from: TestUser,
  streamId: string,
  body: Record<string, unknown>,
  key: string | null = crypto.randomUUID(),
): Promise<ApiResponse<GiftAnswer>> {
  return call<GiftAnswer>("POST", `/v1/streams/${streamId}/gifts`, {
    token: from.accessToken,
    body,
    headers: key === null ? {} : { "Idempotency-Key": key },
    ip: uniqueIp(),
  });
}

const gifters = async (who: TestUser | undefined, streamId: string) =>
  (await call<Gifters>("GET", `/v1/streams/${streamId}/gifters`, { token: who?.accessToken })).body.items.map((g) => ({
    rank: g.rank,
    user: g.user.id,
    amount: g.amount,
  }));

const viewerOf = (u: TestUser): Viewer => ({
  id: u.id,
  sessionId: new ObjectId().toHexString(),
  role: "user",
  tier: "free",
});
const recordsOf = (streamId: string) => deps.db.streamGifts.find({ streamId: new ObjectId(streamId) });

describe("POST /v1/streams/{id}/gifts", () => {
  it("moves gems like a user gift, records it on the stream with its id, ranks the sender and announces it", async () => {
    const [streamer, fan, watcher] = await crowd(3);
    await grant(fan, 1_000);
    const stream = await createdStream(streamer);
    const socket = await openSocket(watcher, stream.conversationId);
    const amount = 150;
    const { platformFee, payout } = giftFee(amount, feeBp);
    const res = await gift(fan, stream.id, { amount, message: "great set" });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      platformFee,
      payout,
      streamId: stream.id,
      giftTotal: amount,
      transaction: { amount: -amount, balanceAfter: 1_000 - amount },
    });
    expect(await balanceOf(fan)).toBe(1_000 - amount);
    expect(await balanceOf(streamer)).toBe(payout);
    // The same ledger transfer as user gifts, carrying the stream's id.
    const debit = await deps.db.gemTransactions.findOne({ idempotencyKey: { $regex: `^stream_gift:${stream.id}:` } });
    expect(debit?.metadata).toMatchObject({ transferId: res.body.transferId, streamId: stream.id, amount, payout });
    const credit = await deps.db.gemTransactions.findOne({
      idempotencyKey: ledgerKeys.giftCredit(res.body.transferId),
    });
    expect(credit).toMatchObject({ amount: payout, status: "applied" });
    expect(await recordsOf(stream.id)).toEqual([
      expect.objectContaining({ transferId: res.body.transferId, amount, payout, message: "great set" }),
    ]);
    expect((await getStream(watcher, stream.id)).body).toMatchObject({ giftTotal: amount, giftCount: 1 });
    expect(await gifters(watcher, stream.id)).toEqual([{ rank: 1, user: fan.id, amount }]);
    const [frame] = await socket.waitFor((f) => f.type === "gift");
    expect(frame).toMatchObject({
      type: "gift",
      streamId: stream.id,
      sender: { id: fan.id, username: fan.username },
      amount,
      message: "great set",
      giftTotal: amount,
    });
    socket.close();
  });

  it("debits once and ranks once when one key races ten times, over HTTP and past the Redis record", async () => {
    const [streamer, fan] = await crowd(2);
    await grant(fan, 1_000);
    const stream = await createdStream(streamer);
    const key = crypto.randomUUID();
    const answers = await Promise.all(Array.from({ length: 10 }, () => gift(fan, stream.id, { amount: 100 }, key)));
    const created = answers.filter((a) => a.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(answers.every((a) => a.status === 201 || a.status === 409)).toBe(true);
    expect(new Set(created.map((a) => a.body.transferId)).size).toBe(1);
    // The same key again, with the Redis record gone and ten at once straight into the service: still once.
    await deps.redis.del(deps.keys.idempotency(`stream_gift:${fan.id}`, key));
    const later = (work: () => Promise<unknown>) => void work();
    const direct = await Promise.all(
      Array.from({ length: 10 }, () => sendStreamGift(deps, viewerOf(fan), stream.id, { amount: 100 }, key, later)),
    );
    expect(new Set(direct.map((d) => d.transferId))).toEqual(new Set([created[0]?.body.transferId]));
    expect(await balanceOf(fan)).toBe(900);
    expect(await balanceOf(streamer)).toBe(giftFee(100, feeBp).payout);
    expect(await recordsOf(stream.id)).toHaveLength(1);
    expect(await gifters(fan, stream.id)).toEqual([{ rank: 1, user: fan.id, amount: 100 }]);
    expect((await getStream(fan, stream.id)).body).toMatchObject({ giftTotal: 100, giftCount: 1 });
    // Another key is another gift.
    expect((await gift(fan, stream.id, { amount: 100 })).status).toBe(201);
    expect(await gifters(fan, stream.id)).toEqual([{ rank: 1, user: fan.id, amount: 200 }]);
  });

  it("ranks top gifters by exact totals, equal amounts sharing a rank, when first gifts race", async () => {
    const [streamer, a, b, c] = await crowd(4);
    await Promise.all([a, b, c].map((u) => grant(u, 1_000)));
    const stream = await createdStream(streamer);
    // a's two first gifts race to open a's total; b and c give at the same time.
    await Promise.all([
      gift(a, stream.id, { amount: 50 }),
      gift(a, stream.id, { amount: 70 }),
      gift(b, stream.id, { amount: 120 }),
      gift(c, stream.id, { amount: 30 }),
    ]);
    const board = await gifters(undefined, stream.id);
    expect(board).toEqual([
      { rank: 1, user: expect.any(String), amount: 120 },
      { rank: 1, user: expect.any(String), amount: 120 },
      { rank: 3, user: c.id, amount: 30 },
    ]);
    expect(new Set(board.slice(0, 2).map((g) => g.user))).toEqual(new Set([a.id, b.id]));
    await gift(c, stream.id, { amount: 100 });
    expect((await gifters(undefined, stream.id))[0]).toEqual({ rank: 1, user: c.id, amount: 130 });
    expect((await getStream(undefined, stream.id)).body).toMatchObject({ giftTotal: 370, giftCount: 5 });
    // Whoever is blocked with the caller leaves the list; the others keep their ranks.
    await call("PUT", `/v1/users/${c.id}/block`, { token: b.accessToken });
    expect((await gifters(b, stream.id)).map((g) => [g.rank, g.amount])).toEqual([
      [2, 120],
      [2, 120],
    ]);
  });

  it("records a gift whose transfer stood when a crash skipped its stream record, once", async () => {
    const [streamer, fan] = await crowd(2);
    await grant(fan, 500);
    const stream = await createdStream(streamer);
    // The transfer alone (as if the process died right after it), made to look older than the grace period.
    const { transfer } = await transferGift(deps, {
      sender: { id: fan.id, username: fan.username },
      recipient: { id: streamer.id, username: streamer.username },
      amount: 80,
      message: null,
      idempotencyKey: ledgerKeys.streamGiftDebit(fan.id, stream.id, "crashed"),
      streamId: stream.id,
    });
    await deps.db.gemTransactions.updateMany(
      { "metadata.transferId": transfer.transferId },
      { $set: { createdAt: new Date(Date.now() - 10 * 60_000) } },
    );
    expect(await recordsOf(stream.id)).toEqual([]);
    await runUntilDone(streamMaintenanceJob);
    await runUntilDone(streamMaintenanceJob);
    expect(await recordsOf(stream.id)).toEqual([
      expect.objectContaining({ transferId: transfer.transferId, amount: 80 }),
    ]);
    expect((await getStream(fan, stream.id)).body).toMatchObject({ giftTotal: 80, giftCount: 1 });
    expect(await gifters(fan, stream.id)).toEqual([{ rank: 1, user: fan.id, amount: 80 }]);
    // The retry the app makes with its key completes nothing twice either.
    const retried = await sendStreamGift(deps, viewerOf(fan), stream.id, { amount: 80 }, "crashed", () => {});
    expect(retried).toMatchObject({ transferId: transfer.transferId, giftTotal: 80 });
    expect(await balanceOf(fan)).toBe(420);
  });

  it("refuses your own stream (400 naming id), a stream not live (409), a blocked one (404) and short balances (402)", async () => {
    const [streamer, fan, blocked, poor] = await crowd(4);
    await Promise.all([grant(fan, 500), grant(blocked, 500), grant(streamer, 500)]);
    const stream = await createdStream(streamer);
    expect(fieldPaths(await gift(streamer, stream.id, { amount: 50 }))).toEqual(["id"]);
    expect(fieldPaths(await gift(fan, stream.id, { amount: 5 }))).toEqual(["amount"]);
    expect(fieldPaths(await gift(fan, stream.id, { amount: 50 }, null))).toEqual(["Idempotency-Key"]);
    await call("PUT", `/v1/users/${blocked.id}/block`, { token: streamer.accessToken });
    expectProblem(await gift(blocked, stream.id, { amount: 50 }), 404, "not_found");
    expectProblem(await gift(poor, stream.id, { amount: 50 }), 402, "insufficient_gems");
    const later = await createdStream(streamer, { scheduledFor: scheduledFor(60) });
    expect(expectProblem(await gift(fan, later.id, { amount: 50 }), 409, "conflict").reason).toBe("stream_not_live");
    await act(streamer, stream.id, "end");
    expect(expectProblem(await gift(fan, stream.id, { amount: 50 }), 409, "conflict").reason).toBe("stream_not_live");
    expect(await balanceOf(fan)).toBe(500);
    expect(await balanceOf(blocked)).toBe(500);
    expect(await recordsOf(stream.id)).toEqual([]);
    expect((await getStream(fan, stream.id)).body as StreamBody).toMatchObject({ giftTotal: 0 });
  });
});
