import { ApiError } from "../../core/errors";
import type { Relations } from "../../core/relations";
import type { Viewer } from "../../core/viewer";
import type { ConversationDoc, ConversationKind, ConversationMemberDoc, MemberRole } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import {
  dropGuardedValue,
  fillGuardedValue,
  type GuardedValue,
  readGuardedValue,
  runOp,
} from "../../platform/redis-ops";
import { relationsFor } from "../relations/service";
import type { Reader } from "./rules";

/**
 * A conversation as requests need it to authorize and write: members, roles, timer and version, without the
 * read markers (which move with every read and are read from MongoDB where they matter). Cached in Redis as
 * `conversation:{id}` (CONVERSATION_CACHE_TTL_SECONDS) so that sending a message waits on one MongoDB call
 * only: the write itself, guarded by `version` (store.ts), so a stale copy can never let a removed member in
 * or snapshot an old timer — the guard refuses the write and the copy is refreshed. Every change of the
 * conversation drops the copy and moves its generation counter, so a rebuild racing a change is discarded.
 */
export interface MemberState {
  userId: string;
  role: MemberRole;
  joinedAt: number;
  visibleFrom: string;
  /** May lag behind MongoDB (a send accepts a request without moving the version): never used to authorize. */
  accepted: boolean;
}

export interface ConversationState {
  id: string;
  kind: ConversationKind;
  directKey: string | null;
  title: string | null;
  createdBy: string;
  createdAt: number;
  version: number;
  disappearingSeconds: number;
  members: MemberState[];
  /** A live stream's chat (kind `stream`): who hosts it, whether it is open, who is muted in it. */
  stream?: StreamChatState;
}

export interface StreamChatState {
  streamId: string;
  hostId: string;
  open: boolean;
  mutedIds: string[];
}

export function stateOf(doc: ConversationDoc): ConversationState {
  return {
    id: doc._id.toHexString(),
    kind: doc.kind,
    directKey: doc.directKey,
    title: doc.title,
    createdBy: doc.createdBy.toHexString(),
    createdAt: doc.createdAt.getTime(),
    version: doc.version,
    disappearingSeconds: doc.disappearingSeconds,
    members: doc.members.map(memberStateOf),
    ...(doc.stream
      ? {
          stream: {
            streamId: doc.stream.streamId.toHexString(),
            hostId: doc.stream.hostId.toHexString(),
            open: doc.stream.open,
            mutedIds: doc.stream.mutedIds.map((id) => id.toHexString()),
          },
        }
      : {}),
  };
}

export function memberStateOf(m: ConversationMemberDoc): MemberState {
  return {
    userId: m.userId.toHexString(),
    role: m.role,
    joinedAt: m.joinedAt.getTime(),
    visibleFrom: m.visibleFrom.toHexString(),
    accepted: m.accepted,
  };
}

export function memberOf(state: ConversationState, userId: string): MemberState | undefined {
  return state.members.find((m) => m.userId === userId);
}

export function memberIdsOf(state: ConversationState): string[] {
  return state.members.map((m) => m.userId);
}

/** The conversation's state: the cached copy, else MongoDB (and cached for the next request). */
export async function loadConversation(deps: Deps, conversationId: string): Promise<ConversationState | null> {
  const { keys } = deps;
  let cached: GuardedValue<ConversationState> | null = null;
  try {
    cached = await runOp(
      deps.redis,
      readGuardedValue<ConversationState>(
        keys.conversation(conversationId),
        keys.conversationGeneration(conversationId),
      ),
    );
  } catch (error) {
    // The copy is only a shortcut: without Redis, MongoDB answers (and nothing is cached).
    deps.log.warn("conversation cache unreadable", { error: String(error) });
  }
  if (cached?.value) return cached.value;
  return refreshConversation(deps, conversationId, cached?.generation ?? null);
}

