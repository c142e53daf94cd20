import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseEjson, stringifyEjson } from "../../ejson";
import type { Document } from "../types";
import type { IndexDefinition } from "./indexes";
import { JOURNAL_DIRECTORY, syncDirectory } from "./persistence";

/**
 * The embedded engine's write-ahead journal: `<dataDir>/journal.d/<segment>.log`, one EJSON line per
 * operation, `{seq, changes}`, holding the operation's effect (documents as stored after it, deleted `_id`s,
 * the index list, drops) rather than the request, so replay is exact (generated `_id`s, `$currentDate`,
 * upserts). A write is acknowledged only once its line is fsynced; writes arriving while one fsync runs
 * share the next one (group commit).
 *
 * Segments: the engine appends to the newest, starts a fresh one at every open and every compaction, and
 * deletes the older ones once snapshots hold everything in them. A process killed mid-write leaves at worst
 * a torn last line in a segment, which replay ignores (that write was never acknowledged); an unreadable line
 * with readable ones after it is corruption, and refuses to start.
 */

export type JournalChange =
  | { op: "put"; db: string; coll: string; doc: Document }
  | { op: "delete"; db: string; coll: string; id: unknown }
  | { op: "indexes"; db: string; coll: string; indexes: IndexDefinition[] }
  | { op: "create"; db: string; coll: string }
  | { op: "drop"; db: string; coll: string };

export interface JournalRecord {
  seq: number;
  changes: JournalChange[];
}

const SEGMENT_EXTENSION = ".log";

function segmentName(segment: number): string {
  return `${String(segment).padStart(10, "0")}${SEGMENT_EXTENSION}`;
}

async function listSegments(directory: string): Promise<number[]> {
  const names = await readdir(directory);
  return names
    .filter((name) => /^\d{10}\.log$/.test(name))
    .map((name) => Number(name.slice(0, -SEGMENT_EXTENSION.length)))
    .sort((a, b) => a - b);
}

export interface ReplayOutcome {
  /** Highest sequence number read (0 when the journal is empty). */
  lastSeq: number;
  /** Highest segment number present (0 when there is none). */
  lastSegment: number;
  records: number;
  /** Segments that ended in a torn line (a write cut short by a crash). */
  tornSegments: number;
}

