import { createPublicKey, generateKeyPair, type KeyObject, randomBytes, randomInt, verify } from "node:crypto";
import { promisify } from "node:util";
import { isObject, type Json } from "./standin-http";

/**
 * Google's OAuth 2.0 token endpoint for service accounts ("Using OAuth 2.0 for Server to Server
 * Applications", https://developers.google.com/identity/protocols/oauth2/service-account): a JWT assertion
 * signed RS256 with the account's private key is exchanged for a short-lived Bearer access token. Refusals
 * use the error/error_description pairs Google sends (quoted in the comments below).
 */

/** The service-account key file, as the Firebase console downloads it (minus the x509 certificate URLs). */
export interface ServiceAccountJson {
  type: "service_account";
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  token_uri: string;
  universe_domain: string;
}

export interface ServiceAccount {
  json: ServiceAccountJson;
  publicKey: KeyObject;
}

export interface AccessGrant {
  clientEmail: string;
  projectId: string;
  scopes: string[];
  expiresAt: number;
}

export type AccessTokenLookup = { state: "valid"; grant: AccessGrant } | { state: "expired" } | { state: "unknown" };

export type ExchangeOutcome =
  | { ok: true; body: { access_token: string; expires_in: number; token_type: "Bearer" } }
  | { ok: false; status: number; body: { error: string; error_description: string } };

const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
// Google answers expires_in 3599 for a fresh service-account token.
const ACCESS_TOKEN_SECONDS = 3599;
// "The expiration time of the assertion … This value has a maximum of 1 hour after the issued time."
const MAX_ASSERTION_SECONDS = 3600;
// Google tolerates some clock skew but does not document how much; five minutes either way here.
const CLOCK_SKEW_SECONDS = 300;

const refuse = (error: string, description: string, status = 400): ExchangeOutcome => ({
  ok: false,
  status,
  body: { error, error_description: description },
});

// Seen from oauth2.googleapis.com: a key that is not the account's (or was deleted) …
const BAD_SIGNATURE = refuse("invalid_grant", "Invalid JWT Signature.");
// … an assertion whose iat/exp are off, expired or longer than an hour …
const BAD_TIMES = refuse(
  "invalid_grant",
  "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values and use a clock with skew to account for clock differences between systems.",
);
// … `aud` other than the token URI …
const BAD_AUDIENCE = refuse("invalid_grant", "Invalid JWT: Failed audience check.");
// … an `iss` that names no service account …
const UNKNOWN_ACCOUNT = refuse("invalid_grant", "Invalid grant: account not found");
// … and no usable `scope` claim.
const BAD_SCOPE = refuse("invalid_scope", "Invalid OAuth scope or ID token audience provided.");

export interface ServiceAccountKeys {
  privateKeyId: string;
  privateKeyPem: string;
  publicKey: KeyObject;
}

/** A fresh RSA-2048 key pair (the slow part, done before the server knows its own URL). */
export async function generateServiceAccountKeys(): Promise<ServiceAccountKeys> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)("rsa", { modulusLength: 2048 });
  return {
    privateKeyId: randomBytes(20).toString("hex"),
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKey,
  };
}

/** Keys from a PEM private key made elsewhere (the test plan makes one before any server starts). */
export function serviceAccountKeysFrom(given: { privateKeyPem: string; privateKeyId: string }): ServiceAccountKeys {
  return {
    privateKeyId: given.privateKeyId,
    privateKeyPem: given.privateKeyPem,
    publicKey: createPublicKey(given.privateKeyPem),
  };
}

export function serviceAccountFor(
  keys: ServiceAccountKeys,
  projectId: string,
  tokenUri: string,
  clientId = `1${Array.from({ length: 20 }, () => randomInt(10)).join("")}`,
): ServiceAccount {
  return {
    publicKey: keys.publicKey,
    json: {
      type: "service_account",
      project_id: projectId,
      private_key_id: keys.privateKeyId,
      private_key: keys.privateKeyPem,
      client_email: `firebase-adminsdk-local@${projectId}.iam.gserviceaccount.com`,
      client_id: clientId,
      token_uri: tokenUri,
      universe_domain: "googleapis.com",
    },
  };
}

