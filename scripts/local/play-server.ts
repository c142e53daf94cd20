import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";
import { decodeProtectedHeader, exportJWK, errors as joseErrors, jwtVerify, SignJWT } from "jose";
import {
  bearerToken,
  controlBody,
  type Delivery,
  deliver,
  deliveryReport,
  HttpError,
  isObject,
  type JsonObject,
  oneOf,
  optionalBoolean,
  optionalString,
  type ReceivedRequest,
  requiredString,
  sendContent,
  sendJson,
  startStandIn,
} from "./standin-http";

/**
 * Dev/test-only Google Play stand-in, three parts:
 * - Real-time developer notifications as a Pub/Sub push subscription with authentication delivers them:
 *   POST `{ message: { data: base64(DeveloperNotification), messageId, message_id, publishTime,
 *   publish_time, attributes? }, subscription }` with `Authorization: Bearer <OIDC ID token>` signed RS256 by
 *   a Google key, claims as the Pub/Sub push-auth page documents (iss https://accounts.google.com, aud, azp,
 *   sub, email, email_verified, iat, exp), keys at `GET /oauth2/v3/certs` in Google's JWKS shape.
 * - OAuth 2.0 for service accounts: `POST /token` with the JWT-bearer grant, the RS256 assertion checked
 *   against the generated service-account key (exposed as a service-account JSON whose token_uri is here).
 * - The Play Developer API: `GET /androidpublisher/v3/applications/{pkg}/purchases/subscriptionsv2/tokens/
 *   {token}` answering SubscriptionPurchaseV2, and the v1 `…/subscriptions/{id}/tokens/{token}:acknowledge`,
 *   with Google's JSON error envelope (401 bad credentials, 403 missing scope, 404 purchaseTokenNotFound).
 * `POST /__notify` delivers a push; `POST /__push` (same body, no target) answers the push's headers and body
 * without delivering it, for callers that post it themselves (tests inside workerd).
 */

export const GOOGLE_ISSUER = "https://accounts.google.com";
export const ANDROID_PUBLISHER_SCOPE = "https://www.googleapis.com/auth/androidpublisher";
/** The audience Google's token endpoint documents; assertions naming the local token_uri are accepted too. */
export const GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token";
const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ACCESS_TOKEN_SECONDS = 3599;
const CLOCK_SKEW_SECONDS = 300;

/** SubscriptionNotification.notificationType codes from the RTDN reference. */
export const PLAY_NOTIFICATION_TYPES = {
  SUBSCRIPTION_RECOVERED: 1,
  SUBSCRIPTION_RENEWED: 2,
  SUBSCRIPTION_CANCELED: 3,
  SUBSCRIPTION_PURCHASED: 4,
  SUBSCRIPTION_ON_HOLD: 5,
  SUBSCRIPTION_IN_GRACE_PERIOD: 6,
  SUBSCRIPTION_RESTARTED: 7,
  SUBSCRIPTION_PRICE_CHANGE_CONFIRMED: 8,
  SUBSCRIPTION_DEFERRED: 9,
  SUBSCRIPTION_PAUSED: 10,
  SUBSCRIPTION_PAUSE_SCHEDULE_CHANGED: 11,
  SUBSCRIPTION_REVOKED: 12,
  SUBSCRIPTION_EXPIRED: 13,
  SUBSCRIPTION_PENDING_PURCHASE_CANCELED: 20,
} as const;
export type PlayNotificationName = keyof typeof PLAY_NOTIFICATION_TYPES;

export const SUBSCRIPTION_STATES = [
  "SUBSCRIPTION_STATE_UNSPECIFIED",
  "SUBSCRIPTION_STATE_PENDING",
  "SUBSCRIPTION_STATE_ACTIVE",
  "SUBSCRIPTION_STATE_PAUSED",
  "SUBSCRIPTION_STATE_IN_GRACE_PERIOD",
  "SUBSCRIPTION_STATE_ON_HOLD",
  "SUBSCRIPTION_STATE_CANCELED",
  "SUBSCRIPTION_STATE_EXPIRED",
  "SUBSCRIPTION_STATE_PENDING_PURCHASE_CANCELED",
] as const;
export type SubscriptionState = (typeof SUBSCRIPTION_STATES)[number];

