import { ApiError } from "../../core/errors";
import { bearerToken } from "../../http/auth";
import { afterResponse } from "../../http/context";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, publicRoute } from "../../http/routes";
import { tokenSettingsOf, verifyAccessToken } from "../../platform/tokens";
import {
  acceptConversation,
  addMembers,
  createConversation,
  declineConversation,
  getConversation,
  getMessagingSettings,
  listConversations,
  removeMember,
  setMemberRole,
  unreadTotal,
  updateConversation,
  updateMessagingSettings,
} from "./conversations";
import { deleteMessage, editMessage, listMessages, sendMessage } from "./messages";
import { getReceipts, markRead } from "./receipts";
import {
  AddMembersBody,
  Conversation,
  ConversationIdParam,
  ConversationPage,
  ConversationsQuery,
  CreateConversationBody,
  EditMessageBody,
  MemberParams,
  MemberRoleBody,
  Message,
  MessageIdParam,
  MessagePage,
  MessagesQuery,
  MessagingSettings,
  ReadBody,
  Receipts,
  SendMessageBody,
  SocketQuery,
  SocketTicket,
  UnreadCount,
  UpdateConversationBody,
  UpdateMessagingSettingsBody,
} from "./schema";
import { issueSocketTicket, openSocket } from "./sockets";

const tags = ["messages"];

const createRoute = authedRoute({
  method: "post",
  path: "/v1/conversations",
  tags,
  summary: "Start a conversation (direct, or a group)",
  description:
    "One other person and no title: a direct conversation — the existing one is returned (200) rather than a " +
    "second. Two or more (or a title): a group the caller owns, up to MESSAGING_MAX_MEMBERS. People who do not " +
    "follow the caller get it in their requests inbox. Unknown people, and people blocked with the caller, are 404.",
  request: { ...jsonBody(CreateConversationBody) },
  responses: {
    201: json(Conversation, "Created"),
    200: json(Conversation, "The direct conversation the two already have"),
    ...problems(404),
  },
});

const listRoute = authedRoute({
  method: "get",
  path: "/v1/conversations",
  tags,
  summary: "The caller's inbox, newest message first",
  description: "Conversations with at least one message. `inbox=requests`: message requests not yet accepted.",
  request: { query: ConversationsQuery },
  responses: { 200: json(ConversationPage, "A page of conversations") },
});

const unreadRoute = authedRoute({
  method: "get",
  path: "/v1/conversations/unread-count",
  tags,
  summary: "Unread messages over all conversations",
  responses: { 200: json(UnreadCount, "Counts") },
});

const getRoute = authedRoute({
  method: "get",
  path: "/v1/conversations/{id}",
  tags,
  summary: "One conversation (members only)",
  request: { params: ConversationIdParam },
  responses: { 200: json(Conversation, "The conversation"), ...problems(404) },
});

const updateRoute = authedRoute({
  method: "patch",
  path: "/v1/conversations/{id}",
  tags,
  summary: "Rename a group or set the disappearing-message timer",
  description:
    "A timer applies to messages sent from now on (each message keeps the timer it was sent with) and posts a " +
    "system message. In a group only the owner and admins change either (403).",
  request: { params: ConversationIdParam, ...jsonBody(UpdateConversationBody) },
  responses: { 200: json(Conversation, "Changed"), ...problems(403, 404, 409) },
});

const addMembersRoute = authedRoute({
  method: "post",
  path: "/v1/conversations/{id}/members",
  tags,
  summary: "Add people to a group (owner or admin)",
  description:
    "They see messages from the note that says they were added on. Over MESSAGING_MAX_MEMBERS → 409 " +
    "`member_limit`; a direct conversation → 409 `direct_conversation`.",
  request: { params: ConversationIdParam, ...jsonBody(AddMembersBody) },
  responses: { 200: json(Conversation, "Members added"), ...problems(403, 404, 409) },
});

const removeMemberRoute = authedRoute({
  method: "delete",
  path: "/v1/conversations/{id}/members/{userId}",
  tags,
  summary: "Leave (yourself) or remove a member",
  description:
    "The owner removes anyone, admins remove plain members (403 otherwise). When the owner leaves, the " +
    "longest-standing admin, else member, becomes owner. In a direct conversation, yourself: it is cleared " +
    "for you (gone from your inbox and its history, until a new message).",
  request: { params: MemberParams },
  responses: { 204: { description: "Gone" }, ...problems(403, 404, 409) },
});

const roleRoute = authedRoute({
  method: "patch",
  path: "/v1/conversations/{id}/members/{userId}",
  tags,
  summary: "Make a member an admin or a member again, or hand the group over (owner only)",
  request: { params: MemberParams, ...jsonBody(MemberRoleBody) },
  responses: { 200: json(Conversation, "Changed"), ...problems(403, 404, 409) },
});

const acceptRoute = authedRoute({
  method: "post",
  path: "/v1/conversations/{id}/accept",
  tags,
  summary: "Accept a message request (idempotent)",
  request: { params: ConversationIdParam },
  responses: { 204: { description: "In the primary inbox" }, ...problems(404) },
});

