/**
 * Upstash Redis over REST, pipelines only: every call is one `POST /pipeline` with the commands the API uses,
 * serialized and decoded exactly as `@upstash/redis` does (the SDK's automatic (de)serialization), so values
 * written by either client read the same through the other. Also the pub/sub stream (`POST /subscribe/<channel>`,
 * server-sent events) that long-poll reads wait on.
 *
 * Replies are asked for as plain JSON, not `Upstash-Encoding: base64`: everything this API stores is text it
 * wrote (JSON, EJSON, ids, numbers), so the JSON answer is already exact, and decoding base64 per string would
 * only cost CPU and a third more bytes on the wire.
 */

/** An error reply from Upstash or Redis (a refused token, a failed command), as the SDK names it. */
export class UpstashError extends Error {
  override name = "UpstashError";
}

/** A command argument as sent: strings, numbers and booleans as they are, anything else as its JSON text. */
export type WireArgument = string | number | boolean;

/** The SDK's serializer: non-string values are sent as JSON text (and read back as values by `decodeReply`). */
export function serializeArgument(value: unknown): WireArgument {
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
      return value;
    default:
      // undefined has no JSON text: it goes out as null inside the command array, as the SDK's does.
      return JSON.stringify(value) as WireArgument;
  }
}

/**
 * The SDK's automatic deserialization of a reply: a string that is JSON becomes its value ("42" → 42, `{…}` →
 * an object, "true" → true), except a number whose text would change ("1.50", "12345678901234567890" stay
 * strings); arrays are decoded element by element; anything else stays as it came.
 */
export function decodeReply(reply: unknown): unknown {
  try {
    return decodeValue(reply);
  } catch {
    return reply;
  }
}

function decodeValue(reply: unknown): unknown {
  const parsed: unknown = Array.isArray(reply)
    ? reply.map((item) => {
        try {
          return decodeValue(item);
        } catch {
          return item;
        }
      })
    : JSON.parse(reply as string);
  if (typeof parsed === "number" && parsed.toString() !== reply) return reply;
  return parsed;
}

export interface ScoreMember {
  score: number;
  member: string;
}

export interface SetOptions {
  /** Expiry in seconds. */
  ex?: number;
  /** Expiry in milliseconds (when `ex` is not given). */
  px?: number;
  /** Only if the key does not exist. */
  nx?: boolean;
  /** Only if the key exists (when `nx` is not given). */
  xx?: boolean;
  /** Answer the value the key had before. */
  get?: boolean;
}

/** What one pipeline answers: each command's decoded reply, in order. */
type Exchange = (commands: WireArgument[][]) => Promise<unknown[]>;

/**
 * Commands queued for one round trip, typed for the commands the API sends, with the SDK's argument order
 * and options. `exec()` sends them; an error reply to any of them rejects the whole call (as the SDK's
 * pipeline does), though Redis has run the others.
 */
export class Pipeline {
  readonly commands: WireArgument[][] = [];

  constructor(private readonly exchange: Exchange) {}

  private queue(...parts: unknown[]): this {
    this.commands.push(parts.map(serializeArgument));
    return this;
  }

  exec(): Promise<unknown[]> {
    return this.commands.length === 0 ? Promise.resolve([]) : this.exchange(this.commands);
  }

