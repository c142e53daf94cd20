import { IdParam } from "../../core/schemas";
import { requestMetaOf } from "../../http/context";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, publicRoute } from "../../http/routes";
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

const tags = ["auth"];

const signupRoute = publicRoute({
  method: "post",
  path: "/v1/auth/signup",
  tags,
  summary: "Create an account",
  description:
    "Usernames are unique case-insensitively. A valid `referralCode` records who referred the new user. " +
    "Limited per IP. A verification email is queued.",
  request: jsonBody(SignupBody),
  responses: { 201: json(AuthResult, "Account created and signed in"), ...problems(409) },
});

const loginRoute = publicRoute({
  method: "post",
  path: "/v1/auth/login",
  tags,
  summary: "Sign in with username or email",
  description: "Wrong credentials give 401 without saying which part was wrong. Limited per IP and per account.",
  request: jsonBody(LoginBody),
  responses: { 200: json(AuthResult, "Signed in"), ...problems(401) },
});

const refreshRoute = publicRoute({
  method: "post",
  path: "/v1/auth/refresh",
  tags,
  summary: "Rotate the refresh token",
  description: "Every refresh returns a new refresh token. Presenting a rotated token revokes the whole session (401).",
  request: jsonBody(RefreshBody),
  responses: { 200: json(TokenPair, "New token pair"), ...problems(401) },
});

const logoutRoute = authedRoute({
  method: "post",
  path: "/v1/auth/logout",
  tags,
  summary: "Revoke the current session",
  responses: { 204: { description: "Signed out" } },
});

const sessionsRoute = authedRoute({
  method: "get",
  path: "/v1/auth/sessions",
  tags,
  summary: "The caller's live sessions",
  responses: { 200: json(SessionList, "Sessions, most recently used first") },
});

const revokeSessionRoute = authedRoute({
  method: "delete",
  path: "/v1/auth/sessions/{id}",
  tags,
  summary: "Revoke one of the caller's sessions",
  request: { params: IdParam },
  responses: { 204: { description: "Revoked" }, ...problems(404) },
});

const forgotRoute = publicRoute({
  method: "post",
  path: "/v1/auth/password/forgot",
  tags,
  summary: "Email a password-reset link",
  description: "Always 202, whether or not the email has an account. Limited per email.",
  request: jsonBody(ForgotBody),
  responses: { 202: { description: "Accepted" } },
});

const resetRoute = publicRoute({
  method: "post",
  path: "/v1/auth/password/reset",
  tags,
  summary: "Set a new password with a reset token",
  description: "Tokens are single-use and expire. Every session of the account is revoked.",
  request: jsonBody(ResetBody),
  responses: { 204: { description: "Password changed" } },
});

const verifyRoute = publicRoute({
  method: "post",
  path: "/v1/auth/email/verify",
  tags,
  summary: "Confirm an email address",
  request: jsonBody(VerifyEmailBody),
  responses: { 204: { description: "Verified" } },
});

const oauthRoute = publicRoute({
  method: "post",
  path: "/v1/auth/oauth/{provider}",
  tags,
  summary: "Sign in with a Google or Apple ID token",
  description:
    "Verified against the provider's JWKS (issuer, audience, expiry). An unknown identity creates an account, " +
    "unless its email belongs to an existing account (409: sign in and link it instead).",
  request: { params: OAuthProviderParam, ...jsonBody(OAuthBody) },
  responses: { 200: json(AuthResult, "Signed in"), ...problems(401, 404, 409) },
});

const linkRoute = authedRoute({
  method: "post",
  path: "/v1/me/oauth/{provider}",
  tags,
  summary: "Link a Google or Apple identity to the caller's account",
  request: { params: OAuthProviderParam, ...jsonBody(OAuthBody) },
  responses: { 204: { description: "Linked" }, ...problems(404, 409) },
});

export const authRoutes = router()
  .openapi(signupRoute, async (c) => c.json(await signup(c.var.deps, requestMetaOf(c), c.req.valid("json")), 201))
  .openapi(loginRoute, async (c) => c.json(await login(c.var.deps, requestMetaOf(c), c.req.valid("json")), 200))
  .openapi(refreshRoute, async (c) =>
    c.json(await refresh(c.var.deps, requestMetaOf(c), c.req.valid("json").refreshToken), 200),
  )
  .openapi(logoutRoute, async (c) => {
    await logout(c.var.deps, requestMetaOf(c), c.var.viewer);
    return c.body(null, 204);
  })
  .openapi(sessionsRoute, async (c) => c.json(await listSessions(c.var.deps, c.var.viewer), 200))
  .openapi(revokeSessionRoute, async (c) => {
    await revokeSession(c.var.deps, requestMetaOf(c), c.var.viewer, c.req.valid("param").id);
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
    await linkOAuth(c.var.deps, requestMetaOf(c), c.var.viewer, provider, c.req.valid("json").idToken);
    return c.body(null, 204);
  });
