import { bulkWriteError, DUPLICATE_KEY_CODE, GatewayError } from "../../errors";
import type {
  Backend,
  BulkOperation,
  BulkWriteResult,
  Document,
  Filter,
  FindOneAndDeleteCommand,
  FindOneAndUpdateCommand,
  FindQuery,
  IndexSpec,
  Namespace,
  ReplaceCommand,
  UpdateCommand,
  UpdateResult,
  WriteErrorDetail,
} from "../types";
import { Deadline, EmbeddedCollection } from "./collection";
import { compileFilter, runPipeline } from "./matcher";
import { deleteSnapshot, readSnapshots, writeSnapshot } from "./persistence";

export interface EmbeddedBackendOptions {
  /** Persist collections under this directory (loaded at start, snapshotted after writes). */
  dataDir?: string;
  /** How often expired TTL documents are deleted. Default 1000 ms. */
  ttlSweepMs?: number;
  /** Time budget of one operation; exceeding it answers ExecutionTimeout. Default 10,000 ms. */
  maxTimeMS?: number;
  /** Delay between a write and its snapshot, so bursts of writes cost one snapshot. Default 200 ms. */
  persistDebounceMs?: number;
  /** Defaults to `process.env.NODE_ENV`; "production" refuses to start. */
  environment?: string;
  log?: (line: string) => void;
}

const BAD_VALUE = 2;

/**
 * The embedded document engine (dev and tests only): in-memory collections with MongoDB's query, update and
 * aggregation semantics (through mingo), unique / partial / sparse / compound / TTL / text indexes, atomic
 * single-document operations, and optional persistence.
 */
export class EmbeddedBackend implements Backend {
  readonly kind = "embedded" as const;
  private readonly databases = new Map<string, Map<string, EmbeddedCollection>>();
  private readonly dirty = new Map<string, Namespace>();
  private readonly maxTimeMS: number;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private flushChain: Promise<void> = Promise.resolve();
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  /** How long the last snapshot pass took: large collections are snapshotted less often (see markDirty). */
  private lastSnapshotMs = 0;

  private constructor(private readonly options: EmbeddedBackendOptions) {
    this.maxTimeMS = options.maxTimeMS ?? 10_000;
  }

  static async open(options: EmbeddedBackendOptions = {}): Promise<EmbeddedBackend> {
    const environment = options.environment ?? globalThis.process?.env?.NODE_ENV;
    if (environment === "production") {
      throw new Error("The embedded document engine is for development and tests only: set MONGODB_URI in production");
    }
    const backend = new EmbeddedBackend(options);
    if (options.dataDir) {
      for (const snapshot of await readSnapshots(options.dataDir)) {
        const collection = backend.collection({ database: snapshot.database, collection: snapshot.collection }, true);
        collection.restore(snapshot.indexes, snapshot.documents);
      }
    }
    const sweepEvery = options.ttlSweepMs ?? 1_000;
    backend.sweeper = setInterval(() => backend.sweepExpired(), sweepEvery);
    // Never keep a process alive just for the sweeper (Node); Deno has no unref on interval ids.
    (backend.sweeper as { unref?: () => void }).unref?.();
    return backend;
  }

  // ── reads ────────────────────────────────────────────────────────────────────────────────────────────────

  async find(ns: Namespace, query: FindQuery): Promise<Document[]> {
    const collection = this.collection(ns, false);
    if (collection) return collection.find(query, this.deadline());
    compileFilter(query.filter); // a bad filter is an error even on a collection that does not exist
    return [];
  }

  async aggregate(ns: Namespace, pipeline: Document[]): Promise<Document[]> {
    const deadline = this.deadline();
    const resolved = new Map<string, Document[]>();
    const resolve = (name: string): Document[] => {
      let documents = resolved.get(name);
      if (!documents) {
        documents = this.collection({ database: ns.database, collection: name }, false)?.snapshot() ?? [];
        resolved.set(name, documents);
      }
      return documents;
    };
    const collection = this.collection(ns, false);
    const { input, rest } = collection ? collection.aggregateSource(pipeline, deadline) : { input: [], rest: pipeline };
    return runPipeline(input, rest, resolve);
  }

  async listIndexes(ns: Namespace): Promise<Document[]> {
    return this.collection(ns, false)?.listIndexes() ?? [];
  }

  // ── writes ───────────────────────────────────────────────────────────────────────────────────────────────

  async insertOne(ns: Namespace, document: Document): Promise<{ insertedId: unknown }> {
    return this.write(ns, true, (collection) => ({ insertedId: collection.insertOne(document) }));
  }

  async insertMany(ns: Namespace, documents: Document[], ordered: boolean): Promise<{ insertedIds: unknown[] }> {
    const result = await this.bulkWrite(
      ns,
      documents.map((document) => ({ insertOne: { document } })),
      ordered,
    ).catch((error: unknown) => {
      // Re-shape bulkWrite's partial result ({index: id}) into insertMany's (ids in order).
      if (error instanceof GatewayError && error.extra.result) {
        const partial = error.extra.result as Partial<BulkWriteResult>;
        error.extra.result = {
          insertedCount: partial.insertedCount ?? 0,
          insertedIds: Object.values(partial.insertedIds ?? {}),
        };
      }
      throw error;
    });
    return { insertedIds: Object.values(result.insertedIds) };
  }

