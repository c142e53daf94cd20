import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { checkSendRequest, type FieldViolation, isWellFormedRegistrationToken, type Target } from "./fcm-message";
import {
  generateServiceAccountKeys,
  type ServiceAccountJson,
  serviceAccountFor,
  serviceAccountKeysFrom,
  TokenIssuer,
} from "./fcm-oauth";
import { Devices, type DeviceView } from "./fcm-tray";
import { listen } from "./ports";
import {
  BodyTooLargeError,
  escapeHtml,
  type FaultStatus,
  isObject,
  type JsonObject,
  PAGE_STYLE,
  parseJson,
  readBody,
  ScopedFaults,
  sendHtml,
  sendJson,
  sendNoContent,
  sendText,
} from "./standin-http";

export { fakeRegistrationToken } from "./fcm-message";
export type { ServiceAccountJson } from "./fcm-oauth";
export type { DeviceView, Platform, TrayNotification } from "./fcm-tray";

/**
 * Dev/test-only stand-in for Firebase Cloud Messaging HTTP v1 and the Google OAuth 2.0 token endpoint
 * behind a service account:
 *
 *   POST /token                                  JWT-bearer assertion → access token (fcm-oauth.ts)
 *   POST /v1/projects/{projectId}/messages:send  Bearer access token; message checked like FCM (fcm-message.ts)
 *
 * It makes its own service account (fresh RSA key each start) whose `token_uri` is this server's `/token`.
 * For tests and developers (no credentials, local only):
 *
 *   GET  /__service-account.json     the key file to configure the Worker with
 *   GET  /__sent[?token=…]           every accepted message, oldest first (validate_only ones are not sent)
 *   GET  /__devices/{token}          what that device shows: tray per platform, app badge (fcm-tray.ts)
 *   DELETE /__devices/{token}        the user cleared the notification tray
 *   POST /__tokens/{token}/unregister | /register   the app was uninstalled (404 UNREGISTERED) | reinstalled
 *   DELETE /__access-tokens          every access token issued so far is expired from now on
 *   GET  /__access-tokens            {issued}: how many access tokens /token has handed out
 *   POST /__faults {status: 429|500|503, count?, retryAfterSeconds?, token?} / DELETE /__faults[?token=]
 *                                    sends fail; with `token`, only messages to that device
 *   POST /__reset                    forget messages, devices, faults (tokens and the account stay)
 *   GET  /                           recent pushes as a page
 */

export interface FcmServerOptions {
  /** Omitted or 0: any free port. */
  port?: number;
  host?: string;
  /** The Firebase project the service account belongs to (default "circle-local"). */
  projectId?: string;
  /** Tokens that answer UNREGISTERED from the start. */
  unregisteredTokens?: string[];
  log?: (line: string) => void;
  /** Clock in ms since the epoch, for assertion times and access-token expiry. */
  now?: () => number;
  /**
   * The service account's key (default: a fresh one each start). Given, the key file is known before the server
   * starts, so a Worker's bindings can be written first (the test stack does).
   */
  keys?: { privateKeyPem: string; privateKeyId: string; clientId?: string };
}

export interface RunningFcmServer {
  /** Base URL: stands for both https://fcm.googleapis.com and https://oauth2.googleapis.com. */
  url: string;
  projectId: string;
  /** The key file; its token_uri is `${url}/token`. */
  serviceAccount: ServiceAccountJson;
  stop(): Promise<void>;
}

/** One accepted message as `GET /__sent` lists it (field names snake_case, as FCM's protobuf has them). */
export interface SentPush {
  name: string;
  projectId: string;
  receivedAt: string;
  target: Target;
  message: JsonObject;
}

interface GoogleErrorBody {
  error: { code: number; message: string; status: string; details?: unknown[] };
}

const FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
const SEND_METHOD = { service: "fcm.googleapis.com", method: "google.firebase.fcm.v1.FcmService.SendMessage" };
const AUTH_HINT =
  "Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
// SendMessage requires one of these scopes (projects.messages/send reference, "Authorization scopes").
const SEND_SCOPES = [
  "https://www.googleapis.com/auth/firebase.messaging",
  "https://www.googleapis.com/auth/cloud-platform",
];
const SEND_PATH = /^\/v1\/projects\/([^/]+)\/messages:send$/;
const MAX_BODY_BYTES = 1024 * 1024;
const PAGE_LIMIT = 200;

const FAULTS: Record<FaultStatus, { status: string; message: string; errorCode: string }> = {
  429: { status: "RESOURCE_EXHAUSTED", message: "Quota exceeded for sending messages.", errorCode: "QUOTA_EXCEEDED" },
  500: { status: "INTERNAL", message: "Internal error encountered.", errorCode: "INTERNAL" },
  503: { status: "UNAVAILABLE", message: "The service is currently unavailable.", errorCode: "UNAVAILABLE" },
};

