import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { Session } from "chdb";

/**
 * chDB (the ClickHouse engine in-process) behind a FIFO queue, with per-request settings that do not leak.
 * Each chDB connection on the data directory has its own settings, current database and temporary tables,
 * exactly what a ClickHouse session holds, so a named session is a connection of its own; session-less
 * requests share one connection that is put back as it was after each request. Dev/test only: used by
 * clickhouse-server.ts.
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

/** A setting as system.settings shows it; `changed` matters too (force_data_skipping_indices tests only that). */
interface SettingState {
  value: string;
  changed: boolean;
}

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

/**
 * The assignment that puts a setting back to `state`. `SET x = DEFAULT` clears the changed flag as well as
 * the value, which is what a setting nobody set must look like; one that was set keeps its value.
 */
function restoreAssignment(name: string, state: SettingState | undefined): string {
  return state?.changed ? `${name} = ${quoteLiteral(state.value)}` : `${name} = DEFAULT`;
}

/** `compatibility` first: setting it rewrites every setting nobody changed, so the others must come after. */
function restoreStatement(targets: Map<string, SettingState | undefined>): string {
  const names = [...targets.keys()].sort((a, b) => Number(b === "compatibility") - Number(a === "compatibility"));
  return `SET ${names.map((name) => restoreAssignment(name, targets.get(name))).join(", ")}`;
}

/** A named session's connection, opened in turn with the queries queued before it. */
export class ChdbSession {
  /** @internal */
  constructor(readonly connection: Promise<Session>) {}
}

// Limits a session may have SET (`SET limit = 1`) that our own one-row reads on its connection must not hit.
const READ_LIMITS = ["limit", "offset", "max_result_rows", "max_result_bytes", "max_rows_to_read", "max_bytes_to_read"];

/** Lifts READ_LIMITS for one query, except those being read: a query's SETTINGS show in system.settings. */
function unlimited(reading: string[] = []): string {
  const lifted = READ_LIMITS.filter((name) => !reading.includes(name));
  return lifted.length > 0 ? `SETTINGS ${lifted.map((name) => `${name} = 0`).join(", ")}` : "";
}

// Statements whose whole effect is on their session: without a session they run on a connection of their own.
const SESSION_STATEMENT = /^\s*(SET|USE)\b|\bTEMPORARY\b/i;

export class ChdbEngine {
  readonly version: string;
  readonly timezone: string;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly sessionConnections = new Set<Session>();

