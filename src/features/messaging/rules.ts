import type { MemberRole, MessageDoc } from "../../db";
import type { ObjectId } from "../../platform/ids";
import type { Filter } from "../../platform/mongo/client";

/**
 * The pure rules of messaging: who may do what in a conversation, which messages a reader can see at a given
 * moment, and what a reader's copy of a message looks like. No store calls here (unit-tested in test/unit).
 */

/** The one conversation two people share: both ids, sorted, joined. */
export function directKeyOf(a: string, b: string): string {
  return a < b ? `${a}:${b}` : `${b}:${a}`;
}

/** Owners and admins manage a group (title, timer, members); in a direct conversation both people are equals. */
export function canManage(role: MemberRole): boolean {
  return role === "owner" || role === "admin";
}

/** Who may remove whom from a group: the owner anyone, an admin plain members; everyone may leave. */
export function canRemove(actor: { id: string; role: MemberRole }, target: { id: string; role: MemberRole }): boolean {
  if (actor.id === target.id) return true;
  if (actor.role === "owner") return true;
  return actor.role === "admin" && target.role === "member";
}

/** When the owner leaves: the longest-standing admin, else the longest-standing member, takes over. */
export function nextOwner<M extends { userId: string; role: MemberRole; joinedAt: number }>(
  members: readonly M[],
  leaving: string,
): M | undefined {
  const rest = members.filter((m) => m.userId !== leaving);
  const byTenure = [...rest].sort((a, b) => a.joinedAt - b.joinedAt);
  return byTenure.find((m) => m.role === "admin") ?? byTenure[0];
}

/** A reader of a conversation, as far as seeing its messages goes. */
export interface Reader {
  id: ObjectId;
  /** Messages before this id are not theirs to see (joined later, cleared a direct chat). */
  visibleFrom: ObjectId;
  /** Senders whose messages stay hidden (people the reader is blocked with, either way). */
  hiddenSenders: ObjectId[];
}

/**
 * The messages `reader` may see at `now`: from their visibleFrom on, not from people they are blocked with,
 * and not expired for them — a disappearing message is gone for its sender `timer` after sending and for each
 * recipient `timer` after they read it. Applied to every query, so an expired message is never returned even
 * before the purge job deletes it.
 */
export function visibleTo(reader: Reader, now: Date): Filter {
  const filter: Filter = {
    _id: { $gte: reader.visibleFrom },
    $or: [
      { timerSeconds: 0 },
      { senderId: reader.id, senderExpiresAt: { $gt: now } },
      {
        senderId: { $ne: reader.id },
        reads: { $not: { $elemMatch: { userId: reader.id, expiresAt: { $lte: now } } } },
      },
    ],
  };
  if (reader.hiddenSenders.length > 0) filter.senderId = { $nin: reader.hiddenSenders };
  return filter;
}

/** The same rule in memory: whether one stored message is visible to `reader` at `now`. */
export function isVisibleTo(
  message: Pick<MessageDoc, "_id" | "senderId" | "timerSeconds" | "senderExpiresAt" | "reads">,
  reader: Reader,
  now: Date,
): boolean {
  if (compareIds(message._id, reader.visibleFrom) < 0) return false;
  if (reader.hiddenSenders.some((id) => id.equals(message.senderId))) return false;
  const expiresAt = expiresFor(message, reader.id);
  return expiresAt === null || expiresAt > now;
}

/**
 * When this reader's copy of a message disappears: the sender's `timer` after sending, a recipient's
 * `timer` after they read it (null until then), null for messages without a timer.
 */
export function expiresFor(
  message: Pick<MessageDoc, "senderId" | "timerSeconds" | "senderExpiresAt" | "reads">,
  readerId: ObjectId,
): Date | null {
  if (!message.timerSeconds) return null;
  if (message.senderId.equals(readerId)) return message.senderExpiresAt;
  return message.reads.find((r) => r.userId.equals(readerId))?.expiresAt ?? null;
}

export function compareIds(a: ObjectId, b: ObjectId): number {
  const x = a.toHexString();
  const y = b.toHexString();
  return x < y ? -1 : x > y ? 1 : 0;
}
