import { AsyncLocalStorage } from "node:async_hooks";
import type { AnalyticsEventDoc, Attribution, GemTransactionDoc, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { afterResponse } from "../../platform/background";
import { newObjectId, newUuid } from "../../platform/ids";

/**
 * Events the API records itself, beside the app's own (`POST /v1/events`). They feed creator analytics
 * (`server_events` and the views over it in ClickHouse); `post_saved` / `post_unsaved` are counted as soon as
 * saves record them.
 */
export const SERVER_EVENTS = [
  "signed_up",
  "post_created",
  "vote_cast",
  "vote_removed",
  "comment_created",
  "shared",
  "post_saved",
  "post_unsaved",
  "followed",
  "unfollowed",
  "gem_earned",
  "profile_viewed",
] as const;
export type ServerEventName = (typeof SERVER_EVENTS)[number];

/** Something that happened, as analytics records it. */
export interface Activity {
  event: ServerEventName;
  /** Who did it: a user id, or null for the system (a payout) or a signed-out viewer. */
  actorId: string | null;
  /** A signed-out viewer's `X-Device-Id` (distinct viewers are counted by it). */
  actorDeviceId?: string | null;
  /** Whose analytics it counts toward: the author voted on, the person followed, the earner, … */
  ownerId: string;
  postId?: string | null;
  /** Gems earned. */
  amount?: number;
  /** Signups: the account's first-touch attribution. */
  attribution?: Attribution | null;
  /** When it happened (default now). */
  at?: Date;
  /** A stable id when the same fact may be recorded twice (a ledger entry): ClickHouse counts it once. */
  eventId?: string;
}

interface Collector {
  docs: AnalyticsEventDoc[];
  open: boolean;
}

const collectorScope = new AsyncLocalStorage<Collector>();

/** The buffer document of a server event (the flush job sends it to `server_events`). */
export function serverEventDoc(deps: Deps, activity: Activity): AnalyticsEventDoc {
  const now = deps.clock.now();
  const attribution = activity.attribution ?? null;
  return {
    _id: newObjectId(),
    eventId: activity.eventId ?? newUuid(),
    event: activity.event,
    userId: activity.actorId,
    sessionId: "",
    deviceId: activity.actorId ? "" : (activity.actorDeviceId ?? ""),
    platform: "server",
    appVersion: "",
    properties: {},
    source: attribution?.source ?? null,
    campaign: attribution?.campaign ?? null,
    medium: attribution?.medium ?? null,
    referrer: attribution?.referrer ?? null,
    origin: "server",
    ownerId: activity.ownerId,
    postId: activity.postId ?? null,
    amount: activity.amount ?? null,
    timestamp: activity.at ?? now,
    receivedAt: now,
    flushBatchId: null,
  };
}

/**
 * Records what happened, once the write that made it happen is decided. During a request the events wait for
 * the answer and go to the analytics buffer in one write after it (see `collectActivity`), so recording costs
 * the request no wait at all; elsewhere (jobs) they are written at once, and the promise resolves when they
 * are. Never throws: analytics must not turn a committed write into an error (a lost write is logged).
 */
export function recordActivity(deps: Deps, ...activities: Activity[]): Promise<void> {
  if (activities.length === 0) return Promise.resolve();
  const docs = activities.map((activity) => serverEventDoc(deps, activity));
  const collector = collectorScope.getStore();
  if (collector?.open) {
    collector.docs.push(...docs);
    return Promise.resolve();
  }
  return bufferEvents(deps, docs);
}

async function bufferEvents(deps: Deps, docs: AnalyticsEventDoc[]): Promise<void> {
  try {
    await deps.db.analyticsEvents.insertMany(docs, { ordered: false });
  } catch (error) {
    deps.log.warn("server analytics events not buffered", {
      events: docs.map((d) => d.event),
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/**
 * Runs one request (`run`) collecting the events it records, then queues their single buffer write to run
 * after the answer (platform/background.ts), whatever the request's outcome: an event is recorded only once its
 * write is decided, so it stands even if something after it failed. Events recorded after that (by work the
 * request left running) are written on their own.
 */
export async function collectActivity<T>(deps: Deps, run: () => Promise<T>): Promise<T> {
  const collector: Collector = { docs: [], open: true };
  try {
    return await collectorScope.run(collector, run);
  } finally {
    collector.open = false;
    if (collector.docs.length > 0) {
      const docs = collector.docs;
      afterResponse(() => bufferEvents(deps, docs));
    }
  }
}

/**
 * A UUID that is a pure function of an ObjectId (hex) and a 6-hex-digit tag: the 30 free hex digits of an
 * RFC 9562 version 8 UUID hold the tag and the id unchanged, so distinct (tag, id) pairs never collide.
 */
export function stableEventId(tag: string, objectIdHex: string): string {
  if (!/^[0-9a-f]{6}$/.test(tag) || !/^[0-9a-f]{24}$/i.test(objectIdHex)) throw new Error("bad stable event id input");
  const free = `${tag}${objectIdHex.toLowerCase()}`;
  const hex = `${free.slice(0, 12)}8${free.slice(12, 15)}a${free.slice(15)}`;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Ledger entries that are gems earned (credits of any earning source, not refunds or adjustments). */
export function earnsGems(entry: Pick<GemTransactionDoc, "type" | "amount">): boolean {
  return entry.type === "earn" && entry.amount > 0;
}

/**
 * The `gem_earned` events of applied ledger credits, keyed by entry: recording a credit again (a settlement
 * run finishing a crashed one's batch) adds a row ClickHouse counts once (`creator_gems` is read with FINAL).
 */
export function gemsEarned(
  entries: Pick<GemTransactionDoc, "_id" | "userId" | "type" | "amount" | "createdAt">[],
): Activity[] {
  return entries.filter(earnsGems).map((entry) => ({
    event: "gem_earned",
    actorId: null,
    ownerId: entry.userId.toHexString(),
    amount: entry.amount,
    at: entry.createdAt,
    eventId: stableEventId("9e4e00", entry._id.toHexString()),
  }));
}

/** A new account's `signed_up` event, with the first-touch attribution it was created with. */
export function signedUp(user: Pick<UserDoc, "_id" | "createdAt" | "attribution">): Activity {
  const id = user._id.toHexString();
  return { event: "signed_up", actorId: id, ownerId: id, attribution: user.attribution ?? null, at: user.createdAt };
}