export async function startFcmServer(opts: FcmServerOptions = {}): Promise<RunningFcmServer> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.log ?? (() => {});
  const now = opts.now ?? Date.now;
  const projectId = opts.projectId ?? "circle-local";
  const devices = new Devices(opts.unregisteredTokens);
  // A fault may name a registration token (`token`): then only messages to that device fail.
  const faults = new ScopedFaults("token");
  const sent: SentPush[] = [];
  let sequence = 0;
  const keys = opts.keys ? serviceAccountKeysFrom(opts.keys) : await generateServiceAccountKeys();
  // Set synchronously once listening (the token URI needs the port), before any request is handled.
  let issuer: TokenIssuer | undefined;
  let serviceAccount: ServiceAccountJson | undefined;

  const exchangeToken = async (req: IncomingMessage, res: ServerResponse): Promise<string> => {
    const text = await readBody(req, MAX_BODY_BYTES);
    const isJson = String(req.headers["content-type"] ?? "").includes("application/json");
    const parsed = isJson ? parseJson(text) : undefined;
    const form = new URLSearchParams(isJson ? "" : text);
    const field = (name: string) =>
      isObject(parsed)
        ? typeof parsed[name] === "string"
          ? (parsed[name] as string)
          : undefined
        : (form.get(name) ?? undefined);
    const outcome = (issuer as TokenIssuer).exchange({
      grant_type: field("grant_type"),
      assertion: field("assertion"),
    });
    // Token responses must not be cached (RFC 6749 §5.1); Google sends these headers.
    const headers = { "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", Pragma: "no-cache" };
    if (outcome.ok) {
      sendJson(res, 200, outcome.body, headers);
      return "issued";
    }
    sendJson(res, outcome.status, outcome.body, headers);
    return `${outcome.body.error}: ${outcome.body.error_description}`;
  };

  const sendMessage = async (req: IncomingMessage, res: ServerResponse, project: string, url: URL): Promise<string> => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
    const presented = match?.[1] ?? url.searchParams.get("access_token");
    if (!presented) {
      return unauthenticated(
        res,
        "CREDENTIALS_MISSING",
        `Request is missing required authentication credential. ${AUTH_HINT}`,
      );
    }
    const lookup = (issuer as TokenIssuer).lookup(presented);
    if (lookup.state === "expired") {
      return unauthenticated(
        res,
        "ACCESS_TOKEN_EXPIRED",
        `Request had invalid authentication credentials. ${AUTH_HINT}`,
      );
    }
    if (lookup.state === "unknown") {
      return unauthenticated(
        res,
        "ACCESS_TOKEN_TYPE_UNSUPPORTED",
        `Request had invalid authentication credentials. ${AUTH_HINT}`,
      );
    }
    const { grant } = lookup;
    if (!grant.scopes.some((s) => SEND_SCOPES.includes(s))) {
      googleError(res, 403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.", [
        {
          "@type": "type.googleapis.com/google.rpc.ErrorInfo",
          reason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
          domain: "googleapis.com",
          metadata: SEND_METHOD,
        },
      ]);
      return "scope insufficient";
    }
    if (project !== grant.projectId) {
      googleError(
        res,
        403,
        "PERMISSION_DENIED",
        `Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${project}' (or it may not exist).`,
        [
          {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            reason: "IAM_PERMISSION_DENIED",
            domain: "cloudresourcemanager.googleapis.com",
            metadata: { permission: "cloudmessaging.messages.create", resource: `projects/${project}` },
          },
        ],
      );
      return "wrong project";
    }

    const payload = parseJson(await readBody(req, MAX_BODY_BYTES));
    const fault = faults.take(targetTokenOf(payload));
    if (fault) {
      const { status, message, errorCode } = FAULTS[fault.status];
      // FCM asks callers to honour Retry-After on 429 and 503 (ErrorCode reference).
      const headers: Record<string, string> =
        fault.status === 500 ? {} : { "Retry-After": String(fault.retryAfterSeconds) };
      googleError(res, fault.status, status, message, [{ "@type": FCM_ERROR, errorCode }], headers);
      return `fault ${fault.status}`;
    }

    const check = checkSendRequest(payload);
    if (!check.ok) {
      const details: unknown[] = [];
      if (check.violations.length > 0) details.push(badRequest(check.violations));
      if (check.fcmError) details.push({ "@type": FCM_ERROR, errorCode: "INVALID_ARGUMENT" });
      googleError(res, 400, "INVALID_ARGUMENT", check.message, details);
      return `invalid: ${check.message.split("\n")[0]}`;
    }
    const { target } = check;
    const isDevice = target.kind === "token" || target.kind === "fid";
    if (isDevice && devices.isUnregistered(target.value)) {
      googleError(res, 404, "NOT_FOUND", "Requested entity was not found.", [
        { "@type": FCM_ERROR, errorCode: "UNREGISTERED" },
      ]);
      return "unregistered";
    }
    if (check.validateOnly) {
      // "validate_only: Flag for testing the request without actually delivering the message."
      sendJson(res, 200, { name: `projects/${project}/messages/fake_message_id` });
      return "validated";
    }
    const at = now();
    // Message ids look like the reference's example: "0:1500415314455276%31bd1c9631bd1c96".
    const name = `projects/${project}/messages/0:${at}${String(sequence++ % 1000).padStart(3, "0")}%${randomBytes(8).toString("hex")}`;
    sent.push({ name, projectId: project, receivedAt: new Date(at).toISOString(), target, message: check.raw });
    if (isDevice) devices.deliver(target.value, name, check.message, at);
    sendJson(res, 200, { name });
    return `sent ${target.kind} ${name}`;
  };

  const control = async (req: IncomingMessage, res: ServerResponse, path: string, url: URL): Promise<boolean> => {
    const method = req.method ?? "GET";
    if (path === "/" && method === "GET") {
      sendHtml(res, 200, renderPage(sent.slice(-PAGE_LIMIT).reverse(), sent.length));
      return true;
    }
    if (path === "/__service-account.json" && method === "GET") {
      sendJson(res, 200, serviceAccount);
      return true;
    }
    if (path === "/__sent" && method === "GET") {
      const token = url.searchParams.get("token");
      sendJson(
        res,
        200,
        token === null ? sent : sent.filter((p) => p.target.kind !== "topic" && p.target.value === token),
      );
      return true;
    }
    const device = /^\/__devices\/([^/]+)$/.exec(path);
    if (device?.[1]) {
      const token = decodeURIComponent(device[1]);
      if (method === "GET") sendJson(res, 200, devices.view(token) satisfies DeviceView);
      else if (method === "DELETE") {
        devices.clear(token);
        sendNoContent(res);
      } else sendJson(res, 405, { error: "use GET or DELETE" });
      return true;
    }
    const registration = /^\/__tokens\/([^/]+)\/(unregister|register)$/.exec(path);
    if (registration?.[1] && method === "POST") {
      const token = decodeURIComponent(registration[1]);
      if (!isWellFormedRegistrationToken(token)) {
        sendJson(res, 400, { error: "not a well-formed registration token (see fcm-message.ts)" });
      } else {
        devices.setUnregistered(token, registration[2] === "unregister");
        sendJson(res, 200, { token, unregistered: registration[2] === "unregister" });
      }
      return true;
    }
    if (path === "/__access-tokens" && method === "DELETE") {
      sendJson(res, 200, { expired: (issuer as TokenIssuer).expireAll() });
      return true;
    }
    if (path === "/__access-tokens" && method === "GET") {
      sendJson(res, 200, { issued: (issuer as TokenIssuer).issued });
      return true;
    }
    if (path === "/__faults") {
      if (method === "GET") sendJson(res, 200, { fault: faults.current(url.searchParams.get("token")) });
      else if (method === "DELETE") {
        faults.clear(url.searchParams.get("token"));
        sendNoContent(res);
      } else if (method === "POST") {
        const result = faults.set(parseJson(await readBody(req, 64 * 1024)));
        sendJson(res, "error" in result ? 400 : 200, result);
      } else sendJson(res, 405, { error: "use GET, POST or DELETE" });
      return true;
    }
    if (path === "/__reset" && method === "POST") {
      sent.length = 0;
      devices.reset();
      faults.clear();
      sendNoContent(res);
      return true;
    }
    return false;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const url = new URL(req.url ?? "/", "http://localhost");
    let detail = "";
    try {
      // Some clients percent-encode the ':' of ":send".
      const path = url.pathname.replace(/%3A/gi, ":");
      if (path === "/" || path.startsWith("/__")) {
        if (!(await control(req, res, path, url))) sendJson(res, 404, { error: `no control endpoint ${path}` });
        return;
      }
      if (path === "/token" && req.method === "POST") {
        detail = await exchangeToken(req, res);
        return;
      }
      const send = SEND_PATH.exec(path);
      if (send?.[1] && req.method === "POST") {
        detail = await sendMessage(req, res, decodeURIComponent(send[1]), url);
        return;
      }
      // Google's front end answers unknown URLs (and wrong methods) with a plain 404 page.
      sendText(res, 404, `Error 404 (Not Found): ${req.method} ${path} is not served here.`);
    } catch (error) {
      if (res.headersSent) return void res.destroy();
      if (error instanceof BodyTooLargeError)
        googleError(res, 413, "INVALID_ARGUMENT", "Request payload size exceeds the limit.");
      else googleError(res, 500, "INTERNAL", "Internal error encountered.");
      detail = String(error);
    } finally {
      const ms = (performance.now() - started).toFixed(1);
      log(`fcm ${req.method} ${url.pathname} ${res.statusCode} ${ms}ms ${detail}`.trimEnd());
    }
  };

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await listen(server, opts.port ?? 0, host);
  const { port } = server.address() as AddressInfo;
  const url = `http://${host}:${port}`;
  const account = serviceAccountFor(keys, projectId, `${url}/token`, opts.keys?.clientId);
  issuer = new TokenIssuer(account, now);
  serviceAccount = account.json;

  return {
    url,
    projectId,
    serviceAccount: account.json,
    stop: () =>
      new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      }),
  };
}

