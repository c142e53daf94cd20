import * as bson from "bson";
import { describe, expect, it } from "vitest";
import { EJSON } from "../../src/platform/ejson";
import { ObjectId } from "../../src/platform/object-id";

/**
 * The Worker's own EJSON and ObjectId against the `bson` package's (which the gateway still uses): the same
 * text for every kind of value the Worker stores or sends, and the same values back from what the Data API
 * answers, so leaving bson out of the Worker changed nothing on the wire.
 */

const HEX = "65a1b2c3d4e5f60718293a4b";

/** A value built twice: with our ObjectId for our writer, with bson's for bson's. */
function both(make: (oid: (hex: string) => unknown) => unknown): { ours: unknown; theirs: unknown } {
  return { ours: make((h) => new ObjectId(h)), theirs: make((h) => new bson.ObjectId(h)) };
}

const values: [string, (oid: (hex: string) => unknown) => unknown][] = [
  ["an ObjectId", (oid) => ({ _id: oid(HEX) })],
  ["an upper-case hex id", (oid) => ({ _id: oid(HEX.toUpperCase()) })],
  [
    "dates in and out of the ISO range, with and without milliseconds, and an invalid one",
    () => ({
      epoch: new Date(0),
      before: new Date(-1),
      ms: new Date("2026-11-30T12:00:00.123Z"),
      whole: new Date("2026-11-30T12:00:00Z"),
      last: new Date(253_402_300_799_999),
      after: new Date(253_402_300_800_000),
      invalid: new Date(Number.NaN),
    }),
  ],
  [
    "every kind of number",
    () => ({
      zero: 0,
      negativeZero: -0,
      int: 42,
      negative: -7,
      int32Max: 2_147_483_647,
      int32Min: -2_147_483_648,
      aboveInt32: 2_147_483_648,
      belowInt32: -2_147_483_649,
      unsafe: 2 ** 53 + 2,
      int64Edge: 2 ** 63,
      huge: 1e21,
      fraction: 1.5,
      tiny: 5e-324,
      nan: Number.NaN,
      infinity: Number.POSITIVE_INFINITY,
      negativeInfinity: Number.NEGATIVE_INFINITY,
    }),
  ],
  ["bigints, in and beyond 64 bits", () => ({ small: 5n, negative: -9n, wrapped: 2n ** 64n + 3n })],
  [
    "strings, booleans, null, undefined",
    () => ({ s: 'x\u0000y \u2014 "q"', t: true, f: false, n: null, u: undefined }),
  ],
  [
    "arrays with holes and undefined",
    (oid) => {
      const holey: unknown[] = [1, undefined, oid(HEX), [new Date(5)]];
      holey[5] = "z";
      return { a: holey };
    },
  ],
  [
    "nested objects and operators",
    (oid) => ({ $and: [{ userId: { $in: [oid(HEX)] } }, { at: { $gte: new Date(7) } }] }),
  ],
  ["a free-form object that looks like a wrapper", () => ({ props: { $oid: "not-an-id", $date: 3, $foo: 1 } })],
  ["a __proto__ key", () => JSON.parse('{"__proto__": {"polluted": 1}, "x": 1}')],
  [
    "a Map",
    (oid) => ({
      m: new Map<string, unknown>([
        ["a", 1],
        ["b", oid(HEX)],
      ]),
    }),
  ],
  ["a regular expression", () => ({ title: /^a\.b/im })],
  ["functions and symbols", () => ({ f: () => 1, s: Symbol("s"), list: [() => 1] })],
  [
    "a class instance",
    () => ({
      point: new (class Point {
        x = 1;
        y = 2;
      })(),
    }),
  ],
  ["a top-level array and primitives", () => [1, "two", null]],
];

