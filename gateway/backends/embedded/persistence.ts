import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseEjson, stringifyEjson } from "../../ejson";
import type { Document } from "../types";
import type { IndexDefinition } from "./indexes";

/**
 * Snapshots of the embedded engine under `dataDir`: one file per collection,
 * `<dataDir>/<database>/<collection>.ejsonl`, whose first line is a header (index definitions and `seq`, the
 * last journal record the snapshot includes) and every other line one document as EJSON. A snapshot is
 * written to a temporary file, synced and renamed over the old one, so a crash mid-write leaves the previous
 * snapshot intact (and the journal, which is only trimmed once every snapshot of a pass is in place, still
 * holds everything after it). Format 1 files (before the journal) read as covering nothing of it.
 */

const FORMAT = "circle-gateway-embedded/2";
const FORMAT_WITHOUT_JOURNAL = "circle-gateway-embedded/1";
const EXTENSION = ".ejsonl";
const DOCUMENTS_PER_CHUNK = 2_000;

export interface CollectionSnapshot {
  database: string;
  collection: string;
  /** Journal records up to and including this sequence number are in the snapshot. */
  seq: number;
  indexes: IndexDefinition[];
  documents: Document[];
}

function databaseDir(dataDir: string, database: string): string {
  return join(dataDir, encodeURIComponent(database));
}

function fileFor(dataDir: string, database: string, collection: string): string {
  return join(databaseDir(dataDir, database), `${encodeURIComponent(collection)}${EXTENSION}`);
}

export async function writeSnapshot(dataDir: string, snapshot: CollectionSnapshot): Promise<void> {
  const target = fileFor(dataDir, snapshot.database, snapshot.collection);
  const directory = databaseDir(dataDir, snapshot.database);
  await mkdir(directory, { recursive: true });
  const temporary = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const handle = await open(temporary, "w");
  try {
    const header = { format: FORMAT, seq: snapshot.seq, indexes: snapshot.indexes };
    await handle.writeFile(`${stringifyEjson(header)}\n`);
    // Chunks keep the event loop responsive while a large collection is written.
    for (let start = 0; start < snapshot.documents.length; start += DOCUMENTS_PER_CHUNK) {
      const lines = snapshot.documents
        .slice(start, start + DOCUMENTS_PER_CHUNK)
        .map((document) => stringifyEjson(document));
      await handle.writeFile(`${lines.join("\n")}\n`);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, target);
  // The rename itself must be on disk before the journal records it replaces are deleted.
  await syncDirectory(directory);
}

export async function deleteSnapshot(dataDir: string, database: string, collection: string): Promise<void> {
  await rm(fileFor(dataDir, database, collection), { force: true });
  await syncDirectory(databaseDir(dataDir, database)).catch(() => {});
}

export async function readSnapshots(dataDir: string): Promise<CollectionSnapshot[]> {
  await mkdir(dataDir, { recursive: true });
  const snapshots: CollectionSnapshot[] = [];
  for (const databaseEntry of await readdir(dataDir, { withFileTypes: true })) {
    if (!databaseEntry.isDirectory() || databaseEntry.name === JOURNAL_DIRECTORY) continue;
    const directory = join(dataDir, databaseEntry.name);
    for (const fileEntry of await readdir(directory, { withFileTypes: true })) {
      if (fileEntry.name.includes(`${EXTENSION}.tmp-`)) {
        // Left over from a crash during a write: the previous snapshot is the valid one.
        await rm(join(directory, fileEntry.name), { force: true });
        continue;
      }
      if (!fileEntry.isFile() || !fileEntry.name.endsWith(EXTENSION)) continue;
      snapshots.push(
        await readSnapshotFile(
          join(directory, fileEntry.name),
          decodeURIComponent(databaseEntry.name),
          decodeURIComponent(fileEntry.name.slice(0, -EXTENSION.length)),
        ),
      );
    }
  }
  return snapshots;
}

async function readSnapshotFile(path: string, database: string, collection: string): Promise<CollectionSnapshot> {
  const lines = createInterface({
    input: createReadStream(path, { encoding: "utf8" }),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let indexes: IndexDefinition[] = [];
  let seq = 0;
  const documents: Document[] = [];
  let first = true;
  for await (const line of lines) {
    if (line.length === 0) continue;
    const value = parseEjson(line) as Document;
    if (first) {
      first = false;
      if (value.format !== FORMAT && value.format !== FORMAT_WITHOUT_JOURNAL) {
        throw new Error(`${path}: unknown snapshot format ${String(value.format)}`);
      }
      indexes = (value.indexes as IndexDefinition[] | undefined) ?? [];
      seq = typeof value.seq === "number" ? value.seq : 0;
      continue;
    }
    documents.push(value);
  }
  return { database, collection, seq, indexes, documents };
}

/** Where the journal's segments live (journal.ts): a name no database can have (MongoDB refuses "." in one). */
export const JOURNAL_DIRECTORY = "journal.d";

/**
 * fsync of a directory, so that files created, renamed or removed in it stay so after a power cut. Best
 * effort where the platform has no such call (it throws EISDIR / EPERM / EINVAL there).
 */
export async function syncDirectory(path: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(path, "r");
    await handle.sync();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== "EISDIR" && code !== "EPERM" && code !== "EINVAL" && code !== "EBADF") throw error;
  } finally {
    await handle?.close();
  }
}