const declineRoute = authedRoute({
  method: "post",
  path: "/v1/conversations/{id}/decline",
  tags,
  summary: "Decline a message request",
  description:
    "A direct request leaves the requests inbox with its history; the sender is not told, and a later message " +
    "arrives as a new request. A group request: the caller leaves. An accepted conversation → 409 `not_a_request`.",
  request: { params: ConversationIdParam },
  responses: { 204: { description: "Declined" }, ...problems(404, 409) },
});

const sendRoute = authedRoute({
  method: "post",
  path: "/v1/conversations/{id}/messages",
  tags,
  summary: "Send a message",
  description:
    "Stored first, then fanned out to connected members. A repeat with the same `clientMessageId` returns the " +
    "first message (200) — also when requests race; with a different body → 422. Sending in a message request " +
    "accepts it. The conversation's disappearing timer in force when the message is stored is the message's own. " +
    "A live stream's chat (kind `stream`) takes text from its whole audience: one message per " +
    "STREAM_CHAT_SLOW_MODE_SECONDS for viewers (429 with Retry-After), none from a viewer muted for the stream " +
    "(403), none once the stream ended (409 `chat_closed`).",
  request: { params: ConversationIdParam, ...jsonBody(SendMessageBody) },
  responses: {
    201: json(Message, "Sent"),
    200: json(Message, "Already sent with this clientMessageId"),
    ...problems(403, 404, 409, 422),
  },
});

const historyRoute = authedRoute({
  method: "get",
  path: "/v1/conversations/{id}/messages",
  tags,
  summary: "History (before, newest first) and catch-up (after, oldest first)",
  description:
    "Never an expired message (disappearing messages are filtered per reader at the moment of the request), " +
    "nothing from before the caller joined, nothing from people blocked with the caller. `nextCursor` is the id " +
    "to pass in the same parameter for the next page.",
  request: { params: ConversationIdParam, query: MessagesQuery },
  responses: { 200: json(MessagePage, "A page of messages"), ...problems(404) },
});

const editRoute = authedRoute({
  method: "patch",
  path: "/v1/messages/{id}",
  tags,
  summary: "Edit your text message (within MESSAGE_EDIT_WINDOW_SECONDS)",
  description: "Too late → 409 `edit_window_closed`; someone else's message → 403.",
  request: { params: MessageIdParam, ...jsonBody(EditMessageBody) },
  responses: { 200: json(Message, "Edited"), ...problems(403, 404, 409) },
});

const deleteRoute = authedRoute({
  method: "delete",
  path: "/v1/messages/{id}",
  tags,
  summary: "Delete a message for everyone",
  description:
    "The sender, or in a group its owner and admins (in a live stream's chat: the streamer, co-hosts and " +
    "moderators). A placeholder stays (`deletedAt`); idempotent.",
  request: { params: MessageIdParam },
  responses: { 204: { description: "Deleted" }, ...problems(403, 404, 409) },
});

const readRoute = authedRoute({
  method: "post",
  path: "/v1/conversations/{id}/read",
  tags,
  summary: "Mark read up to and including a message",
  description:
    "Markers never move backwards (a stale device's read changes nothing). Starts the caller's timers on " +
    "disappearing messages up to it. Members see the caller's marker unless receipts are off, the read is " +
    "`private`, or the conversation is still a request for the caller.",
  request: { params: ConversationIdParam, ...jsonBody(ReadBody) },
  responses: { 204: { description: "Read" }, ...problems(404) },
});

const receiptsRoute = authedRoute({
  method: "get",
  path: "/v1/conversations/{id}/receipts",
  tags,
  summary: "How far the other members have read",
  request: { params: ConversationIdParam },
  responses: { 200: json(Receipts, "Markers"), ...problems(404) },
});

const ticketRoute = authedRoute({
  method: "post",
  path: "/v1/conversations/{id}/socket-ticket",
  tags,
  summary: "A one-time ticket to open the conversation's WebSocket",
  description:
    "The access token never goes into the socket's URL: redeem the ticket within SOCKET_TICKET_TTL_SECONDS at " +
    "`url`. The socket closes when this access token expires. 404 where the runtime has no WebSockets (Deno).",
  request: { params: ConversationIdParam },
  responses: { 201: json(SocketTicket, "Ticket"), ...problems(404) },
});

const socketRoute = publicRoute({
  method: "get",
  path: "/v1/conversations/{id}/socket",
  tags,
  summary: "The conversation's WebSocket (upgrade)",
  description:
    "Authenticated by a ticket from POST …/socket-ticket (single use). Server frames: `message`, " +
    "`message_edited`, `message_deleted`, `read`, `typing` (JSON, with `type` and `conversationId`). The only " +
    'client frame is `{"type":"typing"}` (rate-limited: TYPING_MIN_INTERVAL_MS); anything else closes the ' +
    "socket (1003). Close codes: 4001 token expired, 4003 no longer a member, 1008 flooding. Reconnect with a new " +
    "ticket and catch up with GET …/messages?after=.",
  request: { params: ConversationIdParam, query: SocketQuery },
  responses: {
    101: { description: "Switching protocols: the WebSocket is open" },
    ...problems(401, 404),
  },
});

