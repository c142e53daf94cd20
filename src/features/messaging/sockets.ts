import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { Deps } from "../../deps";
import { randomToken, sha256Hex } from "../../platform/crypto";
import { claimOrGet, runOp, takeValue } from "../../platform/redis-ops";
import { relationsOfMany } from "../relations/service";
import { accessConversation, accessFrom, loadConversation } from "./state";

/**
 * Opening a conversation's WebSocket. The access token never goes into a URL (URLs land in logs, proxies and
 * browser history): the app asks for a one-time ticket with its token (`POST …/socket-ticket`), then opens
 * `GET …/socket?ticket=…` within SOCKET_TICKET_TTL_SECONDS. A ticket is stored only as a hash, works once
 * (GETDEL) and for that conversation only; the socket it opens is closed when the access token it came from
 * expires. Membership and blocks are checked when the ticket is made, when it is redeemed, and by the room on
 * every event.
 */

interface TicketRecord {
  userId: string;
  conversationId: string;
  /** The access token's expiry (epoch ms). */
  expiresAt: number;
}

export async function issueSocketTicket(
  deps: Deps,
  viewer: Viewer,
  conversationId: string,
  tokenExpiresAt: number,
): Promise<{ ticket: string; expiresIn: number; url: string }> {
  if (deps.realtime.kind !== "durable-object") throw noSockets();
  await accessConversation(deps, viewer, conversationId);
  const ticket = randomToken(32);
  const ttl = deps.config.messaging.socketTicketTtlSeconds;
  const record: TicketRecord = { userId: viewer.id, conversationId, expiresAt: tokenExpiresAt };
  await runOp(deps.redis, claimOrGet(deps.keys.socketTicket(await sha256Hex(ticket)), record, ttl));
  return { ticket, expiresIn: ttl, url: `/v1/conversations/${conversationId}/socket?ticket=${ticket}` };
}

/** Redeems a ticket for this conversation and hands the upgrade to the conversation's room. */
export async function openSocket(
  deps: Deps,
  conversationId: string,
  ticket: string,
  request: Request,
): Promise<Response> {
  if (deps.realtime.kind !== "durable-object") throw noSockets();
  const record = await runOp(deps.redis, takeValue<TicketRecord>(deps.keys.socketTicket(await sha256Hex(ticket))));
  if (!record || record.conversationId !== conversationId) {
    throw ApiError.unauthorized("The socket ticket is unknown, used or expired: ask for a new one.");
  }
  if (record.expiresAt <= deps.clock.now().getTime()) throw ApiError.unauthorized("The access token has expired.");
  // Still a member, still not blocked (the ticket may be half a minute old).
  const [state, relations] = await Promise.all([
    loadConversation(deps, conversationId),
    relationsOfMany(deps, [record.userId]),
  ]);
  const viewerRelations = relations.get(record.userId);
  if (!viewerRelations) throw new Error("relations missing for the socket's user");
  accessFrom(state, { id: record.userId }, viewerRelations);
  return deps.realtime.connect(conversationId, request, { userId: record.userId, expiresAt: record.expiresAt });
}

function noSockets(): ApiError {
  return ApiError.notFound(
    "This deployment has no WebSockets (no Durable Objects): catch up with GET …/messages?after= (and waitSeconds).",
  );
}
