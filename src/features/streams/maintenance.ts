import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { GemTransactionDoc, StreamDoc } from "../../db";
import type { Deps } from "../../deps";
import type { ObjectId } from "../../platform/ids";
import { isEncoderConnected, LiveVideoUnavailableError } from "../../platform/live-video";
import { runOp, streamAudiences } from "../../platform/redis-ops";
import { HOUR_MS } from "../../platform/time";
import { transferOf } from "../gems/gifts";
import type { Later } from "../messaging/events";
import { announceLive } from "./announce";
import { recordStreamGift } from "./gifts";
import { cancelScheduled, endStream, liveVideoOf, releaseVideo } from "./lifecycle";
import { isAbandoned, streamerVisible } from "./rules";
import { audienceKeysOf, peopleOf } from "./views";

/**
 * `stream-maintenance` (every 2 minutes): what no request is there to do, and what a crash left undone.
 * 1. Live streams whose hosts stopped heartbeating STREAM_ABANDON_AFTER_SECONDS ago, and whose encoder the
 *    provider does not see connected, end (`abandoned`); live streams of streamers banned or gone end too.
 * 2. Scheduled streams still not started STREAM_SCHEDULE_GRACE_HOURS after their time are cancelled.
 * 3. Live inputs of streams that are over and not yet deleted at the provider are deleted.
 * 4. "X is live" notices a crash left half-told are finished.
 * 5. Stream gifts whose ledger transfer stands but whose stream record a crash skipped are recorded (once: the
 *    record is unique per transfer).
 * Every step is conditional on the state it read, so re-runs and overlapping requests do nothing twice; each
 * works in batches of STREAM_MAINTENANCE_BATCH while the run's time budget lasts.
 */
export async function maintainStreams(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const margin = Math.min(2_000, deps.config.jobs.timeBudgetMs / 4);
  const run: RunState = { liveCursor: null, giftCursor: null };
  const steps: [string, Step][] = [
    ["ended", endAbandoned],
    ["cancelled", cancelLapsed],
    ["inputs_deleted", deleteInputs],
    ["notices_finished", finishNotices],
    ["gifts_recorded", recordGifts],
  ];
  for (const [name, step] of steps) {
    for (;;) {
      if (ctx.timeLeft() <= margin) return { more: true };
      const pending: Promise<unknown>[] = [];
      const { done, count } = await step(deps, (work) => pending.push(work()), run);
      await Promise.all(pending);
      ctx.count(name, count);
      await ctx.checkpoint(name);
      if (done) break;
    }
  }
  return { more: false };
}

/** Where the paged steps are within one run. */
interface RunState {
  liveCursor: ObjectId | null;
  giftCursor: ObjectId | null;
}

type Step = (deps: Deps, later: Later, run: RunState) => Promise<{ done: boolean; count: number }>;

/** Work an answer left to run after it, given time to finish before a run takes it over. */
const settled = (deps: Deps) =>
  new Date(deps.clock.now().getTime() - deps.config.gems.reconcile.pendingGraceSeconds * 1000);

async function endAbandoned(deps: Deps, later: Later, run: RunState): Promise<{ done: boolean; count: number }> {
  const { maintenanceBatch, abandonAfterSeconds, viewerLifetimeSeconds } = deps.config.streams;
  const now = deps.clock.now();
  const live = await deps.db.liveStreams.find(
    { status: "live", ...(run.liveCursor ? { _id: { $gt: run.liveCursor } } : {}) },
    { sort: { _id: 1 }, limit: maintenanceBatch },
  );
  run.liveCursor = live.length === maintenanceBatch ? (live.at(-1)?._id ?? null) : null;
  if (live.length === 0) return { done: true, count: 0 };
  const [people, audiences] = await Promise.all([
    peopleOf(deps, live),
    runOp(
      deps.redis,
      streamAudiences(
        live.map((d) => audienceKeysOf(deps, d._id.toHexString())),
        now.getTime(),
        viewerLifetimeSeconds * 1000,
      ),
    ),
  ]);
  let ended = 0;
  for (const [i, doc] of live.entries()) {
    // Banned or gone, not shadow-banned: a shadow ban must not show itself by ending the stream.
    const person = people.get(doc.userId.toHexString());
    const gone = !person || !streamerVisible({ ...person, shadowBanned: false }, now);
    const quiet =
      !gone &&
      isAbandoned({
        startedAt: doc.startedAt,
        hostSeenAt: audiences[i]?.hostSeenAt ?? 0,
        now,
        abandonAfterMs: abandonAfterSeconds * 1000,
      });
    if (!gone && !quiet) continue;
    // Hosts who stream from an encoder without the app do not heartbeat: the provider says whether it sends.
    if (quiet && (await encoderConnected(deps, doc))) continue;
    if (await endStream(deps, doc, gone ? "streamer_unavailable" : "abandoned", later)) ended += 1;
  }
  return { done: run.liveCursor === null, count: ended };
}

