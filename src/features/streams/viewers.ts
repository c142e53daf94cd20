import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { Deps } from "../../deps";
import { markStreamLive, runOp, runOps, streamHeartbeat } from "../../platform/redis-ops";
import { relationsFor } from "../relations/service";
import { acceptedCohosts, loadStream, noSuchStream } from "./lifecycle";
import { audienceKeysOf } from "./views";

/**
 * POST /v1/streams/{id}/heartbeat, every 15 s while watching. Current viewers are the distinct signed-in
 * viewers whose last beat is younger than STREAM_VIEWER_LIFETIME_SECONDS: one sorted set per stream (viewer →
 * last beat), pruned whenever it is read, so a viewer who left stops counting without saying so, and a viewer
 * on three devices is one member. The peak and everyone who ever watched are kept beside it and frozen into the
 * stream when it ends. A host's beat (streamer, co-host) says they are still there instead (see abandonment in
 * stream-maintenance).
 *
 * Waits: 1 Redis (the beat, one script; the blocks it checks came with the rate limit), 0 MongoDB. Only when
 * Redis does not hold the stream as live does it ask MongoDB (a stream not live is a 409; Redis having lost a
 * live stream's state restores it with this beat).
 */
export async function heartbeat(deps: Deps, viewer: Viewer, streamId: string): Promise<void> {
  const relations = await relationsFor(deps, viewer);
  const { viewerLifetimeSeconds, stateTtlSeconds } = deps.config.streams;
  const beat = streamHeartbeat(audienceKeysOf(deps, streamId), {
    viewerId: viewer.id,
    nowMs: deps.clock.now().getTime(),
    lifetimeMs: viewerLifetimeSeconds * 1000,
    ttlSeconds: stateTtlSeconds,
    blockedIds: relations.blockedIds(),
  });
  const first = await runOp(deps.redis, beat);
  if (first.kind === "viewer" || first.kind === "host") return;
  if (first.kind === "blocked") throw noSuchStream();
  const { doc } = await loadStream(deps, viewer, streamId);
  if (doc.status !== "live") {
    throw ApiError.conflict("stream_not_live", "The stream is not live: there is nothing to watch.");
  }
  const again = await runOps(deps.redis, {
    live: markStreamLive(
      deps.keys.streamLive(streamId),
      { hostId: doc.userId.toHexString(), cohostIds: acceptedCohosts(doc) },
      deps.clock.now().getTime(),
      stateTtlSeconds,
    ),
    beat,
  });
  if (again.beat.kind === "blocked") throw noSuchStream();
}
