import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { AnalyticsEventDoc, AnalyticsQuarantineDoc, QuarantineReason } from "../../db";
import type { Deps } from "../../deps";
import { asClickHouseOutage } from "../../platform/clickhouse";
import { isObjectIdHex, newUuid, ObjectId } from "../../platform/ids";
import { isPlainJsonValue, isStoredJson } from "../../platform/mongo/client-json";
import { DAY_MS } from "../../platform/time";

/** A row of ClickHouse's `events` table (seed 000, plus attribution and the post's author). */
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
  medium?: string;
  referrer?: string;
  /** The author of the post an event is about (`post_impression`), looked up by the flush. */
  owner_id?: string;
  timestamp: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** What ClickHouse's DateTime64(3) holds. */
const FIRST_TIMESTAMP_MS = Date.UTC(1900, 0, 1);
const LAST_TIMESTAMP_MS = Date.UTC(2299, 11, 31, 23, 59, 59, 999);
/** How much of a quarantined document is kept for inspection. */
const MAX_QUARANTINED_JSON = 64 * 1024;
/** Ids per ClickHouse lookup of already delivered events: keeps the query text well under `max_query_size`. */
const LOOKUP_SLICE = 4_000;
/** Event ids named in a batch's finding (all of them are counted). */
const FINDING_SAMPLE = 20;

/**
 * The row contract: a buffered event becomes a ClickHouse row only when every field has the type and range
 * the table takes, so one odd document is set aside instead of failing the insert of its whole chunk.
 * Returns the row, or what is wrong with the document.
 */
export function toEventRow(
  doc: AnalyticsEventDoc,
  postOwners: ReadonlyMap<string, string> = new Map(),
): EventRow | { problem: string } {
  const strings = { event: doc.event, sessionId: doc.sessionId, deviceId: doc.deviceId, platform: doc.platform };
  for (const [field, value] of Object.entries({ ...strings, appVersion: doc.appVersion })) {
    if (typeof value !== "string") return { problem: `${field} is not a string` };
  }
  if (typeof doc.eventId !== "string" || !UUID.test(doc.eventId)) return { problem: "eventId is not a UUID" };
  if (doc.userId !== null && typeof doc.userId !== "string") return { problem: "userId is not a string" };
  for (const [field, value] of Object.entries({ source: doc.source, campaign: doc.campaign })) {
    if (value !== null && value !== undefined && typeof value !== "string") {
      return { problem: `${field} is not a string` };
    }
  }
  const at = doc.timestamp instanceof Date ? doc.timestamp.getTime() : Number.NaN;
  if (!(at >= FIRST_TIMESTAMP_MS && at <= LAST_TIMESTAMP_MS)) return { problem: "timestamp is not a valid date" };
  const properties = propertiesText(doc);
  if (typeof properties !== "string") return properties;
  return {
    event_id: doc.eventId,
    event_name: doc.event,
    user_id: doc.userId ?? "",
    session_id: doc.sessionId,
    device_id: doc.deviceId,
    platform: doc.platform,
    app_version: doc.appVersion,
    properties,
    source: doc.source ?? "",
    campaign: doc.campaign ?? "",
    medium: doc.medium ?? "",
    referrer: doc.referrer ?? "",
    owner_id: postOwners.get(impressedPostId(doc) ?? "") ?? "",
    timestamp: doc.timestamp.toISOString(),
  };
}

/** The properties' JSON text: as stored, or (events buffered before that) the document, if it is plain JSON. */
function propertiesText(doc: AnalyticsEventDoc): string | { problem: string } {
  if (doc.propertiesJson !== undefined) {
    return isStoredJson(doc.propertiesJson) ? doc.propertiesJson : { problem: "propertiesJson is not JSON text" };
  }
  if (doc.properties === undefined || doc.properties === null) return "{}";
  if (!isPlainJsonValue(doc.properties)) {
    return { problem: "properties hold EJSON values (buffered before properties were kept as JSON text)" };
  }
  return JSON.stringify(doc.properties);
}

