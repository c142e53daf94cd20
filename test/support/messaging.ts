import { exports } from "cloudflare:workers";
import { type ApiResponse, call, uniqueIp } from "./api";
import type { TestUser } from "./users";

export interface ConversationBody {
  id: string;
  kind: "direct" | "group";
  members: { user: { id: string; username: string }; role: string; joinedAt: string }[];
  title: string | null;
  disappearingSeconds: number;
  unreadCount: number;
  lastMessage: MessageBody | null;
  inbox: "primary" | "requests";
  role: string;
  createdAt: string;
}

export interface MessageBody {
  id: string;
  conversationId: string;
  senderId: string;
  kind: "text" | "image" | "system";
  text: string | null;
  mediaUrl: string | null;
  clientMessageId: string | null;
  storyId: string | null;
  system: { event: string; userIds: string[]; title?: string | null; disappearingSeconds?: number } | null;
  timerSeconds: number;
  editedAt: string | null;
  deletedAt: string | null;
  expiresAt: string | null;
  createdAt: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** A direct conversation from `from` to `to` (or a group with several people), through the API. */
export async function conversation(
  from: TestUser,
  others: TestUser[],
  body: Record<string, unknown> = {},
): Promise<ConversationBody> {
  const res = await call<ConversationBody>("POST", "/v1/conversations", {
    token: from.accessToken,
    body: { memberIds: others.map((o) => o.id), ...body },
  });
  if (res.status !== 201 && res.status !== 200) throw new Error(`conversation failed: ${res.status} ${res.text}`);
  return res.body;
}

let sequence = 0;
/** A client message id no other send in the run uses. */
export function clientId(): string {
  sequence += 1;
  return `c-${crypto.randomUUID().slice(0, 8)}-${sequence}`;
}

export function send(
  from: TestUser,
  conversationId: string,
  text: string,
  extra: Record<string, unknown> = {},
): Promise<ApiResponse<MessageBody>> {
  return call<MessageBody>("POST", `/v1/conversations/${conversationId}/messages`, {
    token: from.accessToken,
    body: { clientMessageId: clientId(), kind: "text", text, ...extra },
  });
}

/** Sends and insists it was stored. */
export async function sent(from: TestUser, conversationId: string, text: string): Promise<MessageBody> {
  const res = await send(from, conversationId, text);
  if (res.status !== 201) throw new Error(`send failed: ${res.status} ${res.text}`);
  return res.body;
}

export function history(who: TestUser, conversationId: string, query = ""): Promise<ApiResponse<Page<MessageBody>>> {
  return call<Page<MessageBody>>("GET", `/v1/conversations/${conversationId}/messages${query}`, {
    token: who.accessToken,
  });
}

export async function textsSeenBy(who: TestUser, conversationId: string): Promise<(string | null)[]> {
  const res = await history(who, conversationId, "?limit=100");
  if (res.status !== 200) throw new Error(`history failed: ${res.status} ${res.text}`);
  return res.body.items.filter((m) => m.kind !== "system").map((m) => m.text);
}

export function markRead(
  who: TestUser,
  conversationId: string,
  messageId: string,
  extra: Record<string, unknown> = {},
): Promise<ApiResponse> {
  return call("POST", `/v1/conversations/${conversationId}/read`, {
    token: who.accessToken,
    body: { messageId, ...extra },
  });
}

type Fetcher = (request: Request) => Promise<Response>;
const worker = (exports as unknown as { default: { fetch: Fetcher } }).default;

export interface Frame {
  type: string;
  conversationId?: string;
  message?: MessageBody & { id: string };
  userId?: string;
  messageId?: string;
  [field: string]: unknown;
}

/** A real WebSocket to a conversation's room, opened the way an app does (ticket, then upgrade). */
export interface TestSocket {
  frames: Frame[];
  closed: Promise<{ code: number; reason: string }>;
  isClosed(): boolean;
  send(data: string): void;
  close(): void;
  /** Resolves once `count` frames matching `match` have arrived (or fails after `timeoutMs`). */
  waitFor(match: (f: Frame) => boolean, count?: number, timeoutMs?: number): Promise<Frame[]>;
}

export async function ticketFor(
  who: TestUser,
  conversationId: string,
): Promise<ApiResponse<{ ticket: string; url: string }>> {
  return call<{ ticket: string; url: string; expiresIn: number }>(
    "POST",
    `/v1/conversations/${conversationId}/socket-ticket`,
    { token: who.accessToken },
  );
}

/** Upgrades `path` through the Worker; the raw response (status, and its webSocket when 101). */
export function upgrade(path: string): Promise<Response> {
  return worker.fetch(
    new Request(`http://circle.test${path}`, { headers: { upgrade: "websocket", "cf-connecting-ip": uniqueIp() } }),
  );
}

export async function openSocket(who: TestUser, conversationId: string): Promise<TestSocket> {
  const ticket = await ticketFor(who, conversationId);
  if (ticket.status !== 201) throw new Error(`ticket failed: ${ticket.status} ${ticket.text}`);
  const response = await upgrade(ticket.body.url);
  if (response.status !== 101 || !response.webSocket) {
    throw new Error(`upgrade failed: ${response.status} ${await response.text()}`);
  }
  return wrap(response.webSocket);
}

function wrap(ws: WebSocket): TestSocket {
  ws.accept();
  const frames: Frame[] = [];
  const waiters: (() => void)[] = [];
  let closedFlag = false;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener("close", (e) => {
      closedFlag = true;
      resolve({ code: e.code, reason: e.reason });
      for (const w of waiters) w();
    });
  });
  ws.addEventListener("message", (e) => {
    frames.push(JSON.parse(String(e.data)) as Frame);
    for (const w of waiters) w();
  });
  return {
    frames,
    closed,
    isClosed: () => closedFlag,
    send: (data) => ws.send(data),
    close: () => {
      try {
        ws.close(1000, "done");
      } catch {
        // already closed
      }
    },
    waitFor(match, count = 1, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hits = frames.filter(match);
          if (hits.length >= count) {
            clearTimeout(timer);
            resolve(hits);
            return true;
          }
          return false;
        };
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${count} frames; got ${JSON.stringify(frames)}`)),
          timeoutMs,
        );
        if (!check()) waiters.push(() => void check());
      });
    },
  };
}

/** Waits a little for frames that must not come (asserting absence needs time for them to arrive). */
export function settle(ms = 400): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
