import { ObjectId } from "bson";
import { describe, expect, it } from "vitest";
import { EmbeddedCollection } from "../../gateway/backends/embedded/collection";
import { Deadline } from "../../gateway/backends/embedded/deadline";
import type { Document, Filter, IndexSpec } from "../../gateway/backends/types";

/**
 * The embedded engine's access paths (secondary-index buckets, `_id` ranges, `_id` order with early stop,
 * unique-key `$in` lookups) against the same engine with the planner off (a scan with the whole filter):
 * every read and write must give identical results, in the same order.
 */

const INDEXES: IndexSpec[] = [
  { key: { a: 1, b: 1 }, name: "a_b" },
  { key: { b: 1 }, name: "b" },
  { key: { c: -1 }, name: "c" },
  { key: { tags: 1 }, name: "tags" },
  { key: { "n.x": 1 }, name: "n_x" },
  { key: { u: 1 }, name: "u_unique", unique: true, sparse: true },
  { key: { g: 1, h: 1 }, name: "g_h" },
  { key: { p: 1 }, name: "p_partial", partialFilterExpression: { p: { $type: "string" } } },
];

/** Deterministic pseudo-random numbers (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function pair(indexes: IndexSpec[] = INDEXES): [EmbeddedCollection, EmbeddedCollection] {
  const planned = new EmbeddedCollection("db", "coll");
  const scanned = new EmbeddedCollection("db", "coll", { planner: false });
  planned.createIndexes(indexes);
  scanned.createIndexes(indexes);
  return [planned, scanned];
}

const deadline = () => Deadline.after(60_000);

describe("embedded engine planner", () => {
  it("answers reads and writes exactly as a scan does, on random data and random queries", () => {
    const rnd = random(Number(process.env.PLANNER_SEED ?? 20261123));
    const pick = <T>(values: readonly T[]): T => values[Math.floor(rnd() * values.length)] as T;
    const [planned, scanned] = pair();
    const base = Math.floor(Date.now() / 1000);
    let counter = 0;
    const ids: ObjectId[] = [];
    const nextId = () => {
      counter++;
      // Mostly ascending ids, sometimes one from the past (inserts out of `_id` order).
      const seconds = rnd() < 0.1 ? base - 1_000 - Math.floor(rnd() * 1_000) : base + counter;
      const id = new ObjectId(
        seconds.toString(16).padStart(8, "0") +
          Math.floor(rnd() * 2 ** 32)
            .toString(16)
            .padStart(10, "0") +
          counter.toString(16).padStart(6, "0"),
      );
      ids.push(id);
      return id;
    };
    const A = [null, 0, 1, 2, 3, "x", "y", 2.5] as const;
    const randomDocument = (): Document => {
      const doc: Document = { _id: nextId() };
      const a = pick([...A, "missing"]);
      if (a !== "missing") doc.a = a;
      const b = pick([true, false, null, "missing"]);
      if (b !== "missing") doc.b = b;
      doc.c = pick([new Date(1_700_000_000_000 + Math.floor(rnd() * 5) * 1000), Math.floor(rnd() * 4), "c"]);
      const tagRoll = rnd();
      if (tagRoll < 0.5) doc.tags = rnd() < 0.2 ? [] : [pick(["t1", "t2", "t3"]), pick(["t1", "t4", null])];
      else if (tagRoll < 0.75) doc.tags = pick(["t1", "t2"]);
      if (rnd() < 0.6) doc.n = rnd() < 0.3 ? [{ x: pick([1, 2]) }, { x: 3 }] : { x: pick([1, 2, null]) };
      if (rnd() < 0.7) doc.u = `u${counter}`;
      doc.g = rnd() < 0.8 ? null : `batch-${Math.floor(rnd() * 3)}`;
      doc.h = rnd() < 0.5;
      if (rnd() < 0.5) doc.p = pick(["p1", "p2", 7]);
      return doc;
    };
    const someIds = (n: number) => Array.from({ length: n }, () => pick(ids));
    const randomFilter = (): Filter => {
      const clauses: Filter[] = [
        { a: pick(A) },
        { a: null },
        { a: { $in: [pick(A), pick(A), null] } },
        { a: pick(A), b: pick([true, false, null]) },
        { a: { $type: "string" } },
        { a: { $ne: pick(A) } },
        { a: { $exists: false } },
        { b: { $ne: true } },
        { b: null },
        { c: pick([0, 1, "c"]) },
        { tags: pick(["t1", "t2", "t4", null]) },
        { tags: { $size: 0 } },
        { "n.x": pick([1, 2, 3, null]) },
        { u: { $in: [`u${Math.floor(rnd() * counter)}`, `u${Math.floor(rnd() * counter)}`, "nope"] } },
        { u: `u${Math.floor(rnd() * counter)}` },
        { g: null, h: false },
        { g: { $type: "string" }, h: pick([true, false]) },
        { g: pick(["batch-0", "batch-1"]) },
        { g: { $in: ["batch-0", "batch-2"] } },
        { p: pick(["p1", "p2", 7]) },
        { _id: { $gte: pick(ids), $lte: pick(ids) } },
        { _id: { $gt: pick(ids) } },
        { _id: { $lt: pick(ids) } },
        { _id: { $in: someIds(4) } },
        { _id: pick(ids) },
        {},
      ];
      const count = 1 + Math.floor(rnd() * 2);
      const filter: Filter = {};
      for (let i = 0; i < count; i++) Object.assign(filter, pick(clauses));
      return filter;
    };
    const both = <T>(work: (collection: EmbeddedCollection) => T): [T, T] => {
      let plannedError: unknown;
      let scannedError: unknown;
      let plannedResult: T | undefined;
      let scannedResult: T | undefined;
      try {
        plannedResult = work(planned);
      } catch (error) {
        plannedError = error;
      }
      try {
        scannedResult = work(scanned);
      } catch (error) {
        scannedError = error;
      }
      expect(String(plannedError ?? "")).toBe(String(scannedError ?? ""));
      return [plannedResult as T, scannedResult as T];
    };

    for (let i = 0; i < 400; i++) {
      const document = randomDocument();
      both((c) => c.insertOne(document));
    }
    let reads = 0;
    let fewerExamined = 0;
    for (let step = 0; step < 600; step++) {
      const roll = rnd();
      if (roll < 0.15) {
        const documents = Array.from({ length: 1 + Math.floor(rnd() * 5) }, randomDocument);
        both((c) => documents.map((d) => c.insertOne(d)));
      } else if (roll < 0.3) {
        const filter = randomFilter();
        const update = pick<Document>([
          { $set: { g: `batch-${Math.floor(rnd() * 3)}` } },
          { $set: { h: true, a: pick(A) } },
          { $unset: { b: "" } },
          { $inc: { c: 1 } },
          { $push: { tags: { $each: ["t5"], $slice: -2 } } },
          { $set: { tags: pick([["t1"], "t3", []]) } },
          { $set: { u: `u${Math.floor(rnd() * counter)}` } },
        ]);
        const [a, b] = both((c) => c.updateMany({ filter, update, upsert: false }, deadline()));
        expect(a).toEqual(b);
      } else if (roll < 0.36) {
        const filter = randomFilter();
        const limit = rnd() < 0.5 ? 1 : 3;
        const [a, b] = both((c) => c.deleteMatching(filter, deadline(), limit));
        expect(a).toEqual(b);
      } else if (roll < 0.42) {
        const filter = randomFilter();
        const h = rnd() < 0.5;
        const [a, b] = both((c) => c.updateOne({ filter, update: { $set: { h } }, upsert: false }, deadline()));
        expect(a).toEqual(b);
      } else {
        const filter = randomFilter();
        const sort = pick([undefined, { _id: 1 as const }, { _id: -1 as const }]);
        const limit = pick([1, 3, 10, 1_000]);
        const skip = pick([0, 0, 2]);
        const projection = pick([undefined, { a: 1 }, { tags: 0 }]);
        const [a, b] = both((c) => {
          const found = c.find(
            { filter, limit, skip, ...(sort ? { sort } : {}), ...(projection ? { projection } : {}) },
            deadline(),
          );
          return { found, examined: c.lastDocsExamined };
        });
        expect(a.found, JSON.stringify({ filter, sort, limit, skip })).toEqual(b.found);
        expect(a.examined).toBeLessThanOrEqual(b.examined);
        reads++;
        if (a.examined < b.examined) fewerExamined++;
      }
    }
    // Both collections hold the same documents in the same order.
    const all = (c: EmbeddedCollection) => c.find({ filter: {}, limit: 100_000 }, deadline());
    expect(all(planned)).toEqual(all(scanned));
    expect(reads).toBeGreaterThan(200);
    expect(fewerExamined).toBeGreaterThan(reads / 4);
  });

  it("claims, tags and settles a batch like the settlement job while examining only what it returns", () => {
    const [votes] = pair([
      { key: { gemBatchId: 1, gemAwarded: 1 }, name: "settlement_batches" },
      { key: { flagged: 1 }, name: "flagged" },
    ]);
    const t0 = Math.floor(Date.now() / 1000) - 3_600;
    const total = 20_000;
    for (let i = 0; i < total; i++) {
      votes.insertOne({
        _id: new ObjectId(`${t0.toString(16)}0000000000${i.toString(16).padStart(6, "0")}`),
        postAuthorId: `author-${i % 97}`,
        gemAwarded: false,
        gemBatchId: null,
        flagged: i % 1_000 === 7,
        shadow: false,
        createdAt: new Date(t0 * 1000 + i),
      });
    }
    const payable = { gemBatchId: null, flagged: false, shadow: { $ne: true }, createdAt: { $lte: new Date() } };
    for (let batch = 0; batch < 3; batch++) {
      const unfinished = votes.find(
        { filter: { gemBatchId: { $type: "string" }, gemAwarded: false }, limit: 1 },
        deadline(),
      );
      expect(unfinished).toEqual([]);
      const claim = votes.find({ filter: payable, sort: { _id: 1 }, limit: 500, projection: { _id: 1 } }, deadline());
      expect(claim).toHaveLength(500);
      // The flagged votes stay unclaimed, so each batch walks past the ones before it.
      expect(votes.lastDocsExamined).toBeLessThanOrEqual(500 + batch + 1);
      const first = claim[0]?._id;
      const last = claim[claim.length - 1]?._id;
      const tagged = votes.updateMany(
        {
          filter: { ...payable, _id: { $gte: first, $lte: last } },
          update: { $set: { gemBatchId: `b${batch}` } },
          upsert: false,
        },
        deadline(),
      );
      expect(tagged.modifiedCount).toBe(500);
      expect(votes.lastDocsExamined).toBeLessThanOrEqual(501);
      const inBatch = votes.find({ filter: { gemBatchId: `b${batch}` }, limit: 50_000 }, deadline());
      expect(inBatch).toHaveLength(500);
      expect(votes.lastDocsExamined).toBe(500);
      const half = votes.updateMany(
        { filter: { gemBatchId: `b${batch}` }, update: { $set: { gemAwarded: true } }, upsert: false },
        deadline(),
      );
      expect(half.modifiedCount).toBe(500);
      // Unfinished batches are found by testing the few distinct batch ids, not by scanning the votes.
      expect(
        votes.find({ filter: { gemBatchId: { $type: "string" }, gemAwarded: false }, limit: 1 }, deadline()),
      ).toEqual([]);
      expect(votes.lastDocsExamined).toBe(0);
    }
  });

  it("applies $push with $each and $slice as MongoDB does, also when the array does not exist yet", () => {
    const [collection] = pair([]);
    collection.insertOne({ _id: 1, list: [1, 2] });
    collection.insertOne({ _id: 2 });
    collection.updateMany(
      { filter: {}, update: { $push: { list: { $each: [3, 4, 5], $slice: -3 } } }, upsert: false },
      deadline(),
    );
    expect(collection.find({ filter: {}, limit: 10 }, deadline())).toEqual([
      { _id: 1, list: [3, 4, 5] },
      { _id: 2, list: [3, 4, 5] },
    ]);
    collection.updateOne(
      { filter: { _id: 2 }, update: { $push: { list: { $each: [6], $slice: 2 } }, $inc: { n: 2 } }, upsert: false },
      deadline(),
    );
    expect(collection.find({ filter: { _id: 2 }, limit: 1 }, deadline())).toEqual([{ _id: 2, list: [3, 4], n: 2 }]);
  });
});