/** A row of `server_events`: what the API recorded itself (features/analytics/activity.ts). */
export interface ServerEventRow {
  event_id: string;
  event_name: string;
  actor_id: string;
  device_id: string;
  owner_id: string;
  post_id: string;
  amount: number;
  source: string;
  medium: string;
  campaign: string;
  referrer: string;
  timestamp: string;
}

export function toServerEventRow(doc: AnalyticsEventDoc): ServerEventRow {
  return {
    event_id: doc.eventId,
    event_name: doc.event,
    actor_id: doc.userId ?? "",
    device_id: doc.deviceId,
    owner_id: doc.ownerId ?? "",
    post_id: doc.postId ?? "",
    amount: doc.amount ?? 0,
    source: doc.source ?? "",
    medium: doc.medium ?? "",
    campaign: doc.campaign ?? "",
    referrer: doc.referrer ?? "",
    timestamp: doc.timestamp.toISOString(),
  };
}

/** The post a `post_impression` event names (`properties.postId`), when it is a well-formed id. */
function impressedPostId(doc: AnalyticsEventDoc): string | null {
  if (doc.event !== "post_impression") return null;
  const text = propertiesText(doc);
  if (typeof text !== "string") return null;
  let id: unknown;
  try {
    id = (JSON.parse(text) as { postId?: unknown }).postId;
  } catch {
    return null;
  }
  return typeof id === "string" && isObjectIdHex(id) ? id.toLowerCase() : null;
}

/**
 * The authors of the posts a batch's impressions name, in one read: ClickHouse counts impressions per author,
 * and the app knows only the post. Only live posts: a deleted post (or an erased account's) gathers nothing.
 */
async function postOwnersOf(deps: Deps, docs: AnalyticsEventDoc[]): Promise<Map<string, string>> {
  const ids = [...new Set(docs.map(impressedPostId).filter((id): id is string => id !== null))];
  if (ids.length === 0) return new Map();
  const posts = await deps.db.posts.find(
    { _id: { $in: ids.map((id) => new ObjectId(id)) }, deletedAt: null },
    { projection: { userId: 1 }, limit: ids.length },
  );
  return new Map(posts.map((p) => [p._id.toHexString(), p.userId.toHexString()]));
}

/**
 * Moves buffered events to ClickHouse, exactly once, in batches of up to ANALYTICS_FLUSH_BATCH_SIZE rows.
 *
 * 1. Claim: tag up to one batch of untagged events with a fresh batch id (`flushBatchId`). The update only
 *    touches events still untagged, so concurrent runs never share an event.
 * 2. Read the batch one document at a time (a document that cannot be decoded, or breaks the row contract,
 *    goes to `analytics_quarantine` and is counted in the run's findings: it never blocks the batch).
 * 3. Insert the rows into ClickHouse with `insert_deduplication_token = batchId:chunk`: ClickHouse drops
 *    a repeated insert of the same chunk, so re-sending after a crash cannot duplicate rows. Rows whose
 *    `eventId` came from the client are first looked up in ClickHouse: a client that retried a request after
 *    its first copy was delivered (and left the buffer) is not counted twice.
 * 4. Delete the batch from the buffer.
 * A crash between any two steps leaves tagged events behind; every run first finishes such batches (same id,
 * same rows, same tokens) before claiming new ones.
 */
export async function flushAnalytics(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const batchSize = deps.config.analytics.flushBatchSize;
  const margin = Math.min(5_000, deps.config.jobs.timeBudgetMs / 4);

  while (ctx.timeLeft() > margin) {
    const batchId = (await unfinishedBatch(deps)) ?? (await claimBatch(deps, batchSize));
    if (!batchId) return { more: false };
    await ctx.checkpoint("claimed");
    const { delivered, duplicates, quarantined } = await flushBatch(deps, batchId, batchSize, (f) => ctx.report(f));
    await ctx.checkpoint("inserted");
    await deps.db.analyticsEvents.deleteMany({ flushBatchId: batchId });
    ctx.count("batches");
    ctx.count("events", delivered);
    if (duplicates) ctx.count("duplicates", duplicates);
    if (quarantined) ctx.count("quarantined", quarantined);
  }
  return { more: true };
}