describe("EJSON.stringify writes what bson writes", () => {
  it.each(values)("%s (relaxed and canonical)", (_label, make) => {
    const { ours, theirs } = both(make);
    expect(EJSON.stringify(ours, { relaxed: true })).toBe(bson.EJSON.stringify(theirs as never, { relaxed: true }));
    expect(EJSON.stringify(ours, { relaxed: false })).toBe(bson.EJSON.stringify(theirs as never, { relaxed: false }));
    expect(EJSON.stringify(ours)).toBe(bson.EJSON.stringify(theirs as never));
    expect(EJSON.serialize(ours, { relaxed: false })).toEqual(
      bson.EJSON.serialize(theirs as never, { relaxed: false }),
    );
  });

  it("refuses what bson refuses: a cycle, a Map with a non-string key, a regular expression flag BSON lacks", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const bad of [cyclic, { m: new Map([[1, 1]]) }, { r: /a/g }]) {
      expect(() => bson.EJSON.stringify(bad as never)).toThrow();
      expect(() => EJSON.stringify(bad)).toThrow();
    }
  });

  it("writes the same object twice in one value (only a cycle is refused)", () => {
    const shared = { a: 1 };
    expect(EJSON.stringify({ x: shared, y: [shared] })).toBe('{"x":{"a":1},"y":[{"a":1}]}');
  });
});

