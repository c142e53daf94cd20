import { bestEffort } from "../../core/best-effort";
import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { StreamDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { Filter } from "../../platform/mongo/client";
import { paginate } from "../../platform/mongo/paginate";
import {
  getValue,
  type RedisBatch,
  readOrMiss,
  runOp,
  type StreamAudience,
  setValue,
  streamAudiences,
} from "../../platform/redis-ops";
import { pendingRelationsRead, relationsAfter, relationsFor } from "../relations/service";
import { ingestFor, loadStream } from "./lifecycle";
import {
  decodeLiveCursor,
  encodeLiveCursor,
  type LivePosition,
  pageLive,
  streamerVisible,
  type ViewerRole,
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
  const none = docs.map(() => ({ live: false, current: 0, peak: 0, unique: 0, hostSeenAt: 0 }));
  if (docs.length === 0) return [];
  const read = await bestEffort(deps, "stream audiences read", () =>
    runOp(
      deps.redis,
      streamAudiences(
        docs.map((d) => audienceKeysOf(deps, d._id.toHexString())),
        deps.clock.now().getTime(),
        deps.config.streams.viewerLifetimeSeconds * 1000,
      ),
    ),
  );
  return read ?? none;
}

/**
 * One ranked live stream as the directory keeps it for everyone: its public view, with what each viewer's
 * filter needs (the streamer, whether others may see them, the staff a viewer's role comes from).
 */
interface DirectoryEntry {
  stream: Stream;
  streamerId: string;
  /** False for a streamer others may not see (banned, shadow-banned): listed to that streamer only. */
  public: boolean;
  cohostIds: string[];
  moderatorIds: string[];
  position: LivePosition;
}

interface Directory {
  entries: DirectoryEntry[];
}

/**
 * The live streams ranked for everyone: the STREAM_LIVE_LIST_MAX most recently started, with their streamers
 * and current audiences. Waits: 1 MongoDB (the streams), then 1 MongoDB (the people) with 1 Redis (audiences).
 */
async function rankedDirectory(deps: Deps): Promise<Directory> {
  const docs = await deps.db.liveStreams.find(
    { status: "live" },
    { sort: { startedAt: -1, _id: -1 }, limit: deps.config.streams.liveListMax },
  );
  const [people, audiences] = await Promise.all([peopleOf(deps, docs), audiencesOf(deps, docs)]);
  const now = deps.clock.now();
  const entries = docs.map((doc, i): DirectoryEntry => {
    const audience = audiences[i] ?? null;
    const streamerId = doc.userId.toHexString();
    return {
      stream: toStream(doc, people, audience, undefined),
      streamerId,
      public: streamerVisible(people.get(streamerId), now),
      cohostIds: doc.participants.filter((p) => p.state === "accepted").map((p) => p.userId.toHexString()),
      moderatorIds: doc.moderators.map((m) => m.userId.toHexString()),
      position: {
        viewers: audience?.live ? audience.current : 0,
        startedAt: doc.startedAt?.getTime() ?? 0,
        id: doc._id.toHexString(),
      },
    };
  });
  return { entries };
}

/**
 * GET /v1/streams/live: the live streams the caller may see, ranked by current viewers (pruned as they are read)
 * and then start time, newest first. The ranked directory is everyone's (cached STREAM_LIVE_CACHE_TTL_SECONDS in
 * `streams:live`, read in the request's first Redis batch with the rate limit and the caller's blocks and mutes);
 * each caller's filter applies after the read: streams of people they are blocked with or mute are left out, and
 * those of banned and shadow-banned streamers show to their streamer alone. Waits: a cached directory costs
 * 1 Redis round trip and no MongoDB call; ranking it anew, 2 MongoDB waits and 1 Redis wait more.
 */
export async function liveStreams(
  deps: Deps,
  read: RedisBatch,
  viewer: Viewer | undefined,
  query: LiveStreamsQuery,
): Promise<StreamPage> {
  const cursor = query.cursor ? decodeLiveCursor(query.cursor) : null;
  const ttl = deps.config.streams.liveCacheTtlSeconds;
  const key = deps.keys.streamDirectory();
  const first = await readOrMiss(
    read,
    { ...(ttl > 0 ? { cached: getValue<Directory>(key) } : {}), ...pendingRelationsRead(deps, viewer) },
    deps.log,
  );
  const relations = await relationsAfter(deps, viewer, first);
  let directory: Directory | null = (first as { cached?: Directory | null }).cached ?? null;
  if (!directory) {
    directory = await rankedDirectory(deps);
    const fresh = directory;
    if (ttl > 0) await bestEffort(deps, "live directory fill", () => runOp(deps.redis, setValue(key, fresh, ttl)));
  }
  const listed = directory.entries.filter((e) => {
    if (query.category && e.stream.category !== query.category) return false;
    // The caller's own stream shows even where others cannot see it (a shadow ban stays unnoticed).
    if (viewer?.id === e.streamerId) return true;
    return e.public && !relations.blockedWith(e.streamerId) && !relations.isMuting(e.streamerId);
  });
  const page = pageLive(listed, query.limit, cursor);
  return {
    items: page.items.map((e) => (viewer ? { ...e.stream, viewer: { role: roleIn(e, viewer.id) } } : e.stream)),
    nextCursor: page.next ? encodeLiveCursor(page.next) : null,
  };
}

function roleIn(entry: DirectoryEntry, viewerId: string): ViewerRole {
  if (entry.streamerId === viewerId) return "streamer";
  if (entry.cohostIds.includes(viewerId)) return "cohost";
  if (entry.moderatorIds.includes(viewerId)) return "moderator";
  return "viewer";
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
