import type { ConversationMemberDoc, MemberRole, MessageDoc, MessageMediaDoc, SystemNoteDoc } from "../../db";
import { newObjectId, type ObjectId } from "../../platform/ids";
import type { Document, Update } from "../../platform/mongo/client";

/** The stored shapes messaging writes, and the pipeline updates that move them (pure; no store calls). */

export function newMember(m: {
  userId: ObjectId;
  role: MemberRole;
  addedBy: ObjectId | null;
  accepted: boolean;
  receipts: boolean;
  visibleFrom: ObjectId;
  now: Date;
}): ConversationMemberDoc {
  return {
    userId: m.userId,
    role: m.role,
    joinedAt: m.now,
    addedBy: m.addedBy,
    visibleFrom: m.visibleFrom,
    accepted: m.accepted,
    hidden: false,
    readId: null,
    readAt: null,
    shownReadId: null,
    shownReadAt: null,
    receipts: m.receipts,
  };
}

export function newMessage(m: {
  _id?: ObjectId;
  conversationId: ObjectId;
  senderId: ObjectId;
  kind: MessageDoc["kind"];
  text: string | null;
  media?: MessageMediaDoc | null;
  clientMessageId?: string | null;
  storyId?: ObjectId | null;
  system?: SystemNoteDoc | null;
  timerSeconds: number;
  recipientIds: ObjectId[];
  now: Date;
}): MessageDoc {
  const senderExpiresAt = m.timerSeconds > 0 ? new Date(m.now.getTime() + m.timerSeconds * 1000) : null;
  return {
    _id: m._id ?? newObjectId(),
    conversationId: m.conversationId,
    senderId: m.senderId,
    kind: m.kind,
    text: m.text,
    media: m.media ?? null,
    clientMessageId: m.clientMessageId ?? null,
    storyId: m.storyId ?? null,
    system: m.system ?? null,
    createdAt: m.now,
    editedAt: null,
    deletedAt: null,
    timerSeconds: m.timerSeconds,
    senderExpiresAt,
    recipientIds: m.timerSeconds > 0 ? m.recipientIds : [],
    reads: [],
    // Nobody else to read it: the sender's copy is the last one.
    purgeAt: m.timerSeconds > 0 && m.recipientIds.length === 0 ? senderExpiresAt : null,
  };
}

/** A system note (never disappearing), caused by `actorId`. */
export function systemMessage(
  conversationId: ObjectId,
  actorId: ObjectId,
  system: SystemNoteDoc,
  now: Date,
  id?: ObjectId,
): MessageDoc {
  return newMessage({
    ...(id ? { _id: id } : {}),
    conversationId,
    senderId: actorId,
    kind: "system",
    text: null,
    system,
    timerSeconds: 0,
    recipientIds: [],
    now,
  });
}

const lit = (v: unknown) => ({ $literal: v });

/** `members` rewritten entry by entry (`$$m` is the entry in `each`). */
function mapMembers(each: Document): Document {
  return { $map: { input: "$members", as: "m", in: each } };
}

/**
 * The conversation side of a new message, as one pipeline update: the inbox order moves, everyone who had
 * hidden the conversation sees it again (a declined request returns as a request), and the sender has read
 * their own message and accepted the conversation (replying to a request accepts it).
 */
export function onMessageSent(senderId: ObjectId, messageId: ObjectId, now: Date): Update {
  return [
    {
      $set: {
        lastMessageAt: { $max: [{ $ifNull: ["$lastMessageAt", null] }, lit(now)] },
        updatedAt: lit(now),
        members: mapMembers({
          $cond: [
            { $eq: ["$$m.userId", lit(senderId)] },
            {
              $mergeObjects: [
                "$$m",
                {
                  accepted: true,
                  hidden: false,
                  readId: { $max: [{ $ifNull: ["$$m.readId", null] }, lit(messageId)] },
                  readAt: lit(now),
                },
              ],
            },
            { $mergeObjects: ["$$m", { hidden: false }] },
          ],
        }),
      },
    },
  ];
}

