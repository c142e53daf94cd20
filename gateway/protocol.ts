import { z } from "zod";
import type { BulkOperation, Document, IndexSpec, SortSpec } from "./backends/types";
import { isPlainObject } from "./documents";
import { GatewayError, invalidParameter } from "./errors";

/**
 * The Data API request bodies, validated with zod (unknown fields are refused so a client's typo fails loudly
 * instead of being ignored), plus the guards every request passes: server-side JavaScript operators, stages
 * that write elsewhere, and update / replacement document shapes.
 */

const documentSchema = z.custom<Document>(isPlainObject, { message: "must be a document" });

const sortSchema = z.custom<SortSpec>(
  (value) =>
    isPlainObject(value) &&
    Object.values(value).every(
      (direction) =>
        direction === 1 ||
        direction === -1 ||
        (isPlainObject(direction) && direction.$meta === "textScore" && Object.keys(direction).length === 1),
    ),
  { message: 'must map fields to 1, -1 or {"$meta": "textScore"}' },
);

const updateSchema = z.union([documentSchema, z.array(documentSchema)], {
  message: "must be an update document or an aggregation pipeline",
});

const count = z.number().int().nonnegative();

const namespaceFields = {
  dataSource: z.string(),
  database: z.string().min(1),
  collection: z.string().min(1),
};

export const namespaceSchema = z.object(namespaceFields);

const indexSpecSchema = z.strictObject({
  key: z
    .record(z.string().min(1), z.union([z.literal(1), z.literal(-1), z.literal("text")]))
    .refine((key) => Object.keys(key).length > 0, "must name at least one field"),
  name: z.string().min(1).optional(),
  unique: z.boolean().optional(),
  sparse: z.boolean().optional(),
  expireAfterSeconds: count.optional(),
  partialFilterExpression: documentSchema.optional(),
  weights: z.record(z.string(), z.number().int().positive()).optional(),
  default_language: z.string().optional(),
});

const updateCommand = { filter: documentSchema, update: updateSchema, upsert: z.boolean().optional() };
const replaceCommand = { filter: documentSchema, replacement: documentSchema, upsert: z.boolean().optional() };

const bulkOperationSchema = z.union([
  z.strictObject({ insertOne: z.strictObject({ document: documentSchema }) }),
  z.strictObject({ updateOne: z.strictObject(updateCommand) }),
  z.strictObject({ updateMany: z.strictObject(updateCommand) }),
  z.strictObject({ replaceOne: z.strictObject(replaceCommand) }),
  z.strictObject({ deleteOne: z.strictObject({ filter: documentSchema }) }),
  z.strictObject({ deleteMany: z.strictObject({ filter: documentSchema }) }),
]);

export const actionSchemas = {
  findOne: z.strictObject({
    ...namespaceFields,
    filter: documentSchema.optional(),
    projection: documentSchema.optional(),
    sort: sortSchema.optional(),
  }),
  find: z.strictObject({
    ...namespaceFields,
    filter: documentSchema.optional(),
    projection: documentSchema.optional(),
    sort: sortSchema.optional(),
    limit: count.optional(),
    skip: count.optional(),
  }),
  insertOne: z.strictObject({ ...namespaceFields, document: documentSchema }),
  insertMany: z.strictObject({
    ...namespaceFields,
    documents: z.array(documentSchema).min(1),
    ordered: z.boolean().optional(),
  }),
  updateOne: z.strictObject({ ...namespaceFields, ...updateCommand }),
  updateMany: z.strictObject({ ...namespaceFields, ...updateCommand }),
  replaceOne: z.strictObject({ ...namespaceFields, ...replaceCommand }),
  deleteOne: z.strictObject({ ...namespaceFields, filter: documentSchema }),
  deleteMany: z.strictObject({ ...namespaceFields, filter: documentSchema }),
  aggregate: z.strictObject({ ...namespaceFields, pipeline: z.array(documentSchema) }),
  findOneAndUpdate: z.strictObject({
    ...namespaceFields,
    ...updateCommand,
    sort: sortSchema.optional(),
    projection: documentSchema.optional(),
    returnDocument: z.enum(["before", "after"]).optional(),
  }),
  findOneAndDelete: z.strictObject({
    ...namespaceFields,
    filter: documentSchema,
    sort: sortSchema.optional(),
    projection: documentSchema.optional(),
  }),
  bulkWrite: z.strictObject({
    ...namespaceFields,
    operations: z.array(bulkOperationSchema).min(1),
    ordered: z.boolean().optional(),
  }),
  createIndexes: z.strictObject({ ...namespaceFields, indexes: z.array(indexSpecSchema).min(1) }),
  listIndexes: z.strictObject({ ...namespaceFields }),
  dropCollection: z.strictObject({ ...namespaceFields }),
  dropIndex: z.strictObject({ ...namespaceFields, name: z.string().min(1).max(128) }),
} as const;