  async updateOne(ns: Namespace, command: UpdateCommand): Promise<UpdateResult> {
    return (
      this.write(ns, command.upsert, (collection, deadline) => collection.updateOne(command, deadline)) ?? noMatch()
    );
  }

  async updateMany(ns: Namespace, command: UpdateCommand): Promise<UpdateResult> {
    return (
      this.write(ns, command.upsert, (collection, deadline) => collection.updateMany(command, deadline)) ?? noMatch()
    );
  }

  async replaceOne(ns: Namespace, command: ReplaceCommand): Promise<UpdateResult> {
    return (
      this.write(ns, command.upsert, (collection, deadline) => collection.replaceOne(command, deadline)) ?? noMatch()
    );
  }

  async deleteOne(ns: Namespace, filter: Filter): Promise<{ deletedCount: number }> {
    const deletedCount = this.write(ns, false, (collection, deadline) =>
      collection.deleteMatching(filter, deadline, 1),
    );
    return { deletedCount: deletedCount ?? 0 };
  }

  async deleteMany(ns: Namespace, filter: Filter): Promise<{ deletedCount: number }> {
    const deletedCount = this.write(ns, false, (collection, deadline) =>
      collection.deleteMatching(filter, deadline, Number.POSITIVE_INFINITY),
    );
    return { deletedCount: deletedCount ?? 0 };
  }

  async findOneAndUpdate(ns: Namespace, command: FindOneAndUpdateCommand): Promise<Document | null> {
    return (
      this.write(ns, command.upsert, (collection, deadline) => collection.findOneAndUpdate(command, deadline)) ?? null
    );
  }

  async findOneAndDelete(ns: Namespace, command: FindOneAndDeleteCommand): Promise<Document | null> {
    return this.write(ns, false, (collection, deadline) => collection.findOneAndDelete(command, deadline)) ?? null;
  }

  /**
   * Runs the operations in order. A failing operation becomes a write error (ordered: the rest is skipped;
   * unordered: the rest still runs); the error answer carries every write error and what was written.
   */
  async bulkWrite(ns: Namespace, operations: BulkOperation[], ordered: boolean): Promise<BulkWriteResult> {
    const result: BulkWriteResult = {
      insertedCount: 0,
      matchedCount: 0,
      modifiedCount: 0,
      deletedCount: 0,
      upsertedCount: 0,
      insertedIds: {},
      upsertedIds: {},
    };
    const writeErrors: WriteErrorDetail[] = [];
    const collection = this.collection(ns, true);
    const deadline = this.deadline();
    try {
      operations.forEach((operation, index) => {
        if (ordered && writeErrors.length > 0) return;
        try {
          applyBulkOperation(collection, operation, index, result, deadline);
        } catch (error) {
          if (
            !(error instanceof GatewayError) ||
            (error.code !== "DuplicateKey" && error.code !== "InvalidParameter")
          ) {
            throw error;
          }
          const detail: WriteErrorDetail = {
            index,
            code: error.code === "DuplicateKey" ? DUPLICATE_KEY_CODE : BAD_VALUE,
            errmsg: error.message,
          };
          if (error.extra.keyPattern) detail.keyPattern = error.extra.keyPattern as Document;
          if (error.extra.keyValue) detail.keyValue = error.extra.keyValue as Document;
          writeErrors.push(detail);
        }
      });
    } finally {
      this.markDirty(ns);
    }
    if (writeErrors.length === 0) return result;
    throw bulkWriteError(writeErrors, result);
  }

  // ── indexes and collections ──────────────────────────────────────────────────────────────────────────────

  async createIndexes(ns: Namespace, specs: IndexSpec[]): Promise<string[]> {
    return this.write(ns, true, (collection) => collection.createIndexes(specs));
  }

  async dropCollection(ns: Namespace): Promise<boolean> {
    const existed = this.databases.get(ns.database)?.delete(ns.collection) ?? false;
    if (existed) this.markDirty(ns);
    return existed;
  }

  async ping(): Promise<void> {
    if (this.closed) throw new GatewayError("Unavailable", "embedded engine is closed");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    await this.flush();
  }

  // ── TTL and persistence ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Deletes documents whose TTL index field holds a Date (or an array with one) older than the index's
   * `expireAfterSeconds`, as MongoDB's TTL monitor does. Returns how many were deleted.
   */
  sweepExpired(now: number = Date.now()): number {
    let deleted = 0;
    for (const collections of this.databases.values()) {
      for (const collection of collections.values()) {
        const expired = collection.expire(now);
        if (expired > 0) {
          deleted += expired;
          this.markDirty({ database: collection.database, collection: collection.name });
        }
      }
    }
    return deleted;
  }

