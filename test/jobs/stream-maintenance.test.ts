import { describe, expect, it } from "vitest";
import { endStream } from "../../src/features/streams/lifecycle";
import { streamMaintenanceJob } from "../../src/features/streams/maintenance";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { runUntilDone } from "../support/jobs";
import { history, send } from "../support/messaging";
import { expectProblem } from "../support/problems";
import {
  beat,
  createdStream,
  encoder,
  eventually,
  getStream,
  liveInputOf,
  providerInput,
  scheduledFor,
} from "../support/streams";
import { crowd } from "../support/users";

const deps = testDeps();
const ABANDON_MS = deps.config.streams.abandonAfterSeconds * 1000;

/**
 * Makes a live stream look as if it went live, and its hosts were last seen, `agoMs` ago (the job runs on the
 * real clock, so other suites' fresh streams are never old enough to be touched).
 */
async function age(streamId: string, agoMs: number): Promise<void> {
  const then = new Date(Date.now() - agoMs);
  await deps.db.liveStreams.updateOne({ _id: new ObjectId(streamId) }, { $set: { startedAt: then, updatedAt: then } });
  await deps.redis.hset(deps.keys.streamLive(streamId), { hostSeenAt: then.getTime() });
}

const stored = (id: string) => deps.db.liveStreams.findOne({ _id: new ObjectId(id) });

describe("stream-maintenance", () => {
  it("ends live streams whose hosts went quiet and whose encoder is not sending; the rest stay live", async () => {
    const [a, b, c, viewer] = await crowd(4);
    const quiet = await createdStream(a);
    const beating = await createdStream(b);
    const encoding = await createdStream(c);
    await beat(viewer, quiet.id);
    for (const s of [quiet, beating, encoding]) await age(s.id, ABANDON_MS + 60_000);
    // b's app is still there; c streams from an encoder without the app.
    expect((await beat(b, beating.id)).status).toBe(204);
    await encoder(liveInputOf(encoding), "connected");

    const run = await runUntilDone(streamMaintenanceJob);
    expect(run.counts.ended).toBeGreaterThanOrEqual(1);
    expect(await stored(quiet.id)).toMatchObject({
      status: "ended",
      endReason: "abandoned",
      peakViewers: 1,
      uniqueViewers: 1,
    });
    expect((await stored(beating.id))?.status).toBe("live");
    expect((await stored(encoding.id))?.status).toBe("live");
    // Ended like any stream: its chat is read-only and its live input goes.
    expect(expectProblem(await send(viewer, quiet.conversationId, "hello?"), 409, "conflict").reason).toBe(
      "chat_closed",
    );
    await eventually(
      () => providerInput(liveInputOf(quiet)),
      (input) => input === null,
    );
    // A re-run changes nothing more.
    const before = await stored(quiet.id);
    await runUntilDone(streamMaintenanceJob);
    expect(await stored(quiet.id)).toEqual(before);
  });

  it("ends the live streams of streamers banned since they went live, never a shadow-banned one's", async () => {
    const [streamer, shadowed] = await crowd(2);
    const stream = await createdStream(streamer);
    const quietlyHidden = await createdStream(shadowed);
    await deps.db.users.updateOne({ _id: new ObjectId(streamer.id) }, { $set: { bannedAt: new Date() } });
    await deps.db.users.updateOne({ _id: new ObjectId(shadowed.id) }, { $set: { shadowBanned: true } });
    await runUntilDone(streamMaintenanceJob);
    expect(await stored(stream.id)).toMatchObject({ status: "ended", endReason: "streamer_unavailable" });
    // A shadow ban does not show itself: the stream goes on (others just do not see it).
    expect((await stored(quietlyHidden.id))?.status).toBe("live");
  });

  it("cancels scheduled streams never started STREAM_SCHEDULE_GRACE_HOURS after their time", async () => {
    const [streamer, viewer] = await crowd(2);
    const lapsed = await createdStream(streamer, { scheduledFor: scheduledFor(10) });
    const upcoming = await createdStream(streamer, { scheduledFor: scheduledFor(10) });
    const graceMs = deps.config.streams.scheduleGraceHours * 3_600_000;
    await deps.db.liveStreams.updateOne(
      { _id: new ObjectId(lapsed.id) },
      { $set: { scheduledFor: new Date(Date.now() - graceMs - 60_000) } },
    );
    await runUntilDone(streamMaintenanceJob);
    expect(await stored(lapsed.id)).toMatchObject({ status: "cancelled", endReason: "schedule_lapsed" });
    expect((await stored(upcoming.id))?.status).toBe("scheduled");
    expectProblem(await getStream(viewer, lapsed.id), 404, "not_found");
    await eventually(
      () => providerInput(liveInputOf(lapsed)),
      (input) => input === null,
    );
  });

  it("deletes the live input of a stream that ended while the provider could not be told", async () => {
    const [streamer] = await crowd(1);
    const stream = await createdStream(streamer);
    const doc = await stored(stream.id);
    // Ended with its after-answer work lost (as if the isolate died right after the write).
    await endStream(deps, doc as NonNullable<typeof doc>, "streamer", () => {});
    const old = new Date(Date.now() - 10 * 60_000);
    await deps.db.liveStreams.updateOne({ _id: new ObjectId(stream.id) }, { $set: { updatedAt: old } });
    expect(await providerInput(liveInputOf(stream))).not.toBeNull();
    await runUntilDone(streamMaintenanceJob);
    expect(await providerInput(liveInputOf(stream))).toBeNull();
    expect((await stored(stream.id))?.video.deletedAt).not.toBeNull();
    expect((await history(streamer, stream.conversationId)).status).toBe(200);
  });

  it("finishes telling followers a stream is live when a crash stopped the telling", async () => {
    const [streamer, ...followers] = await crowd(4);
    for (const f of followers) await call("PUT", `/v1/users/${streamer.id}/follow`, { token: f.accessToken });
    const stream = await createdStream(streamer);
    await eventually(
      async () => (await stored(stream.id))?.liveNotice?.state,
      (state) => state === "done",
    );
    // As if the process died before anyone was told: the debt is still on the stream, and nobody heard.
    await deps.db.notifications.deleteMany({ aggregationKey: `live:${stream.id}` });
    await deps.db.liveStreams.updateOne(
      { _id: new ObjectId(stream.id) },
      {
        $set: {
          liveNotice: { state: "pending", after: null, told: 0, updatedAt: new Date(Date.now() - 10 * 60_000) },
        },
      },
    );
    await runUntilDone(streamMaintenanceJob);
    const told = await deps.db.notifications.find({ aggregationKey: `live:${stream.id}` });
    expect(told.map((n) => n.userId.toHexString()).sort()).toEqual(followers.map((f) => f.id).sort());
    expect((await stored(stream.id))?.liveNotice).toMatchObject({ state: "done", told: 3 });
  });
});