  del(...keys: string[]) {
    return this.queue("del", ...keys);
  }
  eval(script: string, keys: string[], args: unknown[]) {
    return this.queue("eval", script, keys.length, ...keys, ...args);
  }
  exists(...keys: string[]) {
    return this.queue("exists", ...keys);
  }
  expire(key: string, seconds: number, option?: "NX" | "XX" | "GT" | "LT") {
    return option ? this.queue("expire", key, seconds, option) : this.queue("expire", key, seconds);
  }
  expireat(key: string, unixSeconds: number) {
    return this.queue("expireat", key, unixSeconds);
  }
  get(key: string) {
    return this.queue("get", key);
  }
  getdel(key: string) {
    return this.queue("getdel", key);
  }
  hget(key: string, field: string) {
    return this.queue("hget", key, field);
  }
  hset(key: string, fields: Record<string, unknown>) {
    return this.queue("hset", key, ...Object.entries(fields).flat());
  }
  incr(key: string) {
    return this.queue("incr", key);
  }
  incrby(key: string, by: number) {
    return this.queue("incrby", key, by);
  }
  keys(pattern: string) {
    return this.queue("keys", pattern);
  }
  mget(...keys: string[]) {
    return this.queue("mget", ...keys);
  }
  ping() {
    return this.queue("ping");
  }
  publish(channel: string, message: unknown) {
    return this.queue("publish", channel, message);
  }
  sadd(key: string, member: string, ...members: string[]) {
    return this.queue("sadd", key, member, ...members);
  }
  scard(key: string) {
    return this.queue("scard", key);
  }
  set(key: string, value: unknown, opts?: SetOptions) {
    const command: unknown[] = ["set", key, value];
    if (opts?.nx) command.push("nx");
    else if (opts?.xx) command.push("xx");
    if (opts?.get) command.push("get");
    if (typeof opts?.ex === "number") command.push("ex", opts.ex);
    else if (typeof opts?.px === "number") command.push("px", opts.px);
    return this.queue(...command);
  }
  smembers(key: string) {
    return this.queue("smembers", key);
  }
  smismember(key: string, members: string[]) {
    return this.queue("smismember", key, ...members);
  }
  srandmember(key: string, count?: number) {
    return count === undefined ? this.queue("srandmember", key) : this.queue("srandmember", key, count);
  }
  srem(key: string, ...members: string[]) {
    return this.queue("srem", key, ...members);
  }
  ttl(key: string) {
    return this.queue("ttl", key);
  }
  zadd(key: string, first: ScoreMember, ...rest: ScoreMember[]) {
    return this.queue("zadd", key, ...[first, ...rest].flatMap(({ score, member }) => [score, member]));
  }
  /** ZRANGE by rank; `withScores` interleaves each member with its score. */
  zrange(key: string, min: number, max: number, opts?: { rev?: boolean; withScores?: boolean }) {
    const command: unknown[] = ["zrange", key, min, max];
    if (opts?.rev) command.push("rev");
    if (opts?.withScores) command.push("withscores");
    return this.queue(...command);
  }
  zrem(key: string, ...members: string[]) {
    return this.queue("zrem", key, ...members);
  }
  zscore(key: string, member: string) {
    return this.queue("zscore", key, member);
  }
  zunionstore(destination: string, numKeys: number, keys: string[], opts?: { aggregate: "sum" | "min" | "max" }) {
    return opts
      ? this.queue("zunionstore", destination, numKeys, ...keys, "aggregate", opts.aggregate)
      : this.queue("zunionstore", destination, numKeys, ...keys);
  }
}

export interface UpstashOptions {
  url: string;
  token: string;
  /**
   * Runs each HTTP exchange: the place to bound, count and classify round trips (see redis.ts). The exchange
   * takes the signal to abort it with; a command's own error reply is raised after it, not inside it.
   */
  around?: <T>(exchange: (signal?: AbortSignal) => Promise<T>) => Promise<T>;
}

/**
 * The client: `pipeline()` for batches, and single commands, each a pipeline of one (a command's error reply
 * then arrives inside a 2xx answer, never looking like an HTTP failure). No retries: a retried write could
 * apply twice, and a dead store must surface at once.
 */
export class Redis {
  private readonly endpoint: string;
  private readonly authorization: string;
  private readonly around: NonNullable<UpstashOptions["around"]>;
  /** Read-your-writes: the newest sync token Upstash answered, sent back so a replica waits for our writes. */
  private syncToken = "";

  constructor(opts: UpstashOptions) {
    this.endpoint = `${opts.url.replace(/\/$/, "")}/pipeline`;
    this.authorization = `Bearer ${opts.token}`;
    this.around = opts.around ?? ((exchange) => exchange());
  }

  pipeline(): Pipeline {
    return new Pipeline((commands) => this.send(commands));
  }

  private async send(commands: WireArgument[][]): Promise<unknown[]> {
    const answers = await this.around((signal) => this.post(commands, signal));
    return answers.map(({ result, error }, i) => {
      if (error) throw new UpstashError(`Command ${i + 1} [ ${commands[i]?.[0]} ] failed: ${error}`);
      return decodeReply(result);
    });
  }

  /** The HTTP exchange; anything wrong with it (no answer, not Upstash's JSON, a non-2xx status) throws. */
  private async post(
    commands: WireArgument[][],
    signal?: AbortSignal,
  ): Promise<{ result?: unknown; error?: string }[]> {
    const headers: Record<string, string> = { authorization: this.authorization, "content-type": "application/json" };
    if (this.syncToken) headers["upstash-sync-token"] = this.syncToken;
    const res = await fetch(this.endpoint, { method: "POST", headers, body: JSON.stringify(commands), signal });
    const body = parseBody(await res.text());
    if (!res.ok) throw new UpstashError(String((body as { error?: unknown })?.error));
    this.syncToken = res.headers.get("upstash-sync-token") ?? "";
    if (!Array.isArray(body) || body.length !== commands.length) {
      throw new UpstashError(`Unexpected pipeline answer: ${truncate(JSON.stringify(body))}`);
    }
    return body as { result?: unknown; error?: string }[];
  }

  /** One command on its own (one round trip). */
  private async one<T>(queue: (pipeline: Pipeline) => unknown): Promise<T> {
    const pipeline = this.pipeline();
    queue(pipeline);
    return (await pipeline.exec())[0] as T;
  }

