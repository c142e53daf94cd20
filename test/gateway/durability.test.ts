import { appendFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { replayJournal } from "../../gateway/backends/embedded/journal";
import type { DataApiTestClient, Doc } from "./client";
import { type GatewayProcess, kill, startGatewayChild, tempDir } from "./harness";

/**
 * The embedded engine with a data directory acknowledges a write only once it is durable: the gateway runs
 * as a real process, takes a burst of concurrent writes, is SIGKILLed mid-burst and restarted on the same
 * directory, and every acknowledged write must be there, exactly once.
 */

const DATABASE = "circle_test";

function startGatewayProcess(dataDir: string, env: Record<string, string> = {}): Promise<GatewayProcess> {
  return startGatewayChild({ DATA_API_DATABASES: DATABASE, GATEWAY_DATA_DIR: dataDir, ...env }, DATABASE);
}

// ── the burst: workers each own their documents and run one operation at a time ─────────────────────────────

type Model = Map<string, Doc>;

interface Operation {
  action: string;
  body: Doc;
  /** The operation's effect on the worker's documents, as MongoDB would apply it. */
  apply(model: Model): void;
}

function clone(model: Model): Model {
  return new Map([...model].map(([id, doc]) => [id, structuredClone(doc)]));
}

/** The worker's `step`-th operation (every kind of write the engine journals). */
function operationFor(worker: number, step: number): Operation {
  const n = Math.floor(step / 5);
  const id = `w${worker}-${n}`;
  const sideId = (k: number) => `w${worker}-${k}-side`;
  switch (step % 5) {
    case 0:
      return {
        action: "insertOne",
        body: { document: { _id: id, worker, n, uniq: id, count: 0, log: [] } },
        apply: (model) => model.set(id, { _id: id, worker, n, uniq: id, count: 0, log: [] }),
      };
    case 1:
      return {
        action: "updateOne",
        body: { filter: { _id: id }, update: { $inc: { count: 1 }, $push: { log: step } } },
        apply: (model) => {
          const doc = model.get(id) as Doc;
          doc.count = (doc.count as number) + 1;
          (doc.log as number[]).push(step);
        },
      };
    case 2:
      return {
        action: "findOneAndUpdate",
        body: { filter: { _id: id }, update: { $set: { tag: `t${step}` }, $push: { log: step } } },
        apply: (model) => {
          const doc = model.get(id) as Doc;
          doc.tag = `t${step}`;
          (doc.log as number[]).push(step);
        },
      };
    case 3:
      return {
        action: "bulkWrite",
        body: {
          operations: [
            { insertOne: { document: { _id: sideId(n), worker, uniq: sideId(n) } } },
            { updateOne: { filter: { _id: id }, update: { $push: { log: step } } } },
            { deleteOne: { filter: { _id: sideId(n - 1) } } },
          ],
        },
        apply: (model) => {
          model.set(sideId(n), { _id: sideId(n), worker, uniq: sideId(n) });
          ((model.get(id) as Doc).log as number[]).push(step);
          model.delete(sideId(n - 1));
        },
      };
    default:
      // Every third document is deleted again two rounds later; the others stay.
      if (n >= 2 && n % 3 === 0) {
        const gone = `w${worker}-${n - 2}`;
        return { action: "deleteOne", body: { filter: { _id: gone } }, apply: (model) => model.delete(gone) };
      }
      return {
        action: "updateMany",
        body: { filter: { worker, n: { $lt: n } }, update: { $inc: { count: 10 } } },
        apply: (model) => {
          for (const doc of model.values())
            if (typeof doc.n === "number" && doc.n < n) doc.count = (doc.count as number) + 10;
        },
      };
  }
}

interface WorkerOutcome {
  /** State after every acknowledged operation. */
  acknowledged: Model;
  /** The operation that was in flight when the gateway died (it may or may not have been applied). */
  unsure: Operation | undefined;
  count: number;
}

/** Runs the worker's operations one after the other until the gateway stops answering. */
async function runWorker(
  client: DataApiTestClient,
  collection: string,
  worker: number,
  onAck: () => void,
): Promise<WorkerOutcome> {
  const acknowledged: Model = new Map();
  for (let step = 0; ; step++) {
    const operation = operationFor(worker, step);
    let status: number;
    try {
      status = (await client.call(operation.action, collection, operation.body)).status;
    } catch {
      return { acknowledged, unsure: operation, count: step };
    }
    if (status !== 200) throw new Error(`worker ${worker} step ${step} (${operation.action}) answered ${status}`);
    operation.apply(acknowledged);
    onAck();
  }
}

async function dump(client: DataApiTestClient, collection: string): Promise<Doc[]> {
  return (await client.ok<{ documents: Doc[] }>("find", collection, { filter: {}, sort: { _id: 1 }, limit: 50_000 }))
    .documents;
}

function sorted(model: Model): Doc[] {
  return [...model.values()].sort((a, b) => String(a._id).localeCompare(String(b._id)));
}

function byWorker(documents: Doc[], worker: number): Doc[] {
  return documents.filter((doc) => doc.worker === worker).sort((a, b) => String(a._id).localeCompare(String(b._id)));
}

const WORKERS = 16;

describe("the embedded engine's durability", () => {
  it.each([
    ["the default compaction threshold", {}],
    ["compaction every 16 KiB, so the kill can land mid-snapshot", { GATEWAY_COMPACT_BYTES: "16384" }],
  ])(
    "keeps every acknowledged write across SIGKILL mid-burst (%s)",
    async (label, env) => {
      const dir = await tempDir("gateway-durability-");
      const collection = "burst";
      try {
        const first = await startGatewayProcess(dir.path, env);
        let outcomes: WorkerOutcome[];
        try {
          await first.client.ok("createIndexes", collection, {
            indexes: [{ key: { uniq: 1 }, name: "uniq_unique", unique: true }],
          });
          // A collection created, indexed, filled and dropped: the drop must survive the crash too.
          await first.client.ok("insertOne", "scratch", { document: { _id: 1 } });
          await first.client.ok("createIndexes", "scratch", { indexes: [{ key: { a: 1 }, name: "a_1" }] });
          await first.client.ok("dropCollection", "scratch");

          let acks = 0;
          const started = performance.now();
          const workers = Array.from({ length: WORKERS }, (_, worker) =>
            runWorker(first.client, collection, worker, () => {
              acks++;
            }),
          );
          while (acks < 1_500 && performance.now() - started < 20_000) {
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
          const seconds = (performance.now() - started) / 1000;
          first.child.kill("SIGKILL");
          outcomes = await Promise.all(workers);
          await first.exited;
          console.log(
            `durability burst (${label}): ${acks} acknowledged writes from ${WORKERS} workers in ` +
              `${seconds.toFixed(2)} s (${Math.round(acks / seconds)}/s), ` +
              `${outcomes.filter((outcome) => outcome.unsure).length} in flight at SIGKILL`,
          );
          expect(acks).toBeGreaterThan(100);
        } finally {
          first.child.kill("SIGKILL");
        }

        const second = await startGatewayProcess(dir.path, env);
        let afterCrash: Doc[];
        try {
          afterCrash = await dump(second.client, collection);
          // Each worker's documents are its acknowledged state, or that state with its one unanswered
          // operation applied once (a bulkWrite entirely or not at all).
          outcomes.forEach((outcome, worker) => {
            const actual = byWorker(afterCrash, worker);
            const acknowledged = sorted(outcome.acknowledged);
            if (!outcome.unsure) {
              expect(actual, `worker ${worker}`).toEqual(acknowledged);
              return;
            }
            const applied = clone(outcome.acknowledged);
            outcome.unsure.apply(applied);
            expect([acknowledged, sorted(applied)], `worker ${worker}`).toContainEqual(actual);
          });
          expect(afterCrash.filter((doc) => typeof doc.worker !== "number")).toEqual([]);
          expect(await dump(second.client, "scratch")).toEqual([]);
          expect((await second.client.ok<{ indexes: Doc[] }>("listIndexes", "scratch")).indexes).toEqual([]);
          const { indexes } = await second.client.ok<{ indexes: Doc[] }>("listIndexes", collection);
          expect(indexes.map((index) => index.name).sort()).toEqual(["_id_", "uniq_unique"]);
          const duplicate = await second.client.call("insertOne", collection, {
            document: { uniq: afterCrash[0]?.uniq },
          });
          expect(duplicate.status).toBe(409);
        } catch (error) {
          await kill(second, "SIGKILL");
          throw error;
        }
        expect(await kill(second, "SIGTERM")).toBe(0);

        // A clean shutdown compacts: the data is in snapshots, and a restart finds exactly the same.
        expect((await readdir(join(dir.path, "journal.d"))).length).toBeLessThanOrEqual(1);
        const third = await startGatewayProcess(dir.path, env);
        try {
          expect(await dump(third.client, collection)).toEqual(afterCrash);
        } finally {
          expect(await kill(third, "SIGTERM")).toBe(0);
        }
      } finally {
        await dir.remove();
      }
    },
    120_000,
  );
  it("ignores a torn last journal line and a snapshot cut short, and refuses a journal corrupt in the middle", async () => {
    const dir = await tempDir("gateway-torn-");
    const journal = join(dir.path, "journal.d");
    const segments = async () => (await readdir(journal)).sort().map((name) => join(journal, name));
    try {
      const first = await startGatewayProcess(dir.path);
      await first.client.ok("insertMany", "c", { documents: [{ _id: "a" }, { _id: "b" }] });
      await kill(first, "SIGKILL");
      // A write cut short by the crash, and a snapshot that never got renamed into place.
      await appendFile((await segments()).at(-1) as string, '{"seq":99,"changes":[{"op":"put","db":"circle_test"');
      await mkdir(join(dir.path, DATABASE), { recursive: true });
      await writeFile(join(dir.path, DATABASE, "c.ejsonl.tmp-1-abc"), '{"format":"circle-gateway-embedded/2","se');

      const second = await startGatewayProcess(dir.path);
      expect(await dump(second.client, "c")).toEqual([{ _id: "a" }, { _id: "b" }]);
      expect(await readdir(join(dir.path, DATABASE))).not.toContain("c.ejsonl.tmp-1-abc");
      await second.client.ok("insertOne", "c", { document: { _id: "c" } });
      await kill(second, "SIGKILL");

      // Restarted again, with or without the torn segment compacted away by now.
      const third = await startGatewayProcess(dir.path);
      expect(await dump(third.client, "c")).toEqual([{ _id: "a" }, { _id: "b" }, { _id: "c" }]);
      await third.client.ok("insertOne", "c", { document: { _id: "d" } });
      await kill(third, "SIGKILL");

      // An unreadable line with records after it is not a torn write: the gateway refuses to start.
      const withRecords = (await segments()).at(-1) as string;
      await writeFile(withRecords, `not a record\n${await readFile(withRecords, "utf8")}`);
      await expect(startGatewayProcess(dir.path)).rejects.toThrow(/corrupt/);
    } finally {
      await dir.remove();
    }
  });
  it("replays segments in order, skipping a torn tail at the end of any of them", async () => {
    const dir = await tempDir("gateway-replay-");
    try {
      const journal = join(dir.path, "journal.d");
      await mkdir(journal);
      const put = (seq: number, id: string) =>
        `${JSON.stringify({ seq, changes: [{ op: "put", db: DATABASE, coll: "c", doc: { _id: id } }] })}\n`;
      // Segment 1 was cut short by a crash; segment 2 is what the restart wrote next.
      await writeFile(join(journal, "0000000001.log"), `${put(1, "a")}${put(2, "b")}{"seq":3,"chan`);
      await writeFile(join(journal, "0000000002.log"), `${put(3, "c")}`);
      const seen: number[] = [];
      const outcome = await replayJournal(dir.path, (record) => seen.push(record.seq));
      expect(seen).toEqual([1, 2, 3]);
      expect(outcome).toEqual({ lastSeq: 3, lastSegment: 2, records: 3, tornSegments: 1 });
      await writeFile(join(journal, "0000000003.log"), `${put(3, "again")}`);
      await expect(replayJournal(dir.path, () => {})).rejects.toThrow(/repeats sequence number 3/);
    } finally {
      await dir.remove();
    }
  });
  it("journals a transaction as one record: a committed one survives SIGKILL whole, a rolled-back one not at all", async () => {
    const dir = await tempDir("gateway-tx-");
    try {
      const first = await startGatewayProcess(dir.path);
      const batch = (body: Doc) =>
        first.client.raw("batch", { dataSource: "circle", database: DATABASE, transaction: true, ...body });
      await first.client.ok("createIndexes", "events", {
        indexes: [{ key: { key: 1 }, name: "key_unique", unique: true }],
      });
      const committed = await batch({
        operations: [
          { action: "insertOne", collection: "comments", document: { _id: "c1" } },
          { action: "insertOne", collection: "events", document: { _id: "e1", key: "k1" } },
        ],
      });
      expect(committed.status).toBe(200);
      const rolledBack = await batch({
        operations: [
          { action: "insertOne", collection: "comments", document: { _id: "c2" } },
          { action: "insertOne", collection: "events", document: { _id: "e2", key: "k1" } },
        ],
      });
      expect(rolledBack.status).toBe(409);
      await kill(first, "SIGKILL");

      const second = await startGatewayProcess(dir.path);
      try {
        expect(await dump(second.client, "comments")).toEqual([{ _id: "c1" }]);
        expect(await dump(second.client, "events")).toEqual([{ _id: "e1", key: "k1" }]);
      } finally {
        await kill(second, "SIGTERM");
      }
    } finally {
      await dir.remove();
    }
  });
});
