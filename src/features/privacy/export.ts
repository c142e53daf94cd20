import { ApiError } from "../../core/errors";
import type { RequestMeta, Viewer } from "../../core/viewer";
import type { UserDoc } from "../../db";
import type { CollectionKey } from "../../db/collections";
import type { Deps } from "../../deps";
import { asClickHouseOutage } from "../../platform/clickhouse";
import { ObjectId } from "../../platform/ids";
import type { Collection, Document, Filter, Projection } from "../../platform/mongo/client";
import { type KeysetOrder, type Page, pageFrom, paginate } from "../../platform/mongo/paginate";
import { auditEntry } from "../audit/service";
import { FEATURE_PRIVACY, type FeaturePrivacy } from "./features";
import { EXPORT_SCHEMA_VERSION, EXPORT_SECTIONS, type ExportSectionName } from "./schema";

/**
 * GET /v1/me/export: everything stored about the caller, as one JSON document written section by section
 * (schema.ts lists them). Each collection is read in pages of EXPORT_PAGE_ITEMS in `_id` order with a keyset
 * cursor (platform/mongo/paginate.ts), and a page is written before the next is read; archived analytics
 * events come from ClickHouse the same way (a first page, then one streamed query). So an account of any size
 * is exported whole, holding at most one first page per section in memory.
 *
 * Before the answer starts, one Data API round trip (a batch) reads the account and the first page of every
 * section and audits the export, while one ClickHouse query reads the first page of archived events: a store
 * that is down is a 503, not a broken download, and an ordinary account's export is complete at that point.
 * Later pages are read while streaming; a failure then aborts the stream, and the document, whose last member
 * is `"complete": true`, visibly ends short.
 */

type Stored = { _id: ObjectId } & Document;
type Caller = { id: ObjectId; hex: string };

/** A section read from MongoDB: which collection, which of its documents are the caller's, and what to leave out. */
interface MongoSection {
  collection: CollectionKey;
  filter(me: Caller): Filter;
  projection?: Projection;
  /** Drops what is stored with the caller's records but is someone else's (a moderator's id, another's device). */
  shape?(doc: Stored, me: Caller): Stored;
}

/** Never written, wherever they occur: secrets, and bookkeeping that names other accounts. */
const OMITTED_FIELDS = new Set([
  "passwordHash",
  "refreshTokenHash",
  "previousTokenHashes",
  "tokenHash",
  "pushToken",
  // The link in a pending email (`email_outbox.data.token`) signs its holder in.
  "token",
  "uncountedAccounts",
]);

const without =
  (...fields: string[]) =>
  (doc: Stored): Stored =>
    Object.fromEntries(Object.entries(doc).filter(([k]) => !fields.includes(k))) as Stored;

