import { createRemoteJWKSet, errors, importPKCS8, jwtVerify, SignJWT } from "jose";
import { z } from "zod";
import { ProviderUnavailableError, providerFetch, providerJson } from "./provider";

/**
 * Google Play on the wire. Real-time developer notifications arrive as Pub/Sub push requests whose
 * `Authorization: Bearer` is a Google-signed OIDC token (RS256, keys from Google's JWKS) naming the push
 * subscription's audience and service account; the body is `{ message: { data: base64(DeveloperNotification),
 * messageId, publishTime }, subscription }`. A notification says only that something changed: the purchase
 * itself comes from the Play Developer API (`purchases.subscriptionsv2.get`), called with an OAuth token
 * obtained for a service account (JWT-bearer grant, RS256 assertion), and a new purchase is acknowledged with
 * `purchases.subscriptions.acknowledge`.
 */

export const ANDROID_PUBLISHER_SCOPE = "https://www.googleapis.com/auth/androidpublisher";
const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";

export class PushAuthError extends Error {
  override name = "PushAuthError";
}

const jwksCache = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

export interface PushAuthSettings {
  jwksUrl: string;
  issuers: string[];
  audience: string;
  serviceAccountEmail: string;
}

/** Verifies a Pub/Sub push's bearer token: Google's signature (RS256 only), issuer, audience, expiry and sender. */
export async function verifyPushToken(authorization: string | undefined, settings: PushAuthSettings): Promise<void> {
  const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "")?.[1];
  if (!token) throw new PushAuthError("a Pub/Sub push carries a bearer token");
  let jwks = jwksCache.get(settings.jwksUrl);
  if (!jwks) {
    jwks = createRemoteJWKSet(new URL(settings.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    jwksCache.set(settings.jwksUrl, jwks);
  }
  let claims: Record<string, unknown>;
  try {
    ({ payload: claims } = await jwtVerify(token, jwks, {
      algorithms: ["RS256"],
      issuer: settings.issuers,
      audience: settings.audience,
      requiredClaims: ["exp", "iat", "email"],
    }));
  } catch (error) {
    if (error instanceof errors.JOSEError && !(error instanceof errors.JWKSTimeout)) {
      throw new PushAuthError(`the push token is not valid (${error.code})`);
    }
    // A timeout or a network failure fetching Google's keys: nothing is known about the token yet.
    throw new ProviderUnavailableError("google_oauth", "Google's signing keys could not be read", { cause: error });
  }
  if (claims.email !== settings.serviceAccountEmail || claims.email_verified !== true) {
    throw new PushAuthError("the push token names another sender");
  }
}

export const PubSubPush = z.object({
  message: z.object({
    data: z.string().max(64 * 1024),
    messageId: z.string().min(1).max(128),
    publishTime: z.string().optional(),
    attributes: z.record(z.string(), z.string()).optional(),
  }),
  subscription: z.string().max(512).optional(),
});
export type PubSubPush = z.infer<typeof PubSubPush>;

/** DeveloperNotification (RTDN reference), the parts the API reads. int64 fields travel as strings. */
export const DeveloperNotification = z.object({
  version: z.string().optional(),
  packageName: z.string().min(1),
  eventTimeMillis: z.union([z.string().regex(/^\d{1,16}$/), z.number().int().nonnegative()]).transform(Number),
  subscriptionNotification: z
    .object({
      version: z.string().optional(),
      notificationType: z.number().int(),
      purchaseToken: z.string().min(1).max(4096),
      subscriptionId: z.string().optional(),
    })
    .optional(),
  voidedPurchaseNotification: z
    .object({ purchaseToken: z.string().min(1).max(4096), orderId: z.string().optional(), productType: z.number() })
    .optional(),
  testNotification: z.object({ version: z.string().optional() }).optional(),
  oneTimeProductNotification: z.unknown().optional(),
});
export type DeveloperNotification = z.infer<typeof DeveloperNotification>;

/** The notification inside a push's `message.data`, or null when it is not one. */
export function decodeDeveloperNotification(data: string): DeveloperNotification | null {
  let text: string;
  try {
    const binary = atob(data);
    text = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
  try {
    const parsed = DeveloperNotification.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** RTDN SubscriptionNotification.notificationType codes. */
export const PLAY_NOTIFICATION_NAMES: Record<number, string> = {
  1: "SUBSCRIPTION_RECOVERED",
  2: "SUBSCRIPTION_RENEWED",
  3: "SUBSCRIPTION_CANCELED",
  4: "SUBSCRIPTION_PURCHASED",
  5: "SUBSCRIPTION_ON_HOLD",
  6: "SUBSCRIPTION_IN_GRACE_PERIOD",
  7: "SUBSCRIPTION_RESTARTED",
  8: "SUBSCRIPTION_PRICE_CHANGE_CONFIRMED",
  9: "SUBSCRIPTION_DEFERRED",
  10: "SUBSCRIPTION_PAUSED",
  11: "SUBSCRIPTION_PAUSE_SCHEDULE_CHANGED",
  12: "SUBSCRIPTION_REVOKED",
  13: "SUBSCRIPTION_EXPIRED",
  19: "SUBSCRIPTION_PRICE_CHANGE_UPDATED",
  20: "SUBSCRIPTION_PENDING_PURCHASE_CANCELED",
};

/** SubscriptionPurchaseV2, the fields the API reads. */
export const SubscriptionPurchaseV2 = z.object({
  subscriptionState: z.string(),
  acknowledgementState: z.string().optional(),
  startTime: z.string().optional(),
  linkedPurchaseToken: z.string().optional(),
  testPurchase: z.object({}).passthrough().optional(),
  externalAccountIdentifiers: z
    .object({ obfuscatedExternalAccountId: z.string().optional(), obfuscatedExternalProfileId: z.string().optional() })
    .passthrough()
    .optional(),
  lineItems: z
    .array(
      z
        .object({
          productId: z.string(),
          expiryTime: z.string().optional(),
          autoRenewingPlan: z.object({ autoRenewEnabled: z.boolean().optional() }).passthrough().optional(),
        })
        .passthrough(),
    )
    .min(1),
});
export type SubscriptionPurchaseV2 = z.infer<typeof SubscriptionPurchaseV2>;

/** A service-account key file (the fields used), as the Cloud console downloads it. */
export interface ServiceAccountKey {
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri: string;
}

export interface PlayApiSettings {
  apiUrl: string;
  serviceAccount: ServiceAccountKey;
  timeoutMs: number;
}

/** OAuth access tokens per service account, reused until shortly before they expire (per isolate). */
const accessTokens = new Map<string, { token: string; expiresAt: number }>();
const TOKEN_EARLY_REFRESH_MS = 60_000;

async function accessToken(settings: PlayApiSettings): Promise<string> {
  const account = settings.serviceAccount;
  const cacheKey = `${account.client_email}|${account.token_uri}`;
  const cached = accessTokens.get(cacheKey);
  if (cached && cached.expiresAt - TOKEN_EARLY_REFRESH_MS > Date.now()) return cached.token;
  const key = await importPKCS8(account.private_key, "RS256");
  const now = Math.floor(Date.now() / 1000);
  const assertion = await new SignJWT({ scope: ANDROID_PUBLISHER_SCOPE })
    .setProtectedHeader({
      alg: "RS256",
      typ: "JWT",
      ...(account.private_key_id ? { kid: account.private_key_id } : {}),
    })
    .setIssuer(account.client_email)
    .setAudience(account.token_uri)
    .setIssuedAt(now)
    .setExpirationTime(now + 3_600)
    .sign(key);
  const response = await providerFetch(
    "google_oauth",
    account.token_uri,
    {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion }).toString(),
    },
    settings.timeoutMs,
  );
  const body = (await providerJson("google_oauth", response)) as { access_token?: unknown; expires_in?: unknown };
  if (!response.ok || typeof body.access_token !== "string") {
    throw new ProviderUnavailableError("google_oauth", `token exchange answered ${response.status}`);
  }
  const expiresIn = typeof body.expires_in === "number" ? body.expires_in : 3_600;
  accessTokens.set(cacheKey, { token: body.access_token, expiresAt: Date.now() + expiresIn * 1000 });
  return body.access_token;
}

async function playCall(settings: PlayApiSettings, path: string, init: RequestInit): Promise<Response> {
  const token = await accessToken(settings);
  const response = await providerFetch(
    "google_play",
    `${settings.apiUrl}${path}`,
    { ...init, headers: { ...init.headers, authorization: `Bearer ${token}`, accept: "application/json" } },
    settings.timeoutMs,
  );
  if (response.status === 401)
    accessTokens.delete(`${settings.serviceAccount.client_email}|${settings.serviceAccount.token_uri}`);
  return response;
}

const segment = (value: string) => encodeURIComponent(value);

/** `purchases.subscriptionsv2.get`; null when Google does not know the token (404). */
export async function getSubscriptionPurchase(
  settings: PlayApiSettings,
  packageName: string,
  purchaseToken: string,
): Promise<SubscriptionPurchaseV2 | null> {
  const response = await playCall(
    settings,
    `/applications/${segment(packageName)}/purchases/subscriptionsv2/tokens/${segment(purchaseToken)}`,
    { method: "GET" },
  );
  // Unknown, long expired (60 days after the end) or malformed tokens: nothing to read, nothing to retry.
  if (response.status === 400 || response.status === 404 || response.status === 410) return null;
  const body = await providerJson("google_play", response);
  if (!response.ok)
    throw new ProviderUnavailableError("google_play", `subscriptionsv2.get answered ${response.status}`);
  const parsed = SubscriptionPurchaseV2.safeParse(body);
  if (!parsed.success)
    throw new ProviderUnavailableError("google_play", "subscriptionsv2.get answered an unknown shape");
  return parsed.data;
}

/**
 * `purchases.subscriptions.acknowledge` (empty answer on success). Google's refusal of this purchase (a 4xx
 * other than our credentials or a rate limit: already acknowledged, no longer acknowledgeable) is answered as
 * `{ acknowledged: false, status }`, since asking again would not change it; anything worth retrying throws.
 */
export async function acknowledgeSubscription(
  settings: PlayApiSettings,
  packageName: string,
  productId: string,
  purchaseToken: string,
): Promise<{ acknowledged: boolean; status: number }> {
  const response = await playCall(
    settings,
    `/applications/${segment(packageName)}/purchases/subscriptions/${segment(productId)}/tokens/${segment(purchaseToken)}:acknowledge`,
    { method: "POST", headers: { "content-type": "application/json" }, body: "{}" },
  );
  await response.arrayBuffer();
  if (response.ok) return { acknowledged: true, status: response.status };
  const retryable = response.status >= 500 || [401, 403, 408, 429].includes(response.status);
  if (retryable) throw new ProviderUnavailableError("google_play", `acknowledge answered ${response.status}`);
  return { acknowledged: false, status: response.status };
}
