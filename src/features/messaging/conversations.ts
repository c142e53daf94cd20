import { ApiError } from "../../core/errors";
import type { Relations } from "../../core/relations";
import type { Viewer } from "../../core/viewer";
import type { ConversationDoc, ConversationMemberDoc, MemberRole, MessageDoc, SystemNoteDoc, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { expectMatch, type Filter, PreconditionFailedError, type Update } from "../../platform/mongo/client";
import { paginate } from "../../platform/mongo/paginate";
import { relationsFor } from "../relations/service";
import { newMember, onCopiesRead, onMember, onMemberGone, systemMessage } from "./documents";
import { afterMessage, type Later } from "./events";
import { canManage, canRemove, directKeyOf, nextOwner } from "./rules";
import type {
  Conversation,
  ConversationPage,
  ConversationsQuery,
  CreateConversationBody,
  MessagingSettings,
  UnreadCount,
  UpdateConversationBody,
} from "./schema";
import {
  type Access,
  accessConversation,
  accessFrom,
  type ConversationState,
  forgetConversation,
  memberOf,
  memberStateOf,
  refreshConversation,
  stateOf,
} from "./state";
import { refuseStreamChat } from "./stream-chat";
import { conversationViews, unreadLookup } from "./views";

/**
 * Conversations: direct (one per pair of people) and groups (owner, admins, members; up to
 * MESSAGING_MAX_MEMBERS). A first message from someone the recipient does not follow lands in their requests
 * inbox until they accept (or reply) or decline. Blocks apply: people blocked with each other cannot start,
 * see or use a direct conversation (404), nor add each other to a group.
 */

const noSuchUser = () => ApiError.notFound("No such user.");

type Person = Pick<UserDoc, "_id" | "messaging">;

/** Read receipts are on unless the user turned them off. */
const receiptsOf = (person: Person | undefined) => person?.messaging?.readReceipts !== false;

export async function createConversation(
  deps: Deps,
  viewer: Viewer,
  body: CreateConversationBody,
): Promise<{ conversation: Conversation; created: boolean }> {
  const others = [...new Set(body.memberIds)];
  if (others.includes(viewer.id)) throw ApiError.invalidField("memberIds", "list the other people, not yourself");
  const kind = body.kind ?? (others.length === 1 && body.title === undefined ? "direct" : "group");
  if (kind === "direct" && others.length !== 1) {
    throw ApiError.invalidField("memberIds", "a direct conversation has exactly one other person");
  }
  if (kind === "direct" && body.title !== undefined) {
    throw ApiError.invalidField("title", "a direct conversation has no title (make it a group)");
  }
  if (others.length + 1 > deps.config.messaging.maxMembers) {
    throw ApiError.invalidField("memberIds", `a conversation has at most ${deps.config.messaging.maxMembers} members`);
  }
  const { doc, created, relations } = await openConversation(deps, viewer, kind, others, body.title ?? null);
  return { conversation: await viewOf(deps, viewer.id, doc, relations), created };
}

/** The direct conversation between the viewer and `otherId`, started if they have none (404 when blocked). */
export async function directConversationWith(deps: Deps, viewer: Viewer, otherId: string): Promise<string> {
  return (await openConversation(deps, viewer, "direct", [otherId], null)).doc._id.toHexString();
}

/**
 * Starts a conversation (or finds the direct one the two already have). Waits: 1 MongoDB read (the people, who
 * follows the creator, an existing direct conversation, in parallel) + 1 write (a group's document and its
 * "created" note in one transaction); two people starting the same direct conversation at once make one.
 */
async function openConversation(
  deps: Deps,
  viewer: Viewer,
  kind: ConversationDoc["kind"],
  others: string[],
  title: string | null,
): Promise<{ doc: ConversationDoc; created: boolean; relations: Relations }> {
  const me = new ObjectId(viewer.id);
  const ids = others.map((id) => new ObjectId(id));
  const directKey = kind === "direct" ? directKeyOf(viewer.id, others[0] as string) : null;
  const [people, followers, relations, existing] = await Promise.all([
    deps.db.users.find(
      { _id: { $in: [me, ...ids] }, deletedAt: null },
      { projection: { messaging: 1 }, limit: ids.length + 1 },
    ),
    // Who follows the creator: for them it is no request.
    deps.db.follows.find(
      { followerId: { $in: ids }, followingId: me },
      { projection: { followerId: 1 }, limit: ids.length },
    ),
    relationsFor(deps, viewer),
    directKey ? deps.db.conversations.findOne({ directKey }) : Promise.resolve(null),
  ]);
  const byId = new Map((people as Person[]).map((p) => [p._id.toHexString(), p]));
  if (others.some((id) => !byId.has(id) || relations.blockedWith(id))) throw noSuchUser();
  if (existing) return { doc: existing, created: false, relations };

  const now = deps.clock.now();
  const createdNote = newObjectId();
  const following = new Set(followers.map((f) => f.followerId.toHexString()));
  const doc: ConversationDoc = {
    _id: newObjectId(),
    kind,
    directKey,
    title,
    createdBy: me,
    members: [
      newMember({
        userId: me,
        role: kind === "group" ? "owner" : "member",
        addedBy: null,
        accepted: true,
        receipts: receiptsOf(byId.get(viewer.id)),
        visibleFrom: createdNote,
        now,
      }),
      ...ids.map((id) =>
        newMember({
          userId: id,
          role: "member",
          addedBy: me,
          accepted: following.has(id.toHexString()),
          receipts: receiptsOf(byId.get(id.toHexString())),
          visibleFrom: createdNote,
          now,
        }),
      ),
    ],
    disappearingSeconds: 0,
    version: 1,
    // A group opens with its "created" note; a direct conversation shows in inboxes from its first message.
    lastMessageAt: kind === "group" ? now : null,
    createdAt: now,
    updatedAt: now,
  };
  if (kind === "direct") {
    if (!(await deps.db.conversations.insertUnique(doc))) {
      // Both people started it at once: the other request's conversation is the one.
      const winner = await deps.db.conversations.findOne({ directKey });
      if (!winner) throw new Error("direct conversation vanished after a duplicate key");
      return { doc: winner, created: false, relations };
    }
    return { doc, created: true, relations };
  }
  const note = systemMessage(doc._id, me, { event: "created", userIds: ids, title }, now, createdNote);
  await deps.db.batch([deps.db.conversations.inBatch.insertOne(doc), deps.db.messages.inBatch.insertOne(note)], {
    transaction: true,
  });
  return { doc, created: true, relations };
}

async function viewOf(deps: Deps, viewerId: string, doc: ConversationDoc, relations: Relations): Promise<Conversation> {
  const [view] = await conversationViews(deps, viewerId, [doc], relations);
  if (!view) throw new Error("no view of a conversation");
  return view;
}

/** Direct conversations with people the viewer is blocked with, which no list or count shows. */
function blockedDirectKeys(viewerId: string, relations: Relations): string[] {
  return relations.blockedIds().map((id) => directKeyOf(viewerId, id));
}

/** The viewer's inbox (primary or requests), newest message first; 2 MongoDB waits (the page, then its views). */
export async function listConversations(
  deps: Deps,
  viewer: Viewer,
  query: ConversationsQuery,
): Promise<ConversationPage> {
  const relations = await relationsFor(deps, viewer);
  const blockedKeys = blockedDirectKeys(viewer.id, relations);
  const filter: Filter = {
    members: { $elemMatch: { userId: new ObjectId(viewer.id), accepted: query.inbox === "primary", hidden: false } },
    lastMessageAt: { $type: "date" },
    // Live streams' chats are reached from their streams, not the inbox.
    kind: { $ne: "stream" },
    ...(blockedKeys.length > 0 ? { directKey: { $nin: blockedKeys } } : {}),
  };
  const page = await paginate(deps.db.conversations, {
    filter,
    order: { field: "lastMessageAt", kind: "date", direction: "desc" },
    limit: query.limit,
    cursor: query.cursor,
  });
  return { items: await conversationViews(deps, viewer.id, page.items, relations), nextCursor: page.nextCursor };
}

/** One conversation as the viewer sees it (members only; blocked direct conversations are 404). */
export async function getConversation(deps: Deps, viewer: Viewer, conversationId: string): Promise<Conversation> {
  const [doc, relations] = await Promise.all([
    deps.db.conversations.findOne({ _id: new ObjectId(conversationId) }),
    relationsFor(deps, viewer),
  ]);
  accessFrom(doc ? stateOf(doc) : null, viewer, relations);
  return viewOf(deps, viewer.id, doc as ConversationDoc, relations);
}

async function readBack(deps: Deps, viewer: Viewer, access: Access): Promise<Conversation> {
  const doc = await deps.db.conversations.findOne({ _id: new ObjectId(access.state.id) });
  if (!doc) throw ApiError.notFound("No such conversation.");
  return viewOf(deps, viewer.id, doc, access.relations);
}

/**
 * A change to the conversation document guarded by the version it was decided on: when the conversation
 * changed in between (another member's change), the state is read again and the change decided once more.
 */
async function withCurrentState<T>(
  deps: Deps,
  viewer: Viewer,
  conversationId: string,
  change: (access: Access) => Promise<T>,
): Promise<T> {
  let access = await accessConversation(deps, viewer, conversationId);
  for (let attempt = 1; ; attempt++) {
    try {
      return await change(access);
    } catch (error) {
      if (!(error instanceof PreconditionFailedError) || attempt >= 3) {
        if (error instanceof PreconditionFailedError) {
          throw ApiError.conflict("conversation_changed", "The conversation changed meanwhile; try again.");
        }
        throw error;
      }
      await forgetConversation(deps, conversationId);
      access = accessFrom(await refreshConversation(deps, conversationId, null), viewer, access.relations);
    }
  }
}

/** The guard every membership, title and timer change carries: the conversation is still at this version. */
function atVersion(deps: Deps, state: ConversationState, update: Update) {
  return expectMatch(
    deps.db.conversations.inBatch.updateOne({ _id: new ObjectId(state.id), version: state.version }, update),
  );
}

/** PATCH: a group's title (owner/admin), the disappearing timer (direct: either person; group: owner/admin). */
export async function updateConversation(
  deps: Deps,
  viewer: Viewer,
  conversationId: string,
  body: UpdateConversationBody,
  later: Later,
): Promise<Conversation> {
  return withCurrentState(deps, viewer, conversationId, async (access) => {
    refuseStreamChat(access);
    const { state, me } = access;
    if (body.title !== undefined && state.kind === "direct") {
      throw ApiError.invalidField("title", "a direct conversation has no title");
    }
    if (state.kind === "group" && !canManage(me.role)) {
      throw ApiError.forbidden("Only the group's owner and admins can change it.");
    }
    const now = deps.clock.now();
    const actor = new ObjectId(me.userId);
    const conversation = new ObjectId(state.id);
    const set: Record<string, unknown> = {};
    const notes: MessageDoc[] = [];
    if (body.title !== undefined && body.title !== state.title) {
      set.title = body.title;
      notes.push(systemMessage(conversation, actor, { event: "title_changed", userIds: [], title: body.title }, now));
    }
    if (body.disappearingSeconds !== undefined && body.disappearingSeconds !== state.disappearingSeconds) {
      set.disappearingSeconds = body.disappearingSeconds;
      const note: SystemNoteDoc = {
        event: "timer_changed",
        userIds: [],
        disappearingSeconds: body.disappearingSeconds,
      };
      notes.push(systemMessage(conversation, actor, note, now));
    }
    if (notes.length === 0) return readBack(deps, viewer, access);
    await deps.db.batch(
      [
        atVersion(deps, state, { $set: { ...set, updatedAt: now, lastMessageAt: now }, $inc: { version: 1 } }),
        deps.db.messages.inBatch.insertMany(notes),
      ],
      { transaction: true },
    );
    await forgetConversation(deps, state.id);
    const after = { ...state, ...set, version: state.version + 1 } as ConversationState;
    later(() => afterMessage(deps, after, { id: viewer.id, relations: access.relations }, notes, { notify: false }));
    return readBack(deps, viewer, access);
  });
}

/** Adds people to a group (owner/admin). Those who do not follow the adder get it as a request. */
export async function addMembers(
  deps: Deps,
  viewer: Viewer,
  conversationId: string,
  userIds: string[],
  later: Later,
): Promise<Conversation> {
  return withCurrentState(deps, viewer, conversationId, async (access) => {
    refuseStreamChat(access);
    const { state, me, relations } = access;
    if (state.kind === "direct") {
      throw ApiError.conflict("direct_conversation", "A direct conversation has two people; start a group instead.");
    }
    if (!canManage(me.role)) throw ApiError.forbidden("Only the group's owner and admins can add members.");
    const adding = [...new Set(userIds)].filter((id) => !memberOf(state, id));
    if (adding.length === 0) return readBack(deps, viewer, access);
    if (state.members.length + adding.length > deps.config.messaging.maxMembers) {
      throw ApiError.conflict(
        "member_limit",
        `A conversation has at most ${deps.config.messaging.maxMembers} members.`,
      );
    }
    const actor = new ObjectId(viewer.id);
    const ids = adding.map((id) => new ObjectId(id));
    const [people, followers] = await Promise.all([
      deps.db.users.find({ _id: { $in: ids }, deletedAt: null }, { projection: { messaging: 1 }, limit: ids.length }),
      deps.db.follows.find(
        { followerId: { $in: ids }, followingId: actor },
        { projection: { followerId: 1 }, limit: ids.length },
      ),
    ]);
    const byId = new Map((people as Person[]).map((p) => [p._id.toHexString(), p]));
    if (adding.some((id) => !byId.has(id) || relations.blockedWith(id))) throw noSuchUser();
    const following = new Set(followers.map((f) => f.followerId.toHexString()));
    const now = deps.clock.now();
    const noteId = newObjectId();
    // The new members see the conversation from the note that says they were added.
    const entries: ConversationMemberDoc[] = ids.map((id) =>
      newMember({
        userId: id,
        role: "member",
        addedBy: actor,
        accepted: following.has(id.toHexString()),
        receipts: receiptsOf(byId.get(id.toHexString())),
        visibleFrom: noteId,
        now,
      }),
    );
    const note = systemMessage(new ObjectId(state.id), actor, { event: "members_added", userIds: ids }, now, noteId);
    await deps.db.batch(
      [
        atVersion(deps, state, {
          $push: { members: { $each: entries } },
          $set: { updatedAt: now, lastMessageAt: now },
          $inc: { version: 1 },
        }),
        deps.db.messages.inBatch.insertOne(note),
      ],
      { transaction: true },
    );
    await forgetConversation(deps, state.id);
    const after: ConversationState = {
      ...state,
      version: state.version + 1,
      members: [...state.members, ...entries.map(memberStateOf)],
    };
    later(() => afterMessage(deps, after, { id: viewer.id, relations }, [note], { notify: false }));
    return readBack(deps, viewer, access);
  });
}

/**
 * DELETE /members/{userId}: leave (yourself) or remove someone (group owner: anyone; admins: plain members).
 * When the owner leaves, the longest-standing admin (else member) takes over. The one who goes gets no more
 * events (their sockets close), and their unread copies of disappearing messages expire at once. In a direct
 * conversation "leaving" clears it for the caller: it leaves their inbox and its history until a new message.
 */
export async function removeMember(
  deps: Deps,
  viewer: Viewer,
  conversationId: string,
  userId: string,
  later: Later,
): Promise<void> {
  await withCurrentState(deps, viewer, conversationId, async (access) => {
    refuseStreamChat(access);
    const { state, me, relations } = access;
    if (state.kind === "direct") {
      if (userId !== viewer.id) throw ApiError.forbidden("Nobody can be removed from a direct conversation.");
      await clearForMe(deps, state, viewer.id, { accepted: me.accepted });
      return;
    }
    const target = memberOf(state, userId);
    if (!target) throw ApiError.notFound("No such member.");
    if (!canRemove({ id: viewer.id, role: me.role }, { id: target.userId, role: target.role })) {
      throw ApiError.forbidden("Admins remove members; only the owner removes admins.");
    }
    const now = deps.clock.now();
    const gone = new ObjectId(userId);
    const heir = target.role === "owner" ? nextOwner(state.members, userId) : undefined;
    const note = systemMessage(
      new ObjectId(state.id),
      new ObjectId(viewer.id),
      { event: userId === viewer.id ? "member_left" : "member_removed", userIds: [gone] },
      now,
    );
    await deps.db.batch(
      [
        atVersion(deps, state, onMemberGone(gone, heir ? new ObjectId(heir.userId) : null, now)),
        deps.db.messages.inBatch.insertOne(note),
        // Their copies of disappearing messages they had not read go now (they cannot read them any more).
        deps.db.messages.inBatch.updateMany(
          {
            conversationId: new ObjectId(state.id),
            timerSeconds: { $gt: 0 },
            recipientIds: gone,
            "reads.userId": { $ne: gone },
          },
          onCopiesRead(gone, now, true),
        ),
      ],
      { transaction: true },
    );
    await forgetConversation(deps, state.id);
    const after: ConversationState = {
      ...state,
      version: state.version + 1,
      members: state.members
        .filter((m) => m.userId !== userId)
        .map((m) => (heir && m.userId === heir.userId ? { ...m, role: "owner" as const } : m)),
    };
    later(() => afterMessage(deps, after, { id: viewer.id, relations }, [note], { notify: false }));
  });
}

/**
 * The owner makes a member an admin or a plain member again, or hands the group over (`owner`: they become an
 * admin). Anyone else → 403.
 */
export async function setMemberRole(
  deps: Deps,
  viewer: Viewer,
  conversationId: string,
  userId: string,
  role: MemberRole,
): Promise<Conversation> {
  return withCurrentState(deps, viewer, conversationId, async (access) => {
    refuseStreamChat(access);
    const { state, me } = access;
    if (state.kind === "direct") throw ApiError.conflict("direct_conversation", "A direct conversation has no roles.");
    if (me.role !== "owner") throw ApiError.forbidden("Only the group's owner changes roles.");
    const target = memberOf(state, userId);
    if (!target) throw ApiError.notFound("No such member.");
    if (userId === viewer.id)
      throw ApiError.invalidField("userId", "hand the group over by giving someone else `owner`");
    if (target.role === role) return readBack(deps, viewer, access);
    const changes: [string, MemberRole][] = [[userId, role]];
    if (role === "owner") changes.push([viewer.id, "admin"]);
    const now = deps.clock.now();
    const update: Update = [
      {
        $set: {
          members: {
            $map: {
              input: "$members",
              as: "m",
              in: changes.reduce<unknown>(
                (otherwise, [id, newRole]) => ({
                  $cond: [
                    { $eq: ["$$m.userId", { $literal: new ObjectId(id) }] },
                    { $mergeObjects: ["$$m", { role: newRole }] },
                    otherwise,
                  ],
                }),
                "$$m",
              ),
            },
          },
          version: { $add: ["$version", 1] },
          updatedAt: { $literal: now },
        },
      },
    ];
    await deps.db.batch([atVersion(deps, state, update)]);
    await forgetConversation(deps, state.id);
    return readBack(deps, viewer, access);
  });
}

/** A direct conversation leaves the member's inbox and its history up to now is gone for them. */
async function clearForMe(
  deps: Deps,
  state: ConversationState,
  userId: string,
  keep: { accepted: boolean },
): Promise<void> {
  await deps.db.batch([
    atVersion(
      deps,
      state,
      onMember(new ObjectId(userId), { hidden: true, visibleFrom: newObjectId(), accepted: keep.accepted }, true),
    ),
  ]);
  await forgetConversation(deps, state.id);
}

/** Accepts a message request: the conversation moves to the primary inbox and receipts start to show. */
export async function acceptConversation(deps: Deps, viewer: Viewer, conversationId: string): Promise<void> {
  const { state, me } = await accessConversation(deps, viewer, conversationId);
  if (me.accepted) return;
  await deps.db.conversations.updateOne(
    { _id: new ObjectId(state.id), "members.userId": new ObjectId(viewer.id) },
    onMember(new ObjectId(viewer.id), { accepted: true, hidden: false }),
  );
  await forgetConversation(deps, state.id);
}

/**
 * Declines a message request: a direct conversation leaves the requests inbox with its history (a later
 * message from the other person arrives as a new request; they are not told), a group is left.
 */
export async function declineConversation(
  deps: Deps,
  viewer: Viewer,
  conversationId: string,
  later: Later,
): Promise<void> {
  const access = await accessConversation(deps, viewer, conversationId);
  if (access.me.accepted) throw ApiError.conflict("not_a_request", "This conversation is not a message request.");
  if (access.state.kind === "group") return removeMember(deps, viewer, conversationId, viewer.id, later);
  await withCurrentState(deps, viewer, conversationId, ({ state }) =>
    clearForMe(deps, state, viewer.id, { accepted: false }),
  );
}

/**
 * Unread messages over all the viewer's conversations (primary inbox; requests apart): one aggregate, a
 * capped count per conversation after the viewer's read marker.
 */
export async function unreadTotal(deps: Deps, viewer: Viewer): Promise<UnreadCount> {
  const relations = await relationsFor(deps, viewer);
  const me = new ObjectId(viewer.id);
  const hidden = relations.blockedIds().map((id) => new ObjectId(id));
  const blockedKeys = blockedDirectKeys(viewer.id, relations);
  const rows = await deps.db.conversations.aggregate<{ _id: boolean; count: number; conversations: number }>([
    {
      $match: {
        members: { $elemMatch: { userId: me, hidden: false } },
        lastMessageAt: { $type: "date" },
        kind: { $ne: "stream" },
        ...(blockedKeys.length > 0 ? { directKey: { $nin: blockedKeys } } : {}),
      },
    },
    {
      $project: {
        mine: {
          $first: { $filter: { input: "$members", as: "m", cond: { $eq: ["$$m.userId", { $literal: me }] } } },
        },
      },
    },
    unreadLookup(deps, me, hidden),
    { $project: { accepted: "$mine.accepted", n: { $ifNull: [{ $first: "$unread.n" }, 0] } } },
    {
      $group: {
        _id: "$accepted",
        count: { $sum: "$n" },
        conversations: { $sum: { $cond: [{ $gt: ["$n", 0] }, 1, 0] } },
      },
    },
  ]);
  const primary = rows.find((r) => r._id === true);
  const requests = rows.find((r) => r._id === false);
  return {
    count: primary?.count ?? 0,
    conversations: primary?.conversations ?? 0,
    requests: requests?.conversations ?? 0,
  };
}

export async function getMessagingSettings(deps: Deps, viewer: Viewer): Promise<MessagingSettings> {
  const user = await deps.db.users.findOne(
    { _id: new ObjectId(viewer.id), deletedAt: null },
    { projection: { messaging: 1 } },
  );
  if (!user) throw ApiError.notFound("Account not found.");
  return { readReceipts: receiptsOf(user) };
}

/**
 * Turning read receipts off (or on) applies to every conversation at once: the setting and each member entry
 * in one batch. With receipts off, the caller's marker still moves (their unread count, their timers); others
 * see it stay where it was.
 */
export async function updateMessagingSettings(
  deps: Deps,
  viewer: Viewer,
  patch: Partial<MessagingSettings>,
): Promise<MessagingSettings> {
  const me = new ObjectId(viewer.id);
  if (patch.readReceipts === undefined) return getMessagingSettings(deps, viewer);
  const [updated] = await deps.db.batch([
    deps.db.users.inBatch.updateOne(
      { _id: me, deletedAt: null },
      { $set: { "messaging.readReceipts": patch.readReceipts, updatedAt: deps.clock.now() } },
    ),
    deps.db.conversations.inBatch.updateMany({ "members.userId": me }, onMember(me, { receipts: patch.readReceipts })),
  ]);
  if (updated.matchedCount === 0) throw ApiError.notFound("Account not found.");
  return { readReceipts: patch.readReceipts };
}
