import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { AnalyticsEventDoc } from "../../db";
import type { Deps } from "../../deps";
import { asClickHouseOutage } from "../../platform/clickhouse";
import { newUuid } from "../../platform/ids";

/** A row of ClickHouse's `events` table (seed 000). */
export interface EventRow {
  event_id: string;
  event_name: string;
  user_id: string;
  session_id: string;
  device_id: string;
  platform: string;
  app_version: string;
  properties: string;
  source: string;
  campaign: string;
  timestamp: string;
}

export function toEventRow(doc: AnalyticsEventDoc): EventRow {
  return {
    event_id: doc.eventId,
    event_name: doc.event,
    user_id: doc.userId ?? "",
    session_id: doc.sessionId,
    device_id: doc.deviceId,
    platform: doc.platform,
    app_version: doc.appVersion,
    properties: JSON.stringify(doc.properties ?? {}),
    source: doc.source ?? "",
    campaign: doc.campaign ?? "",
    timestamp: doc.timestamp.toISOString(),
  };
}

/**
 * Moves buffered events to ClickHouse, exactly once, in batches of up to ANALYTICS_FLUSH_BATCH_SIZE rows.
 *
 * 1. Claim: tag up to one batch of untagged events with a fresh batch id (`flushBatchId`). The update only
 *    touches events still untagged, so concurrent runs never share an event.
 * 2. Insert the batch into ClickHouse with `insert_deduplication_token = batchId:chunk`: ClickHouse drops
 *    a repeated insert of the same chunk, so re-sending after a crash cannot duplicate rows.
 * 3. Delete the batch from the buffer.
 * A crash between any two steps leaves tagged events behind; every run first finishes such batches (same id,
 * same token) before claiming new ones.
 */
export async function flushAnalytics(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const batchSize = deps.config.analytics.flushBatchSize;
  const margin = Math.min(5_000, deps.config.jobs.timeBudgetMs / 4);

  while (ctx.timeLeft() > margin) {
    const batchId = (await unfinishedBatch(deps)) ?? (await claimBatch(deps, batchSize));
    if (!batchId) return { more: false };
    await ctx.checkpoint("claimed");
    const moved = await flushBatch(deps, batchId, batchSize);
    await ctx.checkpoint("inserted");
    await deps.db.analyticsEvents.deleteMany({ flushBatchId: batchId });
    ctx.count("batches");
    ctx.count("events", moved);
  }
  return { more: true };
}

/**
 * Inserts a claimed batch into ClickHouse and removes it from the buffer, as a flush run does: safe to run
 * alongside a flush holding the same batch (the same chunks carry the same deduplication tokens). Returns how
 * many events it moved.
 */
export async function finishFlushBatch(deps: Deps, batchId: string): Promise<number> {
  const moved = await flushBatch(deps, batchId, deps.config.analytics.flushBatchSize);
  await deps.db.analyticsEvents.deleteMany({ flushBatchId: batchId });
  return moved;
}

async function unfinishedBatch(deps: Deps): Promise<string | null> {
  const tagged = await deps.db.analyticsEvents.findOne(
    { flushBatchId: { $type: "string" } },
    { projection: { flushBatchId: 1 } },
  );
  return tagged?.flushBatchId ?? null;
}

/**
 * Tags the oldest untagged events (up to one batch) with a new batch id. The claim is an `_id` range rather
 * than a list of ids, so it stays one small request however large the batch; events inserted into that range
 * meanwhile simply join the batch, which is flushed in chunks of at most `batchSize` rows.
 */
async function claimBatch(deps: Deps, batchSize: number): Promise<string | null> {
  const candidates = await deps.db.analyticsEvents.find(
    { flushBatchId: null },
    { sort: { _id: 1 }, limit: batchSize, projection: { _id: 1 } },
  );
  const first = candidates[0];
  const last = candidates[candidates.length - 1];
  if (!first || !last) return null;
  const batchId = newUuid();
  const claimed = await deps.db.analyticsEvents.updateMany(
    { flushBatchId: null, _id: { $gte: first._id, $lte: last._id } },
    { $set: { flushBatchId: batchId } },
  );
  // Another run may have claimed them all in between; look again rather than flush an empty batch.
  return claimed.modifiedCount > 0 ? batchId : claimBatch(deps, batchSize);
}

/**
 * Inserts a claimed batch in chunks of at most `batchSize` rows. Membership is fixed once tagged and rows
 * are sorted by `_id`, so chunk k of batch B is the same rows on every attempt and its deduplication token
 * `B:k` lets ClickHouse drop a repeat.
 */
async function flushBatch(deps: Deps, batchId: string, batchSize: number): Promise<number> {
  const docs = await deps.db.analyticsEvents.find({ flushBatchId: batchId }, { sort: { _id: 1 } });
  for (let start = 0, chunk = 0; start < docs.length; start += batchSize, chunk++) {
    try {
      await deps.clickhouse.insert({
        table: "events",
        values: docs.slice(start, start + batchSize).map(toEventRow),
        format: "JSONEachRow",
        clickhouse_settings: { insert_deduplication_token: `${batchId}:${chunk}`, insert_deduplicate: 1 },
      });
    } catch (error) {
      throw asClickHouseOutage(error);
    }
  }
  return docs.length;
}

export const flushAnalyticsJob: Job = {
  name: "analytics-flush",
  description: "Moves buffered analytics events from MongoDB to ClickHouse, exactly once, in batches.",
  run: flushAnalytics,
};
