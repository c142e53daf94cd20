import { ObjectId } from "bson";
import type { Document, Filter } from "../types";
import type { IndexRuntime } from "./indexes";
import { compileFilter } from "./matcher";
import { encodeValue, isOperatorObject, isPlainObject } from "./values";

/**
 * Access paths of the embedded engine beyond the `_id` map and unique-key maps. They only ever choose which
 * stored documents to look at (a superset of the matches): the caller still applies the whole filter to each
 * candidate, and hands candidates out in the order a full scan would visit them, so results are identical
 * to a scan's.
 *
 * - `IdOrder`: the `_id`s in ascending order (when every `_id` is an ObjectId, whose hex order is MongoDB's
 *   order), for `_id` ranges and for `sort: {_id: ±1}` with a limit, which then stops early.
 * - `IndexTree`: a secondary index (any non-sparse, non-partial, non-text index) as nested hash buckets, one
 *   level per key field, built the first time a query pins its first field to values, then maintained by
 *   every write. A lookup descends while the filter pins the next field (equality, `$in`, null), or, at a
 *   level whose values are never arrays, tests the field's condition against each distinct value.
 */

/** Hex of an ObjectId `_id` (lower case, so string order is ObjectId order), or undefined for other types. */
export function objectIdHex(id: unknown): string | undefined {
  return id instanceof ObjectId ? id.toHexString() : undefined;
}

/** The `_id` map key of an ObjectId from its hex (what `encodeValue` produces). */
export function idKeyOfHex(hex: string): string {
  return `["o","${hex}"]`;
}

/** `_id`s in ascending order, appended cheaply while inserts come in `_id` order and rebuilt lazily otherwise. */
export class IdOrder {
  private hexes: string[] = [];
  private maxHex = "";
  private complete = true;
  private stale = 0;
  /** Every insert so far came in ascending `_id` order: insertion (scan) order is `_id` order. */
  monotonic = true;
  private nonObjectIds = 0;

  /** Only when every `_id` is an ObjectId is hex order the collection's `_id` order. */
  get usable(): boolean {
    return this.nonObjectIds === 0;
  }

  added(id: unknown): void {
    const hex = objectIdHex(id);
    if (hex === undefined) {
      this.nonObjectIds++;
      this.monotonic = false;
    } else if (hex > this.maxHex) {
      this.maxHex = hex;
      if (this.complete) this.hexes.push(hex);
    } else {
      this.complete = false;
      this.monotonic = false;
    }
  }

  removed(id: unknown): void {
    if (objectIdHex(id) === undefined) this.nonObjectIds--;
    else this.stale++;
  }

  /** Sorted hexes, possibly including deleted `_id`s (callers skip those missing from the collection). */
  sorted(documents: Map<string, Document>): string[] {
    if (!this.complete || (this.stale > 1_024 && this.stale * 2 > this.hexes.length)) {
      const hexes: string[] = [];
      for (const document of documents.values()) {
        const hex = objectIdHex(document._id);
        if (hex !== undefined) hexes.push(hex);
      }
      hexes.sort();
      this.hexes = hexes;
      this.maxHex = hexes[hexes.length - 1] ?? "";
      this.stale = 0;
      this.complete = true;
    }
    return this.hexes;
  }
}

/** `{_id: {$gt|$gte|$lt|$lte: ObjectId, …}}` as hex bounds; undefined when the condition is anything else. */
export function idRange(
  condition: unknown,
): { lo?: string; loOpen: boolean; hi?: string; hiOpen: boolean } | undefined {
  if (!isOperatorObject(condition)) return undefined;
  const range: { lo?: string; loOpen: boolean; hi?: string; hiOpen: boolean } = { loOpen: false, hiOpen: false };
  for (const [operator, operand] of Object.entries(condition)) {
    const hex = objectIdHex(operand);
    if (hex === undefined) return undefined;
    if (operator === "$gt" || operator === "$gte") {
      const open = operator === "$gt";
      if (range.lo === undefined || hex > range.lo || (hex === range.lo && open)) {
        range.lo = hex;
        range.loOpen = open;
      }
    } else if (operator === "$lt" || operator === "$lte") {
      const open = operator === "$lt";
      if (range.hi === undefined || hex < range.hi || (hex === range.hi && open)) {
        range.hi = hex;
        range.hiOpen = open;
      }
    } else return undefined;
  }
  return range;
}

/** Positions [from, to) of the sorted hexes inside the range. */
export function rangePositions(
  hexes: readonly string[],
  range: { lo?: string; loOpen: boolean; hi?: string; hiOpen: boolean },
): [number, number] {
  const from = range.lo === undefined ? 0 : bound(hexes, range.lo, range.loOpen);
  const to = range.hi === undefined ? hexes.length : bound(hexes, range.hi, !range.hiOpen);
  return [from, Math.max(from, to)];
}

