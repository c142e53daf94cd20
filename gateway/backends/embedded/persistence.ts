import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseEjson, stringifyEjson } from "../../ejson";
import type { Document } from "../types";
import type { IndexDefinition } from "./indexes";

/**
 * Snapshots of the embedded engine under `dataDir`: one file per collection,
 * `<dataDir>/<database>/<collection>.ejsonl`, whose first line is a header (index definitions) and every
 * other line one document as EJSON. A snapshot is written to a temporary file and renamed over the old one,
 * so a crash mid-write leaves the previous snapshot intact.
 */

const FORMAT = "circle-gateway-embedded/1";
const EXTENSION = ".ejsonl";
const DOCUMENTS_PER_CHUNK = 2_000;

export interface CollectionSnapshot {
  database: string;
  collection: string;
  indexes: IndexDefinition[];
  documents: Document[];
}

function fileFor(dataDir: string, database: string, collection: string): string {
  return join(dataDir, encodeURIComponent(database), `${encodeURIComponent(collection)}${EXTENSION}`);
}

export async function writeSnapshot(dataDir: string, snapshot: CollectionSnapshot): Promise<void> {
  const target = fileFor(dataDir, snapshot.database, snapshot.collection);
  await mkdir(join(dataDir, encodeURIComponent(snapshot.database)), { recursive: true });
  const temporary = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const handle = await open(temporary, "w");
  try {
    const header = { format: FORMAT, indexes: snapshot.indexes };
    await handle.write(`${stringifyEjson(header)}\n`);
    // Chunks keep the event loop responsive while a large collection is written.
    for (let start = 0; start < snapshot.documents.length; start += DOCUMENTS_PER_CHUNK) {
      const lines = snapshot.documents
        .slice(start, start + DOCUMENTS_PER_CHUNK)
        .map((document) => stringifyEjson(document));
      await handle.write(`${lines.join("\n")}\n`);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, target);
}

export async function deleteSnapshot(dataDir: string, database: string, collection: string): Promise<void> {
  await rm(fileFor(dataDir, database, collection), { force: true });
}

export async function readSnapshots(dataDir: string): Promise<CollectionSnapshot[]> {
  await mkdir(dataDir, { recursive: true });
  const snapshots: CollectionSnapshot[] = [];
  for (const databaseEntry of await readdir(dataDir, { withFileTypes: true })) {
    if (!databaseEntry.isDirectory()) continue;
    const databaseDir = join(dataDir, databaseEntry.name);
    for (const fileEntry of await readdir(databaseDir, { withFileTypes: true })) {
      if (fileEntry.name.includes(`${EXTENSION}.tmp-`)) {
        // Left over from a crash during a write: the previous snapshot is the valid one.
        await rm(join(databaseDir, fileEntry.name), { force: true });
        continue;
      }
      if (!fileEntry.isFile() || !fileEntry.name.endsWith(EXTENSION)) continue;
      snapshots.push(
        await readSnapshotFile(
          join(databaseDir, fileEntry.name),
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
  const documents: Document[] = [];
  let first = true;
  for await (const line of lines) {
    if (line.length === 0) continue;
    const value = parseEjson(line) as Document;
    if (first) {
      first = false;
      if (value.format !== FORMAT) throw new Error(`${path}: unknown snapshot format ${String(value.format)}`);
      indexes = (value.indexes as IndexDefinition[] | undefined) ?? [];
      continue;
    }
    documents.push(value);
  }
  return { database, collection, indexes, documents };
}
