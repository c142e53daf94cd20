import type { Viewer } from "../../core/viewer";
import {
  type ActionType,
  NOTICE_TYPES,
  type NoticeType,
  type NotificationDoc,
  type NotificationType,
  type UserDoc,
} from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import type { BulkOperation, Filter, Update } from "../../platform/mongo/client";
import { paginate } from "../../platform/mongo/paginate";
import { DAY_MS, HOUR_MS } from "../../platform/time";
import { relationsFor, relationsOfMany } from "../relations/service";
import { type PublicUser, toPublicUser } from "../users/schema";
import { decide, policyOf } from "./policy";
import {
  ACTOR_IDS_CAP,
  type Notification,
  type NotificationPage,
  type NotificationsQuery,
  SAMPLE_ACTORS,
} from "./schema";

type Id = ObjectId | string;

/** What other services report after their write; `notify` turns it into (grouped) notifications. */
export type NotificationEvent =
  | { type: "vote"; recipientId: Id; actorId: Id; postId: Id; imageUrl?: string | null }
  | { type: "follow"; recipientId: Id; actorId: Id }
  | {
      type: "comment";
      actorId: Id;
      postId: Id;
      postAuthorId: Id;
      commentId: Id;
      /** For a reply: the comment replied to and its author (who gets a `reply` notification). */
      parent?: { commentId: Id; authorId: Id } | null;
      imageUrl?: string | null;
    }
  | {
      /** A followed person went live: one notification per follower and stream ("ada is live"). */
      type: "live";
      actorId: Id;
      streamId: Id;
      title: string;
      imageUrl?: string | null;
      recipientIds: Id[];
    }
  | {
      /** New messages: one group per recipient and conversation ("ada and 2 others sent messages"). */
      type: "message";
      actorId: Id;
      conversationId: Id;
      recipientIds: Id[];
    }
  | Notice;

/**
 * A notice from the service itself (no actor): gems earned, trending, streaks, referrals, moderation. With an
 * `aggregationKey`, notices with the same key inside the window join one item (its count grows, it turns
 * unread again); without one, each notice is its own item.
 */
export interface Notice {
  type: "system";
  kind?: NoticeType;
  recipientId: Id;
  title: string;
  body?: string | null;
  aggregationKey?: string;
  actionType?: ActionType | null;
  actionPayload?: Record<string, string>;
}

/** One notification to upsert: who gets it and which group it joins. */
interface Target {
  recipient: ObjectId;
  type: NotificationType;
  aggregationKey: string;
  title: string | null;
  body: string | null;
  imageUrl: string | null;
  actionType: ActionType | null;
  actionPayload: Record<string, string>;
  /** A repeat by an actor already counted still turns the group unread and moves it up (a new message does). */
  repeatReopens?: boolean;
}

/** Listeners get the group as stored, without the (large) `actorIds` dedupe list. */
export type StoredNotification = Omit<NotificationDoc, "actorIds">;
export type NotificationListener = (notification: StoredNotification, deps: Deps) => Promise<void>;

const listeners: NotificationListener[] = [];

/**
 * The `onNotificationCreated` hook: listeners (push senders, …) run after a notification was stored or an
 * event joined its group, with the document as stored. A failing listener is logged, never raised.
 * Returns a function that removes the listener.
 */
export function registerNotificationListener(listener: NotificationListener): () => void {
  listeners.push(listener);
  return () => {
    const i = listeners.indexOf(listener);
    if (i >= 0) listeners.splice(i, 1);
  };
}

const oid = (id: Id) => (typeof id === "string" ? new ObjectId(id) : id);
const hex = (id: Id) => (typeof id === "string" ? id : id.toHexString());

