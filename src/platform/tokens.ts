import { createRemoteJWKSet, errors, jwtVerify, SignJWT } from "jose";

/**
 * Access tokens: HS256 JWTs (algorithm pinned on verify, so `alg: none` or a swapped algorithm is refused),
 * with issuer, audience and expiry checked. Claims: sub (user id), sid (session id), role, tier.
 */
const ALGORITHM = "HS256";
const encoder = new TextEncoder();

export interface AccessClaims {
  sub: string;
  sid: string;
  role: string;
  tier: string;
}

export interface TokenSettings {
  secret: string;
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

/** Token settings from the auth part of the configuration (structurally, so this module imports no config). */
export function tokenSettingsOf(auth: {
  jwtSecret: string;
  issuer: string;
  audience: string;
  accessTokenTtlSeconds: number;
}): TokenSettings {
  return {
    secret: auth.jwtSecret,
    issuer: auth.issuer,
    audience: auth.audience,
    ttlSeconds: auth.accessTokenTtlSeconds,
  };
}

export async function signAccessToken(claims: AccessClaims, settings: TokenSettings, now: Date): Promise<string> {
  const iat = Math.floor(now.getTime() / 1000);
  return new SignJWT({ sid: claims.sid, role: claims.role, tier: claims.tier })
    .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
    .setSubject(claims.sub)
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + settings.ttlSeconds)
    .setJti(crypto.randomUUID())
    .sign(encoder.encode(settings.secret));
}

/** Returns the claims of a valid token, or null for anything else (bad signature, expired, wrong aud/iss). */
/** Verified claims, with `iat` (seconds), which a ban's cut-off is compared with. */
export type VerifiedAccessClaims = AccessClaims & { iat: number };

export async function verifyAccessToken(token: string, settings: TokenSettings): Promise<VerifiedAccessClaims | null> {
  try {
    const { payload } = await jwtVerify(token, encoder.encode(settings.secret), {
      algorithms: [ALGORITHM],
      issuer: settings.issuer,
      audience: settings.audience,
      requiredClaims: ["sub", "exp", "iat"],
    });
    const { sub, sid, role, tier, iat } = payload as Record<string, unknown>;
    if (typeof sub !== "string" || typeof sid !== "string" || typeof role !== "string" || typeof tier !== "string") {
      return null;
    }
    if (typeof iat !== "number") return null;
    return { sub, sid, role, tier, iat };
  } catch (error) {
    if (error instanceof errors.JOSEError) return null;
    throw error;
  }
}

const jwksCache = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

export interface IdTokenIdentity {
  subject: string;
  email: string | null;
  emailVerified: boolean;
}

/**
 * Verifies an OAuth provider's ID token (Google, Apple) against the provider's JWKS: RS256/ES256 only,
 * issuer and audience (our client id) checked. Returns null when the token is not valid.
 */
export async function verifyIdToken(
  idToken: string,
  provider: { jwksUrl: string; issuers: string[]; audiences: string[] },
): Promise<IdTokenIdentity | null> {
  let jwks = jwksCache.get(provider.jwksUrl);
  if (!jwks) {
    jwks = createRemoteJWKSet(new URL(provider.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    jwksCache.set(provider.jwksUrl, jwks);
  }
  try {
    const { payload } = await jwtVerify(idToken, jwks, {
      algorithms: ["RS256", "ES256"],
      issuer: provider.issuers,
      audience: provider.audiences,
      requiredClaims: ["sub", "exp"],
    });
    const email = typeof payload.email === "string" ? payload.email.toLowerCase() : null;
    const verified = payload.email_verified === true || payload.email_verified === "true";
    return { subject: String(payload.sub), email, emailVerified: verified };
  } catch (error) {
    if (error instanceof errors.JOSEError) return null;
    throw error;
  }
}
