import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { listen } from "./ports";
import {
  BodyTooLargeError,
  canonicalJson,
  escapeHtml,
  type FaultStatus,
  isObject,
  type Json,
  type JsonObject,
  PAGE_STYLE,
  parseJson,
  parseLatency,
  readBody,
  ScopedFaults,
  sendHtml,
  sendJson,
  sendNoContent,
  sendText,
  sleep,
} from "./standin-http";

/**
 * Dev/test-only stand-in for Resend's HTTP API (https://resend.com/docs/api-reference): `POST /emails`,
 * `GET /emails/{id}` and `GET /emails`, Bearer API key, Resend's error body `{ statusCode, message, name }`
 * and its `Idempotency-Key` rules. Accepted mails are kept in memory for tests and developers:
 *
 *   GET  /__sent[?to=address]   every accepted mail, oldest first (to/cc/bcc matched by bare address)
 *   GET  /                      the same, newest first, as a page (HTML bodies in a sandboxed frame)
 *   POST /__faults {status, count?, retryAfterSeconds?, to?} / DELETE /__faults[?to=]   next sends fail
 *                               (429/500/503); with `to`, only sends to that address
 *   POST /__latency {ms} / DELETE /__latency   how long a send holds its idempotency key before answering
 *   POST /__reset               forget mails, idempotency keys, faults and latency
 *
 * `/__*` and `/` need no key: they exist only on this local server.
 */

export interface EmailServerOptions {
  /** The one API key this "account" has; anything else is refused like a deleted key. */
  apiKey: string;
  /** Omitted or 0: any free port. */
  port?: number;
  host?: string;
  log?: (line: string) => void;
  /** Clock in ms since the epoch (tests move it to cross the 24 h idempotency window). */
  now?: () => number;
  /** Initial value of the `/__latency` setting. */
  latencyMs?: number;
}

export interface RunningEmailServer {
  /** Base URL: use it where the Worker would use https://api.resend.com. */
  url: string;
  stop(): Promise<void>;
}

/** One accepted mail as `GET /__sent` lists it. */
export interface SentEmail {
  id: string;
  createdAt: string;
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  replyTo: string[];
  subject: string;
  html: string | null;
  text: string | null;
  headers: Record<string, string>;
  tags: { name: string; value: string }[];
  scheduledAt: string | null;
  idempotencyKey: string | null;
}

/** Resend's error body; field order as Resend sends it. */
interface ResendError {
  statusCode: number;
  message: string;
  name: string;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly errorName: string,
    message: string,
  ) {
    super(message);
  }
}

// Documented on https://resend.com/docs/api-reference/errors (messages as listed there).
const MISSING_KEY = new Refusal(401, "missing_api_key", "Missing API key in the authorization header.");
// Resend's docs have listed a wrong key as 403 `invalid_api_key` ("API key is invalid.") for a long time and
// their introduction still says "403: The API key used was invalid."; that is what this server answers.
const INVALID_KEY = new Refusal(403, "invalid_api_key", "API key is invalid.");
const NOT_FOUND = new Refusal(404, "not_found", "The requested endpoint does not exist.");
const METHOD_NOT_ALLOWED = new Refusal(405, "method_not_allowed", "Method is not allowed for the requested path.");
const BAD_IDEMPOTENCY_KEY = new Refusal(
  400,
  "invalid_idempotency_key",
  "Idempotency keys, if present, must have between 1 and 256 characters.",
);
const CONCURRENT_IDEMPOTENT = new Refusal(
  409,
  "concurrent_idempotent_requests",
  "There is another request in progress with the same idempotency key.",
);
const IDEMPOTENT_MISMATCH = new Refusal(
  409,
  "invalid_idempotent_request",
  "This idempotency key has been used with this HTTP method and endpoint within the last 24 hours, but the request body was modified and doesn't match the original request.",
);

const FAULTS: Record<FaultStatus, { name: string; message: string }> = {
  429: {
    name: "rate_limit_exceeded",
    message:
      "Too many requests. Please limit the number of requests per second. Or contact support to increase rate limit.",
  },
  500: { name: "application_error", message: "An unexpected error occurred." },
  503: { name: "service_unavailable", message: "API is temporarily unavailable" },
};

