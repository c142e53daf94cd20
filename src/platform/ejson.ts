import { ObjectId } from "./object-id";

/**
 * MongoDB Extended JSON (v2) for the values this code stores — ObjectId, Date, numbers, strings, booleans,
 * null, arrays, objects (and Map, RegExp, bigint) — written and read exactly as the `bson` package's EJSON
 * writes and reads them (test/unit/ejson.test.ts compares the two on every kind of value). Ours because bson
 * cannot be tree-shaken and is a fifth of the Worker's gzip budget.
 *
 * What this code never stores (Decimal128, Binary, Timestamp, BSON regular expressions, MinKey/MaxKey, Code,
 * DBRef) is not turned into a class: such a wrapper is read as the plain object it is
 * (`{ $numberDecimal: "1.5" }`) and written back unchanged, so a document that holds one still round-trips.
 * Reading is relaxed only (numbers come back as JavaScript numbers), as the Data API answers.
 */

export type EjsonDocument = Record<string, unknown>;

export interface EjsonWriteOptions {
  /** Plain JSON numbers and ISO dates (the default), or canonical wrappers (`{"$numberInt": "1"}`) for all. */
  relaxed?: boolean;
}

export interface EjsonReadOptions {
  /** Only relaxed reading: numbers become JavaScript numbers. */
  relaxed?: true;
}

export class EjsonError extends Error {
  override name = "EjsonError";
}

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
// As bson writes them (2 ** 63 - 1 rounds to 2 ** 63 as a double).
const INT64_MIN = -(2 ** 63);
const INT64_MAX = 2 ** 63 - 1;
/** 10000-01-01: relaxed EJSON writes dates from 1970 until then as ISO strings, others as milliseconds. */
const ISO_DATE_END = 253_402_300_800_000;
const NUMBER_LONG = /^(\+?0|(\+|-)?[1-9][0-9]*)$/;
/** bson's regular expression options, in the alphabetical order it writes them. */
const REGEX_OPTIONS = "ilmsux";
/** Wrappers of BSON types this code never stores: left as plain objects (see above). */
const KEPT_AS_IS = new Set([
  "$binary",
  "$uuid",
  "$symbol",
  "$numberDecimal",
  "$minKey",
  "$maxKey",
  "$regex",
  "$regularExpression",
  "$timestamp",
]);

function isoString(date: Date): string {
  const iso = date.toISOString();
  return date.getUTCMilliseconds() === 0 ? `${iso.slice(0, -5)}Z` : iso;
}

function canonicalNumber(value: number): EjsonDocument {
  if (Number.isInteger(value) && !Object.is(value, -0)) {
    if (value >= INT32_MIN && value <= INT32_MAX) return { $numberInt: String(value) };
    if (value >= INT64_MIN && value <= INT64_MAX) return { $numberLong: String(value) };
  }
  return { $numberDouble: Object.is(value, -0) ? "-0.0" : String(value) };
}

function regexOptions(flags: string): string {
  const options = [...flags].sort();
  const unsupported = options.find((f) => !REGEX_OPTIONS.includes(f));
  if (unsupported) throw new EjsonError(`The regular expression option [${unsupported}] is not supported`);
  return options.join("");
}

