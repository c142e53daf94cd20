import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { Collection, Filter } from "../../platform/mongo/client";
import { everyPage } from "../../platform/mongo/paginate";
import { deleteKeys, runOp } from "../../platform/redis-ops";
import { forgetStreamChat } from "../messaging/stream-chat";
import { liveVideoOf } from "./lifecycle";
import { dropFromStaff } from "./staff";
import { audienceKeysOf } from "./views";

/**
 * Export and erasure of a person's live streams (wired into features/privacy by its owner).
 *
 * Export: the streams they ran (what they set and what the stream counted; no provider ids or keys), the gifts
 * they sent during streams and received on theirs (amounts; other people by id only), and the streams they
 * co-hosted or moderated. Their live-chat messages are messages (features/messaging exports them).
 *
 * Erasure (idempotent and restartable: each step deletes or rewrites what a re-run finds again until none is
 * left): their streams go with their live inputs at the provider, their chats (the conversation and every
 * message in it), the gifts recorded on them and their live state in Redis (the stream document last, so a crash
 * leaves it to be found again); the gifts they sent during others' streams keep their amounts (the streamer's
 * earnings) but lose the message; they leave every stream's staff and every chat's mute list. The ledger keeps
 * its entries, as for every gift (features/gems).
 */

const PAGE = 500;

/** Every page of a person's documents, oldest first. */
const pages = <T extends { _id: ObjectId }>(collection: Collection<T>, filter: Filter) =>
  everyPage(collection, { filter, order: { direction: "asc" }, limit: PAGE });

const iso = (d: Date | null | undefined) => d?.toISOString() ?? null;

export async function* exportSections(
  deps: Deps,
  userId: string,
): AsyncGenerator<{ section: string; items: unknown[] }> {
  const me = new ObjectId(userId);
  for await (const streams of pages(deps.db.liveStreams, { userId: me })) {
    yield {
      section: "streams",
      items: streams.map((s) => ({
        id: s._id.toHexString(),
        title: s.title,
        description: s.description,
        category: s.category,
        tags: s.tags,
        status: s.status,
        scheduledFor: iso(s.scheduledFor),
        startedAt: iso(s.startedAt),
        endedAt: iso(s.endedAt),
        cancelledAt: iso(s.cancelledAt),
        peakViewers: s.peakViewers,
        uniqueViewers: s.uniqueViewers,
        giftTotal: s.giftTotal,
        giftCount: s.giftCount,
        conversationId: s.conversationId.toHexString(),
        cohostIds: s.participants.map((p) => p.userId.toHexString()),
        moderatorIds: s.moderators.map((m) => m.userId.toHexString()),
        createdAt: s.createdAt.toISOString(),
      })),
    };
  }
  for await (const gifts of pages(deps.db.streamGifts, { senderId: me })) {
    yield {
      section: "streamGiftsSent",
      items: gifts.map((g) => ({
        streamId: g.streamId.toHexString(),
        streamerId: g.recipientId.toHexString(),
        amount: g.amount,
        message: g.message,
        transferId: g.transferId,
        createdAt: g.createdAt.toISOString(),
      })),
    };
  }
  for await (const gifts of pages(deps.db.streamGifts, { recipientId: me })) {
    yield {
      section: "streamGiftsReceived",
      items: gifts.map((g) => ({
        streamId: g.streamId.toHexString(),
        senderId: g.senderId.toHexString(),
        amount: g.amount,
        platformFee: g.platformFee,
        payout: g.payout,
        transferId: g.transferId,
        createdAt: g.createdAt.toISOString(),
      })),
    };
  }
  const staffed = { $or: [{ "participants.userId": me }, { "moderators.userId": me }] };
  for await (const streams of pages(deps.db.liveStreams, staffed)) {
    yield {
      section: "streamRoles",
      items: streams.flatMap((s) => {
        const cohost = s.participants.find((p) => p.userId.equals(me));
        const moderator = s.moderators.find((m) => m.userId.equals(me));
        return [
          ...(cohost
            ? [
                {
                  streamId: s._id.toHexString(),
                  role: "cohost",
                  state: cohost.state,
                  since: cohost.invitedAt.toISOString(),
                },
              ]
            : []),
          ...(moderator
            ? [{ streamId: s._id.toHexString(), role: "moderator", since: moderator.appointedAt.toISOString() }]
            : []),
        ];
      }),
    };
  }
}

export async function eraseUser(deps: Deps, userId: string): Promise<void> {
  const me = new ObjectId(userId);
  const video = liveVideoOf(deps);

  // Their own streams, a page at a time: everything that hangs off a stream first, the stream itself last.
  for (let round = 0; round < 10_000; round++) {
    const own = await deps.db.liveStreams.find({ userId: me }, { limit: 50, sort: { _id: 1 } });
    if (own.length === 0) break;
    for (const stream of own) {
      if (!stream.video.deletedAt && video.configured) {
        // A provider that cannot answer fails the run; the next one tries again from here.
        await video.deleteInput(stream.video.liveInputId);
      }
      await deps.db.batch([
        deps.db.messages.inBatch.deleteMany({ conversationId: stream.conversationId }),
        deps.db.conversations.inBatch.deleteOne({ _id: stream.conversationId, kind: "stream" }),
        deps.db.streamGifts.inBatch.deleteMany({ streamId: stream._id }),
        deps.db.streamGifters.inBatch.deleteMany({ streamId: stream._id }),
      ]);
      await forgetStreamChat(deps, stream.conversationId.toHexString());
      const keys = audienceKeysOf(deps, stream._id.toHexString());
      await runOp(deps.redis, deleteKeys([keys.live, keys.viewers, keys.uniques]));
      await deps.db.liveStreams.deleteOne({ _id: stream._id });
    }
  }

  // What they said with their gifts goes; what they gave stays the streamers' earnings.
  await deps.db.streamGifts.updateMany({ senderId: me, message: { $ne: null } }, { $set: { message: null } });

  // They leave every stream's staff (and its chat seat).
  for (let round = 0; round < 10_000; round++) {
    const staffed = await deps.db.liveStreams.find(
      { $or: [{ "participants.userId": me }, { "moderators.userId": me }] },
      { projection: { _id: 1 }, limit: 100 },
    );
    if (staffed.length === 0) break;
    for (const s of staffed) await dropFromStaff(deps, s._id, userId);
  }

  // And every live chat's mute list.
  for (let round = 0; round < 10_000; round++) {
    const muting = await deps.db.conversations.find(
      { kind: "stream", "stream.mutedIds": me },
      { projection: { _id: 1 }, limit: 100 },
    );
    if (muting.length === 0) break;
    await deps.db.conversations.updateMany(
      { _id: { $in: muting.map((c) => c._id) } },
      { $pull: { "stream.mutedIds": me }, $inc: { version: 1 } },
    );
    for (const c of muting) await forgetStreamChat(deps, c._id.toHexString());
  }
}