// "Idempotency keys expire after 24 hours" (send-email reference); "up to 256 characters".
const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;
const MAX_IDEMPOTENCY_KEY = 256;
// Send-email reference: `to` "Max 50"; tags: ASCII letters, digits, underscore, dash, at most 256 characters.
const MAX_TO = 50;
const TAG_PART = /^[A-Za-z0-9_-]{1,256}$/;
// Resend accepts up to 40 MB of attachments per mail; keep a little headroom for the JSON around them.
const MAX_BODY_BYTES = 45 * 1024 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BARE_ADDRESS = /^[^\s@<>",;]+@[^\s@<>",;]+\.[^\s@<>",;]+$/;
const NAMED_ADDRESS = /^(.*?)\s*<([^<>]+)>$/;

type IdempotencyEntry =
  | { state: "in-progress"; fingerprint: string }
  | { state: "done"; fingerprint: string; at: number; status: number; body: Json };

export async function startEmailServer(opts: EmailServerOptions): Promise<RunningEmailServer> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.log ?? (() => {});
  const now = opts.now ?? Date.now;
  const expectedKey = Buffer.from(opts.apiKey, "utf8");
  const sent: SentEmail[] = [];
  const byId = new Map<string, SentEmail>();
  const idempotency = new Map<string, IdempotencyEntry>();
  // A fault may name a recipient (`to`): then only mail to that address fails.
  const faults = new ScopedFaults("to", (address) => bareAddress(address).toLowerCase());
  let latencyMs = opts.latencyMs ?? 0;

  const authenticate = (req: IncomingMessage) => {
    const match = /^Bearer\s+(\S.*)$/i.exec((req.headers.authorization ?? "").trim());
    if (!match?.[1]) throw MISSING_KEY;
    const given = Buffer.from(match[1].trim(), "utf8");
    if (given.length !== expectedKey.length || !timingSafeEqual(given, expectedKey)) throw INVALID_KEY;
  };

  /** Looks the key up; answers a replay or throws a 409, or reports that this request may go ahead. */
  const checkIdempotency = (
    key: string,
    fingerprint: string,
  ): { replay: IdempotencyEntry & { state: "done" } } | null => {
    const entry = idempotency.get(key);
    if (!entry) return null;
    if (entry.state === "in-progress") throw CONCURRENT_IDEMPOTENT;
    if (now() - entry.at >= IDEMPOTENCY_WINDOW_MS) {
      idempotency.delete(key);
      return null;
    }
    if (entry.fingerprint !== fingerprint) throw IDEMPOTENT_MISMATCH;
    return { replay: entry };
  };

  const sendEmail = async (req: IncomingMessage, res: ServerResponse): Promise<string> => {
    authenticate(req);
    const text = await readBody(req, MAX_BODY_BYTES);
    const body = parseJson(text);
    const fault = faults.take(recipientsOf(body));
    if (fault) {
      const { name, message } = FAULTS[fault.status];
      const headers: Record<string, string> = {};
      if (fault.status === 429) {
        // Resend's documented rate-limit headers (IETF draft 6 names) plus retry-after.
        Object.assign(headers, { "ratelimit-limit": "10", "ratelimit-remaining": "0", "ratelimit-reset": "1" });
      }
      if (fault.status !== 500) headers["retry-after"] = String(fault.retryAfterSeconds);
      respondError(res, new Refusal(fault.status, name, message), headers);
      return `fault ${fault.status}`;
    }

    const rawKey = req.headers["idempotency-key"];
    const idempotencyKey = typeof rawKey === "string" ? rawKey : null;
    if (idempotencyKey !== null && (idempotencyKey.length < 1 || idempotencyKey.length > MAX_IDEMPOTENCY_KEY)) {
      throw BAD_IDEMPOTENCY_KEY;
    }

    if (!isObject(body)) throw new Refusal(422, "validation_error", "The request body must be a JSON object.");

    const fingerprint = createHash("sha256").update(canonicalJson(body)).digest("hex");
    if (idempotencyKey !== null) {
      const found = checkIdempotency(idempotencyKey, fingerprint);
      if (found) {
        sendJson(res, found.replay.status, found.replay.body);
        return `replayed ${idempotencyKey}`;
      }
    }

    // Errors are not remembered under the key: Resend only checks for a mail already *sent* with it.
    const fields = validateEmail(body);
    if (idempotencyKey !== null) idempotency.set(idempotencyKey, { state: "in-progress", fingerprint });
    try {
      if (latencyMs > 0) await sleep(latencyMs);
      const id = randomUUID();
      const mail: SentEmail = { id, createdAt: new Date(now()).toISOString(), ...fields, idempotencyKey };
      sent.push(mail);
      byId.set(id, mail);
      const answer = { id };
      if (idempotencyKey !== null) {
        idempotency.set(idempotencyKey, { state: "done", fingerprint, at: now(), status: 200, body: answer });
      }
      sendJson(res, 200, answer);
      return `sent ${id} to ${mail.to.join(",")}`;
    } catch (error) {
      if (idempotencyKey !== null) idempotency.delete(idempotencyKey);
      throw error;
    }
  };

  const api = async (req: IncomingMessage, res: ServerResponse, path: string, url: URL): Promise<string> => {
    // Resend sits behind Cloudflare, which refuses requests without a User-Agent (error 1010) before
    // they reach the API; the Workers runtime sends none unless the code sets one.
    if (!req.headers["user-agent"]) {
      sendText(res, 403, "error code: 1010");
      return "no user-agent";
    }
    if (path === "/emails") {
      if (req.method === "POST") return await sendEmail(req, res);
      if (req.method === "GET") {
        authenticate(req);
        const limit = Math.min(100, Math.max(1, Number(url.searchParams.get("limit") ?? 20) || 20));
        const newest = sent.slice().reverse();
        sendJson(res, 200, {
          object: "list",
          has_more: newest.length > limit,
          data: newest.slice(0, limit).map(asResend),
        });
        return "list";
      }
      throw METHOD_NOT_ALLOWED;
    }
    const one = /^\/emails\/([^/]+)$/.exec(path);
    if (one?.[1]) {
      if (req.method !== "GET") throw METHOD_NOT_ALLOWED;
      authenticate(req);
      const id = decodeURIComponent(one[1]);
      if (!UUID.test(id)) throw new Refusal(422, "invalid_parameter", "The `id` must be a valid UUID.");
      const mail = byId.get(id.toLowerCase());
      if (!mail) throw new Refusal(404, "not_found", "Email not found");
      sendJson(res, 200, asResend(mail));
      return `get ${id}`;
    }
    throw NOT_FOUND;
  };

  const control = async (req: IncomingMessage, res: ServerResponse, path: string, url: URL): Promise<boolean> => {
    const method = req.method ?? "GET";
    if (path === "/" && method === "GET") {
      sendHtml(res, 200, renderPage(sent));
      return true;
    }
    if (path === "/__sent" && method === "GET") {
      const to = url.searchParams.get("to");
      const wanted = to ? bareAddress(to).toLowerCase() : null;
      const list = wanted
        ? sent.filter((m) => [...m.to, ...m.cc, ...m.bcc].some((a) => bareAddress(a).toLowerCase() === wanted))
        : sent;
      sendJson(res, 200, list);
      return true;
    }
    const frame = /^\/__sent\/([^/]+)\/html$/.exec(path);
    if (frame?.[1] && method === "GET") {
      const mail = byId.get(frame[1]);
      if (!mail) sendText(res, 404, "no such mail");
      // Its own policy too, so the mail's markup stays inert even when this URL is opened directly.
      else sendHtml(res, 200, mail.html ?? "", "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:");
      return true;
    }
    if (path === "/__faults") {
      if (method === "GET") sendJson(res, 200, { fault: faults.current(url.searchParams.get("to")) });
      else if (method === "DELETE") {
        faults.clear(url.searchParams.get("to"));
        sendNoContent(res);
      } else if (method === "POST") {
        const result = faults.set(parseJson(await readBody(req, 64 * 1024)));
        sendJson(res, "error" in result ? 400 : 200, result);
      } else sendJson(res, 405, { error: "use GET, POST or DELETE" });
      return true;
    }
    if (path === "/__latency") {
      if (method === "DELETE") {
        latencyMs = 0;
        sendNoContent(res);
      } else if (method === "POST") {
        const result = parseLatency(parseJson(await readBody(req, 64 * 1024)));
        if (typeof result === "number") latencyMs = result;
        sendJson(res, typeof result === "number" ? 200 : 400, typeof result === "number" ? { ms: result } : result);
      } else sendJson(res, 405, { error: "use POST or DELETE" });
      return true;
    }
    if (path === "/__reset" && method === "POST") {
      sent.length = 0;
      byId.clear();
      idempotency.clear();
      faults.clear();
      latencyMs = 0;
      sendNoContent(res);
      return true;
    }
    return false;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname.replace(/(.)\/+$/, "$1");
    let detail = "";
    try {
      if (path === "/" || path.startsWith("/__")) {
        if (!(await control(req, res, path, url))) sendJson(res, 404, { error: `no control endpoint ${path}` });
        return;
      }
      detail = await api(req, res, path, url);
    } catch (error) {
      if (res.headersSent) return void res.destroy();
      if (error instanceof Refusal) {
        detail = error.errorName;
        respondError(res, error);
      } else if (error instanceof BodyTooLargeError) {
        detail = "body too large";
        respondError(res, new Refusal(413, "validation_error", "The request body is too large."));
      } else {
        detail = String(error);
        respondError(res, new Refusal(500, "application_error", "An unexpected error occurred."));
      }
    } finally {
      const ms = (performance.now() - started).toFixed(1);
      log(`email ${req.method} ${url.pathname} ${res.statusCode} ${ms}ms ${detail}`.trimEnd());
    }
  };

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await listen(server, opts.port ?? 0, host);
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${host}:${port}`,
    stop: () =>
      new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      }),
  };
}

function respondError(res: ServerResponse, refusal: Refusal, headers: Record<string, string> = {}): void {
  const body: ResendError = { statusCode: refusal.status, message: refusal.message, name: refusal.errorName };
  sendJson(res, refusal.status, body, headers);
}

type EmailFields = Omit<SentEmail, "id" | "createdAt" | "idempotencyKey">;

/**
 * Checks a send-email body the way Resend answers it: a missing required field is 422
 * `missing_required_field` ("Missing `to` field."), a field of the wrong type or an address that is neither
 * `email@example.com` nor `Name <email@example.com>` is 422 `validation_error` naming the field.
 */
function validateEmail(body: JsonObject): EmailFields {
  for (const field of ["from", "to", "subject"] as const) {
    const value = body[field];
    if (value === undefined || value === null || value === "" || (Array.isArray(value) && value.length === 0)) {
      throw new Refusal(422, "missing_required_field", `Missing \`${field}\` field.`);
    }
  }
  const from = stringField(body, "from");
  const to = addressList(body, "to");
  if (to.length > MAX_TO) {
    throw new Refusal(422, "validation_error", `The \`to\` field must have at most ${MAX_TO} recipients.`);
  }
  const subject = stringField(body, "subject");
  checkAddress("from", from);
  const html = optionalString(body, "html");
  const text = optionalString(body, "text");
  // A template brings its own content; otherwise one of html/text must be there (react is rendered to html by
  // the Node SDK before it is sent, so the API only ever sees html).
  if (html === null && text === null && body.template === undefined) {
    throw new Refusal(422, "missing_required_field", "Missing `html` or `text` field.");
  }
  return {
    from,
    to,
    cc: addressList(body, "cc"),
    bcc: addressList(body, "bcc"),
    replyTo: addressList(body, "reply_to"),
    subject,
    html,
    text,
    headers: headerMap(body),
    tags: tagList(body),
    scheduledAt: optionalString(body, "scheduled_at"),
  };
}

