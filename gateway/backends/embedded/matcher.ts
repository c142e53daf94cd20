import { Timestamp } from "bson";
import { Aggregator } from "mingo/aggregator";
import { Context } from "mingo/core";
import { type Iterator, Lazy } from "mingo/lazy";
import * as accumulatorOperators from "mingo/operators/accumulator";
import * as expressionOperators from "mingo/operators/expression";
import * as pipelineOperators from "mingo/operators/pipeline";
import * as projectionOperators from "mingo/operators/projection";
import * as queryOperators from "mingo/operators/query";
import * as windowOperators from "mingo/operators/window";
import { Query } from "mingo/query";
import type { CollectionResolver, Options } from "mingo/types";
import { updateOne as mingoUpdateOne } from "mingo/updater";
import { MingoError, resolve } from "mingo/util";
import { GatewayError, invalidParameter } from "../../errors";
import type { Document, Filter, Projection, SortSpec, Update } from "../types";
import { $range, guardAccumulators, guardExpressionOperators, guardStages } from "./guards";
import { readTextOperator, TEXT_SCORE_FIELD, type TextSearch } from "./text";
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
  return (
    type === "array" && (value as unknown[]).some((element) => !Array.isArray(element) && matchesType(element, wanted))
  );
}

/** `$type` with BSON type names and numbers (mingo's only knows JavaScript types). */
const $type = (selector: string, value: unknown, _options: Options) => {
  const wanted = new Set(
    (Array.isArray(value) ? value : [value]).map((alias) => BSON_TYPE_ALIASES[String(alias)] ?? String(alias)),
  );
  return (document: Record<string, unknown>) => matchesType(resolve(document, selector, { unwrapArray: true }), wanted);
};

/** `$count` as MongoDB has it: no document at all for empty input (mingo's answers a count of 0). */
const $count = (collection: Iterator, expr: unknown, _options: Options) => {
  if (typeof expr !== "string" || expr.trim().length === 0 || expr.includes(".") || expr.startsWith("$")) {
    throw invalidParameter("$count expression must evaluate to valid field name");
  }
  let emitted = false;
  return Lazy(() => {
    if (emitted) return { done: true };
    emitted = true;
    const count = collection.size();
    return count > 0 ? { value: { [expr]: count }, done: false } : { done: true };
  });
};

/**
 * `{$meta: "textScore"}` in aggregation: the score the first stage's `$text` gave the document, carried in a
 * hidden field (see `prepareTextPipeline`). Like MongoDB, asking for it where there is none is an error.
 */
const $meta = (obj: unknown, expr: unknown, _options: Options) => {
  if (expr !== "textScore") throw invalidParameter(`unsupported $meta: ${String(expr).slice(0, 40)}`);
  const score = isPlainObject(obj) ? obj[TEXT_SCORE_FIELD] : undefined;
  if (typeof score !== "number") throw invalidParameter("query requires text score metadata, but it is not available");
  return score;
};

/**
 * mingo's operators with the gateway's replacements (mingo's own merge keeps the first definition it sees),
 * each guarded by the operation's deadline and size bounds (guards.ts).
 */
const GATEWAY_CONTEXT = Context.init({
  accumulator: guardAccumulators(accumulatorOperators),
  expression: guardExpressionOperators({ ...expressionOperators, $range, $meta }),
  pipeline: guardStages({ ...pipelineOperators, $count }),
  projection: projectionOperators,
  query: { ...queryOperators, $type },
  window: windowOperators,
});

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

/**
 * The same options as one reusable mingo `ComputeOptions`. Given plain options, every Query, Aggregator and
 * updater call copies the whole operator context (hundreds of operators) before doing anything, which costs
 * more than matching a document; given a ComputeOptions instance it only copies its per-call locals. mingo
 * does not export the class, so it is taken from the options a query operator receives (a private probe
 * context, never the gateway's). Falls back to plain options if that ever stops working.
 */
const SHARED_OPTIONS: Partial<Options> = (() => {
  let received: unknown;
  try {
    const probe = Context.init({
      query: {
        $probeOptions: (_selector: string, _value: unknown, options: unknown) => {
          received = options;
          return () => true;
        },
      },
    });
    new Query({ probe: { $probeOptions: 1 } }, { ...mingoOptions(), context: probe });
    const init = (received as { constructor?: { init?: (options: Partial<Options>) => unknown } } | undefined)
      ?.constructor?.init;
    if (typeof init !== "function") return mingoOptions();
    const shared = init(mingoOptions()) as { local?: unknown; context?: unknown };
    return shared.local !== undefined && shared.context instanceof Context
      ? (shared as Partial<Options>)
      : mingoOptions();
  } catch {
    return mingoOptions();
  }
})();

