import { importPKCS8, SignJWT } from "jose";
import { describeError, MAX_ERROR_MESSAGE, type ProviderError, parseObject, retryAfter } from "./provider";

/**
 * Firebase Cloud Messaging HTTP v1 (`POST {base}/v1/projects/{project}/messages:send`), authenticated the way
 * Google's libraries do it for a service account: an RS256 JWT assertion, signed with the key file's private key,
 * is exchanged at its `token_uri` for a Bearer access token (RFC 7523 JWT-bearer grant).
 *
 * Access tokens are cached in isolate memory until five minutes before they expire (Google issues them for an
 * hour), one exchange at a time per account: an isolate serving many pushes signs one assertion an hour, and
 * no Redis round trip is spent on a token. A send refused as unauthenticated drops the cached token and is
 * retried once with a fresh one.
 */

export interface ServiceAccount {
  projectId: string;
  privateKeyId: string;
  privateKey: string;
  clientEmail: string;
  tokenUri: string;
}

export interface FcmSettings {
  apiUrl: string;
  account: ServiceAccount;
  timeoutMs: number;
}

/** A `Message` of the HTTP v1 API (snake_case field names, every data value a string). */
export type FcmMessage = Record<string, unknown> & { token: string };

export type PushOutcome =
  | { kind: "sent"; name: string }
  /** The token will never work again (app uninstalled, token malformed, another project's): forget it. */
  | { kind: "bad_token"; error: ProviderError }
  | { kind: "retry"; error: ProviderError; retryAfterSeconds: number | null }
  | { kind: "rejected"; error: ProviderError };

const SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ASSERTION_SECONDS = 3_600;
const REFRESH_MARGIN_MS = 5 * 60_000;
const FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";

interface CachedToken {
  token: string;
  expiresAt: number;
}

const tokens = new Map<string, CachedToken>();
const exchanges = new Map<string, Promise<CachedToken>>();

const cacheKey = (a: ServiceAccount) => `${a.clientEmail}|${a.privateKeyId}|${a.tokenUri}`;

class TokenExchangeError extends Error {
  constructor(readonly error: ProviderError) {
    super(error.message);
  }
}

/** A valid access token for the account, from the isolate's cache or a fresh exchange. */
export async function accessToken(settings: FcmSettings, now = Date.now()): Promise<string> {
  const key = cacheKey(settings.account);
  const cached = tokens.get(key);
  if (cached && cached.expiresAt - REFRESH_MARGIN_MS > now) return cached.token;
  let pending = exchanges.get(key);
  if (!pending) {
    pending = exchangeAssertion(settings).finally(() => exchanges.delete(key));
    exchanges.set(key, pending);
  }
  return (await pending).token;
}

/** Forgets the cached token (FCM said it is no longer valid). */
function dropToken(account: ServiceAccount, token: string): void {
  const key = cacheKey(account);
  if (tokens.get(key)?.token === token) tokens.delete(key);
}

async function exchangeAssertion(settings: FcmSettings): Promise<CachedToken> {
  const { account } = settings;
  const issuedAt = Math.floor(Date.now() / 1000);
  const assertion = await new SignJWT({ scope: SCOPE })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: account.privateKeyId })
    .setIssuer(account.clientEmail)
    .setAudience(account.tokenUri)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + ASSERTION_SECONDS)
    .sign(await importPKCS8(account.privateKey, "RS256"));
  let response: Response;
  try {
    response = await fetch(account.tokenUri, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion }).toString(),
      signal: AbortSignal.timeout(settings.timeoutMs),
    });
  } catch (error) {
    throw new TokenExchangeError({ status: 0, name: "network_error", message: describeError(error) });
  }
  const body = parseObject(await response.text());
  if (!response.ok || typeof body?.access_token !== "string") {
    throw new TokenExchangeError({
      status: response.status,
      name: typeof body?.error === "string" ? `oauth_${body.error}` : "oauth_error",
      message: typeof body?.error_description === "string" ? body.error_description : "token exchange failed",
    });
  }
  const expiresIn = typeof body.expires_in === "number" ? body.expires_in : 3_599;
  const cached = { token: body.access_token, expiresAt: Date.now() + expiresIn * 1000 };
  tokens.set(cacheKey(account), cached);
  return cached;
}