function stringField(body: JsonObject, field: string): string {
  const value = body[field];
  if (typeof value !== "string")
    throw new Refusal(422, "validation_error", `The \`${field}\` field must be a \`string\`.`);
  return value;
}

function optionalString(body: JsonObject, field: string): string | null {
  const value = body[field];
  if (value === undefined || value === null) return null;
  return stringField(body, field);
}

/** `to`, `cc`, `bcc`, `reply_to`: a string or an array of strings, each a valid address. */
function addressList(body: JsonObject, field: string): string[] {
  const value = body[field];
  if (value === undefined || value === null) return [];
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || !list.every((item): item is string => typeof item === "string")) {
    throw new Refusal(422, "validation_error", `The \`${field}\` field must be a \`string\` or \`string[]\`.`);
  }
  for (const address of list) checkAddress(field, address);
  return list;
}

function checkAddress(field: string, address: string): void {
  if (!BARE_ADDRESS.test(bareAddress(address))) {
    throw new Refusal(
      422,
      "validation_error",
      `Invalid \`${field}\` field. The email address needs to follow the \`email@example.com\` or \`Name <email@example.com>\` format.`,
    );
  }
}

/** Every address a send-email body names (to, cc, bcc), for faults scoped to a recipient; [] when unreadable. */
function recipientsOf(body: Json | undefined): string[] {
  if (!isObject(body)) return [];
  return (["to", "cc", "bcc"] as const).flatMap((field) => {
    const value = body[field];
    const list = typeof value === "string" ? [value] : Array.isArray(value) ? value : [];
    return list.filter((a): a is string => typeof a === "string");
  });
}

