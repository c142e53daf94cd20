import { GatewayError, invalidParameter } from "../../errors";
import type { Document, Namespace } from "../types";
import { type CollectionObserver, EmbeddedCollection } from "./collection";
import { Deadline, underDeadline } from "./deadline";
import type { IndexDefinition } from "./indexes";
import { Journal, type JournalChange, type JournalRecord, replayJournal } from "./journal";
import { deleteSnapshot, readSnapshots, writeSnapshot } from "./persistence";
import { encodeValue } from "./values";

/**
 * The embedded engine's shared state: collections, durability (journal + snapshots under `dataDir`), the TTL
 * sweeper, and the gate that gives a transaction the engine to itself. EmbeddedBackend (backend.ts) maps the
 * Backend interface onto it.
 *
 * Every operation runs synchronously between two awaits, so it is atomic by construction; its changes are
 * collected as it runs (the collections report them, `CollectionObserver`) and appended to the journal as one
 * record the moment it ends, and the operation answers only once that record is on disk. A transaction holds
 * the gate: every other operation waits until it has committed (one record for all its steps) or rolled back
 * (its changes undone in reverse, nothing journaled), so no one sees it half-applied.
 */

export interface EngineOptions {
  /** Persist under this directory: the journal makes every acknowledged write durable; snapshots compact it. */
  dataDir?: string;
  /** How often expired TTL documents are deleted. Default 1000 ms. */
  ttlSweepMs?: number;
  /** Time budget of one operation (of a whole transaction); exceeding it answers ExecutionTimeout. Default 10 s. */
  maxTimeMS?: number;
  /** Journal bytes after which snapshots are written and the journal trimmed. Default 16 MiB. */
  compactAfterBytes?: number;
  /** Defaults to `process.env.NODE_ENV`; "production" refuses to start. */
  environment?: string;
  log?: (line: string) => void;
}

export const DEFAULT_COMPACT_AFTER_BYTES = 16 * 1024 * 1024;

/** The state of one running transaction (its view of the backend carries it). */
export interface Transaction {
  readonly deadline: Deadline;
  readonly undo: UndoStep[];
  open: boolean;
}

type UndoStep =
  | { kind: "stored"; collection: EmbeddedCollection; next: Document; previous: Document | undefined }
  | { kind: "removed"; collection: EmbeddedCollection; document: Document }
  | { kind: "created"; ns: Namespace };

/** What replay builds per namespace before the collections are created (see `load`). */
interface ReplayState {
  ns: Namespace;
  /** The snapshot holds every record up to here; later records apply. */
  covered: number;
  exists: boolean;
  indexes: IndexDefinition[];
  /** The snapshot's documents until the first replayed change, then a map by encoded `_id`. */
  documents: Document[] | Map<string, Document>;
}

function keyOf(database: string, collection: string): string {
  return `${database}.${collection}`;
}

export class Engine implements CollectionObserver {
  private readonly databases = new Map<string, Map<string, EmbeddedCollection>>();
  private readonly maxTimeMS: number;
  private readonly compactAfterBytes: number;
  private journal: Journal | undefined;
  /** Changes of the running operation (or transaction) not yet handed to the journal. */
  private pending: JournalChange[] = [];
  /** Namespaces changed since their last snapshot. */
  private readonly dirty = new Map<string, Namespace>();
  /** The transaction holding the gate, if any. */
  private running: Transaction | undefined;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  /** Set while a rollback replays undo steps, which must not be recorded again. */
  private reverting = false;
  private compaction: Promise<void> | undefined;
  private compactionTimer: ReturnType<typeof setTimeout> | undefined;
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  private constructor(private readonly options: EngineOptions) {
    this.maxTimeMS = options.maxTimeMS ?? 10_000;
    this.compactAfterBytes = options.compactAfterBytes ?? DEFAULT_COMPACT_AFTER_BYTES;
  }

  static async open(options: EngineOptions = {}): Promise<Engine> {
    const environment = options.environment ?? globalThis.process?.env?.NODE_ENV;
    if (environment === "production") {
      throw new Error("The embedded document engine is for development and tests only: set MONGODB_URI in production");
    }
    const engine = new Engine(options);
    if (options.dataDir) await engine.load(options.dataDir);
    engine.sweeper = setInterval(() => engine.sweepExpired(), options.ttlSweepMs ?? 1_000);
    // Never keep a process alive just for the sweeper (Node); Deno has no unref on interval ids.
    (engine.sweeper as { unref?: () => void }).unref?.();
    return engine;
  }

