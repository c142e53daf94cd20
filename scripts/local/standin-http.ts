import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { listen } from "./ports";

/**
 * Small pieces the provider stand-ins share: body reading, JSON/HTML answers, the fault switch behind
 * `POST /__faults`, escaping for the developer pages, and (for the signing stand-ins) a node:http server with a
 * request log and webhook delivery.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export class BodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`request body larger than ${limit} bytes`);
  }
}

export async function readBytes(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > maxBytes) throw new BodyTooLargeError(maxBytes);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

export async function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  return (await readBytes(req, maxBytes)).toString("utf8");
}

/** The parsed body, or undefined when it is not JSON at all. */
export function parseJson(text: string): Json | undefined {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

// Developer pages show provider payloads: nothing on them may run script or load from elsewhere.
const PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'";

export function sendHtml(res: ServerResponse, status: number, html: string, policy = PAGE_POLICY): void {
  res.writeHead(status, {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Length": Buffer.byteLength(html),
    "Content-Security-Policy": policy,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
  });
  res.end(html);
}

export function sendNoContent(res: ServerResponse): void {
  res.writeHead(204);
  res.end();
}

export function escapeHtml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Canonical JSON (object keys sorted at every depth): equal payloads give equal text whatever the key order. */
export function canonicalJson(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] ?? null)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export type FaultStatus = 429 | 500 | 503;

export interface ActiveFault {
  status: FaultStatus;
  /** Requests still to fail; null = until cleared. */
  remaining: number | null;
  /** Sent as Retry-After on 429 and 503. */
  retryAfterSeconds: number;
}

/**
 * The provider-is-down switch: `POST /__faults { status, count?, retryAfterSeconds? }` makes the next
 * `count` send requests fail with `status` (all of them when count is omitted) until `DELETE /__faults`.
 */
export class FaultSwitch {
  private active: ActiveFault | undefined;

  set(input: Json | undefined): ActiveFault | { error: string } {
    if (!isObject(input)) return { error: 'body must be a JSON object like {"status": 503, "count": 2}' };
    const { status, count, retryAfterSeconds } = input;
    if (status !== 429 && status !== 500 && status !== 503) return { error: "status must be 429, 500 or 503" };
    if (count !== undefined && count !== null && !(Number.isInteger(count) && (count as number) > 0)) {
      return { error: "count must be a positive integer (omit it to fail until cleared)" };
    }
    if (
      retryAfterSeconds !== undefined &&
      !(Number.isInteger(retryAfterSeconds) && (retryAfterSeconds as number) >= 0)
    ) {
      return { error: "retryAfterSeconds must be a non-negative integer" };
    }
    this.active = {
      status,
      remaining: typeof count === "number" ? count : null,
      retryAfterSeconds: typeof retryAfterSeconds === "number" ? retryAfterSeconds : 1,
    };
    return { ...this.active };
  }

  clear(): void {
    this.active = undefined;
  }

  current(): ActiveFault | null {
    return this.active ? { ...this.active } : null;
  }

  /** The fault this request suffers, if any; counts it against `count`. */
  take(): ActiveFault | undefined {
    const fault = this.active;
    if (!fault) return undefined;
    if (fault.remaining !== null) {
      fault.remaining--;
      if (fault.remaining <= 0) this.active = undefined;
    }
    return { ...fault };
  }
}

/**
 * The fault switch per target: `POST /__faults { status, count?, retryAfterSeconds?, <scope>? }` with a scope
 * field (the email stand-in's `to`, the FCM stand-in's `token`) fails only sends to that target, so one test can
 * take "the provider" down for its own recipient while other suites keep sending. Without it, every send fails.
 */
export class ScopedFaults {
  private readonly everywhere = new FaultSwitch();
  private readonly scoped = new Map<string, FaultSwitch>();

  constructor(
    private readonly scopeField: string,
    private readonly normalize: (scope: string) => string = (s) => s,
  ) {}

