import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { StreamDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { Filter } from "../../platform/mongo/client";
import { paginate } from "../../platform/mongo/paginate";
import { runOp, type StreamAudience, streamAudiences } from "../../platform/redis-ops";
import { relationsFor } from "../relations/service";
import { ingestFor, loadStream } from "./lifecycle";
import {
  canSeeStream,
  decodeLiveCursor,
  encodeLiveCursor,
  type LivePosition,
  pageLive,
  streamerVisible,
} from "./rules";
import type { LiveStreamsQuery, Stream, StreamPage, UserStreamsQuery } from "./schema";
import { audienceKeysOf, PERSON_FIELDS, peopleOf, toStream } from "./views";

/**
 * Finding streams: one stream, the live directory (most current viewers first, then the most recently started)
 * and a person's streams. Blocks hide streams both ways (404), the streams of banned and shadow-banned streamers
 * show to nobody else, and a muted streamer stays out of the muter's directory (a direct link still opens).
 */

/** GET /v1/streams/{id}: the streamer also gets the ingest credentials (from the provider) until it is over. */
export async function getStream(deps: Deps, viewer: Viewer | undefined, streamId: string): Promise<Stream> {
  const { doc, people, audience } = await loadStream(deps, viewer, streamId);
  const view = toStream(doc, people, audience, viewer?.id);
  if (viewer?.id !== doc.userId.toHexString()) return view;
  const ingest = await ingestFor(deps, doc);
  return ingest ? { ...view, ingest } : view;
}

/** Current audiences of these streams, or zeros when Redis cannot say (the directory still answers). */
async function audiencesOf(deps: Deps, docs: StreamDoc[]): Promise<StreamAudience[]> {
  if (docs.length === 0) return [];
  try {
    return await runOp(
      deps.redis,
      streamAudiences(
        docs.map((d) => audienceKeysOf(deps, d._id.toHexString())),
        deps.clock.now().getTime(),
        deps.config.streams.viewerLifetimeSeconds * 1000,
      ),
    );
  } catch (error) {
    deps.log.warn("stream audiences unreadable", { error: String(error) });
    return docs.map(() => ({ live: false, current: 0, peak: 0, unique: 0, hostSeenAt: 0 }));
  }
}

/**
 * GET /v1/streams/live: the live streams the caller may see, ranked by current viewers (pruned as they are read)
 * and then start time, newest first. The ranking covers the STREAM_LIVE_LIST_MAX most recently started live
 * streams. Waits: 1 MongoDB (the live streams), then 1 MongoDB (their streamers) with 1 Redis (their audiences)
 * in parallel.
 */
export async function liveStreams(
  deps: Deps,
  viewer: Viewer | undefined,
  query: LiveStreamsQuery,
): Promise<StreamPage> {
  const cursor = query.cursor ? decodeLiveCursor(query.cursor) : null;
  const filter: Filter = { status: "live", ...(query.category ? { category: query.category } : {}) };
  const [docs, relations] = await Promise.all([
    deps.db.liveStreams.find(filter, { sort: { startedAt: -1, _id: -1 }, limit: deps.config.streams.liveListMax }),
    relationsFor(deps, viewer),
  ]);
  const [people, audiences] = await Promise.all([peopleOf(deps, docs), audiencesOf(deps, docs)]);
  const now = deps.clock.now();
  const listed = docs.flatMap((doc, i) => {
    const streamerId = doc.userId.toHexString();
    const visible = canSeeStream({
      stream: doc,
      streamer: people.get(streamerId),
      viewerId: viewer?.id,
      blockedWith: (id) => relations.blockedWith(id),
      now,
    });
    // A stream of the caller's own is listed even when others cannot see it (a shadow ban stays unnoticed).
    const listedForViewer = viewer?.id === streamerId || (visible && !relations.isMuting(streamerId));
    if (!visible || !listedForViewer) return [];
    const audience = audiences[i] ?? null;
    const position: LivePosition = {
      viewers: audience?.live ? audience.current : 0,
      startedAt: doc.startedAt?.getTime() ?? 0,
      id: doc._id.toHexString(),
    };
    return [{ doc, audience, position }];
  });
  const page = pageLive(listed, query.limit, cursor);
  return {
    items: page.items.map((e) => toStream(e.doc, people, e.audience, viewer?.id)),
    nextCursor: page.next ? encodeLiveCursor(page.next) : null,
  };
}

/**
 * GET /v1/users/{id}/streams: a person's streams, newest first (`status` to narrow); their cancelled ones only to
 * themselves. A person the caller may not see is a 404. Waits: 1 MongoDB (the person and the page, in parallel),
 * then 1 MongoDB (co-hosts) with 1 Redis (live audiences) in parallel.
 */
export async function userStreams(
  deps: Deps,
  viewer: Viewer | undefined,
  userId: string,
  query: UserStreamsQuery,
): Promise<StreamPage> {
  const own = viewer?.id === userId;
  if (!own && query.status === "cancelled") {
    throw ApiError.invalidField("status", "only the streamer sees their cancelled streams");
  }
  const id = new ObjectId(userId);
  const filter: Filter = {
    userId: id,
    ...(query.status ? { status: query.status } : own ? {} : { status: { $ne: "cancelled" } }),
  };
  const [person, relations, page] = await Promise.all([
    deps.db.users.findOne({ _id: id }, { projection: PERSON_FIELDS }),
    relationsFor(deps, viewer),
    paginate(deps.db.liveStreams, { filter, order: { direction: "desc" }, limit: query.limit, cursor: query.cursor }),
  ]);
  const now = deps.clock.now();
  if (!person || (!own && (!streamerVisible(person, now) || relations.blockedWith(userId)))) {
    throw ApiError.notFound("No such user.");
  }
  const live = page.items.filter((d) => d.status === "live");
  const [people, audiences] = await Promise.all([peopleOf(deps, page.items), audiencesOf(deps, live)]);
  const byStream = new Map(live.map((d, i) => [d._id.toHexString(), audiences[i] ?? null]));
  return {
    items: page.items.map((doc) => toStream(doc, people, byStream.get(doc._id.toHexString()) ?? null, viewer?.id)),
    nextCursor: page.nextCursor,
  };
}
