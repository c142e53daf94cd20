import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * Small pieces the messaging stand-ins (email, push) share: body reading, JSON/HTML answers, the fault
 * switch behind `POST /__faults`, and escaping for the developer pages.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export class BodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`request body larger than ${limit} bytes`);
  }
}

export async function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > maxBytes) throw new BodyTooLargeError(maxBytes);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
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