export type PlayPushForge = "wrong-key" | "wrong-audience" | "expired";

/** A service-account key file, as the Cloud console downloads it. */
export interface ServiceAccountKey {
  type: "service_account";
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  auth_uri: string;
  token_uri: string;
  auth_provider_x509_cert_url: string;
  client_x509_cert_url: string;
  universe_domain: string;
}

/** What `PUT /__purchases/{token}` (or setPurchase) takes; merged into the purchase already stored. */
export interface PurchaseInput {
  packageName?: string;
  productId?: string;
  basePlanId?: string;
  /** Full name or the part after SUBSCRIPTION_STATE_ (e.g. "ACTIVE"). */
  subscriptionState?: string;
  /** ISO 8601 or UNIX ms. */
  expiryTime?: string | number;
  startTime?: string | number;
  autoRenewEnabled?: boolean;
  obfuscatedExternalAccountId?: string;
  obfuscatedExternalProfileId?: string;
  latestOrderId?: string;
  acknowledgementState?: "ACKNOWLEDGEMENT_STATE_PENDING" | "ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED";
  testPurchase?: boolean;
  linkedPurchaseToken?: string;
  regionCode?: string;
}

export interface PlayNotifyInput {
  target: string;
  purchaseToken: string;
  /** A documented code or its name; "TEST" sends a testNotification instead. */
  notificationType: number | PlayNotificationName | "TEST";
  packageName?: string;
  subscriptionId?: string;
  attributes?: Record<string, string>;
  forge?: PlayPushForge;
}

export interface PlayNotifyResult {
  messageId: string;
  status: number;
  body: unknown;
  error?: string;
}

export interface PlayServerOptions {
  port: number;
  host?: string;
  packageName?: string;
  /** The audience configured on the push subscription (the Worker's RTDN endpoint URL, usually). */
  pushAudience?: string;
  /** The service account the push subscription authenticates as. */
  pushServiceAccountEmail?: string;
  /** Full Pub/Sub subscription name put in each push. */
  subscription?: string;
  /**
   * The Play Developer API caller's key (PKCS#8 PEM) and its id; generated when absent. Given, the key file can
   * be written into a Worker's settings before this server starts.
   */
  serviceAccount?: { privateKeyPem: string; keyId: string; clientEmail?: string };
  log?: (line: string) => void;
}

/** A push as Pub/Sub would send it: the headers (the bearer token among them) and the exact body. */
export interface PlayPush {
  messageId: string;
  headers: Record<string, string>;
  body: string;
}

export interface RunningPlayServer {
  url: string;
  stop(): Promise<void>;
  /** Where Google's signing keys are (`https://www.googleapis.com/oauth2/v3/certs` in production). */
  jwksUrl: string;
  issuer: typeof GOOGLE_ISSUER;
  pushAudience: string;
  pushServiceAccountEmail: string;
  /** Key file for the Play Developer API caller; its token_uri points at this server. */
  serviceAccount: ServiceAccountKey;
  /** Base the Worker puts in front of `/applications/...` (`https://androidpublisher.googleapis.com/androidpublisher/v3`). */
  androidPublisherUrl: string;
  packageName: string;
  setPurchase(purchaseToken: string, input: PurchaseInput): JsonObject;
  notify(input: PlayNotifyInput): Promise<PlayNotifyResult>;
  deliveries(): Delivery[];
  received(): ReceivedRequest[];
}

interface IssuedToken {
  scopes: Set<string>;
  expiresAt: number;
}

