import { exports } from "cloudflare:workers";
import { testDeps } from "./deps";

export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface RequestOptions {
  body?: unknown;
  /** A body sent as is (an upload's bytes, malformed JSON). */
  rawBody?: string | Uint8Array;
  headers?: Record<string, string>;
  token?: string;
  ip?: string;
  /**
   * Wait until what the request's writes owe after the answer (notifications, totals, cache drops) is carried
   * out, so the next assertion sees it (default). `false` to look at the moment right after the answer.
   */
  awaitOwed?: boolean;
}

type Fetcher = (request: Request) => Promise<Response>;

const worker = (exports as unknown as { default: { fetch: Fetcher } }).default;
const throughWorker: Fetcher = (request) => worker.fetch(request);

/** Every response body the suite sees, so security tests can scan them all for leaked secrets. */
export const seenBodies: string[] = [];
/** Every call's method, path and status, checked against the operations' declared statuses after each file. */
export const observedCalls: { method: string; path: string; status: number }[] = [];

/** Calls the API through the Worker (or another fetcher, e.g. an app built with a custom config). */
export async function call<T = unknown>(
  method: string,
  path: string,
  options: RequestOptions = {},
  fetcher: Fetcher = throughWorker,
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers["content-type"] ??= "application/json";
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  // Every call comes from its own address unless the test says otherwise.
  headers["cf-connecting-ip"] ??= options.ip ?? uniqueIp();
  const request = new Request(`http://circle.test${path}`, {
    method,
    headers,
    body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  });
  const response = await fetcher(request);
  const text = await response.text();
  if (options.awaitOwed !== false) await owedCarriedOut(response.headers);
  seenBodies.push(text);
  observedCalls.push({ method, path, status: response.status });
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (e.g. /docs HTML)
  }
  return { status: response.status, headers: response.headers, body: body as T, text };
}

const owedStore = testDeps().db.owedEffects;

/**
 * Waits (bounded) until the owed records a request left — counted in its Server-Timing as `owed`, named by its
 * X-Request-Id — are done: their after-response run is background work, so a test must await it before looking.
 */
export async function owedCarriedOut(headers: Headers, timeoutMs = 10_000): Promise<void> {
  const requestId = headers.get("x-request-id");
  if (owedRecords(headers) === 0 || !requestId) return;
  const deadline = Date.now() + timeoutMs;
  for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
    const open = await owedStore.find(
      { requestId, state: { $in: ["pending", "committed"] } },
      { projection: { _id: 1 }, limit: 1 },
    );
    if (open.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(`request ${requestId}: owed effects still pending after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/** Like `call`, for answers that are not text (media objects): the Response itself, body unread. */
export async function rawCall(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: ReadableStream<Uint8Array>,
): Promise<Response> {
  const request = new Request(`http://circle.test${path}`, {
    method,
    headers: { "cf-connecting-ip": uniqueIp(), ...headers },
    ...(body ? { body } : {}),
  });
  const response = await throughWorker(request);
  observedCalls.push({ method, path, status: response.status });
  return response;
}

/** Round trips per store for one request, read from its Server-Timing header. */
export function roundTrips(headers: Headers): Record<string, number> {
  const timing = headers.get("server-timing") ?? "";
  const counts: Record<string, number> = {};
  for (const entry of timing.split(",")) {
    const match = /^\s*(\w+);desc="(\d+)"/.exec(entry);
    if (match?.[1] && match[2] && match[1] !== "owed") counts[match[1]] = Number(match[2]);
  }
  return counts;
}

/** How many records of owed work (done after the answer) a request left, from its Server-Timing header. */
export function owedRecords(headers: Headers): number {
  return Number(/(?:^|,)\s*owed;desc="(\d+)"/.exec(headers.get("server-timing") ?? "")?.[1] ?? 0);
}

/** Sequential waits per store for one request (parallel calls count once), from its Server-Timing header. */
export function waits(headers: Headers): Record<string, number> {
  const timing = headers.get("server-timing") ?? "";
  const counts: Record<string, number> = {};
  for (const entry of timing.split(",")) {
    const match = /^\s*(\w+)\.waits;desc="(\d+)"/.exec(entry);
    if (match?.[1] && match[2]) counts[match[1]] = Number(match[2]);
  }
  return counts;
}

// 40 random bits per test file (each file has its own module instance), then a counter: two files (or two
// runs against one stack) share an address only if they draw the same 40 bits.
const ipBlock = [...crypto.getRandomValues(new Uint8Array(5))].map((b) => b.toString(16).padStart(2, "0")).join("");
let ipCounter = 0;
/**
 * A client IP no other caller in any test file uses: an IPv6 address in its own /64 (the API keys IPv6
 * callers by /64), so tests never share a rate-limit bucket or a fraud signal by accident.
 */
export function uniqueIp(): string {
  ipCounter += 1;
  const groups = `fd${ipBlock.slice(0, 2)}:${ipBlock.slice(2, 6)}:${ipBlock.slice(6, 10)}`;
  return `${groups}:${ipCounter.toString(16)}::1`;
}
