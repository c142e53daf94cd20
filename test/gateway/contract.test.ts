import { Decimal128, EJSON, Long, ObjectId } from "bson";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectEvery } from "../support/expect";
import type { DataApiTestClient, Doc } from "./client";
import { API_KEY, BACKENDS, eventually, startTestGateway, type TestGateway, uniqueName } from "./harness";

/**
 * The Data API contract, run unchanged against every backend: the embedded engine always, MongoDB when
 * MONGODB_URI is set. Only what passes here on both may be used by the app.
 */

interface UpdateResult {
  matchedCount: number;
  modifiedCount: number;
  upsertedId?: unknown;
}

interface DuplicateKeyBody {
  error: string;
  error_code: string;
  keyPattern?: Doc;
  keyValue?: Doc;
  writeErrors?: { index: number; code: number; errmsg: string; keyPattern?: Doc; keyValue?: Doc }[];
  result?: Doc;
}

describe.each(BACKENDS)("Data API contract on $kind", ({ kind, available }) => {
  let main: TestGateway;
  /** A second gateway with tiny limits, for the limit and body-size answers. */
  let small: TestGateway;
  let api: DataApiTestClient;

  beforeAll(async () => {
    if (!available) return;
    main = await startTestGateway(kind, { maxLimit: 1_000 });
    small = await startTestGateway(kind, { maxLimit: 5, maxBodyBytes: 2_048, allowDrop: false });
    api = main.client;
  });

  afterAll(async () => {
    await main?.stop();
    await small?.stop();
  });

  const test = it.skipIf(!available);

  describe.skipIf(!available)("reads and writes", () => {
    test("insertOne, findOne and find round-trip EJSON types", async () => {
      const coll = uniqueName("types");
      const id = new ObjectId();
      const at = new Date("2024-05-06T07:08:09.123Z");
      const document = {
        _id: id,
        at,
        price: Decimal128.fromString("12.50"),
        big: Long.fromString("9007199254740993"),
        count: 3_000_000_000,
        ratio: 0.25,
        flag: true,
        nothing: null,
        tags: ["a", "b"],
        nested: { deep: { ok: 1 } },
      };
      // Canonical EJSON, as a client that cares about int64 sends it (relaxed would round the Long).
      const canonical = EJSON.stringify(
        { dataSource: "circle", database: main.database, collection: coll, document },
        { relaxed: false },
      );
      const inserted = await api.raw<{ insertedId: ObjectId }>("insertOne", canonical);
      expect(inserted.status).toBe(200);
      expect(inserted.headers.get("content-type")).toContain("application/ejson");
      expect(inserted.body.insertedId.toHexString()).toBe(id.toHexString());

      const found = await api.raw(
        "findOne",
        JSON.stringify({
          dataSource: "circle",
          database: main.database,
          collection: coll,
          filter: { _id: { $oid: id.toHexString() } },
        }),
      );
      expect(found.text).toContain('"$numberLong":"9007199254740993"');
      const doc = (found.body as { document: Doc }).document;
      expect((doc._id as ObjectId).toHexString()).toBe(id.toHexString());
      expect(doc.at).toEqual(at);
      expect(String(doc.price)).toBe("12.50");
      expect(doc.count).toBe(3_000_000_000);
      expect(doc.ratio).toBe(0.25);
      expect(doc.flag).toBe(true);
      expect(doc.nothing).toBeNull();
      expect(doc.tags).toEqual(["a", "b"]);
      expect(doc.nested).toEqual({ deep: { ok: 1 } });

      const byDate = await api.ok<{ documents: Doc[] }>("find", coll, {
        filter: { at: { $gte: new Date("2024-01-01") } },
      });
      expect(byDate.documents).toHaveLength(1);
      const missing = await api.ok<{ document: Doc | null }>("findOne", coll, { filter: { _id: new ObjectId() } });
      expect(missing.document).toBeNull();
    });

    test("insertOne assigns an ObjectId _id when missing", async () => {
      const coll = uniqueName("ids");
      const { insertedId } = await api.ok<{ insertedId: ObjectId }>("insertOne", coll, { document: { name: "x" } });
      expect(insertedId).toBeInstanceOf(ObjectId);
      const { document } = await api.ok<{ document: Doc }>("findOne", coll, { filter: { _id: insertedId } });
      expect(document.name).toBe("x");
    });

    test("find honours filter, projection, sort, skip and limit", async () => {
      const coll = uniqueName("find");
      const documents = Array.from({ length: 10 }, (_, i) => ({
        _id: i,
        n: i,
        parity: i % 2 ? "odd" : "even",
        extra: "x",
      }));
      await api.ok("insertMany", coll, { documents });
      const { documents: page } = await api.ok<{ documents: Doc[] }>("find", coll, {
        filter: { parity: "even" },
        projection: { n: 1 },
        sort: { n: -1 },
        skip: 1,
        limit: 2,
      });
      expect(page).toEqual([
        { _id: 6, n: 6 },
        { _id: 4, n: 4 },
      ]);
      const { documents: excluded } = await api.ok<{ documents: Doc[] }>("find", coll, {
        filter: { n: { $in: [1, 2] } },
        projection: { extra: 0, _id: 0 },
        sort: { n: 1 },
      });
      expect(excluded).toEqual([
        { n: 1, parity: "odd" },
        { n: 2, parity: "even" },
      ]);
      const { document } = await api.ok<{ document: Doc }>("findOne", coll, {
        filter: { n: { $gt: 3 } },
        sort: { n: -1 },
      });
      expect(document.n).toBe(9);
      const { documents: all } = await api.ok<{ documents: Doc[] }>("find", coll, { filter: { n: { $lt: 100 } } });
      expect(all).toHaveLength(10);
    });

    test("insertMany returns the ids in order", async () => {
      const coll = uniqueName("many");
      const given = new ObjectId();
      const { insertedIds } = await api.ok<{ insertedIds: unknown[] }>("insertMany", coll, {
        documents: [{ a: 1 }, { _id: given, a: 2 }, { a: 3 }],
      });
      expect(insertedIds).toHaveLength(3);
      expect((insertedIds[1] as ObjectId).toHexString()).toBe(given.toHexString());
      const stored = await api.findAll(coll, {}, { a: 1 });
      expect(stored.map((d) => String(d._id))).toEqual(insertedIds.map(String));
    });

    test("update operators", async () => {
      const coll = uniqueName("operators");
      await api.ok("insertOne", coll, {
        document: {
          _id: 1,
          counter: 5,
          low: 10,
          high: 10,
          factor: 3,
          old: "renamed",
          gone: true,
          list: [1, 2, 3],
          set: ["a"],
          items: [{ k: 1 }, { k: 2 }, { k: 3 }],
          stack: [1, 2, 3],
        },
      });
      const result = await api.ok<UpdateResult>("updateOne", coll, {
        filter: { _id: 1 },
        update: {
          $set: { "nested.value": "x" },
          $unset: { gone: "" },
          $inc: { counter: 2 },
          $min: { low: 4 },
          $max: { high: 20 },
          $mul: { factor: 2 },
          $rename: { old: "fresh" },
          $push: { list: { $each: [9, 8], $position: 0, $slice: 4 } },
          $addToSet: { set: { $each: ["a", "b"] } },
          $pull: { items: { k: 2 } },
          $pop: { stack: -1 },
          $currentDate: { touchedAt: true },
        },
      });
      expect(result).toEqual({ matchedCount: 1, modifiedCount: 1 });
      const { document } = await api.ok<{ document: Doc }>("findOne", coll, { filter: { _id: 1 } });
      expect(document).toMatchObject({
        counter: 7,
        low: 4,
        high: 20,
        factor: 6,
        fresh: "renamed",
        nested: { value: "x" },
        list: [9, 8, 1, 2],
        set: ["a", "b"],
        items: [{ k: 1 }, { k: 3 }],
        stack: [2, 3],
      });
      expect(document).not.toHaveProperty("gone");
      expect(document).not.toHaveProperty("old");
      expect(document.touchedAt).toBeInstanceOf(Date);

      const noop = await api.ok<UpdateResult>("updateOne", coll, {
        filter: { _id: 1 },
        update: { $set: { counter: 7 } },
      });
      expect(noop).toEqual({ matchedCount: 1, modifiedCount: 0 });
      const none = await api.ok<UpdateResult>("updateOne", coll, { filter: { _id: 2 }, update: { $set: { a: 1 } } });
      expect(none).toEqual({ matchedCount: 0, modifiedCount: 0 });
    });

    test("positional $ update", async () => {
      const coll = uniqueName("positional");
      await api.ok("insertOne", coll, {
        document: {
          _id: 1,
          items: [
            { k: 1, v: 0 },
            { k: 2, v: 0 },
          ],
        },
      });
      await api.ok("updateOne", coll, { filter: { _id: 1, "items.k": 2 }, update: { $set: { "items.$.v": 5 } } });
      const { document } = await api.ok<{ document: Doc }>("findOne", coll, { filter: { _id: 1 } });
      expect(document.items).toEqual([
        { k: 1, v: 0 },
        { k: 2, v: 5 },
      ]);
    });

    test("updateMany counts matched and modified", async () => {
      const coll = uniqueName("updatemany");
      await api.ok("insertMany", coll, {
        documents: [
          { g: 1, v: 0 },
          { g: 1, v: 1 },
          { g: 2, v: 0 },
        ],
      });
      const result = await api.ok<UpdateResult>("updateMany", coll, { filter: { g: 1 }, update: { $set: { v: 1 } } });
      expect(result).toEqual({ matchedCount: 2, modifiedCount: 1 });
    });

    test("upsert seeds from the filter's equalities and applies $setOnInsert only on insert", async () => {
      const coll = uniqueName("upsert");
      const first = await api.ok<UpdateResult>("updateOne", coll, {
        filter: { key: "k1", "meta.kind": "x", n: { $gte: 0 }, $and: [{ region: "eu" }] },
        update: { $inc: { count: 1 }, $setOnInsert: { createdBy: "first" } },
        upsert: true,
      });
      expect(first.matchedCount).toBe(0);
      expect(first.upsertedId).toBeInstanceOf(ObjectId);
      const second = await api.ok<UpdateResult>("updateOne", coll, {
        filter: { key: "k1" },
        update: { $inc: { count: 1 }, $setOnInsert: { createdBy: "second" } },
        upsert: true,
      });
      expect(second).toEqual({ matchedCount: 1, modifiedCount: 1 });
      const [document] = await api.findAll(coll);
      expect(document).toEqual({
        _id: first.upsertedId,
        key: "k1",
        meta: { kind: "x" },
        region: "eu",
        count: 2,
        createdBy: "first",
      });
      const many = await api.ok<UpdateResult>("updateMany", coll, {
        filter: { key: "k2" },
        update: { $set: { v: 1 } },
        upsert: true,
      });
      expect(many.upsertedId).toBeDefined();
      expect(await api.findAll(coll, { key: "k2" })).toHaveLength(1);
    });

    test("pipeline updates", async () => {
      const coll = uniqueName("pipeline_update");
      await api.ok("insertOne", coll, { document: { _id: 1, a: 2, b: 3, tmp: "x" } });
      const result = await api.ok<UpdateResult>("updateOne", coll, {
        filter: { _id: 1 },
        update: [{ $set: { total: { $add: ["$a", "$b"] }, label: { $concat: ["n", "-", "1"] } } }, { $unset: "tmp" }],
      });
      expect(result).toEqual({ matchedCount: 1, modifiedCount: 1 });
      expect(await api.findAll(coll)).toEqual([{ _id: 1, a: 2, b: 3, total: 5, label: "n-1" }]);
      await api.ok("updateOne", coll, {
        filter: { _id: 2, seed: "s" },
        update: [{ $set: { made: { $literal: true } } }],
        upsert: true,
      });
      expect(await api.findAll(coll, { _id: 2 })).toEqual([{ _id: 2, seed: "s", made: true }]);
      const replaced = await api.ok<UpdateResult>("updateOne", coll, {
        filter: { _id: 1 },
        update: [{ $replaceWith: { _id: "$_id", a: "$a", only: 1 } }],
      });
      expect(replaced.modifiedCount).toBe(1);
      expect(await api.findAll(coll, { _id: 1 })).toEqual([{ _id: 1, a: 2, only: 1 }]);
    });

    test("replaceOne, with upsert taking _id from the filter", async () => {
      const coll = uniqueName("replace");
      await api.ok("insertOne", coll, { document: { _id: "a", v: 1, old: true } });
      const replaced = await api.ok<UpdateResult>("replaceOne", coll, { filter: { _id: "a" }, replacement: { v: 2 } });
      expect(replaced).toEqual({ matchedCount: 1, modifiedCount: 1 });
      expect(await api.findAll(coll)).toEqual([{ _id: "a", v: 2 }]);
      const upserted = await api.ok<UpdateResult>("replaceOne", coll, {
        filter: { _id: "b" },
        replacement: { v: 3 },
        upsert: true,
      });
      expect(upserted.upsertedId).toBe("b");
      const bad = await api.call("replaceOne", coll, { filter: { _id: "a" }, replacement: { $set: { v: 1 } } });
      expect(bad.status).toBe(400);
      expect(bad.body.error_code).toBe("InvalidParameter");
    });

    test("deleteOne and deleteMany", async () => {
      const coll = uniqueName("delete");
      await api.ok("insertMany", coll, { documents: [{ g: 1 }, { g: 1 }, { g: 1 }, { g: 2 }] });
      expect(await api.ok("deleteOne", coll, { filter: { g: 1 } })).toEqual({ deletedCount: 1 });
      expect(await api.ok("deleteMany", coll, { filter: { g: 1 } })).toEqual({ deletedCount: 2 });
      expect(await api.ok("deleteMany", coll, { filter: { g: 9 } })).toEqual({ deletedCount: 0 });
      expect(await api.findAll(coll)).toHaveLength(1);
    });

    test("aggregate with $group, $sort, $project and $lookup across collections", async () => {
      const users = uniqueName("users");
      const posts = uniqueName("posts");
      await api.ok("insertMany", users, {
        documents: [
          { _id: "u1", name: "Ann" },
          { _id: "u2", name: "Bo" },
        ],
      });
      await api.ok("insertMany", posts, {
        documents: [
          { _id: 1, userId: "u1", votes: 3 },
          { _id: 2, userId: "u1", votes: 4 },
          { _id: 3, userId: "u2", votes: 1 },
        ],
      });
      const { documents: totals } = await api.ok<{ documents: Doc[] }>("aggregate", posts, {
        pipeline: [
          { $match: { votes: { $gte: 1 } } },
          { $group: { _id: "$userId", votes: { $sum: "$votes" }, posts: { $sum: 1 } } },
          { $sort: { votes: -1 } },
        ],
      });
      expect(totals).toEqual([
        { _id: "u1", votes: 7, posts: 2 },
        { _id: "u2", votes: 1, posts: 1 },
      ]);
      const { documents: joined } = await api.ok<{ documents: Doc[] }>("aggregate", posts, {
        pipeline: [
          { $match: { _id: { $in: [1, 3] } } },
          { $lookup: { from: users, localField: "userId", foreignField: "_id", as: "author" } },
          { $unwind: "$author" },
          { $project: { _id: 1, author: "$author.name" } },
          { $sort: { _id: 1 } },
        ],
      });
      expect(joined).toEqual([
        { _id: 1, author: "Ann" },
        { _id: 3, author: "Bo" },
      ]);
      const { documents: piped } = await api.ok<{ documents: Doc[] }>("aggregate", users, {
        pipeline: [
          {
            $lookup: {
              from: posts,
              let: { uid: "$_id" },
              pipeline: [{ $match: { $expr: { $eq: ["$userId", "$$uid"] } } }, { $count: "n" }],
              as: "stats",
            },
          },
          { $sort: { _id: 1 } },
          { $project: { _id: 1, stats: 1 } },
        ],
      });
      expect(piped).toEqual([
        { _id: "u1", stats: [{ n: 2 }] },
        { _id: "u2", stats: [{ n: 1 }] },
      ]);
      // The stored documents are untouched by the pipeline.
      expect(await api.findAll(users)).toEqual([
        { _id: "u1", name: "Ann" },
        { _id: "u2", name: "Bo" },
      ]);
    });
  });

  describe.skipIf(!available)("extensions", () => {
    test("findOneAndUpdate returns the document after (default) or before, with sort and projection", async () => {
      const coll = uniqueName("fau");
      await api.ok("insertMany", coll, {
        documents: [
          { _id: 1, q: 1, n: 0 },
          { _id: 2, q: 1, n: 0 },
        ],
      });
      const after = await api.ok<{ document: Doc }>("findOneAndUpdate", coll, {
        filter: { q: 1 },
        update: { $inc: { n: 1 } },
        sort: { _id: -1 },
        projection: { n: 1 },
      });
      expect(after.document).toEqual({ _id: 2, n: 1 });
      // The updated document is returned even when it no longer matches the filter.
      const moved = await api.ok<{ document: Doc | null }>("findOneAndUpdate", coll, {
        filter: { _id: 2, n: { $lt: 2 } },
        update: { $inc: { n: 5 } },
        projection: { n: 1 },
      });
      expect(moved.document).toEqual({ _id: 2, n: 6 });
      const before = await api.ok<{ document: Doc }>("findOneAndUpdate", coll, {
        filter: { _id: 1 },
        update: { $set: { n: 5 } },
        returnDocument: "before",
      });
      expect(before.document).toEqual({ _id: 1, q: 1, n: 0 });
      const missing = await api.ok<{ document: Doc | null }>("findOneAndUpdate", coll, {
        filter: { _id: 3 },
        update: { $set: { n: 1 } },
      });
      expect(missing.document).toBeNull();
      const upserted = await api.ok<{ document: Doc }>("findOneAndUpdate", coll, {
        filter: { _id: 3 },
        update: { $set: { n: 1 }, $setOnInsert: { fresh: true } },
        upsert: true,
      });
      expect(upserted.document).toEqual({ _id: 3, n: 1, fresh: true });
      const upsertedBefore = await api.ok<{ document: Doc | null }>("findOneAndUpdate", coll, {
        filter: { _id: 4 },
        update: { $set: { n: 1 } },
        upsert: true,
        returnDocument: "before",
      });
      expect(upsertedBefore.document).toBeNull();
    });

    test("findOneAndDelete removes the first document in sort order", async () => {
      const coll = uniqueName("fad");
      await api.ok("insertMany", coll, {
        documents: [
          { _id: 1, p: 5 },
          { _id: 2, p: 9 },
          { _id: 3, p: 1 },
        ],
      });
      const { document } = await api.ok<{ document: Doc }>("findOneAndDelete", coll, {
        filter: {},
        sort: { p: -1 },
        projection: { _id: 1 },
      });
      expect(document).toEqual({ _id: 2 });
      expect((await api.findAll(coll)).map((d) => d._id)).toEqual([1, 3]);
      const none = await api.ok<{ document: Doc | null }>("findOneAndDelete", coll, { filter: { _id: 42 } });
      expect(none.document).toBeNull();
    });

    test("bulkWrite runs every operation kind and reports counts and ids", async () => {
      const coll = uniqueName("bulk");
      await api.ok("insertMany", coll, {
        documents: [
          { _id: 1, v: 0 },
          { _id: 2, v: 0 },
          { _id: 3, v: 0 },
        ],
      });
      const result = await api.ok<Doc>("bulkWrite", coll, {
        operations: [
          { insertOne: { document: { _id: 10, v: 1 } } },
          { updateOne: { filter: { _id: 1 }, update: { $set: { v: 1 } } } },
          { updateMany: { filter: { _id: { $in: [2, 3] } }, update: { $set: { v: 2 } } } },
          { replaceOne: { filter: { _id: 2 }, replacement: { v: 9 } } },
          { updateOne: { filter: { _id: 20 }, update: { $set: { v: 1 } }, upsert: true } },
          { deleteOne: { filter: { _id: 3 } } },
          { deleteMany: { filter: { v: 999 } } },
        ],
      });
      expect(result).toEqual({
        insertedCount: 1,
        matchedCount: 4,
        modifiedCount: 4,
        deletedCount: 1,
        upsertedCount: 1,
        insertedIds: { 0: 10 },
        upsertedIds: { 4: 20 },
      });
      expect(await api.findAll(coll)).toEqual([
        { _id: 1, v: 1 },
        { _id: 2, v: 9 },
        { _id: 10, v: 1 },
        { _id: 20, v: 1 },
      ]);
    });

    test("createIndexes is idempotent, lists indexes and refuses a changed spec under the same name", async () => {
      const coll = uniqueName("indexes");
      const specs = [
        { key: { email: 1 }, name: "email_unique", unique: true },
        { key: { userId: 1, createdAt: -1 }, name: "user_created" },
        { key: { score: -1 } },
      ];
      const first = await api.ok<{ createdIndexes: string[] }>("createIndexes", coll, { indexes: specs });
      expect(first.createdIndexes.sort()).toEqual(["email_unique", "score_-1", "user_created"]);
      const again = await api.ok<{ createdIndexes: string[] }>("createIndexes", coll, { indexes: specs });
      expect(again.createdIndexes).toEqual([]);
      const { indexes } = await api.ok<{ indexes: Doc[] }>("listIndexes", coll);
      const byName = Object.fromEntries(indexes.map((index) => [index.name, index]));
      expect(Object.keys(byName).sort()).toEqual(["_id_", "email_unique", "score_-1", "user_created"]);
      expect(byName.email_unique).toMatchObject({ key: { email: 1 }, unique: true });
      expect(byName.user_created?.key).toEqual({ userId: 1, createdAt: -1 });
      const conflict = await api.call("createIndexes", coll, {
        indexes: [{ key: { email: 1 }, name: "email_unique" }],
      });
      expect(conflict.status).toBe(409);
      expect(conflict.body.error_code).toBe("IndexConflict");
      const keyConflict = await api.call("createIndexes", coll, {
        indexes: [{ key: { other: 1 }, name: "email_unique", unique: true }],
      });
      expect(keyConflict.status).toBe(409);
      expect(keyConflict.body.error_code).toBe("IndexConflict");
      expect((await api.ok<{ indexes: Doc[] }>("listIndexes", uniqueName("nothing"))).indexes).toEqual([]);
    });

    test("dropIndex retires an index by name, idempotently, and never _id_", async () => {
      const coll = uniqueName("dropindex");
      await api.ok("createIndexes", coll, {
        indexes: [{ key: { createdAt: 1 }, name: "ttl_short", expireAfterSeconds: 3600 }],
      });
      expect(await api.ok("dropIndex", coll, { name: "ttl_short" })).toEqual({ dropped: true });
      expect(await api.ok("dropIndex", coll, { name: "ttl_short" })).toEqual({ dropped: false });
      expect(await api.ok("dropIndex", uniqueName("nothing"), { name: "ttl_short" })).toEqual({ dropped: false });
      const names = (await api.ok<{ indexes: Doc[] }>("listIndexes", coll)).indexes.map((i) => i.name);
      expect(names).toEqual(["_id_"]);
      // A document that the dropped TTL index would have expired at once stays.
      await api.ok("insertOne", coll, { document: { createdAt: { $date: "2000-01-01T00:00:00Z" } } });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(await api.findAll(coll)).toHaveLength(1);
      const refused = await api.call("dropIndex", coll, { name: "_id_" });
      expect(refused.status).toBe(400);
      expect(refused.body.error_code).toBe("InvalidParameter");
    });

    test("dropCollection (enabled for tests only)", async () => {
      const coll = uniqueName("drop");
      await api.ok("insertOne", coll, { document: { a: 1 } });
      expect(await api.ok("dropCollection", coll)).toEqual({ dropped: true });
      expect(await api.findAll(coll)).toEqual([]);
      const refused = await small.client.call("dropCollection", coll);
      expect(refused.status).toBe(404);
      expect(refused.body.error_code).toBe("ActionNotFound");
    });
  });

  describe.skipIf(!available)("unique indexes", () => {
    async function expectDuplicate(
      response: { status: number; body: Doc },
      keyPattern: Doc,
      keyValue: Doc,
    ): Promise<DuplicateKeyBody> {
      expect(response.status).toBe(409);
      const body = response.body as unknown as DuplicateKeyBody;
      expect(body.error_code).toBe("DuplicateKey");
      expect(body.error).toContain("E11000");
      expect(body.keyPattern).toEqual(keyPattern);
      expect(body.keyValue).toEqual(keyValue);
      return body;
    }

    test("insert, update, upsert and replace that collide are refused without a partial write", async () => {
      const coll = uniqueName("unique");
      await api.ok("createIndexes", coll, { indexes: [{ key: { email: 1 }, name: "email_unique", unique: true }] });
      await api.ok("insertMany", coll, {
        documents: [
          { _id: 1, email: "a@x", n: 1 },
          { _id: 2, email: "b@x", n: 2 },
        ],
      });
      await expectDuplicate(
        await api.call("insertOne", coll, { document: { _id: 3, email: "a@x" } }),
        { email: 1 },
        { email: "a@x" },
      );
      await expectDuplicate(
        await api.call("updateOne", coll, { filter: { _id: 2 }, update: { $set: { email: "a@x", n: 99 } } }),
        { email: 1 },
        { email: "a@x" },
      );
      await expectDuplicate(
        await api.call("updateOne", coll, {
          filter: { n: 7 },
          update: { $set: { email: "b@x", other: 1 } },
          upsert: true,
        }),
        { email: 1 },
        { email: "b@x" },
      );
      await expectDuplicate(
        await api.call("replaceOne", coll, { filter: { _id: 1 }, replacement: { email: "b@x", n: 5 } }),
        { email: 1 },
        { email: "b@x" },
      );
      await expectDuplicate(
        await api.call("findOneAndUpdate", coll, { filter: { _id: 1 }, update: { $set: { email: "b@x" } } }),
        { email: 1 },
        { email: "b@x" },
      );
      await expectDuplicate(
        await api.call("insertOne", coll, { document: { _id: 1, email: "new@x" } }),
        { _id: 1 },
        { _id: 1 },
      );
      expect(await api.findAll(coll)).toEqual([
        { _id: 1, email: "a@x", n: 1 },
        { _id: 2, email: "b@x", n: 2 },
      ]);
      // Freeing the key lets the next write take it.
      await api.ok("updateOne", coll, { filter: { _id: 1 }, update: { $set: { email: "c@x" } } });
      await api.ok("insertOne", coll, { document: { _id: 3, email: "a@x" } });
    });

    test("compound unique index", async () => {
      const coll = uniqueName("compound");
      await api.ok("createIndexes", coll, {
        indexes: [{ key: { postId: 1, userId: 1 }, name: "post_user_unique", unique: true }],
      });
      await api.ok("insertOne", coll, { document: { postId: "p1", userId: "u1" } });
      await api.ok("insertOne", coll, { document: { postId: "p1", userId: "u2" } });
      await api.ok("insertOne", coll, { document: { postId: "p2", userId: "u1" } });
      await expectDuplicate(
        await api.call("insertOne", coll, { document: { postId: "p1", userId: "u1", extra: 1 } }),
        { postId: 1, userId: 1 },
        { postId: "p1", userId: "u1" },
      );
      await expectDuplicate(
        await api.call("updateOne", coll, { filter: { postId: "p2" }, update: { $set: { postId: "p1" } } }),
        { postId: 1, userId: 1 },
        { postId: "p1", userId: "u1" },
      );
      expect(await api.findAll(coll, {}, { postId: 1, userId: 1 })).toHaveLength(3);
      expect(await api.findAll(coll, { extra: 1 })).toEqual([]);
    });

    test("partial and sparse unique indexes ignore documents outside them", async () => {
      const coll = uniqueName("partial");
      await api.ok("createIndexes", coll, {
        indexes: [
          {
            key: { email: 1 },
            name: "email_unique",
            unique: true,
            partialFilterExpression: { email: { $type: "string" } },
          },
          { key: { code: 1 }, name: "code_unique", unique: true, sparse: true },
        ],
      });
      await api.ok("insertMany", coll, {
        documents: [{ n: 1 }, { n: 2 }, { n: 3, email: null }, { n: 4, email: null }],
      });
      await api.ok("insertOne", coll, { document: { n: 5, email: "a@x", code: "c1" } });
      await expectDuplicate(
        await api.call("insertOne", coll, { document: { n: 6, email: "a@x" } }),
        { email: 1 },
        { email: "a@x" },
      );
      await expectDuplicate(
        await api.call("insertOne", coll, { document: { n: 7, code: "c1" } }),
        { code: 1 },
        { code: "c1" },
      );
      expect(await api.findAll(coll, {}, { n: 1 })).toHaveLength(5);
    });

    test("a unique index without sparse treats missing fields as null", async () => {
      const coll = uniqueName("nulls");
      await api.ok("createIndexes", coll, { indexes: [{ key: { code: 1 }, name: "code_unique", unique: true }] });
      await api.ok("insertOne", coll, { document: { n: 1 } });
      const second = await api.call("insertOne", coll, { document: { n: 2 } });
      expect(second.status).toBe(409);
      expect(second.body.keyValue).toEqual({ code: null });
    });

    test("insertMany: ordered stops at the first duplicate, unordered writes the rest", async () => {
      const coll = uniqueName("many_dup");
      await api.ok("createIndexes", coll, { indexes: [{ key: { k: 1 }, name: "k_unique", unique: true }] });
      await api.ok("insertOne", coll, { document: { _id: 0, k: "taken" } });
      const ordered = await api.call("insertMany", coll, {
        documents: [
          { _id: 1, k: "a" },
          { _id: 2, k: "taken" },
          { _id: 3, k: "b" },
        ],
      });
      const orderedBody = await expectDuplicate(ordered, { k: 1 }, { k: "taken" });
      expect(orderedBody.writeErrors).toEqual([
        expect.objectContaining({ index: 1, code: 11000, keyPattern: { k: 1 }, keyValue: { k: "taken" } }),
      ]);
      expect(orderedBody.result).toEqual({ insertedCount: 1, insertedIds: [1] });
      expect((await api.findAll(coll)).map((d) => d._id)).toEqual([0, 1]);

      const unordered = await api.call("insertMany", coll, {
        documents: [
          { _id: 4, k: "a" },
          { _id: 5, k: "c" },
          { _id: 6, k: "taken" },
          { _id: 7, k: "d" },
        ],
        ordered: false,
      });
      const unorderedBody = await expectDuplicate(unordered, { k: 1 }, { k: "a" });
      expect(unorderedBody.writeErrors?.map((e) => [e.index, e.code, e.keyValue])).toEqual([
        [0, 11000, { k: "a" }],
        [2, 11000, { k: "taken" }],
      ]);
      expect(unorderedBody.result).toEqual({ insertedCount: 2, insertedIds: [5, 7] });
      expect((await api.findAll(coll)).map((d) => d._id)).toEqual([0, 1, 5, 7]);
    });

    test("bulkWrite with a duplicate reports writeErrors and what was written", async () => {
      const coll = uniqueName("bulk_dup");
      await api.ok("createIndexes", coll, { indexes: [{ key: { k: 1 }, name: "k_unique", unique: true }] });
      await api.ok("insertOne", coll, { document: { _id: 0, k: "taken", v: 0 } });
      const ordered = await api.call("bulkWrite", coll, {
        operations: [
          { insertOne: { document: { _id: 1, k: "a" } } },
          { updateOne: { filter: { _id: 0 }, update: { $set: { v: 1 } } } },
          { insertOne: { document: { _id: 2, k: "taken" } } },
          { insertOne: { document: { _id: 3, k: "b" } } },
        ],
      });
      const body = await expectDuplicate(ordered, { k: 1 }, { k: "taken" });
      expect(body.writeErrors?.map((e) => [e.index, e.code])).toEqual([[2, 11000]]);
      expect(body.result).toMatchObject({ insertedCount: 1, matchedCount: 1, modifiedCount: 1, insertedIds: { 0: 1 } });
      expect(await api.findAll(coll)).toEqual([
        { _id: 0, k: "taken", v: 1 },
        { _id: 1, k: "a" },
      ]);
      const unordered = await api.call("bulkWrite", coll, {
        operations: [{ insertOne: { document: { _id: 4, k: "a" } } }, { insertOne: { document: { _id: 5, k: "e" } } }],
        ordered: false,
      });
      const unorderedBody = await expectDuplicate(unordered, { k: 1 }, { k: "a" });
      expect(unorderedBody.result).toMatchObject({ insertedCount: 1, insertedIds: { 1: 5 } });
    });

    test("a unique index cannot be built over existing duplicates", async () => {
      const coll = uniqueName("build_dup");
      await api.ok("insertMany", coll, { documents: [{ k: 1 }, { k: 1 }] });
      const response = await api.call("createIndexes", coll, {
        indexes: [{ key: { k: 1 }, name: "k_unique", unique: true }],
      });
      expect(response.status).toBe(409);
      expect(response.body.error_code).toBe("DuplicateKey");
      const { indexes } = await api.ok<{ indexes: Doc[] }>("listIndexes", coll);
      expect(indexes.map((index) => index.name)).toEqual(["_id_"]);
    });
  });

  describe.skipIf(!available)("concurrency", () => {
    test("50 concurrent upserts of one unique key leave exactly one document", async () => {
      const coll = uniqueName("race_upsert");
      await api.ok("createIndexes", coll, { indexes: [{ key: { key: 1 }, name: "key_unique", unique: true }] });
      const responses = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          api.call("updateOne", coll, {
            filter: { key: "same" },
            update: { $inc: { hits: 1 }, $setOnInsert: { firstWriter: i } },
            upsert: true,
          }),
        ),
      );
      for (const response of responses) {
        // MongoDB may answer a racing upsert with a duplicate key; it must never create a second document.
        expect([200, 409]).toContain(response.status);
        if (response.status === 409) expect(response.body.error_code).toBe("DuplicateKey");
      }
      const documents = await api.findAll(coll);
      expect(documents).toHaveLength(1);
      expect(documents[0]?.hits).toBe(responses.filter((r) => r.status === 200).length);
      expect(responses.filter((r) => (r.body as unknown as UpdateResult).upsertedId !== undefined)).toHaveLength(1);
    });

    test("50 concurrent $inc are all counted", async () => {
      const coll = uniqueName("race_inc");
      await api.ok("insertOne", coll, { document: { _id: "counter", n: 0 } });
      await Promise.all(
        Array.from({ length: 50 }, () =>
          api.ok("updateOne", coll, { filter: { _id: "counter" }, update: { $inc: { n: 1 } } }),
        ),
      );
      expect(await api.findAll(coll)).toEqual([{ _id: "counter", n: 50 }]);
    });

    test("20 concurrent findOneAndUpdate claims over 10 queued documents claim each exactly once", async () => {
      const coll = uniqueName("race_claim");
      await api.ok("insertMany", coll, {
        documents: Array.from({ length: 10 }, (_, i) => ({
          _id: i,
          status: "queued",
          at: new Date(1_700_000_000_000 + i),
        })),
      });
      const claims = await Promise.all(
        Array.from({ length: 20 }, (_, worker) =>
          api.ok<{ document: Doc | null }>("findOneAndUpdate", coll, {
            filter: { status: "queued" },
            update: { $set: { status: "claimed", worker } },
            sort: { at: 1 },
          }),
        ),
      );
      const claimed = claims.map((c) => c.document).filter((d): d is Doc => d !== null);
      expect(claimed).toHaveLength(10);
      expect(new Set(claimed.map((d) => d._id)).size).toBe(10);
      const stored = await api.findAll(coll);
      expectEvery(stored, (d) => d.status === "claimed");
      expect(new Set(stored.map((d) => d.worker)).size).toBe(10);
    });
  });

  describe.skipIf(!available)("text search and TTL", () => {
    test("$text matches words case-insensitively and sorts by textScore", async () => {
      const coll = uniqueName("text");
      await api.ok("createIndexes", coll, {
        indexes: [{ key: { prompt: "text", tags: "text" }, name: "prompt_tags_text" }],
      });
      await api.ok("insertMany", coll, {
        documents: [
          { _id: 1, prompt: "A red car with many wheels and doors", tags: ["vehicle"] },
          { _id: 2, prompt: "Red red red car", tags: [] },
          { _id: 3, prompt: "Blue ocean at dawn", tags: ["sea", "RED"] },
          { _id: 4, prompt: "Green forest", tags: ["tree"] },
        ],
      });
      const { documents } = await api.ok<{ documents: Doc[] }>("find", coll, {
        filter: { $text: { $search: "RED" } },
        projection: { score: { $meta: "textScore" } },
        sort: { score: { $meta: "textScore" } },
      });
      expect(documents.map((d) => d._id).sort()).toEqual([1, 2, 3]);
      expect(documents[0]?._id).toBe(2);
      expect(typeof documents[0]?.score).toBe("number");
      const ocean = await api.ok<{ documents: Doc[] }>("find", coll, {
        filter: { $text: { $search: "ocean forest" } },
      });
      expect(ocean.documents.map((d) => d._id).sort()).toEqual([3, 4]);
      const combined = await api.ok<{ documents: Doc[] }>("find", coll, {
        filter: { $text: { $search: "red" }, _id: { $gt: 1 } },
      });
      expect(combined.documents.map((d) => d._id).sort()).toEqual([2, 3]);
    });

    /** A private journal: owner-scoped entries, searched by words, counted by mood, tag and month. */
    const journal = async (): Promise<string> => {
      const coll = uniqueName("journal");
      await api.ok("createIndexes", coll, {
        indexes: [
          { key: { title: "text", body: "text" }, name: "journal_text", weights: { title: 10, body: 1 } },
          { key: { owner: 1, at: -1 }, name: "owner_at" },
        ],
      });
      await api.ok("insertMany", coll, {
        documents: [
          {
            _id: "j1",
            owner: "u1",
            title: "Garden notes",
            body: "Planted tomatoes in the garden beds",
            mood: "happy",
            tags: ["garden", "spring", "food"],
            at: new Date("2024-03-02T10:00:00Z"),
          },
          {
            _id: "j2",
            owner: "u1",
            title: "A long walk",
            body: "Walked past the old garden on the way to work",
            mood: "calm",
            tags: ["walk", "spring"],
            at: new Date("2024-03-20T08:00:00Z"),
          },
          {
            _id: "j3",
            owner: "u1",
            title: "Rainy day",
            body: "Stayed in; the garden can wait. Gardens need patience",
            mood: "calm",
            tags: ["rain", "spring"],
            at: new Date("2024-04-11T18:30:00Z"),
          },
          {
            _id: "j4",
            owner: "u1",
            title: "Work",
            body: "Deadlines all day",
            mood: "tired",
            tags: ["work"],
            at: new Date("2024-04-12T18:30:00Z"),
          },
          {
            _id: "j5",
            owner: "u2",
            title: "Garden garden garden",
            body: "Someone else's garden diary",
            mood: "happy",
            tags: ["garden"],
            at: new Date("2024-03-05T09:00:00Z"),
          },
        ],
      });
      return coll;
    };

    test("find: $text within one owner's entries, with the textScore projected and sorted on", async () => {
      const coll = await journal();
      const { documents } = await api.ok<{ documents: Doc[] }>("find", coll, {
        filter: { $text: { $search: "garden" }, owner: "u1" },
        projection: { title: 1, score: { $meta: "textScore" } },
        sort: { score: { $meta: "textScore" } },
      });
      expect(documents.map((d) => d._id).sort()).toEqual(["j1", "j2", "j3"]);
      // The only entry with the word in its (ten times heavier) title ranks first on every backend.
      expect(documents[0]).toMatchObject({ _id: "j1", title: "Garden notes" });
      const scores = documents.map((d) => d.score as number);
      expect(scores.every((score) => typeof score === "number" && score > 0)).toBe(true);
      expect([...scores].sort((a, b) => b - a)).toEqual(scores);
      expect(scores[0]).toBeGreaterThan(scores[1] as number);
      expect(Object.keys(documents[1] as Doc).sort()).toEqual(["_id", "score", "title"]);
    });

    test("aggregate: a $text $match, the textScore as a field, then facets by mood, tag and month", async () => {
      const coll = await journal();
      const { documents } = await api.ok<{ documents: Doc[] }>("aggregate", coll, {
        pipeline: [
          { $match: { $text: { $search: "garden" }, owner: "u1" } },
          { $addFields: { score: { $meta: "textScore" } } },
          {
            $facet: {
              byMood: [{ $group: { _id: "$mood", count: { $sum: 1 } } }, { $sort: { _id: 1 } }],
              tags: [{ $unwind: "$tags" }, { $sortByCount: "$tags" }, { $match: { count: { $gte: 2 } } }],
              byMonth: [
                { $group: { _id: { $dateToString: { format: "%Y-%m", date: "$at" } }, count: { $sum: 1 } } },
                { $sort: { _id: 1 } },
              ],
              best: [{ $sort: { score: -1 } }, { $limit: 1 }, { $project: { _id: 1 } }],
              total: [{ $count: "entries" }],
            },
          },
        ],
      });
      expect(documents).toEqual([
        {
          byMood: [
            { _id: "calm", count: 2 },
            { _id: "happy", count: 1 },
          ],
          tags: [{ _id: "spring", count: 3 }],
          byMonth: [
            { _id: "2024-03", count: 2 },
            { _id: "2024-04", count: 1 },
          ],
          best: [{ _id: "j1" }],
          total: [{ entries: 3 }],
        },
      ]);

      // The same ranking with $sort on the metadata itself, and the score projected.
      const ranked = await api.ok<{ documents: Doc[] }>("aggregate", coll, {
        pipeline: [
          { $match: { $text: { $search: "garden" }, owner: "u1" } },
          { $sort: { score: { $meta: "textScore" } } },
          { $project: { title: 1, score: { $meta: "textScore" } } },
        ],
      });
      expect(ranked.documents.map((d) => d._id)[0]).toBe("j1");
      expect(ranked.documents.map((d) => d._id).sort()).toEqual(["j1", "j2", "j3"]);
      expect(ranked.documents.every((d) => typeof d.score === "number")).toBe(true);
      expect(Object.keys(ranked.documents[0] as Doc).sort()).toEqual(["_id", "score", "title"]);

      // Nothing found: $facet still answers one document, with every facet empty.
      const none = await api.ok<{ documents: Doc[] }>("aggregate", coll, {
        pipeline: [
          { $match: { $text: { $search: "garden" }, owner: "nobody" } },
          { $facet: { byMood: [{ $group: { _id: "$mood", count: { $sum: 1 } } }], total: [{ $count: "entries" }] } },
        ],
      });
      expect(none.documents).toEqual([{ byMood: [], total: [] }]);
    });

    /** The journal's own search: a text index behind an owner prefix, filters, and a keyset page in $facet. */
    const ownerScopedJournal = async (): Promise<string> => {
      const coll = uniqueName("journal_owner");
      await api.ok("createIndexes", coll, {
        indexes: [
          {
            key: { owner: 1, title: "text", body: "text", tags: "text" },
            name: "owner_text",
            weights: { title: 5, tags: 3, body: 1 },
          },
        ],
      });
      const entry = (
        id: string,
        owner: string,
        date: string,
        title: string,
        body: string,
        mood: string,
        tags: string[],
      ) => ({
        _id: id,
        owner,
        date,
        title,
        body,
        mood,
        tags,
        state: "active",
      });
      await api.ok("insertMany", coll, {
        documents: [
          entry("e1", "u1", "2024-03-02", "Garden notes", "Planted tomatoes", "happy", ["garden", "spring"]),
          entry("e2", "u1", "2024-03-20", "A long walk", "Past the old garden on the way to work", "neutral", [
            "walk",
            "spring",
          ]),
          entry("e3", "u1", "2024-04-11", "Rainy day", "The gardens can wait", "neutral", ["rain"]),
          entry("e4", "u1", "2024-04-12", "Work", "Deadlines all day", "sad", ["work"]),
          entry("e5", "u2", "2024-03-05", "Garden garden", "Someone else's garden", "happy", ["garden"]),
        ],
      });
      return coll;
    };

    const searchPipeline = (match: Doc, page: Doc[] = []) => [
      { $match: match },
      { $addFields: { _score: { $meta: "textScore" } } },
      {
        $facet: {
          items: [{ $sort: { _score: -1, _id: -1 } }, ...page, { $limit: 10 }, { $project: { _id: 1, _score: 1 } }],
          mood: [{ $group: { _id: "$mood", count: { $sum: 1 } } }, { $sort: { count: -1, _id: 1 } }],
          tags: [
            { $unwind: "$tags" },
            { $group: { _id: "$tags", count: { $sum: 1 } } },
            { $sort: { count: -1, _id: 1 } },
          ],
          month: [{ $group: { _id: { $substrBytes: ["$date", 0, 7] }, count: { $sum: 1 } } }, { $sort: { _id: -1 } }],
          total: [{ $count: "n" }],
        },
      },
    ];

    test("aggregate: $text on an owner-prefixed text index with $in, $all and a date range, faceted", async () => {
      const coll = await ownerScopedJournal();
      const { documents } = await api.ok<{ documents: Doc[] }>("aggregate", coll, {
        pipeline: searchPipeline({ owner: "u1", $text: { $search: "garden" }, state: "active" }),
      });
      const [answer] = documents as [Doc];
      const items = answer.items as Doc[];
      expect(items.map((d) => d._id).sort()).toEqual(["e1", "e2", "e3"]);
      expect(items[0]?._id).toBe("e1");
      expect(items.every((d) => typeof d._score === "number")).toBe(true);
      expect(answer.mood).toEqual([
        { _id: "neutral", count: 2 },
        { _id: "happy", count: 1 },
      ]);
      expect(answer.tags).toEqual([
        { _id: "spring", count: 2 },
        { _id: "garden", count: 1 },
        { _id: "rain", count: 1 },
        { _id: "walk", count: 1 },
      ]);
      expect(answer.month).toEqual([
        { _id: "2024-04", count: 1 },
        { _id: "2024-03", count: 2 },
      ]);
      expect(answer.total).toEqual([{ n: 3 }]);

      const filtered = await api.ok<{ documents: Doc[] }>("aggregate", coll, {
        pipeline: searchPipeline({
          owner: "u1",
          $text: { $search: "garden" },
          mood: { $in: ["neutral", "sad"] },
          tags: { $all: ["spring"] },
          date: { $gte: "2024-03-01", $lte: "2024-03-31" },
        }),
      });
      const only = filtered.documents[0] as Doc;
      expect((only.items as Doc[]).map((d) => d._id)).toEqual(["e2"]);
      expect(only.mood).toEqual([{ _id: "neutral", count: 1 }]);
      expect(only.total).toEqual([{ n: 1 }]);
    });

    test("$text on an owner-prefixed text index without an equality on the owner → 400 InvalidParameter", async () => {
      const coll = await ownerScopedJournal();
      for (const filter of [
        { $text: { $search: "garden" } },
        { $text: { $search: "garden" }, owner: { $in: ["u1"] } },
      ]) {
        const res = await api.call("find", coll, { filter });
        expect(res.status, JSON.stringify(filter)).toBe(400);
        expect(res.body.error_code).toBe("InvalidParameter");
      }
      const scoped = await api.ok<{ documents: Doc[] }>("find", coll, {
        filter: { $text: { $search: "garden" }, owner: { $eq: "u2" } },
      });
      expect(scoped.documents.map((d) => d._id)).toEqual(["e5"]);
    });

    test("aggregate: a keyset page on the textScore inside $facet continues exactly after the last item", async () => {
      const coll = await ownerScopedJournal();
      const match = { owner: "u1", $text: { $search: "garden" } };
      const first = await api.ok<{ documents: Doc[] }>("aggregate", coll, { pipeline: searchPipeline(match) });
      const ranked = (first.documents[0] as Doc).items as Doc[];
      const [top, ...rest] = ranked as [Doc, ...Doc[]];
      const next = await api.ok<{ documents: Doc[] }>("aggregate", coll, {
        pipeline: searchPipeline(match, [
          { $match: { $or: [{ _score: { $lt: top._score } }, { _score: top._score, _id: { $lt: top._id } }] } },
        ]),
      });
      expect(((next.documents[0] as Doc).items as Doc[]).map((d) => d._id)).toEqual(rest.map((d) => d._id));
      // The facets still count every match, not the page.
      expect((next.documents[0] as Doc).total).toEqual([{ n: 3 }]);
    });

    test("textScore where there is no $text, or $text without a text index → 400 InvalidParameter", async () => {
      const coll = await journal();
      const noText = await api.call("aggregate", coll, {
        pipeline: [{ $match: { owner: "u1" } }, { $addFields: { score: { $meta: "textScore" } } }],
      });
      expect(noText.status).toBe(400);
      expect(noText.body.error_code).toBe("InvalidParameter");
      const plain = uniqueName("no_text_index");
      await api.ok("insertOne", plain, { document: { body: "garden" } });
      const noIndex = await api.call("aggregate", plain, {
        pipeline: [{ $match: { $text: { $search: "garden" } } }],
      });
      expect(noIndex.status).toBe(400);
      expect(noIndex.body.error_code).toBe("InvalidParameter");
    });

    test("a TTL index expires documents whose date is past", async () => {
      if (kind === "mongodb") return; // mongod's TTL monitor runs once a minute: covered by the embedded run.
      const coll = uniqueName("ttl");
      const ttl = await startTestGateway(kind, { backend: { kind: "embedded", ttlSweepMs: 50 } });
      try {
        await ttl.client.ok("createIndexes", coll, {
          indexes: [{ key: { createdAt: 1 }, name: "ttl", expireAfterSeconds: 60 }],
        });
        await ttl.client.ok("insertMany", coll, {
          documents: [
            { _id: "old", createdAt: new Date(Date.now() - 3_600_000) },
            { _id: "fresh", createdAt: new Date() },
            { _id: "no-date", createdAt: "yesterday" },
          ],
        });
        const expired = await eventually(async () => (await ttl.client.findAll(coll)).length === 2);
        expect(expired).toBe(true);
        expect((await ttl.client.findAll(coll)).map((d) => d._id).sort()).toEqual(["fresh", "no-date"]);
      } finally {
        await ttl.stop();
      }
    });
  });

  describe.skipIf(!available)("batch", () => {
    interface BatchFailure extends DuplicateKeyBody {
      failedIndex: number;
      results: Doc[];
    }

    const batch = <T = { results: Doc[] }>(body: Doc, client: DataApiTestClient = api) =>
      client.raw<T>("batch", { dataSource: "circle", database: client.database, ...body });

    /** MongoDB has transactions on replica sets only: a standalone answers 501, and these cases skip. */
    let transactions: boolean | undefined;
    const transactionsAvailable = async (): Promise<boolean> => {
      if (transactions !== undefined) return transactions;
      const probe = await batch({ transaction: true, operations: [{ action: "find", collection: "probe" }] });
      if (probe.status === 501 && kind === "mongodb") {
        expect(probe.body).toMatchObject({ error_code: "TransactionsUnsupported" });
        transactions = false;
      } else {
        expect(probe.status).toBe(200);
        transactions = true;
      }
      return transactions;
    };

    const mixedSteps = (coll: string, outbox: string): Doc[] => [
      { action: "insertOne", collection: coll, document: { _id: 1, n: 1 } },
      {
        action: "insertMany",
        collection: coll,
        documents: [
          { _id: 2, n: 2 },
          { _id: 3, n: 3 },
        ],
      },
      { action: "updateOne", collection: coll, filter: { _id: 1 }, update: { $inc: { n: 10 } } },
      { action: "findOne", collection: coll, filter: { _id: 1 } },
      { action: "find", collection: coll, filter: { n: { $gte: 2 } }, sort: { _id: 1 } },
      { action: "findOneAndUpdate", collection: coll, filter: { _id: 2 }, update: { $set: { tag: "x" } } },
      { action: "deleteOne", collection: coll, filter: { _id: 3 } },
      { action: "aggregate", collection: coll, pipeline: [{ $group: { _id: null, total: { $sum: "$n" } } }] },
      { action: "insertOne", collection: outbox, document: { _id: "event-1", about: 1 } },
      {
        action: "bulkWrite",
        collection: coll,
        operations: [{ insertOne: { document: { _id: 4 } } }, { deleteOne: { filter: { _id: 4 } } }],
      },
    ];

    const mixedResults: Doc[] = [
      { insertedId: 1 },
      { insertedIds: [2, 3] },
      { matchedCount: 1, modifiedCount: 1 },
      { document: { _id: 1, n: 11 } },
      {
        documents: [
          { _id: 1, n: 11 },
          { _id: 2, n: 2 },
          { _id: 3, n: 3 },
        ],
      },
      { document: { _id: 2, n: 2, tag: "x" } },
      { deletedCount: 1 },
      { documents: [{ _id: null, total: 13 }] },
      { insertedId: "event-1" },
      {
        insertedCount: 1,
        matchedCount: 0,
        modifiedCount: 0,
        deletedCount: 1,
        upsertedCount: 0,
        insertedIds: { "0": 4 },
        upsertedIds: {},
      },
    ];

    test("mixed reads and writes answer each step's usual result, in order", async () => {
      const coll = uniqueName("batch_mixed");
      const outbox = uniqueName("batch_outbox");
      const response = await batch({ operations: mixedSteps(coll, outbox) });
      expect(response.status).toBe(200);
      expect(response.body.results).toEqual(mixedResults);
      expect(await api.findAll(coll)).toEqual([
        { _id: 1, n: 11 },
        { _id: 2, n: 2, tag: "x" },
      ]);
      expect(await api.findAll(outbox)).toEqual([{ _id: "event-1", about: 1 }]);
    });

    test("the same steps as a transaction answer the same and commit together", async (context) => {
      if (!(await transactionsAvailable())) return context.skip();
      const coll = uniqueName("batch_tx_mixed");
      const outbox = uniqueName("batch_tx_outbox");
      const response = await batch({ transaction: true, operations: mixedSteps(coll, outbox) });
      expect(response.status).toBe(200);
      expect(response.body.results).toEqual(mixedResults);
      expect(await api.findAll(outbox)).toEqual([{ _id: "event-1", about: 1 }]);
    });

    test("without a transaction the first failing step ends the batch and the steps before it stay", async () => {
      const coll = uniqueName("batch_stop");
      await api.ok("createIndexes", coll, { indexes: [{ key: { email: 1 }, name: "email_unique", unique: true }] });
      const response = await batch<BatchFailure>({
        operations: [
          { action: "insertOne", collection: coll, document: { _id: 1, email: "a@x" } },
          { action: "insertOne", collection: coll, document: { _id: 2, email: "b@x" } },
          { action: "insertOne", collection: coll, document: { _id: 3, email: "a@x" } },
          { action: "insertOne", collection: coll, document: { _id: 4, email: "d@x" } },
        ],
      });
      expect(response.status).toBe(409);
      expect(response.body).toMatchObject({
        error_code: "DuplicateKey",
        keyPattern: { email: 1 },
        keyValue: { email: "a@x" },
        failedIndex: 2,
        results: [{ insertedId: 1 }, { insertedId: 2 }],
      });
      expect((await api.findAll(coll)).map((d) => d._id)).toEqual([1, 2]);
    });

    test("a transaction is all or nothing: a duplicate key in its last step undoes the others", async (context) => {
      if (!(await transactionsAvailable())) return context.skip();
      const comments = uniqueName("batch_comments");
      const outbox = uniqueName("batch_events");
      await api.ok("createIndexes", outbox, { indexes: [{ key: { key: 1 }, name: "key_unique", unique: true }] });
      await api.ok("insertOne", outbox, { document: { _id: "e0", key: "k1" } });
      await api.ok("insertOne", comments, { document: { _id: "c0", likes: 0 } });
      const failed = await batch<BatchFailure>({
        transaction: true,
        operations: [
          { action: "insertOne", collection: comments, document: { _id: "c1", text: "hello" } },
          { action: "updateOne", collection: comments, filter: { _id: "c0" }, update: { $inc: { likes: 1 } } },
          { action: "insertOne", collection: outbox, document: { _id: "e1", key: "k1" } },
        ],
      });
      expect(failed.status).toBe(409);
      expect(failed.body).toMatchObject({
        error_code: "DuplicateKey",
        keyPattern: { key: 1 },
        keyValue: { key: "k1" },
        failedIndex: 2,
        results: [],
      });
      expect(await api.findAll(comments)).toEqual([{ _id: "c0", likes: 0 }]);
      expect(await api.findAll(outbox)).toEqual([{ _id: "e0", key: "k1" }]);

      const committed = await batch({
        transaction: true,
        operations: [
          { action: "insertOne", collection: comments, document: { _id: "c2", text: "hi" } },
          { action: "insertOne", collection: outbox, document: { _id: "e2", key: "k2", comment: "c2" } },
        ],
      });
      expect(committed.status).toBe(200);
      expect(committed.body.results).toEqual([{ insertedId: "c2" }, { insertedId: "e2" }]);
      expect((await api.findAll(comments)).map((d) => d._id)).toEqual(["c0", "c2"]);
      expect((await api.findAll(outbox)).map((d) => d._id)).toEqual(["e0", "e2"]);
    });

    test('a step with expect: "match" that matches nothing ends the batch with 412, the steps after it unrun', async () => {
      const coll = uniqueName("batch_expect");
      await api.ok("insertOne", coll, { document: { _id: "room", version: 2 } });
      const guarded = (version: number): Doc[] => [
        {
          action: "updateOne",
          collection: coll,
          filter: { _id: "room", version },
          update: { $inc: { sent: 1 } },
          expect: "match",
        },
        { action: "insertOne", collection: coll, document: { _id: `message-${version}` } },
      ];
      const stale = await batch<BatchFailure>({ operations: guarded(1) });
      expect(stale.status).toBe(412);
      expect(stale.body).toMatchObject({ error_code: "PreconditionFailed", failedIndex: 0, results: [] });
      expect(await api.findAll(coll)).toEqual([{ _id: "room", version: 2 }]);
      const current = await batch({ operations: guarded(2) });
      expect(current.status).toBe(200);
      expect(current.body.results).toEqual([{ matchedCount: 1, modifiedCount: 1 }, { insertedId: "message-2" }]);
      // A read guard: found → the batch goes on; not found → 412.
      const found = await batch({
        operations: [{ action: "find", collection: coll, filter: { _id: "message-2" }, expect: "match" }],
      });
      expect(found.status).toBe(200);
      const missing = await batch<BatchFailure>({
        operations: [
          { action: "deleteOne", collection: coll, filter: { _id: "message-2" } },
          { action: "find", collection: coll, filter: { _id: "message-2" }, expect: "match" },
          { action: "insertOne", collection: coll, document: { _id: "never" } },
        ],
      });
      expect(missing.status).toBe(412);
      expect(missing.body).toMatchObject({ failedIndex: 1, results: [{ deletedCount: 1 }] });
      expect((await api.findAll(coll)).map((d) => d._id)).toEqual(["room"]);
    });

    test('an unmet expect: "match" in a transaction undoes the steps before it', async (context) => {
      if (!(await transactionsAvailable())) return context.skip();
      const coll = uniqueName("batch_tx_expect");
      await api.ok("insertOne", coll, { document: { _id: "room", members: ["a"] } });
      const failed = await batch<BatchFailure>({
        transaction: true,
        operations: [
          { action: "insertOne", collection: coll, document: { _id: "message" } },
          {
            action: "updateOne",
            collection: coll,
            filter: { _id: "room", members: "b" },
            update: { $set: { last: 1 } },
            expect: "match",
          },
        ],
      });
      expect(failed.status).toBe(412);
      expect(failed.body).toMatchObject({ error_code: "PreconditionFailed", failedIndex: 1, results: [] });
      expect(await api.findAll(coll)).toEqual([{ _id: "room", members: ["a"] }]);
    });

    test('expect takes only "match", and only on steps that find or change documents', async () => {
      const coll = uniqueName("batch_expect_bad");
      for (const step of [
        { action: "insertOne", collection: coll, document: { _id: 1 }, expect: "match" },
        { action: "find", collection: coll, filter: {}, expect: "none" },
      ]) {
        const response = await batch<BatchFailure>({ operations: [step] });
        expect(response.status).toBe(400);
        expect(response.body).toMatchObject({ error_code: "InvalidParameter", failedIndex: 0 });
      }
      expect(await api.findAll(coll)).toEqual([]);
    });

    test("no other request sees a transaction half-applied", async (context) => {
      if (!(await transactionsAvailable())) return context.skip();
      const coll = uniqueName("batch_accounts");
      await api.ok("insertMany", coll, {
        documents: [
          { _id: "a", balance: 100 },
          { _id: "b", balance: 0 },
        ],
      });
      // Each transaction moves 10 units in 20 steps; a reader between two of them would see a total below 100.
      const moves = Array.from({ length: 20 }, (_, i) => ({
        action: "updateOne",
        collection: coll,
        filter: { _id: i % 2 === 0 ? "a" : "b" },
        update: { $inc: { balance: i % 2 === 0 ? -1 : 1 } },
      }));
      let writing = true;
      const totals: number[] = [];
      const reader = (async () => {
        while (writing) {
          const { documents } = await api.ok<{ documents: Doc[] }>("aggregate", coll, {
            pipeline: [{ $group: { _id: null, total: { $sum: "$balance" } } }],
          });
          totals.push(documents[0]?.total as number);
        }
      })();
      try {
        for (let round = 0; round < 5; round++) {
          const responses = await Promise.all([
            batch({ transaction: true, operations: moves }),
            batch({ transaction: true, operations: moves }),
          ]);
          for (const response of responses) {
            // Two transactions on the same documents may conflict on MongoDB; the driver retries those.
            expect(response.status).toBe(200);
          }
        }
      } finally {
        writing = false;
        await reader;
      }
      expect(totals.length).toBeGreaterThan(0);
      expect(new Set(totals)).toEqual(new Set([100]));
      expect(await api.findAll(coll)).toEqual([
        { _id: "a", balance: 0 },
        { _id: "b", balance: 100 },
      ]);
    });

    test("every step passes its action's guards and limits, checked before any step runs", async () => {
      const coll = uniqueName("batch_guards");
      const first = { action: "insertOne", collection: coll, document: { _id: "never" } };
      const refused = async (step: Doc, status: number, errorCode: string, client: DataApiTestClient = api) => {
        const response = await batch<BatchFailure>({ operations: [first, step] }, client);
        expect(response.status, JSON.stringify(step)).toBe(status);
        expect(response.body).toMatchObject({ error_code: errorCode, failedIndex: 1, results: [] });
      };
      await refused({ action: "find", collection: coll, filter: { $where: "this.a == 1" } }, 400, "ForbiddenOperator");
      await refused(
        { action: "aggregate", collection: coll, pipeline: [{ $match: {} }, { $out: "elsewhere" }] },
        400,
        "ForbiddenOperator",
      );
      await refused({ action: "find", collection: coll, limit: 1_001 }, 400, "InvalidParameter");
      await refused({ action: "find", collection: coll, filtr: {} }, 400, "InvalidParameter");
      await refused({ action: "updateOne", collection: coll, filter: {}, update: { a: 1 } }, 400, "InvalidParameter");
      await refused({ action: "find", collection: "a$b" }, 400, "InvalidParameter");
      await refused({ action: "find", collection: coll, database: "admin" }, 400, "InvalidParameter");
      await refused({ action: "explode", collection: coll }, 404, "ActionNotFound");
      await refused({ action: "batch", collection: coll, operations: [] }, 400, "InvalidParameter");
      await refused({ action: "dropCollection", collection: coll }, 404, "ActionNotFound", small.client);
      expect(await api.findAll(coll)).toEqual([]);

      const forbidden = await api.raw<BatchFailure>("batch", {
        dataSource: "circle",
        database: "admin",
        operations: [first],
      });
      expect(forbidden.status).toBe(403);
      expect(forbidden.body.error_code).toBe("Forbidden");
    });

    test("an aggregate step over the result cap fails at its turn, after the steps before it", async () => {
      const coll = uniqueName("batch_cap");
      await small.client.ok("insertMany", coll, { documents: Array.from({ length: 8 }, (_, i) => ({ _id: i })) });
      const response = await batch<BatchFailure>(
        {
          operations: [
            { action: "insertOne", collection: coll, document: { _id: 8 } },
            { action: "aggregate", collection: coll, pipeline: [{ $match: {} }] },
          ],
        },
        small.client,
      );
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({
        error_code: "InvalidParameter",
        failedIndex: 1,
        results: [{ insertedId: 8 }],
      });
    });

    test("a batch has at most 50 steps, at least one, no transaction-only refusals, and one body limit", async () => {
      const coll = uniqueName("batch_cap");
      const find = { action: "find", collection: coll };
      const over = await batch({ operations: Array.from({ length: 51 }, () => find) });
      expect(over.status).toBe(400);
      expect(over.body).toMatchObject({ error_code: "InvalidParameter" });
      expect(String((over.body as unknown as Doc).error)).toContain("50");
      const atCap = await batch({ operations: Array.from({ length: 50 }, () => find) });
      expect(atCap.status).toBe(200);
      expect(atCap.body.results).toHaveLength(50);
      const empty = await batch({ operations: [] });
      expect(empty.status).toBe(400);
      const indexInTransaction = await batch<BatchFailure>({
        transaction: true,
        operations: [find, { action: "createIndexes", collection: coll, indexes: [{ key: { a: 1 } }] }],
      });
      expect(indexInTransaction.status).toBe(400);
      expect(indexInTransaction.body).toMatchObject({ error_code: "InvalidParameter", failedIndex: 1 });
      const tooLarge = await batch(
        { operations: [{ action: "insertOne", collection: coll, document: { blob: "x".repeat(4_096) } }] },
        small.client,
      );
      expect(tooLarge.status).toBe(413);
      expect(await api.findAll(coll)).toEqual([]);
    });
  });

  describe.skipIf(!available)("errors", () => {
    test("missing or wrong apiKey → 401 Unauthorized", async () => {
      const missing = await api.call("find", "c", {}, { apiKey: null });
      expect(missing.status).toBe(401);
      expect(missing.body.error_code).toBe("Unauthorized");
      const wrong = await api.call("find", "c", {}, { apiKey: `${API_KEY}x` });
      expect(wrong.status).toBe(401);
      expect(wrong.body.error_code).toBe("Unauthorized");
    });

    test("a database outside the allow-list → 403 Forbidden", async () => {
      const response = await api.raw("find", { dataSource: "circle", database: "admin", collection: "users" });
      expect(response.status).toBe(403);
      expect(response.body.error_code).toBe("Forbidden");
    });

    test("unknown action → 404 ActionNotFound", async () => {
      const response = await api.call("explode", "c");
      expect(response.status).toBe(404);
      expect(response.body.error_code).toBe("ActionNotFound");
    });

    test.each([
      ["$where at the top", "find", { filter: { $where: "this.a == 1" } }],
      [
        "$function inside $expr",
        "find",
        { filter: { $expr: { $function: { body: "function() {}", args: [], lang: "js" } } } },
      ],
      ["$accumulator in $group", "aggregate", { pipeline: [{ $group: { _id: null, x: { $accumulator: {} } } }] }],
      [
        "$where inside a $lookup pipeline",
        "aggregate",
        { pipeline: [{ $lookup: { from: "x", pipeline: [{ $match: { $where: "1" } }], as: "y" } }] },
      ],
      ["$function in a pipeline update", "updateOne", { filter: {}, update: [{ $set: { a: { $function: {} } } }] }],
      ["$where in a bulkWrite filter", "bulkWrite", { operations: [{ deleteMany: { filter: { $where: "1" } } }] }],
      ["$out stage", "aggregate", { pipeline: [{ $match: {} }, { $out: "elsewhere" }] }],
      ["$merge stage", "aggregate", { pipeline: [{ $merge: { into: "elsewhere" } }] }],
    ])("%s → 400 ForbiddenOperator", async (_label, action, body) => {
      const response = await api.call(action, "forbidden", body as Doc);
      expect(response.status).toBe(400);
      expect(response.body.error_code).toBe("ForbiddenOperator");
    });

    test.each([
      ["malformed JSON", "find", "{not json"],
      ["a JSON array body", "find", "[]"],
      ["missing collection", "find", JSON.stringify({ dataSource: "circle", database: "DB" })],
      [
        "an unknown field",
        "find",
        JSON.stringify({ dataSource: "circle", database: "DB", collection: "c", filtr: {} }),
      ],
      [
        "a filter that is not a document",
        "find",
        JSON.stringify({ dataSource: "circle", database: "DB", collection: "c", filter: [1] }),
      ],
      [
        "a negative limit",
        "find",
        JSON.stringify({ dataSource: "circle", database: "DB", collection: "c", limit: -1 }),
      ],
      [
        "an update without operators",
        "updateOne",
        JSON.stringify({ dataSource: "circle", database: "DB", collection: "c", filter: {}, update: { a: 1 } }),
      ],
      [
        "an unknown update operator",
        "updateOne",
        JSON.stringify({
          dataSource: "circle",
          database: "DB",
          collection: "c",
          filter: {},
          update: { $frobnicate: { a: 1 } },
        }),
      ],
      [
        "an unknown query operator",
        "find",
        JSON.stringify({ dataSource: "circle", database: "DB", collection: "c", filter: { a: { $frobnicate: 1 } } }),
      ],
      ["a bad collection name", "find", JSON.stringify({ dataSource: "circle", database: "DB", collection: "a$b" })],
      [
        "a bad returnDocument",
        "findOneAndUpdate",
        JSON.stringify({
          dataSource: "circle",
          database: "DB",
          collection: "c",
          filter: {},
          update: { $set: { a: 1 } },
          returnDocument: "later",
        }),
      ],
    ])("%s → 400 InvalidParameter", async (_label, action, text) => {
      await api.ok("insertOne", "c", { document: { a: 1 } });
      const response = await api.raw(action, (text as string).replace('"DB"', JSON.stringify(main.database)));
      expect(response.status).toBe(400);
      expect(response.body.error_code).toBe("InvalidParameter");
      expect(typeof response.body.error).toBe("string");
      expect(JSON.stringify(response.body)).not.toContain("    at ");
    });

    test("limit above the maximum → 400, no limit → at most the maximum", async () => {
      const coll = uniqueName("limits");
      await small.client.ok("insertMany", coll, { documents: Array.from({ length: 8 }, (_, i) => ({ i })) });
      const tooMany = await small.client.call("find", coll, { limit: 6 });
      expect(tooMany.status).toBe(400);
      expect(tooMany.body.error_code).toBe("InvalidParameter");
      expect(String(tooMany.body.error)).toContain("5");
      const atMax = await small.client.ok<{ documents: Doc[] }>("find", coll, { limit: 5 });
      expect(atMax.documents).toHaveLength(5);
      const unlimited = await small.client.ok<{ documents: Doc[] }>("find", coll, {});
      expect(unlimited.documents).toHaveLength(5);
      const aggregate = await small.client.call("aggregate", coll, { pipeline: [{ $match: {} }] });
      expect(aggregate.status).toBe(400);
      const limited = await small.client.ok<{ documents: Doc[] }>("aggregate", coll, { pipeline: [{ $limit: 5 }] });
      expect(limited.documents).toHaveLength(5);
    });

    test("a body over the limit → 413 PayloadTooLarge", async () => {
      const response = await small.client.call("insertOne", "big", { document: { blob: "x".repeat(4_096) } });
      expect(response.status).toBe(413);
      expect(response.body.error_code).toBe("PayloadTooLarge");
      const chunked = await fetch(`${small.gateway.url}/action/insertOne`, {
        method: "POST",
        headers: { apiKey: API_KEY, "content-type": "application/ejson" },
        body: new ReadableStream({
          start(controller) {
            controller.enqueue(
              new TextEncoder().encode(
                `{"dataSource":"circle","database":"${small.database}","collection":"big","document":{"blob":"`,
              ),
            );
            controller.enqueue(new TextEncoder().encode("y".repeat(4_096)));
            controller.enqueue(new TextEncoder().encode('"}}'));
            controller.close();
          },
        }),
        duplex: "half",
      } as RequestInit);
      expect(chunked.status).toBe(413);
      expect(await small.client.findAll("big")).toEqual([]);
    });

    test("the short /v1 path and application/json content type work too", async () => {
      const coll = uniqueName("short");
      const response = await api.call(
        "insertOne",
        coll,
        { document: { a: 1 } },
        { shortPath: true, contentType: "application/json" },
      );
      expect(response.status).toBe(200);
      expect(await api.findAll(coll)).toHaveLength(1);
    });

    test("updating _id is refused", async () => {
      const coll = uniqueName("immutable");
      await api.ok("insertOne", coll, { document: { _id: 1 } });
      const response = await api.call("updateOne", coll, { filter: { _id: 1 }, update: { $set: { _id: 2 } } });
      expect(response.status).toBe(400);
      expect(response.body.error_code).toBe("InvalidParameter");
      expect(await api.findAll(coll)).toEqual([{ _id: 1 }]);
    });

    test.each([
      ["$inc on a string", { $inc: { s: 1 } }],
      ["$inc by a string", { $inc: { n: "1" } }],
      ["$push onto a number", { $push: { n: 1 } }],
      ["$set through a scalar", { $set: { "n.deeper": 1 } }],
      ["$set through null", { $set: { "nothing.deeper": 1 } }],
      ["conflicting paths", { $set: { n: 1 }, $inc: { n: 1 } }],
      ["a parent and its child", { $set: { "s.x": 1 }, $unset: { s: "" } }],
      ["$set and $setOnInsert on one path", { $set: { n: 1 }, $setOnInsert: { n: 2 } }],
    ])("an update MongoDB refuses (%s) → 400 and nothing written", async (_label, update) => {
      const coll = uniqueName("refused_update");
      await api.ok("insertOne", coll, { document: { _id: 1, s: "text", n: 5, nothing: null } });
      const response = await api.call("updateOne", coll, { filter: { _id: 1 }, update });
      expect(response.status).toBe(400);
      expect(response.body.error_code).toBe("InvalidParameter");
      expect(await api.findAll(coll)).toEqual([{ _id: 1, s: "text", n: 5, nothing: null }]);
    });

    /** `{"a": {"a": … 1 …}}` with `levels` nested documents. */
    const nested = (levels: number): string => `${'{"a":'.repeat(levels)}1${"}".repeat(levels)}`;

    test.each([120, 3_000, 100_000])("a body nested %i levels deep → 400 InvalidParameter", async (levels) => {
      const coll = uniqueName("deep");
      const prefix = `{"dataSource":"circle","database":${JSON.stringify(main.database)},"collection":"${coll}"`;
      for (const body of [`${prefix},"filter":${nested(levels)}}`, `${prefix},"document":${nested(levels)}}`]) {
        const response = await api.raw(body.includes('"document"') ? "insertOne" : "find", body);
        expect(response.status).toBe(400);
        expect(response.body.error_code).toBe("InvalidParameter");
        expect(String(response.body.error)).toContain("100 levels");
      }
      expect(await api.findAll(coll)).toEqual([]);
    });

    test("a document nested as deep as MongoDB stores (100 levels) round-trips; one level more is refused", async () => {
      const coll = uniqueName("deepest");
      const prefix = `{"dataSource":"circle","database":${JSON.stringify(main.database)},"collection":"${coll}"`;
      const deepest = await api.raw("insertOne", `${prefix},"document":{"_id":1,"v":${nested(99)}}}`);
      expect(deepest.status).toBe(200);
      const { document } = await api.ok<{ document: Doc }>("findOne", coll, { filter: { _id: 1 } });
      expect(JSON.stringify(document)).toBe(`{"_id":1,"v":${nested(99)}}`);
      const deeper = await api.raw("insertOne", `${prefix},"document":{"_id":2,"v":${nested(100)}}}`);
      expect(deeper.status).toBe(400);
      expect(deeper.body.error_code).toBe("InvalidParameter");
    });

    test("a $range larger than MongoDB builds, or a result document over 16 MiB → 400 InvalidParameter", async () => {
      const coll = uniqueName("range");
      await api.ok("insertOne", coll, { document: { _id: 1 } });
      const tooLarge = await api.call("aggregate", coll, {
        pipeline: [{ $project: { r: { $range: [0, 10_000_000] } } }],
      });
      expect(tooLarge.status).toBe(400);
      expect(tooLarge.body.error_code).toBe("InvalidParameter");
      expect(String(tooLarge.body.error)).toContain("$range");
      // 5,000,000 integers fit in $range's memory but not in one BSON document of the result.
      const huge = await api.call("aggregate", coll, { pipeline: [{ $project: { r: { $range: [0, 5_000_000] } } }] });
      expect(huge.status).toBe(400);
      expect(huge.body.error_code).toBe("InvalidParameter");
      const fine = await api.ok<{ documents: Doc[] }>("aggregate", coll, {
        pipeline: [{ $project: { n: { $size: { $range: [0, 5_000_000] } } } }],
      });
      expect(fine.documents).toEqual([{ _id: 1, n: 5_000_000 }]);
    });

    test("GET /health answers ok with the backend kind", async () => {
      const response = await fetch(`${main.gateway.origin}/health`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ ok: true, backend: kind });
    });
  });
});