  ping() {
    return this.one<string>((p) => p.ping());
  }
  get<T = unknown>(key: string) {
    return this.one<T | null>((p) => p.get(key));
  }
  set(key: string, value: unknown, opts?: SetOptions) {
    return this.one<unknown>((p) => p.set(key, value, opts));
  }
  del(...keys: string[]) {
    return this.one<number>((p) => p.del(...keys));
  }
  exists(...keys: string[]) {
    return this.one<number>((p) => p.exists(...keys));
  }
  hset(key: string, fields: Record<string, unknown>) {
    return this.one<number>((p) => p.hset(key, fields));
  }
  ttl(key: string) {
    return this.one<number>((p) => p.ttl(key));
  }
  zscore(key: string, member: string) {
    return this.one<number | null>((p) => p.zscore(key, member));
  }
  keys(pattern: string) {
    return this.one<string[]>((p) => p.keys(pattern));
  }
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UpstashError(`Unable to parse response body: ${truncate(text)}`, { cause: error });
  }
}

const truncate = (text: string) => (text.length > 200 ? `${text.slice(0, 200)}...` : text);

// ---- Pub/sub ----

/** One event of a subscription stream: a confirmation with the subscription count, or a published message. */
export type StreamEvent =
  | { type: "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe"; channel: string; count: number }
  | { type: string; channel: string; message: unknown };

/** The stream's `data: ` lines, from text received so far; `pending` is an unfinished line to prepend next time. */
export function streamLines(pending: string, chunk: string): { data: string[]; pending: string } {
  const lines = (pending + chunk).split("\n");
  const rest = lines.pop() ?? "";
  return { data: lines.filter((line) => line.startsWith("data: ")).map((line) => line.slice(6)), pending: rest };
}

/**
 * One `data: ` line as the SDK's subscriber reads it: `subscribe,<channel>,<count>` or
 * `message,<channel>,<message>` (the message may hold commas; JSON text becomes its value). Null for a line
 * without a type and a channel.
 */
export function parseStreamEvent(data: string): StreamEvent | null {
  const first = data.indexOf(",");
  const second = data.indexOf(",", first + 1);
  if (first === -1 || second === -1) return null;
  const type = data.slice(0, first);
  const channel = data.slice(first + 1, second);
  const rest = data.slice(second + 1);
  if (type === "subscribe" || type === "unsubscribe" || type === "psubscribe" || type === "punsubscribe") {
    return { type, channel, count: Number.parseInt(rest, 10) };
  }
  let message: unknown = rest;
  try {
    message = JSON.parse(rest);
  } catch {}
  return { type, channel, message };
}

export interface SubscriptionHandlers {
  /** Upstash confirmed the subscription: messages published from now on arrive. */
  subscribed?(count: number): void;
  message?(message: unknown, channel: string): void;
  /** The subscription could not start (no connection, a refused token, an error status). */
  failed?(error: Error): void;
}

// As the SDK: a line longer than this is not a message of ours; the stream is dropped.
const MAX_PENDING_CHARS = 1024 * 1024;

/**
 * Subscribes to one channel over Upstash's server-sent events (one stream per channel, as the SDK opens them)
 * and returns the function that ends it (unsubscribing is closing the stream). A stream that ends or breaks
 * after it started ends quietly, as the SDK's does; the caller's own timeout covers it.
 */
export function subscribe(
  opts: Pick<UpstashOptions, "url" | "token">,
  channel: string,
  on: SubscriptionHandlers,
): () => void {
  const controller = new AbortController();
  const { signal } = controller;
  const open = async () => {
    const res = await fetch(`${opts.url.replace(/\/$/, "")}/subscribe/${channel}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${opts.token}`,
        "content-type": "application/json",
        accept: "text/event-stream",
        "cache-control": "no-cache",
      },
      body: "[]",
      signal,
    });
    if (!res.ok) throw new UpstashError(String((parseBody(await res.text()) as { error?: unknown })?.error));
    return res.body;
  };
  const read = async (body: ReadableStream<Uint8Array>) => {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        const lines = streamLines(pending, decoder.decode(value, { stream: true }));
        pending = lines.pending;
        if (pending.length > MAX_PENDING_CHARS) return;
        for (const data of lines.data) {
          const event = parseStreamEvent(data);
          if (event?.type === "subscribe" && "count" in event) on.subscribed?.(event.count);
          else if (event?.type === "message" && "message" in event) on.message?.(event.message, event.channel);
        }
      }
    } catch {
      // Aborted (unsubscribed) or broken: either way the stream is over.
    } finally {
      reader.cancel().catch(() => {});
    }
  };
  open().then(
    (body) => (body ? read(body) : undefined),
    (error: unknown) => {
      if (!signal.aborted) on.failed?.(error instanceof Error ? error : new Error(String(error)));
    },
  );
  return () => controller.abort();
}