  set(input: Json | undefined): (ActiveFault & { scope?: string }) | { error: string } {
    const scope = isObject(input) ? input[this.scopeField] : undefined;
    if (scope === undefined || scope === null) return this.everywhere.set(input);
    if (typeof scope !== "string" || scope === "") return { error: `${this.scopeField} must be a non-empty string` };
    const { [this.scopeField]: _scope, ...rest } = input as JsonObject;
    const fault = new FaultSwitch();
    const result = fault.set(rest);
    if ("error" in result) return result;
    this.scoped.set(this.normalize(scope), fault);
    return { ...result, scope };
  }

  /** The fault a send to any of `targets` suffers (a target's own fault first), counted against its `count`. */
  take(targets: string[]): ActiveFault | undefined {
    for (const target of targets) {
      const key = this.normalize(target);
      const fault = this.scoped.get(key);
      if (!fault) continue;
      const taken = fault.take();
      if (!fault.current()) this.scoped.delete(key);
      if (taken) return taken;
    }
    return this.everywhere.take();
  }

  clear(scope?: string | null): void {
    if (scope) this.scoped.delete(this.normalize(scope));
    else {
      this.everywhere.clear();
      this.scoped.clear();
    }
  }

  current(scope?: string | null): ActiveFault | null {
    return scope ? (this.scoped.get(this.normalize(scope))?.current() ?? null) : this.everywhere.current();
  }
}

/** `{ "ms": 250 }` → 250; anything else → an error for the control endpoint. */
export function parseLatency(input: Json | undefined): number | { error: string } {
  if (!isObject(input) || !Number.isInteger(input.ms) || (input.ms as number) < 0 || (input.ms as number) > 60_000) {
    return { error: 'body must be {"ms": <integer 0..60000>}' };
  }
  return input.ms as number;
}

export const PAGE_STYLE = `
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; } h2 { font-size: 1.05rem; margin: 0 0 .3rem; }
  .item { border: 1px solid #ddd; border-radius: 6px; padding: .8rem 1rem; margin: 0 0 1rem; }
  .meta { color: #555; font-size: 12px; } .meta b { color: #222; }
  pre { background: #f6f6f6; padding: .6rem; white-space: pre-wrap; word-break: break-word; margin: .4rem 0; }
  iframe { width: 100%; height: 320px; border: 1px solid #ccc; background: #fff; }
  table { border-collapse: collapse; width: 100%; } td, th { border-bottom: 1px solid #eee; padding: .3rem .5rem;
  text-align: left; vertical-align: top; } .empty { color: #777; }`;

export interface ReceivedRequest {
  method: string;
  path: string;
  status: number;
  at: string;
  /** Request headers as received, lower-case names. */
  headers: Record<string, string>;
  body: string;
}

/** One outbound delivery (a webhook or push) and what the target answered; status 0 when it was unreachable. */
export interface Delivery {
  target: string;
  requestHeaders: Record<string, string>;
  requestBody: string;
  status: number;
  responseBody: string;
  error?: string;
  at: string;
}

export interface HttpExchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  method: string;
  body: Buffer;
  /** The body as UTF-8 text. */
  text: string;
}

export type ExchangeHandler = (exchange: HttpExchange) => Promise<void> | void;

export interface StartedStandIn {
  url: string;
  server: Server;
  received(): ReceivedRequest[];
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;
const MAX_RECORDED = 500;
const DELIVERY_TIMEOUT_MS = 15_000;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(isObject(body) && typeof body.error === "string" ? body.error : `HTTP ${status}`);
  }
}

/**
 * Starts a server on host:port that hands every request (body already read) to `handle`. A handler that
 * throws HttpError answers with its status and JSON body; anything else is a 500 with the message.
 */