export async function startPlayServer(opts: PlayServerOptions): Promise<RunningPlayServer> {
  const packageName = opts.packageName ?? "app.circle.local";
  const pushAudience = opts.pushAudience ?? "http://127.0.0.1/v1/billing/google";
  const pushServiceAccountEmail = opts.pushServiceAccountEmail ?? "rtdn-push@circle-local.iam.gserviceaccount.com";
  const subscription = opts.subscription ?? "projects/circle-local/subscriptions/play-rtdn";
  const pushSubject = numericId(21);

  const googleKey = rsaKeyPair();
  const googleKid = randomBytes(20).toString("hex");
  const wrongKey = rsaKeyPair();
  const accountKey = opts.serviceAccount
    ? {
        privateKey: createPrivateKey(opts.serviceAccount.privateKeyPem),
        publicKey: createPublicKey(opts.serviceAccount.privateKeyPem),
      }
    : rsaKeyPair();
  const accountKid = opts.serviceAccount?.keyId ?? randomBytes(20).toString("hex");
  const jwk = { ...(await exportJWK(googleKey.publicKey)), kid: googleKid, alg: "RS256", use: "sig" };

  const purchases = new Map<string, JsonObject>(); // `${packageName}/${token}`
  const accessTokens = new Map<string, IssuedToken>();
  const deliveries: Delivery[] = [];
  let serviceAccount: ServiceAccountKey | undefined;

  const setPurchase = (purchaseToken: string, input: PurchaseInput): JsonObject => {
    const key = `${input.packageName ?? packageName}/${purchaseToken}`;
    const merged = mergePurchase(purchases.get(key), input);
    purchases.set(key, merged);
    return merged;
  };

  const pushToken = async (forge: PlayPushForge | undefined): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    const iat = forge === "expired" ? now - 7200 : now;
    return new SignJWT({
      aud: forge === "wrong-audience" ? "https://not-the-configured-audience.example/push" : pushAudience,
      azp: pushSubject,
      email: pushServiceAccountEmail,
      email_verified: true,
      sub: pushSubject,
    })
      .setProtectedHeader({ alg: "RS256", kid: googleKid, typ: "JWT" })
      .setIssuer(GOOGLE_ISSUER)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(forge === "wrong-key" ? wrongKey.privateKey : googleKey.privateKey);
  };

  const buildPush = async (input: Omit<PlayNotifyInput, "target">): Promise<PlayPush> => {
    const pkg = input.packageName ?? packageName;
    const eventTimeMillis = Date.now();
    const code = notificationCode(input.notificationType);
    // Field order and types as the RTDN reference shows them; int64 eventTimeMillis travels as a JSON string.
    const notification: JsonObject = {
      version: "1.0",
      packageName: pkg,
      eventTimeMillis: String(eventTimeMillis),
      ...(code === "TEST"
        ? { testNotification: { version: "1.0" } }
        : {
            subscriptionNotification: {
              version: "1.0",
              notificationType: code,
              purchaseToken: input.purchaseToken,
              ...(input.subscriptionId ? { subscriptionId: input.subscriptionId } : {}),
            },
          }),
    };
    const messageId = numericId(16);
    const publishTime = new Date(eventTimeMillis).toISOString();
    const body = {
      message: {
        ...(input.attributes ? { attributes: input.attributes } : {}),
        data: Buffer.from(JSON.stringify(notification), "utf8").toString("base64"),
        messageId,
        message_id: messageId,
        publishTime,
        publish_time: publishTime,
      },
      subscription,
    };
    return {
      messageId,
      headers: {
        "Content-Type": "application/json",
        Authorization: `Bearer ${await pushToken(input.forge)}`,
        "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
      },
      body: JSON.stringify(body),
    };
  };

  const notify = async (input: PlayNotifyInput): Promise<{ messageId: string; delivery: Delivery }> => {
    const push = await buildPush(input);
    const delivery = await deliver(input.target, push.headers, push.body);
    deliveries.push(delivery);
    return { messageId: push.messageId, delivery };
  };

  const exchangeToken = async (form: URLSearchParams): Promise<JsonObject> => {
    const account = serviceAccount;
    if (!account) throw new Error("not started");
    const grantType = form.get("grant_type");
    if (grantType !== JWT_BEARER_GRANT) {
      throw oauthError("unsupported_grant_type", `Invalid grant_type: ${grantType ?? ""}`);
    }
    const assertion = form.get("assertion");
    if (!assertion) throw oauthError("invalid_request", "Missing required parameter: assertion");
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: JsonObject;
    try {
      header = decodeProtectedHeader(assertion);
      claims = JSON.parse(Buffer.from(assertion.split(".")[1] ?? "", "base64url").toString("utf8")) as JsonObject;
    } catch {
      throw oauthError("invalid_grant", "Invalid JWT: Malformed");
    }
    if (claims.iss !== account.client_email) throw oauthError("invalid_grant", "Invalid grant: account not found");
    if (header.alg !== "RS256" || (header.kid !== undefined && header.kid !== accountKid)) {
      throw oauthError("invalid_grant", "Invalid JWT Signature.");
    }
    const audience = claims.aud;
    if (audience !== GOOGLE_TOKEN_AUDIENCE && audience !== account.token_uri) {
      throw oauthError(
        "invalid_grant",
        `Invalid JWT: Failed audience check. The expected audience is ${GOOGLE_TOKEN_AUDIENCE}.`,
      );
    }
    const now = Math.floor(Date.now() / 1000);
    const iat = typeof claims.iat === "number" ? claims.iat : Number.NaN;
    const exp = typeof claims.exp === "number" ? claims.exp : Number.NaN;
    // Google's rule: at most an hour between iat and exp, and "now" inside that window (with some skew).
    if (!(exp - iat <= 3600 && iat <= now + CLOCK_SKEW_SECONDS && exp >= now - CLOCK_SKEW_SECONDS)) {
      throw oauthError(
        "invalid_grant",
        "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
      );
    }
    try {
      await jwtVerify(assertion, accountKey.publicKey, { algorithms: ["RS256"], clockTolerance: CLOCK_SKEW_SECONDS });
    } catch (error) {
      if (error instanceof joseErrors.JWSSignatureVerificationFailed)
        throw oauthError("invalid_grant", "Invalid JWT Signature.");
      throw oauthError("invalid_grant", "Invalid JWT: Malformed");
    }
    const scopes = new Set(
      String(claims.scope ?? "")
        .split(/\s+/)
        .filter(Boolean),
    );
    if (scopes.size === 0) throw oauthError("invalid_scope", "Invalid OAuth scope or ID token audience provided.");
    const accessToken = `ya29.c.${randomBytes(48).toString("base64url")}`;
    accessTokens.set(accessToken, { scopes, expiresAt: Date.now() + ACCESS_TOKEN_SECONDS * 1000 });
    return { access_token: accessToken, expires_in: ACCESS_TOKEN_SECONDS, token_type: "Bearer" };
  };

  /** Checks the access token the way Google's front end does before the API sees the request. */
  const authorize = (token: string | undefined) => {
    const issued = token ? accessTokens.get(token) : undefined;
    if (!issued || issued.expiresAt < Date.now()) {
      throw new HttpError(
        401,
        googleError(
          401,
          "UNAUTHENTICATED",
          "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
          {
            message: "Invalid Credentials",
            domain: "global",
            reason: "authError",
            location: "Authorization",
            locationType: "header",
          },
        ),
        { "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
      );
    }
    if (!issued.scopes.has(ANDROID_PUBLISHER_SCOPE)) {
      throw new HttpError(
        403,
        googleError(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.", {
          message: "Insufficient Permission",
          domain: "global",
          reason: "insufficientPermissions",
        }),
        {
          "WWW-Authenticate": `Bearer realm="https://accounts.google.com/", error="insufficient_scope", scope="${ANDROID_PUBLISHER_SCOPE}"`,
        },
      );
    }
  };

  const purchaseOr404 = (pkg: string, token: string): JsonObject => {
    const purchase = purchases.get(`${pkg}/${token}`);
    if (!purchase) {
      throw new HttpError(
        404,
        googleError(404, "NOT_FOUND", "The purchase token was not found.", {
          message: "The purchase token was not found.",
          domain: "global",
          reason: "purchaseTokenNotFound",
          location: "token",
          locationType: "parameter",
        }),
      );
    }
    return purchase;
  };

  const standIn = await startStandIn({
    name: "play",
    port: opts.port,
    host: opts.host,
    log: opts.log,
    handle: async ({ req, res, url, method, text }) => {
      const path = url.pathname;
      if (method === "GET" && path === "/oauth2/v3/certs") {
        return sendJson(
          res,
          200,
          { keys: [jwk] },
          { "Cache-Control": "public, max-age=21600, must-revalidate, no-transform" },
        );
      }
      if (method === "GET" && path === "/.well-known/openid-configuration") {
        return sendJson(res, 200, {
          issuer: GOOGLE_ISSUER,
          jwks_uri: `${standIn.url}/oauth2/v3/certs`,
          token_endpoint: `${standIn.url}/token`,
          id_token_signing_alg_values_supported: ["RS256"],
        });
      }
      if (method === "POST" && path === "/token") {
        return sendJson(res, 200, await exchangeToken(new URLSearchParams(text)), { "Cache-Control": "no-store" });
      }

      const v2 = /^\/androidpublisher\/v3\/applications\/([^/]+)\/purchases\/subscriptionsv2\/tokens\/([^/]+)$/.exec(
        path,
      );
      if (v2 && method === "GET") {
        authorize(bearerToken(req));
        return sendJson(res, 200, purchaseOr404(decodeURIComponent(v2[1] ?? ""), decodeURIComponent(v2[2] ?? "")));
      }
      const ack =
        /^\/androidpublisher\/v3\/applications\/([^/]+)\/purchases\/subscriptions\/([^/]+)\/tokens\/([^/]+):acknowledge$/.exec(
          path,
        );
      if (ack && method === "POST") {
        authorize(bearerToken(req));
        const purchase = purchaseOr404(decodeURIComponent(ack[1] ?? ""), decodeURIComponent(ack[3] ?? ""));
        purchase.acknowledgementState = "ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED";
        // "If successful, the response body is empty."
        return sendContent(res, 200, "", "application/json; charset=UTF-8");
      }

      const control = /^\/__purchases\/([^/]+)$/.exec(path);
      if (control && method === "PUT") {
        return sendJson(
          res,
          200,
          setPurchase(decodeURIComponent(control[1] ?? ""), parsePurchaseInput(controlBody(text))),
        );
      }
      if (method === "POST" && path === "/__notify") {
        const body = controlBody(text);
        const { messageId, delivery } = await notify(parseNotifyInput(body));
        return sendJson(res, 200, deliveryReport(delivery, { messageId }));
      }
      if (method === "POST" && path === "/__push") {
        const { target: _none, ...input } = parseNotifyInput({ target: "-", ...controlBody(text) });
        return sendJson(res, 200, { ...(await buildPush(input)) });
      }
      throw new HttpError(
        404,
        googleError(404, "NOT_FOUND", `The requested URL ${path} was not found on this server.`),
      );
    },
  });

  serviceAccount = {
    type: "service_account",
    project_id: "circle-local",
    private_key_id: accountKid,
    private_key: accountKey.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    client_email: opts.serviceAccount?.clientEmail ?? "play-developer-api@circle-local.iam.gserviceaccount.com",
    client_id: numericId(21),
    auth_uri: "https://accounts.google.com/o/oauth2/auth",
    token_uri: `${standIn.url}/token`,
    auth_provider_x509_cert_url: "https://www.googleapis.com/oauth2/v1/certs",
    client_x509_cert_url:
      "https://www.googleapis.com/robot/v1/metadata/x509/play-developer-api%40circle-local.iam.gserviceaccount.com",
    universe_domain: "googleapis.com",
  };

  return {
    url: standIn.url,
    stop: standIn.close,
    jwksUrl: `${standIn.url}/oauth2/v3/certs`,
    issuer: GOOGLE_ISSUER,
    pushAudience,
    pushServiceAccountEmail,
    serviceAccount,
    androidPublisherUrl: `${standIn.url}/androidpublisher/v3`,
    packageName,
    setPurchase,
    notify: async (input) => {
      const { messageId, delivery } = await notify(input);
      const report = deliveryReport(delivery);
      return {
        messageId,
        status: delivery.status,
        body: report.body,
        ...(delivery.error ? { error: delivery.error } : {}),
      };
    },
    deliveries: () => [...deliveries],
    received: standIn.received,
  };
}

