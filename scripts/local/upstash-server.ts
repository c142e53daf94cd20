import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { createClient, ErrorReply, RESP_TYPES } from "redis";
import { listen } from "./ports";
import { PubSubStreams, type SubscriptionKind } from "./upstash-pubsub";

/**
 * Dev/test-only Upstash REST server: speaks the protocol `@upstash/redis` uses (`POST /` one command,
 * `/pipeline`, `/multi-exec`, path-style `/get/key`, Bearer token, `Upstash-Encoding: base64`, pub/sub as
 * server-sent events on `/subscribe/<channel>` and `/psubscribe/<pattern>`) and runs every command on a
 * real redis-server through node-redis (RESP2).
 */

export interface UpstashServerOptions {
  port: number;
  host?: string;
  redisUrl: string;
  token: string;
  log?: (line: string) => void;
}

export interface RunningUpstashServer {
  url: string;
  stop(): Promise<void>;
  /** Requests and commands served so far; `streams` is the subscribe streams open now. */
  stats(): { requests: number; commands: number; streams: number };
}

/**
 * redis-server cannot be reached (killed, restarting): the whole request is answered 503, as a REST front whose
 * database is offline does, instead of an error per command that would look like Redis's own reply.
 */
class BackendUnavailable extends Error {
  override name = "BackendUnavailable";
}

/** What one command answers in the REST protocol. */
type CommandOutcome = { result: unknown } | { error: string };

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

// Bulk strings as Buffers so base64 is computed over the exact bytes Redis stored.
const TYPE_MAPPING = { [RESP_TYPES.BLOB_STRING]: Buffer } as const;

// Commands that would change or hijack the shared connection's state; Upstash does not offer them over REST.
const REJECTED = new Set([
  "AUTH",
  "CLIENT",
  "DISCARD",
  "EXEC",
  "HELLO",
  "MONITOR",
  "MULTI",
  "PSUBSCRIBE",
  "PSYNC",
  "PUNSUBSCRIBE",
  "QUIT",
  "REPLICAOF",
  "RESET",
  "SELECT",
  "SHUTDOWN",
  "SLAVEOF",
  "SSUBSCRIBE",
  "SUBSCRIBE",
  "SUNSUBSCRIBE",
  "SYNC",
  "UNSUBSCRIBE",
  "UNWATCH",
  "WATCH",
]);

// These block their connection: run them on a connection of their own so other requests keep flowing.
const BLOCKING = new Set([
  "BLMOVE",
  "BLMPOP",
  "BLPOP",
  "BRPOP",
  "BRPOPLPUSH",
  "BZMPOP",
  "BZPOPMAX",
  "BZPOPMIN",
  "WAIT",
  "WAITAOF",
]);

const UNAUTHORIZED = "Unauthorized";
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;

