import { bestEffort } from "../../core/best-effort";
import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { StreamDoc, StreamModeratorDoc, StreamParticipantDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import { runOp, setStreamCohosts } from "../../platform/redis-ops";
import type { Later } from "../messaging/events";
import { type ChatStaff, forgetStreamChat, muteInStreamChat, restaffStreamChat } from "../messaging/stream-chat";
import { notify } from "../notifications/service";
import { relationsFor } from "../relations/service";
import { acceptedCohosts, loadStream, noSuchStream } from "./lifecycle";
import { streamerVisible } from "./rules";
import type { Stream } from "./schema";
import { PERSON_FIELDS, peopleOf, toStream } from "./views";

/**
 * A stream's staff: co-hosts (seed 003's `participants`: the streamer invites, the invitee accepts, either ends
 * it) and chat moderators (the streamer appoints them). Both hold a managing seat in the stream's chat — they
 * remove messages and mute viewers for the stream — written in the same transaction as the stream, which is
 * guarded by `staffVersion`, so two changes at once never lose one (the loser is decided again on the winner's
 * result). Staff changes end with the stream.
 */

/** Staff changes come from a handful of people; each attempt re-reads the stream, so a few always get through. */
const ATTEMPTS = 8;

type Staff = { participants: StreamParticipantDoc[]; moderators: StreamModeratorDoc[] };

/**
 * Applies `change` to the stream's staff (decided on the stream as read; `null`: nothing to change) with its chat
 * seats, retrying on a concurrent change. Returns the stream as it now is.
 */
async function changeStaff(deps: Deps, streamId: string, change: (doc: StreamDoc) => Staff | null): Promise<StreamDoc> {
  for (let attempt = 1; ; attempt++) {
    const doc = await deps.db.liveStreams.findOne({ _id: new ObjectId(streamId) });
    if (!doc) throw noSuchStream();
    if (doc.status !== "scheduled" && doc.status !== "live") {
      throw ApiError.conflict("stream_over", "The stream has ended or was cancelled.");
    }
    const next = change(doc);
    if (!next) return doc;
    const now = deps.clock.now();
    const host: ChatStaff = { userId: doc.userId, since: doc.createdAt };
    const admins: ChatStaff[] = [
      ...next.participants
        .filter((p) => p.state === "accepted")
        .map((p) => ({ userId: p.userId, since: p.acceptedAt ?? now })),
      ...next.moderators.map((m) => ({ userId: m.userId, since: m.appointedAt })),
    ];
    try {
      await deps.db.batch(
        [
          expectMatch(
            deps.db.liveStreams.inBatch.updateOne(
              { _id: doc._id, staffVersion: doc.staffVersion, status: { $in: ["scheduled", "live"] } },
              { $set: { ...next, updatedAt: now }, $inc: { staffVersion: 1 } },
            ),
          ),
          restaffStreamChat(deps, doc.conversationId, host, admins, now),
        ],
        { transaction: true },
      );
    } catch (error) {
      if (error instanceof PreconditionFailedError && attempt < ATTEMPTS) continue;
      if (error instanceof PreconditionFailedError) {
        throw ApiError.conflict("stream_changed", "The stream changed meanwhile; try again.");
      }
      throw error;
    }
    const after: StreamDoc = { ...doc, ...next, staffVersion: doc.staffVersion + 1, updatedAt: now };
    await forgetStreamChat(deps, doc.conversationId.toHexString());
    if (after.status === "live") {
      // Best effort: until the next restore a co-host's beats count them as a viewer; nothing else depends on it.
      await bestEffort(deps, "stream co-hosts mirror", () =>
        runOp(deps.redis, setStreamCohosts(deps.keys.streamLive(streamId), acceptedCohosts(after))),
      );
    }
    return after;
  }
}

/** The streamer's own stream, visible to the caller (404) and theirs (403). */
async function asStreamer(deps: Deps, viewer: Viewer, streamId: string): Promise<StreamDoc> {
  const { doc } = await loadStream(deps, viewer, streamId);
  if (doc.userId.toHexString() !== viewer.id) throw ApiError.forbidden("Only the streamer can do this.");
  return doc;
}

/** Someone the streamer may bring onto their stream: a visible person neither blocks (404 otherwise). */
async function eligiblePerson(deps: Deps, viewer: Viewer, userId: string): Promise<{ username: string }> {
  if (userId === viewer.id) throw ApiError.invalidField("userId", "the streamer already runs the stream");
  const [person, relations] = await Promise.all([
    deps.db.users.findOne({ _id: new ObjectId(userId) }, { projection: PERSON_FIELDS }),
    relationsFor(deps, viewer),
  ]);
  if (!person || !streamerVisible(person, deps.clock.now()) || relations.blockedWith(userId)) {
    throw ApiError.notFound("No such user.");
  }
  return person;
}

async function answer(deps: Deps, viewer: Viewer, doc: StreamDoc): Promise<Stream> {
  return toStream(doc, await peopleOf(deps, [doc]), null, viewer.id);
}

/** PUT /v1/streams/{id}/cohosts/{userId}: the streamer invites a co-host (idempotent); the invitee is told. */
export async function inviteCohost(
  deps: Deps,
  viewer: Viewer,
  streamId: string,
  userId: string,
  later: Later,
): Promise<Stream> {
  const stream = await asStreamer(deps, viewer, streamId);
  await eligiblePerson(deps, viewer, userId);
  const max = deps.config.streams.maxCohosts;
  let invited = false;
  const after = await changeStaff(deps, streamId, (doc) => {
    if (doc.participants.some((p) => p.userId.toHexString() === userId)) return null;
    if (doc.participants.length >= max) {
      throw ApiError.conflict("cohost_limit", `A stream has at most ${max} co-hosts.`);
    }
    invited = true;
    const invitation: StreamParticipantDoc = {
      userId: new ObjectId(userId),
      state: "invited",
      invitedAt: deps.clock.now(),
      acceptedAt: null,
    };
    return { participants: [...doc.participants, invitation], moderators: doc.moderators };
  });
  if (invited) {
    later(() =>
      notify(deps, {
        type: "system",
        recipientId: userId,
        title: `You are invited to co-host “${stream.title}”`,
        aggregationKey: `cohost:${streamId}`,
        actionType: "open_screen",
        actionPayload: { screen: "stream", streamId },
      }),
    );
  }
  return answer(deps, viewer, after);
}

/** POST /v1/streams/{id}/cohosts/accept: the invitee becomes a co-host (idempotent; no invitation: 404). */
export async function acceptCohost(deps: Deps, viewer: Viewer, streamId: string): Promise<Stream> {
  await loadStream(deps, viewer, streamId);
  const after = await changeStaff(deps, streamId, (doc) => {
    const mine = doc.participants.find((p) => p.userId.toHexString() === viewer.id);
    if (!mine) throw ApiError.notFound("No invitation to co-host this stream.");
    if (mine.state === "accepted") return null;
    const now = deps.clock.now();
    return {
      participants: doc.participants.map((p) =>
        p === mine ? { ...p, state: "accepted" as const, acceptedAt: now } : p,
      ),
      moderators: doc.moderators,
    };
  });
  return answer(deps, viewer, after);
}

/**
 * DELETE /v1/streams/{id}/cohosts/{userId}: the streamer removes a co-host or withdraws an invitation; the
 * co-host (or invitee) leaves or declines. Anyone else: 403. Idempotent.
 */
export async function removeCohost(deps: Deps, viewer: Viewer, streamId: string, userId: string): Promise<void> {
  const { doc } = await loadStream(deps, viewer, streamId);
  if (doc.userId.toHexString() !== viewer.id && viewer.id !== userId) {
    throw ApiError.forbidden("Only the streamer removes co-hosts; a co-host can leave.");
  }
  await changeStaff(deps, streamId, (current) => {
    if (!current.participants.some((p) => p.userId.toHexString() === userId)) return null;
    return {
      participants: current.participants.filter((p) => p.userId.toHexString() !== userId),
      moderators: current.moderators,
    };
  });
}

/** PUT /v1/streams/{id}/moderators/{userId}: the streamer appoints a chat moderator (idempotent). */
export async function appointModerator(deps: Deps, viewer: Viewer, streamId: string, userId: string): Promise<void> {
  await asStreamer(deps, viewer, streamId);
  await eligiblePerson(deps, viewer, userId);
  const max = deps.config.streams.maxModerators;
  await changeStaff(deps, streamId, (doc) => {
    if (doc.moderators.some((m) => m.userId.toHexString() === userId)) return null;
    if (doc.moderators.length >= max) {
      throw ApiError.conflict("moderator_limit", `A stream has at most ${max} moderators.`);
    }
    const moderator: StreamModeratorDoc = { userId: new ObjectId(userId), appointedAt: deps.clock.now() };
    return { participants: doc.participants, moderators: [...doc.moderators, moderator] };
  });
}

/** DELETE /v1/streams/{id}/moderators/{userId}: the streamer dismisses a moderator (idempotent). */
export async function dismissModerator(deps: Deps, viewer: Viewer, streamId: string, userId: string): Promise<void> {
  await asStreamer(deps, viewer, streamId);
  await changeStaff(deps, streamId, (doc) => {
    if (!doc.moderators.some((m) => m.userId.toHexString() === userId)) return null;
    return {
      participants: doc.participants,
      moderators: doc.moderators.filter((m) => m.userId.toHexString() !== userId),
    };
  });
}

/**
 * PUT / DELETE /v1/streams/{id}/chat-mutes/{userId}: the streamer, a co-host or a moderator mutes a viewer for
 * this stream's chat, or lifts it (idempotent). The viewer still watches and reads; their sends are refused (403).
 */
export async function setChatMute(
  deps: Deps,
  viewer: Viewer,
  streamId: string,
  userId: string,
  muted: boolean,
  later: Later,
): Promise<void> {
  const { doc } = await loadStream(deps, viewer, streamId);
  if (doc.status !== "scheduled" && doc.status !== "live") {
    throw ApiError.conflict("stream_over", "The stream has ended: its chat is read-only.");
  }
  await muteInStreamChat(deps, viewer, doc.conversationId.toHexString(), userId, muted, later);
}

/**
 * Takes a person off a stream's staff whatever its state (account erasure): their co-host and moderator entries
 * and their chat seat go, guarded like every staff change. Idempotent.
 */
export async function dropFromStaff(deps: Deps, streamId: ObjectId, userId: string): Promise<void> {
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const doc = await deps.db.liveStreams.findOne({ _id: streamId });
    if (!doc) return;
    const participants = doc.participants.filter((p) => p.userId.toHexString() !== userId);
    const moderators = doc.moderators.filter((m) => m.userId.toHexString() !== userId);
    if (participants.length === doc.participants.length && moderators.length === doc.moderators.length) return;
    const now = deps.clock.now();
    const admins: ChatStaff[] = [
      ...participants
        .filter((p) => p.state === "accepted")
        .map((p) => ({ userId: p.userId, since: p.acceptedAt ?? now })),
      ...moderators.map((m) => ({ userId: m.userId, since: m.appointedAt })),
    ];
    try {
      await deps.db.batch(
        [
          expectMatch(
            deps.db.liveStreams.inBatch.updateOne(
              { _id: doc._id, staffVersion: doc.staffVersion },
              { $set: { participants, moderators, updatedAt: now }, $inc: { staffVersion: 1 } },
            ),
          ),
          restaffStreamChat(deps, doc.conversationId, { userId: doc.userId, since: doc.createdAt }, admins, now),
        ],
        { transaction: true },
      );
    } catch (error) {
      if (error instanceof PreconditionFailedError) continue;
      throw error;
    }
    await forgetStreamChat(deps, doc.conversationId.toHexString());
    return;
  }
  throw new Error(`stream ${streamId.toHexString()} kept changing while its staff was being updated`);
}