  private constructor(
    private readonly path: string,
    private root: Session,
    private readonly native: ChdbNative,
    private readonly compatibility: string,
    /** Every setting once compatibility is applied: the state each session-less request starts from. */
    private readonly baseline: Map<string, SettingState>,
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
      await run(startupStatement(compatibility));
      const baseline = await readSettings(run);
      const [version = "", timezone = "UTC"] = (await run("SELECT version(), timezone()")).trim().split("\t");
      return new ChdbEngine(path, session, native, compatibility, baseline, { version, timezone });
    } catch (error) {
      session.close();
      throw error;
    }
  }

  /** Runs a session-less query once every earlier one, on any connection, has finished (arrival order). */
  run(query: EngineQuery): Promise<EngineResult> {
    return this.enqueue(() => this.execute(query));
  }

  /** Opens the connection of a new named session (queued, like a query). */
  openSession(): ChdbSession {
    const connection = this.enqueue(() => this.openConnection());
    void connection.then(
      (session) => this.sessionConnections.add(session),
      () => {}, // the session's first query reports the failure
    );
    return new ChdbSession(connection);
  }

  /** Runs a query in a named session: its SETs, USE and temporary tables stay; URL settings do not. */
  runInSession(session: ChdbSession, query: EngineQuery): Promise<EngineResult> {
    return this.enqueue(async () => this.executeInSession(await session.connection, query));
  }

  /** Ends a named session: its temporary tables and settings go with its connection. */
  async closeSession(session: ChdbSession): Promise<void> {
    const connection = await session.connection.catch(() => undefined);
    if (!connection || !this.sessionConnections.delete(connection)) return;
    // Queued behind whatever runs now; once the engine is closing, close() has already waited for it.
    if (this.closed) connection.close();
    else await this.enqueue(async () => connection.close());
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
    for (const connection of this.sessionConnections) connection.close();
    this.sessionConnections.clear();
    this.root.close();
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error("Code: 236. DB::Exception: Server is shutting down. (ABORTED)"));
    const job = this.tail.then(task);
    this.tail = job.catch(() => {});
    return job;
  }

  private query(
    session: Session,
    sql: string,
    format = "TabSeparated",
    params?: Record<string, string>,
  ): Promise<NativeResult> {
    const pending =
      params && Object.keys(params).length > 0
        ? this.native.QueryAsyncConnection(session.connection, sql, format, params)
        : this.native.QueryAsyncConnection(session.connection, sql, format);
    return pending.catch((error: unknown) => this.discardLeftover(session, error));
  }

  /**
   * A query that fails after its format wrote a header (JSON's `{"meta": …}`) leaves that output on the
   * connection, and chDB hands it out in front of the next query's result. An empty query takes it away.
   */
  private async discardLeftover(session: Session, error: unknown): Promise<never> {
    await this.native.QueryAsyncConnection(session.connection, "SELECT 1 WHERE 0", "TabSeparated").catch(() => {});
    throw error;
  }

  /** A connection of its own is a session of its own: what the query changes goes when it is closed. */
  private async openConnection(): Promise<Session> {
    const session = new Session(this.path);
    try {
      await this.query(session, startupStatement(this.compatibility));
      return session;
    } catch (error) {
      session.close();
      throw error;
    }
  }

  private async execute(q: EngineQuery): Promise<EngineResult> {
    const names = settingNames(q);
    // Without a session, SET, USE and temporary tables last for their own request: run those on a connection
    // that is closed afterwards, where that holds by construction.
    if (!q.insert && SESSION_STATEMENT.test(q.sql)) {
      const scratch = await this.openConnection();
      try {
        return await this.perform(scratch, q, names);
      } finally {
        scratch.close();
      }
    }
    try {
      return await this.perform(this.root, q, names);
    } finally {
      await this.restoreRoot(names, switchesDatabase(q));
    }
  }

  /**
   * Like clickhouse-server, URL settings and `database` apply to this query only, while a SET statement
   * changes the session: put back what the URL changed, to the values the session had before.
   */
  private async executeInSession(connection: Session, q: EngineQuery): Promise<EngineResult> {
    const names = settingNames(q);
    const assigned = /^\s*SET\b/i.test(q.sql) ? assignedNames(q.sql) : new Set<string>();
    const restore = names.filter((name) => !assigned.has(name));
    const before = restore.length > 0 ? await this.readStates(connection, restore) : undefined;
    const database = switchesDatabase(q) ? await this.currentDatabase(connection) : undefined;
    try {
      return await this.perform(connection, q, names);
    } finally {
      if (before) {
        const statement = restoreStatement(new Map(restore.map((name) => [name, before.get(name)])));
        await this.query(connection, statement).catch(() => {});
      }
      if (database !== undefined) await this.query(connection, `USE ${quoteIdentifier(database)}`).catch(() => {});
    }
  }

  /** The session's state of these settings, read as one row so that its own result limits cannot cut it. */
  private async readStates(connection: Session, names: string[]): Promise<Map<string, SettingState>> {
    const list = names.map(quoteLiteral).join(", ");
    const sql = `SELECT groupArray((name, value, changed)) FROM system.settings WHERE name IN (${list}) ${unlimited(names)}`;
    const [rows = []] = JSON.parse(await this.text(connection, sql, "JSONCompactEachRow")) as [
      [string, string, number][],
    ];
    return new Map(rows.map(([name, value, changed]) => [name, { value, changed: changed !== 0 }]));
  }

  private async currentDatabase(connection: Session): Promise<string> {
    return (await this.text(connection, `SELECT currentDatabase() ${unlimited()}`)).trimEnd();
  }

  private async text(connection: Session, sql: string, format = "TabSeparated"): Promise<string> {
    const r = await this.query(connection, sql, format);
    return Buffer.from(r.bytes).toString("utf8");
  }

  /** Applies the request's settings and database on `session`, then runs its query there. */
  private async perform(session: Session, q: EngineQuery, names: string[]): Promise<EngineResult> {
    if (names.length > 0) {
      await this.query(
        session,
        `SET ${names.map((name) => `${name} = ${quoteLiteral(q.settings[name] ?? "")}`).join(", ")}`,
      );
    }
    if (switchesDatabase(q)) await this.query(session, `USE ${quoteIdentifier(q.database ?? "")}`);
    const started = process.hrtime.bigint();
    if (q.insert) {
      const r = await this.native
        .InsertRawAsyncConnection(session.connection, q.insert.prefix, q.insert.data, false)
        .catch((error: unknown) => this.discardLeftover(session, error));
      return {
        body: Buffer.alloc(0),
        rowsRead: r.rowsWritten,
        bytesRead: r.bytesWritten,
        rowsWritten: r.rowsWritten,
        bytesWritten: r.bytesWritten,
        elapsedNs: Number(process.hrtime.bigint() - started),
      };
    }
    const r = await this.query(session, q.sql, q.format, q.params);
    return {
      body: Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength),
      rowsRead: r.rowsRead,
      bytesRead: r.bytesRead,
      rowsWritten: 0,
      bytesWritten: 0,
      elapsedNs: Number(process.hrtime.bigint() - started),
    };
  }

  /**
   * chDB keeps SET values on its connection; a real server scopes URL settings to the query. Put back what
   * this request changed, to the state it had (unset settings to DEFAULT). Should that fail, the shared
   * connection is replaced by a fresh one rather than left half-restored.
   */
  private async restoreRoot(names: string[], switchedDatabase: boolean): Promise<void> {
    try {
      if (names.length > 0) {
        await this.query(this.root, restoreStatement(new Map(names.map((name) => [name, this.baseline.get(name)]))));
      }
      if (switchedDatabase) await this.query(this.root, "USE default");
    } catch {
      const replacement = await this.openConnection();
      this.root.close();
      this.root = replacement;
    }
  }
}

