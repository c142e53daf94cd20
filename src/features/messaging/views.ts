import type { Relations } from "../../core/relations";
import type { ConversationDoc, ConversationMemberDoc, MessageDoc, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { Document } from "../../platform/mongo/client";
import { type PublicUser, toPublicUser } from "../users/schema";
import { expiresFor, type Reader, visibleTo } from "./rules";
import type { Conversation, Message } from "./schema";

/** What a message looks like to one reader: their own expiry, and the retry key only to its sender. */
export function messageFor(doc: MessageDoc, readerId: ObjectId): Message {
  const own = doc.senderId.equals(readerId);
  const expiresAt = expiresFor(doc, readerId);
  return {
    id: doc._id.toHexString(),
    conversationId: doc.conversationId.toHexString(),
    senderId: doc.senderId.toHexString(),
    kind: doc.kind,
    text: doc.deletedAt ? null : doc.text,
    mediaUrl: doc.deletedAt ? null : (doc.media?.url ?? null),
    media:
      doc.deletedAt || !doc.media
        ? null
        : {
            url: doc.media.url,
            thumbnailUrl: doc.media.thumbnailUrl,
            width: doc.media.width,
            height: doc.media.height,
            blurhash: doc.media.blurhash,
          },
    clientMessageId: own ? doc.clientMessageId : null,
    storyId: doc.storyId?.toHexString() ?? null,
    system: doc.system
      ? {
          event: doc.system.event,
          userIds: doc.system.userIds.map((id) => id.toHexString()),
          ...(doc.system.title !== undefined ? { title: doc.system.title } : {}),
          ...(doc.system.disappearingSeconds !== undefined
            ? { disappearingSeconds: doc.system.disappearingSeconds }
            : {}),
        }
      : null,
    timerSeconds: doc.timerSeconds,
    editedAt: doc.editedAt?.toISOString() ?? null,
    deletedAt: doc.deletedAt?.toISOString() ?? null,
    expiresAt: expiresAt?.toISOString() ?? null,
    createdAt: doc.createdAt.toISOString(),
  };
}

/** The fields a PublicUser is built from: never an email, hash or token. */
export const PUBLIC_USER_FIELDS = {
  username: 1,
  displayName: 1,
  avatarUrl: 1,
  bio: 1,
  profileTheme: 1,
  tier: 1,
  tierExpiresAt: 1,
  followersCount: 1,
  followingCount: 1,
  totalPosts: 1,
  createdAt: 1,
} as const;

/** The reader a member entry makes, with the viewer's blocks. */
export function readerFromMember(member: ConversationMemberDoc, relations: Relations): Reader {
  return {
    id: member.userId,
    visibleFrom: member.visibleFrom,
    hiddenSenders: relations.blockedIds().map((id) => new ObjectId(id)),
  };
}

interface Extras {
  _id: ObjectId;
  last: MessageDoc[];
  unread: { n: number }[];
}

/**
 * Conversations as the viewer sees them: members as public profiles, the newest message visible to the viewer
 * and their unread count (others' messages after their read marker, not system notes or deleted ones, capped
 * at MESSAGE_UNREAD_COUNT_CAP). One aggregate (a lookup per conversation for each) and one users read, in
 * parallel: one wait.
 */
export async function conversationViews(
  deps: Deps,
  viewerId: string,
  docs: ConversationDoc[],
  relations: Relations,
): Promise<Conversation[]> {
  if (docs.length === 0) return [];
  const me = new ObjectId(viewerId);
  const now = deps.clock.now();
  const hidden = relations.blockedIds().map((id) => new ObjectId(id));
  const reader: Reader = { id: me, visibleFrom: new ObjectId("000000000000000000000000"), hiddenSenders: hidden };
  // The per-conversation bounds (visibleFrom, the read marker) come in as variables; the rest of the reader's
  // filter is the same for every conversation.
  const { _id: _visible, ...sameForAll } = visibleTo(reader, now);
  const pipeline: Document[] = [
    { $match: { _id: { $in: docs.map((d) => d._id) } } },
    {
      $project: {
        mine: {
          $first: { $filter: { input: "$members", as: "m", cond: { $eq: ["$$m.userId", { $literal: me }] } } },
        },
      },
    },
    {
      $lookup: {
        from: "messages",
        let: { cid: "$_id", from: "$mine.visibleFrom" },
        pipeline: [
          { $match: { $expr: { $and: [{ $eq: ["$conversationId", "$$cid"] }, { $gte: ["$_id", "$$from"] }] } } },
          { $match: sameForAll },
          { $sort: { _id: -1 } },
          { $limit: 1 },
        ],
        as: "last",
      },
    },
    unreadLookup(deps, me, hidden),
    { $project: { last: 1, unread: 1 } },
  ];
  const memberIds = [
    ...new Map(docs.flatMap((d) => d.members).map((m) => [m.userId.toHexString(), m.userId])).values(),
  ];
  const [extras, people] = await Promise.all([
    deps.db.conversations.aggregate<Extras & Document>(pipeline),
    deps.db.users.find(
      { _id: { $in: memberIds }, deletedAt: null },
      { projection: PUBLIC_USER_FIELDS, limit: memberIds.length },
    ),
  ]);
  const byConversation = new Map(extras.map((e) => [e._id.toHexString(), e]));
  const profiles = new Map<string, PublicUser>(people.map((p) => [p._id.toHexString(), toPublicUser(p as UserDoc)]));
  return docs.map((doc) => {
    const extra = byConversation.get(doc._id.toHexString());
    const mine = doc.members.find((m) => m.userId.equals(me));
    const last = extra?.last[0];
    return {
      id: doc._id.toHexString(),
      kind: doc.kind,
      members: doc.members.flatMap((m) => {
        const user = profiles.get(m.userId.toHexString());
        return user ? [{ user, role: m.role, joinedAt: m.joinedAt.toISOString() }] : [];
      }),
      title: doc.title,
      disappearingSeconds: doc.disappearingSeconds,
      // A live chat is read as it happens: it keeps no unread count.
      unreadCount: doc.kind === "stream" ? 0 : (extra?.unread[0]?.n ?? 0),
      lastMessage: last ? messageFor(last, me) : null,
      inbox: mine?.accepted === false ? "requests" : "primary",
      role: mine?.role ?? "member",
      createdAt: doc.createdAt.toISOString(),
    };
  });
}

/**
 * The `$lookup` stage that counts the caller's unread messages in each conversation (after their read marker,
 * within what they may see), up to MESSAGE_UNREAD_COUNT_CAP, into `unread`.
 */
export function unreadLookup(deps: Deps, me: ObjectId, hidden: ObjectId[]): Document {
  return {
    $lookup: {
      from: "messages",
      let: { cid: "$_id", from: "$mine.visibleFrom", read: { $ifNull: ["$mine.readId", null] } },
      pipeline: [
        {
          $match: {
            $expr: {
              $and: [
                { $eq: ["$conversationId", "$$cid"] },
                { $gte: ["$_id", "$$from"] },
                { $or: [{ $eq: ["$$read", null] }, { $gt: ["$_id", "$$read"] }] },
              ],
            },
          },
        },
        { $match: unreadFilter(me, hidden) },
        { $limit: deps.config.messaging.unreadCountCap },
        { $count: "n" },
      ],
      as: "unread",
    },
  };
}

/** Others' messages that count as unread: not system notes, not deleted, not from people the reader is blocked with. */
export function unreadFilter(me: ObjectId, hidden: ObjectId[]): Document {
  return {
    senderId: hidden.length > 0 ? { $ne: me, $nin: hidden } : { $ne: me },
    kind: { $ne: "system" },
    deletedAt: null,
  };
}
