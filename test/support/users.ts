import { env } from "cloudflare:workers";
import { importJWK, SignJWT } from "jose";
import { forgetStanding } from "../../src/core/standing";
import type { EmailOutboxDoc, EmailTemplate } from "../../src/db";
import { ObjectId } from "../../src/platform/ids";
import { call } from "./api";
import { mailFor, tokenIn } from "./delivery";
import { testDeps } from "./deps";

export interface TestUser {
  id: string;
  username: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

interface AuthBody {
  user: { id: string; username: string; email: string };
  accessToken: string;
  refreshToken: string;
}

let counter = 0;
const deps = testDeps();

/** Emails the suite creates all end in this domain, so leak checks can find them in any body. */
export const TEST_EMAIL_DOMAIN = "example.test";

/**
 * A username (and with it an email) no other test file or run uses: 62 random bits, plus a per-file counter
 * so two names from one file never collide either. At most 30 characters, as usernames must be.
 */
export function uniqueName(prefix = "u"): string {
  counter += 1;
  const random = [...crypto.getRandomValues(new Uint8Array(12))].map((b) => (b % 36).toString(36)).join("");
  return `${prefix.slice(0, 6)}${random}_${counter.toString(36)}`.slice(0, 30);
}

/** What every signup must accept: the current terms and privacy-policy versions (config). */
export function signupConsents(): { termsVersion: string; privacyVersion: string } {
  const { termsVersion, privacyVersion } = deps.config.legal;
  return { termsVersion, privacyVersion };
}

/** Signs a new user up through the API. */
export async function signupUser(overrides: Record<string, unknown> = {}): Promise<TestUser> {
  const username = uniqueName();
  const body = {
    username,
    email: `${username}@${TEST_EMAIL_DOMAIN}`,
    password: "correct horse battery",
    ...signupConsents(),
    ...overrides,
  };
  const res = await call<AuthBody>("POST", "/v1/auth/signup", { body });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${res.text}`);
  return {
    id: res.body.user.id,
    username: res.body.user.username,
    email: String(body.email),
    password: String(body.password),
    accessToken: res.body.accessToken,
    refreshToken: res.body.refreshToken,
  };
}

/** `n` of T as a tuple when `n` is a literal (so `const [a, b] = await users(2)` needs no `!`), else T[]. */
export type Tuple<T, N extends number, R extends T[] = []> = number extends N
  ? T[]
  : R["length"] extends N
    ? R
    : Tuple<T, N, [T, ...R]>;

export async function users<N extends number>(n: N): Promise<Tuple<TestUser, N>> {
  return (await Promise.all(Array.from({ length: n }, () => signupUser()))) as Tuple<TestUser, N>;
}

/** A user with the given role: role changes need an admin, and the first admin is granted in the database. */
export async function userWithRole(role: "admin" | "moderator" | "creator"): Promise<TestUser> {
  const user = await signupUser();
  await deps.db.users.updateOne({ _id: new ObjectId(user.id) }, { $set: { role } });
  await forgetStanding(deps, user.id);
  const res = await call<AuthBody>("POST", "/v1/auth/login", {
    body: { login: user.username, password: user.password },
  });
  return { ...user, accessToken: res.body.accessToken, refreshToken: res.body.refreshToken };
}

/** The templates whose mails carry a link token. */
export type TokenTemplate = "verify_email" | "password_reset" | "verify_email_change";

const LINK_PATHS: Record<TokenTemplate, string> = {
  verify_email: "/verify-email",
  verify_email_change: "/verify-email",
  password_reset: "/reset-password",
};

/**
 * The token of the newest mail of this template queued for this user, read from the link in the mail as the
 * Resend stand-in received it (waiting for the send that follows the response).
 */
export async function mailedToken(userId: string, template: TokenTemplate): Promise<string> {
  const [message] = await deps.db.emailOutbox.find(
    { userId: new ObjectId(userId), template },
    { sort: { createdAt: -1, _id: -1 }, limit: 1 },
  );
  if (!message) throw new Error(`no ${template} email for ${userId}`);
  const mail = await mailFor(message.to, template, message._id.toHexString());
  return tokenIn(mail, LINK_PATHS[template]);
}

/** Every mail queued for this user with the given template, oldest first. */
export function mailsOf(userId: string, template: EmailTemplate): Promise<EmailOutboxDoc[]> {
  return deps.db.emailOutbox.find({ userId: new ObjectId(userId), template }, { sort: { createdAt: 1, _id: 1 } });
}

/** An ID token from the test OAuth provider (its JWKS is served by the global setup). */
export async function idToken(
  provider: "google" | "apple",
  claims: { sub: string; email?: string; email_verified?: boolean },
  options: { audience?: string; issuer?: string; expiresIn?: string } = {},
): Promise<string> {
  const bindings = env as unknown as Record<string, string>;
  const jwk = JSON.parse(bindings.TEST_OAUTH_PRIVATE_JWK!) as { kid: string };
  const key = await importJWK(jwk, "RS256");
  const issuer = provider === "google" ? bindings.OAUTH_GOOGLE_ISSUERS! : bindings.OAUTH_APPLE_ISSUERS!;
  const audience = provider === "google" ? bindings.OAUTH_GOOGLE_CLIENT_IDS! : bindings.OAUTH_APPLE_CLIENT_IDS!;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "RS256", kid: jwk.kid })
    .setSubject(claims.sub)
    .setIssuer(options.issuer ?? issuer)
    .setAudience(options.audience ?? audience)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "10m")
    .sign(key);
}

/**
 * Many users quickly: written to the database and given access tokens directly (no password hashing),
 * for tests that need crowds (vote storms). Identity itself is tested through signup and login.
 */
export async function crowd<N extends number>(
  n: N,
  tier: "free" | "pro" | "premium" = "free",
): Promise<Tuple<TestUser, N>> {
  const { newUserDoc } = await import("../../src/features/auth/service");
  const { signAccessToken, tokenSettingsOf } = await import("../../src/platform/tokens");
  const docs = Array.from({ length: n }, () => {
    const username = uniqueName("c");
    return newUserDoc(deps, {
      username,
      email: `${username}@${TEST_EMAIL_DOMAIN}`,
      passwordHash: null,
      displayName: username,
      tier,
    });
  });
  await deps.db.users.insertMany(docs);
  // As sign-in does: the account standing is cached with the tokens.
  const { rememberStanding } = await import("../../src/core/standing");
  const { warmRelations } = await import("../../src/features/relations/service");
  await Promise.all(docs.flatMap((d) => [rememberStanding(deps, d), warmRelations(deps, d._id.toHexString())]));
  const people = await Promise.all(
    docs.map(async (d) => ({
      id: d._id.toHexString(),
      username: d.username,
      email: d.email ?? "",
      password: "",
      refreshToken: "",
      accessToken: await signAccessToken(
        { sub: d._id.toHexString(), sid: new ObjectId().toHexString(), role: "user", tier },
        tokenSettingsOf(deps.config.auth),
        new Date(),
      ),
    })),
  );
  return people as Tuple<TestUser, N>;
}

/**
 * Shadow-bans a user the way a moderator's action does where it matters to their own requests: the flag on the
 * account and the cached standing dropped (writes read the ban from the standing).
 */
export async function shadowBan(user: TestUser): Promise<void> {
  await deps.db.users.updateOne({ _id: new ObjectId(user.id) }, { $set: { shadowBanned: true } });
  await forgetStanding(deps, user.id);
}
