import { EJSON } from "../ejson";
import { StoreUnavailableError } from "../errors";
import { budgetLeftMs, chargeBudget, isDown, markDown, roundTrip } from "../io";

/**
 * Client for the Data API protocol (MongoDB Atlas Data API v1 plus the gateway's extensions). Bodies are
 * EJSON so ObjectIds and Dates survive the trip. Reads are retried on transient failures, within the request's
 * store budget (see io.ts); writes never are, because a write whose answer was lost may already have been
 * applied.
 */

export type Document = Record<string, unknown>;
export type Filter = Record<string, unknown>;
export type Update = Record<string, unknown> | Record<string, unknown>[];
export type Sort = Record<string, 1 | -1 | { $meta: "textScore" }>;
export type Projection = Record<string, 0 | 1 | boolean | Record<string, unknown>>;

export interface FindOptions {
  projection?: Projection;
  sort?: Sort;
  limit?: number;
  skip?: number;
}

export interface UpdateResult {
  matchedCount: number;
  modifiedCount: number;
  upsertedId?: unknown;
}

export interface BulkWriteResult {
  insertedCount: number;
  matchedCount: number;
  modifiedCount: number;
  deletedCount: number;
  upsertedCount: number;
  insertedIds: Record<string, unknown>;
  upsertedIds: Record<string, unknown>;
}

export type BulkOperation<T extends object> =
  | { insertOne: { document: T } }
  | { updateOne: { filter: Filter; update: Update; upsert?: boolean } }
  | { updateMany: { filter: Filter; update: Update; upsert?: boolean } }
  | { replaceOne: { filter: Filter; replacement: T; upsert?: boolean } }
  | { deleteOne: { filter: Filter } }
  | { deleteMany: { filter: Filter } };

export interface IndexSpec {
  key: Record<string, 1 | -1 | "text">;
  name?: string;
  unique?: boolean;
  sparse?: boolean;
  expireAfterSeconds?: number;
  partialFilterExpression?: Filter;
  /** Text indexes: a field's weight in the score (default 1). */
  weights?: Record<string, number>;
}

/** What `tryInsert` reports: inserted, or refused by the unique index whose first field is `duplicateOn`. */
export type InsertOutcome = { inserted: true } | { inserted: false; duplicateOn: string };

export interface WriteError {
  index: number;
  code: number;
  errmsg: string;
  keyPattern?: Record<string, unknown>;
  keyValue?: Record<string, unknown>;
}

/** Any error answer from the Data API other than a duplicate key or an outage. */
export class DataApiError extends Error {
  override name = "DataApiError";
  /** In a `batch`: the position of the step that failed (absent for a failed commit or a single action). */
  failedIndex: number | undefined;
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A batch step marked with `expectMatch` found or changed no document (gateway 412 `PreconditionFailed`): the
 * steps after it did not run, and in a transaction nothing was written. `failedIndex` says which guard.
 */
export class PreconditionFailedError extends DataApiError {
  override name = "PreconditionFailedError";
}

/**
 * The Data API answered, but not with EJSON this client can decode (e.g. a stored value outside what EJSON
 * can express). Not an outage: retrying gets the same answer.
 */
export class UndecodableAnswerError extends DataApiError {
  override name = "UndecodableAnswerError";
  constructor(action: string, reason: string) {
    super(200, "UndecodableAnswer", `Data API ${action} answered with undecodable EJSON: ${reason}`);
  }
}

/**
 * One document of `findEach`: decoded, or (when its EJSON cannot be decoded) its raw JSON text, so one bad
 * document never makes the others unreadable.
 */
export type FoundDocument<T> = { decoded: true; document: T } | { decoded: false; raw: string; reason: string };

/** What `batchUnique` reports: every step applied, or which step a unique index refused (nothing after it ran). */
export type BatchOutcome = { applied: true } | { applied: false; refusedStep: number; duplicateOn: string };

/** MongoDB error 11000: a unique index refused the write. Carries which key collided. */
export class DuplicateKeyError extends DataApiError {
  override name = "DuplicateKeyError";
  constructor(
    message: string,
    readonly keyPattern: Record<string, unknown> | undefined,
    readonly keyValue: Record<string, unknown> | undefined,
    readonly writeErrors: WriteError[],
    readonly partialResult: Partial<BulkWriteResult> | undefined,
  ) {
    super(409, "DuplicateKey", message);
  }

