import { randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { pathToFileURL } from "node:url";
import { brotliCompressSync, brotliDecompressSync, deflateSync, gunzipSync, gzipSync, inflateSync } from "node:zlib";
import { ChdbEngine, type EngineQuery, type EngineResult } from "./clickhouse-chdb";
import { ClickHouseHttpError } from "./clickhouse-errors";
import { DEFAULT_SESSION_LIMITS, NamedSessions, type SessionLimits, sessionRequest } from "./clickhouse-sessions";
import { listen } from "./ports";

/**
 * Dev/test-only ClickHouse HTTP interface over chDB: what `@clickhouse/client-web` (and curl) send to port
 * 8123 — query in the body or `?query=`, inserts with data in the body, `param_<name>` query parameters,
 * settings as URL parameters, Basic or X-ClickHouse-User/Key auth, gzip both ways, named sessions
 * (`session_id`, `session_timeout`, `session_check`, `close_session`) — answered the way clickhouse-server
 * answers, errors included (`Code: N. DB::Exception: … (NAME)`, X-ClickHouse-Exception-Code).
 */

export interface ClickHouseServerOptions {
  port: number;
  host?: string;
  dataDir: string;
  user: string;
  password: string;
  /** ClickHouse `compatibility` setting applied to every connection (the production server's version). */
  compatibility?: string;
  /** clickhouse-server's default_session_timeout and max_session_timeout (60 s and 3600 s). */
  sessionTimeouts?: Partial<SessionLimits>;
  log?: (line: string) => void;
}

export interface RunningClickHouseServer {
  url: string;
  stop(): Promise<void>;
}

// URL parameters the HTTP interface consumes itself; everything else is a setting.
const RESERVED_PARAMS = new Set([
  "query",
  "query_id",
  "database",
  "default_format",
  "user",
  "password",
  "quota_key",
  "session_id",
  "session_timeout",
  "session_check",
  "close_session",
  "role",
  "compress",
  "decompress",
  "stacktrace",
  "buffer_size",
  "wait_end_of_query",
  "client_protocol_version",
]);

// Settings of the HTTP layer (or that would lock the shared session, like readonly): not forwarded to chDB.
const HTTP_ONLY_SETTINGS = new Set([
  "enable_http_compression",
  "http_zlib_compression_level",
  "http_native_compression_disable_checksumming_on_decompress",
  "send_progress_in_http_headers",
  "http_headers_progress_interval_ms",
  "http_response_buffer_size",
  "http_wait_end_of_query",
  "add_http_cors_header",
  "cancel_http_readonly_queries_on_client_close",
  "readonly",
]);

// clickhouse-server's exceptionCodeToHTTPStatus, keyed by the error name chDB puts at the end of messages.
const STATUS_BY_ERROR: Record<string, number> = {
  REQUIRED_PASSWORD: 401,
  UNKNOWN_USER: 403,
  WRONG_PASSWORD: 403,
  AUTHENTICATION_FAILED: 403,
  SET_NON_GRANTED_ROLE: 403,
  ACCESS_DENIED: 403,
  UNKNOWN_TABLE: 404,
  UNKNOWN_FUNCTION: 404,
  UNKNOWN_IDENTIFIER: 404,
  UNKNOWN_TYPE: 404,
  UNKNOWN_STORAGE: 404,
  UNKNOWN_DATABASE: 404,
  UNKNOWN_SETTING: 404,
  UNKNOWN_DIRECTION_OF_SORTING: 404,
  UNKNOWN_AGGREGATE_FUNCTION: 404,
  UNKNOWN_FORMAT: 404,
  UNKNOWN_DATABASE_ENGINE: 404,
  UNKNOWN_TYPE_OF_QUERY: 404,
  UNKNOWN_ROLE: 404,
  QUERY_IS_TOO_LARGE: 413,
  NOT_IMPLEMENTED: 501,
  SOCKET_TIMEOUT: 503,
  CANNOT_OPEN_FILE: 503,
  CANNOT_SCHEDULE_TASK: 503,
  HTTP_LENGTH_REQUIRED: 411,
  TIMEOUT_EXCEEDED: 408,
  UNSUPPORTED_MEDIA_TYPE: 415,
};
const BAD_REQUEST_ERRORS = [
  "BAD_ARGUMENTS",
  "CANNOT_COMPILE_REGEXP",
  "CANNOT_PARSE_TEXT",
  "CANNOT_PARSE_ESCAPE_SEQUENCE",
  "CANNOT_PARSE_QUOTED_STRING",
  "CANNOT_PARSE_DATE",
  "CANNOT_PARSE_DATETIME",
  "CANNOT_PARSE_NUMBER",
  "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
  "CANNOT_PARSE_IPV4",
  "CANNOT_PARSE_IPV6",
  "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
  "CANNOT_PARSE_UUID",
  "DUPLICATE_COLUMN",
  "ILLEGAL_COLUMN",
  "UNKNOWN_ELEMENT_IN_AST",
  "UNKNOWN_TYPE_OF_AST_NODE",
  "THERE_IS_NO_COLUMN",
  "TOO_DEEP_AST",
  "TOO_BIG_AST",
  "UNEXPECTED_AST_STRUCTURE",
  "SYNTAX_ERROR",
  "INCORRECT_DATA",
  "TYPE_MISMATCH",
  "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
];
for (const name of BAD_REQUEST_ERRORS) STATUS_BY_ERROR[name] = 400;

const CONTENT_TYPES: [RegExp, string][] = [
  [/^(TabSeparated|TSV)/i, "text/tab-separated-values; charset=UTF-8"],
  [/^CSVWithNames/i, "text/csv; charset=UTF-8; header=present"],
  [/^CSV/i, "text/csv; charset=UTF-8; header=absent"],
  [/^JSON(Compact)?(Strings)?EachRow|^JSONLines|^NDJSON|^JSONObjectEachRow/i, "application/x-ndjson; charset=UTF-8"],
  [/^JSON/i, "application/json; charset=UTF-8"],
  [
    /^(RowBinary|Native|Parquet|Arrow|ORC|Avro|Protobuf|MsgPack|CapnProto|BSONEachRow|Npy)/i,
    "application/octet-stream",
  ],
];

const OK_BODY = "Ok.\n";

export async function startClickHouseServer(opts: ClickHouseServerOptions): Promise<RunningClickHouseServer> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.log ?? (() => {});
  const engine = await ChdbEngine.open(opts.dataDir, opts.compatibility ?? "25.8");
  const displayName = hostname();
  const sessions = new NamedSessions(engine);
  const sessionLimits = { ...DEFAULT_SESSION_LIMITS, ...opts.sessionTimeouts };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const url = new URL(req.url ?? "/", "http://localhost");
    const queryId = url.searchParams.get("query_id") || randomUUID();
    let status = 200;
    let summary = "";
    try {
      const path = url.pathname;
      if ((path === "/ping" || path === "/replicas_status") && (req.method === "GET" || req.method === "HEAD")) {
        return sendText(res, 200, OK_BODY);
      }
      if (path !== "/") {
        status = 404;
        return sendText(res, status, `There is no handle ${path}\n\nUse / or /ping for health checks.\n`);
      }
      // Like clickhouse-server, a bare GET / is a health check that needs no credentials.
      if ((req.method === "GET" || req.method === "HEAD") && !url.searchParams.has("query")) {
        return sendText(res, 200, OK_BODY);
      }
      authenticate(req, url, opts.user, opts.password);

      // Taken before the body is read, as clickhouse-server does, and held until the query is done.
      const named = sessionRequest(url.searchParams, sessionLimits);
      const lease = named ? sessions.acquire(named) : undefined;
      let request: { query: EngineQuery; params: Map<string, string> };
      let result: EngineResult;
      try {
        request = await readRequest(req, url);
        result = await (lease ? engine.runInSession(lease.session, request.query) : engine.run(request.query));
      } finally {
        lease?.release();
      }
      const { query, params } = request;
      summary = `${result.rowsRead} rows read, ${result.rowsWritten} written`;
      const format = outputFormat(query);
      const headers: Record<string, string> = {
        "X-ClickHouse-Query-Id": queryId,
        "X-ClickHouse-Timezone": engine.timezone,
        "X-ClickHouse-Server-Display-Name": displayName,
        "X-ClickHouse-Summary": JSON.stringify({
          read_rows: String(result.rowsRead),
          read_bytes: String(result.bytesRead),
          written_rows: String(result.rowsWritten),
          written_bytes: String(result.bytesWritten),
          total_rows_to_read: "0",
          result_rows: String(query.insert ? 0 : result.rowsRead),
          result_bytes: String(result.body.length),
          elapsed_ns: String(result.elapsedNs),
        }),
        "Content-Type": contentTypeOf(format),
      };
      if (format) headers["X-ClickHouse-Format"] = format;
      return sendBody(res, 200, result.body, headers, responseEncoding(req, params));
    } catch (error) {
      const failure = toClickHouseError(error, engine.version);
      status = failure.status;
      summary = failure.text.split("\n")[0] ?? "";
      if (res.headersSent) return res.destroy();
      return sendBody(
        res,
        status,
        Buffer.from(failure.text, "utf8"),
        {
          "Content-Type": "text/plain; charset=UTF-8",
          "X-ClickHouse-Query-Id": queryId,
          "X-ClickHouse-Exception-Code": String(failure.code),
          "X-ClickHouse-Server-Display-Name": displayName,
        },
        null,
      );
    } finally {
      const ms = (performance.now() - started).toFixed(1);
      log(`clickhouse ${req.method} ${url.pathname} ${status} ${ms}ms ${summary}`.trimEnd());
    }
  };

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  try {
    await listen(server, opts.port, host);
  } catch (error) {
    await engine.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${host}:${port}`,
    stop: async () => {
      await new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      });
      sessions.clear();
      await engine.close();
    },
  };
}

/** The request's parameters (URL and multipart body) and the query they make up. */
async function readRequest(
  req: IncomingMessage,
  url: URL,
): Promise<{ query: EngineQuery; params: Map<string, string> }> {
  const body = decodeRequestBody(req, await readBody(req));
  const params = new Map(url.searchParams);
  let data = body;
  const contentType = String(req.headers["content-type"] ?? "");
  if (/^multipart\/form-data/i.test(contentType)) {
    // client-web moves long param_* values (and then the query) into a multipart body.
    for (const [name, value] of parseMultipart(body, contentType)) params.set(name, value);
    data = Buffer.alloc(0);
  }
  if (params.get("decompress") === "1" || params.get("compress") === "1") {
    throw new ClickHouseHttpError(48, "NOT_IMPLEMENTED", "ClickHouse native HTTP compression is not supported here");
  }
  return { query: buildQuery(params, data, req), params };
}

/** Basic auth, X-ClickHouse-User/Key headers or user/password URL parameters; no credentials = `default`. */
function authenticate(req: IncomingMessage, url: URL, user: string, password: string): void {
  let givenUser = "default";
  let givenPassword = "";
  const authorization = String(req.headers.authorization ?? "");
  const headerUser = req.headers["x-clickhouse-user"];
  if (/^Basic\s+/i.test(authorization)) {
    const decoded = Buffer.from(authorization.replace(/^Basic\s+/i, ""), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    givenUser = colon === -1 ? decoded : decoded.slice(0, colon);
    givenPassword = colon === -1 ? "" : decoded.slice(colon + 1);
  } else if (typeof headerUser === "string") {
    givenUser = headerUser;
    givenPassword = String(req.headers["x-clickhouse-key"] ?? "");
  } else if (url.searchParams.has("user")) {
    givenUser = url.searchParams.get("user") ?? "default";
    givenPassword = url.searchParams.get("password") ?? "";
  }
  if (!(sameText(givenUser, user) && sameText(givenPassword, password))) {
    throw new ClickHouseHttpError(
      516,
      "AUTHENTICATION_FAILED",
      `${givenUser}: Authentication failed: password is incorrect, or there is no user with such name`,
    );
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The SQL is `?query=` followed by the body on its own line (clickhouse-server concatenates them). Inserts
 * with data in the body keep the data as bytes for chDB's raw insert path.
 */
function buildQuery(params: Map<string, string>, data: Buffer, req: IncomingMessage): EngineQuery {
  const settings: Record<string, string> = {};
  const queryParams: Record<string, string> = {};
  for (const [name, value] of params) {
    if (name.startsWith("param_")) queryParams[name.slice("param_".length)] = value;
    else if (!RESERVED_PARAMS.has(name) && !HTTP_ONLY_SETTINGS.has(name)) settings[name] = value;
  }
  const headerFormat = req.headers["x-clickhouse-format"];
  const format =
    params.get("default_format") || settings.default_format || (typeof headerFormat === "string" ? headerFormat : "");
  delete settings.default_format;
  const headerDatabase = req.headers["x-clickhouse-database"];
  const database = params.get("database") || (typeof headerDatabase === "string" ? headerDatabase : undefined);

  const queryText = params.get("query") ?? "";
  const base = { format: format || "TabSeparated", settings, params: queryParams, database };
  if (/^\s*INSERT\b/i.test(queryText) && data.length > 0 && Object.keys(queryParams).length === 0) {
    return { ...base, sql: queryText, insert: { prefix: queryText, data } };
  }
  const bodyText = data.toString("utf8");
  const sql = queryText && bodyText ? `${queryText}\n${bodyText}` : queryText || bodyText;
  if (sql.trim() === "") throw new ClickHouseHttpError(62, "SYNTAX_ERROR", "Empty query");
  if (!/^\s*INSERT\b/i.test(sql)) rejectMultiStatements(sql);
  return { ...base, sql };
}

/** clickhouse-server refuses `SELECT 1; SELECT 2` over HTTP; chDB would run both. */
function rejectMultiStatements(sql: string): void {
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    const next = sql[i + 1];
    if (c === "'" || c === '"' || c === "`") {
      i++;
      while (i < n && sql[i] !== c) i += sql[i] === "\\" ? 2 : 1;
      i++;
    } else if (c === "-" && next === "-") {
      while (i < n && sql[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end === -1 ? n : end + 2;
    } else if (c === ";") {
      const rest = sql
        .slice(i)
        .replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, "")
        .replace(/[;\s]/g, "");
      if (rest) {
        throw new ClickHouseHttpError(
          62,
          "SYNTAX_ERROR",
          `Syntax error (Multi-statements are not allowed): failed at position ${i + 1}: ${sql.slice(i, i + 40)}`,
        );
      }
      return;
    } else {
      i++;
    }
  }
}