export class TokenIssuer {
  private readonly grants = new Map<string, AccessGrant>();
  /** Access tokens handed out since start (callers that cache them ask for few). */
  issued = 0;

  constructor(
    private readonly account: ServiceAccount,
    private readonly now: () => number,
  ) {}

  /** `grant_type` and `assertion` from the form (or JSON) body of `POST /token`. */
  exchange(params: { grant_type?: string; assertion?: string }): ExchangeOutcome {
    if (params.grant_type !== JWT_BEARER) {
      return refuse("unsupported_grant_type", `Invalid grant_type: ${params.grant_type ?? ""}`);
    }
    if (!params.assertion) return refuse("invalid_request", "Missing required parameter: assertion");
    const parts = params.assertion.split(".");
    const [headerPart, payloadPart, signaturePart] = parts;
    const header = decodeSegment(headerPart);
    const claims = decodeSegment(payloadPart);
    if (parts.length !== 3 || !header || !claims || signaturePart === undefined) {
      return refuse("invalid_request", "Invalid JWT: the assertion is not a signed compact JWT.");
    }

    const { json, publicKey } = this.account;
    if (claims.iss !== json.client_email) return UNKNOWN_ACCOUNT;
    // Google picks the key by `kid` (the private_key_id) and verifies RS256 with it.
    if (header.alg !== "RS256" || (header.kid !== undefined && header.kid !== json.private_key_id))
      return BAD_SIGNATURE;
    const signed = Buffer.from(`${headerPart}.${payloadPart}`, "utf8");
    if (!verify("sha256", signed, publicKey, Buffer.from(signaturePart, "base64url"))) return BAD_SIGNATURE;
    if (claims.aud !== json.token_uri) return BAD_AUDIENCE;

    const { iat, exp } = claims;
    const nowSeconds = Math.floor(this.now() / 1000);
    if (
      typeof iat !== "number" ||
      typeof exp !== "number" ||
      exp <= iat ||
      exp - iat > MAX_ASSERTION_SECONDS ||
      iat > nowSeconds + CLOCK_SKEW_SECONDS ||
      exp < nowSeconds - CLOCK_SKEW_SECONDS
    ) {
      return BAD_TIMES;
    }

    // "A space-delimited list of the permissions that the application requests."
    const scopes = typeof claims.scope === "string" ? claims.scope.split(" ").filter(Boolean) : [];
    if (scopes.length === 0 || !scopes.every((s) => /^https:\/\/www\.googleapis\.com\/auth\/[\w.-]+$/.test(s))) {
      return BAD_SCOPE;
    }

    this.forgetExpired();
    const token = `ya29.c.local-${randomBytes(48).toString("base64url")}`;
    this.issued += 1;
    this.grants.set(token, {
      clientEmail: json.client_email,
      projectId: json.project_id,
      scopes,
      expiresAt: this.now() + ACCESS_TOKEN_SECONDS * 1000,
    });
    return { ok: true, body: { access_token: token, expires_in: ACCESS_TOKEN_SECONDS, token_type: "Bearer" } };
  }

  lookup(token: string): AccessTokenLookup {
    const grant = this.grants.get(token);
    if (!grant) return { state: "unknown" };
    return grant.expiresAt <= this.now() ? { state: "expired" } : { state: "valid", grant };
  }

  /** Every token issued so far answers as expired from now on (tests of the caller's refresh). */
  expireAll(): number {
    const at = this.now();
    for (const grant of this.grants.values()) grant.expiresAt = Math.min(grant.expiresAt, at);
    return this.grants.size;
  }

  private forgetExpired(): void {
    // Keep expired tokens for a day so they still answer "expired" rather than "unknown".
    const horizon = this.now() - 24 * 60 * 60 * 1000;
    for (const [token, grant] of this.grants) if (grant.expiresAt < horizon) this.grants.delete(token);
  }
}

function decodeSegment(segment: string | undefined): Record<string, Json> | undefined {
  if (!segment || !/^[A-Za-z0-9_-]+$/.test(segment)) return undefined;
  try {
    const value = JSON.parse(Buffer.from(segment, "base64url").toString("utf8")) as Json;
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