/** Merges a control update into a SubscriptionPurchaseV2, filling what Google fills for that state. */
function mergePurchase(existing: JsonObject | undefined, input: PurchaseInput): JsonObject {
  const previousItem =
    Array.isArray(existing?.lineItems) && isObject(existing.lineItems[0]) ? existing.lineItems[0] : {};
  const previousPlan = isObject(previousItem.autoRenewingPlan) ? previousItem.autoRenewingPlan : {};
  const previousOffer = isObject(previousItem.offerDetails) ? previousItem.offerDetails : {};
  const productId =
    input.productId ?? (typeof previousItem.productId === "string" ? previousItem.productId : undefined);
  if (!productId) throw new HttpError(400, { error: "productId is required for a new purchase" });

  const state =
    normalizeState(input.subscriptionState) ??
    (existing?.subscriptionState as SubscriptionState | undefined) ??
    "SUBSCRIPTION_STATE_ACTIVE";
  const ended = state === "SUBSCRIPTION_STATE_CANCELED" || state === "SUBSCRIPTION_STATE_EXPIRED";
  const now = Date.now();
  const startTime =
    timestamp(input.startTime) ?? (existing?.startTime as string | undefined) ?? new Date(now).toISOString();
  const expiryTime =
    timestamp(input.expiryTime) ??
    (previousItem.expiryTime as string | undefined) ??
    new Date(now + 30 * 86_400_000).toISOString();
  // Unchanged state keeps the stored flag; a new state implies Google's (off once canceled or expired).
  const autoRenewEnabled =
    input.autoRenewEnabled ??
    (input.subscriptionState === undefined ? previousPlan.autoRenewEnabled : undefined) ??
    !ended;
  const latestOrderId =
    input.latestOrderId ?? (existing?.latestOrderId as string | undefined) ?? `GPA.${orderDigits()}`;
  const externalIds = isObject(existing?.externalAccountIdentifiers) ? { ...existing.externalAccountIdentifiers } : {};
  if (input.obfuscatedExternalAccountId) externalIds.obfuscatedExternalAccountId = input.obfuscatedExternalAccountId;
  if (input.obfuscatedExternalProfileId) externalIds.obfuscatedExternalProfileId = input.obfuscatedExternalProfileId;

  const purchase: JsonObject = {
    kind: "androidpublisher#subscriptionPurchaseV2",
    regionCode: input.regionCode ?? (existing?.regionCode as string | undefined) ?? "US",
    lineItems: [
      {
        productId,
        expiryTime,
        autoRenewingPlan: { ...previousPlan, autoRenewEnabled: Boolean(autoRenewEnabled) },
        offerDetails: {
          ...previousOffer,
          basePlanId: input.basePlanId ?? (previousOffer.basePlanId as string | undefined) ?? "monthly",
          offerTags: [],
        },
        latestSuccessfulOrderId: latestOrderId,
      },
    ],
    startTime,
    subscriptionState: state,
    // Deprecated in favour of lineItems[].latestSuccessfulOrderId but still returned.
    latestOrderId,
    acknowledgementState:
      input.acknowledgementState ??
      (existing?.acknowledgementState as string | undefined) ??
      "ACKNOWLEDGEMENT_STATE_PENDING",
    ...(Object.keys(externalIds).length > 0 ? { externalAccountIdentifiers: externalIds } : {}),
  };
  const linked = input.linkedPurchaseToken ?? existing?.linkedPurchaseToken;
  if (typeof linked === "string") purchase.linkedPurchaseToken = linked;
  // Only license-tester purchases carry testPurchase; opt in explicitly.
  const test = input.testPurchase ?? (existing ? "testPurchase" in existing : false);
  if (test) purchase.testPurchase = {};
  if (state === "SUBSCRIPTION_STATE_CANCELED") {
    // Present "only if the subscription currently has subscription_state CANCELED or EXPIRED".
    purchase.canceledStateContext = { userInitiatedCancellation: { cancelTime: new Date(now).toISOString() } };
  } else if (state === "SUBSCRIPTION_STATE_EXPIRED" && isObject(existing?.canceledStateContext)) {
    purchase.canceledStateContext = existing.canceledStateContext;
  }
  return purchase;
}

