import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import {
  afterPosition,
  decodeCursor,
  encodeCursor,
  InvalidCursorError,
  pageFrom,
  sortOf,
} from "../../src/platform/mongo/paginate";

const raw = (value: unknown) => btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const id = new ObjectId("65a1b2c3d4e5f60718293a4b");

describe("keyset cursors", () => {
  it("round-trips an id, a numeric position and a date position", () => {
    expect(decodeCursor(encodeCursor({ id }))).toEqual({ id });
    expect(decodeCursor(encodeCursor({ id, value: 12.5 }), "number")).toEqual({ id, value: 12.5 });
    const at = new Date("2026-11-30T12:00:00.123Z");
    expect(decodeCursor(encodeCursor({ id, value: at }), "date")).toEqual({ id, value: at });
  });

  it("is opaque URL-safe text", () => {
    expect(encodeCursor({ id, value: 1e6 })).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it.each([
    ["text that is not base64 JSON", "%%%not-a-cursor", undefined],
    ["JSON that is not an object", raw([1, 2]), undefined],
    ["an object without an id", raw({ v: 3 }), "number"],
    ["an id that is not 24 hex digits", raw({ id: "xyz", v: 3 }), "number"],
    ["an upper-case id (never issued)", raw({ id: id.toHexString().toUpperCase() }), undefined],
    ["a field the API never writes", raw({ id: id.toHexString(), v: 3, extra: true }), "number"],
    ["a value where the order has none", raw({ id: id.toHexString(), v: 3 }), undefined],
    ["no value where the order needs one", raw({ id: id.toHexString() }), "number"],
    ["a string value", raw({ id: id.toHexString(), v: "3" }), "number"],
    ["a date beyond what a Date can hold", raw({ id: id.toHexString(), v: 1e300 }), "date"],
    ["a fractional date", raw({ id: id.toHexString(), v: 1.5 }), "date"],
    ["null", raw(null), undefined],
  ] as const)("refuses %s", (_what, cursor, kind) => {
    expect(() => decodeCursor(cursor, kind)).toThrow(InvalidCursorError);
  });

  it("continues strictly after the last item, in either direction", () => {
    expect(afterPosition({ direction: "desc" }, { id })).toEqual({ _id: { $lt: id } });
    expect(afterPosition({ direction: "asc" }, { id })).toEqual({ _id: { $gt: id } });
    expect(afterPosition({ field: "score", direction: "desc" }, { id, value: 7 })).toEqual({
      $or: [{ score: { $lt: 7 } }, { score: 7, _id: { $lt: id } }],
    });
    expect(sortOf({ field: "score", direction: "desc" })).toEqual({ score: -1, _id: -1 });
    expect(sortOf({ direction: "asc" })).toEqual({ _id: 1 });
  });

  it("gives a next cursor only when more than a page came back, pointing at the page's last item", () => {
    const docs = [3, 2, 1].map((n) => ({ _id: new ObjectId(), score: n }));
    const order = { field: "score", kind: "number", direction: "desc" } as const;
    const full = pageFrom(docs, 2, order);
    expect(full.items).toHaveLength(2);
    expect(full.nextCursor).not.toBeNull();
    expect(decodeCursor(full.nextCursor ?? "", "number")).toEqual({ id: docs[1]?._id, value: 2 });
    expect(pageFrom(docs, 3, order).nextCursor).toBeNull();
    expect(pageFrom([], 20, order)).toEqual({ items: [], nextCursor: null });
  });
});