const MONGO_SECTIONS: { [N in Exclude<ExportSectionName, "devices" | "analyticsArchive">]: MongoSection } = {
  sessions: { collection: "sessions", filter: (me) => ({ userId: me.id }) },
  emailTokens: { collection: "emailTokens", filter: (me) => ({ userId: me.id }) },
  emailOutbox: { collection: "emailOutbox", filter: (me) => ({ userId: me.id }) },
  posts: { collection: "posts", filter: (me) => ({ userId: me.id }), shape: without("moderationReviewedBy") },
  comments: { collection: "comments", filter: (me) => ({ userId: me.id }) },
  votes: { collection: "votes", filter: (me) => ({ userId: me.id }) },
  shares: { collection: "shares", filter: (me) => ({ userId: me.id }) },
  generations: { collection: "generationJobs", filter: (me) => ({ userId: me.id }) },
  gemTransactions: { collection: "gemTransactions", filter: (me) => ({ userId: me.id }) },
  following: { collection: "follows", filter: (me) => ({ followerId: me.id }) },
  followers: { collection: "follows", filter: (me) => ({ followingId: me.id }) },
  // Only the caller's own choices: who blocks the caller is theirs to keep.
  blocksAndMutes: { collection: "blocks", filter: (me) => ({ userId: me.id }) },
  // The signup signals on these are the referred people's.
  referralsMade: {
    collection: "referrals",
    filter: (me) => ({ referrerId: me.id }),
    shape: without("ipHash", "deviceId"),
  },
  referredBy: { collection: "referrals", filter: (me) => ({ referredUserId: me.id }) },
  notifications: { collection: "notifications", filter: (me) => ({ userId: me.id }) },
  reportsMade: {
    collection: "reports",
    filter: (me) => ({ reporterId: me.id }),
    shape: without("assignedTo", "reviewedBy"),
  },
  moderationActions: {
    collection: "moderationActions",
    filter: (me) => ({ targetUserId: me.id }),
    shape: without("performedBy", "reversedBy"),
  },
  appeals: { collection: "appeals", filter: (me) => ({ userId: me.id }), shape: without("reviewedBy") },
  // Never the flags' target lists, which name other people.
  featureFlags: {
    collection: "featureFlags",
    filter: (me) => ({ targetUserIds: me.id }),
    projection: { name: 1, description: 1, enabled: 1, isExperiment: 1, createdAt: 1, updatedAt: 1 },
  },
  auditLogs: {
    collection: "auditLogs",
    filter: (me) => ({ userId: me.id }),
    shape: (doc, me) =>
      doc.actorId instanceof ObjectId && !doc.actorId.equals(me.id) ? { ...doc, actorId: null } : doc,
  },
};

/**
 * Collections no section reads, and why. A collection is in a section or here (a test checks), so one added
 * later is exported the day it lands or deliberately not.
 */
export const NOT_EXPORTED: Partial<Record<CollectionKey, string>> = {
  jobRuns: "records of scheduled job runs: operations data, about no one",
  journalInsightRuns: "records of journal-insights runs: operations data, about no one",
  tags: "how many visible posts carry each tag: counts about no one",
  tagCountBatches: "the tag counter's applied batches of post changes: bookkeeping about posts, not people",
};

/** The collections the export reads (the account itself included). */
export function exportedCollections(): CollectionKey[] {
  return [
    "users",
    ...Object.values(MONGO_SECTIONS).map((s) => s.collection),
    ...FEATURE_PRIVACY.flatMap((f) => f.collections),
  ];
}

const BY_ID: KeysetOrder = { direction: "asc" };

/** Reads the account and every first page (answering 404/503 if it must), then streams the whole document. */
export async function exportAccount(
  deps: Deps,
  meta: RequestMeta,
  viewer: Viewer,
): Promise<ReadableStream<Uint8Array>> {
  const me: Caller = { id: new ObjectId(viewer.id), hex: viewer.id };
  const limit = deps.config.privacy.exportPageItems;
  const names = Object.keys(MONGO_SECTIONS) as (keyof typeof MONGO_SECTIONS)[];
  const audited = await auditEntry(deps, meta, { action: "data_exported", userId: me.id });
  const [[found, , ...firstPages], archive] = await Promise.all([
    deps.db.batch([
      deps.db.users.inBatch.find({ _id: me.id, deletedAt: null }, { limit: 1 }),
      // Before the sections are read, so the export holds its own audit entry.
      deps.db.auditLogs.inBatch.insertOne(audited),
      ...names.map((name) => {
        const s = MONGO_SECTIONS[name];
        return collectionOf(deps, s).inBatch.find(s.filter(me), {
          sort: { _id: 1 },
          limit: limit + 1,
          ...(s.projection ? { projection: s.projection } : {}),
        });
      }),
    ]),
    archivePage(deps, me, null, limit),
  ]);
  const user = (found as UserDoc[] | undefined)?.[0];
  if (!user) throw ApiError.notFound("Account not found.");
  const first = new Map(names.map((name, i) => [name, pageFrom((firstPages[i] ?? []) as Stored[], limit, BY_ID)]));
  const chunks = documentChunks(deps, me, user, first, archive);
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await chunks.next();
        if (done) controller.close();
        else controller.enqueue(encoder.encode(value));
      } catch (error) {
        deps.log.error("export stream failed", { userId: viewer.id, error: String(error) });
        controller.error(error);
      }
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
}

