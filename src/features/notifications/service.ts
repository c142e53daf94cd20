import { dropCache, fillCache, readCache } from "../../core/cache";
import type { Relations } from "../../core/relations";
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
import { deleteKeys, getValue, setValue } from "../../platform/redis-ops";
import { DAY_MS, HOUR_MS } from "../../platform/time";
import { defineOwed } from "../owed/effects";
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
  /** Promotional: pushed only to recipients who opted into `marketing` (the inbox shows it either way). */
  marketing?: boolean;
  /**
   * The notice announces one event (its `aggregationKey` names it): a repeat of the same key, e.g. a retry or a
   * sweep racing the request that did the work, changes nothing — no second count, no second push.
   */
  once?: boolean;
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
  marketing: boolean;
  /** A notice of one event: a repeat of its key changes nothing (see `Notice.once`). */
  once?: boolean;
  /** A repeat by an actor already counted still turns the group unread and moves it up (a new message does). */
  repeatReopens?: boolean;
}

/** Listeners get the group as stored, without the (large) `actorIds` dedupe list. */
export type StoredNotification = Omit<NotificationDoc, "actorIds">;
export type NotificationListener = (notification: StoredNotification, deps: Deps) => Promise<void>;

const listeners: NotificationListener[] = [];

/**
 * Told which recipients now owe a push (their notification's write recorded it, `pushOwed`), so a sender can
 * try at once; a sweep finds what it misses. Called after the write, synchronously: it must only schedule.
 */
export type PushOwedListener = (deps: Deps, recipientIds: ObjectId[]) => void;
const pushListeners: PushOwedListener[] = [];

/** Registers a push sender (see PushOwedListener); returns a function that removes it. */
export function registerPushOwedListener(listener: PushOwedListener): () => void {
  pushListeners.push(listener);
  return () => {
    const i = pushListeners.indexOf(listener);
    if (i >= 0) pushListeners.splice(i, 1);
  };
}

function announcePushOwed(deps: Deps, recipients: ObjectId[]): void {
  if (recipients.length === 0) return;
  for (const listener of pushListeners) {
    try {
      listener(deps, recipients);
    } catch (error) {
      deps.log.error("push listener failed", { error: String(error) });
    }
  }
}

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
  const base = { title: null, body: null, imageUrl: null, marketing: false };
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
            marketing: event.marketing === true,
            ...(event.once ? { once: true } : {}),
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

/**
 * The same event owed by a write (features/owed): recorded in the write's own batch, turned into notifications
 * after the answer. A failure is retried by the owed-effects sweep; an actor's event counts once per group, so
 * a retry after a write whose answer was lost adds nothing.
 */
export const notifyLater = defineOwed<NotificationEvent>(
  "notify",
  // After the commit, so the write's counters never wait on the notification's own reads.
  async (deps, event) => ({ after: () => record(deps, event) }),
  (event) => {
    const { actor, targets } = targetsOf(event);
    return [...(actor ? [actor] : []), ...targets.map((t) => t.recipient)];
  },
);

type Person = Pick<
  UserDoc,
  "_id" | "createdAt" | "notificationPreferences" | "notificationPolicy" | "devices" | "consents"
>;

/**
 * Whether this notification owes its recipient a push: push configured, the recipient has a push token and
 * wants pushes (promotional ones only with marketing consent, GDPR Art. 7, and the preference on). Quiet hours
 * and the hourly cap are the sender's business.
 */
function owesPush(deps: Deps, person: Person, target: Target): boolean {
  if (!deps.config.push.serviceAccount) return false;
  const prefs = person.notificationPreferences;
  if (prefs?.push === false) return false;
  if (target.marketing && (prefs?.marketing !== true || person.consents?.marketing?.granted !== true)) return false;
  return (person.devices ?? []).some((d) => Boolean(d.pushToken));
}

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

/** A post its author's followers hear of, and a batch of those followers. */
export interface NewPostAnnouncement {
  authorId: ObjectId;
  postId: ObjectId;
  imageUrl: string | null;
  followerIds: ObjectId[];
}