/** mingo's errors (unknown operator, bad expression, …) are errors in the request: 400 InvalidParameter. */
export function translateMingoError(error: unknown): unknown {
  if (error instanceof GatewayError) return error;
  if (error instanceof MingoError || error instanceof Error) return invalidParameter(error.message);
  return error;
}

/** Runs mingo with its errors translated (see translateMingoError). */
export function withMingo<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw translateMingoError(error);
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
  const query = withMingo(() => new Query(plain, SHARED_OPTIONS));
  const matchesAll = Object.keys(plain).length === 0;
  return {
    plain,
    text,
    // Not wrapped per document (hot path): callers translate errors around their scan loop.
    matches: matchesAll ? () => true : (document) => query.test(document),
  };
}

export function sortDocuments(documents: Document[], sort: Record<string, 1 | -1>): Document[] {
  if (documents.length < 2) return documents;
  return withMingo(() => new Aggregator([{ $sort: sort }], SHARED_OPTIONS).run(documents) as Document[]);
}

/** Projects documents the caller owns (mingo's exclusion projection mutates nested objects of its input). */
export function projectOwnedDocuments(owned: Document[], projection: Projection, filter: Filter): Document[] {
  const keys = Object.keys(projection);
  if (keys.length === 0) return owned;
  // The documents already matched the filter; only a positional projection (`a.$`) needs it again, to find
  // the matched element (and re-testing a large `$in` per document is quadratic).
  const condition = keys.some((key) => key.includes("$")) ? filter : {};
  return withMingo(() => new Query(condition, SHARED_OPTIONS).find<Document>(owned, projection).all());
}

/** Splits `{$meta: "textScore"}` entries out of a sort or projection. */
export function splitTextScoreMeta<T extends Document>(
  spec: T | undefined,
): { rest: T | undefined; metaKeys: string[] } {
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
    // The stages run as an aggregation over the one (privately owned) document, as mingo's updater does.
    if (update.length > 0) return withMingo(() => new Aggregator(update, SHARED_OPTIONS).run([owned])[0] as Document);
    return owned;
  }
  const { $setOnInsert, $currentDate, ...operators } = update;
  const passes: Document[] = [];
  if (Object.keys(operators).length > 0) passes.push(operators);
  // MongoDB sets the current time itself; mingo would write a number for {$type: "timestamp"}.
  if ($currentDate !== undefined) passes.push({ $set: currentDates($currentDate) });
  if (inserting && $setOnInsert !== undefined) passes.push({ $set: $setOnInsert });
  for (const modifier of passes) {
    assertApplicable(documents[0] as Document, modifier);
    if (applyTopLevelModifier(documents[0] as Document, modifier)) continue;
    withMingo(() =>
      mingoUpdateOne(documents, inserting ? {} : condition, modifier as never, { cloneMode: "deep" }, mingoOptions()),
    );
  }
  return documents[0] as Document;
}

const TOP_LEVEL_OPERATORS = new Set(["$set", "$unset", "$inc", "$push"]);
const RESERVED_FIELDS = new Set(["_id", "__proto__", "constructor", "prototype"]);

/**
 * `$set`, `$unset`, `$inc` and `$push` (a value, or `$each` with an optional `$slice`) on top-level fields,
 * applied directly: mingo's updater rebuilds its whole operator context on every call, which dominates
 * bulk writes and large updateMany. Anything else (dotted or positional paths, other operators or
 * modifiers, a field named twice) returns false and goes to mingo. Runs after `assertApplicable`, so
 * `$inc` targets are numbers (or missing) and `$push` targets arrays (or missing).
 */