async function encoderConnected(deps: Deps, doc: StreamDoc): Promise<boolean> {
  try {
    const input = await liveVideoOf(deps).getInput(doc.video.liveInputId);
    return input !== null && isEncoderConnected(input.status);
  } catch (error) {
    if (!(error instanceof LiveVideoUnavailableError)) throw error;
    // Unsure is not abandoned: the next run asks again.
    deps.log.warn("live input status unreadable", { streamId: doc._id.toHexString(), error: error.message });
    return true;
  }
}

async function cancelLapsed(deps: Deps, later: Later): Promise<{ done: boolean; count: number }> {
  const { maintenanceBatch, scheduleGraceHours } = deps.config.streams;
  const before = new Date(deps.clock.now().getTime() - scheduleGraceHours * HOUR_MS);
  const lapsed = await deps.db.liveStreams.find(
    { status: "scheduled", scheduledFor: { $lt: before } },
    { sort: { scheduledFor: 1 }, limit: maintenanceBatch },
  );
  let cancelled = 0;
  for (const doc of lapsed) if (await cancelScheduled(deps, doc, "schedule_lapsed", later)) cancelled += 1;
  return { done: lapsed.length < maintenanceBatch, count: cancelled };
}

async function deleteInputs(deps: Deps): Promise<{ done: boolean; count: number }> {
  const batch = deps.config.streams.maintenanceBatch;
  const due = await deps.db.liveStreams.find(
    { status: { $in: ["ended", "cancelled"] }, "video.deletedAt": null, updatedAt: { $lt: settled(deps) } },
    { projection: { video: 1 }, limit: batch },
  );
  let deleted = 0;
  for (const doc of due) if (await releaseVideo(deps, doc)) deleted += 1;
  // Inputs the provider would not delete now wait for the next run rather than spin this one.
  return { done: due.length < batch || deleted === 0, count: deleted };
}

async function finishNotices(deps: Deps): Promise<{ done: boolean; count: number }> {
  const batch = deps.config.streams.maintenanceBatch;
  const due = await deps.db.liveStreams.find(
    { "liveNotice.state": "pending", "liveNotice.updatedAt": { $lt: settled(deps) } },
    { projection: { _id: 1 }, limit: batch },
  );
  let finished = 0;
  for (const doc of due) {
    await announceLive(deps, doc._id.toHexString());
    finished += 1;
  }
  return { done: due.length < batch, count: finished };
}

async function recordGifts(deps: Deps, _later: Later, run: RunState): Promise<{ done: boolean; count: number }> {
  const batch = deps.config.streams.maintenanceBatch;
  const since = new Date(deps.clock.now().getTime() - deps.config.gems.reconcile.lookbackHours * HOUR_MS);
  const debits: GemTransactionDoc[] = await deps.db.gemTransactions.find(
    {
      source: "gift",
      type: "spend",
      status: "applied",
      "metadata.streamId": { $type: "string" },
      createdAt: { $gte: since, $lt: settled(deps) },
      ...(run.giftCursor ? { _id: { $gt: run.giftCursor } } : {}),
    },
    { sort: { _id: 1 }, limit: batch, projection: { metadata: 1, createdAt: 1 } },
  );
  run.giftCursor = debits.length === batch ? (debits.at(-1)?._id ?? null) : null;
  if (debits.length === 0) return { done: true, count: 0 };
  const transfers = debits.map((d) => ({ transfer: transferOf(d), at: d.createdAt }));
  const recorded = await deps.db.streamGifts.find(
    { transferId: { $in: transfers.map((t) => t.transfer.transferId) } },
    { projection: { transferId: 1 }, limit: transfers.length },
  );
  const known = new Set(recorded.map((r) => r.transferId));
  let count = 0;
  for (const { transfer, at } of transfers) {
    if (known.has(transfer.transferId)) continue;
    if ((await recordStreamGift(deps, transfer, at)).recorded) count += 1;
  }
  return { done: run.giftCursor === null, count };
}

export const streamMaintenanceJob: Job = {
  name: "stream-maintenance",
  description:
    "Ends abandoned live streams, cancels lapsed schedules, deletes spent live inputs, finishes live notices and " +
    "records stream gifts a crash skipped.",
  run: maintainStreams,
};
