import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { listen } from "./ports";

/**
 * Plumbing shared by the provider stand-ins (App Store, Google Play, Stripe, Cloudflare Stream): a node:http
 * server on loopback that records what it received, JSON in and out, and outbound deliveries to a target URL
 * whose answer is reported back to the caller of the control endpoint.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** One request the stand-in answered (control endpoints included), newest last. */
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
        body = await readBody(req);
        await opts.handle({ req, res, url, method, body, text: body.toString("utf8") });
      } catch (error) {
        if (!res.headersSent) {
          if (error instanceof HttpError) sendJson(res, error.status, error.body, error.headers);
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

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=UTF-8",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  contentType: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(text), ...headers });
  res.end(text);
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

export function parseJson(text: string): Json | undefined {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
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

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, { error: "request body too large" });
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
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
