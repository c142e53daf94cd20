import { bestEffort } from "../../core/best-effort";
import { ApiError } from "../../core/errors";
import type { Relations } from "../../core/relations";
import type { Viewer } from "../../core/viewer";
import type { ConversationDoc, ConversationMemberDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import type { BatchStep, UpdateResult } from "../../platform/mongo/client";
import { releaseLease, runOp, takeTurn } from "../../platform/redis-ops";
import { newMember } from "./documents";
import { fanOut, type Later, type StreamChatEvent } from "./events";
import { canManage } from "./rules";
import { type Access, accessConversation, forgetConversation, loadConversation } from "./state";

/**
 * A live stream's chat: a conversation of kind `stream` (features/streams creates one per stream). Its audience
 * is everyone who may see the stream, so viewers are not members: they read it from the start and write in it
 * while it is open, one message per STREAM_CHAT_SLOW_MODE_SECONDS (slow mode), unless a host or moderator muted
 * them for the stream. Its members are the stream's staff only: the streamer (owner) and their co-hosts and
 * moderators (admins), who remove messages and mute viewers. It closes (read-only) when the stream ends. The
 * same message store, history, catch-up and real-time room as any conversation; no notifications, no receipts.
 */

/** Everyone in a stream's audience sees its chat from the first message. */
const FROM_THE_START = new ObjectId("000000000000000000000000");

/** Who holds a staff seat: the streamer, or a co-host or moderator since `since`. */
export interface ChatStaff {
  userId: ObjectId;
  since: Date;
}

function staffMembers(host: ChatStaff, admins: ChatStaff[]): ConversationMemberDoc[] {
  const seat = (s: ChatStaff, role: "owner" | "admin") => ({
    ...newMember({
      userId: s.userId,
      role,
      addedBy: role === "owner" ? null : host.userId,
      accepted: true,
      receipts: false,
      visibleFrom: FROM_THE_START,
      now: s.since,
    }),
  });
  const seen = new Set([host.userId.toHexString()]);
  const unique = admins.filter((a) => {
    const id = a.userId.toHexString();
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
  return [seat(host, "owner"), ...unique.map((a) => seat(a, "admin"))];
}

/** The chat of a new stream, inserted in the same batch as the stream itself. */
export function newStreamChat(m: { streamId: ObjectId; host: ChatStaff; title: string; now: Date }): ConversationDoc {
  return {
    _id: newObjectId(),
    kind: "stream",
    directKey: null,
    title: m.title,
    createdBy: m.host.userId,
    members: staffMembers(m.host, []),
    disappearingSeconds: 0,
    version: 1,
    lastMessageAt: null,
    stream: { streamId: m.streamId, hostId: m.host.userId, open: true, mutedIds: [] },
    createdAt: m.now,
    updatedAt: m.now,
  };
}

/**
 * A batch step that seats exactly this staff (the co-hosts and moderators the stream now has) and moves the
 * chat's version, so a send decided on the old staff is decided again. Call `forgetConversation` after.
 */
export function restaffStreamChat(
  deps: Deps,
  conversationId: ObjectId,
  host: ChatStaff,
  admins: ChatStaff[],
  now: Date,
): BatchStep<UpdateResult> {
  return deps.db.conversations.inBatch.updateOne(
    { _id: conversationId, kind: "stream" },
    { $set: { members: staffMembers(host, admins), updatedAt: now }, $inc: { version: 1 } },
  );
}

/** A batch step that makes the chat read-only (the stream ended). Call `forgetConversation` after. */
export function closeStreamChat(deps: Deps, conversationId: ObjectId, now: Date): BatchStep<UpdateResult> {
  return deps.db.conversations.inBatch.updateOne(
    { _id: conversationId, kind: "stream", "stream.open": true },
    { $set: { "stream.open": false, updatedAt: now }, $inc: { version: 1 } },
  );
}

export { forgetConversation as forgetStreamChat };

/** Staff: the streamer, co-hosts and moderators (members with a managing role). */
function isStaff(access: Access): boolean {
  return access.state.members.some((m) => m.userId === access.me.userId) && canManage(access.me.role);
}

/**
 * A host or moderator mutes (or unmutes) a viewer for this stream's chat: they still read, they cannot send.
 * Staff cannot be muted (403). Idempotent. At most STREAM_MAX_CHAT_MUTES per stream (409 `mute_limit`).
 */
export async function muteInStreamChat(
  deps: Deps,
  viewer: Viewer,
  conversationId: string,
  targetId: string,
  muted: boolean,
  later: Later,
): Promise<void> {
  const access = await accessConversation(deps, viewer, conversationId);
  if (!access.state.stream) throw ApiError.notFound("No such conversation.");
  if (!isStaff(access)) throw ApiError.forbidden("Only the stream's hosts and moderators mute viewers.");
  if (access.state.members.some((m) => m.userId === targetId)) {
    throw ApiError.forbidden("Hosts and moderators cannot be muted.");
  }
  const id = new ObjectId(conversationId);
  const target = new ObjectId(targetId);
  const max = deps.config.streams.maxChatMutes;
  const change = { $inc: { version: 1 }, $set: { updatedAt: deps.clock.now() } };
  const result = muted
    ? await deps.db.conversations.updateOne(
        // Not muted yet, and below the cap (the array has no element at index max − 1).
        { _id: id, "stream.mutedIds": { $ne: target }, [`stream.mutedIds.${max - 1}`]: { $exists: false } },
        { ...change, $addToSet: { "stream.mutedIds": target } },
      )
    : await deps.db.conversations.updateOne(
        { _id: id, "stream.mutedIds": target },
        { ...change, $pull: { "stream.mutedIds": target } },
      );
  if (result.matchedCount === 0) {
    if (!muted) return;
    const already = await deps.db.conversations.findOne(
      { _id: id, "stream.mutedIds": target },
      { projection: { _id: 1 } },
    );
    if (already) return;
    throw ApiError.conflict("mute_limit", `A stream's chat mutes at most ${max} viewers.`);
  }
  await forgetConversation(deps, conversationId);
  later(() => publishStreamEvent(deps, conversationId, null, { type: "chat_mute", userId: targetId, muted }));
}

/**
 * Whether the caller may send in a stream's chat now: it is open, they are not muted, and (viewers only) slow
 * mode gives them this turn — one message per STREAM_CHAT_SLOW_MODE_SECONDS, taken in Redis before the write.
 * Returns a release for the turn, to give it back when the write does not happen.
 */
export async function admitToStreamChat(deps: Deps, access: Access): Promise<() => Promise<void>> {
  const stream = access.state.stream;
  const none = async () => {};
  if (!stream) return none;
  if (!stream.open) throw ApiError.conflict("chat_closed", "The stream has ended: its chat is read-only.");
  if (stream.mutedIds.includes(access.me.userId)) throw ApiError.forbidden("You are muted in this stream's chat.");
  const seconds = deps.config.streams.chatSlowModeSeconds;
  if (seconds === 0 || isStaff(access)) return none;
  const key = deps.keys.chatSlowMode(access.state.id, access.me.userId);
  const turn = await runOp(deps.redis, takeTurn(key, access.me.userId, seconds * 1000));
  if (!turn.taken) {
    const retryAfterSeconds = Math.max(1, Math.ceil(turn.waitMs / 1000));
    throw ApiError.rateLimited(
      { limit: 1, remaining: 0, resetSeconds: retryAfterSeconds, retryAfterSeconds },
      "messages in this live chat (slow mode)",
    );
  }
  // Best effort: an unspent turn that stays taken frees itself after the interval.
  return async () => {
    await bestEffort(deps, "slow-mode turn release", () => runOp(deps.redis, releaseLease(key, access.me.userId)));
  };
}

/** Group management does not apply to a stream's chat: its staff follows the stream. */
export function refuseStreamChat(access: Pick<Access, "state">): void {
  if (access.state.kind === "stream") {
    throw ApiError.conflict("stream_chat", "A live stream's chat is managed through its stream.");
  }
}

/**
 * An event of the stream (a gift, its status) to everyone connected to its chat. Best effort (after the answer):
 * HTTP stays the source of truth.
 */
export async function publishStreamEvent(
  deps: Deps,
  conversationId: string,
  actor: { id: string; relations: Relations } | null,
  event: StreamChatEvent,
): Promise<void> {
  try {
    const state = await loadConversation(deps, conversationId);
    if (state) await fanOut(deps, state, actor, event);
  } catch (error) {
    deps.log.warn("stream event not published", { conversationId, type: event.type, error: String(error) });
  }
}
