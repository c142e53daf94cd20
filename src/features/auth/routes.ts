import { createRoute } from "@hono/zod-openapi";
import { requireAuth, viewerOf } from "../../http/auth";
import { requestMetaOf } from "../../http/context";
import { json, problems, router } from "../../http/openapi";
import { IdParam } from "../../http/pagination";
import {
  AuthResult,
  ForgotBody,
  LoginBody,
  OAuthBody,
  OAuthProviderParam,
  RefreshBody,
  ResetBody,
  SessionList,
  SignupBody,
  TokenPair,
  VerifyEmailBody,
} from "./schema";
import {
  forgotPassword,
  linkOAuth,
  listSessions,
  login,
  logout,
  oauthSignIn,
  refresh,
  resetPassword,
  revokeSession,
  signup,
  verifyEmail,
} from "./service";

const body = <T>(schema: T) => ({ body: { content: { "application/json": { schema } }, required: true } });
const tags = ["auth"];
const bearer = [{ bearer: [] }];

const signupRoute = createRoute({
  method: "post",
  path: "/v1/auth/signup",
  tags,
  summary: "Create an account",
  description:
    "Usernames are unique case-insensitively. A valid `referralCode` records who referred the new user. " +
    "Limited per IP. A verification email is queued.",
  request: body(SignupBody),
  responses: { 201: json(AuthResult, "Account created and signed in"), ...problems(400, 409, 429, 503) },
});

const loginRoute = createRoute({
  method: "post",
  path: "/v1/auth/login",
  tags,
  summary: "Sign in with username or email",
  description: "Wrong credentials give 401 without saying which part was wrong. Limited per IP and per account.",
  request: body(LoginBody),
  responses: { 200: json(AuthResult, "Signed in"), ...problems(400, 401, 429, 503) },
});

const refreshRoute = createRoute({
  method: "post",
  path: "/v1/auth/refresh",
  tags,
  summary: "Rotate the refresh token",
  description: "Every refresh returns a new refresh token. Presenting a rotated token revokes the whole session (401).",
  request: body(RefreshBody),
  responses: { 200: json(TokenPair, "New token pair"), ...problems(400, 401, 429, 503) },
});

const logoutRoute = createRoute({
  method: "post",
  path: "/v1/auth/logout",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "Revoke the current session",
  responses: { 204: { description: "Signed out" }, ...problems(401, 429, 503) },
});

const sessionsRoute = createRoute({
  method: "get",
  path: "/v1/auth/sessions",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "The caller's live sessions",
  responses: { 200: json(SessionList, "Sessions, most recently used first"), ...problems(401, 429, 503) },
});

const revokeSessionRoute = createRoute({
  method: "delete",
  path: "/v1/auth/sessions/{id}",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "Revoke one of the caller's sessions",
  request: { params: IdParam },
  responses: { 204: { description: "Revoked" }, ...problems(400, 401, 404, 429, 503) },
});

const forgotRoute = createRoute({
  method: "post",
  path: "/v1/auth/password/forgot",
  tags,
  summary: "Email a password-reset link",
  description: "Always 202, whether or not the email has an account. Limited per email.",
  request: body(ForgotBody),
  responses: { 202: { description: "Accepted" }, ...problems(400, 429, 503) },
});

const resetRoute = createRoute({
  method: "post",
  path: "/v1/auth/password/reset",
  tags,
  summary: "Set a new password with a reset token",
  description: "Tokens are single-use and expire. Every session of the account is revoked.",
  request: body(ResetBody),
  responses: { 204: { description: "Password changed" }, ...problems(400, 429, 503) },
});

const verifyRoute = createRoute({
  method: "post",
  path: "/v1/auth/email/verify",
  tags,
  summary: "Confirm an email address",
  request: body(VerifyEmailBody),
  responses: { 204: { description: "Verified" }, ...problems(400, 429, 503) },
});

const oauthRoute = createRoute({
  method: "post",
  path: "/v1/auth/oauth/{provider}",
  tags,
  summary: "Sign in with a Google or Apple ID token",
  description:
    "Verified against the provider's JWKS (issuer, audience, expiry). An unknown identity creates an account, " +
    "unless its email belongs to an existing account (409: sign in and link it instead).",
  request: { params: OAuthProviderParam, ...body(OAuthBody) },
  responses: { 200: json(AuthResult, "Signed in"), ...problems(400, 401, 404, 409, 429, 503) },
});

const linkRoute = createRoute({
  method: "post",
  path: "/v1/me/oauth/{provider}",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "Link a Google or Apple identity to the caller's account",
  request: { params: OAuthProviderParam, ...body(OAuthBody) },
  responses: { 204: { description: "Linked" }, ...problems(400, 401, 404, 409, 429, 503) },
});

export const authRoutes = router()
  .openapi(signupRoute, async (c) => c.json(await signup(c.var.deps, requestMetaOf(c), c.req.valid("json")), 201))
  .openapi(loginRoute, async (c) => c.json(await login(c.var.deps, requestMetaOf(c), c.req.valid("json")), 200))
  .openapi(refreshRoute, async (c) =>
    c.json(await refresh(c.var.deps, requestMetaOf(c), c.req.valid("json").refreshToken), 200),
  )
  .openapi(logoutRoute, async (c) => {
    await logout(c.var.deps, requestMetaOf(c), viewerOf(c));
    return c.body(null, 204);
  })
  .openapi(sessionsRoute, async (c) => c.json(await listSessions(c.var.deps, viewerOf(c)), 200))
  .openapi(revokeSessionRoute, async (c) => {
    await revokeSession(c.var.deps, requestMetaOf(c), viewerOf(c), c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(forgotRoute, async (c) => {
    await forgotPassword(c.var.deps, requestMetaOf(c), c.req.valid("json").email);
    return c.body(null, 202);
  })
  .openapi(resetRoute, async (c) => {
    const { token, password } = c.req.valid("json");
    await resetPassword(c.var.deps, requestMetaOf(c), token, password);
    return c.body(null, 204);
  })
  .openapi(verifyRoute, async (c) => {
    await verifyEmail(c.var.deps, requestMetaOf(c), c.req.valid("json").token);
    return c.body(null, 204);
  })
  .openapi(oauthRoute, async (c) => {
    const { idToken, deviceId, platform } = c.req.valid("json");
    const result = await oauthSignIn(c.var.deps, requestMetaOf(c), c.req.valid("param").provider, idToken, {
      deviceId,
      platform,
    });
    return c.json(result, 200);
  })
  .openapi(linkRoute, async (c) => {
    const provider = c.req.valid("param").provider;
    await linkOAuth(c.var.deps, requestMetaOf(c), viewerOf(c), provider, c.req.valid("json").idToken);
    return c.body(null, 204);
  });