function startupStatement(compatibility: string): string {
  const startup = { compatibility, ...SERVER_PARITY_SETTINGS };
  return `SET ${Object.entries(startup)
    .map(([k, v]) => `${k} = ${quoteLiteral(v)}`)
    .join(", ")}`;
}

function settingNames(q: EngineQuery): string[] {
  const names = Object.keys(q.settings);
  for (const name of names) {
    if (!SETTING_NAME.test(name))
      throw new Error(`Code: 115. DB::Exception: Unknown setting '${name}'. (UNKNOWN_SETTING)`);
  }
  return names;
}

function switchesDatabase(q: EngineQuery): boolean {
  return q.database !== undefined && q.database !== "" && q.database !== "default";
}

/** Names a `SET a = 1, b = 2` statement assigns (enough to tell them from the request's URL settings). */
function assignedNames(sql: string): Set<string> {
  const names = new Set<string>();
  for (const match of sql.replace(/^\s*SET\b/i, ",").matchAll(/,\s*([A-Za-z_][A-Za-z0-9_]*)\s*=/g)) {
    if (match[1]) names.add(match[1]);
  }
  return names;
}

async function readSettings(
  run: (sql: string, format?: string) => Promise<string>,
): Promise<Map<string, SettingState>> {
  const text = await run("SELECT name, value, changed FROM system.settings", "JSONCompactEachRow");
  const settings = new Map<string, SettingState>();
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [name, value, changed] = JSON.parse(line) as [string, string, number];
    settings.set(name, { value, changed: changed !== 0 });
  }
  return settings;
}

function quoteIdentifier(name: string): string {
  return `\`${name.replace(/\\/g, "\\\\").replace(/`/g, "\\`")}\``;
}