function targetsOf(event: NotificationEvent): { actor: ObjectId | null; targets: Target[] } {
  const base = { title: null, body: null, imageUrl: null };
  switch (event.type) {
    case "vote":
      return {
        actor: oid(event.actorId),
        targets: [
          {
            ...base,
            recipient: oid(event.recipientId),
            type: "vote",
            aggregationKey: `vote:${hex(event.postId)}`,
            imageUrl: event.imageUrl ?? null,
            actionType: "open_post",
            actionPayload: { postId: hex(event.postId) },
          },
        ],
      };
    case "follow":
      return {
        actor: oid(event.actorId),
        targets: [
          {
            ...base,
            recipient: oid(event.recipientId),
            type: "follow",
            aggregationKey: `follow:${hex(event.recipientId)}`,
            actionType: "open_profile",
            actionPayload: { userId: hex(event.actorId) },
          },
        ],
      };
    case "comment": {
      const payload = { postId: hex(event.postId), commentId: hex(event.commentId) };
      const targets: Target[] = [];
      const parentAuthor = event.parent ? hex(event.parent.authorId) : null;
      if (event.parent) {
        targets.push({
          ...base,
          recipient: oid(event.parent.authorId),
          type: "reply",
          aggregationKey: `reply:${hex(event.parent.commentId)}`,
          imageUrl: event.imageUrl ?? null,
          actionType: "open_post",
          actionPayload: payload,
        });
      }
      // A post author replied to on their own post gets the reply only, not both.
      if (hex(event.postAuthorId) !== parentAuthor) {
        targets.push({
          ...base,
          recipient: oid(event.postAuthorId),
          type: "comment",
          aggregationKey: `comment:${hex(event.postId)}`,
          imageUrl: event.imageUrl ?? null,
          actionType: "open_post",
          actionPayload: payload,
        });
      }
      return { actor: oid(event.actorId), targets };
    }
    case "live":
      return {
        actor: oid(event.actorId),
        targets: event.recipientIds.map((recipientId) => ({
          ...base,
          recipient: oid(recipientId),
          type: "live",
          // One group per stream: the streamer is its only actor, so telling a follower twice changes nothing.
          aggregationKey: `live:${hex(event.streamId)}`,
          body: event.title,
          imageUrl: event.imageUrl ?? null,
          actionType: "open_screen",
          actionPayload: { screen: "stream", streamId: hex(event.streamId) },
        })),
      };
    case "message":
      return {
        actor: oid(event.actorId),
        targets: event.recipientIds.map((recipientId) => ({
          ...base,
          recipient: oid(recipientId),
          type: "message",
          aggregationKey: `message:${hex(event.conversationId)}`,
          actionType: "open_screen",
          actionPayload: { screen: "conversation", conversationId: hex(event.conversationId) },
          repeatReopens: true,
        })),
      };
    case "system": {
      const kind = event.kind ?? "system";
      return {
        actor: null,
        targets: [
          {
            recipient: oid(event.recipientId),
            type: kind,
            aggregationKey: event.aggregationKey ?? `${kind}:${newObjectId().toHexString()}`,
            title: event.title,
            body: event.body ?? null,
            imageUrl: null,
            actionType: event.actionType ?? null,
            actionPayload: event.actionPayload ?? {},
          },
        ],
      };
    }
  }
}

/**
 * Records an event as notifications. Never throws: a failure is logged and the caller's write stands.
 *
 * Round trips (MongoDB): 1 read (`users.find` for recipients and actor: preferences, policy, actor age),
 * plus 1 read (`follows.find`) only when a recipient's policy treats "not following" other than "accept",
 * plus 1 write: `findOneAndUpdate` for one recipient, one `bulkWrite` for several (reply + comment), plus
 * 1 read for the listeners' documents when an event had several recipients and listeners are registered.
 * Self-notifications, deleted recipients, `inApp: false` and "drop" cost no write.
 */
export async function notify(deps: Deps, event: NotificationEvent): Promise<void> {
  try {
    await record(deps, event);
  } catch (error) {
    deps.log.error("notification failed", { type: event.type, error: String(error) });
  }
}

type Person = Pick<UserDoc, "_id" | "createdAt" | "notificationPreferences" | "notificationPolicy">;

/**
 * Many notices in one go (a settlement batch's authors): 1 read for the recipients' preferences and 1 bulk
 * write, however many recipients. Never throws.
 */
export async function notifyEach(deps: Deps, notices: Notice[]): Promise<void> {
  if (notices.length === 0) return;
  try {
    await record(deps, { actor: null, targets: notices.flatMap((n) => targetsOf(n).targets) });
  } catch (error) {
    deps.log.error("notifications failed", { type: "system", count: notices.length, error: String(error) });
  }
}