/** First position whose hex is > `hex` (after = true) or >= `hex` (after = false). */
function bound(hexes: readonly string[], hex: string, after: boolean): number {
  let low = 0;
  let high = hexes.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const value = hexes[mid] as string;
    if (value < hex || (after && value === hex)) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Documents under one key prefix of an index, in the order they joined it. */
export interface Bucket {
  /** The key value at this level (the first one seen: values with one encoding may differ in BSON type). */
  readonly value: unknown;
  /** Values of more than one BSON type share this key: a distinct-value test cannot speak for all of them. */
  varied: boolean;
  ids: Set<string>;
  maxSeq: number;
  /** Members joined in insertion (scan) order. */
  seqSorted: boolean;
  maxHex: string;
  /** Members joined in ascending ObjectId `_id` order. */
  idSorted: boolean;
  children: Map<string, Bucket> | undefined;
}

interface Prefix {
  keys: string[];
  values: unknown[];
}

const EMPTY_LEVEL: Map<string, Bucket> = new Map();

export class IndexTree {
  readonly root = new Map<string, Bucket>();
  /** Per level: some document held an array there (or the field is dotted), so distinct-value tests are off. */
  private readonly arrayLevels: boolean[];

  constructor(readonly index: IndexRuntime) {
    this.arrayLevels = index.fields.map((field) => field.includes("."));
  }

  /** Indexes whose entries cover every document: no sparse, partial or text index. */
  static eligible(index: IndexRuntime): boolean {
    const definition = index.definition;
    return !index.text && !definition.sparse && !definition.partialFilterExpression && index.fields.length > 0;
  }

  /** The prefixes a document holds (every level of every multikey entry), keyed by their joined encoding. */
  prefixes(document: Document): Map<string, Prefix> {
    const out = new Map<string, Prefix>();
    for (const entry of this.index.entriesFor(document)) {
      let joined = "";
      const keys: string[] = [];
      for (let level = 0; level < entry.values.length; level++) {
        const key = entry.values.length === 1 ? entry.encoded : encodeValue(entry.values[level]);
        keys.push(key);
        joined = level === 0 ? key : `${joined}\u0001${key}`;
        if (!out.has(joined)) out.set(joined, { keys: keys.slice(), values: entry.values.slice(0, level + 1) });
      }
    }
    return out;
  }

  /** What a write changes in this tree (computed before the write, so a refused document leaves no trace). */
  plan(previous: Document | undefined, next: Document | undefined): { removed: Prefix[]; added: Prefix[] } {
    const before = previous ? this.prefixes(previous) : new Map<string, Prefix>();
    const after = next ? this.prefixes(next) : new Map<string, Prefix>();
    const removed: Prefix[] = [];
    const added: Prefix[] = [];
    for (const [key, prefix] of before) if (!after.has(key)) removed.push(prefix);
    for (const [key, prefix] of after) if (!before.has(key)) added.push(prefix);
    // Deepest first, so a bucket is emptied (and dropped) after its descendants.
    removed.sort((a, b) => b.keys.length - a.keys.length);
    return { removed, added };
  }

  apply(
    change: { removed: Prefix[]; added: Prefix[] },
    idKey: string,
    next: Document | undefined,
    seq: number,
    hex: string | undefined,
  ): void {
    if (next) this.noteArrays(next);
    for (const prefix of change.removed) this.removeAt(prefix, idKey);
    for (const prefix of change.added) this.addAt(prefix, idKey, seq, hex);
  }

  private noteArrays(document: Document): void {
    this.index.fields.forEach((field, level) => {
      if (!this.arrayLevels[level] && Array.isArray(document[field])) this.arrayLevels[level] = true;
    });
  }

  private addAt(prefix: Prefix, idKey: string, seq: number, hex: string | undefined): void {
    let level: Map<string, Bucket> = this.root;
    let bucket: Bucket | undefined;
    const last = prefix.keys.length - 1;
    for (let depth = 0; depth <= last; depth++) {
      const key = prefix.keys[depth] as string;
      const value = prefix.values[depth];
      bucket = level.get(key);
      if (!bucket) {
        bucket = {
          value,
          varied: false,
          ids: new Set(),
          maxSeq: -1,
          seqSorted: true,
          maxHex: "",
          idSorted: true,
          children: undefined,
        };
        level.set(key, bucket);
      } else if (depth === last && !bucket.varied && typeTag(value) !== typeTag(bucket.value)) bucket.varied = true;
      if (depth < last) {
        bucket.children ??= new Map();
        level = bucket.children;
      }
    }
    const target = bucket as Bucket;
    if (target.ids.has(idKey)) return;
    target.ids.add(idKey);
    if (seq > target.maxSeq) target.maxSeq = seq;
    else target.seqSorted = false;
    if (hex !== undefined && hex > target.maxHex) target.maxHex = hex;
    else target.idSorted = false;
  }

  private removeAt(prefix: Prefix, idKey: string): void {
    let level: Map<string, Bucket> = this.root;
    const last = prefix.keys.length - 1;
    for (let depth = 0; depth <= last; depth++) {
      const key = prefix.keys[depth] as string;
      const bucket = level.get(key);
      if (!bucket) return;
      if (depth === last) {
        bucket.ids.delete(idKey);
        if (bucket.ids.size === 0) level.delete(key);
        return;
      }
      level = bucket.children ?? EMPTY_LEVEL;
    }
  }

  /**
   * The buckets holding every document that may match `filter` (at the deepest level the filter constrains),
   * or undefined when the filter does not constrain the first field in a way this tree can use.
   */
  lookup(filter: Filter, total: number): Bucket[] | undefined {
    let frontier: Map<string, Bucket>[] = [this.root];
    let chosen: Bucket[] | undefined;
    for (let level = 0; level < this.index.fields.length; level++) {
      const field = this.index.fields[level] as string;
      const condition = filter[field];
      if (condition === undefined) break;
      const next: Bucket[] = [];
      const values = pinnedValues(condition);
      if (values) {
        const keys = new Set(values.map(encodeValue));
        for (const buckets of frontier) {
          for (const key of keys) {
            const bucket = buckets.get(key);
            if (bucket) next.push(bucket);
          }
        }
      } else {
        if (this.arrayLevels[level]) break;
        // A handful of candidates already: testing them directly is cheaper than compiling a value test.
        if (chosen && chosen.reduce((n, bucket) => n + bucket.ids.size, 0) <= 16) break;
        let distinct = 0;
        for (const buckets of frontier) distinct += buckets.size;
        // Testing each distinct value only pays while there are far fewer values than documents.
        if (distinct > Math.max(64, total / 4)) break;
        const test = distinctValueTest(field, condition);
        if (!test) break;
        for (const buckets of frontier) {
          for (const [key, bucket] of buckets)
            if (bucket.varied || test(key === "null", bucket.value)) next.push(bucket);
        }
      }
      chosen = next;
      if (next.length === 0) break;
      frontier = next.map((bucket) => bucket.children ?? EMPTY_LEVEL);
    }
    return chosen;
  }
}

/** A tag per BSON type of a key value (two values with one encoding but different tags make a bucket varied). */
function typeTag(value: unknown): string {
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "number":
      return Number.isInteger(value) && Math.abs(value) <= 2 ** 31 - 1 ? "int" : "double";
    case "object": {
      if (value instanceof Date) return "date";
      if (Array.isArray(value)) return "array";
      const bsonType = (value as { _bsontype?: string })._bsontype;
      return bsonType ?? (isPlainObject(value) ? "object" : Object.prototype.toString.call(value));
    }
    default:
      return typeof value;
  }
}