function normalizeState(value: string | undefined): SubscriptionState | undefined {
  if (value === undefined) return undefined;
  const full = value.startsWith("SUBSCRIPTION_STATE_") ? value : `SUBSCRIPTION_STATE_${value}`;
  if (!(SUBSCRIPTION_STATES as readonly string[]).includes(full)) {
    throw new HttpError(400, { error: `unknown subscriptionState ${value}` });
  }
  return full as SubscriptionState;
}

function notificationCode(type: number | string): number | "TEST" {
  if (type === "TEST") return "TEST";
  if (typeof type === "number") {
    if (!(Object.values(PLAY_NOTIFICATION_TYPES) as number[]).includes(type)) {
      throw new HttpError(400, { error: `unknown notificationType ${type}` });
    }
    return type;
  }
  const code = PLAY_NOTIFICATION_TYPES[type as PlayNotificationName];
  if (code === undefined) throw new HttpError(400, { error: `unknown notificationType ${type}` });
  return code;
}

function parsePurchaseInput(body: JsonObject): PurchaseInput {
  const time = (key: string): string | number | undefined => {
    const value = body[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value === "string" || typeof value === "number") return value;
    throw new HttpError(400, { error: `"${key}" must be an ISO time or UNIX ms` });
  };
  return {
    packageName: optionalString(body, "packageName"),
    productId: optionalString(body, "productId"),
    basePlanId: optionalString(body, "basePlanId"),
    subscriptionState: optionalString(body, "subscriptionState"),
    expiryTime: time("expiryTime"),
    startTime: time("startTime"),
    autoRenewEnabled: optionalBoolean(body, "autoRenewEnabled"),
    obfuscatedExternalAccountId: optionalString(body, "obfuscatedExternalAccountId"),
    obfuscatedExternalProfileId: optionalString(body, "obfuscatedExternalProfileId"),
    latestOrderId: optionalString(body, "latestOrderId"),
    acknowledgementState: oneOf(body, "acknowledgementState", [
      "ACKNOWLEDGEMENT_STATE_PENDING",
      "ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED",
    ] as const),
    testPurchase: optionalBoolean(body, "testPurchase"),
    linkedPurchaseToken: optionalString(body, "linkedPurchaseToken"),
    regionCode: optionalString(body, "regionCode"),
  };
}