export async function startStandIn(opts: {
  name: string;
  port: number;
  host?: string;
  log?: (line: string) => void;
  handle: ExchangeHandler;
}): Promise<StartedStandIn> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.log ?? (() => {});
  const received: ReceivedRequest[] = [];

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://localhost");
      const method = req.method ?? "GET";
      let body: Buffer = Buffer.alloc(0);
      try {
        body = await readBytes(req, MAX_BODY_BYTES);
        await opts.handle({ req, res, url, method, body, text: body.toString("utf8") });
      } catch (error) {
        if (!res.headersSent) {
          if (error instanceof HttpError) sendJson(res, error.status, error.body, error.headers);
          else if (error instanceof BodyTooLargeError) sendJson(res, 413, { error: "request body too large" });
          else sendJson(res, 500, { error: error instanceof Error ? error.message : String(error) });
        } else {
          res.destroy();
        }
      } finally {
        received.push({
          method,
          path: url.pathname + url.search,
          status: res.statusCode,
          at: new Date().toISOString(),
          headers: flatHeaders(req.headers),
          body: body.toString("utf8"),
        });
        if (received.length > MAX_RECORDED) received.shift();
        log(`${opts.name} ${method} ${url.pathname} ${res.statusCode}`);
      }
    })();
  });
  await listen(server, opts.port, host);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    server,
    received: () => received.map((entry) => ({ ...entry, headers: { ...entry.headers } })),
    close: () =>
      new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      }),
  };
}

/** POSTs `body` to `target` and reports the answer; a network failure is status 0 with the error, not a throw. */
export async function deliver(target: string, headers: Record<string, string>, body: string): Promise<Delivery> {
  const at = new Date().toISOString();
  try {
    const response = await fetch(target, {
      method: "POST",
      headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    return {
      target,
      requestHeaders: headers,
      requestBody: body,
      status: response.status,
      responseBody: await response.text(),
      at,
    };
  } catch (error) {
    const message = error instanceof Error ? `${error.message}${causeText(error)}` : String(error);
    return { target, requestHeaders: headers, requestBody: body, status: 0, responseBody: "", error: message, at };
  }
}

/** What a control endpoint answers after a delivery: the target's status and body (parsed when JSON). */
export function deliveryReport(delivery: Delivery, extra: JsonObject = {}): JsonObject {
  return {
    ...extra,
    status: delivery.status,
    body: parseJson(delivery.responseBody) ?? delivery.responseBody,
    ...(delivery.error ? { error: delivery.error } : {}),
  };
}

/** Parses a control request's JSON object body or answers 400. */
export function controlBody(text: string): JsonObject {
  const parsed = parseJson(text);
  if (!isObject(parsed)) throw new HttpError(400, { error: "expected a JSON object body" });
  return parsed;
}

export function requiredString(body: JsonObject, key: string): string {
  const value = body[key];
  if (typeof value !== "string" || value === "")
    throw new HttpError(400, { error: `"${key}" must be a non-empty string` });
  return value;
}

export function optionalString(body: JsonObject, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new HttpError(400, { error: `"${key}" must be a string` });
  return value;
}

export function optionalNumber(body: JsonObject, key: string): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value))
    throw new HttpError(400, { error: `"${key}" must be a number` });
  return value;
}

export function optionalBoolean(body: JsonObject, key: string): boolean | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw new HttpError(400, { error: `"${key}" must be a boolean` });
  return value;
}

export function oneOf<T extends string>(body: JsonObject, key: string, allowed: readonly T[]): T | undefined {
  const value = optionalString(body, key);
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new HttpError(400, { error: `"${key}" must be one of ${allowed.join(", ")}` });
  }
  return value as T;
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
  return match?.[1];
}

function flatHeaders(headers: IncomingMessage["headers"]): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return flat;
}

function causeText(error: Error): string {
  const cause = (error as Error & { cause?: unknown }).cause;
  return cause instanceof Error ? ` (${cause.message})` : "";
}

/** Writes a body of any content type (plain text, HLS playlists, …). */
export function sendContent(
  res: ServerResponse,
  status: number,
  text: string,
  contentType: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(text), ...headers });
  res.end(text);
}
