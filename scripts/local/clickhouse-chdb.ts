import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { Session } from "chdb";

/**
 * chDB (the ClickHouse engine in-process) behind a FIFO queue, with per-request settings that do not leak.
 * Dev/test only: used by clickhouse-server.ts.
 */

export interface EngineQuery {
  /** Full SQL text (used unless `insert` is given). */
  sql: string;
  /** `INSERT … FORMAT x` with its data kept as bytes, handed to chDB without copying into a JS string. */
  insert?: { prefix: string; data: Buffer };
  /** Output format when the SQL has no FORMAT clause. */
  format: string;
  /** ClickHouse settings from the URL (name → value as text). */
  settings: Record<string, string>;
  /** `{name:Type}` values exactly as sent in `param_<name>` (ClickHouse "escaped" text form). */
  params: Record<string, string>;
  database?: string;
}

export interface EngineResult {
  body: Buffer;
  rowsRead: number;
  bytesRead: number;
  rowsWritten: number;
  bytesWritten: number;
  elapsedNs: number;
}

interface NativeResult {
  bytes: Uint8Array;
  elapsed: number;
  rowsRead: number;
  bytesRead: number;
}

interface NativeInsertResult {
  rowsWritten: number;
  bytesWritten: number;
  elapsed: number;
}

/** The two addon entry points we need; chdb's public queryBind re-escapes strings, these take params verbatim. */
interface ChdbNative {
  QueryAsyncConnection(
    connection: unknown,
    sql: string,
    format: string,
    params?: Record<string, string>,
  ): Promise<NativeResult>;
  InsertRawAsyncConnection(
    connection: unknown,
    prefix: string,
    data: Buffer,
    countLines: boolean,
  ): Promise<NativeInsertResult>;
}

// chDB's own defaults differ from clickhouse-server's for these; make them server-like.
const SERVER_PARITY_SETTINGS: Record<string, string> = { implicit_select: "0" };

const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function loadNative(): ChdbNative {
  const require = createRequire(import.meta.url);
  const entry = require.resolve("chdb");
  const loader = require(join(dirname(entry), "dist", "loader.js")) as { loadNative(): unknown };
  const native = loader.loadNative() as Partial<ChdbNative>;
  if (typeof native.QueryAsyncConnection !== "function" || typeof native.InsertRawAsyncConnection !== "function") {
    throw new Error("this chdb version lacks QueryAsyncConnection/InsertRawAsyncConnection (tested with chdb 3.4.0)");
  }
  return native as ChdbNative;
}