  /** The first field of the index that refused the write ("" when the server did not say). */
  firstField(): string {
    const pattern = this.keyPattern ?? this.writeErrors.find((e) => e.keyPattern)?.keyPattern;
    return pattern ? (Object.keys(pattern)[0] ?? "") : "";
  }
}

export interface DataApiOptions {
  url: string;
  apiKey: string;
  dataSource: string;
  database: string;
  timeoutMs: number;
  readRetries: number;
  /** Delay before the first read retry; doubles per retry (DATA_API_READ_RETRY_BACKOFF_MS for the Worker). */
  readRetryBackoffMs?: number;
}

const READ_ACTIONS = new Set(["findOne", "find", "aggregate", "listIndexes"]);

/**
 * One operation of a `batch` (see `DataApiClient.batch`), built by a collection's `inBatch` helpers: the
 * action, its collection and body, and how to read its answer into what the collection method returns.
 */
export interface BatchStep<R> {
  readonly action: string;
  readonly collection: string;
  readonly body: Document;
  readonly read: (answer: unknown) => R;
}

/** The answers of a batch's steps, in order and typed per step. */
export type BatchResults<S extends readonly BatchStep<unknown>[]> = {
  -readonly [K in keyof S]: S[K] extends BatchStep<infer R> ? R : never;
};

export interface BatchOptions {
  /** All steps take effect together or none does (MongoDB: a multi-document transaction; needs a replica set). */
  transaction?: boolean;
}

/**
 * Marks a step as a guard: when it finds, updates or deletes no document the batch stops there with a
 * `PreconditionFailedError` (nothing after it runs; in a transaction nothing before it is kept either).
 */
export function expectMatch<R>(step: BatchStep<R>): BatchStep<R> {
  return { ...step, body: { ...step.body, expect: "match" } };
}

export class DataApiClient {
  constructor(private readonly opts: DataApiOptions) {}

  collection<T extends object>(name: string): Collection<T> {
    return new Collection<T>(this, name);
  }

  /** One action = one round trip (a read may retry within the request's store budget). */
  async call<R>(action: string, collection: string, body: Document): Promise<R> {
    return this.callDecoding(action, collection, body, (text) => decodeAnswer<R>(action, text));
  }