  /** Writes every pending snapshot now (also called on close). */
  flush(): Promise<void> {
    this.flushChain = this.flushChain.then(() => this.writeDirtySnapshots());
    return this.flushChain;
  }

  /** Documents the last operation on the collection examined (1 for an `_id` or unique-key lookup). */
  lastDocsExamined(ns: Namespace): number {
    return this.collection(ns, false)?.lastDocsExamined ?? 0;
  }

  private async writeDirtySnapshots(): Promise<void> {
    const dataDir = this.options.dataDir;
    if (!dataDir || this.dirty.size === 0) return;
    const pending = [...this.dirty.entries()];
    this.dirty.clear();
    const started = Date.now();
    for (const [key, ns] of pending) {
      const collection = this.collection(ns, false);
      try {
        if (collection) {
          // Stored documents are never mutated, so this array is a consistent point-in-time snapshot.
          await writeSnapshot(dataDir, {
            database: ns.database,
            collection: ns.collection,
            indexes: collection.indexDefinitions(),
            documents: [...collection.documents.values()],
          });
        } else await deleteSnapshot(dataDir, ns.database, ns.collection);
      } catch (error) {
        if (!this.dirty.has(key)) this.dirty.set(key, ns);
        this.options.log?.(
          JSON.stringify({ level: "error", msg: "snapshot failed", collection: key, error: String(error) }),
        );
      }
    }
    this.lastSnapshotMs = Date.now() - started;
  }

  private markDirty(ns: Namespace): void {
    if (!this.options.dataDir) return;
    this.dirty.set(`${ns.database}.${ns.collection}`, ns);
    if (this.flushTimer || this.closed) return;
    this.flushTimer = setTimeout(
      () => {
        this.flushTimer = undefined;
        void this.flush();
      },
      // Snapshotting at most ~20% of the time: a collection that takes 1 s to write waits 4 s between passes.
      Math.max(this.options.persistDebounceMs ?? 200, this.lastSnapshotMs * 4),
    );
    (this.flushTimer as { unref?: () => void }).unref?.();
  }

  // ── helpers ──────────────────────────────────────────────────────────────────────────────────────────────

  private deadline(): Deadline {
    return Deadline.after(this.maxTimeMS);
  }

  private collection(ns: Namespace, create: true): EmbeddedCollection;
  private collection(ns: Namespace, create: boolean): EmbeddedCollection | undefined;
  private collection(ns: Namespace, create: boolean): EmbeddedCollection | undefined {
    let collections = this.databases.get(ns.database);
    if (!collections) {
      if (!create) return undefined;
      collections = new Map();
      this.databases.set(ns.database, collections);
    }
    let collection = collections.get(ns.collection);
    if (!collection && create) {
      collection = new EmbeddedCollection(ns.database, ns.collection);
      collections.set(ns.collection, collection);
    }
    return collection;
  }

  /**
   * Runs one write synchronously (no await between its read and its write: that is the atomicity) and
   * schedules a snapshot. Returns undefined when the collection does not exist and `create` is false.
   */
  private write<T>(ns: Namespace, create: true, work: (collection: EmbeddedCollection, deadline: Deadline) => T): T;
  private write<T>(
    ns: Namespace,
    create: boolean,
    work: (collection: EmbeddedCollection, deadline: Deadline) => T,
  ): T | undefined;
  private write<T>(
    ns: Namespace,
    create: boolean,
    work: (collection: EmbeddedCollection, deadline: Deadline) => T,
  ): T | undefined {
    if (this.closed) throw new GatewayError("Unavailable", "embedded engine is closed");
    const collection = this.collection(ns, create);
    if (!collection) return undefined;
    try {
      return work(collection, this.deadline());
    } finally {
      this.markDirty(ns);
    }
  }
}

function noMatch(): UpdateResult {
  return { matchedCount: 0, modifiedCount: 0 };
}

function applyBulkOperation(
  collection: EmbeddedCollection,
  operation: BulkOperation,
  index: number,
  result: BulkWriteResult,
  deadline: Deadline,
): void {
  const countUpdate = (outcome: UpdateResult) => {
    result.matchedCount += outcome.matchedCount;
    result.modifiedCount += outcome.modifiedCount;
    if (outcome.upsertedId !== undefined) {
      result.upsertedCount++;
      result.upsertedIds[index] = outcome.upsertedId;
    }
  };
  if ("insertOne" in operation) {
    result.insertedIds[index] = collection.insertOne(operation.insertOne.document);
    result.insertedCount++;
  } else if ("updateOne" in operation) countUpdate(collection.updateOne(operation.updateOne, deadline));
  else if ("updateMany" in operation) countUpdate(collection.updateMany(operation.updateMany, deadline));
  else if ("replaceOne" in operation) countUpdate(collection.replaceOne(operation.replaceOne, deadline));
  else if ("deleteOne" in operation)
    result.deletedCount += collection.deleteMatching(operation.deleteOne.filter, deadline, 1);
  else
    result.deletedCount += collection.deleteMatching(operation.deleteMany.filter, deadline, Number.POSITIVE_INFINITY);
}
