import { type Context, Hono } from "hono";
import { ApiKeyVerifier } from "./auth";
import type { Backend, BulkOperation, Document, Namespace } from "./backends/types";
import { parseEjson, stringifyEjson } from "./ejson";
import { GatewayError, invalidParameter, isGatewayError } from "./errors";
import {
  type ActionName,
  assertBulkOperations,
  assertCollectionName,
  assertNoForbiddenOperators,
  assertPipelineShape,
  assertReplacementShape,
  assertTextNesting,
  assertUpdateShape,
  type BatchBody,
  isActionName,
  NOT_IN_TRANSACTION,
  namespaceSchema,
  parseAction,
  parseBatch,
  toIndexSpecs,
} from "./protocol";

/**
 * The Data API protocol as a Hono app (web-standard APIs only, so it runs on Node and on Deno):
 * `POST /app/<app-id>/endpoint/data/v1/action/<action>` (the hosted API's path) and the short
 * `POST /v1/action/<action>`, plus `GET /health`.
 */

export interface GatewayAppOptions {
  /** Accepted values of the `apiKey` header. */
  apiKeys: string[];
  /** Databases callers may touch; anything else is 403. */
  databases: string[];
  /** Request body limit (413 above). Default 16 MB. */
  maxBodyBytes?: number;
  /**
   * Largest `limit` a find may ask for; larger is a 400 (not silently capped: a caller paging with too large
   * a limit must learn it is missing data). A find without limit returns at most this many documents, and an
   * aggregate that would return more is a 400. Default 50,000.
   */
  maxLimit?: number;
  /** Enables the `dropCollection` action (tests only). */
  allowDrop?: boolean;
  /** Most steps one `batch` may have (400 above). Default 50. */
  maxBatchOperations?: number;
  /** Receives one JSON line per request (never the apiKey or document contents). */
  log?: (line: string) => void;
}

export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_LIMIT = 50_000;
export const DEFAULT_MAX_BATCH_OPERATIONS = 50;

interface RequestFacts {
  action?: string;
  collection?: string;
  errorCode?: string;
}

type GatewayEnv = { Variables: { facts: RequestFacts } };

export function createGatewayApp(backend: Backend, options: GatewayAppOptions): Hono<GatewayEnv> {
  const app = new Hono<GatewayEnv>();
  const verifier = new ApiKeyVerifier(options.apiKeys);
  const databases = new Set(options.databases);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const maxLimit = options.maxLimit ?? DEFAULT_MAX_LIMIT;
  const maxBatchOperations = options.maxBatchOperations ?? DEFAULT_MAX_BATCH_OPERATIONS;
  const log = options.log ?? (() => {});

  app.use("*", async (c, next) => {
    const started = performance.now();
    const facts: RequestFacts = {};
    c.set("facts", facts);
    await next();
    log(
      JSON.stringify({
        time: new Date().toISOString(),
        method: c.req.method,
        action: facts.action ?? null,
        collection: facts.collection ?? null,
        status: c.res.status,
        ms: Math.round((performance.now() - started) * 10) / 10,
        ...(facts.errorCode ? { error_code: facts.errorCode } : {}),
      }),
    );
  });

  app.onError((error, c) => {
    const gatewayError = isGatewayError(error) ? error : new GatewayError("InternalError", "internal error");
    c.get("facts").errorCode = gatewayError.code;
    if (!isGatewayError(error) || gatewayError.code === "InternalError") {
      // Details go to the log for operators, never to the caller.
      const cause = isGatewayError(error) ? error.cause : error;
      log(
        JSON.stringify({
          level: "error",
          action: c.get("facts").action ?? null,
          error: cause instanceof Error ? `${cause.name}: ${cause.message}`.slice(0, 300) : String(cause).slice(0, 300),
        }),
      );
    }
    const headers: Record<string, string> = gatewayError.code === "Unavailable" ? { "retry-after": "1" } : {};
    return ejsonResponse(gatewayError.status, gatewayError.toBody(), headers);
  });

  app.notFound((c) => {
    c.get("facts").errorCode = "ActionNotFound";
    return ejsonResponse(404, { error: "no such endpoint", error_code: "ActionNotFound" });
  });

  app.get("/health", async (c) => {
    c.get("facts").action = "health";
    try {
      await backend.ping();
      return ejsonResponse(200, { ok: true, backend: backend.kind });
    } catch {
      c.get("facts").errorCode = "Unavailable";
      return ejsonResponse(503, { ok: false, backend: backend.kind }, { "retry-after": "1" });
    }
  });

  const limits: OperationLimits = { databases, maxLimit, allowDrop: options.allowDrop === true };

  const handleAction = async (c: Context<GatewayEnv>) => {
    const facts = c.get("facts");
    const action = c.req.param("action") ?? "";
    facts.action = action.slice(0, 60); // caller-controlled: bounded in the log

    if (!(await verifier.verify(c.req.header("apiKey")))) {
      throw new GatewayError("Unauthorized", "missing or invalid apiKey header");
    }
    if (action === "batch") {
      // Two levels more than a single action's body: the steps sit in `operations: [{…}]`.
      const body = parseBody(await readBodyText(c.req.raw, maxBodyBytes), 2);
      return ejsonResponse(200, await runBatch(backend, body, limits, maxBatchOperations));
    }
    if (!isActionName(action) || (action === "dropCollection" && !options.allowDrop)) {
      throw new GatewayError("ActionNotFound", `unknown action '${action.slice(0, 60)}'`);
    }
    const body = parseBody(await readBodyText(c.req.raw, maxBodyBytes));
    const operation = prepareOperation(action, body, limits);
    facts.collection = operation.ns.collection.slice(0, 120);
    return ejsonResponse(200, await operation.run(backend));
  };

  app.post("/app/:appId/endpoint/data/v1/action/:action", handleAction);
  app.post("/v1/action/:action", handleAction);
  return app;
}

