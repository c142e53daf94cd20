import { DurableObject } from "cloudflare:workers";
import { depsForEnv } from "../../deps";
import { type RealtimeDelivery, ROOM_PROTOCOL } from "../../platform/realtime";
import { relationsOfMany } from "../relations/service";

/**
 * One conversation's room (a Durable Object per conversation, Workers only): it holds the members' WebSockets
 * with the Hibernation API (the object can leave memory between events while sockets stay open) and fans out
 * what the HTTP API stored. It never writes anything: the only frames a client may send are typing
 * indicators, rate-limited per socket (TYPING_MIN_INTERVAL_MS; a socket that keeps flooding is closed).
 *
 * On every event it re-checks each socket: a token that has expired closes the socket (4001), someone who is
 * no longer a member is closed (4003), and members blocked with the event's author get nothing. An alarm
 * closes sockets at their token's expiry even when nothing happens.
 *
 * Frames to clients: `{type: "message" | "message_edited" | "message_deleted" | "read" | "typing", conversationId, …}`.
 *
 * A live stream's chat is an open room (deliveries say `open`): anyone in the stream's audience may hold a socket
 * (the HTTP side authorized them), nobody is closed for not being a member, typing frames are dropped, and the
 * stream's own events (`gift`, `stream_status`, `chat_mute`) come through it too.
 */

/** What each socket remembers across hibernation (serializeAttachment). */
interface SocketState {
  conversationId: string;
  userId: string;
  expiresAt: number;
  lastTypingAt: number;
  droppedTyping: number;
}

/** The newest membership the room has seen (from the HTTP side's events). */
interface KnownMembers {
  version: number;
  memberIds: string[];
  /** Open to an audience beyond the members (a live stream's chat). */
  open?: boolean;
}

export const CLOSE = {
  tokenExpired: 4001,
  notMember: 4003,
  unsupported: 1003,
  policy: 1008,
} as const;

const MEMBERS_KEY = "members";

