import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { ConversationDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import { relationsFor } from "../relations/service";
import { onCopiesRead, onRead } from "./documents";
import { fanOut, type Later } from "./events";
import { compareIds, visibleTo } from "./rules";
import type { Receipts } from "./schema";
import { accessConversation, accessFrom, readerOf, stateOf } from "./state";

/**
 * Read receipts, Matrix-style: a marker per member meaning "read up to and including this message", which only
 * ever moves forward (a `$max` in the update itself, so two devices racing can never move it back). Each member
 * has two: their own (unread count, disappearing timers) and the one others see, which stays put while the
 * member's receipts are off, for a private read, and while the conversation is still a request for them.
 */

/**
 * POST /read: one transaction — the message must exist and be visible to the caller (a guard), the caller's
 * copies of disappearing messages up to it start their timers, and the markers move. Waits: 1 Redis + 1 MongoDB.
 */
export async function markRead(
  deps: Deps,
  viewer: Viewer,
  conversationId: string,
  body: { messageId: string; private?: boolean | undefined },
  later: Later,
): Promise<void> {
  const access = await accessConversation(deps, viewer, conversationId);
  // A live chat keeps no read markers: reading it is watching it.
  if (access.state.stream) return;
  const reader = readerOf(access);
  const messageId = new ObjectId(body.messageId);
  const conversation = new ObjectId(conversationId);
  const now = deps.clock.now();
  let before: ConversationDoc | null;
  try {
    [, , before] = await deps.db.batch(
      [
        expectMatch(
          deps.db.messages.inBatch.findOne(
            { _id: messageId, conversationId: conversation, ...visibleTo(reader, now) },
            { projection: { _id: 1 } },
          ),
        ),
        deps.db.messages.inBatch.updateMany(
          {
            conversationId: conversation,
            _id: { $lte: messageId, $gte: reader.visibleFrom },
            timerSeconds: { $gt: 0 },
            recipientIds: reader.id,
            "reads.userId": { $ne: reader.id },
          },
          onCopiesRead(reader.id, now, false),
        ),
        expectMatch(
          deps.db.conversations.inBatch.findOneAndUpdate(
            { _id: conversation, "members.userId": reader.id },
            onRead(reader.id, messageId, now, body.private !== true),
            { returnDocument: "before", projection: { members: 1 } },
          ),
        ),
      ],
      { transaction: true },
    );
  } catch (error) {
    if (error instanceof PreconditionFailedError) throw ApiError.notFound("No such message.");
    throw error;
  }
  // Members hear of it only when the marker they see moved.
  const was = before?.members.find((m) => m.userId.equals(reader.id));
  const shows = body.private !== true && was?.receipts !== false && was?.accepted === true;
  const moved = shows && (!was?.shownReadId || compareIds(was.shownReadId, messageId) < 0);
  if (!moved) return;
  later(() =>
    fanOut(
      deps,
      access.state,
      { id: viewer.id, relations: access.relations },
      { type: "read", conversationId, userId: viewer.id, messageId: body.messageId, readAt: now.toISOString() },
    ),
  );
}

/** Other members' shown markers (not the caller's own; none of members with receipts off). One MongoDB read. */
export async function getReceipts(deps: Deps, viewer: Viewer, conversationId: string): Promise<Receipts> {
  const [doc, relations] = await Promise.all([
    deps.db.conversations.findOne({ _id: new ObjectId(conversationId) }),
    relationsFor(deps, viewer),
  ]);
  accessFrom(doc ? stateOf(doc) : null, viewer, relations);
  const items = (doc as ConversationDoc).members.flatMap((m) => {
    const userId = m.userId.toHexString();
    if (userId === viewer.id || m.receipts === false || !m.shownReadId || !m.shownReadAt) return [];
    if (relations.blockedWith(userId)) return [];
    return [{ userId, messageId: m.shownReadId.toHexString(), readAt: m.shownReadAt.toISOString() }];
  });
  return { items };
}