/** `Name <a@b.c>` → `a@b.c`; a bare address as it is. */
function bareAddress(address: string): string {
  const named = NAMED_ADDRESS.exec(address.trim());
  return (named?.[2] ?? address).trim();
}

function headerMap(body: JsonObject): Record<string, string> {
  const value = body.headers;
  if (value === undefined || value === null) return {};
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === "string")) {
    throw new Refusal(422, "validation_error", "The `headers` field must be an object with `string` values.");
  }
  return value as Record<string, string>;
}

function tagList(body: JsonObject): { name: string; value: string }[] {
  const value = body.tags;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new Refusal(422, "validation_error", "The `tags` field must be an array.");
  return value.map((tag) => {
    if (!isObject(tag) || typeof tag.name !== "string" || typeof tag.value !== "string") {
      throw new Refusal(422, "validation_error", "Each tag needs a `name` and a `value`, both strings.");
    }
    if (!TAG_PART.test(tag.name) || !TAG_PART.test(tag.value)) {
      throw new Refusal(
        422,
        "validation_error",
        "Tags should only contain ASCII letters (a–z, A–Z), numbers (0–9), underscores (_), or dashes (-), and at most 256 characters.",
      );
    }
    return { name: tag.name, value: tag.value };
  });
}

/** The mail as Resend's retrieve-email endpoint lists it. */
function asResend(mail: SentEmail): Record<string, Json> {
  return {
    object: "email",
    id: mail.id,
    message_id: `<${mail.id}@resend.local>`,
    to: mail.to,
    from: mail.from,
    // Resend prints Postgres timestamps: "2026-04-03 22:13:42.674981+00".
    created_at: `${mail.createdAt.replace("T", " ").replace(/\.(\d{3})Z$/, ".$1000+00")}`,
    subject: mail.subject,
    html: mail.html,
    text: mail.text,
    bcc: mail.bcc,
    cc: mail.cc,
    reply_to: mail.replyTo,
    last_event: mail.scheduledAt ? "scheduled" : "delivered",
    scheduled_at: mail.scheduledAt,
    tags: mail.tags,
  };
}