async function record(deps: Deps, event: NotificationEvent | { actor: ObjectId | null; targets: Target[] }) {
  const { actor, targets: all } = "targets" in event ? event : targetsOf(event);
  const wanted = all.filter((t) => !actor || !t.recipient.equals(actor));
  if (wanted.length === 0) return;

  const ids = [...wanted.map((t) => t.recipient), ...(actor ? [actor] : [])];
  // Recipients who block or mute the actor, or are blocked by them, hear nothing of them (read alongside).
  const [found, relations] = await Promise.all([
    deps.db.users.find(
      { _id: { $in: ids }, deletedAt: null },
      { projection: { createdAt: 1, notificationPreferences: 1, notificationPolicy: 1 } },
    ),
    actor
      ? relationsOfMany(
          deps,
          wanted.map((t) => t.recipient.toHexString()),
        )
      : null,
  ]);
  const people = (found as Person[]).filter(
    (p) => !actor || p._id.equals(actor) || !relations?.get(p._id.toHexString())?.hides(actor.toHexString()),
  );
  const byId = new Map(people.map((p) => [p._id.toHexString(), p]));
  const now = deps.clock.now();
  const actorDoc = actor ? byId.get(actor.toHexString()) : undefined;
  if (actor && !actorDoc) return;
  const newAccountMs = deps.config.notifications.newAccountDays * DAY_MS;
  const actorIsNew = Boolean(actorDoc && now.getTime() - actorDoc.createdAt.getTime() < newAccountMs);

  const receiving = wanted.flatMap((t) => {
    const person = byId.get(t.recipient.toHexString());
    if (!person || person.notificationPreferences?.inApp === false) return [];
    return [{ target: t, policy: policyOf(person.notificationPolicy) }];
  });
  // The follow relation is read only when some recipient's policy depends on it.
  const askFollows = actor ? receiving.filter((r) => r.policy.notFollowing !== "accept") : [];
  const following = new Set<string>();
  if (actor && askFollows.length > 0) {
    const edges = await deps.db.follows.find(
      { followerId: { $in: askFollows.map((r) => r.target.recipient) }, followingId: actor },
      { projection: { followerId: 1 }, limit: askFollows.length },
    );
    for (const e of edges) following.add(e.followerId.toHexString());
  }
  const writes = receiving.flatMap(({ target, policy }) => {
    if (!actor) return [{ target, filtered: false }];
    const action = decide(policy, {
      recipientFollowsActor: following.has(target.recipient.toHexString()),
      actorIsNew,
    });
    return action === "drop" ? [] : [{ target, filtered: action === "filter" }];
  });
  if (writes.length === 0) return;

  const windowStart = new Date(now.getTime() - deps.config.notifications.aggregationWindowHours * HOUR_MS);
  const ops: GroupOp[] = writes.map(({ target, filtered }) => ({
    filter: {
      userId: target.recipient,
      aggregationKey: target.aggregationKey,
      filtered,
      openGroup: true,
      createdAt: { $gte: windowStart },
    },
    update: groupUpdate(target, actor, now),
  }));

  if (ops.length === 1 && ops[0]) {
    const doc = await upsertGroup(deps, ops[0], windowStart);
    // A repeat by an actor already counted leaves the group untouched: no listener call.
    if (doc && doc.updatedAt.getTime() === now.getTime()) await emit(deps, [doc]);
    return;
  }
  await upsertGroups(deps, ops, windowStart);
  if (listeners.length === 0) return;
  const docs = await deps.db.notifications.find(
    {
      $or: writes.map(({ target, filtered }) => ({
        userId: target.recipient,
        aggregationKey: target.aggregationKey,
        filtered,
        updatedAt: now,
      })),
    },
    { projection: { actorIds: 0 }, limit: writes.length },
  );
  await emit(deps, docs);
}

interface GroupOp {
  filter: Filter & { userId: ObjectId; aggregationKey: string; filtered: boolean };
  update: Update;
}

/** Upserts hitting the open-group index: a concurrent upsert opened the group first, or a stale one is open. */
const GROUP_ATTEMPTS = 3;

/**
 * Joins (or opens) one group. At most one group per recipient, key and inbox is open (`openGroup`, a unique
 * partial index), so two first events at the same instant can't open two groups: the loser's upsert hits the
 * index and retries into the winner's group. A group that aged out of the window is closed on the way.
 */
async function upsertGroup(deps: Deps, op: GroupOp, windowStart: Date): Promise<NotificationDoc | null> {
  for (let attempt = 1; ; attempt++) {
    const joined = await deps.db.notifications.upsertUnique(op.filter, op.update, {
      sort: { createdAt: -1 },
      projection: { actorIds: 0 },
      returnDocument: "after",
    });
    if (joined) return joined.document;
    if (attempt >= GROUP_ATTEMPTS) throw new Error(`notification group ${op.filter.aggregationKey} stayed contended`);
    await closeStaleGroups(deps, [op], windowStart);
  }
}