interface OperationLimits {
  databases: ReadonlySet<string>;
  maxLimit: number;
  allowDrop: boolean;
}

/** One validated, guarded operation, ready to run against a backend (or a transaction's view of one). */
interface PreparedOperation {
  readonly ns: Namespace;
  run(backend: Backend): Promise<object>;
}

/**
 * Every check an action's body passes before it reaches a backend, in this order: namespace, database
 * allow-list, collection name, refused operators (and nesting), the action's own schema and shape checks.
 * The same for a single request and for each step of a batch.
 */
function prepareOperation(action: ActionName, body: unknown, limits: OperationLimits): PreparedOperation {
  const namespace = namespaceSchema.safeParse(body);
  if (!namespace.success) {
    const issue = namespace.error.issues[0];
    throw invalidParameter(`${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`);
  }
  const ns: Namespace = { database: namespace.data.database, collection: namespace.data.collection };
  if (!limits.databases.has(ns.database)) {
    throw new GatewayError("Forbidden", `database '${ns.database.slice(0, 60)}' is not allowed`);
  }
  assertCollectionName(ns.collection);
  assertNoForbiddenOperators(body);
  return { ns, run: prepareRun(action, ns, body, limits.maxLimit) };
}

function prepareRun(
  action: ActionName,
  ns: Namespace,
  body: unknown,
  maxLimit: number,
): (backend: Backend) => Promise<object> {
  switch (action) {
    case "findOne": {
      const request = parseAction("findOne", body);
      return async (backend) => {
        const [document] = await backend.find(ns, {
          filter: request.filter ?? {},
          ...(request.projection ? { projection: request.projection } : {}),
          ...(request.sort ? { sort: request.sort } : {}),
          limit: 1,
        });
        return { document: document ?? null };
      };
    }
    case "find": {
      const request = parseAction("find", body);
      if (request.limit !== undefined && request.limit > maxLimit) {
        throw invalidParameter(`limit: must be at most ${maxLimit}`);
      }
      return async (backend) => ({
        documents: await backend.find(ns, {
          filter: request.filter ?? {},
          ...(request.projection ? { projection: request.projection } : {}),
          ...(request.sort ? { sort: request.sort } : {}),
          ...(request.skip ? { skip: request.skip } : {}),
          // MongoDB reads limit 0 as "no limit": here that means the gateway's maximum.
          limit: request.limit || maxLimit,
        }),
      });
    }
    case "insertOne": {
      const request = parseAction("insertOne", body);
      return (backend) => backend.insertOne(ns, request.document);
    }
    case "insertMany": {
      const request = parseAction("insertMany", body);
      return (backend) => backend.insertMany(ns, request.documents, request.ordered ?? true);
    }
    case "updateOne":
    case "updateMany": {
      const request = parseAction(action, body);
      assertUpdateShape(request.update);
      const command = { filter: request.filter, update: request.update, upsert: request.upsert ?? false };
      return (backend) => (action === "updateOne" ? backend.updateOne(ns, command) : backend.updateMany(ns, command));
    }
    case "replaceOne": {
      const request = parseAction("replaceOne", body);
      assertReplacementShape(request.replacement);
      const command = { filter: request.filter, replacement: request.replacement, upsert: request.upsert ?? false };
      return (backend) => backend.replaceOne(ns, command);
    }
    case "deleteOne": {
      const request = parseAction("deleteOne", body);
      return (backend) => backend.deleteOne(ns, request.filter);
    }
    case "deleteMany": {
      const request = parseAction("deleteMany", body);
      return (backend) => backend.deleteMany(ns, request.filter);
    }
    case "aggregate": {
      const request = parseAction("aggregate", body);
      assertPipelineShape(request.pipeline);
      return async (backend) => {
        // One extra document tells "exactly maxLimit" from "more than maxLimit" without materializing the rest.
        const documents = await backend.aggregate(ns, [...request.pipeline, { $limit: maxLimit + 1 }]);
        if (documents.length > maxLimit) {
          throw invalidParameter(`aggregate would return more than ${maxLimit} documents: add a $limit stage`);
        }
        return { documents };
      };
    }
    case "findOneAndUpdate": {
      const request = parseAction("findOneAndUpdate", body);
      assertUpdateShape(request.update);
      const command = {
        filter: request.filter,
        update: request.update,
        upsert: request.upsert ?? false,
        returnDocument: request.returnDocument ?? "after",
        ...(request.sort ? { sort: request.sort } : {}),
        ...(request.projection ? { projection: request.projection } : {}),
      };
      return async (backend) => ({ document: await backend.findOneAndUpdate(ns, command) });
    }
    case "findOneAndDelete": {
      const request = parseAction("findOneAndDelete", body);
      const command = {
        filter: request.filter,
        ...(request.sort ? { sort: request.sort } : {}),
        ...(request.projection ? { projection: request.projection } : {}),
      };
      return async (backend) => ({ document: await backend.findOneAndDelete(ns, command) });
    }
    case "bulkWrite": {
      const request = parseAction("bulkWrite", body);
      const operations = request.operations.map(withUpsertDefault);
      assertBulkOperations(operations);
      return async (backend) => ({ ...(await backend.bulkWrite(ns, operations, request.ordered ?? true)) });
    }
    case "createIndexes": {
      const request = parseAction("createIndexes", body);
      const specs = toIndexSpecs(request.indexes);
      return async (backend) => ({ createdIndexes: await backend.createIndexes(ns, specs) });
    }
    case "listIndexes": {
      parseAction("listIndexes", body);
      return async (backend) => ({ indexes: await backend.listIndexes(ns) });
    }
    case "dropCollection": {
      parseAction("dropCollection", body);
      return async (backend) => ({ dropped: await backend.dropCollection(ns) });
    }
    case "dropIndex": {
      const request = parseAction("dropIndex", body);
      if (request.name === "_id_") throw new GatewayError("InvalidParameter", "the _id_ index cannot be dropped");
      return async (backend) => ({ dropped: await backend.dropIndex(ns, request.name) });
    }
  }
}

