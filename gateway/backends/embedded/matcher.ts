import { Aggregator, Context, Query, updateOne as mingoUpdateOne } from "mingo";
import type { Options } from "mingo/types";
import { MingoError, resolve } from "mingo/util";
import { GatewayError, invalidParameter } from "../../errors";
import type { CollectionResolver } from "mingo/types";
import type { Document, Filter, Projection, SortSpec, Update } from "../types";
import { type TextSearch, readTextOperator } from "./text";
import { cloneValue, isOperatorObject, isPlainObject, setPath, withIdFirst } from "./values";

/**
 * The embedded engine's use of mingo: query matching, sorting, projection, update operators, pipeline updates
 * and aggregation, with the gaps filled here — BSON-aware `$type`, `$text` (see text.ts), `$setOnInsert`,
 * MongoDB's upsert seeding, and immutability of stored documents (mingo mutates nested objects in place).
 */

const BSON_TYPE_ALIASES: Record<string, string> = {
  "1": "double",
  "2": "string",
  "3": "object",
  "4": "array",
  "5": "binData",
  "6": "undefined",
  "7": "objectId",
  "8": "bool",
  "9": "date",
  "10": "null",
  "11": "regex",
  "13": "javascript",
  "16": "int",
  "17": "timestamp",
  "18": "long",
  "19": "decimal",
  "-1": "minKey",
  "127": "maxKey",
};

const BSON_CLASS_TYPES: Record<string, string> = {
  ObjectId: "objectId",
  Long: "long",
  Decimal128: "decimal",
  Binary: "binData",
  Timestamp: "timestamp",
  MinKey: "minKey",
  MaxKey: "maxKey",
  Code: "javascript",
  BSONRegExp: "regex",
  Int32: "int",
  Double: "double",
  BSONSymbol: "symbol",
};

const INT32_MAX = 2 ** 31 - 1;

/** The BSON type the `mongodb` driver would store for this JavaScript value. */
function bsonTypeOf(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "undefined":
      return "missing";
    case "string":
      return "string";
    case "boolean":
      return "bool";
    case "number":
      // The driver writes integers that fit in 32 bits as int32 and every other number as a double.
      return Number.isInteger(value) && Math.abs(value) <= INT32_MAX ? "int" : "double";
    case "bigint":
      return "long";
    default:
      break;
  }
  if (Array.isArray(value)) return "array";
  if (value instanceof Date) return "date";
  if (value instanceof RegExp) return "regex";
  if (isPlainObject(value)) return "object";
  const bsonType = (value as { _bsontype?: string })._bsontype;
  return (bsonType && BSON_CLASS_TYPES[bsonType]) ?? "object";
}

function matchesType(value: unknown, wanted: ReadonlySet<string>): boolean {
  const type = bsonTypeOf(value);
  if (wanted.has(type)) return true;
  if (wanted.has("number") && (type === "int" || type === "double" || type === "long" || type === "decimal"))
    return true;
  // Like MongoDB, an array field matches when any element has the type.
  return type === "array" && (value as unknown[]).some((element) => !Array.isArray(element) && matchesType(element, wanted));
}

/** `$type` with BSON type names and numbers (mingo's only knows JavaScript types). */
const $type = (selector: string, value: unknown, _options: Options) => {
  const wanted = new Set(
    (Array.isArray(value) ? value : [value]).map((alias) => BSON_TYPE_ALIASES[String(alias)] ?? String(alias)),
  );
  return (document: Record<string, unknown>) => matchesType(resolve(document, selector, { unwrapArray: true }), wanted);
};

const GATEWAY_CONTEXT = Context.init({ query: { $type } });

export function mingoOptions(collectionResolver?: CollectionResolver): Partial<Options> {
  return {
    idKey: "_id",
    // $where / $function / $accumulator are refused by the protocol layer as well; belt and braces.
    scriptEnabled: false,
    useStrictMode: true,
    context: GATEWAY_CONTEXT,
    ...(collectionResolver ? { collectionResolver } : {}),
  };
}

/** Runs mingo, turning its errors (unknown operator, bad expression, …) into 400 InvalidParameter. */
export function withMingo<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    if (error instanceof MingoError || error instanceof TypeError || error instanceof RangeError) {
      throw invalidParameter(error.message);
    }
    if (error instanceof Error) throw invalidParameter(error.message);
    throw error;
  }
}

export interface CompiledFilter {
  /** The filter without `$text` (for mingo, and for positional `$` updates and projections). */
  readonly plain: Filter;
  readonly text: TextSearch | undefined;
  matches(document: Document): boolean;
}

/** Splits `$text` (top level or inside a top-level `$and`, where MongoDB allows it) from the rest. */
export function compileFilter(filter: Filter): CompiledFilter {
  let text: TextSearch | undefined;
  const plain: Filter = {};
  for (const [key, value] of Object.entries(filter)) {
    if (key === "$text") {
      if (text) throw invalidParameter("Too many text expressions");
      text = readTextOperator(value);
    } else if (key === "$and" && Array.isArray(value)) {
      const clauses: unknown[] = [];
      for (const clause of value) {
        if (isPlainObject(clause) && "$text" in clause) {
          if (text) throw invalidParameter("Too many text expressions");
          const { $text, ...rest } = clause;
          text = readTextOperator($text);
          if (Object.keys(rest).length > 0) clauses.push(rest);
        } else clauses.push(clause);
      }
      if (clauses.length > 0) plain.$and = clauses;
    } else plain[key] = value;
  }
  const query = withMingo(() => new Query(plain, mingoOptions()));
  const matchesAll = Object.keys(plain).length === 0;
  return {
    plain,
    text,
    matches: matchesAll ? () => true : (document) => withMingo(() => query.test(document)),
  };
}

