import { bulkWriteError, DUPLICATE_KEY_CODE, GatewayError, invalidParameter } from "../../errors";
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
import { assertDocumentSize, type EmbeddedCollection } from "./collection";
import type { Deadline } from "./deadline";
import { Engine, type EngineOptions, type Transaction } from "./engine";
import { compileFilter, runPipeline } from "./matcher";

export type EmbeddedBackendOptions = EngineOptions;

const BAD_VALUE = 2;

/**
 * The embedded document engine (dev and tests only): in-memory collections with MongoDB's query, update and
 * aggregation semantics (through mingo), unique / partial / sparse / compound / TTL / text indexes, atomic
 * single-document operations, all-or-nothing transactions, and optional durable persistence (engine.ts).
 */
export class EmbeddedBackend implements Backend {
  readonly kind = "embedded" as const;

  private constructor(
    private readonly engine: Engine,
    /** Set on the view a transaction's work receives (`withTransaction`). */
    private readonly transaction: Transaction | undefined,
  ) {}

  static async open(options: EmbeddedBackendOptions = {}): Promise<EmbeddedBackend> {
    return new EmbeddedBackend(await Engine.open(options), undefined);
  }

  // ── reads ────────────────────────────────────────────────────────────────────────────────────────────────

  async find(ns: Namespace, query: FindQuery): Promise<Document[]> {
    return this.engine.read(this.transaction, (deadline) => {
      const collection = this.engine.collection(ns, false);
      if (collection) return collection.find(query, deadline);
      compileFilter(query.filter); // a bad filter is an error even on a collection that does not exist
      return [];
    });
  }

  async aggregate(ns: Namespace, pipeline: Document[]): Promise<Document[]> {
    return this.engine.read(this.transaction, (deadline) => {
      const resolved = new Map<string, Document[]>();
      const resolve = (name: string): Document[] => {
        let documents = resolved.get(name);
        if (!documents) {
          documents = this.engine.collection({ database: ns.database, collection: name }, false)?.snapshot(deadline);
          documents ??= [];
          resolved.set(name, documents);
        }
        return documents;
      };
      const collection = this.engine.collection(ns, false);
      const { input, rest, textScores } = collection
        ? collection.aggregateSource(pipeline, deadline)
        : { input: [], rest: skipTextMatch(pipeline), textScores: false };
      const results = runPipeline(input, rest, resolve, textScores);
      // MongoDB refuses to return a document larger than a BSON document may be (BSONObjectTooLarge).
      for (const document of results) {
        deadline.tick();
        assertDocumentSize(document);
      }
      return results;
    });
  }

