import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { StreamGiftDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { DuplicateKeyError } from "../../platform/mongo/client";
import { addToExistingBoard, mergeSortedSet, runOp, runOps, topMembers } from "../../platform/redis-ops";
import { canReceive, checkGiftAmount, type TransferMetadata, transferGift } from "../gems/gifts";
import { ledgerKeys } from "../gems/ledger-keys";
import type { Later } from "../messaging/events";
import { publishStreamEvent } from "../messaging/stream-chat";
import { relationsFor } from "../relations/service";
import { toPublicUser } from "../users/schema";
import { loadStream, noSuchStream } from "./lifecycle";
import { canSeeStream, streamerVisible } from "./rules";
import type { StreamGiftBody, StreamGifters, StreamGiftResult } from "./schema";
import { peopleOf } from "./views";

/**
 * Gifts during a live stream: the same ledger transfer as gifts between people (features/gems: the sender's
 * debit of `amount`, the streamer's credit of amount − fee, exactly once per Idempotency-Key, completed by
 * reconciliation if a crash splits them), recorded on the stream with its transfer id — one `stream_gifts`
 * document (unique per transfer) and the stream's `giftTotal`, in one transaction — then on the stream's board of
 * top gifters (Redis, rebuilt from `stream_gifts` when missing) and announced in its chat. Whoever records a
 * transfer first (the request, its retry, or stream-maintenance after a crash) is the only one that counts it.
 */

/**
 * POST /v1/streams/{id}/gifts. Waits: 2 MongoDB reads (the stream, then the people), the ledger transfer's own
 * (features/gems: 3 + 3 and the streamer's notification), 1 MongoDB transaction (record + total), 1 Redis (the
 * board); the announcement runs after the answer.
 */
export async function sendStreamGift(
  deps: Deps,
  viewer: Viewer,
  streamId: string,
  body: StreamGiftBody,
  requestKey: string,
  later: Later,
): Promise<StreamGiftResult> {
  checkGiftAmount(deps, body.amount);
  const [loaded, sender] = await Promise.all([
    loadStream(deps, viewer, streamId),
    deps.db.users.findOne({ _id: new ObjectId(viewer.id), deletedAt: null }, { projection: { username: 1 } }),
  ]);
  const { doc, people } = loaded;
  const streamerId = doc.userId.toHexString();
  if (!sender) throw ApiError.notFound("Account not found.");
  if (streamerId === viewer.id) throw ApiError.invalidField("id", "you cannot send a gift to your own stream");
  if (doc.status !== "live") throw ApiError.conflict("stream_not_live", "Gifts are sent while the stream is live.");
  const streamer = people.get(streamerId);
  if (!streamer || !canReceive(streamer, deps.clock.now())) throw noSuchStream();

  const { transfer, ...result } = await transferGift(deps, {
    sender: { id: viewer.id, username: sender.username },
    recipient: { id: streamerId, username: streamer.username },
    amount: body.amount,
    message: body.message ?? null,
    idempotencyKey: ledgerKeys.streamGiftDebit(viewer.id, streamId, requestKey),
    streamId,
  });
  const { giftTotal, recorded } = await recordStreamGift(deps, transfer, result.transaction.createdAt);
  if (recorded) {
    later(() =>
      publishStreamEvent(
        deps,
        doc.conversationId.toHexString(),
        { id: viewer.id, relations: loaded.relations },
        {
          type: "gift",
          streamId,
          sender: { id: viewer.id, username: sender.username },
          amount: transfer.amount,
          message: transfer.message,
          giftTotal,
          at: deps.clock.now().toISOString(),
        },
      ),
    );
  }
  return { ...result, streamId, giftTotal };
}

/**
 * Records a stream gift's transfer on its stream, once: the record and the stream's total in one transaction
 * (a second attempt hits the unique transfer id and changes nothing), then the board. Returns the stream's
 * total and whether this call was the one that recorded it.
 */
export async function recordStreamGift(
  deps: Deps,
  transfer: TransferMetadata,
  at: string | Date,
): Promise<{ giftTotal: number; recorded: boolean }> {
  if (!transfer.streamId) throw new Error("a stream gift carries its stream id");
  const streamId = new ObjectId(transfer.streamId);
  const gift: StreamGiftDoc = {
    _id: newObjectId(),
    streamId,
    senderId: new ObjectId(transfer.senderId),
    recipientId: new ObjectId(transfer.recipientId),
    transferId: transfer.transferId,
    amount: transfer.amount,
    platformFee: transfer.platformFee,
    payout: transfer.payout,
    message: transfer.message,
    createdAt: new Date(at),
  };
  let giftTotal: number;
  try {
    const [, stream] = await deps.db.batch(
      [
        deps.db.streamGifts.inBatch.insertOne(gift),
        deps.db.liveStreams.inBatch.findOneAndUpdate(
          { _id: streamId },
          { $inc: { giftTotal: transfer.amount, giftCount: 1 }, $set: { updatedAt: deps.clock.now() } },
          { returnDocument: "after", projection: { giftTotal: 1 } },
        ),
      ],
      { transaction: true },
    );
    giftTotal = stream?.giftTotal ?? transfer.amount;
  } catch (error) {
    if (!(error instanceof DuplicateKeyError)) throw error;
    const stream = await deps.db.liveStreams.findOne({ _id: streamId }, { projection: { giftTotal: 1 } });
    return { giftTotal: stream?.giftTotal ?? 0, recorded: false };
  }
  await addToGifters(deps, transfer.streamId, transfer.senderId, transfer.amount);
  return { giftTotal, recorded: true };
}

/** Adds a recorded gift to the stream's board; a missing board is rebuilt (the record is already stored). */
async function addToGifters(deps: Deps, streamId: string, senderId: string, amount: number): Promise<void> {
  const key = deps.keys.streamGifters(streamId);
  try {
    const added = await runOp(
      deps.redis,
      addToExistingBoard(key, senderId, amount, deps.config.streams.stateTtlSeconds),
    );
    if (!added) await rebuildGifters(deps, streamId);
  } catch (error) {
    // The record and the total stand; stream-maintenance raises the board to the records.
    deps.log.warn("stream gifters board not updated", { streamId, error: String(error) });
  }
}

/**
 * Raises the stream's board to what its records say (one aggregate, merged with `ZUNIONSTORE … MAX`, so gifts
 * counted meanwhile are kept and nothing is counted twice). Returns the totals per sender, highest first.
 */
export async function rebuildGifters(deps: Deps, streamId: string): Promise<{ member: string; score: number }[]> {
  const rows = await deps.db.streamGifts.aggregate<{ _id: ObjectId; amount: number }>([
    { $match: { streamId: new ObjectId(streamId) } },
    { $group: { _id: "$senderId", amount: { $sum: "$amount" } } },
    { $sort: { amount: -1, _id: 1 } },
  ]);
  const scores = rows.map((r) => ({ member: r._id.toHexString(), score: r.amount }));
  if (scores.length === 0) return [];
  const expireAt = Math.floor(deps.clock.now().getTime() / 1000) + deps.config.streams.stateTtlSeconds;
  await runOp(deps.redis, mergeSortedSet(deps.keys.streamGifters(streamId), scores, expireAt));
  return scores;
}

/**
 * GET /v1/streams/{id}/gifters: the stream's top gifters, most gems first (equal amounts share a rank). People
 * gone, banned, shadow-banned or blocked with the caller are left out (the others keep their ranks). Waits:
 * 1 MongoDB (the stream) with 1 Redis (the board) in parallel, then 1 MongoDB (the people); a missing board adds
 * its rebuild.
 */
export async function streamGifters(
  deps: Deps,
  viewer: Viewer | undefined,
  streamId: string,
  limit: number,
): Promise<StreamGifters> {
  const id = new ObjectId(streamId);
  const key = deps.keys.streamGifters(streamId);
  const [doc, relations, board] = await Promise.all([
    deps.db.liveStreams.findOne({ _id: id }),
    relationsFor(deps, viewer),
    runOps(deps.redis, { top: topMembers(key, limit) }).catch((error) => {
      deps.log.warn("stream gifters board unreadable", { error: String(error) });
      return { top: null };
    }),
  ]);
  if (!doc) throw noSuchStream();
  let top = board.top;
  if (!top || (top.length === 0 && doc.giftCount > 0)) {
    top = (await rebuildGifters(deps, streamId).catch(() => rebuildFromRecordsOnly(deps, streamId))).slice(0, limit);
  }
  const people = await peopleOf(
    deps,
    [doc],
    top.map((t) => new ObjectId(t.member)),
  );
  const now = deps.clock.now();
  const visible = canSeeStream({
    stream: doc,
    streamer: people.get(doc.userId.toHexString()),
    viewerId: viewer?.id,
    blockedWith: (uid) => relations.blockedWith(uid),
    now,
  });
  if (!visible) throw noSuchStream();
  const items = top.flatMap((entry) => {
    const person = people.get(entry.member);
    const shown =
      person && (entry.member === viewer?.id || (streamerVisible(person, now) && !relations.blockedWith(entry.member)));
    if (!person || !shown) return [];
    const rank = 1 + top.filter((t) => t.score > entry.score).length;
    return [{ rank, user: toPublicUser(person), amount: entry.score }];
  });
  return { items };
}

/** The totals per sender from the records alone (Redis unreachable): the answer without caching it. */
async function rebuildFromRecordsOnly(deps: Deps, streamId: string): Promise<{ member: string; score: number }[]> {
  const rows = await deps.db.streamGifts.aggregate<{ _id: ObjectId; amount: number }>([
    { $match: { streamId: new ObjectId(streamId) } },
    { $group: { _id: "$senderId", amount: { $sum: "$amount" } } },
    { $sort: { amount: -1, _id: 1 } },
  ]);
  return rows.map((r) => ({ member: r._id.toHexString(), score: r.amount }));
}