/**
 * Tells a batch of the author's followers about a new post: one group per follower and post (`post:{postId}`),
 * the author its actor, so telling a follower twice changes nothing (nor pushes again). Followers who mute the
 * author (or are blocked with them) and those who turned in-app notifications off or drop new accounts' news
 * hear nothing; the others get a push as their preferences say.
 * Round trips (MongoDB): 2 reads in parallel (the people, their mutes of the author) and 1 bulk write, however
 * many followers; plus 1 read for listeners when any are registered. Throws on a store failure, so the caller
 * (the `publish-scheduled` job) can try the batch again.
 */
export async function announceNewPost(deps: Deps, announcement: NewPostAnnouncement): Promise<number> {
  const { authorId, postId, followerIds } = announcement;
  const recipients = followerIds.filter((id) => !id.equals(authorId));
  if (recipients.length === 0) return 0;
  const [found, silenced] = await Promise.all([
    deps.db.users.find(
      { _id: { $in: [...recipients, authorId] }, deletedAt: null },
      {
        projection: { createdAt: 1, notificationPreferences: 1, notificationPolicy: 1, "devices.pushToken": 1 },
        limit: recipients.length + 1,
      },
    ),
    deps.db.blocks.find(
      {
        $or: [
          { userId: { $in: recipients }, targetId: authorId },
          { userId: authorId, targetId: { $in: recipients }, kind: "block" },
        ],
      },
      { projection: { userId: 1, targetId: 1 }, limit: recipients.length * 2 },
    ),
  ]);
  const people = found as Person[];
  const author = people.find((p) => p._id.equals(authorId));
  if (!author) return 0;
  const quiet = new Set(silenced.map((b) => (b.userId.equals(authorId) ? b.targetId : b.userId).toHexString()));
  const now = deps.clock.now();
  const actorIsNew = now.getTime() - author.createdAt.getTime() < deps.config.notifications.newAccountDays * DAY_MS;
  const target = (recipient: ObjectId): Target => ({
    recipient,
    type: "post",
    aggregationKey: `post:${postId.toHexString()}`,
    title: null,
    body: null,
    imageUrl: announcement.imageUrl,
    actionType: "open_post",
    actionPayload: { postId: postId.toHexString() },
    marketing: false,
  });
  const writes = people.flatMap((person) => {
    if (person._id.equals(authorId) || quiet.has(person._id.toHexString())) return [];
    if (person.notificationPreferences?.inApp === false) return [];
    const action = decide(policyOf(person.notificationPolicy), { recipientFollowsActor: true, actorIsNew });
    if (action === "drop") return [];
    const announced = target(person._id);
    const filtered = action === "filter";
    return [{ target: announced, filtered, push: !filtered && owesPush(deps, person, announced) }];
  });
  if (writes.length === 0) return 0;
  const { ops, windowStart } = groupOps(deps, writes, authorId, now);
  await upsertGroups(deps, ops, windowStart);
  const told = writes.map((w) => w.target.recipient);
  await forgetInbox(deps, told);
  // A follower told before has no push owed again (the group did not move), so the sender finds nothing new.
  announcePushOwed(
    deps,
    writes.filter((w) => w.push).map((w) => w.target.recipient),
  );
  if (listeners.length > 0) {
    const docs = await deps.db.notifications.find(
      { userId: { $in: told }, aggregationKey: `post:${postId.toHexString()}`, updatedAt: now },
      { projection: { actorIds: 0 }, limit: told.length * 2 },
    );
    await emit(deps, docs);
  }
  return told.length;
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
      {
        projection: {
          createdAt: 1,
          notificationPreferences: 1,
          notificationPolicy: 1,
          "devices.pushToken": 1,
          "consents.marketing": 1,
        },
      },
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
    return [{ target: t, person, policy: policyOf(person.notificationPolicy) }];
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
  const writes = receiving.flatMap(({ target, person, policy }) => {
    // Filtered items stay out of the list and the unread count, and so out of pushes.
    const push = (filtered: boolean) => !filtered && owesPush(deps, person, target);
    if (!actor) return [{ target, filtered: false, push: push(false) }];
    const action = decide(policy, {
      recipientFollowsActor: following.has(target.recipient.toHexString()),
      actorIsNew,
    });
    const filtered = action === "filter";
    return action === "drop" ? [] : [{ target, filtered, push: push(filtered) }];
  });
  if (writes.length === 0) return;

  const { ops, windowStart } = groupOps(deps, writes, actor, now);
  const pushRecipients = writes.filter((w) => w.push).map((w) => w.target.recipient);

  const recipients = writes.map((w) => w.target.recipient);
  if (ops.length === 1 && ops[0]) {
    const doc = await upsertGroup(deps, ops[0], windowStart);
    await forgetInbox(deps, recipients);
    // A repeat by an actor already counted leaves the group untouched: no listener call, no push.
    if (doc && doc.updatedAt.getTime() === now.getTime()) {
      announcePushOwed(deps, pushRecipients);
      await emit(deps, [doc]);
    }
    return;
  }
  await upsertGroups(deps, ops, windowStart);
  await forgetInbox(deps, recipients);
  announcePushOwed(deps, pushRecipients);
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

/**
 * The upserts that add an actor to each recipient's open group of its kind (opened within the aggregation
 * window), with a push owed where one is. An owed push is first left to the sender told after the write, then
 * to the push sweep (`pushNotBefore`).
 */
function groupOps(
  deps: Deps,
  writes: { target: Target; filtered: boolean; push: boolean }[],
  actor: ObjectId | null,
  now: Date,
): { ops: GroupOp[]; windowStart: Date } {
  const windowStart = new Date(now.getTime() - deps.config.notifications.aggregationWindowHours * HOUR_MS);
  const pushNotBefore = new Date(now.getTime() + deps.config.push.sweepGraceSeconds * 1000);
  const ops = writes.map(({ target, filtered, push }) => ({
    filter: {
      userId: target.recipient,
      aggregationKey: target.aggregationKey,
      filtered,
      openGroup: true,
      createdAt: { $gte: windowStart },
    },
    update: groupUpdate(target, actor, now, push ? pushNotBefore : null),
  }));
  return { ops, windowStart };
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
function groupUpdate(target: Target, actor: ObjectId | null, now: Date, pushNotBefore: Date | null): Update {
  if (!actor) return noticeUpdate(target, now, pushNotBefore);
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
        // A join (or a repeat that reopens the group) owes the recipient a push of the group as it now stands (one that replaces the last one).
        ...(pushNotBefore
          ? {
              pushOwed: { $cond: ["$_touches", true, { $ifNull: ["$pushOwed", false] }] },
              pushNotBefore: { $cond: ["$_touches", lit(pushNotBefore), { $ifNull: ["$pushNotBefore", lit(now)] }] },
              pushAttempts: { $cond: ["$_touches", 0, { $ifNull: ["$pushAttempts", 0] }] },
            }
          : {}),
      },
    },
    { $unset: ["_joins", "_touches"] },
  ];
}