export class ConversationRoom extends DurableObject<Record<string, unknown>> {
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === ROOM_PROTOCOL.publishPath && request.method === "POST") {
      await this.deliver((await request.json()) as RealtimeDelivery);
      return new Response(null, { status: 204 });
    }
    if (url.pathname === ROOM_PROTOCOL.connectPath) return this.accept(request);
    return new Response("not found", { status: 404 });
  }

  private async accept(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const userId = request.headers.get(ROOM_PROTOCOL.userHeader) ?? "";
    const conversationId = request.headers.get(ROOM_PROTOCOL.conversationHeader) ?? "";
    const expiresAt = Number(request.headers.get(ROOM_PROTOCOL.expiresHeader));
    if (!userId || !conversationId || !Number.isFinite(expiresAt) || expiresAt <= Date.now()) {
      return new Response("unauthorized", { status: 401 });
    }
    const known = await this.ctx.storage.get<KnownMembers>(MEMBERS_KEY);
    if (known && !known.open && !known.memberIds.includes(userId)) {
      return new Response("not a member", { status: 403 });
    }
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server, [userId]);
    const state: SocketState = { conversationId, userId, expiresAt, lastTypingAt: 0, droppedTyping: 0 };
    server.serializeAttachment(state);
    await this.scheduleExpiry(expiresAt);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Sends an event to every socket that may have it, closing those that may no longer be open. */
  private async deliver(delivery: RealtimeDelivery): Promise<void> {
    const known = await this.ctx.storage.get<KnownMembers>(MEMBERS_KEY);
    // Events can arrive out of order: the newest membership wins.
    const members =
      known && known.version > delivery.version
        ? known
        : { version: delivery.version, memberIds: delivery.memberIds, ...(delivery.open ? { open: true } : {}) };
    if (!known || members !== known) await this.ctx.storage.put(MEMBERS_KEY, members);
    const now = Date.now();
    const frame = JSON.stringify(delivery.event);
    const actorFrame = delivery.actorEvent ? JSON.stringify(delivery.actorEvent) : frame;
    for (const socket of this.ctx.getWebSockets()) {
      const state = socket.deserializeAttachment() as SocketState | null;
      if (!state) continue;
      if (!this.mayStayOpen(socket, state, members, now)) continue;
      if (delivery.exceptUserIds.includes(state.userId)) continue;
      send(socket, state.userId === delivery.actorId ? actorFrame : frame);
    }
  }

  /** Closes a socket whose token expired or whose user left; true when it may stay. */
  private mayStayOpen(socket: WebSocket, state: SocketState, members: KnownMembers | undefined, now: number): boolean {
    if (state.expiresAt <= now) {
      close(socket, CLOSE.tokenExpired, "token expired");
      return false;
    }
    if (members && !members.open && !members.memberIds.includes(state.userId)) {
      close(socket, CLOSE.notMember, "not a member");
      return false;
    }
    return true;
  }

  override async webSocketMessage(socket: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const state = socket.deserializeAttachment() as SocketState | null;
    if (!state) return close(socket, CLOSE.policy, "unknown socket");
    const now = Date.now();
    const members = await this.ctx.storage.get<KnownMembers>(MEMBERS_KEY);
    if (!this.mayStayOpen(socket, state, members, now)) return;
    let frame: { type?: unknown } | null = null;
    try {
      frame = typeof raw === "string" ? (JSON.parse(raw) as { type?: unknown }) : null;
    } catch {
      frame = null;
    }
    // Typing is the only thing a client says here: writes go through HTTP, where the rules are.
    if (frame?.type !== "typing") return close(socket, CLOSE.unsupported, "only typing frames are accepted");
    // A live chat's audience is too large for typing indicators: dropped quietly.
    if (members?.open) return;
    const deps = depsForEnv(this.env);
    const { typingMinIntervalMs, typingDroppedBeforeClose } = deps.config.messaging;
    if (now - state.lastTypingAt < typingMinIntervalMs) {
      state.droppedTyping += 1;
      socket.serializeAttachment(state);
      if (state.droppedTyping >= typingDroppedBeforeClose) close(socket, CLOSE.policy, "too many typing frames");
      return;
    }
    state.lastTypingAt = now;
    socket.serializeAttachment(state);
    // Blocks are read now, not at connect time: someone blocked since then is not told.
    let blocked: (id: string) => boolean = () => false;
    try {
      const relations = (await relationsOfMany(deps, [state.userId])).get(state.userId);
      if (relations) blocked = (id) => relations.blockedWith(id);
    } catch (error) {
      // Without the relations, say nothing rather than risk telling someone blocked.
      deps.log.warn("typing not fanned out", { error: String(error) });
      return;
    }
    const typing = JSON.stringify({
      type: "typing",
      conversationId: state.conversationId,
      userId: state.userId,
      at: new Date(now).toISOString(),
    });
    for (const other of this.ctx.getWebSockets()) {
      const them = other.deserializeAttachment() as SocketState | null;
      if (!them || them.userId === state.userId || blocked(them.userId)) continue;
      if (!this.mayStayOpen(other, them, members, now)) continue;
      send(other, typing);
    }
  }

  override async webSocketClose(socket: WebSocket, code: number, reason: string): Promise<void> {
    close(socket, code === 1005 || code === 1006 ? 1000 : code, reason);
  }

  override async webSocketError(socket: WebSocket): Promise<void> {
    close(socket, 1011, "socket error");
  }

  /** Closes sockets whose token has expired, then waits for the next expiry. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const socket of this.ctx.getWebSockets()) {
      const state = socket.deserializeAttachment() as SocketState | null;
      if (!state) continue;
      if (state.expiresAt <= now) close(socket, CLOSE.tokenExpired, "token expired");
      else next = Math.min(next, state.expiresAt);
    }
    if (Number.isFinite(next)) await this.ctx.storage.setAlarm(next);
  }

  private async scheduleExpiry(expiresAt: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > expiresAt) await this.ctx.storage.setAlarm(expiresAt);
  }
}

function send(socket: WebSocket, frame: string): void {
  try {
    socket.send(frame);
  } catch {
    // A socket closing on its own: nothing to deliver to.
  }
}

function close(socket: WebSocket, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    // Already closed.
  }
}
