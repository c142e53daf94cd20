import { bestEffort } from "../../core/best-effort";
import { ApiError } from "../../core/errors";
import { type IdempotentRequest, idempotencyMismatch } from "../../core/idempotency";
import type { Relations } from "../../core/relations";
import type { Viewer } from "../../core/viewer";
import type { RequestKey, StreamDoc, StreamEndReason } from "../../db";
import type { Deps } from "../../deps";
import { StoreUnavailableError } from "../../platform/errors";
import { newObjectId, ObjectId } from "../../platform/ids";
import { createLiveVideo, type LiveVideo, LiveVideoUnavailableError } from "../../platform/live-video";
import { DuplicateKeyError, expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import {
  deleteKeys,
  markStreamLive,
  runOp,
  runOps,
  type StreamAudience,
  streamAudiences,
} from "../../platform/redis-ops";
import { DAY_MS } from "../../platform/time";
import type { Later } from "../messaging/events";
import { closeStreamChat, forgetStreamChat, newStreamChat, publishStreamEvent } from "../messaging/stream-chat";
import { relationsFor } from "../relations/service";
import { announceLive } from "./announce";
import { canSeeStream, normalizedTags, type StreamAction, transition } from "./rules";
import type { CreateStreamBody, Stream } from "./schema";
import { audienceKeysOf, PERSON_FIELDS, type People, peopleOf, toStream } from "./views";

/**
 * A stream's life: created scheduled (for later) or live (now), started, ended, or cancelled before it began,
 * only ever by its streamer (others who may see it: 403; others: 404). The video goes through the live-video
 * provider: creating a stream creates its live input (the ingest URL and stream key go to the streamer only),
 * and once the stream is over the input is deleted (retried by `stream-maintenance` until it is).
 */

export const noSuchStream = () => ApiError.notFound("No such stream.");

export function liveVideoOf(deps: Deps): LiveVideo {
  return createLiveVideo(deps.config.liveVideo);
}

/** The provider could not be used: 503 with Retry-After, and nothing was written. */
export function liveVideoDown(deps: Deps, error: unknown): ApiError {
  deps.log.warn("live video unavailable", { error: String(error) });
  return new ApiError("unavailable", "Live video is unavailable right now. Please retry shortly.", {
    headers: { "Retry-After": String(deps.config.unavailableRetryAfterSeconds) },
  });
}

/** A stream, the people it shows, its live audience and the caller's relations, if the caller may see it. */
export interface LoadedStream {
  doc: StreamDoc;
  people: People;
  audience: StreamAudience | null;
  relations: Relations;
}

/**
 * Loads a stream the caller may see (404 otherwise). Waits: 1 MongoDB (the stream) with 1 Redis (its audience,
 * pruned as it is read) in parallel, then 1 MongoDB (the streamer and co-hosts).
 */
export async function loadStream(deps: Deps, viewer: Viewer | undefined, streamId: string): Promise<LoadedStream> {
  const now = deps.clock.now();
  const { viewerLifetimeSeconds } = deps.config.streams;
  const [doc, relations, audiences] = await Promise.all([
    deps.db.liveStreams.findOne({ _id: new ObjectId(streamId) }),
    relationsFor(deps, viewer),
    // Live numbers are Redis's alone: without Redis the stream still shows (with zeros).
    bestEffort(deps, "stream audience read", () =>
      runOp(deps.redis, streamAudiences([audienceKeysOf(deps, streamId)], now.getTime(), viewerLifetimeSeconds * 1000)),
    ),
  ]);
  if (!doc) throw noSuchStream();
  const people = await peopleOf(deps, [doc]);
  const visible = canSeeStream({
    stream: doc,
    streamer: people.get(doc.userId.toHexString()),
    viewerId: viewer?.id,
    blockedWith: (id) => relations.blockedWith(id),
    now,
  });
  if (!visible) throw noSuchStream();
  return { doc, people, audience: audiences?.[0] ?? null, relations };
}

/** The streamer's own stream for a state change: others who may see it get 403, everyone else 404. */
async function ownStream(deps: Deps, viewer: Viewer, streamId: string): Promise<StreamDoc> {
  const doc = await deps.db.liveStreams.findOne({ _id: new ObjectId(streamId) });
  if (!doc) throw noSuchStream();
  if (doc.userId.toHexString() === viewer.id) return doc;
  const [people, relations] = await Promise.all([peopleOf(deps, [doc]), relationsFor(deps, viewer)]);
  const visible = canSeeStream({
    stream: doc,
    streamer: people.get(doc.userId.toHexString()),
    viewerId: viewer.id,
    blockedWith: (id) => relations.blockedWith(id),
    now: deps.clock.now(),
  });
  if (!visible) throw noSuchStream();
  throw ApiError.forbidden("Only the streamer can do this.");
}

function refused(reason: "stream_over" | "not_live" | "is_live"): ApiError {
  switch (reason) {
    case "stream_over":
      return ApiError.conflict("stream_over", "The stream has ended or was cancelled.");
    case "not_live":
      return ApiError.conflict("stream_not_live", "The stream has not started: cancel it instead.");
    case "is_live":
      return ApiError.conflict("stream_live", "The stream is live: end it instead.");
  }
}

/** The streamer's ingest credentials, asked of the provider (never stored); omitted when it cannot answer. */
export async function ingestFor(deps: Deps, doc: StreamDoc): Promise<Stream["ingest"]> {
  if (doc.status !== "scheduled" && doc.status !== "live") return undefined;
  try {
    const input = await liveVideoOf(deps).getInput(doc.video.liveInputId);
    return input?.ingest;
  } catch (error) {
    if (!(error instanceof LiveVideoUnavailableError)) throw error;
    deps.log.warn("stream ingest unreadable", { streamId: doc._id.toHexString(), error: error.message });
    return undefined;
  }
}

/**
 * POST /v1/streams. Waits: the provider's create (in parallel with 1 MongoDB read: the streamer, and the cover
 * generation when one is named), then 1 MongoDB write (the stream and its chat, in one transaction); a stream
 * live at once adds 1 Redis write (its live state). If anything after the provider's create fails, the live
 * input is deleted again.
 */
export async function createStream(
  deps: Deps,
  viewer: Viewer,
  body: CreateStreamBody,
  later: Later,
  request?: IdempotentRequest,
): Promise<Stream> {
  const requestKey = request ? { key: `${viewer.id}:${request.key}`, fingerprint: request.fingerprint } : undefined;
  const { streams: settings } = deps.config;
  const now = deps.clock.now();
  const scheduledFor = body.scheduledFor ? new Date(body.scheduledFor) : null;
  if (scheduledFor && scheduledFor.getTime() <= now.getTime()) {
    throw ApiError.invalidField("scheduledFor", "must be in the future (omit it to go live now)");
  }
  if (scheduledFor && scheduledFor.getTime() > now.getTime() + settings.scheduleMaxDays * DAY_MS) {
    throw ApiError.invalidField("scheduledFor", `at most ${settings.scheduleMaxDays} days ahead`);
  }
  const tags = normalizedTags(body.tags);
  if (tags.length > settings.maxTags) throw ApiError.invalidField("tags", `at most ${settings.maxTags} tags`);
  const video = liveVideoOf(deps);
  if (!video.configured) throw liveVideoDown(deps, "LIVE_VIDEO_ACCOUNT_ID / LIVE_VIDEO_API_TOKEN are not set");

  const me = new ObjectId(viewer.id);
  const streamId = newObjectId();
  // A retry's earlier stream is looked up beside the provider's create (retries are rare; its input goes again).
  const [input, cover, people, earlier] = await Promise.allSettled([
    video.createInput({ name: body.title, streamId: streamId.toHexString(), creatorId: viewer.id }),
    body.coverGenerationId
      ? deps.db.generationJobs.findOne(
          { _id: new ObjectId(body.coverGenerationId), userId: me, status: "completed" },
          { projection: { imageUrl: 1, thumbnailUrl: 1 } },
        )
      : Promise.resolve(null),
    deps.db.users.find({ _id: me }, { projection: PERSON_FIELDS, limit: 1 }),
    requestKey ? deps.db.liveStreams.findOne({ "idempotency.key": requestKey.key }) : Promise.resolve(null),
  ]);
  if (input.status === "rejected") {
    if (earlier.status === "fulfilled" && earlier.value) return replayCreate(deps, viewer, earlier.value, requestKey);
    throw liveVideoDown(deps, input.reason);
  }
  const created = input.value;
  const undo = () => later(() => deleteInput(deps, video, created.uid));
  if (earlier.status === "fulfilled" && earlier.value) {
    undo();
    return replayCreate(deps, viewer, earlier.value, requestKey);
  }
  if (cover.status === "rejected" || people.status === "rejected") {
    undo();
    throw cover.status === "rejected" ? cover.reason : (people as PromiseRejectedResult).reason;
  }
  if (body.coverGenerationId && !cover.value?.imageUrl) {
    undo();
    throw ApiError.notFound("No such generation.");
  }

  const live = scheduledFor === null;
  const chat = newStreamChat({ streamId, host: { userId: me, since: now }, title: body.title, now });
  const doc: StreamDoc = {
    _id: streamId,
    userId: me,
    title: body.title,
    description: body.description?.trim() ? body.description.trim() : null,
    category: body.category ?? null,
    tags,
    thumbnailUrl: cover.value ? (cover.value.thumbnailUrl ?? cover.value.imageUrl ?? null) : null,
    status: live ? "live" : "scheduled",
    scheduledFor,
    startedAt: live ? now : null,
    endedAt: null,
    cancelledAt: null,
    endReason: null,
    conversationId: chat._id,
    participants: [],
    moderators: [],
    staffVersion: 1,
    video: {
      provider: "cloudflare_stream",
      liveInputId: created.uid,
      playbackUrl: video.playbackUrl(created.uid),
      deletedAt: null,
    },
    peakViewers: 0,
    uniqueViewers: 0,
    giftTotal: 0,
    giftCount: 0,
    liveNotice: live ? { state: "pending", after: null, told: 0, updatedAt: now } : null,
    ...(requestKey ? { idempotency: requestKey } : {}),
    createdAt: now,
    updatedAt: now,
  };
  try {
    await deps.db.batch([deps.db.conversations.inBatch.insertOne(chat), deps.db.liveStreams.inBatch.insertOne(doc)], {
      transaction: true,
    });
  } catch (error) {
    undo();
    // The same key racing: the other attempt's stream is the one (nothing of this one was kept).
    const winner =
      error instanceof DuplicateKeyError && requestKey
        ? await deps.db.liveStreams.findOne({ "idempotency.key": requestKey.key })
        : null;
    if (winner) return replayCreate(deps, viewer, winner, requestKey);
    throw error;
  }
  if (live) await goLive(deps, doc, later);
  const view = toStream(doc, new Map(people.value.map((u) => [u._id.toHexString(), u])), null, viewer.id);
  return { ...view, ingest: created.ingest };
}

/** The stream a create with this key made, answered again (its ingest from the provider); another body: 422. */
async function replayCreate(
  deps: Deps,
  viewer: Viewer,
  doc: StreamDoc,
  requestKey: RequestKey | undefined,
): Promise<Stream> {
  if (doc.idempotency?.fingerprint !== requestKey?.fingerprint) throw idempotencyMismatch();
  return answer(deps, viewer, doc);
}

/** Marks a stream live in Redis (heartbeats count from here) and tells followers, after the answer. */
async function goLive(deps: Deps, doc: StreamDoc, later: Later): Promise<void> {
  const streamId = doc._id.toHexString();
  // Best effort: a heartbeat that finds no live state asks MongoDB and restores it.
  await bestEffort(deps, "stream live state write", () =>
    runOp(
      deps.redis,
      markStreamLive(
        deps.keys.streamLive(streamId),
        { hostId: doc.userId.toHexString(), cohostIds: acceptedCohosts(doc) },
        deps.clock.now().getTime(),
        deps.config.streams.stateTtlSeconds,
      ),
    ),
  );
  later(() => announceLive(deps, streamId));
  later(() =>
    publishStreamEvent(deps, doc.conversationId.toHexString(), null, {
      type: "stream_status",
      streamId,
      status: "live",
      at: (doc.startedAt ?? deps.clock.now()).toISOString(),
    }),
  );
}

export function acceptedCohosts(doc: Pick<StreamDoc, "participants">): string[] {
  return doc.participants.filter((p) => p.state === "accepted").map((p) => p.userId.toHexString());
}

/** What the streamer's state change answers: the stream as they see it now. */
async function answer(deps: Deps, viewer: Viewer, doc: StreamDoc): Promise<Stream> {
  const [people, ingest] = await Promise.all([peopleOf(deps, [doc]), ingestFor(deps, doc)]);
  return { ...toStream(doc, people, null, viewer.id), ...(ingest ? { ingest } : {}) };
}

/**
 * POST /v1/streams/{id}/start: scheduled → live (a repeat answers the live stream). Waits: 1 MongoDB read, then
 * 1 MongoDB write (conditional on the state read) with the view's read in parallel, then 1 Redis write.
 */
export async function startStream(deps: Deps, viewer: Viewer, streamId: string, later: Later): Promise<Stream> {
  const doc = await ownStream(deps, viewer, streamId);
  const move = transition(doc.status, "start");
  if ("refused" in move) throw refused(move.refused);
  if (!move.changes) return answer(deps, viewer, doc);
  const now = deps.clock.now();
  const after: StreamDoc = {
    ...doc,
    status: "live",
    startedAt: now,
    liveNotice: { state: "pending", after: null, told: 0, updatedAt: now },
    updatedAt: now,
  };
  const [started, view] = await Promise.all([
    deps.db.liveStreams.updateOne(
      { _id: doc._id, status: "scheduled" },
      { $set: { status: "live", startedAt: now, liveNotice: after.liveNotice, updatedAt: now } },
    ),
    answer(deps, viewer, after),
  ]);
  if (started.matchedCount === 0) return decidedMeanwhile(deps, viewer, streamId, "start");
  await goLive(deps, after, later);
  return view;
}

/** Two state changes raced: the one that lost answers as its action would on the state the winner left. */
async function decidedMeanwhile(deps: Deps, viewer: Viewer, streamId: string, action: StreamAction): Promise<Stream> {
  const doc = await ownStream(deps, viewer, streamId);
  const move = transition(doc.status, action);
  if ("refused" in move) throw refused(move.refused);
  return answer(deps, viewer, doc);
}

/**
 * POST /v1/streams/{id}/end: live → ended, by the streamer. Waits: 1 MongoDB read with 1 Redis read (the
 * audience) in parallel, then 1 MongoDB write with the view's read in parallel, then 1 Redis write (the chat's
 * cached state dropped).
 */
export async function endOwnStream(deps: Deps, viewer: Viewer, streamId: string, later: Later): Promise<Stream> {
  const [doc, audience] = await Promise.all([ownStream(deps, viewer, streamId), audienceOf(deps, streamId)]);
  const move = transition(doc.status, "end");
  if ("refused" in move) throw refused(move.refused);
  if (!move.changes) return answer(deps, viewer, doc);
  const [ended, people] = await Promise.all([endStream(deps, doc, "streamer", later, audience), peopleOf(deps, [doc])]);
  if (!ended) return decidedMeanwhile(deps, viewer, streamId, "end");
  return toStream(ended, people, null, viewer.id);
}

/** A stream's live audience now (pruned as it is read). */
async function audienceOf(deps: Deps, streamId: string): Promise<StreamAudience | undefined> {
  const now = deps.clock.now().getTime();
  const lifetimeMs = deps.config.streams.viewerLifetimeSeconds * 1000;
  return (await runOp(deps.redis, streamAudiences([audienceKeysOf(deps, streamId)], now, lifetimeMs)))[0];
}

/**
 * Ends a live stream (the streamer, or stream-maintenance for an abandoned one): its viewer numbers are frozen
 * into the document and its chat turns read-only, in one transaction conditional on it still being live (null
 * when it was not: someone else ended it). Then, after the answer: the live state leaves Redis, the provider's
 * input is deleted, and the chat hears it ended.
 */
export async function endStream(
  deps: Deps,
  doc: StreamDoc,
  reason: StreamEndReason,
  later: Later,
  audienceRead?: StreamAudience,
): Promise<StreamDoc | null> {
  const streamId = doc._id.toHexString();
  const keys = audienceKeysOf(deps, streamId);
  const audience = audienceRead ?? (await audienceOf(deps, streamId));
  const now = deps.clock.now();
  const peakViewers = Math.max(doc.peakViewers, audience?.peak ?? 0);
  const uniqueViewers = Math.max(doc.uniqueViewers, audience?.unique ?? 0);
  const set = { status: "ended" as const, endedAt: now, endReason: reason, peakViewers, uniqueViewers, updatedAt: now };
  try {
    await deps.db.batch(
      [
        expectMatch(deps.db.liveStreams.inBatch.updateOne({ _id: doc._id, status: "live" }, { $set: set })),
        closeStreamChat(deps, doc.conversationId, now),
      ],
      { transaction: true },
    );
  } catch (error) {
    if (error instanceof PreconditionFailedError) return null;
    throw error;
  }
  const ended: StreamDoc = { ...doc, ...set };
  await forgetStreamChat(deps, doc.conversationId.toHexString());
  // Best effort: they expire on their own (STREAM_STATE_TTL_SECONDS); the document's numbers are the ones shown.
  later(() =>
    bestEffort(deps, "stream live state drop", () =>
      runOps(deps.redis, { drop: deleteKeys([keys.live, keys.viewers, keys.uniques]) }),
    ),
  );
  later(() => releaseVideo(deps, ended));
  later(() =>
    publishStreamEvent(deps, doc.conversationId.toHexString(), null, {
      type: "stream_status",
      streamId,
      status: "ended",
      at: now.toISOString(),
    }),
  );
  return ended;
}

/**
 * POST /v1/streams/{id}/cancel: a scheduled stream that will not happen. Waits: 1 MongoDB read, then 1 write with
 * the view's read in parallel, then 1 Redis write (the chat's cached state dropped).
 */
export async function cancelStream(deps: Deps, viewer: Viewer, streamId: string, later: Later): Promise<Stream> {
  const doc = await ownStream(deps, viewer, streamId);
  const move = transition(doc.status, "cancel");
  if ("refused" in move) throw refused(move.refused);
  if (!move.changes) return answer(deps, viewer, doc);
  const [cancelled, people] = await Promise.all([cancelScheduled(deps, doc, "streamer", later), peopleOf(deps, [doc])]);
  if (!cancelled) return decidedMeanwhile(deps, viewer, streamId, "cancel");
  return toStream(cancelled, people, null, viewer.id);
}

/** scheduled → cancelled (conditional on it still being scheduled: null when it was not), chat closed. */
export async function cancelScheduled(
  deps: Deps,
  doc: StreamDoc,
  reason: StreamEndReason,
  later: Later,
): Promise<StreamDoc | null> {
  const now = deps.clock.now();
  const set = { status: "cancelled" as const, cancelledAt: now, endReason: reason, updatedAt: now };
  try {
    await deps.db.batch(
      [
        expectMatch(deps.db.liveStreams.inBatch.updateOne({ _id: doc._id, status: "scheduled" }, { $set: set })),
        closeStreamChat(deps, doc.conversationId, now),
      ],
      { transaction: true },
    );
  } catch (error) {
    if (error instanceof PreconditionFailedError) return null;
    throw error;
  }
  const cancelled: StreamDoc = { ...doc, ...set };
  await forgetStreamChat(deps, doc.conversationId.toHexString());
  later(() => releaseVideo(deps, cancelled));
  return cancelled;
}

/**
 * Deletes a finished stream's live input (its key stops working) and records that it is gone. Best effort:
 * `stream-maintenance` retries every stream that is over with an input not yet deleted.
 */
export async function releaseVideo(deps: Deps, doc: Pick<StreamDoc, "_id" | "video">): Promise<boolean> {
  try {
    await liveVideoOf(deps).deleteInput(doc.video.liveInputId);
    await deps.db.liveStreams.updateOne(
      { _id: doc._id, status: { $in: ["ended", "cancelled"] }, "video.deletedAt": null },
      { $set: { "video.deletedAt": deps.clock.now() } },
    );
    return true;
  } catch (error) {
    if (!(error instanceof LiveVideoUnavailableError) && !(error instanceof StoreUnavailableError)) throw error;
    deps.log.warn("live input not deleted", { streamId: doc._id.toHexString(), error: error.message });
    return false;
  }
}

/** Deletes a live input nothing refers to (a create that failed after the provider's part). */
async function deleteInput(deps: Deps, video: LiveVideo, uid: string): Promise<void> {
  try {
    await video.deleteInput(uid);
  } catch (error) {
    if (!(error instanceof LiveVideoUnavailableError)) throw error;
    // Unreferenced and harmless; its key was never handed out.
    deps.log.warn("orphan live input not deleted", { uid, error: error.message });
  }
}
