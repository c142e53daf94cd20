import { type Context, Hono } from "hono";
import { ApiKeyVerifier } from "./auth";
import type { Backend, BulkOperation, Namespace } from "./backends/types";
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
  isActionName,
  namespaceSchema,
  parseAction,
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
  /** Receives one JSON line per request (never the apiKey or document contents). */
  log?: (line: string) => void;
}

export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_LIMIT = 50_000;

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

  const handleAction = async (c: Context<GatewayEnv>) => {
    const facts = c.get("facts");
    const action = c.req.param("action") ?? "";
    facts.action = action.slice(0, 60); // caller-controlled: bounded in the log

    if (!(await verifier.verify(c.req.header("apiKey")))) {
      throw new GatewayError("Unauthorized", "missing or invalid apiKey header");
    }
    if (!isActionName(action) || (action === "dropCollection" && !options.allowDrop)) {
      throw new GatewayError("ActionNotFound", `unknown action '${action.slice(0, 60)}'`);
    }
    const body = parseBody(await readBodyText(c.req.raw, maxBodyBytes));
    const namespace = namespaceSchema.safeParse(body);
    if (!namespace.success) {
      const issue = namespace.error.issues[0];
      throw invalidParameter(`${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`);
    }
    const ns: Namespace = { database: namespace.data.database, collection: namespace.data.collection };
    facts.collection = ns.collection.slice(0, 120);
    if (!databases.has(ns.database))
      throw new GatewayError("Forbidden", `database '${ns.database.slice(0, 60)}' is not allowed`);
    assertCollectionName(ns.collection);
    assertNoForbiddenOperators(body);
    const result = await runAction(backend, action, ns, body, maxLimit);
    return ejsonResponse(200, result);
  };

  app.post("/app/:appId/endpoint/data/v1/action/:action", handleAction);
  app.post("/v1/action/:action", handleAction);
  return app;
}

async function runAction(
  backend: Backend,
  action: ActionName,
  ns: Namespace,
  body: unknown,
  maxLimit: number,
): Promise<object> {
  switch (action) {
    case "findOne": {
      const request = parseAction("findOne", body);
      const [document] = await backend.find(ns, {
        filter: request.filter ?? {},
        ...(request.projection ? { projection: request.projection } : {}),
        ...(request.sort ? { sort: request.sort } : {}),
        limit: 1,
      });
      return { document: document ?? null };
    }
    case "find": {
      const request = parseAction("find", body);
      if (request.limit !== undefined && request.limit > maxLimit) {
        throw invalidParameter(`limit: must be at most ${maxLimit}`);
      }
      const documents = await backend.find(ns, {
        filter: request.filter ?? {},
        ...(request.projection ? { projection: request.projection } : {}),
        ...(request.sort ? { sort: request.sort } : {}),
        ...(request.skip ? { skip: request.skip } : {}),
        // MongoDB reads limit 0 as "no limit": here that means the gateway's maximum.
        limit: request.limit || maxLimit,
      });
      return { documents };
    }
    case "insertOne": {
      const request = parseAction("insertOne", body);
      return backend.insertOne(ns, request.document);
    }
    case "insertMany": {
      const request = parseAction("insertMany", body);
      return backend.insertMany(ns, request.documents, request.ordered ?? true);
    }
    case "updateOne":
    case "updateMany": {
      const request = parseAction(action, body);
      assertUpdateShape(request.update);
      const command = { filter: request.filter, update: request.update, upsert: request.upsert ?? false };
      return action === "updateOne" ? backend.updateOne(ns, command) : backend.updateMany(ns, command);
    }
    case "replaceOne": {
      const request = parseAction("replaceOne", body);
      assertReplacementShape(request.replacement);
      return backend.replaceOne(ns, {
        filter: request.filter,
        replacement: request.replacement,
        upsert: request.upsert ?? false,
      });
    }
    case "deleteOne": {
      const request = parseAction("deleteOne", body);
      return backend.deleteOne(ns, request.filter);
    }
    case "deleteMany": {
      const request = parseAction("deleteMany", body);
      return backend.deleteMany(ns, request.filter);
    }
    case "aggregate": {
      const request = parseAction("aggregate", body);
      assertPipelineShape(request.pipeline);
      // One extra document tells "exactly maxLimit" from "more than maxLimit" without materializing the rest.
      const documents = await backend.aggregate(ns, [...request.pipeline, { $limit: maxLimit + 1 }]);
      if (documents.length > maxLimit) {
        throw invalidParameter(`aggregate would return more than ${maxLimit} documents: add a $limit stage`);
      }
      return { documents };
    }
    case "findOneAndUpdate": {
      const request = parseAction("findOneAndUpdate", body);
      assertUpdateShape(request.update);
      const document = await backend.findOneAndUpdate(ns, {
        filter: request.filter,
        update: request.update,
        upsert: request.upsert ?? false,
        returnDocument: request.returnDocument ?? "after",
        ...(request.sort ? { sort: request.sort } : {}),
        ...(request.projection ? { projection: request.projection } : {}),
      });
      return { document };
    }
    case "findOneAndDelete": {
      const request = parseAction("findOneAndDelete", body);
      const document = await backend.findOneAndDelete(ns, {
        filter: request.filter,
        ...(request.sort ? { sort: request.sort } : {}),
        ...(request.projection ? { projection: request.projection } : {}),
      });
      return { document };
    }
    case "bulkWrite": {
      const request = parseAction("bulkWrite", body);
      const operations = request.operations.map(withUpsertDefault);
      assertBulkOperations(operations);
      return { ...(await backend.bulkWrite(ns, operations, request.ordered ?? true)) };
    }
    case "createIndexes": {
      const request = parseAction("createIndexes", body);
      return { createdIndexes: await backend.createIndexes(ns, toIndexSpecs(request.indexes)) };
    }
    case "listIndexes": {
      parseAction("listIndexes", body);
      return { indexes: await backend.listIndexes(ns) };
    }
    case "dropCollection": {
      parseAction("dropCollection", body);
      return { dropped: await backend.dropCollection(ns) };
    }
  }
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

function parseBody(text: string): unknown {
  if (text.trim().length === 0) throw invalidParameter("body: expected an EJSON document");
  assertTextNesting(text);
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