  async listIndexes(ns: Namespace): Promise<Document[]> {
    return this.engine.read(this.transaction, () => this.engine.collection(ns, false)?.listIndexes() ?? []);
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
      (await this.write(ns, command.upsert, (collection, deadline) => collection.updateOne(command, deadline))) ??
      noMatch()
    );
  }

  async updateMany(ns: Namespace, command: UpdateCommand): Promise<UpdateResult> {
    return (
      (await this.write(ns, command.upsert, (collection, deadline) => collection.updateMany(command, deadline))) ??
      noMatch()
    );
  }

  async replaceOne(ns: Namespace, command: ReplaceCommand): Promise<UpdateResult> {
    return (
      (await this.write(ns, command.upsert, (collection, deadline) => collection.replaceOne(command, deadline))) ??
      noMatch()
    );
  }

  async deleteOne(ns: Namespace, filter: Filter): Promise<{ deletedCount: number }> {
    const deletedCount = await this.write(ns, false, (collection, deadline) =>
      collection.deleteMatching(filter, deadline, 1),
    );
    return { deletedCount: deletedCount ?? 0 };
  }

  async deleteMany(ns: Namespace, filter: Filter): Promise<{ deletedCount: number }> {
    const deletedCount = await this.write(ns, false, (collection, deadline) =>
      collection.deleteMatching(filter, deadline, Number.POSITIVE_INFINITY),
    );
    return { deletedCount: deletedCount ?? 0 };
  }

  async findOneAndUpdate(ns: Namespace, command: FindOneAndUpdateCommand): Promise<Document | null> {
    return (
      (await this.write(ns, command.upsert, (collection, deadline) =>
        collection.findOneAndUpdate(command, deadline),
      )) ?? null
    );
  }

  async findOneAndDelete(ns: Namespace, command: FindOneAndDeleteCommand): Promise<Document | null> {
    return (
      (await this.write(ns, false, (collection, deadline) => collection.findOneAndDelete(command, deadline))) ?? null
    );
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
    await this.write(ns, true, (collection, deadline) => {
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
    });
    if (writeErrors.length === 0) return result;
    throw bulkWriteError(writeErrors, result);
  }

  // ── indexes and collections ──────────────────────────────────────────────────────────────────────────────

  async createIndexes(ns: Namespace, specs: IndexSpec[]): Promise<string[]> {
    if (this.transaction) throw invalidParameter("createIndexes is not allowed in a transaction");
    return this.write(ns, true, (collection) => collection.createIndexes(specs));
  }

  async dropIndex(ns: Namespace, name: string): Promise<boolean> {
    if (this.transaction) throw invalidParameter("dropIndex is not allowed in a transaction");
    return (await this.write(ns, false, (collection) => collection.dropIndex(name))) ?? false;
  }

  async dropCollection(ns: Namespace): Promise<boolean> {
    if (this.transaction) throw invalidParameter("dropCollection is not allowed in a transaction");
    return this.engine.write(undefined, () => this.engine.drop(ns));
  }

  // ── transactions ─────────────────────────────────────────────────────────────────────────────────────────

  /**
   * All or nothing: `work` gets a view of this backend that holds the engine to itself (everyone else waits),
   * and its writes become visible to others, and durable, together, or are undone if it throws.
   */
  async withTransaction<T>(work: (transaction: Backend) => Promise<T>): Promise<T> {
    if (this.transaction) throw invalidParameter("transactions do not nest");
    return this.engine.transaction((transaction) => work(new EmbeddedBackend(this.engine, transaction)));
  }

  async ping(): Promise<void> {
    if (this.engine.isClosed) throw new GatewayError("Unavailable", "embedded engine is closed");
  }

  async close(): Promise<void> {
    if (this.transaction) return; // a transaction's view does not own the engine
    await this.engine.close();
  }

  // ── TTL, persistence and diagnosis ───────────────────────────────────────────────────────────────────────

  /** Deletes expired TTL documents now (the sweeper does it every `ttlSweepMs`); returns how many. */
  sweepExpired(now: number = Date.now()): number {
    return this.engine.sweepExpired(now);
  }

  /** Writes snapshots of what changed and trims the journal now (also done on close and as it grows). */
  compact(): Promise<void> {
    return this.engine.compact();
  }

  /** Documents the last operation on the collection examined (1 for an `_id` or unique-key lookup). */
  lastDocsExamined(ns: Namespace): number {
    return this.engine.collection(ns, false)?.lastDocsExamined ?? 0;
  }

  /**
   * One write, run in one go on the collection (created first when `create`); undefined when the
   * collection does not exist and `create` is false.
   */
  private write<T>(
    ns: Namespace,
    create: true,
    work: (collection: EmbeddedCollection, deadline: Deadline) => T,
  ): Promise<T>;
  private write<T>(
    ns: Namespace,
    create: boolean,
    work: (collection: EmbeddedCollection, deadline: Deadline) => T,
  ): Promise<T | undefined>;
  private write<T>(
    ns: Namespace,
    create: boolean,
    work: (collection: EmbeddedCollection, deadline: Deadline) => T,
  ): Promise<T | undefined> {
    return this.engine.write(this.transaction, (deadline) => {
      const collection = this.engine.collection(ns, create);
      return collection ? work(collection, deadline) : undefined;
    });
  }
}

/** On a collection that does not exist, a leading `$text` match has nothing to search: no input at all. */
function skipTextMatch(pipeline: Document[]): Document[] {
  const first = pipeline[0]?.$match;
  return first && typeof first === "object" && "$text" in first ? pipeline.slice(1) : pipeline;
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