  // ── running operations ───────────────────────────────────────────────────────────────────────────────────

  /** A read: waits while another caller's transaction holds the engine, then runs `work` in one go. */
  async read<T>(transaction: Transaction | undefined, work: (deadline: Deadline) => T): Promise<T> {
    if (!transaction && this.gate) await this.waitForGate();
    this.assertUsable(transaction);
    const deadline = transaction?.deadline ?? Deadline.after(this.maxTimeMS);
    return underDeadline(deadline, () => work(deadline));
  }

  /**
   * A write: like a read, then (outside a transaction) its changes go to the journal as one record and the
   * call resolves once that record is on disk, also when `work` failed after changing something (a bulk
   * write's first operations): what was changed is visible, so it must be durable before anyone is told.
   */
  async write<T>(transaction: Transaction | undefined, work: (deadline: Deadline) => T): Promise<T> {
    if (!transaction && this.gate) await this.waitForGate();
    this.assertUsable(transaction);
    if (this.journal?.failed) {
      throw new GatewayError("Unavailable", "the embedded engine's journal cannot be written: restart the gateway");
    }
    const deadline = transaction?.deadline ?? Deadline.after(this.maxTimeMS);
    let outcome: { value: T } | { error: unknown };
    try {
      outcome = { value: underDeadline(deadline, () => work(deadline)) };
    } catch (error) {
      outcome = { error };
    }
    if (!transaction) await this.commit();
    if ("error" in outcome) throw outcome.error;
    return outcome.value;
  }

  /**
   * Runs `work` with the engine to itself. Its writes are one journal record if it resolves; if it throws,
   * every change it made is undone and the error rethrown. The whole transaction shares one maxTimeMS budget:
   * everyone else waits while it runs.
   */
  async transaction<T>(work: (transaction: Transaction) => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    this.gate = new Promise<void>((resolve) => {
      this.openGate = resolve;
    });
    const transaction: Transaction = { deadline: Deadline.after(this.maxTimeMS), undo: [], open: true };
    this.running = transaction;
    let value: T;
    try {
      this.assertUsable(transaction);
      value = await work(transaction);
    } catch (error) {
      this.rollback(transaction);
      this.endTransaction(transaction);
      throw error;
    }
    const durable = this.commit();
    this.endTransaction(transaction);
    await durable;
    return value;
  }

  private async waitForGate(): Promise<void> {
    while (this.gate) await this.gate;
  }

  private endTransaction(transaction: Transaction): void {
    transaction.open = false;
    this.running = undefined;
    const open = this.openGate;
    this.gate = undefined;
    this.openGate = undefined;
    open?.();
  }

  private rollback(transaction: Transaction): void {
    this.reverting = true;
    try {
      for (let i = transaction.undo.length - 1; i >= 0; i--) {
        const step = transaction.undo[i] as UndoStep;
        if (step.kind === "stored") step.collection.revertStore(step.next, step.previous);
        else if (step.kind === "removed") step.collection.revertRemove(step.document);
        else this.databases.get(step.ns.database)?.delete(step.ns.collection);
      }
    } finally {
      this.reverting = false;
    }
    this.pending = [];
  }

  private assertUsable(transaction: Transaction | undefined): void {
    if (this.closed) throw new GatewayError("Unavailable", "embedded engine is closed");
    if (transaction && !transaction.open) throw new GatewayError("InternalError", "the transaction has ended");
  }

  /** Hands the pending changes to the journal as one record; resolves once it is on disk. */
  private commit(): Promise<void> {
    const journal = this.journal;
    if (!journal || this.pending.length === 0) return Promise.resolve();
    const changes = this.pending;
    this.pending = [];
    const durable = journal.append(changes);
    if (journal.bytesSinceRotation >= this.compactAfterBytes) this.scheduleCompaction();
    return durable.catch((error: unknown) => {
      this.logError("journal write failed", error);
      throw new GatewayError("InternalError", "the write could not be made durable", {}, { cause: error });
    });
  }

  // ── collections ──────────────────────────────────────────────────────────────────────────────────────────

