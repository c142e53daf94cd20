import { StoreUnavailableError } from "./errors";
import { markDown, roundTrip } from "./io";

/**
 * ClickHouse over its HTTP interface, for what this code asks of it: queries answered as JSONEachRow (read
 * whole or streamed row by row), JSONEachRow inserts, commands (DDL, DELETE), and a ping. The requests are
 * the ones @clickhouse/client-web 1.x sends for the same calls — the query in the body with `FORMAT` appended
 * (an insert's statement in `query=`), `param_<name>` values in its text format, settings and `database` as
 * URL parameters, Basic auth — and its method and option names are kept, so a call reads the same either way
 * (test/local/clickhouse-client.test.ts sends every call through both and compares what the server received).
 * Ours because that client is CommonJS that cannot be tree-shaken (~52 KiB minified, ~13 KiB gzip of the
 * Worker, for four calls).
 *
 * Every request is counted for the current request or job and bounded by the request's store budget (see
 * io.ts). A request that gets no HTTP answer is an outage (StoreUnavailableError); an answer that is a
 * ClickHouse exception is a ClickHouseError carrying its code.
 */

export interface ClickHouseOptions {
  url: string;
  user: string;
  password: string;
  database: string;
  timeoutMs: number;
}

/** Session settings sent with a request (as URL parameters); booleans are sent as 1 and 0. */
export type ClickHouseSettings = Record<string, string | number | boolean | undefined>;

/** Values for `{name:Type}` placeholders. */
export type QueryParams = Record<string, unknown>;

export interface QueryRequest {
  query: string;
  format: "JSONEachRow";
  query_params?: QueryParams;
  clickhouse_settings?: ClickHouseSettings;
}

export interface CommandRequest {
  query: string;
  query_params?: QueryParams;
  clickhouse_settings?: ClickHouseSettings;
}

export interface InsertRequest {
  table: string;
  values: readonly unknown[];
  format: "JSONEachRow";
  clickhouse_settings?: ClickHouseSettings;
}

/** One row of a streamed answer: its JSON text, parsed on demand. */
export interface ResultRow<T = unknown> {
  text: string;
  json<R = T>(): R;
}

export interface ResultSet {
  /** Every row, parsed. */
  json<T>(): Promise<T[]>;
  /** The rows as they arrive, in batches (one per chunk of the answer). */
  stream<T>(): ReadableStream<ResultRow<T>[]>;
  text(): Promise<string>;
}

export interface ClickHouseClient {
  query(request: QueryRequest): Promise<ResultSet>;
  command(request: CommandRequest): Promise<void>;
  insert(request: InsertRequest): Promise<void>;
  /** A `SELECT 'ping'` (which checks the credentials too); never throws. */
  ping(): Promise<{ success: true } | { success: false; error: Error }>;
  close(): Promise<void>;
}

/** An exception ClickHouse answered with: its numeric code (as text, e.g. "60") and name (UNKNOWN_TABLE). */
export class ClickHouseError extends Error {
  override name = "ClickHouseError";
  constructor(
    message: string,
    readonly code: string,
    readonly type: string,
  ) {
    super(message);
  }
}

// "Code: 60. DB::Exception: Unknown table … (UNKNOWN_TABLE) (version …)": the innermost exception's message, up to
// the first (TYPE) marker of three or more capitals (client-web's pattern, so the same errors parse the same).
const EXCEPTION =
  /(Code|Error): (?<code>\d+).*Exception: (?<message>.+?)\((?<type>(?=[A-Z0-9_]*[A-Z]{3})[A-Z0-9_]+)\)/s;

function toError(text: string): Error {
  const groups = EXCEPTION.exec(text)?.groups;
  return groups
    ? new ClickHouseError(groups.message ?? "", groups.code ?? "", groups.type ?? "")
    : new Error(text || "ClickHouse answered with an error and no text");
}