export type ActionName = keyof typeof actionSchemas;

/**
 * `batch`: an ordered list of operations on one database, each `{action, collection, ...that action's
 * fields}` (checked as that action, see app.ts), optionally as one transaction.
 */
export const batchSchema = z.strictObject({
  dataSource: z.string(),
  database: z.string().min(1),
  operations: z.array(documentSchema).min(1),
  transaction: z.boolean().optional(),
});

export type BatchBody = z.infer<typeof batchSchema>;

/** Actions a transaction cannot contain (MongoDB refuses catalog reads and changes inside one). */
export const NOT_IN_TRANSACTION: ReadonlySet<ActionName> = new Set([
  "createIndexes",
  "listIndexes",
  "dropCollection",
  "dropIndex",
]);
export type ActionBody<A extends ActionName> = z.infer<(typeof actionSchemas)[A]>;

export function isActionName(name: string): name is ActionName {
  return Object.hasOwn(actionSchemas, name);
}

/** Validates a parsed body against the action's schema; the first problem becomes a 400 naming the field. */
export function parseAction<A extends ActionName>(action: A, body: unknown): ActionBody<A> {
  const result = actionSchemas[action].safeParse(body);
  if (result.success) return result.data as ActionBody<A>;
  throw schemaError(result.error);
}

export function parseBatch(body: unknown): BatchBody {
  const result = batchSchema.safeParse(body);
  if (result.success) return result.data;
  throw schemaError(result.error);
}

function schemaError(error: z.ZodError): GatewayError {
  const issue = error.issues[0];
  const path = issue?.path.length ? issue.path.join(".") : "body";
  const message =
    issue?.code === "unrecognized_keys"
      ? `unknown field ${issue.keys.map((key) => `'${key}'`).join(", ")}`
      : issue?.message;
  return invalidParameter(`${path}: ${message ?? "invalid"}`);
}

// ── guards ─────────────────────────────────────────────────────────────────────────────────────────────────

/** Server-side JavaScript: never executed, wherever it hides (inside $expr, $lookup pipelines, $facet, …). */
const JAVASCRIPT_OPERATORS = new Set(["$where", "$function", "$accumulator"]);
/** Stages that write to another collection, bypassing the gateway's write path. */
const WRITING_STAGES = new Set(["$out", "$merge"]);
/**
 * How deep a body may nest: MongoDB stores documents of at most 100 levels (the document itself is the first,
 * each object or array inside adds one), and the document of an insertOne is the first level below the body.
 * The same bound holds for every part of every body, so no request is deeper than what MongoDB stores.
 */
export const MAX_NESTING_DEPTH = 100;

export function nestingTooDeep(): GatewayError {
  return invalidParameter(`body nests deeper than ${MAX_NESTING_DEPTH} levels (MongoDB's limit for a document)`);
}

/**
 * Checked on the raw text before parsing (parsers and the scans after them recurse, so a body of a few
 * thousand brackets must never reach them): `{` and `[` outside strings. EJSON wrappers such as
 * `{"$date": {"$numberLong": …}}` add up to two levels in the text that the parsed value does not have.
 */
export function assertTextNesting(text: string, extraLevels = 0): void {
  const limit = MAX_NESTING_DEPTH + 1 + 2 + extraLevels;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === 0x5c) i++;
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === 0x7b || code === 0x5b) {
      if (++depth > limit) throw nestingTooDeep();
    } else if (code === 0x7d || code === 0x5d) depth--;
  }
}

/** Deep scan of the whole parsed body for refused operators; also bounds nesting depth exactly. */
export function assertNoForbiddenOperators(value: unknown, depth = 0): void {
  if (Array.isArray(value)) {
    if (depth > MAX_NESTING_DEPTH) throw nestingTooDeep();
    for (const element of value) assertNoForbiddenOperators(element, depth + 1);
    return;
  }
  if (!isPlainObject(value)) return;
  if (depth > MAX_NESTING_DEPTH) throw nestingTooDeep();
  for (const [key, inner] of Object.entries(value)) {
    if (JAVASCRIPT_OPERATORS.has(key)) {
      throw new GatewayError(
        "ForbiddenOperator",
        `${key} is not allowed: the gateway never runs server-side JavaScript`,
      );
    }
    if (WRITING_STAGES.has(key)) {
      throw new GatewayError("ForbiddenOperator", `${key} is not allowed: aggregations may not write collections`);
    }
    assertNoForbiddenOperators(inner, depth + 1);
  }
}

