import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { Decimal128, EJSON, Long, ObjectId } from "bson";
import { describe, expect, it } from "vitest";
import { EmbeddedBackend } from "../../gateway/backends/embedded/backend";
import type { Doc } from "./client";
import { kill, startGatewayChild, startTestGateway, tempDir, uniqueName } from "./harness";

/** What only the embedded engine has: persistence, its scale behaviour, isolation of stored documents. */

const ns = (collection: string) => ({ database: "circle_test", collection });

describe("embedded engine", () => {
  it("persists documents and indexes across a restart", async () => {
    const dir = await tempDir();
    const coll = uniqueName("persist");
    const id = new ObjectId();
    try {
      const first = await startTestGateway("embedded", { backend: { kind: "embedded", dataDir: dir.path } });
      await first.client.ok("createIndexes", coll, {
        indexes: [
          { key: { email: 1 }, name: "email_unique", unique: true },
          { key: { createdAt: 1 }, name: "ttl", expireAfterSeconds: 3_600 },
          { key: { prompt: "text" }, name: "prompt_text" },
        ],
      });
      const documents = [
        {
          _id: id,
          email: "a@x",
          createdAt: new Date(),
          big: Long.fromString("9007199254740993"),
          price: Decimal128.fromString("1.10"),
        },
        { _id: "s", email: "b@x", prompt: "purple sunset" },
      ];
      // Canonical EJSON so the int64 beyond 2^53 arrives intact.
      const body = EJSON.stringify(
        { dataSource: "circle", database: first.database, collection: coll, documents },
        { relaxed: false },
      );
      expect((await first.client.raw("insertMany", body)).status).toBe(200);
      await first.client.ok("deleteOne", coll, { filter: { _id: "nothing" } });
      await first.stop();
      const files = await readdir(join(dir.path, "circle_test"));
      expect(files.filter((name) => name.includes(".tmp-"))).toEqual([]);

      const second = await startTestGateway("embedded", { backend: { kind: "embedded", dataDir: dir.path } });
      try {
        const documents = await second.client.findAll(coll, {}, { email: 1 });
        expect(documents).toHaveLength(2);
        expect(String((documents[0] as Doc)._id)).toBe(id.toHexString());
        expect((documents[0] as Doc).createdAt).toBeInstanceOf(Date);
        expect(String((documents[0] as Doc).price)).toBe("1.10");
        const raw = await second.client.call("findOne", coll, { filter: { _id: id } });
        expect(raw.text).toContain('"$numberLong":"9007199254740993"');
        const { indexes } = await second.client.ok<{ indexes: Doc[] }>("listIndexes", coll);
        expect(indexes.map((index) => index.name).sort()).toEqual(["_id_", "email_unique", "prompt_text", "ttl"]);
        const duplicate = await second.client.call("insertOne", coll, { document: { email: "a@x" } });
        expect(duplicate.status).toBe(409);
        const text = await second.client.ok<{ documents: Doc[] }>("find", coll, {
          filter: { $text: { $search: "sunset" } },
        });
        expect(text.documents.map((d) => d._id)).toEqual(["s"]);
        await second.client.ok("dropCollection", coll);
      } finally {
        await second.stop();
      }
      expect((await readdir(join(dir.path, "circle_test"))).filter((name) => name.startsWith(coll))).toEqual([]);
    } finally {
      await dir.remove();
    }
  });

  it("looks up _id and unique keys without scanning a large collection", async () => {
    const backend = await EmbeddedBackend.open({});
    try {
      const collection = ns(uniqueName("scale"));
      await backend.createIndexes(collection, [
        { key: { email: 1 }, name: "email_unique", unique: true },
        { key: { org: 1, handle: 1 }, name: "org_handle_unique", unique: true },
        { key: { alt: 1 }, name: "alt_unique", unique: true, partialFilterExpression: { alt: { $type: "string" } } },
      ]);
      const total = 200_000;
      const batch = 20_000;
      for (let start = 0; start < total; start += batch) {
        await backend.insertMany(
          collection,
          Array.from({ length: batch }, (_, j) => {
            const i = start + j;
            return {
              _id: i,
              email: `u${i}@x`,
              org: i % 100,
              handle: `h${i}`,
              n: i % 7,
              ...(i % 2 ? { alt: `a${i}` } : {}),
            };
          }),
          true,
        );
      }
      const byId = await backend.find(collection, { filter: { _id: 123_456 }, limit: 1 });
      expect(byId[0]?.email).toBe("u123456@x");
      expect(backend.lastDocsExamined(collection)).toBe(1);
      await backend.find(collection, { filter: { _id: { $in: [1, 2, 3] } }, limit: 10 });
      expect(backend.lastDocsExamined(collection)).toBe(3);
      const byEmail = await backend.find(collection, { filter: { email: "u199999@x", n: { $gte: 0 } }, limit: 1 });
      expect(byEmail[0]?._id).toBe(199_999);
      expect(backend.lastDocsExamined(collection)).toBe(1);
      await backend.find(collection, { filter: { org: 56, handle: "h156" }, limit: 1 });
      expect(backend.lastDocsExamined(collection)).toBe(1);
      await backend.find(collection, { filter: { alt: "a99" }, limit: 1 });
      expect(backend.lastDocsExamined(collection)).toBe(1);
      const updated = await backend.updateOne(collection, {
        filter: { email: "u5@x" },
        update: { $inc: { n: 1 } },
        upsert: false,
      });
      expect(updated).toEqual({ matchedCount: 1, modifiedCount: 1 });
      expect(backend.lastDocsExamined(collection)).toBe(1);
      const scanned = await backend.find(collection, { filter: { n: 99 }, limit: 10 });
      expect(scanned).toEqual([]);
      expect(backend.lastDocsExamined(collection)).toBe(total);
      const firstPage = await backend.find(collection, { filter: {}, limit: 5 });
      expect(firstPage.map((d) => d._id)).toEqual([0, 1, 2, 3, 4]);
      expect(backend.lastDocsExamined(collection)).toBe(5);
    } finally {
      await backend.close();
    }
  });

  it("never lets callers alias stored documents", async () => {
    const backend = await EmbeddedBackend.open({});
    try {
      const collection = ns(uniqueName("alias"));
      const input = { _id: 1, nested: { tags: ["a"] } };
      await backend.insertOne(collection, input);
      input.nested.tags.push("mutated-input");
      const [read] = await backend.find(collection, { filter: {}, limit: 1 });
      expect(read?.nested).toEqual({ tags: ["a"] });
      ((read as Doc).nested as { tags: string[] }).tags.push("mutated-output");
      const projected = await backend.find(collection, { filter: {}, projection: { "nested.tags": 0 }, limit: 1 });
      expect(projected[0]).toEqual({ _id: 1, nested: {} });
      await backend.aggregate(collection, [{ $set: { "nested.extra": 1 } }]);
      const [again] = await backend.find(collection, { filter: {}, limit: 1 });
      expect(again).toEqual({ _id: 1, nested: { tags: ["a"] } });
    } finally {
      await backend.close();
    }
  });

  it("answers ExecutionTimeout (504) when an operation outlives maxTimeMS", async () => {
    const gateway = await startTestGateway("embedded", { maxTimeMS: 1 });
    try {
      const coll = uniqueName("slow");
      const documents = Array.from({ length: 20_000 }, (_, i) => ({ i, text: `item number ${i}` }));
      await gateway.client.ok("insertMany", coll, { documents });
      const response = await gateway.client.call("find", coll, {
        filter: { $expr: { $gt: [{ $strLenCP: { $concat: ["$text", "$text"] } }, 1_000] } },
      });
      expect(response.status).toBe(504);
      expect(response.body.error_code).toBe("ExecutionTimeout");
    } finally {
      await gateway.stop();
    }
  });

  it("stops an expensive aggregate at maxTimeMS, and a cheap call waiting behind it answers right after", async () => {
    // Its own process: a client sharing the engine's event loop could not even send while the engine works.
    const budget = 500;
    const gateway = await startGatewayChild(
      { DATA_API_DATABASES: "circle_test", GATEWAY_MAX_TIME_MS: String(budget) },
      "circle_test",
    );
    try {
      const coll = uniqueName("expensive");
      await gateway.client.ok("insertOne", coll, { document: { _id: 1 } });
      const timed = async <T>(call: () => Promise<T>) => {
        const started = performance.now();
        const value = await call();
        return { value, ms: performance.now() - started };
      };
      // 5,000,000 elements unwound into as many documents: about 8 s of work for this engine.
      const expensive = timed(() =>
        gateway.client.call("aggregate", coll, {
          pipeline: [
            { $project: { r: { $range: [0, 5_000_000] } } },
            { $unwind: "$r" },
            { $group: { _id: null, total: { $sum: "$r" } } },
          ],
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      const cheap = timed(() => gateway.client.call("findOne", coll, { filter: { _id: 1 } }));
      const [slow, quick] = await Promise.all([expensive, cheap]);
      console.log(
        `maxTimeMS ${budget}: aggregate answered ${slow.value.status} after ${Math.round(slow.ms)} ms, ` +
          `the findOne sent 50 ms later after ${Math.round(quick.ms)} ms`,
      );
      expect(slow.value.status).toBe(504);
      expect(slow.value.body.error_code).toBe("ExecutionTimeout");
      // "About the budget": checks run inside every stage, so the overrun is small (allowing for a loaded CI).
      expect(slow.ms).toBeLessThan(budget + 1_000);
      expect(quick.value.status).toBe(200);
      expect(quick.value.body.document).toEqual({ _id: 1 });
      expect(quick.ms).toBeLessThan(budget + 1_000);
    } finally {
      await kill(gateway, "SIGTERM");
    }
  });

  it("bounds what one expression may build, before building it", async () => {
    const gateway = await startTestGateway("embedded", { maxTimeMS: 60_000 });
    try {
      const coll = uniqueName("huge");
      await gateway.client.ok("insertOne", coll, { document: { _id: 1 } });
      // Doubling an array 30 times would need billions of elements: refused at the first step past the bound.
      const started = performance.now();
      const doubling = await gateway.client.call("aggregate", coll, {
        pipeline: [
          {
            $project: {
              r: {
                $reduce: {
                  input: { $range: [0, 30] },
                  initialValue: [1],
                  in: { $concatArrays: ["$$value", "$$value"] },
                },
              },
            },
          },
        ],
      });
      expect(doubling.status).toBe(400);
      expect(doubling.body.error_code).toBe("InvalidParameter");
      expect(String(doubling.body.error)).toContain("array of");
      expect(performance.now() - started).toBeLessThan(5_000);
    } finally {
      await gateway.stop();
    }
  });

  it("transactions: others wait while one runs, and a failed one leaves nothing behind", async () => {
    const backend = await EmbeddedBackend.open({});
    try {
      const collection = ns(uniqueName("tx"));
      await backend.insertOne(collection, { _id: "kept", n: 0 });
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const transaction = backend.withTransaction(async (tx) => {
        await tx.updateOne(collection, { filter: { _id: "kept" }, update: { $inc: { n: 1 } }, upsert: false });
        await tx.insertOne(collection, { _id: "new" });
        await held;
        throw new Error("the caller gave up");
      });
      let readerDone = false;
      const reader = backend.find(collection, { filter: {}, limit: 10 }).then((documents) => {
        readerDone = true;
        return documents;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(readerDone).toBe(false);
      release();
      await expect(transaction).rejects.toThrow("the caller gave up");
      expect(await reader).toEqual([{ _id: "kept", n: 0 }]);
      await expect(
        backend.withTransaction((tx) => tx.createIndexes(collection, [{ key: { a: 1 } }])),
      ).rejects.toMatchObject({ code: "InvalidParameter" });
      // A collection first created by a rolled-back transaction does not exist afterwards.
      const fresh = ns(uniqueName("tx_fresh"));
      await expect(
        backend.withTransaction(async (tx) => {
          await tx.insertOne(fresh, { _id: 1 });
          throw new Error("no");
        }),
      ).rejects.toThrow("no");
      expect(await backend.listIndexes(fresh)).toEqual([]);
    } finally {
      await backend.close();
    }
  });

  it("matches $type by BSON type names and numbers", async () => {
    const backend = await EmbeddedBackend.open({});
    try {
      const collection = ns(uniqueName("types"));
      await backend.insertMany(
        collection,
        [
          { _id: "oid", v: new ObjectId() },
          { _id: "int", v: 5 },
          { _id: "double", v: 1.5 },
          { _id: "long", v: Long.fromString("9007199254740993") },
          { _id: "decimal", v: Decimal128.fromString("2.5") },
          { _id: "date", v: new Date() },
          { _id: "string", v: "s" },
          { _id: "array", v: ["s", 1] },
          { _id: "null", v: null },
        ],
        true,
      );
      const idsOf = async (type: unknown) =>
        (await backend.find(collection, { filter: { v: { $type: type } }, limit: 100 })).map((d) => d._id).sort();
      expect(await idsOf("objectId")).toEqual(["oid"]);
      expect(await idsOf(7)).toEqual(["oid"]);
      expect(await idsOf("number")).toEqual(["array", "decimal", "double", "int", "long"]);
      expect(await idsOf("string")).toEqual(["array", "string"]);
      expect(await idsOf(["date", "null"])).toEqual(["date", "null"]);
      expect(await idsOf("array")).toEqual(["array"]);
    } finally {
      await backend.close();
    }
  });

  it("text search: phrases are required, negated words exclude", async () => {
    const backend = await EmbeddedBackend.open({});
    try {
      const collection = ns(uniqueName("text"));
      await backend.createIndexes(collection, [{ key: { body: "text" }, name: "body_text" }]);
      await backend.insertMany(
        collection,
        [
          { _id: 1, body: "The purple sunset over Café hills" },
          { _id: 2, body: "Sunsets and purple skies" },
          { _id: 3, body: "A green valley" },
        ],
        true,
      );
      const ids = async (search: string) =>
        (await backend.find(collection, { filter: { $text: { $search: search } }, limit: 10 }))
          .map((d) => d._id)
          .sort();
      expect(await ids("sunset")).toEqual([1, 2]);
      expect(await ids('"purple sunset"')).toEqual([1]);
      expect(await ids("purple -skies")).toEqual([1]);
      expect(await ids("cafe")).toEqual([1]);
      expect(await ids("the")).toEqual([]);
      await expect(
        backend.find(ns(uniqueName("no_text_index")), { filter: { $text: { $search: "x" } }, limit: 1 }),
      ).resolves.toEqual([]);
      await backend.insertOne(ns("plain"), { a: 1 });
      await expect(backend.find(ns("plain"), { filter: { $text: { $search: "x" } }, limit: 1 })).rejects.toMatchObject({
        code: "InvalidParameter",
      });
    } finally {
      await backend.close();
    }
  });

  it("carries the textScore through aggregation stages and never shows the field that carries it", async () => {
    const backend = await EmbeddedBackend.open({});
    try {
      const collection = ns(uniqueName("text_pipeline"));
      await backend.createIndexes(collection, [{ key: { body: "text" }, name: "body_text" }]);
      await backend.insertMany(
        collection,
        [
          { _id: 1, body: "owl owl owl", kind: "a" },
          { _id: 2, body: "an owl in a tree", kind: "b" },
          { _id: 3, body: "a tree", kind: "b" },
        ],
        true,
      );
      const run = (stages: Record<string, unknown>[]) =>
        backend.aggregate(collection, [{ $match: { $text: { $search: "owl" } } }, ...stages]);
      const inFacet = await run([
        {
          $facet: { top: [{ $sort: { s: { $meta: "textScore" } } }, { $project: { score: { $meta: "textScore" } } }] },
        },
      ]);
      const top = (inFacet[0] as { top: { _id: number; score: number }[] }).top;
      expect(top.map((d) => d._id)).toEqual([1, 2]);
      expect(top[0]?.score).toBeGreaterThan(top[1]?.score as number);
      const replaced = await run([
        { $replaceRoot: { newRoot: { id: "$_id" } } },
        { $addFields: { score: { $meta: "textScore" } } },
        { $sort: { score: -1 } },
      ]);
      expect(replaced.map((d) => Object.keys(d).sort())).toEqual([
        ["id", "score"],
        ["id", "score"],
      ]);
      const pushed = await run([{ $group: { _id: "$kind", all: { $push: "$$ROOT" } } }, { $sort: { _id: 1 } }]);
      expect(JSON.stringify(pushed)).not.toContain("textScore");
      expect(pushed).toEqual([
        { _id: "a", all: [{ _id: 1, body: "owl owl owl", kind: "a" }] },
        { _id: "b", all: [{ _id: 2, body: "an owl in a tree", kind: "b" }] },
      ]);
      await expect(
        run([{ $group: { _id: "$kind" } }, { $addFields: { score: { $meta: "textScore" } } }]),
      ).rejects.toMatchObject({ code: "InvalidParameter" });
    } finally {
      await backend.close();
    }
  });

  it("sweeps TTL indexes: Dates and arrays of Dates only, respecting partial filters", async () => {
    const backend = await EmbeddedBackend.open({ ttlSweepMs: 60_000 });
    try {
      const collection = ns(uniqueName("ttl"));
      await backend.createIndexes(collection, [
        { key: { at: 1 }, name: "at_ttl", expireAfterSeconds: 10, partialFilterExpression: { kind: "temp" } },
      ]);
      const now = Date.now();
      await backend.insertMany(
        collection,
        [
          { _id: "old", kind: "temp", at: new Date(now - 60_000) },
          { _id: "old-array", kind: "temp", at: [new Date(now), new Date(now - 60_000)] },
          { _id: "old-kept", kind: "keep", at: new Date(now - 60_000) },
          { _id: "young", kind: "temp", at: new Date(now) },
          { _id: "number", kind: "temp", at: 0 },
        ],
        true,
      );
      expect(backend.sweepExpired(now)).toBe(2);
      const left = await backend.find(collection, { filter: {}, limit: 10 });
      expect(left.map((d) => d._id).sort()).toEqual(["number", "old-kept", "young"]);
      expect(backend.sweepExpired(now + 11_000)).toBe(1);
    } finally {
      await backend.close();
    }
  });

  it("refuses to start in production", async () => {
    await expect(EmbeddedBackend.open({ environment: "production" })).rejects.toThrow(/development and tests only/);
    const previous = process.env.NODE_ENV;
    process.env.NODE_ENV = "production";
    try {
      await expect(startTestGateway("embedded")).rejects.toThrow(/MONGODB_URI/);
    } finally {
      process.env.NODE_ENV = previous;
    }
  });
});