/** Reads the conversation from MongoDB and caches it, unless it changed since `generation` (or Redis is down). */
export async function refreshConversation(
  deps: Deps,
  conversationId: string,
  generation: string | null,
): Promise<ConversationState | null> {
  const doc = await deps.db.conversations.findOne({ _id: new ObjectId(conversationId) });
  if (!doc) return null;
  const state = stateOf(doc);
  if (generation !== null) await cacheConversation(deps, state, generation);
  return state;
}

async function cacheConversation(deps: Deps, state: ConversationState, generation: string): Promise<void> {
  const { keys } = deps;
  try {
    await runOp(
      deps.redis,
      fillGuardedValue(
        keys.conversation(state.id),
        keys.conversationGeneration(state.id),
        generation,
        state,
        deps.config.messaging.conversationCacheTtlSeconds,
      ),
    );
  } catch (error) {
    deps.log.warn("conversation not cached", { error: String(error) });
  }
}

/**
 * After a change in MongoDB: drops the cached copy (and discards rebuilds in flight). Best effort: a copy that
 * survives a Redis failure is at most CONVERSATION_CACHE_TTL_SECONDS old, and writes never trust it (version).
 */
export async function forgetConversation(deps: Deps, conversationId: string): Promise<void> {
  const { keys } = deps;
  try {
    await runOp(
      deps.redis,
      dropGuardedValue(
        keys.conversation(conversationId),
        keys.conversationGeneration(conversationId),
        deps.config.messaging.conversationCacheTtlSeconds + 86_400,
      ),
    );
  } catch (error) {
    deps.log.warn("conversation cache not dropped", { conversationId, error: String(error) });
  }
}

/** What a member's request works with: the conversation, their own membership and their relations. */
export interface Access {
  state: ConversationState;
  me: MemberState;
  relations: Relations;
}

/**
 * The caller's access to a conversation: a member, and for a direct conversation not blocked with the other
 * person (either way). Anything else is the same 404 as a missing conversation.
 */
export async function accessConversation(deps: Deps, viewer: Viewer, conversationId: string): Promise<Access> {
  const [state, relations] = await Promise.all([loadConversation(deps, conversationId), relationsFor(deps, viewer)]);
  return accessFrom(state, viewer, relations);
}

export function accessFrom(state: ConversationState | null, viewer: Pick<Viewer, "id">, relations: Relations): Access {
  if (state?.stream) return streamChatAccess(state, state.stream, viewer, relations);
  const me = state ? memberOf(state, viewer.id) : undefined;
  if (!state || !me) throw ApiError.notFound("No such conversation.");
  if (state.kind === "direct" && state.members.some((m) => m.userId !== viewer.id && relations.blockedWith(m.userId))) {
    throw ApiError.notFound("No such conversation.");
  }
  return { state, me, relations };
}

/** Every message of a stream's chat is there for its whole audience (no one joins part-way through). */
const FROM_THE_START = "000000000000000000000000";

/**
 * A stream's chat is open to its audience: anyone not blocked with the streamer reads it (staff are members,
 * everyone else reads as a plain member who joined at the start). Who may write is decided at send time.
 */
function streamChatAccess(
  state: ConversationState,
  stream: StreamChatState,
  viewer: Pick<Viewer, "id">,
  relations: Relations,
): Access {
  if (viewer.id !== stream.hostId && relations.blockedWith(stream.hostId)) {
    throw ApiError.notFound("No such conversation.");
  }
  const me = memberOf(state, viewer.id) ?? {
    userId: viewer.id,
    role: "member" as const,
    joinedAt: state.createdAt,
    visibleFrom: FROM_THE_START,
    accepted: true,
  };
  return { state, me, relations };
}

/** The reader a member is for message queries: from their visibleFrom, without people they are blocked with. */
export function readerOf(access: Access): Reader {
  return {
    id: new ObjectId(access.me.userId),
    visibleFrom: new ObjectId(access.me.visibleFrom),
    // Former members too: a blocked person's old messages stay hidden after they left.
    hiddenSenders: access.relations.blockedIds().map((id) => new ObjectId(id)),
  };
}