const PIPELINE_UPDATE_STAGES = new Set(["$set", "$addFields", "$unset", "$project", "$replaceWith", "$replaceRoot"]);
const UPDATE_OPERATORS = new Set([
  "$set",
  "$unset",
  "$inc",
  "$min",
  "$max",
  "$mul",
  "$rename",
  "$push",
  "$addToSet",
  "$pull",
  "$pullAll",
  "$pop",
  "$currentDate",
  "$setOnInsert",
  "$bit",
]);

/** An update is either operators only (`{$set: …}`) or a pipeline of the stages MongoDB allows in updates. */
export function assertUpdateShape(update: Document | Document[], path = "update"): void {
  if (Array.isArray(update)) {
    if (update.length === 0) throw invalidParameter(`${path}: an update pipeline needs at least one stage`);
    update.forEach((stage, i) => {
      const keys = Object.keys(stage);
      if (keys.length !== 1 || !PIPELINE_UPDATE_STAGES.has(keys[0] as string)) {
        throw invalidParameter(
          `${path}.${i}: update pipelines allow one of ${[...PIPELINE_UPDATE_STAGES].join(", ")} per stage`,
        );
      }
    });
    return;
  }
  const keys = Object.keys(update);
  if (keys.length === 0) throw invalidParameter(`${path}: update document must not be empty`);
  const plain = keys.find((key) => !key.startsWith("$"));
  if (plain !== undefined)
    throw invalidParameter(`${path}: update document requires atomic operators (found '${plain}')`);
  for (const key of keys) {
    // Checked here, not left to the backend: an update that matches nothing must fail the same way on both.
    if (!UPDATE_OPERATORS.has(key)) throw invalidParameter(`${path}: unknown update operator ${key}`);
    if (!isPlainObject(update[key])) throw invalidParameter(`${path}.${key}: must be a document`);
  }
  assertNoPathConflicts(update, path);
}

/** MongoDB refuses an update touching one path (or a path and its parent) twice, $setOnInsert included. */
function assertNoPathConflicts(update: Document, path: string): void {
  const touched: string[] = [];
  for (const [operator, fields] of Object.entries(update)) {
    for (const [field, operand] of Object.entries(fields as Document)) {
      touched.push(field);
      if (operator === "$rename" && typeof operand === "string") touched.push(operand);
    }
  }
  const all = new Set<string>();
  for (const field of touched) {
    if (all.has(field))
      throw invalidParameter(`${path}: updating the path '${field}' would create a conflict at '${field}'`);
    all.add(field);
  }
  for (const field of touched) {
    for (let dot = field.indexOf("."); dot !== -1; dot = field.indexOf(".", dot + 1)) {
      const parent = field.slice(0, dot);
      if (all.has(parent)) {
        throw invalidParameter(`${path}: updating the path '${field}' would create a conflict at '${parent}'`);
      }
    }
  }
}

/** A replacement is a whole document: no update operators at its top level. */
export function assertReplacementShape(replacement: Document, path = "replacement"): void {
  const operator = Object.keys(replacement).find((key) => key.startsWith("$"));
  if (operator !== undefined) throw invalidParameter(`${path}: replacement document must not contain ${operator}`);
}

export function assertPipelineShape(pipeline: Document[]): void {
  pipeline.forEach((stage, i) => {
    const keys = Object.keys(stage);
    if (keys.length !== 1 || !(keys[0] as string).startsWith("$")) {
      throw invalidParameter(`pipeline.${i}: a stage is one $-operator`);
    }
  });
}

/** MongoDB's collection-name rules (plus: system collections are off limits). */
export function assertCollectionName(name: string): void {
  if (
    name.includes("$") ||
    name.includes("\0") ||
    name.startsWith("system.") ||
    name.startsWith(".") ||
    name.length > 200
  ) {
    throw invalidParameter(`collection: invalid collection name '${name.slice(0, 60)}'`);
  }
}

export function assertBulkOperations(operations: BulkOperation[]): void {
  operations.forEach((operation, i) => {
    if ("updateOne" in operation) assertUpdateShape(operation.updateOne.update, `operations.${i}.updateOne.update`);
    if ("updateMany" in operation) assertUpdateShape(operation.updateMany.update, `operations.${i}.updateMany.update`);
    if ("replaceOne" in operation) {
      assertReplacementShape(operation.replaceOne.replacement, `operations.${i}.replaceOne.replacement`);
    }
  });
}

export function toIndexSpecs(indexes: ActionBody<"createIndexes">["indexes"]): IndexSpec[] {
  return indexes.map((index) => ({ ...index }) as IndexSpec);
}
