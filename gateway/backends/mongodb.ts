import { BSONError } from "bson";
import {
  type ClientSession,
  type Collection,
  type Db,
  MongoAPIError,
  MongoClient,
  MongoError,
  MongoErrorLabel,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  type Sort,
} from "mongodb";
import { withIdFirst } from "../documents";
import { bulkWriteError, DUPLICATE_KEY_CODE, duplicateKeyError, GatewayError, invalidParameter } from "../errors";
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
} from "./types";

export interface MongoBackendOptions {
  /** `mongodb://` or `mongodb+srv://` connection string; pool and timeouts may be tuned in its query. */
  uri: string;
  /** Server-side time limit set on every operation. Default 10,000 ms. */
  maxTimeMS?: number;
}

/** MongoDB's write commands take at most this many operations per batch. */
const MAX_WRITE_BATCH = 100_000;

/** The production backend: the official driver with one pooled MongoClient for the process. */
export class MongoBackend implements Backend {
  readonly kind = "mongodb" as const;
  private readonly client: MongoClient;
  private readonly maxTimeMS: number;
  /** Set on the view a transaction's work receives: every operation runs in its session. */
  private readonly session: ClientSession | undefined;
  /** Whether the deployment is a replica set or sharded cluster (asked once, on the first transaction). */
  private transactionSupport: Promise<boolean> | undefined;

  constructor(options: MongoBackendOptions);
  /** A transaction's view (`withTransaction` makes these): the parent's client, every operation in `session`. */
  constructor(options: MongoBackendOptions, shared: { client: MongoClient; session: ClientSession });
  constructor(options: MongoBackendOptions, shared?: { client: MongoClient; session: ClientSession }) {
    this.client = shared?.client ?? new MongoClient(options.uri, { appName: "circle-gateway" });
    this.session = shared?.session;
    this.maxTimeMS = options.maxTimeMS ?? 10_000;
  }

  /** Options every operation carries: the time limit, and the transaction's session in a transaction's view. */
  private get options(): { maxTimeMS: number; session?: ClientSession } {
    return this.session ? { maxTimeMS: this.maxTimeMS, session: this.session } : { maxTimeMS: this.maxTimeMS };
  }

  private db(ns: Namespace): Db {
    return this.client.db(ns.database);
  }

  private collection(ns: Namespace): Collection<Document> {
    return this.db(ns).collection<Document>(ns.collection);
  }

  async find(ns: Namespace, query: FindQuery): Promise<Document[]> {
    return mapped(() =>
      this.collection(ns)
        .find(query.filter, {
          ...(query.projection ? { projection: query.projection } : {}),
          ...(query.sort ? { sort: query.sort as Sort } : {}),
          ...(query.skip ? { skip: query.skip } : {}),
          limit: query.limit,
          ...this.options,
        })
        .toArray(),
    );
  }

  async insertOne(ns: Namespace, document: Document): Promise<{ insertedId: unknown }> {
    const stored = withIdFirst(document);
    await mapped(() => this.collection(ns).insertOne(stored, this.options));
    return { insertedId: stored._id };
  }

  async insertMany(ns: Namespace, documents: Document[], ordered: boolean): Promise<{ insertedIds: unknown[] }> {
    try {
      const result = await this.bulkWrite(
        ns,
        documents.map((document) => ({ insertOne: { document } })),
        ordered,
      );
      return { insertedIds: Object.values(result.insertedIds) };
    } catch (error) {
      // Re-shape bulkWrite's partial result ({index: id}) into insertMany's (ids in order).
      if (error instanceof GatewayError && error.extra.result) {
        const partial = error.extra.result as Partial<BulkWriteResult>;
        error.extra.result = {
          insertedCount: partial.insertedCount ?? 0,
          insertedIds: Object.values(partial.insertedIds ?? {}),
        };
      }
      throw error;
    }
  }

  async updateOne(ns: Namespace, command: UpdateCommand): Promise<UpdateResult> {
    const result = await mapped(() =>
      this.collection(ns).updateOne(command.filter, command.update, { upsert: command.upsert, ...this.options }),
    );
    return updateResult(result);
  }

  async updateMany(ns: Namespace, command: UpdateCommand): Promise<UpdateResult> {
    const result = await mapped(() =>
      this.collection(ns).updateMany(command.filter, command.update, { upsert: command.upsert, ...this.options }),
    );
    return updateResult(result);
  }

  async replaceOne(ns: Namespace, command: ReplaceCommand): Promise<UpdateResult> {
    const result = await mapped(() =>
      this.collection(ns).replaceOne(command.filter, command.replacement, { upsert: command.upsert, ...this.options }),
    );
    return updateResult(result);
  }