  /** Like `call`, with a successful answer's text decoded by `decode` (which may throw UndecodableAnswerError). */
  async callDecoding<R>(
    action: string,
    collection: string | undefined,
    body: Document,
    decode: (text: string) => R,
  ): Promise<R> {
    const attempts = READ_ACTIONS.has(action) ? this.opts.readRetries + 1 : 1;
    const requestBody = this.serialize(collection === undefined ? body : { collection, ...body });
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        const backoffMs = (this.opts.readRetryBackoffMs ?? 50) * 2 ** (attempt - 1);
        // A retry that could not even start before the budget runs out would only add waiting.
        if (isDown("mongo") || budgetLeftMs() <= backoffMs) break;
        chargeBudget(backoffMs);
        await sleep(backoffMs);
      }
      let text: string;
      try {
        text = await roundTrip("mongo", this.opts.timeoutMs, (signal) => this.send(action, requestBody, signal));
      } catch (error) {
        lastError = error;
        if (!(error instanceof StoreUnavailableError)) throw error;
        continue;
      }
      return decode(text);
    }
    markDown("mongo");
    throw lastError;
  }

  /**
   * Several operations in one round trip (the gateway's `batch`): run in order, and the first that fails ends
   * the batch (what ran before it stays), so a later step — e.g. a marker that the work is done — takes effect
   * only if every earlier one did. With `transaction`, all or nothing. Never retried, like any write. A failing
   * step throws what its action alone would (DuplicateKeyError, …) with `failedIndex` set; an unmet guard
   * (`expectMatch`) throws PreconditionFailedError.
   */
  async batch<const S extends readonly BatchStep<unknown>[]>(
    steps: S,
    options: BatchOptions = {},
  ): Promise<BatchResults<S>> {
    const operations = steps.map((s) => ({ action: s.action, collection: s.collection, ...s.body }));
    const requestBody = this.serialize(options.transaction ? { operations, transaction: true } : { operations });
    const text = await roundTrip("mongo", this.opts.timeoutMs, (signal) => this.send("batch", requestBody, signal));
    const { results } = decodeAnswer<{ results: unknown[] }>("batch", text);
    return steps.map((s, i) => s.read(results[i])) as BatchResults<S>;
  }

  /** Like `batch`, where a unique index may refuse a step: says which, and on which index (its first field). */
  async batchUnique(steps: readonly BatchStep<unknown>[], options: BatchOptions = {}): Promise<BatchOutcome> {
    try {
      await this.batch(steps, options);
      return { applied: true };
    } catch (error) {
      if (!(error instanceof DuplicateKeyError)) throw error;
      return { applied: false, refusedStep: error.failedIndex ?? 0, duplicateOn: error.firstField() };
    }
  }

  /** The request body, serialized once before any I/O: a value EJSON cannot write is our bug, never an outage. */
  private serialize(body: Document): string {
    return EJSON.stringify(
      { dataSource: this.opts.dataSource, database: this.opts.database, ...body },
      { relaxed: true },
    );
  }

  /** Sends one action; resolves to the text of a successful answer, throws the error an unsuccessful one means. */
  private async send(action: string, requestBody: string, signal: AbortSignal): Promise<string> {
    let response: Response;
    try {
      response = await fetch(`${this.opts.url}/action/${action}`, {
        method: "POST",
        headers: { "content-type": "application/ejson", accept: "application/ejson", apiKey: this.opts.apiKey },
        body: requestBody,
        signal,
      });
    } catch (error) {
      throw new StoreUnavailableError("mongo", describe(error), { cause: error });
    }
    // Decoded by hand: workerd warns when .text() meets a content type it does not know (application/ejson).
    let bytes: ArrayBuffer;
    try {
      bytes = await response.arrayBuffer();
    } catch (error) {
      throw new StoreUnavailableError("mongo", describe(error), { cause: error });
    }
    const text = new TextDecoder().decode(bytes);
    if (response.ok) return text;
    const payload = parse(text);
    const {
      error = text.slice(0, 200),
      error_code: code = "Unknown",
      failedIndex,
    } = (payload ?? {}) as {
      error?: string;
      error_code?: string;
      failedIndex?: number;
    };
    if (response.status === 502 || response.status === 503 || response.status === 504) {
      throw new StoreUnavailableError("mongo", `${response.status} ${code}: ${error}`);
    }
    let failure: DataApiError;
    if (response.status === 409 && code === "DuplicateKey") {
      const p = payload as {
        keyPattern?: Record<string, unknown>;
        keyValue?: Record<string, unknown>;
        writeErrors?: WriteError[];
        result?: Partial<BulkWriteResult>;
      };
      failure = new DuplicateKeyError(error, p.keyPattern, p.keyValue, p.writeErrors ?? [], p.result);
    } else if (response.status === 412 && code === "PreconditionFailed") {
      failure = new PreconditionFailedError(response.status, code, `Data API ${action}: ${error}`);
    } else {
      failure = new DataApiError(
        response.status,
        code,
        `Data API ${action} failed: ${response.status} ${code}: ${error}`,
      );
    }
    if (typeof failedIndex === "number") failure.failedIndex = failedIndex;
    throw failure;
  }
}

export class Collection<T extends object> {
  constructor(
    private readonly client: DataApiClient,
    readonly name: string,
  ) {}

  /** The same operations as steps of a `batch` (one round trip for several), answering as the methods do. */
  get inBatch() {
    const step = <R>(action: string, body: Document, read: (answer: unknown) => R): BatchStep<R> => ({
      action,
      collection: this.name,
      body,
      read,
    });
    return {
      findOne: (filter: Filter, options: Pick<FindOptions, "projection" | "sort"> = {}) =>
        step("findOne", { filter, ...options }, (a) => (a as { document: T | null }).document ?? null),
      find: (filter: Filter, options: FindOptions = {}) =>
        step("find", { filter, ...options }, (a) => (a as { documents: T[] }).documents),
      aggregate: <R extends Document = Document>(pipeline: Document[]) =>
        step("aggregate", { pipeline }, (a) => (a as { documents: R[] }).documents),
      insertOne: (document: T) => step("insertOne", { document }, (a) => (a as { insertedId: unknown }).insertedId),
      insertMany: (documents: T[], options: { ordered?: boolean } = {}) =>
        step("insertMany", { documents, ...options }, (a) => (a as { insertedIds: unknown[] }).insertedIds),
      updateOne: (filter: Filter, update: Update, options: { upsert?: boolean } = {}) =>
        step("updateOne", { filter, update, ...options }, (a) => a as UpdateResult),
      updateMany: (filter: Filter, update: Update, options: { upsert?: boolean } = {}) =>
        step("updateMany", { filter, update, ...options }, (a) => a as UpdateResult),
      deleteOne: (filter: Filter) => step("deleteOne", { filter }, (a) => (a as { deletedCount: number }).deletedCount),
      deleteMany: (filter: Filter) =>
        step("deleteMany", { filter }, (a) => (a as { deletedCount: number }).deletedCount),
      findOneAndUpdate: (
        filter: Filter,
        update: Update,
        options: { sort?: Sort; projection?: Projection; upsert?: boolean; returnDocument?: "before" | "after" } = {},
      ) =>
        step("findOneAndUpdate", { filter, update, ...options }, (a) => (a as { document: T | null }).document ?? null),
      bulkWrite: (operations: BulkOperation<T>[], options: { ordered?: boolean } = {}) =>
        step("bulkWrite", { operations, ...options }, (a) => a as BulkWriteResult),
    };
  }