function applyTopLevelModifier(document: Document, modifier: Document): boolean {
  const seen = new Set<string>();
  for (const [operator, fields] of Object.entries(modifier)) {
    if (!TOP_LEVEL_OPERATORS.has(operator) || !isPlainObject(fields)) return false;
    for (const [field, operand] of Object.entries(fields)) {
      if (field === "" || field.includes(".") || field.includes("$") || RESERVED_FIELDS.has(field)) return false;
      if (seen.has(field)) return false;
      seen.add(field);
      if (operator === "$inc" && typeof operand !== "number") return false;
      if (operator === "$push" && !pushSpec(operand)) return false;
    }
  }
  for (const [operator, fields] of Object.entries(modifier) as [string, Document][]) {
    for (const [field, operand] of Object.entries(fields)) {
      if (operator === "$set") document[field] = cloneValue(operand);
      else if (operator === "$unset") delete document[field];
      else if (operator === "$inc")
        document[field] = ((document[field] as number | undefined) || 0) + (operand as number);
      else {
        const { each, slice } = pushSpec(operand) as { each: unknown[]; slice: number | undefined };
        const current = document[field];
        let next = [...(Array.isArray(current) ? current : []), ...each.map(cloneValue)];
        // MongoDB applies $slice whether or not the array existed: 0 empties it, n keeps the first n, -n the last n.
        if (slice !== undefined) next = slice < 0 ? next.slice(Math.max(0, next.length + slice)) : next.slice(0, slice);
        document[field] = next;
      }
    }
  }
  return true;
}

/** A `$push` operand: a plain value, or `{$each: [...]}` with an optional integer `$slice`; else undefined. */
function pushSpec(operand: unknown): { each: unknown[]; slice: number | undefined } | undefined {
  if (!isPlainObject(operand) || !Object.keys(operand).some((key) => key.startsWith("$"))) {
    return { each: [operand], slice: undefined };
  }
  const keys = Object.keys(operand);
  if (!keys.every((key) => key === "$each" || key === "$slice") || !Array.isArray(operand.$each)) return undefined;
  const slice = operand.$slice;
  if (slice !== undefined && !(typeof slice === "number" && Number.isInteger(slice))) return undefined;
  return { each: operand.$each, slice: slice as number | undefined };
}

let timestampIncrement = 0;

function currentDates(spec: unknown): Document {
  if (!isPlainObject(spec)) throw invalidParameter("$currentDate expects a document");
  const now = new Date();
  const out: Document = {};
  for (const [path, kind] of Object.entries(spec)) {
    if (kind === true || (isPlainObject(kind) && kind.$type === "date")) out[path] = now;
    else if (isPlainObject(kind) && kind.$type === "timestamp") {
      timestampIncrement = (timestampIncrement + 1) % 0x7fffffff;
      out[path] = new Timestamp({ t: Math.floor(now.getTime() / 1000), i: timestampIncrement });
    } else throw invalidParameter(`$currentDate.${path}: expects true, {$type: "date"} or {$type: "timestamp"}`);
  }
  return out;
}

/** Operators that create the path they name (and so fail when it runs through a scalar). */
const CREATING_OPERATORS = new Set(["$set", "$inc", "$mul", "$min", "$max", "$push", "$addToSet", "$bit"]);
const NUMERIC_OPERATORS = new Set(["$inc", "$mul"]);
const ARRAY_OPERATORS = new Set(["$push", "$addToSet", "$pop", "$pull", "$pullAll"]);

/**
 * MongoDB refuses updates that mingo silently skips: arithmetic on non-numbers, array operators on
 * non-arrays, and paths through scalars. Checked before applying, so the error leaves no trace.
 * Paths with positional segments (`$`, `$[]`, `$[id]`) are left to mingo.
 */
function assertApplicable(document: Document, modifier: Document): void {
  for (const [operator, fields] of Object.entries(modifier)) {
    if (!isPlainObject(fields)) continue;
    for (const [path, operand] of Object.entries(fields)) {
      if (path.includes("$")) continue;
      if (operator === "$rename") {
        if (typeof operand === "string") walkPath(document, operand, true);
        continue;
      }
      const target = walkPath(document, path, CREATING_OPERATORS.has(operator));
      if (NUMERIC_OPERATORS.has(operator)) {
        if (!isJsNumber(operand)) {
          throw invalidParameter(
            `Cannot ${operator.slice(1)} with non-numeric argument: {${path}: ${String(operand)}}`,
          );
        }
        if (target.exists && !isJsNumber(target.value)) {
          throw invalidParameter(`Cannot apply ${operator} to a value of non-numeric type at '${path}'`);
        }
      }
      if (ARRAY_OPERATORS.has(operator) && target.exists && !Array.isArray(target.value)) {
        throw invalidParameter(`The field '${path}' must be an array to apply ${operator}`);
      }
    }
  }
}

