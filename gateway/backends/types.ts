/**
 * The one interface both storage engines implement: the official `mongodb` driver (production) and the
 * embedded mingo-based engine (dev and tests). The protocol layer (gateway/app.ts) validates and guards every
 * request before it reaches a backend, so backends receive well-formed arguments only.
 */

export type Document = Record<string, unknown>;
export type Filter = Document;
/** Update operators (`{$set: …}`) or an aggregation-pipeline update (`[{$set: …}, …]`). */
export type Update = Document | Document[];
export type SortSpec = Record<string, 1 | -1 | { $meta: "textScore" }>;
export type Projection = Document;

export interface Namespace {
  readonly database: string;
  readonly collection: string;
}

export interface FindQuery {
  filter: Filter;
  projection?: Projection;
  sort?: SortSpec;
  skip?: number;
  /** Always set by the protocol layer (capped at the gateway's maxLimit). */
  limit: number;
}

export interface UpdateCommand {
  filter: Filter;
  update: Update;
  upsert: boolean;
}

export interface ReplaceCommand {
  filter: Filter;
  replacement: Document;
  upsert: boolean;
}

export interface UpdateResult {
  matchedCount: number;
  modifiedCount: number;
  upsertedId?: unknown;
}

export interface FindOneAndUpdateCommand extends UpdateCommand {
  sort?: SortSpec;
  projection?: Projection;
  returnDocument: "before" | "after";
}

export interface FindOneAndDeleteCommand {
  filter: Filter;
  sort?: SortSpec;
  projection?: Projection;
}

export type BulkOperation =
  | { insertOne: { document: Document } }
  | { updateOne: UpdateCommand }
  | { updateMany: UpdateCommand }
  | { replaceOne: ReplaceCommand }
  | { deleteOne: { filter: Filter } }
  | { deleteMany: { filter: Filter } };

export interface BulkWriteResult {
  insertedCount: number;
  matchedCount: number;
  modifiedCount: number;
  deletedCount: number;
  upsertedCount: number;
  /** Operation index → `_id` of the inserted document. */
  insertedIds: Record<string, unknown>;
  /** Operation index → `_id` of the upserted document. */
  upsertedIds: Record<string, unknown>;
}

export interface IndexSpec {
  key: Record<string, 1 | -1 | "text">;
  name?: string;
  unique?: boolean;
  sparse?: boolean;
  expireAfterSeconds?: number;
  partialFilterExpression?: Filter;
  /** Text indexes only: field → weight (default 1). */
  weights?: Record<string, number>;
  default_language?: string;
}

/** One entry of a duplicate-key failure inside insertMany / bulkWrite (MongoDB's write error shape). */
export interface WriteErrorDetail {
  index: number;
  code: number;
  errmsg: string;
  keyPattern?: Document;
  keyValue?: Document;
}

export type BackendKind = "embedded" | "mongodb";

export interface Backend {
  readonly kind: BackendKind;
  find(ns: Namespace, query: FindQuery): Promise<Document[]>;
  insertOne(ns: Namespace, document: Document): Promise<{ insertedId: unknown }>;
  /** Throws a DuplicateKey GatewayError carrying `writeErrors` and the partial `result` when a key collides. */
  insertMany(ns: Namespace, documents: Document[], ordered: boolean): Promise<{ insertedIds: unknown[] }>;
  updateOne(ns: Namespace, command: UpdateCommand): Promise<UpdateResult>;
  updateMany(ns: Namespace, command: UpdateCommand): Promise<UpdateResult>;
  replaceOne(ns: Namespace, command: ReplaceCommand): Promise<UpdateResult>;
  deleteOne(ns: Namespace, filter: Filter): Promise<{ deletedCount: number }>;
  deleteMany(ns: Namespace, filter: Filter): Promise<{ deletedCount: number }>;
  aggregate(ns: Namespace, pipeline: Document[]): Promise<Document[]>;
  findOneAndUpdate(ns: Namespace, command: FindOneAndUpdateCommand): Promise<Document | null>;
  findOneAndDelete(ns: Namespace, command: FindOneAndDeleteCommand): Promise<Document | null>;
  /** Same partial-result contract as insertMany. */
  bulkWrite(ns: Namespace, operations: BulkOperation[], ordered: boolean): Promise<BulkWriteResult>;
  /** Returns the names of the indexes that did not exist before; an identical re-creation is a no-op. */
  createIndexes(ns: Namespace, specs: IndexSpec[]): Promise<string[]>;
  listIndexes(ns: Namespace): Promise<Document[]>;
  /** True when the collection existed. */
  dropCollection(ns: Namespace): Promise<boolean>;
  /** Drops an index by name; false when there was none (migrations retire indexes idempotently). */
  dropIndex(ns: Namespace, name: string): Promise<boolean>;
  /**
   * Runs `work` as one multi-document transaction: it gets a Backend whose operations belong to it; they all
   * take effect (and become visible to others) together when `work` resolves, and none does if it throws,
   * whose error is then rethrown. `work` may be run more than once (MongoDB retries transient conflicts).
   * createIndexes, listIndexes and dropCollection are refused inside.
   */
  withTransaction<T>(work: (transaction: Backend) => Promise<T>): Promise<T>;
  /** Resolves when the store answers; rejects with an Unavailable GatewayError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