/** Reads every record in order, calling `apply` for each; see the class comment for what is refused. */
export async function replayJournal(dataDir: string, apply: (record: JournalRecord) => void): Promise<ReplayOutcome> {
  const directory = join(dataDir, JOURNAL_DIRECTORY);
  await mkdir(directory, { recursive: true });
  const segments = await listSegments(directory);
  const outcome: ReplayOutcome = { lastSeq: 0, lastSegment: segments.at(-1) ?? 0, records: 0, tornSegments: 0 };
  for (const segment of segments) {
    const path = join(directory, segmentName(segment));
    const lines = createInterface({
      input: createReadStream(path, { encoding: "utf8" }),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    let unreadable: number | undefined;
    let lineNumber = 0;
    for await (const line of lines) {
      lineNumber++;
      if (line.length === 0) continue;
      const record = readRecord(line);
      if (unreadable !== undefined || !record) {
        if (unreadable !== undefined) {
          throw new Error(`${path}: line ${unreadable} is unreadable but later lines are not: the journal is corrupt`);
        }
        unreadable = lineNumber;
        continue;
      }
      if (record.seq <= outcome.lastSeq) {
        throw new Error(`${path}: line ${lineNumber} repeats sequence number ${record.seq}: the journal is corrupt`);
      }
      apply(record);
      outcome.lastSeq = record.seq;
      outcome.records++;
    }
    if (unreadable !== undefined) outcome.tornSegments++;
  }
  return outcome;
}

function readRecord(line: string): JournalRecord | undefined {
  try {
    const value = parseEjson(line) as Partial<JournalRecord> | null;
    if (!value || typeof value.seq !== "number" || !Array.isArray(value.changes)) return undefined;
    return value as JournalRecord;
  } catch {
    return undefined;
  }
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

type QueueItem = { kind: "record"; text: string; waiter?: Waiter } | { kind: "rotate"; waiter: Waiter };

type Handle = Awaited<ReturnType<typeof open>>;

export class Journal {
  private queue: QueueItem[] = [];
  private draining: Promise<void> | undefined;
  private failure: unknown;
  private closed = false;
  /** Bytes appended since the current segment started (what a compaction would free). */
  bytesSinceRotation = 0;

  private constructor(
    private readonly directory: string,
    private handle: Handle,
    private segment: number,
    private seq: number,
  ) {}

  /** Opens a fresh segment after `lastSegment`, numbering records from `lastSeq + 1`. */
  static async open(dataDir: string, lastSegment: number, lastSeq: number): Promise<Journal> {
    const directory = join(dataDir, JOURNAL_DIRECTORY);
    await mkdir(directory, { recursive: true });
    const segment = lastSegment + 1;
    const handle = await open(join(directory, segmentName(segment)), "a");
    await syncDirectory(directory);
    return new Journal(directory, handle, segment, lastSeq);
  }

  /** A write or fsync failed: nothing more is accepted. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Sequence number of the last record appended (durable or not yet). */
  get lastSeq(): number {
    return this.seq;
  }

  /**
   * Appends one record now (its place in the journal is fixed by the call, so records stay in the order the
   * engine applied them) and resolves once it is on disk.
   */
  append(changes: JournalChange[]): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error("journal is closed"));
    this.seq++;
    const text = `${stringifyEjson({ seq: this.seq, changes })}\n`;
    this.bytesSinceRotation += text.length;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: "record", text, waiter: { resolve, reject } });
      this.kick();
    });
  }

  /**
   * Starts a new segment: records appended before this call stay in older segments, later ones go to the new
   * one. Resolves with the new segment's number once it is open; older segments may be deleted once what
   * they hold is in snapshots (`deleteSegmentsBefore`).
   */
  rotate(): Promise<number> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    this.bytesSinceRotation = 0;
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ kind: "rotate", waiter: { resolve: () => resolve(this.segment), reject } });
      this.kick();
    });
  }

  async deleteSegmentsBefore(segment: number): Promise<void> {
    for (const old of await listSegments(this.directory)) {
      if (old < segment) await rm(join(this.directory, segmentName(old)), { force: true });
    }
  }

  /** Waits for every appended record to be on disk, then closes the segment. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.draining) await this.draining;
    await this.handle.close();
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  /** Writes and syncs everything queued, as few fsyncs as the queue allows (one per batch between rotations). */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const items = this.queue;
      this.queue = [];
      let texts: string[] = [];
      let waiters: Waiter[] = [];
      for (const item of items) {
        if (item.kind === "record") {
          texts.push(item.text);
          if (item.waiter) waiters.push(item.waiter);
          continue;
        }
        await this.writeBatch(texts, waiters);
        texts = [];
        waiters = [];
        try {
          await this.startNextSegment();
          item.waiter.resolve();
        } catch (error) {
          this.fail(error);
          item.waiter.reject(error);
        }
      }
      await this.writeBatch(texts, waiters);
    }
  }

  private async writeBatch(texts: string[], waiters: Waiter[]): Promise<void> {
    if (texts.length === 0) return;
    if (this.failure !== undefined) {
      for (const waiter of waiters) waiter.reject(this.failure);
      return;
    }
    try {
      await this.handle.writeFile(texts.join(""));
      await this.handle.datasync();
      for (const waiter of waiters) waiter.resolve();
    } catch (error) {
      this.fail(error);
      for (const waiter of waiters) waiter.reject(error);
    }
  }

  private async startNextSegment(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const next = this.segment + 1;
    const handle = await open(join(this.directory, segmentName(next)), "a");
    await syncDirectory(this.directory);
    const previous = this.handle;
    this.handle = handle;
    this.segment = next;
    await previous.close();
  }

  /** After a failed write nothing more is accepted: what is in memory may no longer match the disk. */
  private fail(error: unknown): void {
    this.failure ??= error;
  }
}