/**
 * Values an index key may hold for a document matching `condition`: `v`, `{$eq: v}`, `{$in: [...]}` of
 * scalars or documents, null included (the index holds a missing field as null, and `{f: null}` matches
 * missing, null and arrays holding null, which all have a null key). Arrays and regular expressions match
 * in more ways than by key, so they are left to other paths.
 */
export function pinnedValues(condition: unknown): unknown[] | undefined {
  if (isOperatorObject(condition)) {
    const operators = Object.keys(condition);
    if (operators.length !== 1) return undefined;
    if (operators[0] === "$eq") return pinnedValues(condition.$eq);
    if (operators[0] === "$in" && Array.isArray(condition.$in)) {
      return condition.$in.every(isKeyValue) ? condition.$in : undefined;
    }
    return undefined;
  }
  return isKeyValue(condition) ? [condition] : undefined;
}

function isKeyValue(value: unknown): boolean {
  if (value === undefined || Array.isArray(value) || value instanceof RegExp) return false;
  return !isOperatorObject(value);
}

/**
 * Whether a document whose (non-array) field holds `value` can match `condition` on that field: the
 * condition is tested on `{field: value}`; a null key stands for null and missing, so both are tried.
 * Documents and arrays as values are always kept.
 */
function distinctValueTest(
  field: string,
  condition: unknown,
): ((isNull: boolean, value: unknown) => boolean) | undefined {
  let compiled: ReturnType<typeof compileFilter>;
  try {
    compiled = compileFilter({ [field]: condition });
    if (compiled.text) return undefined;
  } catch {
    return undefined;
  }
  return (isNull, value) => {
    try {
      if (isNull) return compiled.matches({ [field]: null }) || compiled.matches({});
      if (isPlainObject(value) || Array.isArray(value)) return true;
      return compiled.matches({ [field]: value });
    } catch {
      return true;
    }
  };
}
