import { env } from "cloudflare:workers";
import { base64url, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { Me } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { expectProblem, fieldPaths } from "../support/problems";
import { idToken, signupUser, TEST_EMAIL_DOMAIN, uniqueName } from "../support/users";

const deps = testDeps();

interface AuthResult {
  user: Me;
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

type Provider = "google" | "apple";

const signIn = (provider: string, token: string) =>
  call<AuthResult>("POST", `/v1/auth/oauth/${provider}`, { body: { idToken: token } });
const link = (provider: string, token: string, accessToken: string) =>
  call("POST", `/v1/me/oauth/${provider}`, { body: { idToken: token }, token: accessToken });
const newEmail = () => `${uniqueName("oa")}@${TEST_EMAIL_DOMAIN}`;

/** A token like the provider's, but signed with a key the provider never published (same kid). */
async function signedByStranger(provider: Provider, sub: string): Promise<string> {
  const real = JSON.parse(env.TEST_OAUTH_PRIVATE_JWK!) as { kid: string };
  const { privateKey } = await generateKeyPair("RS256");
  return new SignJWT({ email: newEmail(), email_verified: true })
    .setProtectedHeader({ alg: "RS256", kid: real.kid })
    .setSubject(sub)
    .setIssuer((provider === "google" ? env.OAUTH_GOOGLE_ISSUERS : env.OAUTH_APPLE_ISSUERS)!)
    .setAudience((provider === "google" ? env.OAUTH_GOOGLE_CLIENT_IDS : env.OAUTH_APPLE_CLIENT_IDS)!)
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(privateKey);
}

describe.each(["google", "apple"] as const)("POST /v1/auth/oauth/%s", (provider) => {
  it("creates an account for a new identity, then signs the same identity into the same account", async () => {
    const sub = crypto.randomUUID();
    const email = newEmail();
    const first = await signIn(
      provider,
      await idToken(provider, { sub, email: email.toUpperCase(), email_verified: true }),
    );
    expect(first.status, first.text).toBe(200);
    expect(first.body.user).toMatchObject({
      email,
      emailVerified: true,
      hasPassword: false,
      oauthProviders: [provider],
      role: "user",
      tier: "free",
    });
    expect(first.body.user.username).toMatch(/^[A-Za-z0-9_]{3,30}$/);
    expect(first.body.expiresIn).toBe(900);
    expect((await call("GET", "/v1/me", { token: first.body.accessToken })).status).toBe(200);
    expect((await call("POST", "/v1/auth/refresh", { body: { refreshToken: first.body.refreshToken } })).status).toBe(
      200,
    );

    const again = await signIn(provider, await idToken(provider, { sub, email }));
    expect(again.status).toBe(200);
    expect(again.body.user.id).toBe(first.body.user.id);
    expect(await deps.db.users.find({ "oauthProviders.providerId": sub })).toHaveLength(1);
    // A password login is impossible for an account without a password.
    const pw = await call("POST", "/v1/auth/login", { body: { login: email, password: "anything at all" } });
    expectProblem(pw, 401, "unauthorized");
  });

  it("creates an account for an identity that shares no email", async () => {
    const res = await signIn(provider, await idToken(provider, { sub: crypto.randomUUID() }));
    expect(res.status, res.text).toBe(200);
    expect(res.body.user).toMatchObject({ email: null, emailVerified: false, oauthProviders: [provider] });
  });

  it.each([
    ["a wrong audience", { audience: "someone-elses-app" }],
    ["a wrong issuer", { issuer: "https://accounts.evil.test" }],
    ["an expired token", { expiresIn: "-1m" }],
  ])("refuses %s with 401 and creates nothing", async (_name, options) => {
    const sub = crypto.randomUUID();
    const res = await signIn(provider, await idToken(provider, { sub, email: newEmail() }, options));
    expectProblem(res, 401, "unauthorized");
    expect(await deps.db.users.findOne({ "oauthProviders.providerId": sub })).toBeNull();
  });

  it("refuses a tampered token and one signed with a key the provider never published", async () => {
    const sub = crypto.randomUUID();
    const [header, payload, signature] = (await idToken(provider, { sub, email: newEmail() })).split(".");
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload!))) as Record<string, unknown>;
    const tampered = `${header}.${base64url.encode(JSON.stringify({ ...claims, sub: "victim" }))}.${signature}`;
    expectProblem(await signIn(provider, tampered), 401, "unauthorized");
    expectProblem(await signIn(provider, await signedByStranger(provider, sub)), 401, "unauthorized");
    expectProblem(await signIn(provider, "not.a.jwt"), 401, "unauthorized");
    expect(await deps.db.users.findOne({ "oauthProviders.providerId": { $in: [sub, "victim"] } })).toBeNull();
  });

  it("refuses a token issued for the other provider", async () => {
    const otherProvider: Provider = provider === "google" ? "apple" : "google";
    const res = await signIn(provider, await idToken(otherProvider, { sub: crypto.randomUUID(), email: newEmail() }));
    expectProblem(res, 401, "unauthorized");
  });

  it("answers 409 when the email belongs to an existing account, without linking or creating anything", async () => {
    const owner = await signupUser();
    const sub = crypto.randomUUID();
    const res = await signIn(provider, await idToken(provider, { sub, email: owner.email, email_verified: true }));
    expectProblem(res, 409, "conflict");
    expect(res.text).not.toContain(owner.email);
    expect(await deps.db.users.findOne({ "oauthProviders.providerId": sub })).toBeNull();
    expect((await deps.db.users.findOne({ _id: new ObjectId(owner.id) }))?.oauthProviders).toEqual([]);
  });

  it("links an identity to the signed-in account (204); signing in with it then opens that account", async () => {
    const owner = await signupUser();
    const sub = crypto.randomUUID();
    const res = await link(provider, await idToken(provider, { sub, email: owner.email }), owner.accessToken);
    expect(res.status, res.text).toBe(204);
    expect((await call<Me>("GET", "/v1/me", { token: owner.accessToken })).body.oauthProviders).toEqual([provider]);
    const signedIn = await signIn(provider, await idToken(provider, { sub, email: owner.email }));
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.user.id).toBe(owner.id);
    // Linking the same identity again is a no-op; a second identity of the same provider is refused.
    expect((await link(provider, await idToken(provider, { sub }), owner.accessToken)).status).toBe(204);
    const second = await link(provider, await idToken(provider, { sub: crypto.randomUUID() }), owner.accessToken);
    expectProblem(second, 409, "conflict");
    expect(await deps.db.auditLogs.findOne({ userId: new ObjectId(owner.id), action: "oauth_linked" })).not.toBeNull();
  });

  it("refuses to link an identity that belongs to another account (409) and leaves both accounts as they were", async () => {
    const sub = crypto.randomUUID();
    const holder = await signIn(provider, await idToken(provider, { sub, email: newEmail() }));
    expect(holder.status).toBe(200);
    const intruder = await signupUser();
    const res = await link(provider, await idToken(provider, { sub }), intruder.accessToken);
    expectProblem(res, 409, "conflict");
    expect((await deps.db.users.findOne({ _id: new ObjectId(intruder.id) }))?.oauthProviders).toEqual([]);
    expect((await signIn(provider, await idToken(provider, { sub }))).body.user.id).toBe(holder.body.user.id);
  });

  it("refuses to link with an invalid token (401) or without being signed in (401)", async () => {
    const owner = await signupUser();
    const bad = await idToken(provider, { sub: crypto.randomUUID() }, { audience: "someone-elses-app" });
    expectProblem(await link(provider, bad, owner.accessToken), 401, "unauthorized");
    const good = await idToken(provider, { sub: crypto.randomUUID() });
    expectProblem(await call("POST", `/v1/me/oauth/${provider}`, { body: { idToken: good } }), 401, "unauthorized");
  });
});

describe("unknown OAuth providers", () => {
  it("answers 400 naming the provider, for sign-in and for linking", async () => {
    const token = await idToken("google", { sub: crypto.randomUUID() });
    const res = await signIn("facebook", token);
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toContain("provider");
    const owner = await signupUser();
    expectProblem(await link("facebook", token, owner.accessToken), 400, "validation_failed");
  });

  it("answers 400 for a missing idToken", async () => {
    const res = await call("POST", "/v1/auth/oauth/google", { body: {} });
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toContain("idToken");
  });
});