  async deleteOne(ns: Namespace, filter: Filter): Promise<{ deletedCount: number }> {
    const result = await mapped(() => this.collection(ns).deleteOne(filter, this.options));
    return { deletedCount: result.deletedCount };
  }

  async deleteMany(ns: Namespace, filter: Filter): Promise<{ deletedCount: number }> {
    const result = await mapped(() => this.collection(ns).deleteMany(filter, this.options));
    return { deletedCount: result.deletedCount };
  }

  async aggregate(ns: Namespace, pipeline: Document[]): Promise<Document[]> {
    return mapped(() => this.collection(ns).aggregate<Document>(pipeline, this.options).toArray());
  }

  async findOneAndUpdate(ns: Namespace, command: FindOneAndUpdateCommand): Promise<Document | null> {
    return mapped(() =>
      this.collection(ns).findOneAndUpdate(command.filter, command.update, {
        upsert: command.upsert,
        returnDocument: command.returnDocument,
        ...(command.sort ? { sort: command.sort as Sort } : {}),
        ...(command.projection ? { projection: command.projection } : {}),
        ...this.options,
        includeResultMetadata: false,
      }),
    );
  }

  async findOneAndDelete(ns: Namespace, command: FindOneAndDeleteCommand): Promise<Document | null> {
    return mapped(() =>
      this.collection(ns).findOneAndDelete(command.filter, {
        ...(command.sort ? { sort: command.sort as Sort } : {}),
        ...(command.projection ? { projection: command.projection } : {}),
        ...this.options,
        includeResultMetadata: false,
      }),
    );
  }

  /**
   * Runs the operations as raw `insert` / `update` / `delete` commands, one per run of same-kind operations.
   * Not the driver's bulkWrite: it drops `keyPattern` / `keyValue` from write errors, and the Data API
   * answer must carry them.
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
    for (const batch of toBatches(operations)) {
      if (ordered && writeErrors.length > 0) break;
      const reply = await mapped(() =>
        this.db(ns).command(
          {
            [batch.kind]: ns.collection,
            [BATCH_FIELD[batch.kind]]: batch.items,
            ordered,
            maxTimeMS: this.maxTimeMS,
          },
          // In a transaction the driver adds the session's transaction fields to the raw command too.
          this.session ? { session: this.session } : {},
        ),
      );
      const failed = new Map<number, WriteErrorDetail>();
      for (const raw of (reply.writeErrors as Document[] | undefined) ?? []) {
        const index = batch.indexes[Number(raw.index)] as number;
        const detail: WriteErrorDetail = { index, code: Number(raw.code), errmsg: String(raw.errmsg ?? "") };
        if (raw.keyPattern) detail.keyPattern = raw.keyPattern as Document;
        if (raw.keyValue) detail.keyValue = raw.keyValue as Document;
        failed.set(Number(raw.index), detail);
        writeErrors.push(detail);
      }
      const firstFailure = failed.size > 0 ? Math.min(...failed.keys()) : Number.POSITIVE_INFINITY;
      const n = Number(reply.n ?? 0);
      if (batch.kind === "insert") {
        result.insertedCount += n;
        batch.items.forEach((item, i) => {
          const applied = !failed.has(i) && (!ordered || i < firstFailure);
          if (applied) result.insertedIds[batch.indexes[i] as number] = (item as Document)._id;
        });
      } else if (batch.kind === "update") {
        const upserted = (reply.upserted as { index: number; _id: unknown }[] | undefined) ?? [];
        result.upsertedCount += upserted.length;
        result.matchedCount += n - upserted.length;
        result.modifiedCount += Number(reply.nModified ?? 0);
        for (const entry of upserted) result.upsertedIds[batch.indexes[entry.index] as number] = entry._id;
      } else result.deletedCount += n;
      if (reply.writeConcernError) {
        throw new GatewayError(
          "Unavailable",
          `write concern error: ${String((reply.writeConcernError as Document).errmsg)}`,
        );
      }
    }
    if (writeErrors.length === 0) return result;
    throw bulkWriteError(writeErrors, result);
  }

  async createIndexes(ns: Namespace, specs: IndexSpec[]): Promise<string[]> {
    if (this.session) throw invalidParameter("createIndexes is not allowed in a transaction");
    const before = new Set((await this.listIndexes(ns)).map((index) => String(index.name)));
    const names = await mapped(() =>
      this.collection(ns).createIndexes(
        specs.map((spec) => ({ ...spec })),
        { maxTimeMS: this.maxTimeMS },
      ),
    );
    return names.filter((name) => !before.has(name));
  }

  async listIndexes(ns: Namespace): Promise<Document[]> {
    if (this.session) throw invalidParameter("listIndexes is not allowed in a transaction");
    try {
      return await mapped(() => this.collection(ns).listIndexes().toArray());
    } catch (error) {
      if (isNamespaceNotFound(error)) return [];
      throw error;
    }
  }

  async dropIndex(ns: Namespace, name: string): Promise<boolean> {
    if (this.session) throw invalidParameter("dropIndex is not allowed in a transaction");
    try {
      await mapped(() => this.collection(ns).dropIndex(name, { maxTimeMS: this.maxTimeMS }));
      return true;
    } catch (error) {
      if (isNamespaceNotFound(error) || isIndexNotFound(error)) return false;
      throw error;
    }
  }

  async dropCollection(ns: Namespace): Promise<boolean> {
    if (this.session) throw invalidParameter("dropCollection is not allowed in a transaction");
    try {
      return await mapped(() => this.db(ns).dropCollection(ns.collection));
    } catch (error) {
      if (isNamespaceNotFound(error)) return false;
      throw error;
    }
  }

  /**
   * A multi-document transaction (session.withTransaction: retried as a whole on transient errors, which
   * `work` must therefore tolerate). MongoDB has transactions on replica sets and sharded clusters only: on a
   * standalone server this is a 501 TransactionsUnsupported, before anything runs.
   */
  async withTransaction<T>(work: (transaction: Backend) => Promise<T>): Promise<T> {
    if (this.session) throw invalidParameter("transactions do not nest");
    if (!(await this.supportsTransactions())) {
      throw new GatewayError(
        "TransactionsUnsupported",
        "transactions need a replica set or a sharded cluster; this MongoDB is a standalone server",
      );
    }
    const session = this.client.startSession();
    try {
      return await mapped(() =>
        session.withTransaction(async () => {
          const view = new MongoBackend(
            { uri: "(shared)", maxTimeMS: this.maxTimeMS },
            { client: this.client, session },
          );
          try {
            return await work(view);
          } catch (error) {
            // The driver retries only errors it recognises: hand back the driver's own transient error.
            throw transientCause(error) ?? error;
          }
        }),
      );
    } finally {
      await session.endSession();
    }
  }