/** The EJSON tree of `value` (plain objects, arrays and primitives that JSON.stringify writes as is). */
function toEjson(value: unknown, relaxed: boolean, path: Set<object>): unknown {
  if (value === undefined) return null;
  if (typeof value === "number") return relaxed && Number.isFinite(value) ? value : canonicalNumber(value);
  if (typeof value === "bigint") {
    const int64 = BigInt.asIntN(64, value);
    return relaxed ? Number(int64) : { $numberLong: int64.toString() };
  }
  if (value === null || typeof value !== "object") return value;
  if (value instanceof ObjectId) return { $oid: value.toHexString() };
  if ("_bsontype" in value) {
    // A value of the bson package (a test or script may still make one): never written as its inner fields.
    const bson = value as { _bsontype: unknown; toHexString?: () => string };
    if (bson._bsontype === "ObjectId" && typeof bson.toHexString === "function") return { $oid: bson.toHexString() };
    throw new EjsonError(`bson ${String(bson._bsontype)} values are not supported here`);
  }
  if (value instanceof Date) {
    const ms = value.getTime();
    return relaxed && ms > -1 && ms < ISO_DATE_END
      ? { $date: isoString(value) }
      : { $date: { $numberLong: String(ms) } };
  }
  if (value instanceof RegExp)
    return { $regularExpression: { pattern: value.source, options: regexOptions(value.flags) } };
  if (path.has(value)) throw new EjsonError("Converting circular structure to EJSON");
  path.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => toEjson(item, relaxed, path));
    const entries: [string, unknown][] = value instanceof Map ? [...value] : Object.entries(value);
    const out: EjsonDocument = {};
    for (const [key, item] of entries) {
      if (typeof key !== "string") throw new EjsonError("Can only serialize maps with string keys");
      // A key named __proto__ (client data can hold one) is a field, never the object's prototype.
      Object.defineProperty(out, key, {
        value: toEjson(item, relaxed, path),
        writable: true,
        enumerable: true,
        configurable: true,
      });
    }
    return out;
  } finally {
    path.delete(value);
  }
}

function numberLong(text: unknown): number {
  const digits = String(text);
  if (digits.length > 20 || !NUMBER_LONG.test(digits)) {
    throw new EjsonError(`$numberLong string "${digits}" is in an invalid format`);
  }
  // Wrapped to 64 bits, then rounded to the nearest double, as bson's relaxed Long.toNumber() gives.
  return Number(BigInt.asIntN(64, BigInt(digits)));
}

/** One parsed JSON value with its EJSON wrapper (if any) read; children are already read (JSON.parse order). */
function fromEjson(value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const doc = value as EjsonDocument;
  if (doc.$undefined) return null;
  // The first `$` key that names a type decides, as in bson.
  for (const key of Object.keys(doc)) {
    if (!key.startsWith("$") || doc[key] === null || doc[key] === undefined) continue;
    if (key === "$oid") {
      if (typeof doc.$oid !== "string" || !ObjectId.isValid(doc.$oid)) {
        throw new EjsonError("input must be a 24 character hex string");
      }
      return new ObjectId(doc.$oid);
    }
    if (key === "$numberInt") return Number.parseInt(String(doc.$numberInt), 10);
    if (key === "$numberDouble") return Number.parseFloat(String(doc.$numberDouble));
    if (key === "$numberLong") return numberLong(doc.$numberLong);
    if (KEPT_AS_IS.has(key)) return doc;
  }
  if (doc.$date !== null && doc.$date !== undefined) {
    const date = doc.$date;
    // `{"$date": {"$numberLong": …}}` arrives here as a number: its inner wrapper was read first.
    if (typeof date === "string") return new Date(Date.parse(date));
    if (typeof date === "number") return new Date(date);
    throw new EjsonError(`Unrecognized type for EJSON date: ${typeof date}`);
  }
  return doc;
}

function reviver(key: string, value: unknown): unknown {
  if (key.includes("\u0000")) {
    throw new EjsonError(`BSON Document field names cannot contain null bytes, found: ${JSON.stringify(key)}`);
  }
  return fromEjson(value);
}

/** The same names and options as bson's `EJSON`, for the part of it this code uses. */
export const EJSON = {
  /** Extended JSON text of `value` (relaxed unless `relaxed: false`). */
  stringify(value: unknown, options: EjsonWriteOptions = {}): string {
    return JSON.stringify(toEjson(value, options.relaxed ?? true, new Set()));
  },
  /** Reads Extended JSON text (relaxed): ObjectIds, Dates and numbers come back as such. */
  parse(text: string, _options: EjsonReadOptions = {}): unknown {
    return JSON.parse(text, reviver);
  },
  /** `value` as the plain-JSON tree of its Extended JSON (what `stringify` writes, not yet as text). */
  serialize(value: unknown, options: EjsonWriteOptions = {}): EjsonDocument {
    return JSON.parse(EJSON.stringify(value, options)) as EjsonDocument;
  },
  /** Reads an Extended JSON tree (e.g. one a JSON client already parsed) as `parse` reads text. */
  deserialize(tree: unknown, _options: EjsonReadOptions = {}): unknown {
    return JSON.parse(JSON.stringify(tree), reviver);
  },
};