/** What bson reads, with its ObjectIds as hex, so the two readers' results compare as plain data. */
function plain(value: unknown): unknown {
  if (value instanceof bson.ObjectId || value instanceof ObjectId) return { oid: value.toHexString() };
  if (value instanceof Date) return { date: value.getTime() };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

const answers: [string, string][] = [
  [
    "relaxed ids, dates and numbers",
    `{"_id":{"$oid":"${HEX}"},"at":{"$date":"2026-11-30T12:00:00.123Z"},"n":3,"f":1.5}`,
  ],
  ["an upper-case id, with a second key", `{"_id":{"$oid":"${HEX.toUpperCase()}","x":1}}`],
  [
    "dates as milliseconds, numbers and strings",
    '{"a":{"$date":{"$numberLong":"-1"}},"b":{"$date":1000},"c":{"$date":"nope"}}',
  ],
  [
    "canonical numbers",
    '{"i":{"$numberInt":"5"},"l":{"$numberLong":"9007199254740993"},"d":{"$numberDouble":"-0.0"},"nan":{"$numberDouble":"NaN"},"inf":{"$numberDouble":"-Infinity"},"s":{"$numberInt":"5.5"}}',
  ],
  ["an int64 beyond 2^63 wraps as bson's Long does", '{"l":{"$numberLong":"9223372036854775809"}}'],
  ["free-form keys and an undefined", '{"p":{"$foo":1,"x":{"$date":null}},"u":{"$undefined":true}}'],
  ["the first type key decides", `{"x":{"$foo":1,"$oid":"${HEX}","$date":"2020-01-01T00:00:00Z"}}`],
  ["arrays and nesting", `[{"a":[{"$oid":"${HEX}"},{"$numberInt":"1"}]},null,"s",1]`],
];

describe("EJSON.parse reads what bson reads (relaxed)", () => {
  it.each(answers)("%s", (_label, text) => {
    const ours = EJSON.parse(text, { relaxed: true });
    expect(plain(ours)).toEqual(plain(bson.EJSON.parse(text, { relaxed: true })));
    expect(plain(EJSON.deserialize(JSON.parse(text)))).toEqual(plain(bson.EJSON.deserialize(JSON.parse(text))));
  });

  it("gives ObjectId and Date instances, and reads its own canonical and relaxed text back", () => {
    const doc = {
      _id: new ObjectId(HEX),
      at: new Date("2026-11-30T12:00:00.123Z"),
      n: 2 ** 40,
      list: [new ObjectId(HEX)],
    };
    for (const relaxed of [true, false]) {
      const back = EJSON.parse(EJSON.stringify(doc, { relaxed })) as typeof doc;
      expect(back._id).toBeInstanceOf(ObjectId);
      expect(back.at).toBeInstanceOf(Date);
      expect(back).toEqual(doc);
    }
    expect(EJSON.deserialize(EJSON.serialize(doc, { relaxed: false }))).toEqual(doc);
  });

  it("keeps wrappers of types the Worker never stores as they are, so they are written back unchanged", () => {
    const text =
      '{"d":{"$numberDecimal":"1.5"},"b":{"$binary":{"base64":"AQI=","subType":"00"}},"t":{"$timestamp":{"t":1,"i":2}},"r":{"$regularExpression":{"pattern":"a","options":"i"}},"k":{"$minKey":1}}';
    const doc = EJSON.parse(text);
    expect(doc).toEqual(JSON.parse(text));
    expect(EJSON.stringify(doc)).toBe(text);
    expect(bson.EJSON.stringify(bson.EJSON.parse(EJSON.stringify(doc)), { relaxed: false })).toBe(
      bson.EJSON.stringify(bson.EJSON.parse(text), { relaxed: false }),
    );
    // Such a key decides even when a type this code reads follows it, as in bson.
    const mixed = `{"$numberDecimal":"1.5","$oid":"${HEX}","$date":"2020-01-01T00:00:00Z"}`;
    expect(bson.EJSON.parse(mixed)).toBeInstanceOf(bson.Decimal128);
    expect(EJSON.parse(mixed)).toEqual(JSON.parse(mixed));
  });

  it("refuses what bson refuses: a bad id, a malformed long, a date of another type, a key with a NUL", () => {
    for (const bad of [
      '{"x":{"$oid":"zz"}}',
      '{"x":{"$numberLong":"1.5"}}',
      '{"x":{"$numberLong":"123456789012345678901"}}',
      '{"x":{"$date":true}}',
      '{"a\\u0000b":1}',
    ]) {
      expect(() => bson.EJSON.parse(bad)).toThrow();
      expect(() => EJSON.parse(bad)).toThrow();
    }
  });
});

describe("ObjectId", () => {
  it("is made as bson makes it: the second, then one random part per isolate, then a counter", () => {
    const before = Math.floor(Date.now() / 1000);
    const [a, b] = [new ObjectId(), new ObjectId()];
    expect(a.toHexString()).toMatch(/^[0-9a-f]{24}$/);
    expect(a.getTimestamp().getTime() / 1000).toBeGreaterThanOrEqual(before);
    expect(a.toHexString().slice(8, 18)).toBe(b.toHexString().slice(8, 18));
    expect(
      (Number.parseInt(b.toHexString().slice(18), 16) - Number.parseInt(a.toHexString().slice(18), 16) + 0x1000000) %
        0x1000000,
    ).toBe(1);
    expect(new bson.ObjectId(a.toHexString()).getTimestamp()).toEqual(a.getTimestamp());
  });

  it("never repeats an id", () => {
    const ids = Array.from({ length: 1000 }, () => new ObjectId().toHexString());
    expect(new Set(ids).size).toBe(1000);
  });

  it("compares, prints and times like bson's", () => {
    const ours = new ObjectId(HEX.toUpperCase());
    const theirs = new bson.ObjectId(HEX);
    expect(ours.toHexString()).toBe(theirs.toHexString());
    expect(String(ours)).toBe(String(theirs));
    expect(JSON.stringify({ ours })).toBe(JSON.stringify({ ours: theirs }));
    expect(ours.equals(HEX.toUpperCase())).toBe(theirs.equals(HEX.toUpperCase()));
    expect(ours.equals(new ObjectId(HEX))).toBe(true);
    expect(ours.equals(new ObjectId())).toBe(false);
    expect(ours.equals(null)).toBe(false);
    expect(ours.getTimestamp()).toEqual(theirs.getTimestamp());
    expect(ObjectId.createFromTime(1_700_000_000).toHexString()).toBe(
      bson.ObjectId.createFromTime(1_700_000_000).toHexString(),
    );
    expect(new ObjectId(HEX)).toEqual(new ObjectId(HEX));
    expect(new ObjectId(HEX)).not.toEqual(new ObjectId());
  });

  it("refuses what is not a 24-digit hex id", () => {
    for (const bad of ["", "zz", `${HEX}0`, HEX.slice(1), "g".repeat(24)]) {
      expect(() => new ObjectId(bad)).toThrow();
      expect(ObjectId.isValid(bad)).toBe(false);
    }
  });
});