function renderPage(sent: readonly SentEmail[]): string {
  const items = sent
    .slice()
    .reverse()
    .map((mail) => {
      const meta = [
        ["From", mail.from],
        ["To", mail.to.join(", ")],
        ["Cc", mail.cc.join(", ")],
        ["Bcc", mail.bcc.join(", ")],
        ["Reply-To", mail.replyTo.join(", ")],
        ["Sent", mail.createdAt],
        ["Id", mail.id],
        ["Idempotency-Key", mail.idempotencyKey ?? ""],
        ["Tags", mail.tags.map((t) => `${t.name}=${t.value}`).join(", ")],
      ]
        .filter(([, value]) => value)
        .map(([label, value]) => `<b>${label}:</b> ${escapeHtml(value ?? "")}`)
        .join(" &nbsp; ");
      const html =
        mail.html === null
          ? ""
          : `<iframe sandbox="" referrerpolicy="no-referrer" title="HTML body" src="/__sent/${encodeURIComponent(mail.id)}/html"></iframe>`;
      const text = mail.text === null ? "" : `<pre>${escapeHtml(mail.text)}</pre>`;
      return `<div class="item"><h2>${escapeHtml(mail.subject)}</h2><div class="meta">${meta}</div>${html}${text}</div>`;
    })
    .join("\n");
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Local mail (${sent.length})</title><style>${PAGE_STYLE}</style></head><body>
<h1>Mail accepted by the local Resend stand-in (${sent.length})</h1>
${items || '<p class="empty">Nothing sent yet.</p>'}</body></html>`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const apiKey = process.env.RESEND_API_KEY ?? "re_local_dev_key";
  const server = await startEmailServer({
    apiKey,
    port: Number(process.env.EMAIL_PORT ?? 8025),
    host: process.env.EMAIL_HOST,
    log: process.env.EMAIL_QUIET ? undefined : (line) => console.log(line),
  });
  console.log(
    `Resend stand-in on ${server.url} (key from RESEND_API_KEY, default "re_local_dev_key"); mail at ${server.url}/`,
  );
  const shutdown = () => {
    void server.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}