  collection(ns: Namespace, create: true): EmbeddedCollection;
  collection(ns: Namespace, create: boolean): EmbeddedCollection | undefined;
  collection(ns: Namespace, create: boolean): EmbeddedCollection | undefined {
    let collections = this.databases.get(ns.database);
    if (!collections) {
      if (!create) return undefined;
      collections = new Map();
      this.databases.set(ns.database, collections);
    }
    let collection = collections.get(ns.collection);
    if (!collection && create) {
      collection = new EmbeddedCollection(ns.database, ns.collection);
      collection.observer = this;
      collections.set(ns.collection, collection);
      this.running?.undo.push({ kind: "created", ns });
      this.record({ op: "create", db: ns.database, coll: ns.collection }, ns);
    }
    return collection;
  }

  /** Drops a collection (inside `write`); true when it existed. */
  drop(ns: Namespace): boolean {
    if (this.running) throw invalidParameter("dropCollection is not allowed in a transaction");
    const existed = this.databases.get(ns.database)?.delete(ns.collection) ?? false;
    if (existed) this.record({ op: "drop", db: ns.database, coll: ns.collection }, ns);
    return existed;
  }

  stored(collection: EmbeddedCollection, next: Document, previous: Document | undefined): void {
    if (this.reverting) return;
    this.running?.undo.push({ kind: "stored", collection, next, previous });
    this.record({ op: "put", db: collection.database, coll: collection.name, doc: next }, collection);
  }

  removed(collection: EmbeddedCollection, document: Document): void {
    if (this.reverting) return;
    this.running?.undo.push({ kind: "removed", collection, document });
    this.record({ op: "delete", db: collection.database, coll: collection.name, id: document._id }, collection);
  }

  indexesChanged(collection: EmbeddedCollection): void {
    // Never inside a transaction (EmbeddedBackend refuses createIndexes there): nothing to undo.
    this.record(
      { op: "indexes", db: collection.database, coll: collection.name, indexes: collection.indexDefinitions() },
      collection,
    );
  }

  private record(change: JournalChange, where: Namespace | EmbeddedCollection): void {
    if (!this.options.dataDir) return;
    this.pending.push(change);
    const ns = "name" in where ? { database: where.database, collection: where.name } : where;
    this.dirty.set(keyOf(ns.database, ns.collection), ns);
  }

  // ── TTL ──────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Deletes documents whose TTL index field holds a Date (or an array with one) older than the index's
   * `expireAfterSeconds`, as MongoDB's TTL monitor does. Returns how many were deleted. Skipped while a
   * transaction holds the engine (the next sweep catches up).
   */
  sweepExpired(now: number = Date.now()): number {
    if (this.gate || this.closed || this.journal?.failed) return 0;
    let deleted = 0;
    for (const collections of this.databases.values()) {
      for (const collection of collections.values()) deleted += collection.expire(now);
    }
    // Nobody waits for these; the journal keeps them in order with everything else.
    this.commit().catch(() => {});
    return deleted;
  }

  // ── persistence ──────────────────────────────────────────────────────────────────────────────────────────

  /** Snapshots, then the journal replayed on top: records a collection's snapshot already holds are skipped. */
  private async load(dataDir: string): Promise<void> {
    const states = new Map<string, ReplayState>();
    let lastSnapshotSeq = 0;
    for (const snapshot of await readSnapshots(dataDir)) {
      const ns = { database: snapshot.database, collection: snapshot.collection };
      states.set(keyOf(ns.database, ns.collection), {
        ns,
        covered: snapshot.seq,
        exists: true,
        indexes: snapshot.indexes,
        documents: snapshot.documents,
      });
      lastSnapshotSeq = Math.max(lastSnapshotSeq, snapshot.seq);
    }
    const replayed = new Map<string, Namespace>();
    const outcome = await replayJournal(dataDir, (record) => {
      for (const change of record.changes) {
        const key = keyOf(change.db, change.coll);
        let state = states.get(key);
        if (state && record.seq <= state.covered) continue;
        if (!state) {
          state = {
            ns: { database: change.db, collection: change.coll },
            covered: 0,
            exists: false,
            indexes: [],
            documents: [],
          };
          states.set(key, state);
        }
        applyChange(state, change, record);
        replayed.set(key, state.ns);
      }
    });
    for (const state of states.values()) {
      if (!state.exists) continue;
      const collection = new EmbeddedCollection(state.ns.database, state.ns.collection);
      collection.restore(
        state.indexes,
        Array.isArray(state.documents) ? state.documents : [...state.documents.values()],
      );
      collection.observer = this;
      let collections = this.databases.get(state.ns.database);
      if (!collections) {
        collections = new Map();
        this.databases.set(state.ns.database, collections);
      }
      collections.set(state.ns.collection, collection);
    }
    // What was replayed lives only in the journal: the first compaction moves it into snapshots.
    for (const [key, ns] of replayed) this.dirty.set(key, ns);
    this.journal = await Journal.open(dataDir, outcome.lastSegment, Math.max(outcome.lastSeq, lastSnapshotSeq));
    if (outcome.tornSegments > 0) this.log({ level: "warn", msg: "journal ended in a torn write (ignored)" });
    if (outcome.records > 0) this.scheduleCompaction();
  }