function collectionOf(deps: Deps, section: MongoSection): Collection<Stored> {
  return deps.db[section.collection] as unknown as Collection<Stored>;
}

const encode = (value: unknown): string =>
  JSON.stringify(value, (key, v) => (OMITTED_FIELDS.has(key) ? undefined : v)) ?? "null";

/** The document, in pieces: the head, then each section page by page, then the counts and the closing mark. */
async function* documentChunks(
  deps: Deps,
  me: Caller,
  user: UserDoc,
  first: Map<keyof typeof MONGO_SECTIONS, Page<Stored>>,
  archive: Page<ArchivedEvent>,
): AsyncGenerator<string> {
  const { devices, ...account } = user;
  const exportedAt = deps.clock.now().toISOString();
  yield `{"schemaVersion":${EXPORT_SCHEMA_VERSION},"exportedAt":${encode(exportedAt)},"user":${encode(account)}`;
  const counts: Record<string, number> = {};
  const limit = deps.config.privacy.exportPageItems;
  for (const name of Object.keys(EXPORT_SECTIONS) as ExportSectionName[]) {
    yield `,${encode(name)}:[`;
    let written = 0;
    if (name === "devices") {
      const views = (devices ?? []).map((d) => ({ ...d, hasPushToken: Boolean(d.pushToken) }));
      if (views.length) yield views.map(encode).join(",");
      written = views.length;
    } else if (name === "analyticsArchive") {
      const rest = archive.nextCursor ? archiveAfter(deps, me, archive.nextCursor, limit) : null;
      try {
        for (let items: ArchivedEvent[] | undefined = archive.items; items; items = (await rest?.next())?.value) {
          if (items.length) yield (written ? "," : "") + items.map(encode).join(",");
          written += items.length;
        }
      } finally {
        // A download cancelled half-way closes the query too.
        await rest?.return(undefined);
      }
    } else {
      const section = MONGO_SECTIONS[name];
      const collection = collectionOf(deps, section);
      for (let page: Page<Stored> | null = first.get(name) ?? null; page; ) {
        const items = section.shape ? page.items.map((d) => section.shape?.(d, me) ?? d) : page.items;
        if (items.length) yield (written ? "," : "") + items.map(encode).join(",");
        written += items.length;
        page = page.nextCursor
          ? await paginate(collection, {
              filter: section.filter(me),
              order: BY_ID,
              limit,
              cursor: page.nextCursor,
              ...(section.projection ? { projection: section.projection } : {}),
            })
          : null;
      }
    }
    counts[name] = written;
    yield "]";
  }
  for (const feature of FEATURE_PRIVACY) yield* featureChunks(deps, me, feature, counts);
  yield `,"itemCounts":${encode(counts)},"complete":true}`;
}

/**
 * A feature's sections, page by page as its `exportSections` yields them; every declared section is written
 * (empty if the feature yields nothing for it), in the declared order.
 */
async function* featureChunks(
  deps: Deps,
  me: Caller,
  feature: FeaturePrivacy,
  counts: Record<string, number>,
): AsyncGenerator<string> {
  const names = Object.keys(feature.sections);
  // A feature with only erasure to do (its data is exported by another section) writes nothing.
  if (names.length === 0) return;
  let current = -1;
  let written = 0;
  function* advanceTo(index: number): Generator<string> {
    for (; current < index; written = 0) {
      if (current >= 0) {
        counts[names[current] as string] = written;
        yield "]";
      }
      current += 1;
      yield `,${encode(names[current])}:[`;
    }
  }
  for await (const page of feature.exportSections(deps, me.hex)) {
    const index = names.indexOf(page.section);
    if (index < current) throw new Error(`${feature.feature} export: section ${page.section} is undeclared or late`);
    yield* advanceTo(index);
    if (page.items.length) yield (written ? "," : "") + page.items.map(encode).join(",");
    written += page.items.length;
  }
  yield* advanceTo(names.length - 1);
  counts[names[current] as string] = written;
  yield "]";
}

