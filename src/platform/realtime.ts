import type { Redis } from "./redis";
import { publish, runOp } from "./redis-ops";
import { subscribe } from "./upstash";

/**
 * Where conversation events go after they are stored (HTTP stays the source of truth: store first, then fan
 * out). On Workers a Durable Object per conversation holds its members' WebSockets (features/messaging/room.ts)
 * and is reached through the `CONVERSATION_ROOMS` binding with the small internal protocol below; where there
 * is no Durable Object (the Deno entry) events go to Upstash pub/sub, which long-polling readers wait on.
 */

/** One event for a conversation's sockets, with what the room needs to re-check who may get it. */
export interface RealtimeDelivery {
  conversationId: string;
  /** The members once the event happened; sockets of anyone else are closed (unless the room is open). */
  memberIds: string[];
  /** A room open to an audience beyond its members (a live stream's chat): nobody is closed for not being one. */
  open?: boolean;
  /** The conversation's version the members are from (a room keeps the newest it saw). */
  version: number;
  /** Who caused it: their own sockets get `actorEvent` when there is one. */
  actorId: string | null;
  /** Members blocked with the actor (either way): they get nothing. */
  exceptUserIds: string[];
  event: Record<string, unknown>;
  actorEvent?: Record<string, unknown>;
}

/** Who a socket belongs to, fixed when its ticket was redeemed. */
export interface SocketIdentity {
  userId: string;
  /** The access token's expiry (epoch ms): the room closes the socket then. */
  expiresAt: number;
}

export type RealtimeKind = "durable-object" | "upstash" | "none";

/** A wait for a conversation's next event (see `Realtime.waitForEvent`); `cancel` ends it early. */
export interface EventWait {
  ready: Promise<void>;
  event: Promise<boolean>;
  cancel(): void;
}

export interface Realtime {
  readonly kind: RealtimeKind;
  /** Fans an event out; best effort (a lost event is caught up with `?after=`). */
  publish(delivery: RealtimeDelivery): Promise<void>;
  /** Hands an authorized WebSocket upgrade to the conversation's room (Durable Objects only). */
  connect(conversationId: string, request: Request, identity: SocketIdentity): Promise<Response>;
  /**
   * Waits until an event for the conversation is published or `ms` pass; `ready` resolves once the wait is
   * listening, so a caller can read after it without missing an event in between. Resolves to whether one came
   * (pub/sub only; elsewhere it resolves false at once).
   */
  waitForEvent(conversationId: string, ms: number): EventWait;
}

/** The internal requests a worker sends a room (never reachable from outside: only through the binding). */
export const ROOM_PROTOCOL = {
  publishPath: "/publish",
  connectPath: "/connect",
  userHeader: "x-circle-socket-user",
  conversationHeader: "x-circle-socket-conversation",
  expiresHeader: "x-circle-socket-expires",
} as const;

/** The part of a Durable Object namespace binding the adapter uses. */
export interface RoomNamespace<Id = unknown> {
  idFromName(name: string): Id;
  get(id: Id): { fetch(input: string, init?: RequestInit): Promise<Response> };
}

export interface RealtimeOptions {
  rooms?: RoomNamespace | undefined;
  /** Publish to Upstash pub/sub too (`auto`: only when there are no rooms). */
  upstashPubSub: "auto" | "on" | "off";
  redis: Redis;
  redisUrl: string;
  redisToken: string;
  channel(conversationId: string): string;
}

export function createRealtime(opts: RealtimeOptions): Realtime {
  const rooms = opts.rooms;
  const pubsub = opts.upstashPubSub === "on" || (opts.upstashPubSub === "auto" && !rooms);
  const kind: RealtimeKind = rooms ? "durable-object" : pubsub ? "upstash" : "none";
  const room = (conversationId: string) => {
    if (!rooms) throw new Error("no conversation rooms on this runtime");
    return rooms.get(rooms.idFromName(conversationId));
  };
  return {
    kind,
    async publish(delivery) {
      const sends: Promise<unknown>[] = [];
      if (rooms) {
        sends.push(
          (async () => {
            const response = await room(delivery.conversationId).fetch(`https://room${ROOM_PROTOCOL.publishPath}`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify(delivery),
            });
            await response.body?.cancel();
          })(),
        );
      }
      if (pubsub) {
        sends.push(runOp(opts.redis, publish(opts.channel(delivery.conversationId), JSON.stringify(delivery.event))));
      }
      await Promise.all(sends);
    },
    async connect(conversationId, request, identity) {
      const headers = new Headers(request.headers);
      headers.set(ROOM_PROTOCOL.userHeader, identity.userId);
      headers.set(ROOM_PROTOCOL.conversationHeader, conversationId);
      headers.set(ROOM_PROTOCOL.expiresHeader, String(identity.expiresAt));
      return room(conversationId).fetch(`https://room${ROOM_PROTOCOL.connectPath}`, { headers });
    },
    waitForEvent(conversationId, ms) {
      if (!pubsub) return { ready: Promise.resolve(), event: Promise.resolve(false), cancel: () => undefined };
      let onReady = () => {};
      const ready = new Promise<void>((resolve) => {
        onReady = resolve;
      });
      let finish: (got: boolean) => void = () => undefined;
      const event = new Promise<boolean>((resolve) => {
        let done = false;
        const timer = setTimeout(() => finish(false), ms);
        // A long-lived stream of its own, outside the per-request store timeout and round-trip count.
        const unsubscribe = subscribe({ url: opts.redisUrl, token: opts.redisToken }, opts.channel(conversationId), {
          subscribed: () => onReady(),
          message: () => finish(true),
          failed: () => finish(false),
        });
        finish = (got) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          onReady();
          unsubscribe();
          resolve(got);
        };
      });
      return { ready, event, cancel: () => finish(false) };
    },
  };
}