/** The same for several recipients in one bulk write; only the upserts that hit the index are retried. */
async function upsertGroups(deps: Deps, ops: GroupOp[], windowStart: Date): Promise<void> {
  let pending = ops;
  for (let attempt = 1; pending.length > 0; attempt++) {
    const { refused } = await deps.db.notifications.bulkWriteUnique(
      pending.map((op): BulkOperation<NotificationDoc> => ({ updateOne: { ...op, upsert: true } })),
    );
    if (refused.length === 0) return;
    if (attempt >= GROUP_ATTEMPTS) throw new Error(`${refused.length} notification groups stayed contended`);
    const failed = refused.flatMap((i) => {
      const op = pending[i];
      return op ? [op] : [];
    });
    await closeStaleGroups(deps, failed, windowStart);
    pending = failed;
  }
}

/** Closes groups of these recipients and keys that are still marked open but older than the window. */
async function closeStaleGroups(deps: Deps, ops: GroupOp[], windowStart: Date): Promise<void> {
  if (ops.length === 0) return;
  await deps.db.notifications.updateMany(
    {
      $or: ops.map((op) => ({
        userId: op.filter.userId,
        aggregationKey: op.filter.aggregationKey,
        filtered: op.filter.filtered,
      })),
      openGroup: true,
      createdAt: { $lt: windowStart },
    },
    { $unset: { openGroup: "" }, $set: { closedAt: deps.clock.now() } },
  );
}

/**
 * One pipeline update that both opens a group (upsert) and joins one: the count and the sample move, and
 * the group is unread again, only when this actor is not already in `actorIds`; a repeat changes nothing.
 * Values go in as `$literal` so that no string is ever read as a field path.
 */
function groupUpdate(target: Target, actor: ObjectId | null, now: Date): Update {
  if (!actor) return noticeUpdate(target, now);
  const lit = (v: unknown) => ({ $literal: v });
  const orInsert = (field: string, value: unknown) => ({ $ifNull: [`$${field}`, lit(value)] });
  const isNew = actor ? { $not: [{ $in: [actor, { $ifNull: ["$actorIds", []] }] }] } : true;
  const sample = { $ifNull: ["$sampleActors", []] };
  const seen = { $ifNull: ["$actorIds", []] };
  // A repeat by a counted actor moves nothing, unless the kind re-opens on repeats: then only the count stays.
  const touches = target.repeatReopens ? true : "$_joins";
  return [
    { $set: { _joins: isNew } },
    { $set: { _touches: touches } },
    {
      $set: {
        type: orInsert("type", target.type),
        title: orInsert("title", target.title),
        body: orInsert("body", target.body),
        imageUrl: orInsert("imageUrl", target.imageUrl),
        actionType: orInsert("actionType", target.actionType),
        actionPayload: orInsert("actionPayload", target.actionPayload),
        createdAt: orInsert("createdAt", now),
        aggregationCount: { $add: [{ $ifNull: ["$aggregationCount", 0] }, { $cond: ["$_joins", 1, 0] }] },
        sampleActors: actor
          ? { $cond: ["$_joins", { $slice: [{ $concatArrays: [[actor], sample] }, SAMPLE_ACTORS] }, sample] }
          : sample,
        actorIds: actor
          ? { $cond: ["$_joins", { $slice: [{ $concatArrays: [seen, [actor]] }, -ACTOR_IDS_CAP] }, seen] }
          : seen,
        read: { $cond: ["$_touches", false, "$read"] },
        readAt: { $cond: ["$_touches", null, { $ifNull: ["$readAt", null] }] },
        updatedAt: { $cond: ["$_touches", lit(now), "$updatedAt"] },
      },
    },
    { $unset: ["_joins", "_touches"] },
  ];
}

/**
 * A notice has no actor to count once, so every event joins: plain operators (a fraction of the pipeline's
 * size, which matters when a settlement batch writes thousands at once).
 */
function noticeUpdate(target: Target, now: Date): Update {
  return {
    $setOnInsert: {
      type: target.type,
      title: target.title,
      body: target.body,
      imageUrl: target.imageUrl,
      actionType: target.actionType,
      actionPayload: target.actionPayload,
      sampleActors: [],
      actorIds: [],
      createdAt: now,
    },
    $inc: { aggregationCount: 1 },
    $set: { read: false, readAt: null, updatedAt: now },
  };
}