  private supportsTransactions(): Promise<boolean> {
    this.transactionSupport ??= mapped(() => this.client.db("admin").command({ hello: 1 })).then(
      (hello) => typeof hello.setName === "string" || hello.msg === "isdbgrid",
      (error: unknown) => {
        this.transactionSupport = undefined; // an outage is not an answer: ask again next time
        throw error;
      },
    );
    return this.transactionSupport;
  }

  async ping(): Promise<void> {
    await mapped(() => this.client.db("admin").command({ ping: 1 }, { timeoutMS: 2_000 }));
  }

  async close(): Promise<void> {
    if (this.session) return; // a transaction's view does not own the client
    await this.client.close();
  }
}

type BatchKind = "insert" | "update" | "delete";

const BATCH_FIELD: Record<BatchKind, string> = { insert: "documents", update: "updates", delete: "deletes" };

interface Batch {
  kind: BatchKind;
  items: Document[];
  /** Position of each item in the caller's operation list. */
  indexes: number[];
}

/** Consecutive operations of one kind share a write command (at most MAX_WRITE_BATCH each). */
function toBatches(operations: BulkOperation[]): Batch[] {
  const batches: Batch[] = [];
  operations.forEach((operation, index) => {
    const [kind, item] = toCommandItem(operation);
    const last = batches[batches.length - 1];
    if (last && last.kind === kind && last.items.length < MAX_WRITE_BATCH) {
      last.items.push(item);
      last.indexes.push(index);
    } else batches.push({ kind, items: [item], indexes: [index] });
  });
  return batches;
}

function toCommandItem(operation: BulkOperation): [BatchKind, Document] {
  if ("insertOne" in operation) return ["insert", withIdFirst(operation.insertOne.document)];
  if ("updateOne" in operation) {
    const { filter, update, upsert } = operation.updateOne;
    return ["update", { q: filter, u: update, upsert, multi: false }];
  }
  if ("updateMany" in operation) {
    const { filter, update, upsert } = operation.updateMany;
    return ["update", { q: filter, u: update, upsert, multi: true }];
  }
  if ("replaceOne" in operation) {
    const { filter, replacement, upsert } = operation.replaceOne;
    return ["update", { q: filter, u: replacement, upsert, multi: false }];
  }
  if ("deleteOne" in operation) return ["delete", { q: operation.deleteOne.filter, limit: 1 }];
  return ["delete", { q: operation.deleteMany.filter, limit: 0 }];
}

function updateResult(result: { matchedCount: number; modifiedCount: number; upsertedId: unknown }): UpdateResult {
  const out: UpdateResult = { matchedCount: result.matchedCount, modifiedCount: result.modifiedCount };
  if (result.upsertedId !== null && result.upsertedId !== undefined) out.upsertedId = result.upsertedId;
  return out;
}