/**
 * A notice has no actor to count once, so every event joins: plain operators (a fraction of the pipeline's
 * size, which matters when a settlement batch writes thousands at once).
 */
function noticeUpdate(target: Target, now: Date, pushNotBefore: Date | null): Update {
  const created = {
    type: target.type,
    title: target.title,
    body: target.body,
    imageUrl: target.imageUrl,
    actionType: target.actionType,
    actionPayload: target.actionPayload,
    sampleActors: [],
    actorIds: [],
    createdAt: now,
    ...(target.marketing ? { marketing: true } : {}),
  };
  const fresh = {
    read: false,
    readAt: null,
    updatedAt: now,
    ...(pushNotBefore ? { pushOwed: true, pushNotBefore, pushAttempts: 0 } : {}),
  };
  // A notice of one event is written once: a repeat of its key matches the stored group and changes nothing.
  if (target.once) return { $setOnInsert: { ...created, aggregationCount: 1, ...fresh } };
  return { $setOnInsert: created, $inc: { aggregationCount: 1 }, $set: fresh };
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
  post: "shared a new post",
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
 * Newest-updated first (keyset on updatedAt, _id); one batched users lookup for the page's actors. The first
 * page of the default inbox is cached (`notif:first:{userId}`, NOTIFICATIONS_CACHE_TTL_SECONDS) and dropped
 * whenever the inbox changes, so a warm read waits on no MongoDB call. People the viewer is blocked with or
 * mutes are left out of the samples after the read, and a group with none of its actors left shows no more
 * (new events from them were never recorded).
 */
export async function listNotifications(
  deps: Deps,
  viewer: Viewer,
  query: NotificationsQuery,
): Promise<NotificationPage> {
  const relations = await relationsFor(deps, viewer);
  const firstPage = !query.cursor && query.limit === FIRST_PAGE_SIZE && !query.unread && !query.filtered;
  const key = deps.keys.inboxFirstPage(viewer.id);
  if (firstPage) {
    const cached = await readCache(deps, getValue<NotificationPage>(key), "inbox page");
    if (cached) return hideActors(cached, relations);
  }
  const filter: Filter = { userId: new ObjectId(viewer.id), filtered: query.filtered === true };
  if (query.unread === true) filter.read = false;
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
  const items = page.items.map(
    (d): RenderedItem => ({
      id: d._id.toHexString(),
      type: d.type,
      title: "",
      body: d.body ?? null,
      imageUrl: d.imageUrl ?? null,
      actionType: d.actionType ?? null,
      actionPayload: d.actionPayload ?? {},
      read: d.read,
      aggregationKey: d.aggregationKey,
      aggregationCount: d.aggregationCount,
      sampleActors: (d.sampleActors ?? []).flatMap((a) => byId.get(a.toHexString()) ?? []),
      // The notice's own title; actor titles are written from the samples the viewer sees (hideActors).
      noticeTitle: d.title ?? null,
      createdAt: d.createdAt.toISOString(),
      updatedAt: d.updatedAt.toISOString(),
    }),
  );
  const result = { items, nextCursor: page.nextCursor };
  if (firstPage) await fillCache(deps, setValue(key, result, deps.config.notifications.cacheTtlSeconds), "inbox page");
  return hideActors(result, relations);
}

const FIRST_PAGE_SIZE = 20;

type RenderedItem = Notification & { noticeTitle?: string | null };

/** The page as this viewer sees it: hidden people out of the samples, titles from the samples left. */
function hideActors(
  page: { items: RenderedItem[]; nextCursor: string | null },
  relations: Relations,
): NotificationPage {
  const items = page.items.flatMap(({ noticeTitle = null, ...item }): Notification[] => {
    const samples = item.sampleActors.filter((a) => !relations.hides(a.id));
    if (!isNotice(item.type) && samples.length === 0 && item.sampleActors.length > 0) return [];
    const title = titleOf(
      { type: item.type, title: noticeTitle, aggregationCount: item.aggregationCount },
      samples[0]?.username,
    );
    return [{ ...item, sampleActors: samples, title }];
  });
  return { items, nextCursor: page.nextCursor };
}

/**
 * Unread, not filtered: cached (`notif:unread:{userId}`), dropped whenever the inbox changes; on a miss one
 * aggregate round trip.
 */
export async function unreadCount(deps: Deps, viewer: Viewer): Promise<number> {
  const key = deps.keys.inboxUnread(viewer.id);
  const cached = await readCache(deps, getValue<number>(key), "unread count");
  if (cached !== null) return Number(cached);
  const [row] = await deps.db.notifications.aggregate<{ n: number }>([
    { $match: { userId: new ObjectId(viewer.id), read: false, filtered: false } },
    { $count: "n" },
  ]);
  const count = row?.n ?? 0;
  await fillCache(deps, setValue(key, count, deps.config.notifications.cacheTtlSeconds), "unread count");
  return count;
}

/** Drops the cached inbox (first page and unread count) of these users after it changed. */
export async function forgetInbox(deps: Deps, userIds: (string | ObjectId)[]): Promise<void> {
  const ids = userIds.map((id) => (typeof id === "string" ? id : id.toHexString()));
  await dropCache(
    deps,
    deleteKeys(ids.flatMap((id) => [deps.keys.inboxFirstPage(id), deps.keys.inboxUnread(id)])),
    "inbox",
  );
}

/** Marks the caller's own notifications read; ids of others' notifications match nothing (no oracle). */
export async function markRead(deps: Deps, viewer: Viewer, body: { ids: string[] } | { all: true }): Promise<void> {
  const filter: Filter = { userId: new ObjectId(viewer.id), read: false };
  if ("ids" in body) filter._id = { $in: body.ids.map((id) => new ObjectId(id)) };
  await deps.db.notifications.updateMany(filter, { $set: { read: true, readAt: deps.clock.now() } });
  await forgetInbox(deps, [viewer.id]);
}