function outputFormat(query: EngineQuery): string | undefined {
  if (query.insert || /^\s*INSERT\b/i.test(query.sql)) return undefined;
  const matches = [...query.sql.matchAll(/\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)/gi)];
  return matches.at(-1)?.[1] ?? query.format;
}

function contentTypeOf(format: string | undefined): string {
  if (format) for (const [pattern, type] of CONTENT_TYPES) if (pattern.test(format)) return type;
  return "text/plain; charset=UTF-8";
}

function toClickHouseError(error: unknown, version: string): { status: number; code: number; text: string } {
  let message = error instanceof Error ? error.message : String(error);
  let code = Number(/Code: (\d+)\./.exec(message)?.[1] ?? Number.NaN);
  if (Number.isNaN(code)) {
    code = 1001;
    message = `Code: 1001. DB::Exception: ${message}. (STD_EXCEPTION)`;
  }
  const names = [...message.matchAll(/\(([A-Z][A-Z0-9_]{2,})\)/g)];
  const name = names.at(-1)?.[1] ?? "";
  const trimmed = message.trimEnd();
  const text = /\(version [^)]*\)$/.test(trimmed) ? trimmed : `${trimmed} (version ${version})`;
  return { status: STATUS_BY_ERROR[name] ?? 500, code, text: `${text}\n` };
}