/**
 * Inserts a claimed batch into ClickHouse and removes it from the buffer, as a flush run does: safe to run
 * alongside a flush holding the same batch (the same chunks carry the same deduplication tokens). Returns how
 * many events it moved.
 */
export async function finishFlushBatch(deps: Deps, batchId: string): Promise<number> {
  const { delivered } = await flushBatch(deps, batchId, deps.config.analytics.flushBatchSize);
  await deps.db.analyticsEvents.deleteMany({ flushBatchId: batchId });
  return delivered;
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

interface Deliverable {
  row: EventRow;
  checkClickHouse: boolean;
}

/**
 * Delivers a claimed batch: the app's events into `events` and the API's own into `server_events`.
 * Membership is fixed once tagged, documents are read in `_id` order and the row contract is deterministic, so
 * chunk k of batch B is the same rows on every attempt and its deduplication token (`B:k`, `B:server:k`) lets
 * ClickHouse drop a repeat.
 */
async function flushBatch(
  deps: Deps,
  batchId: string,
  batchSize: number,
  report?: JobContext["report"],
): Promise<{ delivered: number; duplicates: number; quarantined: number }> {
  const found = await deps.db.analyticsEvents.findEach({ flushBatchId: batchId }, { sort: { _id: 1 } });
  const decoded = found.flatMap((item) => (item.decoded ? [item.document] : []));
  const owners = await postOwnersOf(
    deps,
    decoded.filter((d) => d.origin !== "server"),
  );
  const deliverable: Deliverable[] = [];
  const serverRows: ServerEventRow[] = [];
  const setAside: AnalyticsQuarantineDoc[] = [];
  const now = deps.clock.now();
  for (const item of found) {
    if (!item.decoded) {
      const { id, userId } = rawIdentity(item.raw);
      setAside.push(quarantined(batchId, now, "undecodable", item.reason, item.raw, id, userId));
      continue;
    }
    if (item.document.origin === "server") {
      serverRows.push(toServerEventRow(item.document));
      continue;
    }
    const row = toEventRow(item.document, owners);
    if ("problem" in row) {
      const doc = item.document;
      const userId = typeof doc.userId === "string" ? doc.userId : null;
      setAside.push(quarantined(batchId, now, "invalid", row.problem, safeJson(doc), doc._id, userId, doc.eventId));
      continue;
    }
    deliverable.push({ row, checkClickHouse: item.document.clientEventId === true });
  }
  if (setAside.length) {
    await deps.db.analyticsQuarantine.insertManyUnique(setAside);
    report?.(quarantineFinding(batchId, setAside));
  }

  let delivered = 0;
  let duplicates = 0;
  for (let start = 0, chunk = 0; start < deliverable.length; start += batchSize, chunk++) {
    const rows = deliverable.slice(start, start + batchSize);
    const already = await deliveredBefore(deps, rows);
    const fresh = rows.filter((r) => !already.has(r.row.event_id)).map((r) => r.row);
    duplicates += rows.length - fresh.length;
    if (fresh.length === 0) continue;
    await insertChunk(deps, "events", `${batchId}:${chunk}`, fresh);
    delivered += fresh.length;
  }
  // The API's own events have server-assigned ids: a repeat is only a retried chunk, which its token drops.
  for (let start = 0, chunk = 0; start < serverRows.length; start += batchSize, chunk++) {
    await insertChunk(deps, "server_events", `${batchId}:server:${chunk}`, serverRows.slice(start, start + batchSize));
  }
  return { delivered: delivered + serverRows.length, duplicates, quarantined: setAside.length };
}

async function insertChunk(
  deps: Deps,
  table: string,
  token: string,
  rows: (EventRow | ServerEventRow)[],
): Promise<void> {
  try {
    await deps.clickhouse.insert({
      table,
      values: rows,
      format: "JSONEachRow",
      clickhouse_settings: { insert_deduplication_token: token, insert_deduplicate: 1 },
    });
  } catch (error) {
    throw asClickHouseOutage(error);
  }
}

/**
 * The client-supplied event ids of `rows` that ClickHouse already has: a retried request whose first copy was
 * delivered and left the buffer. A copy carries the same timestamp, so the lookup reads only the partitions
 * of the rows' days (±1 day for the server's time zone). Server-assigned ids are new by construction.
 */
async function deliveredBefore(deps: Deps, rows: Deliverable[]): Promise<Set<string>> {
  const checked = rows.filter((r) => r.checkClickHouse);
  const found = new Set<string>();
  for (let start = 0; start < checked.length; start += LOOKUP_SLICE) {
    const slice = checked.slice(start, start + LOOKUP_SLICE);
    const times = slice.map((r) => Date.parse(r.row.timestamp));
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    // Ids are inlined (they passed the UUID check of the row contract): thousands of them would not fit a URL.
    const ids = slice.map((r) => `'${r.row.event_id}'`).join(",");
    try {
      const result = await deps.clickhouse.query({
        query: `SELECT DISTINCT toString(event_id) AS id FROM events
                WHERE date BETWEEN {from:Date} AND {to:Date} AND event_id IN (${ids})`,
        query_params: { from: day(Math.min(...times) - DAY_MS), to: day(Math.max(...times) + DAY_MS) },
        format: "JSONEachRow",
      });
      for (const { id } of await result.json<{ id: string }>()) found.add(id);
    } catch (error) {
      throw asClickHouseOutage(error);
    }
  }
  return found;
}

function quarantined(
  batchId: string,
  now: Date,
  reason: QuarantineReason,
  detail: string,
  documentJson: string,
  id: ObjectId,
  userId: string | null,
  eventId: unknown = null,
): AnalyticsQuarantineDoc {
  return {
    _id: id,
    eventId: typeof eventId === "string" ? eventId.slice(0, 64) : null,
    userId,
    batchId,
    reason,
    detail: detail.slice(0, 300),
    documentJson:
      documentJson.length > MAX_QUARANTINED_JSON ? documentJson.slice(0, MAX_QUARANTINED_JSON) : documentJson,
    quarantinedAt: now,
  };
}

/** One finding per batch that set events aside: how many, why, and the first few event ids (never their data). */
function quarantineFinding(batchId: string, docs: AnalyticsQuarantineDoc[]): Parameters<JobContext["report"]>[0] {
  const reasons: Record<string, number> = {};
  for (const doc of docs) reasons[doc.reason] = (reasons[doc.reason] ?? 0) + 1;
  return {
    kind: "events_quarantined",
    batchId,
    count: docs.length,
    reasons,
    bufferIds: docs.slice(0, FINDING_SAMPLE).map((d) => d._id.toHexString()),
    collection: "analytics_quarantine",
  };
}

/**
 * The `_id` (`{"$oid": …}`) and sender of an undecodable document, from its raw EJSON: a new id when even that
 * is odd, no sender when it names none.
 */
function rawIdentity(raw: string): { id: ObjectId; userId: string | null } {
  try {
    const doc = JSON.parse(raw) as { _id?: { $oid?: unknown }; userId?: unknown };
    const oid = doc._id?.$oid;
    const id =
      typeof oid === "string" && ObjectId.isValid(oid) && oid.length === 24 ? new ObjectId(oid) : new ObjectId();
    return { id, userId: typeof doc.userId === "string" ? doc.userId : null };
  } catch {
    return { id: new ObjectId(), userId: null };
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "null";
  } catch (error) {
    return `(not serializable: ${error instanceof Error ? error.message : String(error)})`;
  }
}

export const flushAnalyticsJob: Job = {
  name: "analytics-flush",
  description: "Moves buffered analytics events from MongoDB to ClickHouse, exactly once, in batches.",
  run: flushAnalytics,
};