function isJsNumber(value: unknown): boolean {
  // Long / Decimal128 arithmetic is left to MongoDB: refusing it here keeps the app off it.
  return typeof value === "number";
}

/** Resolves a dotted path for an update; with `creating`, a scalar (or null) on the way is an error. */
function walkPath(document: Document, path: string, creating: boolean): { exists: boolean; value: unknown } {
  const parts = path.split(".");
  let current: unknown = document;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    let next: unknown;
    if (Array.isArray(current)) {
      if (!/^\d+$/.test(part)) {
        if (creating)
          throw invalidParameter(`Cannot create field '${part}' in an array at '${parts.slice(0, i).join(".")}'`);
        return { exists: false, value: undefined };
      }
      next = current[Number(part)];
    } else if (isPlainObject(current)) {
      next = current[part];
    } else {
      if (creating) {
        throw invalidParameter(
          `Cannot create field '${part}' in element {${parts.slice(0, i).join(".")}: ${String(current)}}`,
        );
      }
      return { exists: false, value: undefined };
    }
    if (next === undefined) return { exists: false, value: undefined };
    current = next;
  }
  return { exists: true, value: current };
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

/**
 * Runs an aggregation. With `textScores`, the input documents carry their `$text` score in a hidden field:
 * `{$meta: "textScore"}` reads it, `$sort` by it is rewritten to sort on it, inclusion projections keep it,
 * and it is removed from the results wherever it ended up (`$push: "$$ROOT"`, `$facet` arrays, …).
 */
export function runPipeline(
  input: Iterable<Document>,
  pipeline: Document[],
  collectionResolver: CollectionResolver,
  textScores = false,
): Document[] {
  const stages = textScores ? prepareTextPipeline(pipeline) : pipeline;
  const results = withMingo(() => new Aggregator(stages, mingoOptions(collectionResolver)).run(input) as Document[]);
  if (textScores) for (const document of results) removeTextScores(document);
  return results;
}

function prepareTextPipeline(pipeline: Document[]): Document[] {
  return pipeline.map((stage) => {
    const [name] = Object.keys(stage);
    const body = name === undefined ? undefined : stage[name];
    if (name === "$sort" && isPlainObject(body)) {
      const sort: Document = {};
      // A textScore sort key is always descending, as in find.
      for (const [key, direction] of Object.entries(body)) {
        if (isPlainObject(direction) && direction.$meta === "textScore") sort[TEXT_SCORE_FIELD] = -1;
        else sort[key] = direction;
      }
      return { $sort: sort };
    }
    if (name === "$project" && isPlainObject(body) && isInclusionProjection(body)) {
      return { $project: { ...body, [TEXT_SCORE_FIELD]: 1 } };
    }
    // MongoDB keeps a document's metadata when its root is replaced.
    if (name === "$replaceRoot" && isPlainObject(body) && body.newRoot !== undefined) {
      return { $replaceRoot: { newRoot: keepingTextScore(body.newRoot) } };
    }
    if (name === "$replaceWith") return { $replaceWith: keepingTextScore(body) };
    if (name === "$facet" && isPlainObject(body)) {
      const facets: Document = {};
      for (const [facet, inner] of Object.entries(body)) {
        facets[facet] = Array.isArray(inner) ? prepareTextPipeline(inner as Document[]) : inner;
      }
      return { $facet: facets };
    }
    return stage;
  });
}

function keepingTextScore(newRoot: unknown): Document {
  return { $mergeObjects: [newRoot, { [TEXT_SCORE_FIELD]: `$${TEXT_SCORE_FIELD}` }] };
}

/** An inclusion projection names a field other than `_id` with anything but 0 / false. */
function isInclusionProjection(projection: Document): boolean {
  return Object.entries(projection).some(([key, value]) => key !== "_id" && value !== 0 && value !== false);
}

function removeTextScores(value: unknown): void {
  if (Array.isArray(value)) {
    for (const element of value) removeTextScores(element);
  } else if (isPlainObject(value)) {
    delete value[TEXT_SCORE_FIELD];
    for (const inner of Object.values(value)) removeTextScores(inner);
  }
}
