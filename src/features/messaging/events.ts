import type { Relations } from "../../core/relations";
import type { MessageDoc } from "../../db";
import type { Deps } from "../../deps";
import type { RealtimeDelivery } from "../../platform/realtime";
import { notify } from "../notifications/service";
import type { ConversationState } from "./state";
import { memberIdsOf } from "./state";
import { messageFor } from "./views";

/**
 * What happens after a conversation write is stored: events to connected members (the real-time channel) and
 * notifications. Both run after the answer and never fail the write; a lost event is caught up with `?after=`.
 */

/** Schedules work after the response (waitUntil on Workers, a background promise elsewhere). */
export type Later = (work: () => Promise<unknown>) => void;

export type ConversationEvent =
  | { type: "message"; message: ReturnType<typeof messageFor> }
  | { type: "message_edited"; message: { id: string; conversationId: string; text: string | null; editedAt: string } }
  | { type: "message_deleted"; message: { id: string; conversationId: string; deletedAt: string } }
  | { type: "read"; conversationId: string; userId: string; messageId: string; readAt: string }
  | StreamChatEvent;

/** What a live stream tells its chat's audience: gifts, its status, a viewer muted or unmuted. */
export type StreamChatEvent =
  | {
      type: "gift";
      streamId: string;
      sender: { id: string; username: string };
      amount: number;
      message: string | null;
      giftTotal: number;
      at: string;
    }
  | { type: "stream_status"; streamId: string; status: "live" | "ended"; at: string }
  | { type: "chat_mute"; userId: string; muted: boolean };

/**
 * Fans an event out to the conversation's sockets: to the members as of this write, never to anyone blocked
 * with the actor (the room re-checks both on every event).
 */
export async function fanOut(
  deps: Deps,
  state: ConversationState,
  actor: { id: string; relations: Relations } | null,
  event: ConversationEvent,
  actorEvent?: ConversationEvent,
): Promise<void> {
  const memberIds = memberIdsOf(state);
  // A stream's chat is open to its whole audience, so whoever is blocked with the actor is left out by id.
  const open = state.kind === "stream";
  const delivery: RealtimeDelivery = {
    conversationId: state.id,
    memberIds,
    version: state.version,
    ...(open ? { open } : {}),
    actorId: actor?.id ?? null,
    exceptUserIds: actor
      ? open
        ? actor.relations.blockedIds()
        : memberIds.filter((id) => id !== actor.id && actor.relations.blockedWith(id))
      : [],
    event: { ...event, conversationId: state.id },
    ...(actorEvent ? { actorEvent: { ...actorEvent, conversationId: state.id } } : {}),
  };
  try {
    await deps.realtime.publish(delivery);
  } catch (error) {
    deps.log.warn("conversation event not fanned out", { conversationId: state.id, error: String(error) });
  }
}

/** A stored message to everyone connected: the sender's other devices get the sender's view. */
export function messageEvents(doc: MessageDoc): { event: ConversationEvent; actorEvent: ConversationEvent } {
  // A new message is unread for every recipient, so no recipient's copy has an expiry yet.
  const recipientView = { ...messageFor(doc, doc.senderId), clientMessageId: null, expiresAt: null };
  return {
    event: { type: "message", message: recipientView },
    actorEvent: { type: "message", message: messageFor(doc, doc.senderId) },
  };
}

/** After a message is stored: the event, and a grouped notification for everyone else. */
export async function afterMessage(
  deps: Deps,
  state: ConversationState,
  actor: { id: string; relations: Relations },
  docs: MessageDoc[],
  options: { notify: boolean },
): Promise<void> {
  const events = docs.map((doc) => messageEvents(doc));
  await Promise.all([
    (async () => {
      for (const { event, actorEvent } of events) await fanOut(deps, state, actor, event, actorEvent);
    })(),
    // Live chat is read as it happens: no notifications for it.
    options.notify && state.kind !== "stream"
      ? notify(deps, {
          type: "message",
          actorId: actor.id,
          conversationId: state.id,
          recipientIds: memberIdsOf(state).filter((id) => id !== actor.id && !actor.relations.blockedWith(id)),
        })
      : Promise.resolve(),
  ]);
}