/**
 * A member's read marker moves to `messageId` if that is further (never back: `$max`), and so does the marker
 * others see, unless `shown` is false (a private read), the member's receipts are off or the conversation is
 * still a request for them.
 */
export function onRead(readerId: ObjectId, messageId: ObjectId, now: Date, shown: boolean): Update {
  const further = (field: string) => ({
    $or: [{ $eq: [{ $ifNull: [`$$m.${field}`, null] }, null] }, { $lt: [`$$m.${field}`, lit(messageId)] }],
  });
  const showsReceipt = { $and: [lit(shown), { $ne: ["$$m.receipts", false] }, { $eq: ["$$m.accepted", true] }] };
  return [
    {
      $set: {
        members: mapMembers({
          $cond: [
            { $eq: ["$$m.userId", lit(readerId)] },
            {
              $mergeObjects: [
                "$$m",
                {
                  readId: { $cond: [further("readId"), lit(messageId), "$$m.readId"] },
                  readAt: { $cond: [further("readId"), lit(now), "$$m.readAt"] },
                  shownReadId: {
                    $cond: [{ $and: [showsReceipt, further("shownReadId")] }, lit(messageId), "$$m.shownReadId"],
                  },
                  shownReadAt: {
                    $cond: [{ $and: [showsReceipt, further("shownReadId")] }, lit(now), "$$m.shownReadAt"],
                  },
                },
              ],
            },
            "$$m",
          ],
        }),
      },
    },
  ];
}

/**
 * One member's entry changed (e.g. accepted, hidden, visibleFrom), the others left alone; `bumpVersion` when
 * the change is one the cached state holds (visibleFrom).
 */
export function onMember(userId: ObjectId, fields: Record<string, unknown>, bumpVersion = false): Update {
  const literal = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, lit(v)]));
  return [
    {
      $set: {
        members: mapMembers({
          $cond: [{ $eq: ["$$m.userId", lit(userId)] }, { $mergeObjects: ["$$m", literal] }, "$$m"],
        }),
        ...(bumpVersion ? { version: { $add: ["$version", 1] } } : {}),
      },
    },
  ];
}

/**
 * A member leaves or is removed: their entry goes; a new owner (when the owner left) takes over. Plus the
 * conversation's bookkeeping (the version moves: see state.ts).
 */
export function onMemberGone(userId: ObjectId, newOwner: ObjectId | null, now: Date): Update {
  return [
    {
      $set: {
        members: {
          $map: {
            input: { $filter: { input: "$members", as: "m", cond: { $ne: ["$$m.userId", lit(userId)] } } },
            as: "m",
            in: newOwner
              ? {
                  $cond: [{ $eq: ["$$m.userId", lit(newOwner)] }, { $mergeObjects: ["$$m", { role: "owner" }] }, "$$m"],
                }
              : "$$m",
          },
        },
        version: { $add: ["$version", 1] },
        updatedAt: lit(now),
        lastMessageAt: lit(now),
      },
    },
  ];
}

/**
 * Disappearing messages a reader's marker just passed: their copy starts its timer (expires `timerSeconds`
 * from now), or, for a member who leaves, expires at once. When every recipient has an entry, `purgeAt` is
 * the last expiry of all copies (the sender's included), which the purge job waits for.
 */
export function onCopiesRead(readerId: ObjectId, now: Date, expireAtOnce: boolean): Update {
  const expiresAt = expireAtOnce ? lit(now) : { $add: [lit(now), { $multiply: ["$timerSeconds", 1000] }] };
  return [
    {
      $set: {
        reads: {
          $concatArrays: [{ $ifNull: ["$reads", []] }, [{ userId: lit(readerId), at: lit(now), expiresAt }]],
        },
      },
    },
    {
      $set: {
        purgeAt: {
          $cond: [
            { $gte: [{ $size: "$reads" }, { $size: { $ifNull: ["$recipientIds", []] } }] },
            { $max: [{ $ifNull: ["$senderExpiresAt", null] }, { $max: "$reads.expiresAt" }] },
            null,
          ],
        },
      },
    },
  ];
}
