import { OptionalIdempotencyHeaders } from "../../core/idempotency";
import { IdParam } from "../../core/schemas";
import { requestMetaOf } from "../../http/context";
import { optionalIdempotencyKey } from "../../http/idempotency";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, publicRoute } from "../../http/routes";
import { changePassword, requestEmailChange, resendVerification, unlinkOAuth, verifyEmail } from "./account";
import {
  AuthResult,
  ChangeEmailBody,
  ChangePasswordBody,
  ForgotBody,
  LinkedProviderParam,
  LoginBody,
  OAuthBody,
  OAuthProviderParam,
  OAuthSignInBody,
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
} from "./service";

const tags = ["auth"];

const signupRoute = publicRoute({
  method: "post",
  path: "/v1/auth/signup",
  tags,
  summary: "Create an account",
  description:
    "Usernames are unique case-insensitively. A valid `referralCode` records who referred the new user. " +
    "Limited per IP. A verification email is queued. With an `Idempotency-Key` a retry (e.g. after a 503 or a " +
    "timeout) whose first attempt created the account signs in to it (201, a new session) instead of a 409; " +
    "the same key with another body or password is a 422.",
  request: { headers: OptionalIdempotencyHeaders, ...jsonBody(SignupBody) },
  responses: { 201: json(AuthResult, "Account created and signed in"), ...problems(409, 422) },
});

const loginRoute = publicRoute({
  method: "post",
  path: "/v1/auth/login",
  tags,
  summary: "Sign in with username or email",
  description:
    "Wrong credentials give 401 without saying which part was wrong. Limited per IP and per account. With " +
    "`deviceId` the install is recorded on the account as by `PUT /v1/me/devices/{deviceId}`, except that " +
    "fields left out keep their stored values; a `pushToken` is taken from any other account holding it.",
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
  description:
    "Takes the token of a verification link (the account's address is verified) or of an email-change link " +
    "(the new address becomes the account's, verified). Tokens are single-use and expire (400 naming `token`). " +
    "If the new address was taken by another account meanwhile: 409 `email_taken`, and nothing changes.",
  request: jsonBody(VerifyEmailBody),
  responses: { 204: { description: "Verified" }, ...problems(409) },
});

const resendRoute = authedRoute({
  method: "post",
  path: "/v1/auth/email/resend",
  tags,
  summary: "Send a new verification link for the caller's address",
  description: "Earlier links stop working. Limited per account (429). A verified account gets 202 and no mail.",
  responses: { 202: { description: "Accepted" }, ...problems(404) },
});

const changePasswordRoute = authedRoute({
  method: "post",
  path: "/v1/me/password",
  tags,
  summary: "Change the caller's password",
  description:
    "Needs the current password: a wrong one is 403 naming `currentPassword` (the token itself is fine, so " +
    "not 401), and attempts count against the account's login limit (429). Every other session is revoked at " +
    "once, refresh and access tokens alike; the calling session stays signed in. An account without a " +
    "password (Google or Apple only) gets 409 `no_password`: it sets one with `POST /v1/auth/password/forgot`. " +
    "A notice is mailed to the account's address.",
  request: jsonBody(ChangePasswordBody),
  responses: { 204: { description: "Password changed" }, ...problems(403, 404, 409) },
});

const changeEmailRoute = authedRoute({
  method: "post",
  path: "/v1/me/email",
  tags,
  summary: "Change the caller's email address",
  description:
    "Needs the current password (403 naming `password`, counted like login attempts). A link goes to the new " +
    "address, which becomes the account's once confirmed with `POST /v1/auth/email/verify`; the current address " +
    "gets a notice. Until then `GET /v1/me` shows `pendingEmail`. An address another account has: 409 " +
    "`email_taken`; no password: 409 `no_password`. Links are limited per account (429).",
  request: jsonBody(ChangeEmailBody),
  responses: { 202: { description: "Confirmation sent to the new address" }, ...problems(403, 404, 409) },
});

const oauthRoute = publicRoute({
  method: "post",
  path: "/v1/auth/oauth/{provider}",
  tags,
  summary: "Sign in with a Google or Apple ID token",
  description:
    "Verified against the provider's JWKS (issuer, audience, expiry). An unknown identity creates an account, " +
    "unless its email belongs to an existing account (409: sign in and link it instead).",
  request: { params: OAuthProviderParam, ...jsonBody(OAuthSignInBody) },
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

const unlinkRoute = authedRoute({
  method: "delete",
  path: "/v1/me/oauth/{provider}",
  tags,
  summary: "Unlink a Google or Apple identity from the caller's account",
  description:
    "409 `last_sign_in_method` when it is the account's only way to sign in (no password, no other provider); " +
    "a provider that is not linked is a 404.",
  request: { params: LinkedProviderParam },
  responses: { 204: { description: "Unlinked" }, ...problems(404, 409) },
});

export const authRoutes = router()
  .openapi(signupRoute, async (c) =>
    c.json(await signup(c.var.deps, requestMetaOf(c), c.req.valid("json"), optionalIdempotencyKey(c)), 201),
  )
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
  .openapi(resendRoute, async (c) => {
    await resendVerification(c.var.deps, c.var.viewer);
    return c.body(null, 202);
  })
  .openapi(changePasswordRoute, async (c) => {
    await changePassword(c.var.deps, requestMetaOf(c), c.var.viewer, c.req.valid("json"));
    return c.body(null, 204);
  })
  .openapi(changeEmailRoute, async (c) => {
    await requestEmailChange(c.var.deps, requestMetaOf(c), c.var.viewer, c.req.valid("json"));
    return c.body(null, 202);
  })
  .openapi(oauthRoute, async (c) => {
    const { idToken, attribution, ...device } = c.req.valid("json");
    const provider = c.req.valid("param").provider;
    const result = await oauthSignIn(c.var.deps, requestMetaOf(c), provider, idToken, device, attribution);
    return c.json(result, 200);
  })
  .openapi(linkRoute, async (c) => {
    const provider = c.req.valid("param").provider;
    await linkOAuth(c.var.deps, requestMetaOf(c), c.var.viewer, provider, c.req.valid("json").idToken);
    return c.body(null, 204);
  })
  .openapi(unlinkRoute, async (c) => {
    await unlinkOAuth(c.var.deps, requestMetaOf(c), c.var.viewer, c.req.valid("param").provider);
    return c.body(null, 204);
  });