/** Sends one message to one registration token. */
export async function sendPush(settings: FcmSettings, message: FcmMessage): Promise<PushOutcome> {
  for (let attempt = 0; ; attempt++) {
    let token: string;
    try {
      token = await accessToken(settings);
    } catch (error) {
      const problem =
        error instanceof TokenExchangeError
          ? error.error
          : { status: 0, name: "oauth_error", message: describeError(error) };
      return { kind: "retry", error: problem, retryAfterSeconds: null };
    }
    const outcome = await post(settings, token, message);
    if (outcome.kind === "unauthenticated") {
      dropToken(settings.account, token);
      if (attempt === 0) continue;
      return { kind: "retry", error: outcome.error, retryAfterSeconds: null };
    }
    return outcome;
  }
}

async function post(
  settings: FcmSettings,
  token: string,
  message: FcmMessage,
): Promise<PushOutcome | { kind: "unauthenticated"; error: ProviderError }> {
  const project = encodeURIComponent(settings.account.projectId);
  let response: Response;
  try {
    response = await fetch(`${settings.apiUrl}/v1/projects/${project}/messages:send`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ message }),
      signal: AbortSignal.timeout(settings.timeoutMs),
    });
  } catch (error) {
    return {
      kind: "retry",
      error: { status: 0, name: "network_error", message: describeError(error) },
      retryAfterSeconds: null,
    };
  }
  const body = parseObject(await response.text());
  if (response.ok && typeof body?.name === "string") return { kind: "sent", name: body.name };
  const googleError = (body?.error ?? {}) as { status?: unknown; message?: unknown; details?: unknown };
  const details = Array.isArray(googleError.details) ? (googleError.details as Record<string, unknown>[]) : [];
  const errorCode = details.find((d) => d["@type"] === FCM_ERROR)?.errorCode;
  const error: ProviderError = {
    status: response.status,
    name:
      typeof errorCode === "string"
        ? errorCode
        : typeof googleError.status === "string"
          ? googleError.status
          : "http_error",
    message: (typeof googleError.message === "string" ? googleError.message : "").slice(0, MAX_ERROR_MESSAGE),
  };
  if (response.status === 401) return { kind: "unauthenticated", error };
  if (isBadToken(response.status, errorCode, details)) return { kind: "bad_token", error };
  // FCM's ErrorCode reference: retry UNAVAILABLE, INTERNAL and QUOTA_EXCEEDED with backoff (honouring Retry-After).
  if (response.status === 429 || response.status >= 500) {
    return { kind: "retry", error, retryAfterSeconds: retryAfter(response.headers.get("retry-after")) };
  }
  return { kind: "rejected", error };
}

/**
 * UNREGISTERED (404): the app instance is gone. SENDER_ID_MISMATCH (403): the token belongs to another project.
 * INVALID_ARGUMENT with no field of ours named: the registration token itself is malformed (FCM sends a
 * google.rpc.BadRequest naming the field when our payload is at fault, and then the token is fine).
 */
function isBadToken(status: number, errorCode: unknown, details: Record<string, unknown>[]): boolean {
  if (errorCode === "UNREGISTERED" || errorCode === "SENDER_ID_MISMATCH") return true;
  if (status !== 400 || errorCode !== "INVALID_ARGUMENT") return false;
  const violations = details
    .filter((d) => d["@type"] === BAD_REQUEST)
    .flatMap((d) => (Array.isArray(d.fieldViolations) ? (d.fieldViolations as { field?: unknown }[]) : []));
  return violations.every((v) => v.field === "message.token");
}
