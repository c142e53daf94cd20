import { Binary, EJSON, ObjectId } from "bson";
import { isPlainObject } from "../../documents";
import type { Document } from "../types";

export { isOperatorObject, isPlainObject, withIdFirst } from "../../documents";

/**
 * Deep copy of a document or value. Stored documents are never handed out or mutated in place, so every
 * read clones out and every write clones in. BSON value classes (ObjectId, Long, Decimal128, …) are
 * immutable and shared; Dates, RegExps and Binary buffers are mutable and copied.
 */
export function cloneValue<T>(value: T): T {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(cloneValue) as T;
  if (value instanceof Date) return new Date(value.getTime()) as T;
  if (value instanceof RegExp) return new RegExp(value.source, value.flags) as T;
  if (value instanceof Binary) return new Binary(Uint8Array.from(value.buffer), value.sub_type) as T;
  if (!isPlainObject(value)) return value;
  const copy: Document = {};
  for (const key of Object.keys(value)) copy[key] = cloneValue(value[key]);
  return copy as T;
}

type Canonical = null | string | boolean | Canonical[];

/**
 * A type-aware canonical form with MongoDB's equality: numbers compare by value whatever their BSON type,
 * embedded documents compare field by field in order, and `null` equals a missing field. Used as the key of
 * the `_id` map and of unique-index hash maps, and to detect no-op updates.
 */
function canonical(value: unknown): Canonical {
  switch (typeof value) {
    case "undefined":
      return null;
    case "string":
    case "boolean":
      return value;
    case "number":
      return ["n", Object.is(value, -0) ? "0" : String(value)];
    case "bigint":
      return ["n", value.toString()];
    default:
      break;
  }
  if (value === null) return null;
  if (value === MISSING_ARRAY) return ["u"];
  if (Array.isArray(value)) return ["a", ...value.map(canonical)];
  if (value instanceof Date) return ["t", String(value.getTime())];
  if (value instanceof RegExp) return ["r", value.source, value.flags];
  if (isPlainObject(value)) {
    const out: Canonical[] = ["{"];
    for (const key of Object.keys(value)) out.push(key, canonical(value[key]));
    return out;
  }
  const bsonType = (value as { _bsontype?: string })._bsontype;
  switch (bsonType) {
    case "ObjectId":
      return ["o", (value as ObjectId).toHexString()];
    case "Long":
      // Only longs outside the safe range stay Long (gateway/ejson.ts); their decimal string is exact.
      return ["n", String(value)];
    case "Decimal128":
      return ["d", String(value)];
    case "Binary": {
      const binary = value as Binary;
      return ["x", String(binary.sub_type), binary.toString("base64")];
    }
    default:
      return ["e", EJSON.stringify(value as Document, { relaxed: false })];
  }
}

/** Stable string for a value under MongoDB equality (see `canonical`). */
export function encodeValue(value: unknown): string {
  // Fast paths for the common `_id` types, identical to what `canonical` would produce.
  if (typeof value === "string") return JSON.stringify(value);
  if (value instanceof ObjectId) return `["o","${value.toHexString()}"]`;
  return JSON.stringify(canonical(value));
}

/** Key of a compound index entry. */
export function encodeTuple(values: readonly unknown[]): string {
  return JSON.stringify(values.map(canonical));
}

/** Stand-in for an empty array in an index key: MongoDB indexes `[]` as `undefined`, distinct from null. */
export const MISSING_ARRAY: unique symbol = Symbol("empty array");

/**
 * The values a MongoDB index holds for `path` in `document` ("multikey" semantics): an array field yields
 * each element, arrays of sub-documents are walked into, and a missing field yields `undefined` (indexed as
 * null unless the index is sparse).
 */
export function indexValuesAtPath(document: Document, path: readonly string[]): unknown[] {
  const out: unknown[] = [];
  collectPath(document, path, 0, out);
  return out.length > 0 ? out : [undefined];
}

function collectPath(value: unknown, path: readonly string[], depth: number, out: unknown[]): void {
  if (depth === path.length) {
    if (!Array.isArray(value)) out.push(value);
    else if (value.length === 0) out.push(MISSING_ARRAY);
    else out.push(...value);
    return;
  }
  const part = path[depth] as string;
  if (Array.isArray(value)) {
    if (/^\d+$/.test(part)) collectPath(value[Number(part)], path, depth + 1, out);
    for (const element of value) if (isPlainObject(element)) collectPath(element, path, depth, out);
    return;
  }
  if (isPlainObject(value)) {
    collectPath(value[part], path, depth + 1, out);
    return;
  }
  out.push(undefined);
}

/** Plain dotted-path read without array expansion (`a.b` on `{a: {b: 1}}`). */
export function getPath(document: Document, path: string): unknown {
  let value: unknown = document;
  for (const part of path.split(".")) {
    if (!isPlainObject(value)) return undefined;
    value = value[part];
  }
  return value;
}

/** Dotted-path write that creates intermediate documents (used to seed upserts). */
export function setPath(document: Document, path: string, value: unknown): void {
  const parts = path.split(".");
  let target = document;
  for (let i = 0; i < parts.length - 1; i++) {
    const part = parts[i] as string;
    const next = target[part];
    if (isPlainObject(next)) target = next;
    else {
      const created: Document = {};
      target[part] = created;
      target = created;
    }
  }
  target[parts[parts.length - 1] as string] = value;
}