export function quoteLiteral(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

export class ChdbEngine {
  readonly version: string;
  readonly timezone: string;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly session: Session,
    private readonly native: ChdbNative,
    private readonly compatibility: string,
    /** Every setting's value once compatibility is applied: what each request starts from. */
    private readonly baseline: Map<string, string>,
    info: { version: string; timezone: string },
  ) {
    this.version = info.version;
    this.timezone = info.timezone;
  }

  /** One chDB engine binds one data directory per process: open this once per process. */
  static async open(dataDir: string, compatibility: string): Promise<ChdbEngine> {
    const path = resolve(dataDir);
    mkdirSync(path, { recursive: true });
    const native = loadNative();
    const session = new Session(path);
    try {
      const run = (sql: string, format = "TabSeparated") =>
        native.QueryAsyncConnection(session.connection, sql, format).then((r) => Buffer.from(r.bytes).toString("utf8"));
      const startup = { compatibility, ...SERVER_PARITY_SETTINGS };
      await run(
        `SET ${Object.entries(startup)
          .map(([k, v]) => `${k} = ${quoteLiteral(v)}`)
          .join(", ")}`,
      );
      const baseline = await readSettings(run);
      const [version = "", timezone = "UTC"] = (await run("SELECT version(), timezone()")).trim().split("\t");
      return new ChdbEngine(session, native, compatibility, baseline, { version, timezone });
    } catch (error) {
      session.close();
      throw error;
    }
  }

  /** Runs one request's query after every earlier one has finished (chDB runs one query at a time). */
  run(query: EngineQuery): Promise<EngineResult> {
    if (this.closed) return Promise.reject(new Error("Code: 236. DB::Exception: Server is shutting down. (ABORTED)"));
    const job = this.tail.then(() => this.execute(query));
    this.tail = job.catch(() => {});
    return job;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
    this.session.close();
  }

  private query(sql: string, format = "TabSeparated", params?: Record<string, string>): Promise<NativeResult> {
    const connection = this.session.connection;
    return params && Object.keys(params).length > 0
      ? this.native.QueryAsyncConnection(connection, sql, format, params)
      : this.native.QueryAsyncConnection(connection, sql, format);
  }

  private async execute(q: EngineQuery): Promise<EngineResult> {
    const names = Object.keys(q.settings);
    for (const name of names) {
      if (!SETTING_NAME.test(name))
        throw new Error(`Code: 115. DB::Exception: Unknown setting '${name}'. (UNKNOWN_SETTING)`);
    }
    // Pinning compatibility on every query keeps defaults those of the production server version.
    const assignments = [`compatibility = ${quoteLiteral(this.compatibility)}`];
    for (const name of names) assignments.push(`${name} = ${quoteLiteral(q.settings[name] ?? "")}`);
    const sqlText = q.insert ? q.insert.prefix : q.sql;
    const switchesDatabase = q.database !== undefined && q.database !== "" && q.database !== "default";
    try {
      await this.query(`SET ${assignments.join(", ")}`);
      if (switchesDatabase) await this.query(`USE ${quoteIdentifier(q.database ?? "")}`);
      const started = process.hrtime.bigint();
      if (q.insert) {
        const r = await this.native.InsertRawAsyncConnection(
          this.session.connection,
          q.insert.prefix,
          q.insert.data,
          false,
        );
        return {
          body: Buffer.alloc(0),
          rowsRead: r.rowsWritten,
          bytesRead: r.bytesWritten,
          rowsWritten: r.rowsWritten,
          bytesWritten: r.bytesWritten,
          elapsedNs: Number(process.hrtime.bigint() - started),
        };
      }
      const r = await this.query(q.sql, q.format, q.params);
      return {
        body: Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength),
        rowsRead: r.rowsRead,
        bytesRead: r.bytesRead,
        rowsWritten: 0,
        bytesWritten: 0,
        elapsedNs: Number(process.hrtime.bigint() - started),
      };
    } finally {
      await this.restore(names, sqlText, switchesDatabase);
    }
  }

  /**
   * chDB keeps SET values on its connection, and even query-level SETTINGS of format settings stick. A real
   * server scopes both to the query, so put back what this request changed.
   */
  private async restore(names: string[], sqlText: string, switchedDatabase: boolean): Promise<void> {
    const changes = new Map<string, string>();
    for (const name of names) {
      const value = this.baseline.get(name);
      if (value !== undefined) changes.set(name, value);
    }
    if (/\bSET(TINGS)?\b/i.test(sqlText)) {
      const current = await readSettings((sql, format) =>
        this.query(sql, format).then((r) => Buffer.from(r.bytes).toString("utf8")),
      ).catch(() => new Map<string, string>());
      for (const [name, value] of current) {
        const original = this.baseline.get(name);
        if (original !== undefined && original !== value) changes.set(name, original);
      }
    }
    if (changes.size > 0) {
      const all = [...changes].map(([name, value]) => `${name} = ${quoteLiteral(value)}`);
      await this.query(`SET ${all.join(", ")}`).catch(async () => {
        // One odd setting must not keep the others from being restored.
        for (const assignment of all) await this.query(`SET ${assignment}`).catch(() => {});
      });
    }
    if (switchedDatabase || /^\s*USE\b/i.test(sqlText)) await this.query("USE default").catch(() => {});
  }
}

async function readSettings(run: (sql: string, format?: string) => Promise<string>): Promise<Map<string, string>> {
  const text = await run("SELECT name, value FROM system.settings", "JSONCompactEachRow");
  const settings = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [name, value] = JSON.parse(line) as [string, string];
    settings.set(name, value);
  }
  return settings;
}

function quoteIdentifier(name: string): string {
  return `\`${name.replace(/\\/g, "\\\\").replace(/`/g, "\\`")}\``;
}