function decodeRequestBody(req: IncomingMessage, body: Buffer): Buffer {
  const encoding = String(req.headers["content-encoding"] ?? "")
    .trim()
    .toLowerCase();
  if (!encoding || encoding === "identity" || body.length === 0) return body;
  try {
    if (encoding === "gzip" || encoding === "x-gzip") return gunzipSync(body);
    if (encoding === "deflate") return inflateSync(body);
    if (encoding === "br") return brotliDecompressSync(body);
  } catch (error) {
    throw new ClickHouseHttpError(
      354,
      "ZLIB_INFLATE_FAILED",
      `Cannot decompress ${encoding} request body: ${String(error)}`,
    );
  }
  throw new ClickHouseHttpError(89, "UNKNOWN_COMPRESSION_METHOD", `Unknown HTTP compression method: ${encoding}`);
}

/** Response compression as clickhouse-server does it: only with enable_http_compression=1 and Accept-Encoding. */
function responseEncoding(req: IncomingMessage, params: Map<string, string>): { name: string; level: number } | null {
  const enabled = params.get("enable_http_compression");
  if (enabled !== "1" && enabled?.toLowerCase() !== "true") return null;
  const accept = String(req.headers["accept-encoding"] ?? "").toLowerCase();
  const level = Math.min(9, Math.max(1, Number(params.get("http_zlib_compression_level") ?? 3) || 3));
  for (const name of ["gzip", "deflate", "br"]) if (accept.includes(name)) return { name, level };
  return null;
}