export function sortDocuments(documents: Document[], sort: Record<string, 1 | -1>): Document[] {
  if (documents.length < 2) return documents;
  return withMingo(() => new Aggregator([{ $sort: sort }], mingoOptions()).run(documents) as Document[]);
}

/** Projects documents the caller owns (mingo's exclusion projection mutates nested objects of its input). */
export function projectOwnedDocuments(owned: Document[], projection: Projection, filter: Filter): Document[] {
  if (Object.keys(projection).length === 0) return owned;
  return withMingo(() => new Query(filter, mingoOptions()).find<Document>(owned, projection).all());
}

/** Splits `{$meta: "textScore"}` entries out of a sort or projection. */
export function splitTextScoreMeta<T extends Document>(spec: T | undefined): { rest: T | undefined; metaKeys: string[] } {
  if (!spec) return { rest: undefined, metaKeys: [] };
  const rest: Document = {};
  const metaKeys: string[] = [];
  for (const [key, value] of Object.entries(spec)) {
    if (isPlainObject(value) && value.$meta !== undefined) {
      if (value.$meta !== "textScore") throw invalidParameter(`unsupported $meta: ${String(value.$meta)}`);
      metaKeys.push(key);
    } else rest[key] = value;
  }
  return { rest: rest as T, metaKeys };
}

export function plainSort(sort: SortSpec | undefined): Record<string, 1 | -1> | undefined {
  if (!sort) return undefined;
  const out: Record<string, 1 | -1> = {};
  for (const [key, direction] of Object.entries(sort)) {
    if (direction !== 1 && direction !== -1) throw invalidParameter(`invalid sort direction for ${key}`);
    out[key] = direction;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

const PIPELINE_UPDATE_STAGES = new Set(["$set", "$addFields", "$unset", "$project", "$replaceWith", "$replaceRoot"]);

/**
 * Applies an update to `owned` (a private deep copy of a stored document, or an upsert seed) and returns
 * the new document, which may be a different object for pipeline updates. `condition` is the query that
 * selected the document, needed by the positional `$` operator; `inserting` enables `$setOnInsert`.
 */
export function applyUpdate(owned: Document, update: Update, condition: Filter, inserting: boolean): Document {
  const documents = [owned];
  if (Array.isArray(update)) {
    for (const stage of update) {
      const name = Object.keys(stage)[0];
      if (!name || !PIPELINE_UPDATE_STAGES.has(name) || Object.keys(stage).length !== 1) {
        throw invalidParameter(`${name ?? "empty stage"} is not allowed in an update pipeline`);
      }
    }
    if (update.length > 0) withMingo(() => mingoUpdateOne(documents, {}, update as never, { cloneMode: "deep" }, mingoOptions()));
    return documents[0] as Document;
  }
  const { $setOnInsert, ...operators } = update;
  if (Object.keys(operators).length > 0) {
    withMingo(() =>
      mingoUpdateOne(documents, inserting ? {} : condition, operators as never, { cloneMode: "deep" }, mingoOptions()),
    );
  }
  if (inserting && $setOnInsert !== undefined) {
    if (!isPlainObject($setOnInsert)) throw invalidParameter("$setOnInsert expects a document");
    withMingo(() => mingoUpdateOne(documents, {}, { $set: $setOnInsert } as never, { cloneMode: "deep" }, mingoOptions()));
  }
  return documents[0] as Document;
}

/**
 * MongoDB's upsert seed: the filter's equality conditions (`{a: 1}`, `{a: {$eq: 1}}`, inside `$and` too)
 * become fields of the new document before the update applies.
 */
export function upsertSeed(filter: Filter): Document {
  const seed: Document = {};
  collectEqualities(filter, seed);
  return seed;
}

function collectEqualities(filter: Filter, seed: Document): void {
  for (const [key, value] of Object.entries(filter)) {
    if (key === "$and" && Array.isArray(value)) {
      for (const clause of value) if (isPlainObject(clause)) collectEqualities(clause, seed);
    } else if (key.startsWith("$")) {
      // $or, $expr, $text … contribute nothing to the seed.
    } else if (isOperatorObject(value)) {
      const operators = Object.keys(value);
      if (operators.length === 1 && operators[0] === "$eq") setPath(seed, key, cloneValue(value.$eq));
    } else if (!(value instanceof RegExp)) {
      setPath(seed, key, cloneValue(value));
    }
  }
}

/** The document an upsert inserts: seed from the filter, then the update with `$setOnInsert`, `_id` first. */
export function buildUpsertDocument(filter: Filter, update: Update): Document {
  const seeded = applyUpdate(upsertSeed(filter), update, {}, true);
  return withIdFirst(seeded);
}

/** The document a replaceOne upsert inserts: the replacement, with the filter's `_id` when it has none. */
export function buildUpsertReplacement(filter: Filter, replacement: Document): Document {
  const seed = upsertSeed(filter);
  const id = replacement._id !== undefined ? replacement._id : seed._id;
  return withIdFirst(cloneValue(replacement), id);
}

export function runPipeline(
  input: Iterable<Document>,
  pipeline: Document[],
  collectionResolver: CollectionResolver,
): Document[] {
  return withMingo(() => new Aggregator(pipeline, mingoOptions(collectionResolver)).run(input) as Document[]);
}