/** A row of ClickHouse's `events` as exported: times in ISO-8601, properties parsed. */
interface ArchivedEvent {
  eventId: string;
  event: string;
  userId: string;
  sessionId: string;
  deviceId: string;
  platform: string;
  appVersion: string;
  properties: unknown;
  source: string;
  campaign: string;
  timestamp: string;
}

interface ArchiveRow {
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
  ms: string | number;
}

/**
 * The caller's events in ClickHouse, in (timestamp, event_id) order, after `cursor` (the last row's epoch
 * milliseconds and id) when given, at most `take` rows. `events` is not ordered by user, so each query scans
 * it: the export makes at most two, a first page before answering and one streamed query for the rest.
 */
function archiveQuery(deps: Deps, me: Caller, cursor: string | null, take: number | null) {
  const after = cursor ? (JSON.parse(cursor) as { ms: number; id: string }) : null;
  const query = `SELECT event_id, event_name, user_id, session_id, device_id, platform, app_version, properties,
       source, campaign, toUnixTimestamp64Milli(timestamp) AS ms
FROM events
WHERE user_id = {userId:String}${
    after ? " AND (timestamp, event_id) > (fromUnixTimestamp64Milli({afterMs:Int64}), {afterId:UUID})" : ""
  }
ORDER BY timestamp, event_id${take === null ? "" : "\nLIMIT {take:UInt32}"}`;
  return deps.clickhouse.query({
    query,
    query_params: {
      userId: me.hex,
      ...(take === null ? {} : { take }),
      ...(after ? { afterMs: after.ms, afterId: after.id } : {}),
    },
    format: "JSONEachRow",
  });
}

/** The first page of the caller's archived events, and the cursor for the rest when there is more. */
async function archivePage(deps: Deps, me: Caller, cursor: string | null, limit: number): Promise<Page<ArchivedEvent>> {
  let rows: ArchiveRow[];
  try {
    rows = await (await archiveQuery(deps, me, cursor, limit + 1)).json<ArchiveRow>();
  } catch (error) {
    throw asClickHouseOutage(error);
  }
  const last = rows.length > limit ? rows[limit - 1] : undefined;
  return {
    items: rows.slice(0, limit).map(toArchivedEvent),
    nextCursor: last ? JSON.stringify({ ms: Number(last.ms), id: last.event_id }) : null,
  };
}

/** The rest of the caller's archived events, from one streamed query, `limit` at a time. */
async function* archiveAfter(deps: Deps, me: Caller, cursor: string, limit: number): AsyncGenerator<ArchivedEvent[]> {
  let reader: ReadableStreamDefaultReader<{ json<T>(): T }[]>;
  try {
    reader = (await archiveQuery(deps, me, cursor, null)).stream<ArchiveRow>().getReader();
  } catch (error) {
    throw asClickHouseOutage(error);
  }
  let batch: ArchivedEvent[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const row of value) batch.push(toArchivedEvent(row.json<ArchiveRow>()));
      if (batch.length >= limit) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length) yield batch;
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

function toArchivedEvent(r: ArchiveRow): ArchivedEvent {
  return {
    eventId: r.event_id,
    event: r.event_name,
    userId: r.user_id,
    sessionId: r.session_id,
    deviceId: r.device_id,
    platform: r.platform,
    appVersion: r.app_version,
    properties: parsedProperties(r.properties),
    source: r.source,
    campaign: r.campaign,
    timestamp: new Date(Number(r.ms)).toISOString(),
  };
}

function parsedProperties(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
