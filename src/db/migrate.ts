import type { ClickHouseClient } from "../platform/clickhouse";
import { ObjectId } from "../platform/ids";
import type { DataApiClient } from "../platform/mongo/client";
import { clickhouseDdl } from "./clickhouse-ddl";
import { type CollectionKey, collections } from "./collections";
import { indexes, retiredIndexes } from "./indexes";

export interface MigrationReport {
  createdIndexes: Record<string, string[]>;
  droppedIndexes: Record<string, string[]>;
  /** Documents each backfill brought up to date (only the ones that changed). */
  backfilled: Record<string, number>;
  clickhouse: string[];
}

/**
 * Fields later features rely on, filled in on documents written before them. Each is an idempotent update of
 * the documents still lacking the field, so re-running changes nothing; run migrations again after a deploy to
 * catch documents the previous version wrote in between.
 */
const backfills: {
  name: string;
  collection: CollectionKey;
  filter: Record<string, unknown>;
  update: Record<string, unknown>[];
}[] = [
  {
    // Posts from before lifecycles (features/posts/lifecycle.ts) were all published at creation.
    name: "posts.status",
    collection: "posts",
    filter: { status: { $exists: false } },
    update: [{ $set: { status: "published", publishAt: null, publishedAt: "$createdAt" } }],
  },
  {
    // Posts from before tag counts (features/tags/counts.ts) are marked for the `tag-counts` job to count.
    name: "posts.tagCounts",
    collection: "posts",
    filter: { countedTags: { $exists: false }, tagsDirty: { $exists: false } },
    update: [{ $set: { tagsDirty: new ObjectId(), countedTags: [] } }],
  },
];

/**
 * Creates every MongoDB index and ClickHouse object the API relies on. Idempotent: existing indexes,
 * tables and columns are left alone, so re-running reports nothing created. A changed index spec under the same name
 * fails loudly (409 IndexConflict) instead of silently keeping the old one.
 */
export async function migrate(mongo: DataApiClient, clickhouse: ClickHouseClient): Promise<MigrationReport> {
  // Retired indexes go first: a new index may need the old one's key (MongoDB refuses equivalent twins).
  const droppedIndexes: Record<string, string[]> = {};
  for (const [key, retired] of Object.entries(retiredIndexes) as [CollectionKey, { name: string }[]][]) {
    const collection = mongo.collection(collections[key]);
    const dropped: string[] = [];
    for (const { name } of retired) if (await collection.dropIndex(name)) dropped.push(name);
    if (dropped.length) droppedIndexes[collections[key]] = dropped;
  }
  const createdIndexes: Record<string, string[]> = {};
  for (const key of Object.keys(indexes) as CollectionKey[]) {
    if (indexes[key].length === 0) continue; // a collection read by _id alone
    const created = await mongo.collection(collections[key]).createIndexes(indexes[key]);
    if (created.length) createdIndexes[collections[key]] = created;
  }
  const backfilled: Record<string, number> = {};
  for (const { name, collection, filter, update } of backfills) {
    const { modifiedCount } = await mongo.collection(collections[collection]).updateMany(filter, update);
    if (modifiedCount) backfilled[name] = modifiedCount;
  }
  return { createdIndexes, droppedIndexes, backfilled, clickhouse: await migrateClickHouse(clickhouse) };
}

/** Creates the ClickHouse objects (and adds the columns) that are missing, in order; returns their names. */
export async function migrateClickHouse(clickhouse: ClickHouseClient): Promise<string[]> {
  const existing = await existingClickHouseObjects(clickhouse);
  const created: string[] = [];
  for (const { name, sql } of clickhouseDdl) {
    if (existing.has(name)) continue;
    await clickhouse.command({ query: sql });
    created.push(name);
  }
  return created;
}

/** Tables and views by name, and columns as `table.column` (how the DDL names a column it adds). */
async function existingClickHouseObjects(clickhouse: ClickHouseClient): Promise<Set<string>> {
  const result = await clickhouse.query({
    query: `SELECT name FROM system.tables WHERE database = currentDatabase()
            UNION ALL
            SELECT concat(table, '.', name) FROM system.columns WHERE database = currentDatabase()`,
    format: "JSONEachRow",
  });
  const rows = await result.json<{ name: string }>();
  return new Set(rows.map((r) => r.name));
}