function sendBody(
  res: ServerResponse,
  status: number,
  body: Buffer,
  headers: Record<string, string>,
  encoding: { name: string; level: number } | null,
): void {
  let payload = body;
  if (encoding) {
    payload =
      encoding.name === "gzip"
        ? gzipSync(body, { level: encoding.level })
        : encoding.name === "deflate"
          ? deflateSync(body, { level: encoding.level })
          : brotliCompressSync(body);
    headers["Content-Encoding"] = encoding.name;
  }
  res.writeHead(status, { ...headers, "Content-Length": String(payload.length) });
  res.end(payload);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  sendBody(res, status, Buffer.from(text, "utf8"), { "Content-Type": "text/html; charset=UTF-8" }, null);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Minimal multipart/form-data reader for the text parts client-web sends (query, param_*). */
function parseMultipart(body: Buffer, contentType: string): Map<string, string> {
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const marker = boundary?.[1] ?? boundary?.[2];
  const parts = new Map<string, string>();
  if (!marker) throw new ClickHouseHttpError(36, "BAD_ARGUMENTS", "multipart/form-data without a boundary");
  const text = body.toString("utf8");
  for (const chunk of text.split(`--${marker}`)) {
    if (chunk === "" || chunk.startsWith("--")) continue;
    const split = chunk.indexOf("\r\n\r\n");
    if (split === -1) continue;
    const head = chunk.slice(0, split);
    const name = /name="([^"]*)"/i.exec(head)?.[1];
    if (!name) continue;
    if (/filename=/i.test(head)) {
      throw new ClickHouseHttpError(48, "NOT_IMPLEMENTED", "external tables in multipart bodies are not supported");
    }
    parts.set(name, chunk.slice(split + 4).replace(/\r\n$/, ""));
  }
  return parts;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = await startClickHouseServer({
    port: Number(process.env.CLICKHOUSE_PORT ?? 8123),
    host: process.env.CLICKHOUSE_HOST,
    dataDir: process.env.CLICKHOUSE_DATA_DIR ?? ".data/clickhouse",
    user: process.env.CLICKHOUSE_USER ?? "default",
    password: process.env.CLICKHOUSE_PASSWORD ?? "",
    compatibility: process.env.CLICKHOUSE_COMPATIBILITY,
    log: process.env.CLICKHOUSE_QUIET ? undefined : (line) => console.log(line),
  });
  console.log(`ClickHouse HTTP (chDB) on ${server.url}`);
  const shutdown = () => {
    void server.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}
