import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { MessageDoc, MessageMediaDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { DuplicateKeyError, expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import { encodeCursor, paginate } from "../../platform/mongo/paginate";
import { ownGeneratedImages } from "../generations/images";
import { requireReadyMedia } from "../media/service";
import { relationsFor } from "../relations/service";
import { newMessage, onMessageSent } from "./documents";
import { afterMessage, fanOut, type Later } from "./events";
import { canManage, isVisibleTo, visibleTo } from "./rules";
import type { Message, MessagePage, MessagesQuery, SendMessageBody } from "./schema";
import {
  type Access,
  accessConversation,
  accessFrom,
  forgetConversation,
  loadConversation,
  readerOf,
  refreshConversation,
} from "./state";
import { admitToStreamChat } from "./stream-chat";
import { messageFor } from "./views";

/**
 * Messages: send (exactly once per client message id), history and catch-up in both directions, edits within
 * MESSAGE_EDIT_WINDOW_SECONDS, deletion for everyone. Every read applies the reader's view (rules.ts): their
 * visibleFrom, blocks, and disappearing messages' expiry for them at this moment.
 */

export interface SendOptions {
  /** A reply to this story (stories feature). */
  storyId?: ObjectId;
}

/**
 * Stores a message and then fans it out. Waits (text, conversation cached): 1 Redis (the cached state; the
 * relations come with the rate limit) + 1 MongoDB (one transaction: the guard that the sender is still a member
 * at the version read, the conversation's inbox fields, the message). A retry with the same clientMessageId
 * finds the first message (200); with another body it is a 422.
 */
export async function sendMessage(
  deps: Deps,
  viewer: Viewer,
  conversationId: string,
  body: SendMessageBody,
  later: Later,
  options: SendOptions = {},
): Promise<{ message: Message; created: boolean }> {
  const content = checkedContent(deps, body);
  const [access, found] = await Promise.all([
    accessConversation(deps, viewer, conversationId),
    // An error is held until the conversation's own checks have spoken (see below).
    content.generationId
      ? generationMedia(deps, viewer, content.generationId).catch((e: unknown) => e)
      : content.mediaId
        ? uploadedMedia(deps, viewer, content.mediaId).catch((e: unknown) => e)
        : null,
  ]);
  // What the conversation allows decides before what the image is (a live chat takes text only).
  if (access.state.stream && body.kind !== "text")
    throw ApiError.invalidField("kind", "a live chat takes text messages");
  if (found instanceof Error) throw found;
  const media = found as MessageMediaDoc | null;
  let current = access;
  for (let attempt = 1; ; attempt++) {
    const doc = draft(deps, current, body, content.text, media, options);
    const giveTurnBack = current.state.stream ? await streamChatTurn(deps, current, doc) : null;
    if (giveTurnBack && "message" in giveTurnBack) return { message: giveTurnBack.message, created: false };
    try {
      await deps.db.batch(
        [
          expectMatch(
            deps.db.conversations.inBatch.updateOne(
              current.state.stream
                ? // A stream's audience are not members: the version (moved by mutes and the close) is the guard.
                  { _id: doc.conversationId, version: current.state.version }
                : { _id: doc.conversationId, version: current.state.version, "members.userId": doc.senderId },
              current.state.stream
                ? { $set: { lastMessageAt: doc.createdAt, updatedAt: doc.createdAt } }
                : onMessageSent(doc.senderId, doc._id, doc.createdAt),
            ),
          ),
          deps.db.messages.inBatch.insertOne(doc),
        ],
        { transaction: true },
      );
      later(() =>
        afterMessage(deps, current.state, { id: viewer.id, relations: current.relations }, [doc], { notify: true }),
      );
      return { message: messageFor(doc, doc.senderId), created: true };
    } catch (error) {
      // Nothing was stored: the slow-mode turn is not spent.
      if (giveTurnBack) await giveTurnBack.release();
      if (error instanceof DuplicateKeyError) return { message: await retried(deps, current, doc), created: false };
      if (!(error instanceof PreconditionFailedError) || attempt >= 3) throw error;
      // The conversation changed since the cached state was read (membership, timer): decide again on the current one.
      await forgetConversation(deps, conversationId);
      current = accessFrom(await refreshConversation(deps, conversationId, null), viewer, current.relations);
    }
  }
}

/**
 * A send in a stream's chat: while open, not muted, and within slow mode. A retry of a message that
 * was stored (same clientMessageId) gets it back rather than a slow-mode refusal.
 */
async function streamChatTurn(
  deps: Deps,
  access: Access,
  attempt: MessageDoc,
): Promise<{ release: () => Promise<void> } | { message: Message }> {
  try {
    return { release: await admitToStreamChat(deps, access) };
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== "rate_limited") throw error;
    const first = await deps.db.messages.findOne({
      conversationId: attempt.conversationId,
      senderId: attempt.senderId,
      clientMessageId: attempt.clientMessageId,
    });
    if (!first) throw error;
    return { message: await retried(deps, access, attempt) };
  }
}

interface Content {
  text: string | null;
  generationId: string | null;
  mediaId: string | null;
}

/** The message's content as sent, or a 400 naming the field that is wrong (checked before anything is read). */
export function checkedContent(deps: Deps, body: SendMessageBody): Content {
  const text = body.text?.trim() ? body.text : null;
  const max = deps.config.messaging.maxTextLength;
  if (text && text.length > max) throw ApiError.invalidField("text", `at most ${max} characters`);
  if (body.kind === "text") {
    if (!text) throw ApiError.invalidField("text", "a text message needs text");
    if (body.generationId || body.mediaId) throw ApiError.invalidField("kind", "an image needs kind: image");
    return { text, generationId: null, mediaId: null };
  }
  if (body.mediaId && body.generationId)
    throw ApiError.invalidField("mediaId", "send mediaId or generationId, not both");
  if (body.mediaId) return { text, generationId: null, mediaId: body.mediaId };
  if (!body.generationId) {
    throw ApiError.invalidField("generationId", "an image message needs generationId or mediaId");
  }
  return { text, generationId: body.generationId, mediaId: null };
}

/** One of the sender's ready `message` uploads (an image; the bytes proved it), or a 400 naming mediaId. */
async function uploadedMedia(deps: Deps, viewer: Viewer, mediaId: string): Promise<MessageMediaDoc> {
  const media = await requireReadyMedia(deps, viewer.id, mediaId, ["message"], "mediaId");
  return {
    source: "upload",
    mediaId: media._id,
    url: media.url ?? "",
    thumbnailUrl: null,
    width: media.width,
    height: media.height,
    blurhash: null,
  };
}

/** The sender's own completed generation, copied into the message (generations expire; messages keep it). */
async function generationMedia(deps: Deps, viewer: Viewer, generationId: string): Promise<MessageMediaDoc> {
  const image = (await ownGeneratedImages(deps, viewer.id, [generationId])).get(generationId);
  if (!image) throw ApiError.notFound("No such generation.");
  return { source: "generation", ...image };
}

/** The message as it will be stored, with the timer in force at the state read (the guard makes it exact). */
function draft(
  deps: Deps,
  access: Access,
  body: SendMessageBody,
  text: string | null,
  media: MessageMediaDoc | null,
  options: SendOptions,
): MessageDoc {
  const sender = new ObjectId(access.me.userId);
  return newMessage({
    _id: newObjectId(),
    conversationId: new ObjectId(access.state.id),
    senderId: sender,
    kind: body.kind,
    text,
    media,
    clientMessageId: body.clientMessageId,
    storyId: options.storyId ?? null,
    timerSeconds: access.state.disappearingSeconds,
    recipientIds: access.state.members.filter((m) => m.userId !== access.me.userId).map((m) => new ObjectId(m.userId)),
    now: deps.clock.now(),
  });
}

/** The first message sent with this client message id: the same again (200), another body a 422. */
async function retried(deps: Deps, access: Access, attempt: MessageDoc): Promise<Message> {
  const first = await deps.db.messages.findOne({
    conversationId: attempt.conversationId,
    senderId: attempt.senderId,
    clientMessageId: attempt.clientMessageId,
  });
  if (!first) throw ApiError.conflict("client_message_id_used", "That clientMessageId is taken; use a new one.");
  const sameBody =
    first.kind === attempt.kind &&
    (first.text ?? null) === (attempt.text ?? null) &&
    mediaSource(first) === mediaSource(attempt) &&
    (first.storyId?.toHexString() ?? null) === (attempt.storyId?.toHexString() ?? null);
  if (!sameBody && !first.deletedAt) {
    throw new ApiError("idempotency_mismatch", "That clientMessageId was already used for a different message.");
  }
  if (!isVisibleTo(first, readerOf(access), deps.clock.now())) {
    throw ApiError.conflict("client_message_id_used", "That clientMessageId was used for a message that is gone.");
  }
  return messageFor(first, attempt.senderId);
}

function mediaSource(doc: MessageDoc): string | null {
  if (!doc.media) return null;
  return doc.media.source === "generation" ? `g:${doc.media.generationId}` : `u:${doc.media.mediaId}`;
}

/**
 * History (`before`, newest first: the default) and catch-up (`after`, oldest first), keyset on the message id;
 * `nextCursor` is the id to pass in the same parameter for the next page. Never an expired message, nothing
 * from before the reader joined, nothing from people they are blocked with. Waits: 1 Redis + 1 MongoDB.
 */
export async function listMessages(
  deps: Deps,
  viewer: Viewer,
  conversationId: string,
  query: MessagesQuery,
): Promise<MessagePage> {
  if (query.before && query.after) throw ApiError.invalidField("before", "use before or after, not both");
  const access = await accessConversation(deps, viewer, conversationId);
  const waitMs = waitFor(deps, query);
  // Listening starts before the first read, so a message stored in between is not missed.
  const wait = waitMs > 0 ? deps.realtime.waitForEvent(conversationId, waitMs) : null;
  try {
    if (wait) await wait.ready;
    const page = await pageOf(deps, access, query);
    if (!wait || page.items.length > 0) return page;
    return (await wait.event) ? pageOf(deps, access, query) : page;
  } finally {
    wait?.cancel();
  }
}

function waitFor(deps: Deps, query: MessagesQuery): number {
  if (!query.after || !query.waitSeconds || deps.realtime.kind !== "upstash") return 0;
  return Math.min(query.waitSeconds, deps.config.messaging.longPollMaxSeconds) * 1000;
}

async function pageOf(deps: Deps, access: Access, query: MessagesQuery): Promise<MessagePage> {
  const reader = readerOf(access);
  const direction = query.after ? "asc" : "desc";
  const from = query.after ?? query.before;
  const page = await paginate(deps.db.messages, {
    filter: { conversationId: new ObjectId(access.state.id), ...visibleTo(reader, deps.clock.now()) },
    order: { direction },
    limit: query.limit,
    cursor: from ? encodeCursor({ id: new ObjectId(from) }) : undefined,
  });
  const last = page.items.at(-1);
  return {
    items: page.items.map((doc) => messageFor(doc, reader.id)),
    nextCursor: page.nextCursor && last ? last._id.toHexString() : null,
  };
}

/** A message the caller can see, with their access to its conversation (404 otherwise). */
async function visibleMessage(
  deps: Deps,
  viewer: Viewer,
  messageId: string,
): Promise<{ doc: MessageDoc; access: Access }> {
  const [doc, relations] = await Promise.all([
    deps.db.messages.findOne({ _id: new ObjectId(messageId) }),
    relationsFor(deps, viewer),
  ]);
  if (!doc) throw ApiError.notFound("No such message.");
  const access = accessFrom(await loadConversation(deps, doc.conversationId.toHexString()), viewer, relations);
  if (!isVisibleTo(doc, readerOf(access), deps.clock.now())) throw ApiError.notFound("No such message.");
  return { doc, access };
}

/** The sender edits a text message within MESSAGE_EDIT_WINDOW_SECONDS; members see `message_edited`. */
export async function editMessage(
  deps: Deps,
  viewer: Viewer,
  messageId: string,
  text: string,
  later: Later,
): Promise<Message> {
  const { doc, access } = await visibleMessage(deps, viewer, messageId);
  if (!doc.senderId.equals(new ObjectId(viewer.id))) throw ApiError.forbidden("Only the sender can edit a message.");
  if (doc.kind !== "text") throw ApiError.conflict("not_editable", "Only text messages can be edited.");
  if (access.state.stream) throw ApiError.conflict("not_editable", "Live chat messages cannot be edited.");
  if (doc.deletedAt) throw ApiError.conflict("message_deleted", "The message was deleted.");
  const max = deps.config.messaging.maxTextLength;
  if (!text.trim()) throw ApiError.invalidField("text", "must not be empty");
  if (text.length > max) throw ApiError.invalidField("text", `at most ${max} characters`);
  const now = deps.clock.now();
  const windowStart = new Date(now.getTime() - deps.config.messaging.editWindowSeconds * 1000);
  if (doc.createdAt < windowStart) throw ApiError.conflict("edit_window_closed", "The message is too old to edit.");
  let edited: MessageDoc | null;
  try {
    [, edited] = await deps.db.batch([
      // Still a member (the cached state may be older than a removal).
      expectMatch(
        deps.db.conversations.inBatch.findOne(
          { _id: doc.conversationId, "members.userId": doc.senderId },
          { projection: { _id: 1 } },
        ),
      ),
      expectMatch(
        deps.db.messages.inBatch.findOneAndUpdate(
          { _id: doc._id, senderId: doc.senderId, deletedAt: null, createdAt: { $gte: windowStart } },
          { $set: { text, editedAt: now } },
          { returnDocument: "after" },
        ),
      ),
    ]);
  } catch (error) {
    if (!(error instanceof PreconditionFailedError)) throw error;
    if (error.failedIndex === 0) throw ApiError.notFound("No such message.");
    throw ApiError.conflict("message_changed", "The message was deleted or is too old to edit now.");
  }
  const after = edited as MessageDoc;
  later(() =>
    fanOut(
      deps,
      access.state,
      { id: viewer.id, relations: access.relations },
      {
        type: "message_edited",
        message: { id: messageId, conversationId: access.state.id, text: after.text, editedAt: now.toISOString() },
      },
    ),
  );
  return messageFor(after, after.senderId);
}

/**
 * Deletes a message for everyone (the sender; in a group also its owner and admins): text and media go, a
 * placeholder stays (a disappearing one is purged at once). Idempotent; members see `message_deleted`.
 */
export async function deleteMessage(deps: Deps, viewer: Viewer, messageId: string, later: Later): Promise<void> {
  const { doc, access } = await visibleMessage(deps, viewer, messageId);
  const own = doc.senderId.equals(new ObjectId(viewer.id));
  const staff = access.state.members.some((m) => m.userId === viewer.id) && canManage(access.me.role);
  const moderating = access.state.kind !== "direct" && staff;
  if (!own && !moderating) {
    throw ApiError.forbidden("Only the sender (or a group's or a live chat's owner and admins) can delete it.");
  }
  if (doc.kind === "system") throw ApiError.conflict("not_deletable", "Notes about the conversation stay.");
  if (doc.deletedAt) return;
  const now = deps.clock.now();
  try {
    await deps.db.batch([
      expectMatch(
        deps.db.conversations.inBatch.findOne(
          {
            _id: doc.conversationId,
            // A stream's audience may delete their own messages without being members.
            ...(own && access.state.stream
              ? {}
              : {
                  members: own
                    ? { $elemMatch: { userId: new ObjectId(viewer.id) } }
                    : { $elemMatch: { userId: new ObjectId(viewer.id), role: { $in: ["owner", "admin"] } } },
                }),
          },
          { projection: { _id: 1 } },
        ),
      ),
      deps.db.messages.inBatch.updateOne(
        { _id: doc._id, deletedAt: null },
        { $set: { deletedAt: now, text: null, media: null, ...(doc.timerSeconds > 0 ? { purgeAt: now } : {}) } },
      ),
    ]);
  } catch (error) {
    if (error instanceof PreconditionFailedError) throw ApiError.notFound("No such message.");
    throw error;
  }
  later(() =>
    fanOut(
      deps,
      access.state,
      { id: viewer.id, relations: access.relations },
      {
        type: "message_deleted",
        message: { id: messageId, conversationId: access.state.id, deletedAt: now.toISOString() },
      },
    ),
  );
}