  private scheduleCompaction(): void {
    if (this.compaction || this.compactionTimer || this.closed) return;
    this.compactionTimer = setTimeout(() => {
      this.compactionTimer = undefined;
      this.compact().catch((error: unknown) => this.logError("compaction failed", error));
    }, 0);
    (this.compactionTimer as { unref?: () => void }).unref?.();
  }

  /**
   * Writes a snapshot of every collection changed since its last one (or deletes the snapshot of a dropped
   * one), then deletes the journal segments they make redundant. The journal is rotated at the instant the
   * collections are captured, so every record in older segments is in the snapshots; if any snapshot fails,
   * no segment is deleted (and the collection stays dirty for the next pass).
   */
  async compact(): Promise<void> {
    while (this.compaction) await this.compaction;
    if (!this.journal) return;
    this.compaction = this.runCompaction(this.journal).finally(() => {
      this.compaction = undefined;
    });
    return this.compaction;
  }

  private async runCompaction(journal: Journal): Promise<void> {
    // A transaction's changes are in memory before they are in the journal: never capture one half-way.
    while (this.gate) await this.gate;
    const rotated = journal.rotate();
    const seq = journal.lastSeq;
    const captured = [...this.dirty.values()].map((ns) => {
      const collection = this.collection(ns, false);
      // Stored documents are never mutated, so these arrays are a consistent point-in-time snapshot.
      return collection
        ? { ns, indexes: collection.indexDefinitions(), documents: [...collection.documents.values()] }
        : { ns };
    });
    this.dirty.clear();
    const segment = await rotated;
    const dataDir = this.options.dataDir as string;
    let complete = true;
    for (const item of captured) {
      try {
        if (item.documents) {
          await writeSnapshot(dataDir, {
            database: item.ns.database,
            collection: item.ns.collection,
            seq,
            indexes: item.indexes,
            documents: item.documents,
          });
        } else await deleteSnapshot(dataDir, item.ns.database, item.ns.collection);
      } catch (error) {
        complete = false;
        const key = keyOf(item.ns.database, item.ns.collection);
        if (!this.dirty.has(key)) this.dirty.set(key, item.ns);
        this.logError(`snapshot of ${key} failed`, error);
      }
    }
    if (complete) await journal.deleteSegmentsBefore(segment);
  }

  // ── lifecycle ────────────────────────────────────────────────────────────────────────────────────────────

  get isClosed(): boolean {
    return this.closed;
  }

  /** Stops the sweeper, waits for a running transaction, compacts (snapshots) and closes the journal. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.compactionTimer) clearTimeout(this.compactionTimer);
    this.compactionTimer = undefined;
    while (this.gate) await this.gate;
    const journal = this.journal;
    if (!journal) return;
    await this.compact().catch((error: unknown) => this.logError("final compaction failed", error));
    await journal.close();
  }

  private log(entry: Document): void {
    this.options.log?.(JSON.stringify(entry));
  }

  private logError(msg: string, error: unknown): void {
    this.log({ level: "error", msg, error: String(error).slice(0, 300) });
  }
}

function applyChange(state: ReplayState, change: JournalChange, record: JournalRecord): void {
  const byId = (): Map<string, Document> => {
    if (Array.isArray(state.documents)) {
      state.documents = new Map(state.documents.map((document) => [encodeValue(document._id), document]));
    }
    return state.documents;
  };
  switch (change.op) {
    case "create":
      state.exists = true;
      return;
    case "put":
      state.exists = true;
      byId().set(encodeValue(change.doc._id), change.doc);
      return;
    case "delete":
      byId().delete(encodeValue(change.id));
      return;
    case "indexes":
      state.exists = true;
      state.indexes = change.indexes;
      return;
    case "drop":
      state.exists = false;
      state.indexes = [];
      state.documents = [];
      return;
    default:
      throw new Error(`journal record ${record.seq}: unknown change ${String((change as { op?: unknown }).op)}`);
  }
}