  async findOne(filter: Filter, options: Pick<FindOptions, "projection" | "sort"> = {}): Promise<T | null> {
    const r = await this.client.call<{ document: T | null }>("findOne", this.name, { filter, ...options });
    return r.document ?? null;
  }

  async find(filter: Filter, options: FindOptions = {}): Promise<T[]> {
    const r = await this.client.call<{ documents: T[] }>("find", this.name, { filter, ...options });
    return r.documents;
  }

  /**
   * A `find` whose documents are decoded one by one: a document whose stored EJSON cannot be decoded comes
   * back as its raw JSON text instead of making the whole answer unreadable (for jobs that must get past
   * one bad document).
   */
  async findEach(filter: Filter, options: FindOptions = {}): Promise<FoundDocument<T>[]> {
    return this.client.callDecoding("find", this.name, { filter, ...options }, (text) => {
      const answer = parsePlainJson("find", text) as { documents?: unknown };
      if (!Array.isArray(answer?.documents)) throw new UndecodableAnswerError("find", "no documents array");
      return answer.documents.map((raw): FoundDocument<T> => {
        try {
          return { decoded: true, document: EJSON.deserialize(raw as Document, { relaxed: true }) as T };
        } catch (error) {
          return { decoded: false, raw: JSON.stringify(raw), reason: describe(error) };
        }
      });
    });
  }

  async insertOne(document: T): Promise<unknown> {
    return (await this.client.call<{ insertedId: unknown }>("insertOne", this.name, { document })).insertedId;
  }

  /**
   * Inserts unless a unique index already holds one of its keys. True when this call inserted it: the index
   * decides who wins a race, and the loser learns it from the answer, not from an exception.
   */
  async insertUnique(document: T): Promise<boolean> {
    return (await this.tryInsert(document)).inserted;
  }

  /** Like `insertUnique`, and says which unique index (by its first field) refused the document. */
  async tryInsert(document: T): Promise<InsertOutcome> {
    try {
      await this.insertOne(document);
      return { inserted: true };
    } catch (error) {
      if (error instanceof DuplicateKeyError) return { inserted: false, duplicateOn: error.firstField() };
      throw error;
    }
  }

  /** Inserts every document no unique index refuses (unordered); says how many went in and how many collided. */
  async insertManyUnique(documents: T[]): Promise<{ insertedCount: number; duplicateCount: number }> {
    if (documents.length === 0) return { insertedCount: 0, duplicateCount: 0 };
    try {
      await this.insertMany(documents, { ordered: false });
      return { insertedCount: documents.length, duplicateCount: 0 };
    } catch (error) {
      if (!(error instanceof DuplicateKeyError)) throw error;
      const duplicateCount = Math.max(1, error.writeErrors.length);
      return { insertedCount: documents.length - duplicateCount, duplicateCount };
    }
  }

  async insertMany(documents: T[], options: { ordered?: boolean } = {}): Promise<unknown[]> {
    const r = await this.client.call<{ insertedIds: unknown[] }>("insertMany", this.name, { documents, ...options });
    return r.insertedIds;
  }

  updateOne(filter: Filter, update: Update, options: { upsert?: boolean } = {}): Promise<UpdateResult> {
    return this.client.call("updateOne", this.name, { filter, update, ...options });
  }

  updateMany(filter: Filter, update: Update, options: { upsert?: boolean } = {}): Promise<UpdateResult> {
    return this.client.call("updateMany", this.name, { filter, update, ...options });
  }

  replaceOne(filter: Filter, replacement: T, options: { upsert?: boolean } = {}): Promise<UpdateResult> {
    return this.client.call("replaceOne", this.name, { filter, replacement, ...options });
  }

