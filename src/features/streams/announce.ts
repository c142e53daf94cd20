import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { notify } from "../notifications/service";

/**
 * Followers told "X is live", once per stream. Going live records the debt on the stream (`liveNotice`
 * pending); this walks the streamer's followers in follow order, STREAM_LIVE_NOTICE_BATCH at a time, and moves
 * the stream's marker past each batch told. The run after the answer usually finishes it; `stream-maintenance`
 * finishes what a crash left. A batch told twice (a crash between telling it and moving the marker, or two runs
 * at once) changes nothing: the notification groups by stream with the streamer as its only actor, and a
 * repeat by a counted actor is no new event. People who block or mute the streamer hear nothing.
 */
export async function announceLive(deps: Deps, streamId: string): Promise<{ told: number }> {
  const id = new ObjectId(streamId);
  const batch = deps.config.streams.liveNoticeBatch;
  let told = 0;
  for (let round = 0; round < 10_000; round++) {
    const doc = await deps.db.liveStreams.findOne(
      { _id: id, "liveNotice.state": "pending" },
      { projection: { userId: 1, title: 1, thumbnailUrl: 1, status: 1, liveNotice: 1 } },
    );
    const notice = doc?.liveNotice;
    if (!doc || !notice) return { told };
    const now = deps.clock.now();
    // Over before everyone heard: nobody else is told about a stream they can no longer watch.
    if (doc.status !== "live") {
      await deps.db.liveStreams.updateOne(
        { _id: id, "liveNotice.state": "pending" },
        { $set: { "liveNotice.state": "done", "liveNotice.updatedAt": now } },
      );
      return { told };
    }
    const followers = await deps.db.follows.find(
      { followingId: doc.userId, ...(notice.after ? { _id: { $gt: notice.after } } : {}) },
      { sort: { _id: 1 }, limit: batch, projection: { followerId: 1 } },
    );
    if (followers.length > 0) {
      await notify(deps, {
        type: "live",
        actorId: doc.userId,
        streamId: id,
        title: doc.title,
        imageUrl: doc.thumbnailUrl,
        recipientIds: followers.map((f) => f.followerId),
      });
    }
    const done = followers.length < batch;
    const moved = await deps.db.liveStreams.updateOne(
      // Only from where this run started: a run that lost the race stops.
      { _id: id, "liveNotice.state": "pending", "liveNotice.after": notice.after },
      {
        $set: {
          liveNotice: {
            state: done ? "done" : "pending",
            after: followers.at(-1)?._id ?? notice.after,
            told: notice.told + followers.length,
            updatedAt: now,
          },
        },
      },
    );
    if (moved.matchedCount === 0) return { told };
    told += followers.length;
    if (done) return { told };
  }
  return { told };
}