/** `message.token` of a send request, for faults scoped to a device; [] when there is none. */
function targetTokenOf(payload: unknown): string[] {
  const message = isObject(payload) ? payload.message : undefined;
  return isObject(message) && typeof message.token === "string" ? [message.token] : [];
}

function googleError(
  res: ServerResponse,
  code: number,
  status: string,
  message: string,
  details: unknown[] = [],
  headers: Record<string, string> = {},
): void {
  const body: GoogleErrorBody = { error: { code, message, status } };
  if (details.length > 0) body.error.details = details;
  sendJson(res, code, body, headers);
}

function unauthenticated(res: ServerResponse, reason: string, message: string): string {
  const challenge =
    reason === "CREDENTIALS_MISSING"
      ? 'Bearer realm="https://accounts.google.com/"'
      : 'Bearer realm="https://accounts.google.com/", error="invalid_token"';
  googleError(
    res,
    401,
    "UNAUTHENTICATED",
    message,
    [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason, domain: "googleapis.com", metadata: SEND_METHOD }],
    { "WWW-Authenticate": challenge },
  );
  return reason;
}

function badRequest(violations: FieldViolation[]): unknown {
  return { "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: violations };
}

function renderPage(recent: readonly SentPush[], total: number): string {
  const rows = recent
    .map((push) => {
      const m = push.message;
      const pick = (...paths: string[][]): string => {
        for (const path of paths) {
          let value: unknown = m;
          for (const key of path) value = isObject(value) ? value[key] : undefined;
          if (typeof value === "string") return value;
        }
        return "";
      };
      const title = pick(
        ["notification", "title"],
        ["android", "notification", "title"],
        ["apns", "payload", "aps", "alert", "title"],
        ["webpush", "notification", "title"],
      );
      const body = pick(
        ["notification", "body"],
        ["android", "notification", "body"],
        ["apns", "payload", "aps", "alert", "body"],
        ["apns", "payload", "aps", "alert"],
        ["webpush", "notification", "body"],
      );
      const collapse = [
        ["tag", pick(["android", "notification", "tag"])],
        ["collapse_key", pick(["android", "collapse_key"])],
        ["apns-collapse-id", pick(["apns", "headers", "apns-collapse-id"])],
        ["web tag", pick(["webpush", "notification", "tag"])],
      ]
        .filter(([, v]) => v)
        .map(([k, v]) => `${k}=${v}`)
        .join(", ");
      const target = `${push.target.kind}: ${push.target.value.length > 40 ? `${push.target.value.slice(0, 40)}…` : push.target.value}`;
      return `<tr><td class="meta">${escapeHtml(push.receivedAt)}</td><td>${escapeHtml(target)}</td><td><b>${escapeHtml(title)}</b><br>${escapeHtml(body)}</td><td class="meta">${escapeHtml(collapse)}</td><td><pre>${escapeHtml(JSON.stringify(m.data ?? {}, null, 1))}</pre></td></tr>`;
    })
    .join("\n");
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Local pushes (${total})</title><style>${PAGE_STYLE}</style></head><body>
<h1>Pushes accepted by the local FCM stand-in (${total}${total > recent.length ? `, latest ${recent.length} shown` : ""})</h1>
${rows ? `<table><tr><th>Received</th><th>Target</th><th>Notification</th><th>Collapse</th><th>Data</th></tr>${rows}</table>` : '<p class="empty">Nothing sent yet.</p>'}
</body></html>`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = await startFcmServer({
    port: Number(process.env.FCM_PORT ?? 8026),
    host: process.env.FCM_HOST,
    projectId: process.env.FCM_PROJECT_ID,
    log: process.env.FCM_QUIET ? undefined : (line) => console.log(line),
  });
  console.log(
    `FCM stand-in on ${server.url} (project ${server.projectId}); key file at ${server.url}/__service-account.json`,
  );
  const shutdown = () => {
    void server.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}
