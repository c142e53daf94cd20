import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { StreamGiftDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { DuplicateKeyError } from "../../platform/mongo/client";
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
 * document (unique per transfer), the stream's `giftTotal` and the sender's total for the stream, in one
 * transaction — and announced in its chat. Whoever records a transfer first (the request, its retry, or
 * stream-maintenance after a crash) is the only one that counts it; the top gifters are a sorted read of those
 * totals (an indexed read in parallel with the stream's own, so a cache would save no wait).
 */

/**
 * POST /v1/streams/{id}/gifts. Waits: 2 MongoDB reads (the stream with the sender, then the people), the ledger
 * transfer's one transaction (features/gems; balances and the streamer's notice are owed after the answer), 1
 * MongoDB transaction (the record and both totals); the announcement runs after the answer.
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
    notFound: noSuchStream,
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

/** Attempts at recording one gift when two first gifts of one sender race for their total (see below). */
const RECORD_ATTEMPTS = 3;

/**
 * Records a stream gift's transfer on its stream, once: in one transaction, the record (unique per transfer: a
 * second attempt changes nothing), the stream's total and the sender's total for the stream (unique per stream
 * and sender: a first gift racing another first gift of theirs is tried again). Returns the stream's total and
 * whether this call was the one that recorded it.
 */
export async function recordStreamGift(
  deps: Deps,
  transfer: TransferMetadata,
  at: string | Date,
): Promise<{ giftTotal: number; recorded: boolean }> {
  if (!transfer.streamId) throw new Error("a stream gift carries its stream id");
  const streamId = new ObjectId(transfer.streamId);
  const senderId = new ObjectId(transfer.senderId);
  const createdAt = new Date(at);
  for (let attempt = 1; ; attempt++) {
    const gift: StreamGiftDoc = {
      _id: newObjectId(),
      streamId,
      senderId,
      recipientId: new ObjectId(transfer.recipientId),
      transferId: transfer.transferId,
      amount: transfer.amount,
      platformFee: transfer.platformFee,
      payout: transfer.payout,
      message: transfer.message,
      createdAt,
    };
    const now = deps.clock.now();
    try {
      const [, stream] = await deps.db.batch(
        [
          deps.db.streamGifts.inBatch.insertOne(gift),
          deps.db.liveStreams.inBatch.findOneAndUpdate(
            { _id: streamId },
            { $inc: { giftTotal: transfer.amount, giftCount: 1 }, $set: { updatedAt: now } },
            { returnDocument: "after", projection: { giftTotal: 1 } },
          ),
          deps.db.streamGifters.inBatch.updateOne(
            { streamId, senderId },
            {
              $inc: { amount: transfer.amount, gifts: 1 },
              $max: { lastAt: createdAt },
              $min: { firstAt: createdAt },
            },
            { upsert: true },
          ),
        ],
        { transaction: true },
      );
      return { giftTotal: stream?.giftTotal ?? transfer.amount, recorded: true };
    } catch (error) {
      if (!(error instanceof DuplicateKeyError)) throw error;
      // The sender's total was opened by their other first gift at the same instant: this one joins it.
      if (error.firstField() !== "transferId" && attempt < RECORD_ATTEMPTS) continue;
      if (error.firstField() !== "transferId") throw error;
      const stream = await deps.db.liveStreams.findOne({ _id: streamId }, { projection: { giftTotal: 1 } });
      return { giftTotal: stream?.giftTotal ?? 0, recorded: false };
    }
  }
}

/**
 * GET /v1/streams/{id}/gifters: the stream's top gifters, most gems first (equal amounts share a rank). People
 * gone, banned, shadow-banned or blocked with the caller are left out (the others keep their ranks). Waits:
 * 1 MongoDB (the stream and its top totals, read in parallel) then 1 MongoDB (the people).
 */
export async function streamGifters(
  deps: Deps,
  viewer: Viewer | undefined,
  streamId: string,
  limit: number,
): Promise<StreamGifters> {
  const id = new ObjectId(streamId);
  const [doc, relations, top] = await Promise.all([
    deps.db.liveStreams.findOne({ _id: id }),
    relationsFor(deps, viewer),
    deps.db.streamGifters.find(
      { streamId: id },
      { sort: { amount: -1, _id: 1 }, limit, projection: { senderId: 1, amount: 1 } },
    ),
  ]);
  if (!doc) throw noSuchStream();
  const people = await peopleOf(
    deps,
    [doc],
    top.map((t) => t.senderId),
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
    const senderId = entry.senderId.toHexString();
    const person = people.get(senderId);
    const shown =
      person && (senderId === viewer?.id || (streamerVisible(person, now) && !relations.blockedWith(senderId)));
    if (!person || !shown) return [];
    const rank = 1 + top.filter((t) => t.amount > entry.amount).length;
    return [{ rank, user: toPublicUser(person), amount: entry.amount }];
  });
  return { items };
}