async function mapped<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw mapMongoError(error);
  }
}

/** The driver's error behind a mapped one, when it is a TransientTransactionError (e.g. a write conflict). */
function transientCause(error: unknown): MongoError | undefined {
  const cause = error instanceof GatewayError ? error.cause : error;
  return cause instanceof MongoError && cause.hasErrorLabel(MongoErrorLabel.TransientTransactionError)
    ? cause
    : undefined;
}

/** MongoDB's IndexNotFound (27): dropping an index that is not there. */
function isIndexNotFound(error: unknown): boolean {
  const code = (error instanceof GatewayError ? (error.cause as { code?: unknown } | undefined) : error) as
    | { code?: unknown }
    | undefined;
  return code?.code === 27;
}

function isNamespaceNotFound(error: unknown): boolean {
  return (
    (error instanceof GatewayError && (error.cause as { code?: unknown } | undefined)?.code === NAMESPACE_NOT_FOUND) ||
    (error instanceof MongoServerError && error.code === NAMESPACE_NOT_FOUND)
  );
}

const NAMESPACE_NOT_FOUND = 26;
const ILLEGAL_OPERATION = 20;
const TIMEOUT_CODES = new Set([50 /* MaxTimeMSExpired */, 262 /* ExceededTimeLimit */]);
const INDEX_CONFLICT_CODES = new Set([85 /* IndexOptionsConflict */, 86 /* IndexKeySpecsConflict */]);
/** Replica-set and network states that clear up by themselves: the store is (briefly) unavailable. */
const UNAVAILABLE_CODES = new Set([6, 7, 89, 91, 134, 189, 9001, 10107, 11600, 11602, 13435, 13436]);
/** Errors in what the caller sent (below 10,000; larger codes are mostly input assertions too). */
const INVALID_INPUT_CODES = new Set([
  2, 4, 9, 14, 15, 16, 17, 20, 22, 27, 28, 29, 30, 40, 52, 53, 54, 55, 56, 57, 61, 66, 67, 72, 73, 96, 121, 146, 168,
  197, 224, 241, 263, 291, 292,
]);
const UNAVAILABLE_ERROR_NAMES = new Set([
  "MongoPoolClearedError",
  "MongoServerClosedError",
  "PoolClosedError",
  "WaitQueueTimeoutError",
  "MongoWaitQueueTimeoutError",
]);

/** Driver errors → Data API errors (the message of a server error is kept; stack traces never are). */
export function mapMongoError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  const options = { cause: error };
  if (error instanceof MongoServerError) {
    const code = typeof error.code === "number" ? error.code : -1;
    if (code === DUPLICATE_KEY_CODE || code === 11001) {
      return duplicateKeyError({
        message: error.message,
        ...(error.keyPattern ? { keyPattern: error.keyPattern as Document } : {}),
        ...(error.keyValue ? { keyValue: error.keyValue as Document } : {}),
      });
    }
    if (code === ILLEGAL_OPERATION && /Transaction numbers are only allowed/i.test(error.message)) {
      return new GatewayError(
        "TransactionsUnsupported",
        "transactions need a replica set or a sharded cluster",
        {},
        options,
      );
    }
    if (TIMEOUT_CODES.has(code))
      return new GatewayError("ExecutionTimeout", "operation exceeded time limit", {}, options);
    if (INDEX_CONFLICT_CODES.has(code)) return new GatewayError("IndexConflict", error.message, {}, options);
    if (UNAVAILABLE_CODES.has(code) || error.hasErrorLabel("RetryableWriteError")) {
      return new GatewayError("Unavailable", `MongoDB unavailable (${error.codeName ?? code})`, {}, options);
    }
    if (INVALID_INPUT_CODES.has(code) || code >= 10_000) {
      return new GatewayError("InvalidParameter", error.message, {}, options);
    }
    return new GatewayError("InternalError", `MongoDB error ${error.codeName ?? code}`, {}, options);
  }
  if (error instanceof MongoOperationTimeoutError) {
    return new GatewayError("ExecutionTimeout", "operation exceeded time limit", {}, options);
  }
  if (
    error instanceof MongoNetworkError ||
    error instanceof MongoServerSelectionError ||
    error instanceof MongoTopologyClosedError ||
    error instanceof MongoNotConnectedError ||
    (error instanceof Error && UNAVAILABLE_ERROR_NAMES.has(error.name))
  ) {
    return new GatewayError("Unavailable", "MongoDB is unreachable", {}, options);
  }
  if (error instanceof MongoAPIError || error instanceof BSONError) {
    return new GatewayError("InvalidParameter", error.message, {}, options);
  }
  return new GatewayError("InternalError", "internal error", {}, options);
}