async function emit(deps: Deps, docs: StoredNotification[]): Promise<void> {
  if (listeners.length === 0 || docs.length === 0) return;
  const runs = docs.flatMap((doc) => listeners.map((listener) => ({ doc, run: listener(doc, deps) })));
  const results = await Promise.allSettled(runs.map((r) => r.run));
  results.forEach((result, i) => {
    if (result.status === "rejected") {
      deps.log.error("notification listener failed", {
        notificationId: runs[i]?.doc._id.toHexString(),
        error: String(result.reason),
      });
    }
  });
}

function isNotice(type: NotificationType): type is NoticeType {
  return (NOTICE_TYPES as readonly string[]).includes(type);
}

const VERBS: Record<Exclude<NotificationType, NoticeType>, string> = {
  vote: "voted on your post",
  follow: "followed you",
  comment: "commented on your post",
  reply: "replied to your comment",
  message: "sent you a message",
  live: "is live",
};

/** "ada voted on your post", "ada and 1 other …", "ada and 4 others …"; system notifications keep their title. */
export function titleOf(doc: Pick<NotificationDoc, "type" | "title" | "aggregationCount">, newest?: string): string {
  if (isNotice(doc.type)) return doc.title ?? "";
  const who = newest ?? "Someone";
  const others = Math.max(0, doc.aggregationCount - 1);
  const and = others === 0 ? "" : ` and ${others} ${others === 1 ? "other" : "others"}`;
  return `${who}${and} ${VERBS[doc.type]}`;
}

/**
 * Newest-updated first (keyset on updatedAt, _id); one batched users lookup for the page's actors. People the
 * viewer is blocked with or mutes are left out of the samples, and a group with none of its actors left shows
 * no more (new events from them were never recorded).
 */
export async function listNotifications(
  deps: Deps,
  viewer: Viewer,
  query: NotificationsQuery,
): Promise<NotificationPage> {
  const filter: Filter = { userId: new ObjectId(viewer.id), filtered: query.filtered === true };
  if (query.unread === true) filter.read = false;
  const relations = await relationsFor(deps, viewer);
  const page = await paginate(deps.db.notifications, {
    filter,
    order: { field: "updatedAt", kind: "date", direction: "desc" },
    limit: query.limit,
    cursor: query.cursor,
    projection: { actorIds: 0 },
  });
  const actorIds = [
    ...new Map(page.items.flatMap((d) => d.sampleActors ?? []).map((a) => [a.toHexString(), a])).values(),
  ];
  const people = actorIds.length
    ? await deps.db.users.find({ _id: { $in: actorIds }, deletedAt: null }, { limit: actorIds.length })
    : [];
  const byId = new Map<string, PublicUser>(people.map((p) => [p._id.toHexString(), toPublicUser(p)]));
  const items = page.items.flatMap((d): Notification[] => {
    const samples = (d.sampleActors ?? []).filter((a) => !relations.hides(a.toHexString()));
    if (!isNotice(d.type) && samples.length === 0 && (d.sampleActors ?? []).length > 0) return [];
    const sampleActors = samples.flatMap((a) => {
      const user = byId.get(a.toHexString());
      return user ? [user] : [];
    });
    const item: Notification = {
      id: d._id.toHexString(),
      type: d.type,
      title: titleOf(d, sampleActors[0]?.username),
      body: d.body ?? null,
      imageUrl: d.imageUrl ?? null,
      actionType: d.actionType ?? null,
      actionPayload: d.actionPayload ?? {},
      read: d.read,
      aggregationKey: d.aggregationKey,
      aggregationCount: d.aggregationCount,
      sampleActors,
      createdAt: d.createdAt.toISOString(),
      updatedAt: d.updatedAt.toISOString(),
    };
    return [item];
  });
  return { items, nextCursor: page.nextCursor };
}

/** Unread, not filtered: one aggregate round trip. */
export async function unreadCount(deps: Deps, viewer: Viewer): Promise<number> {
  const [row] = await deps.db.notifications.aggregate<{ n: number }>([
    { $match: { userId: new ObjectId(viewer.id), read: false, filtered: false } },
    { $count: "n" },
  ]);
  return row?.n ?? 0;
}

/** Marks the caller's own notifications read; ids of others' notifications match nothing (no oracle). */
export async function markRead(deps: Deps, viewer: Viewer, body: { ids: string[] } | { all: true }): Promise<void> {
  const filter: Filter = { userId: new ObjectId(viewer.id), read: false };
  if ("ids" in body) filter._id = { $in: body.ids.map((id) => new ObjectId(id)) };
  await deps.db.notifications.updateMany(filter, { $set: { read: true, readAt: deps.clock.now() } });
}