/** A `param_*` value in ClickHouse's text format: escaped strings, `\N` for null, arrays and maps of literals. */
export function formatParam(value: unknown, inContainer = false): string {
  if (value === null || value === undefined) return inContainer ? "NULL" : "\\N";
  if (typeof value === "number") {
    if (Number.isNaN(value)) return "nan";
    if (value === Number.POSITIVE_INFINITY) return "+inf";
    if (value === Number.NEGATIVE_INFINITY) return "-inf";
    return String(value);
  }
  if (typeof value === "bigint") return String(value);
  if (typeof value === "boolean") return inContainer ? (value ? "TRUE" : "FALSE") : value ? "1" : "0";
  if (typeof value === "string") {
    const escaped = value.replace(/[\t\n\r'\\]/g, (c) => ESCAPES[c] ?? c);
    return inContainer ? `'${escaped}'` : escaped;
  }
  if (Array.isArray(value)) return `[${value.map((v) => formatParam(v, true)).join(",")}]`;
  if (value instanceof Date) {
    // Seconds since the epoch (time-zone agnostic), with milliseconds when there are any.
    const seconds = Math.floor(value.getTime() / 1000)
      .toString()
      .padStart(10, "0");
    const ms = value.getUTCMilliseconds();
    return ms === 0 ? seconds : `${seconds}.${ms.toString().padStart(3, "0")}`;
  }
  if (typeof value === "object") {
    const entries = value instanceof Map ? [...value] : Object.entries(value);
    return `{${entries.map(([k, v]) => `${formatParam(k, true)}:${formatParam(v, true)}`).join(",")}}`;
  }
  throw new TypeError(`Unsupported value in query parameters: [${String(value)}].`);
}
const ESCAPES: Record<string, string> = { "\t": "\\t", "\n": "\\n", "\r": "\\r", "'": "\\'", "\\": "\\\\" };

const settingText = (value: string | number | boolean) =>
  typeof value === "boolean" ? (value ? "1" : "0") : String(value);

/** A query without its trailing semicolons (a `FORMAT` clause follows it). */
const withoutTrailingSemicolons = (query: string) => query.trim().replace(/;+$/, "");

/** Splits text into complete lines; returns the rest (an unfinished line). */
function takeLines(text: string, rows: ResultRow[]): string {
  let start = 0;
  for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n", start)) {
    const line = text.slice(start, end);
    start = end + 1;
    if (line) rows.push(rowOf(line));
  }
  return text.slice(start);
}

function rowOf(text: string): ResultRow {
  return {
    text,
    json<R>(): R {
      try {
        return JSON.parse(text) as R;
      } catch (error) {
        // An exception ClickHouse hit after it had started answering ends the body in its own text.
        throw EXCEPTION.test(text) ? toError(text) : error;
      }
    },
  };
}

function resultSet(body: ReadableStream<Uint8Array> | null): ResultSet {
  let consumed = false;
  const take = () => {
    if (consumed) throw new Error("The answer has already been read");
    consumed = true;
    return body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  };
  const stream = <T>(): ReadableStream<ResultRow<T>[]> => {
    const decoder = new TextDecoder();
    let rest = "";
    return take().pipeThrough(
      new TransformStream<Uint8Array, ResultRow<T>[]>({
        transform(chunk, controller) {
          const rows: ResultRow[] = [];
          rest = takeLines(rest + decoder.decode(chunk, { stream: true }), rows);
          if (rows.length) controller.enqueue(rows as ResultRow<T>[]);
        },
        flush(controller) {
          const rows: ResultRow[] = [];
          takeLines(`${rest}${decoder.decode()}\n`, rows);
          if (rows.length) controller.enqueue(rows as ResultRow<T>[]);
        },
      }),
    );
  };
  return {
    stream,
    async json<T>() {
      const all: T[] = [];
      const reader = stream<T>().getReader();
      for (let next = await reader.read(); !next.done; next = await reader.read()) {
        for (const row of next.value) all.push(row.json());
      }
      return all;
    },
    text: () => new Response(take()).text(),
  };
}

export function createClickHouse(opts: ClickHouseOptions): ClickHouseClient {
  const authorization = `Basic ${btoa(`${opts.user}:${opts.password}`)}`;
  // Sent with every query, command and insert (not with the ping, as client-web does).
  const clientSettings: ClickHouseSettings = { date_time_input_format: "best_effort" };

  const send = async (
    body: string | null,
    url: { query?: string; params?: QueryParams; settings?: ClickHouseSettings; database?: boolean },
    method = "POST",
  ): Promise<Response> => {
    const search = new URLSearchParams([["query_id", crypto.randomUUID()]]);
    for (const [name, value] of Object.entries(url.params ?? {})) search.append(`param_${name}`, formatParam(value));
    for (const [name, value] of Object.entries(url.settings ?? {})) {
      if (value !== undefined) search.append(name, settingText(value));
    }
    if (url.database !== false && opts.database !== "default") search.append("database", opts.database);
    if (url.query) search.append("query", url.query);
    const target = new URL(opts.url);
    target.search = search.toString();
    let response: Response;
    try {
      response = await roundTrip("clickhouse", opts.timeoutMs, async (signal) => {
        try {
          return await fetch(target, { method, headers: { Authorization: authorization }, body, signal });
        } catch (error) {
          throw new StoreUnavailableError("clickhouse", String(error), { cause: error });
        }
      });
    } catch (error) {
      if (error instanceof StoreUnavailableError) markDown("clickhouse");
      throw error;
    }
    if (response.ok && !response.headers.has("x-clickhouse-exception-code")) return response;
    throw toError(await response.text());
  };

  return {
    async query({ query, format, query_params, clickhouse_settings }) {
      const body = `${withoutTrailingSemicolons(query)} \nFORMAT ${format}`;
      const response = await send(body, {
        params: query_params,
        settings: { ...clientSettings, ...clickhouse_settings },
      });
      return resultSet(response.body);
    },
    async command({ query, query_params, clickhouse_settings }) {
      const response = await send(withoutTrailingSemicolons(query), {
        params: query_params,
        settings: { ...clientSettings, ...clickhouse_settings },
      });
      await response.body?.cancel();
    },
    async insert({ table, values, format, clickhouse_settings }) {
      if (values.length === 0) return;
      const rows = values.map((v) => `${JSON.stringify(v)}\n`).join("");
      const response = await send(rows, {
        query: `INSERT INTO ${table.trim()} FORMAT ${format}`,
        settings: { ...clientSettings, ...clickhouse_settings },
      });
      await response.text();
    },
    async ping() {
      try {
        const response = await send(null, { query: "SELECT 'ping'", database: false }, "GET");
        await response.body?.cancel();
        return { success: true };
      } catch (error) {
        return { success: false, error: error instanceof Error ? error : new Error(String(error)) };
      }
    },
    async close() {},
  };
}

/** Network-level failures (as opposed to ClickHouse answering with an error) mean the store is down. */
export function asClickHouseOutage(error: unknown): unknown {
  if (error instanceof Error && !("code" in error && typeof (error as { code: unknown }).code === "string")) {
    if (/fetch|network|timeout|abort|connect/i.test(`${error.name} ${error.message}`)) {
      return new StoreUnavailableError("clickhouse", error.message, { cause: error });
    }
  }
  return error;
}