const settingsRoute = authedRoute({
  method: "get",
  path: "/v1/me/messaging",
  tags,
  summary: "The caller's messaging settings",
  responses: { 200: json(MessagingSettings, "Settings"), ...problems(404) },
});

const updateSettingsRoute = authedRoute({
  method: "patch",
  path: "/v1/me/messaging",
  tags,
  summary: "Turn read receipts on or off (all conversations)",
  request: { ...jsonBody(UpdateMessagingSettingsBody) },
  responses: { 200: json(MessagingSettings, "Settings"), ...problems(404) },
});

export const messagingRoutes = router()
  .openapi(createRoute, async (c) => {
    const { conversation, created } = await createConversation(c.var.deps, c.var.viewer, c.req.valid("json"));
    return created ? c.json(conversation, 201) : c.json(conversation, 200);
  })
  .openapi(listRoute, async (c) => c.json(await listConversations(c.var.deps, c.var.viewer, c.req.valid("query")), 200))
  .openapi(unreadRoute, async (c) => c.json(await unreadTotal(c.var.deps, c.var.viewer), 200))
  .openapi(getRoute, async (c) => c.json(await getConversation(c.var.deps, c.var.viewer, c.req.valid("param").id), 200))
  .openapi(updateRoute, async (c) =>
    c.json(
      await updateConversation(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("json"), afterResponse()),
      200,
    ),
  )
  .openapi(addMembersRoute, async (c) =>
    c.json(
      await addMembers(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("json").userIds, afterResponse()),
      200,
    ),
  )
  .openapi(removeMemberRoute, async (c) => {
    const { id, userId } = c.req.valid("param");
    await removeMember(c.var.deps, c.var.viewer, id, userId, afterResponse());
    return c.body(null, 204);
  })
  .openapi(roleRoute, async (c) => {
    const { id, userId } = c.req.valid("param");
    return c.json(await setMemberRole(c.var.deps, c.var.viewer, id, userId, c.req.valid("json").role), 200);
  })
  .openapi(acceptRoute, async (c) => {
    await acceptConversation(c.var.deps, c.var.viewer, c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(declineRoute, async (c) => {
    await declineConversation(c.var.deps, c.var.viewer, c.req.valid("param").id, afterResponse());
    return c.body(null, 204);
  })
  .openapi(sendRoute, async (c) => {
    const { message, created } = await sendMessage(
      c.var.deps,
      c.var.viewer,
      c.req.valid("param").id,
      c.req.valid("json"),
      afterResponse(),
    );
    return created ? c.json(message, 201) : c.json(message, 200);
  })
  .openapi(historyRoute, async (c) =>
    c.json(await listMessages(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("query")), 200),
  )
  .openapi(editRoute, async (c) =>
    c.json(
      await editMessage(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("json").text, afterResponse()),
      200,
    ),
  )
  .openapi(deleteRoute, async (c) => {
    await deleteMessage(c.var.deps, c.var.viewer, c.req.valid("param").id, afterResponse());
    return c.body(null, 204);
  })
  .openapi(readRoute, async (c) => {
    await markRead(c.var.deps, c.var.viewer, c.req.valid("param").id, c.req.valid("json"), afterResponse());
    return c.body(null, 204);
  })
  .openapi(receiptsRoute, async (c) =>
    c.json(await getReceipts(c.var.deps, c.var.viewer, c.req.valid("param").id), 200),
  )
  .openapi(ticketRoute, async (c) => {
    const { deps } = c.var;
    const claims = await verifyAccessToken(
      bearerToken(c.req.header("authorization")) ?? "",
      tokenSettingsOf(deps.config.auth),
    );
    if (!claims) throw ApiError.unauthorized();
    const expiresAt = (claims.iat + deps.config.auth.accessTokenTtlSeconds) * 1000;
    return c.json(await issueSocketTicket(deps, c.var.viewer, c.req.valid("param").id, expiresAt), 201);
  })
  .openapi(socketRoute, async (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw ApiError.invalidField("upgrade", "open this URL as a WebSocket (Upgrade: websocket)");
    }
    const upgraded = await openSocket(c.var.deps, c.req.valid("param").id, c.req.valid("query").ticket, c.req.raw);
    // A fresh response (the room's has immutable headers), keeping the socket.
    return new Response(null, { status: upgraded.status, headers: upgraded.headers, webSocket: upgraded.webSocket });
  })
  .openapi(settingsRoute, async (c) => c.json(await getMessagingSettings(c.var.deps, c.var.viewer), 200))
  .openapi(updateSettingsRoute, async (c) =>
    c.json(await updateMessagingSettings(c.var.deps, c.var.viewer, c.req.valid("json")), 200),
  );