function parseNotifyInput(body: JsonObject): PlayNotifyInput {
  const type = body.notificationType;
  if (typeof type !== "number" && typeof type !== "string") {
    throw new HttpError(400, { error: '"notificationType" must be a code or a name' });
  }
  const attributes = body.attributes;
  if (
    attributes !== undefined &&
    (!isObject(attributes) || !Object.values(attributes).every((v) => typeof v === "string"))
  ) {
    throw new HttpError(400, { error: '"attributes" must map strings to strings' });
  }
  notificationCode(type);
  return {
    target: requiredString(body, "target"),
    purchaseToken: requiredString(body, "purchaseToken"),
    notificationType: type as PlayNotifyInput["notificationType"],
    packageName: optionalString(body, "packageName"),
    subscriptionId: optionalString(body, "subscriptionId"),
    attributes: attributes as Record<string, string> | undefined,
    forge: oneOf(body, "forge", ["wrong-key", "wrong-audience", "expired"] as const),
  };
}

/** Google's JSON error envelope for googleapis.com APIs. */
function googleError(code: number, status: string, message: string, detail?: Record<string, string>): JsonObject {
  return { error: { code, message, ...(detail ? { errors: [detail] } : {}), status } };
}

/** The OAuth token endpoint's error shape (RFC 6749 5.2), always HTTP 400 for these. */
function oauthError(error: string, description: string): HttpError {
  return new HttpError(400, { error, error_description: description });
}

function timestamp(value: string | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new HttpError(400, { error: `invalid time ${String(value)}` });
  return date.toISOString();
}

function rsaKeyPair(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync("rsa", { modulusLength: 2048 });
}

function numericId(digits: number): string {
  let id = String(1 + Math.floor(Math.random() * 9));
  while (id.length < digits) id += String(Math.floor(Math.random() * 10));
  return id;
}

/** Google Play order ids look like GPA.1234-5678-9012-34567. */
function orderDigits(): string {
  const d = numericId(17);
  return `${d.slice(0, 4)}-${d.slice(4, 8)}-${d.slice(8, 12)}-${d.slice(12)}`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = await startPlayServer({
    port: Number(process.env.PLAY_PORT ?? 8092),
    log: process.env.PLAY_QUIET ? undefined : (line) => console.log(line),
  });
  console.log(`Google Play stand-in on ${server.url}; JWKS ${server.jwksUrl}`);
  const shutdown = () => {
    void server.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}