  async deleteOne(filter: Filter): Promise<number> {
    return (await this.client.call<{ deletedCount: number }>("deleteOne", this.name, { filter })).deletedCount;
  }

  async deleteMany(filter: Filter): Promise<number> {
    return (await this.client.call<{ deletedCount: number }>("deleteMany", this.name, { filter })).deletedCount;
  }

  async aggregate<R extends Document = Document>(pipeline: Document[]): Promise<R[]> {
    return (await this.client.call<{ documents: R[] }>("aggregate", this.name, { pipeline })).documents;
  }

  /** Atomic read-modify-write in one round trip (claims, counters that must return the new value). */
  async findOneAndUpdate(
    filter: Filter,
    update: Update,
    options: { sort?: Sort; projection?: Projection; upsert?: boolean; returnDocument?: "before" | "after" } = {},
  ): Promise<T | null> {
    const r = await this.client.call<{ document: T | null }>("findOneAndUpdate", this.name, {
      filter,
      update,
      ...options,
    });
    return r.document ?? null;
  }

  async findOneAndDelete(filter: Filter, options: { sort?: Sort; projection?: Projection } = {}): Promise<T | null> {
    const r = await this.client.call<{ document: T | null }>("findOneAndDelete", this.name, { filter, ...options });
    return r.document ?? null;
  }

  bulkWrite(operations: BulkOperation<T>[], options: { ordered?: boolean } = {}): Promise<BulkWriteResult> {
    return this.client.call("bulkWrite", this.name, { operations, ...options });
  }

  /**
   * An upserting findOneAndUpdate where a unique index may refuse the insert half (two first events racing
   * to open one group): null then, so the caller can retry into the winner's document.
   */
  async upsertUnique(
    filter: Filter,
    update: Update,
    options: { sort?: Sort; projection?: Projection; returnDocument?: "before" | "after" } = {},
  ): Promise<{ document: T | null } | null> {
    try {
      return { document: await this.findOneAndUpdate(filter, update, { ...options, upsert: true }) };
    } catch (error) {
      if (error instanceof DuplicateKeyError) return null;
      throw error;
    }
  }

  /**
   * A findOneAndUpdate (no upsert) that a unique index may refuse (a restored document colliding with a live
   * one): null then; otherwise the document as `returnDocument` says (null when nothing matched).
   */
  async updateUnique(
    filter: Filter,
    update: Update,
    options: { sort?: Sort; projection?: Projection; returnDocument?: "before" | "after" } = {},
  ): Promise<{ document: T | null } | null> {
    try {
      return { document: await this.findOneAndUpdate(filter, update, options) };
    } catch (error) {
      if (error instanceof DuplicateKeyError) return null;
      throw error;
    }
  }

  /**
   * An unordered bulk write in which a unique index may refuse some operations: the indexes (positions in
   * `operations`) of those it refused; the others were applied.
   */
  async bulkWriteUnique(operations: BulkOperation<T>[]): Promise<{ refused: number[] }> {
    if (operations.length === 0) return { refused: [] };
    try {
      await this.bulkWrite(operations, { ordered: false });
      return { refused: [] };
    } catch (error) {
      if (error instanceof DuplicateKeyError) return { refused: error.writeErrors.map((w) => w.index) };
      throw error;
    }
  }

  async createIndexes(indexes: IndexSpec[]): Promise<string[]> {
    return (await this.client.call<{ createdIndexes: string[] }>("createIndexes", this.name, { indexes }))
      .createdIndexes;
  }

  /** Drops an index by name; false when there was none. */
  async dropIndex(name: string): Promise<boolean> {
    return (await this.client.call<{ dropped: boolean }>("dropIndex", this.name, { name })).dropped;
  }

  async listIndexes(): Promise<IndexSpec[]> {
    return (await this.client.call<{ indexes: IndexSpec[] }>("listIndexes", this.name, {})).indexes;
  }
}

/** An error answer's body, best effort (its text is used when it is not EJSON). */
function parse(text: string): unknown {
  if (!text) return undefined;
  try {
    return EJSON.parse(text, { relaxed: true });
  } catch {
    return undefined;
  }
}

/** A successful answer's body; one this client cannot decode is an error, never an `undefined` to trip over. */
function decodeAnswer<R>(action: string, text: string): R {
  try {
    return EJSON.parse(text, { relaxed: true }) as R;
  } catch (error) {
    throw new UndecodableAnswerError(action, describe(error));
  }
}

function parsePlainJson(action: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UndecodableAnswerError(action, describe(error));
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