export async function startUpstashServer(opts: UpstashServerOptions): Promise<RunningUpstashServer> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.log ?? (() => {});
  const redis = createClient({ url: opts.redisUrl, RESP: 2 });
  let lastErrorLog = 0;
  redis.on("error", (error: unknown) => {
    // node-redis reconnects forever; one line every few seconds is enough.
    if (Date.now() - lastErrorLog < 5000) return;
    lastErrorLog = Date.now();
    log(`upstash: redis connection error: ${String(error)}`);
  });
  await connectWithin(redis, CONNECT_TIMEOUT_MS, opts.redisUrl);

  type Redis = typeof redis;
  const scripts = new ScriptMap();
  const counters = { requests: 0, commands: 0 };
  const expectedToken = Buffer.from(opts.token, "utf8");
  const streams = new PubSubStreams(async () => {
    const subscriber = redis.duplicate();
    subscriber.on("error", () => {});
    await connectWithin(subscriber, CONNECT_TIMEOUT_MS, opts.redisUrl);
    return subscriber;
  }, log);

  const send = (client: Redis, args: string[]): Promise<unknown> =>
    client.sendCommand(args, { typeMapping: TYPE_MAPPING });

  /** Blocking commands get a short-lived connection of their own. */
  const runIsolated = async (args: string[]): Promise<unknown> => {
    const client = redis.duplicate();
    client.on("error", () => {});
    await client.connect();
    try {
      return await send(client, args);
    } finally {
      await client.close().catch(() => {});
    }
  };

  /** Dispatches synchronously up to sendCommand so pipeline order is the order Redis sees. */
  const runCommand = (raw: Json[], base64: boolean): Promise<CommandOutcome> => {
    counters.commands++;
    const prepared = prepare(raw, scripts);
    if ("error" in prepared) return Promise.resolve(prepared);
    const { args, name } = prepared;
    const pending = BLOCKING.has(name) || isBlockingStream(args) ? runIsolated(args) : send(redis, args);
    return pending.then(
      (value) => ({ result: encodeReply(prepared.rewriteReply?.(value) ?? value, base64, true) }),
      (error: unknown) => {
        // Redis answered with an error reply: the command's own outcome. Anything else means Redis is gone.
        if (error instanceof ErrorReply) return { error: error.message };
        throw new BackendUnavailable(errorText(error));
      },
    );
  };

  const runPipeline = (commands: Json[][], base64: boolean): Promise<CommandOutcome[]> =>
    Promise.all(commands.map((command) => runCommand(command, base64)));

  /** MULTI … EXEC written back to back on the shared connection: node-redis keeps write order. */
  const runTransaction = async (commands: Json[][], base64: boolean): Promise<CommandOutcome[] | { error: string }> => {
    counters.commands += commands.length;
    const prepared = commands.map((command) => prepare(command, scripts));
    const invalid = prepared.find((p) => "error" in p);
    if (invalid && "error" in invalid) return { error: invalid.error };
    const ready = prepared as PreparedCommand[];
    const multi = send(redis, ["MULTI"]);
    const queued = ready.map((p) => send(redis, p.args).catch((error: unknown) => error));
    const exec = send(redis, ["EXEC"]);
    try {
      await multi;
      await Promise.all(queued);
      const replies = await exec;
      if (!Array.isArray(replies)) return { error: "EXECABORT Transaction aborted" };
      return replies.map((reply, i) =>
        reply instanceof ErrorReply
          ? { error: reply.message }
          : { result: encodeReply(ready[i]?.rewriteReply?.(reply) ?? reply, base64, true) },
      );
    } catch (error) {
      if (error instanceof ErrorReply) return { error: error.message };
      throw new BackendUnavailable(errorText(error));
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    counters.requests++;
    const started = performance.now();
    const url = new URL(req.url ?? "/", "http://localhost");
    let status = 200;
    let commandCount = 0;
    try {
      if (!authorized(req, url, expectedToken)) {
        status = 401;
        return respond(res, status, { error: UNAUTHORIZED });
      }
      const body = await readBody(req);
      // node-redis would queue commands until it reconnects; Upstash answers at once that it cannot serve.
      if (!redis.isReady) throw new BackendUnavailable("the redis connection is down");
      const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
      const path = url.pathname.replace(/\/+$/, "");

      const subscription = subscriptionRequest(path, req);
      if (subscription && "error" in subscription) {
        status = 400;
        return respond(res, status, subscription);
      }
      if (subscription) return await streams.serve(req, res, subscription.kind, subscription.names);

      if (path === "/pipeline" || path === "/multi-exec") {
        const commands = req.method === "POST" ? parseCommandList(body) : { error: "ERR use POST" };
        if ("error" in commands) {
          status = 400;
          return respond(res, status, commands);
        }
        commandCount = commands.list.length;
        if (path === "/pipeline") return respond(res, status, await runPipeline(commands.list, base64));
        const outcome = await runTransaction(commands.list, base64);
        if (!Array.isArray(outcome)) status = 400;
        return respond(res, status, outcome);
      }

      const command = path === "" ? parseCommand(body) : pathCommand(path, url, req.method === "POST" ? body : "");
      if ("error" in command) {
        status = 400;
        return respond(res, status, command);
      }
      commandCount = 1;
      const outcome = await runCommand(command.args, base64);
      if ("error" in outcome) status = 400;
      return respond(res, status, outcome);
    } catch (error) {
      status = error instanceof BackendUnavailable ? 503 : 500;
      if (!res.headersSent) respond(res, status, { error: `ERR ${errorText(error)}` });
    } finally {
      const ms = (performance.now() - started).toFixed(1);
      log(`upstash ${req.method} ${url.pathname} ${status} ${commandCount} cmd ${ms}ms`);
    }
  };

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  try {
    await listen(server, opts.port, host);
  } catch (error) {
    await redis.close().catch(() => redis.destroy());
    throw error;
  }
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${host}:${port}`,
    stats: () => ({ ...counters, streams: streams.size }),
    stop: async () => {
      await streams.closeAll();
      await new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      });
      await redis.close().catch(() => redis.destroy());
    },
  };
}

/** `/subscribe/<channel>…` or `/psubscribe/<pattern>…` asking for an event stream, as the client sends it. */
function subscriptionRequest(
  path: string,
  req: IncomingMessage,
): { kind: SubscriptionKind; names: string[] } | { error: string } | undefined {
  const [first, ...rest] = path.split("/").filter(Boolean);
  const kind = first?.toLowerCase();
  if (kind !== "subscribe" && kind !== "psubscribe") return undefined;
  if (!String(req.headers.accept ?? "").includes("text/event-stream")) return undefined;
  let names: string[];
  try {
    names = rest.map(decodeURIComponent);
  } catch {
    return { error: "ERR failed to parse command" };
  }
  if (names.length === 0) return { error: `ERR wrong number of arguments for '${kind}' command` };
  return { kind, names };
}

/** node-redis retries an unreachable server forever; give up with a clear error instead. */
async function connectWithin(
  client: { connect(): Promise<unknown>; destroy(): void },
  ms: number,
  url: string,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`cannot reach Redis at ${url} within ${ms / 1000} s`)), ms);
  });
  try {
    await Promise.race([client.connect(), timeout]);
  } catch (error) {
    client.destroy();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

interface PreparedCommand {
  name: string;
  args: string[];
  /** Turns Redis's answer back into what the client expects (script SHAs). */
  rewriteReply?: (reply: unknown) => unknown;
}

/** Validates one command, stringifies its arguments and applies the Lua-script translation. */
function prepare(raw: Json[], scripts: ScriptMap): PreparedCommand | { error: string } {
  if (!Array.isArray(raw) || raw.length === 0) return { error: "ERR command must be a non-empty array" };
  const args = raw.map(argToString);
  const name = (args[0] ?? "").toUpperCase();
  if (REJECTED.has(name)) return { error: `ERR Command is not available over REST: '${args[0]}'` };
  return scripts.translate(name, args);
}

function argToString(value: Json): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

function isBlockingStream(args: string[]): boolean {
  const name = (args[0] ?? "").toUpperCase();
  return (name === "XREAD" || name === "XREADGROUP") && args.some((a) => a.toUpperCase() === "BLOCK");
}

/**
 * `@upstash/ratelimit` scripts start with `#!lua flags=allow-key-locking`, an Upstash-only flag stock Redis
 * rejects. We comment the shebang out (keeping line numbers) and remember which Redis SHA stands for the SHA
 * the client computed over the original text, so EVALSHA / SCRIPT LOAD / SCRIPT EXISTS keep working.
 */
class ScriptMap {
  private readonly redisShaOf = new Map<string, string>();

  translate(name: string, args: string[]): PreparedCommand {
    switch (name) {
      case "EVAL":
      case "EVAL_RO": {
        const script = args[1];
        if (script !== undefined) args[1] = this.register(script).text;
        return { name, args };
      }
      case "EVALSHA":
      case "EVALSHA_RO": {
        const sha = args[1];
        if (sha !== undefined) args[1] = this.redisShaOf.get(sha.toLowerCase()) ?? sha;
        return { name, args };
      }
      case "SCRIPT":
        return this.scriptSubcommand(name, args);
      default:
        return { name, args };
    }
  }

  private scriptSubcommand(name: string, args: string[]): PreparedCommand {
    const sub = (args[1] ?? "").toUpperCase();
    if (sub === "LOAD" && args[2] !== undefined) {
      const { text, clientSha } = this.register(args[2]);
      args[2] = text;
      // Redis answers with the SHA of what it got; the client wants the SHA of what it sent.
      return { name, args, rewriteReply: () => clientSha };
    }
    if (sub === "EXISTS") {
      for (let i = 2; i < args.length; i++) {
        const sha = args[i] ?? "";
        args[i] = this.redisShaOf.get(sha.toLowerCase()) ?? sha;
      }
    }
    if (sub === "FLUSH") this.redisShaOf.clear();
    return { name, args };
  }

  private register(script: string): { text: string; clientSha: string } {
    const clientSha = sha1(script);
    const text = stripShebang(script);
    if (text !== script) this.redisShaOf.set(clientSha, sha1(text));
    return { text, clientSha };
  }
}

function stripShebang(script: string): string {
  return script.startsWith("#!") ? `--${script}` : script;
}

function sha1(text: string): string {
  return createHash("sha1").update(text, "utf8").digest("hex");
}

/**
 * Encodes a RESP2 reply the way Upstash does with `Upstash-Encoding: base64`: every string (bulk or status,
 * at any depth) as base64 of its bytes, except a top-level "OK" status which stays "OK" (the client's
 * decoder special-cases exactly that); integers as numbers, nil as null, arrays recursively.
 */
export function encodeReply(reply: unknown, base64: boolean, topLevel = false): Json {
  if (reply === null || reply === undefined) return null;
  if (typeof reply === "number") return reply;
  if (typeof reply === "bigint") return Number(reply);
  if (Buffer.isBuffer(reply)) return base64 ? reply.toString("base64") : reply.toString("utf8");
  if (typeof reply === "string") {
    if (!base64 || (topLevel && reply === "OK")) return reply;
    return Buffer.from(reply, "utf8").toString("base64");
  }
  if (Array.isArray(reply)) return reply.map((item) => encodeReply(item, base64));
  if (reply instanceof Error) return encodeReply(reply.message, base64);
  return encodeReply(String(reply), base64);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function authorized(req: IncomingMessage, url: URL, expected: Buffer): boolean {
  const header = req.headers.authorization ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  const presented = match?.[1] ?? url.searchParams.get("_token");
  if (!presented) return false;
  const given = Buffer.from(presented, "utf8");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function parseJson(body: string): Json | undefined {
  try {
    return JSON.parse(body) as Json;
  } catch {
    return undefined;
  }
}

function parseCommand(body: string): { args: Json[] } | { error: string } {
  const parsed = parseJson(body);
  if (!Array.isArray(parsed) || parsed.length === 0) return { error: "ERR failed to parse command" };
  return { args: parsed };
}

function parseCommandList(body: string): { list: Json[][] } | { error: string } {
  const parsed = parseJson(body);
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((c) => Array.isArray(c) && c.length > 0)) {
    return { error: "ERR failed to parse pipeline request" };
  }
  return { list: parsed as Json[][] };
}

/** `/set/key/value?EX=10` → SET key value EX 10; a POST body is the last argument. */
function pathCommand(path: string, url: URL, body: string): { args: Json[] } | { error: string } {
  let args: string[];
  try {
    args = path.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return { error: "ERR failed to parse command" };
  }
  if (body.length > 0) args.push(body);
  for (const [key, value] of url.searchParams) {
    if (key === "_token") continue;
    args.push(key);
    if (value !== "") args.push(value);
  }
  return args.length > 0 ? { args } : { error: "ERR failed to parse command" };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new Error("request body too large");
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function respond(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const token = process.env.UPSTASH_TOKEN ?? process.env.UPSTASH_REDIS_REST_TOKEN ?? "local-dev-token";
  const server = await startUpstashServer({
    port: Number(process.env.UPSTASH_PORT ?? 8079),
    host: process.env.UPSTASH_HOST,
    redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    token,
    log: process.env.UPSTASH_QUIET ? undefined : (line) => console.log(line),
  });
  console.log(`Upstash REST server on ${server.url} (token from UPSTASH_TOKEN, default "local-dev-token")`);
  const shutdown = () => {
    void server.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}