// ── batch ──────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * `batch`: every step is validated first, exactly as its action alone would be (so a malformed batch changes
 * nothing), then the steps run in order. Without `transaction` the first failing step ends the batch and
 * what ran before it stays; with it, all steps commit together or none does. A failure answers with the
 * failing step's status and body plus `failedIndex` and `results` (the answers of the steps that took
 * effect: none in a transaction).
 */
async function runBatch(
  backend: Backend,
  body: unknown,
  limits: OperationLimits,
  maxOperations: number,
): Promise<{ results: object[] }> {
  const request = parseBatch(body);
  if (!limits.databases.has(request.database)) {
    throw new GatewayError("Forbidden", `database '${request.database.slice(0, 60)}' is not allowed`);
  }
  if (request.operations.length > maxOperations) {
    throw invalidParameter(`operations: a batch has at most ${maxOperations} steps (got ${request.operations.length})`);
  }
  const transaction = request.transaction === true;
  const steps = request.operations.map((step, index) => {
    try {
      return prepareStep(step, request, transaction, limits);
    } catch (error) {
      throw stepFailure(error, index, []);
    }
  });
  if (!transaction) {
    const results: object[] = [];
    for (const [index, step] of steps.entries()) {
      // Let other requests in between steps: a batch holds the embedded engine no longer than one step.
      if (index > 0) await yieldToOtherRequests();
      try {
        results.push(await step.run(backend));
      } catch (error) {
        throw stepFailure(error, index, results);
      }
    }
    return { results };
  }
  let failedIndex: number | undefined;
  try {
    const results = await backend.withTransaction(async (view) => {
      const answers: object[] = [];
      for (const [index, step] of steps.entries()) {
        failedIndex = index;
        answers.push(await step.run(view));
      }
      failedIndex = undefined; // past the steps: a failure now is the commit's
      return answers;
    });
    return { results };
  } catch (error) {
    throw failedIndex === undefined ? error : stepFailure(error, failedIndex, []);
  }
}

function prepareStep(
  step: Document,
  request: BatchBody,
  transaction: boolean,
  limits: OperationLimits,
): PreparedOperation {
  const { action, expect, ...fields } = step;
  if (typeof action !== "string") throw invalidParameter("action: each step names its action");
  if (action === "batch") throw invalidParameter("action: a batch cannot contain a batch");
  if (!isActionName(action) || (action === "dropCollection" && !limits.allowDrop)) {
    throw new GatewayError("ActionNotFound", `unknown action '${action.slice(0, 60)}'`);
  }
  if (transaction && NOT_IN_TRANSACTION.has(action)) {
    throw invalidParameter(`action: ${action} is not allowed in a transaction`);
  }
  if ("database" in fields || "dataSource" in fields) {
    throw invalidParameter("a step takes the batch's database and dataSource: leave them out of the step");
  }
  if (expect !== undefined && (expect !== "match" || !EXPECTABLE.has(action))) {
    throw invalidParameter(
      `expect: only "match", on ${[...EXPECTABLE].join(", ")} steps (a guard that must find or change a document)`,
    );
  }
  const operation = prepareOperation(
    action,
    { dataSource: request.dataSource, database: request.database, ...fields },
    limits,
  );
  if (expect === undefined) return operation;
  return {
    ns: operation.ns,
    async run(backend) {
      const answer = await operation.run(backend);
      if (!matchedSomething(answer)) {
        throw new GatewayError("PreconditionFailed", `a step that expects a match (${action}) matched no document`);
      }
      return answer;
    },
  };
}

/**
 * Steps that may carry `expect: "match"`: a guard. When its filter finds (or its update/delete matches) no
 * document, the batch fails there with 412 PreconditionFailed, so the steps after it never run, and in a
 * transaction nothing before it commits either: a conditional write and what depends on it in one call.
 */
const EXPECTABLE: ReadonlySet<string> = new Set([
  "findOne",
  "find",
  "aggregate",
  "updateOne",
  "updateMany",
  "deleteOne",
  "deleteMany",
  "findOneAndUpdate",
  "findOneAndDelete",
]);

function matchedSomething(answer: object): boolean {
  const a = answer as {
    document?: unknown;
    documents?: unknown[];
    matchedCount?: number;
    upsertedId?: unknown;
    deletedCount?: number;
  };
  if ("documents" in a) return (a.documents?.length ?? 0) > 0;
  if ("document" in a) return a.document !== null && a.document !== undefined;
  if ("deletedCount" in a) return (a.deletedCount ?? 0) > 0;
  return (a.matchedCount ?? 0) > 0 || (a.upsertedId !== undefined && a.upsertedId !== null);
}

/** The failing step's error, as its action alone would answer it, plus where the batch stopped. */
function stepFailure(error: unknown, failedIndex: number, results: object[]): GatewayError {
  const failure = isGatewayError(error)
    ? error
    : new GatewayError("InternalError", "internal error", {}, { cause: error });
  return new GatewayError(
    failure.code,
    failure.message,
    { ...failure.extra, failedIndex, results },
    { cause: failure.cause ?? error },
  );
}

function yieldToOtherRequests(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

type ParsedBulkOperation = ReturnType<typeof parseAction<"bulkWrite">>["operations"][number];

function withUpsertDefault(operation: ParsedBulkOperation): BulkOperation {
  if ("updateOne" in operation)
    return { updateOne: { ...operation.updateOne, upsert: operation.updateOne.upsert ?? false } };
  if ("updateMany" in operation) {
    return { updateMany: { ...operation.updateMany, upsert: operation.updateMany.upsert ?? false } };
  }
  if ("replaceOne" in operation) {
    return { replaceOne: { ...operation.replaceOne, upsert: operation.replaceOne.upsert ?? false } };
  }
  return operation;
}

function parseBody(text: string, extraLevels = 0): unknown {
  if (text.trim().length === 0) throw invalidParameter("body: expected an EJSON document");
  assertTextNesting(text, extraLevels);
  let body: unknown;
  try {
    body = parseEjson(text);
  } catch (error) {
    throw invalidParameter(
      `body: not valid EJSON (${error instanceof Error ? error.message.slice(0, 120) : "parse error"})`,
    );
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw invalidParameter("body: expected an EJSON document");
  }
  return body;
}

/** Reads the body up to `maxBytes` (declared length checked first, then counted while streaming). */
async function readBodyText(request: Request, maxBytes: number): Promise<string> {
  const tooLarge = () => new GatewayError("PayloadTooLarge", `body exceeds ${maxBytes} bytes`);
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw invalidParameter("body: not valid UTF-8");
  }
}

function ejsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(stringifyEjson(body), {
    status,
    headers: { "content-type": "application/ejson", ...headers },
  });
}
