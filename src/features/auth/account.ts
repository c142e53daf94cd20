import { ApiError } from "../../core/errors";
import { forgetSelfView } from "../../core/standing";
import type { RequestMeta, Viewer } from "../../core/viewer";
import type { EmailTokenDoc, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { hashPassword, verifyPassword } from "../../platform/passwords";
import { HOUR_MS } from "../../platform/time";
import { audit } from "../audit/service";
import { queueEmails } from "../mail/outbox";
import { loadSelf } from "../users/service";
import { consumeEmailToken, dropEmailTokens, invalidToken, maskEmail, newEmailToken } from "./email";
import { enforceLimits, passwordFailureLimits, passwordPolicy, verificationMailLimit } from "./limits";
import type { ChangeEmailBody, ChangePasswordBody } from "./schema";
import { revokeOtherSessions } from "./service";

/**
 * Account self-service: the signed-in user changes their password or email address, asks for another
 * verification link, and unlinks a sign-in provider. Whatever needs the password again counts each attempt
 * against the account's wrong-password budgets (`passwordFailureLimits`), so it is no side door for guessing.
 */

const noPassword = () =>
  ApiError.conflict(
    "no_password",
    "This account has no password (it signs in with Google or Apple). Set one with the password reset flow: " +
      "POST /v1/auth/password/forgot.",
  );

const emailTaken = () => ApiError.conflict("email_taken", "An account with that email already exists.");

/**
 * Re-checks the caller's password before a sensitive change. A wrong one is a 403 naming `field`, not a 401:
 * the access token is fine (a 401 would tell the app its session is over and send it to refresh or sign out),
 * it is this action that is refused.
 */
async function confirmPassword(
  deps: Deps,
  meta: RequestMeta,
  user: UserDoc,
  password: string,
  field: string,
  purpose: "password_change" | "email_change",
): Promise<void> {
  if (!user.passwordHash) throw noPassword();
  const failures = passwordFailureLimits(deps, user._id.toHexString(), meta.ip);
  // Every attempt here counts (a signed-in caller needs no retries), in the same budgets as the sign-in form.
  await enforceLimits(deps, [failures.fromHere, failures.fromAnywhere]);
  const check = await verifyPassword(password, user.passwordHash, passwordPolicy(deps));
  if (check.ok) return;
  await audit(deps, meta, { action: "password_check_failed", userId: user._id, metadata: { purpose } });
  throw new ApiError("forbidden", "The password is not correct.", {
    errors: [{ path: field, message: "wrong password" }],
  });
}

/**
 * POST /v1/me/password. The new hash is written only if the hash just checked is still the stored one (two
 * concurrent changes cannot both pass on the old password); every other session then stops at once, refresh
 * and access tokens alike, and the calling session goes on.
 */
export async function changePassword(
  deps: Deps,
  meta: RequestMeta,
  viewer: Viewer,
  body: ChangePasswordBody,
): Promise<void> {
  const user = await loadSelf(deps, viewer);
  await confirmPassword(deps, meta, user, body.currentPassword, "currentPassword", "password_change");
  const passwordHash = await hashPassword(body.newPassword, passwordPolicy(deps));
  const now = deps.clock.now();
  const changed = await deps.db.users.updateOne(
    { _id: user._id, deletedAt: null, passwordHash: user.passwordHash },
    { $set: { passwordHash, updatedAt: now } },
  );
  if (changed.matchedCount === 0) {
    throw ApiError.conflict(
      "password_changed_concurrently",
      "The password was changed meanwhile; nothing was changed.",
    );
  }
  const revoked = await revokeOtherSessions(deps, user._id, viewer.sessionId, "password_changed");
  await Promise.all([
    // A reset link mailed before the change must not undo it.
    dropEmailTokens(deps, user._id, ["password_reset"]),
    user.email
      ? queueEmails(deps, [
          {
            userId: user._id,
            to: user.email,
            template: "password_changed",
            data: { username: user.username, changedAt: now.toISOString() },
          },
        ])
      : null,
    audit(deps, meta, { action: "password_changed", userId: user._id, metadata: { sessionsRevoked: revoked } }),
  ]);
}

/**
 * POST /v1/me/email. Nothing changes until the new address confirms: the request stores `pendingEmail` and an
 * `email_change` token (replacing any earlier one), mails the link to the new address and a notice, without a
 * link, to the current one. A taken address is a 409 `email_taken`, exactly what signup says about it.
 */
export async function requestEmailChange(
  deps: Deps,
  meta: RequestMeta,
  viewer: Viewer,
  body: ChangeEmailBody,
): Promise<void> {
  const user = await loadSelf(deps, viewer);
  const email = body.email.toLowerCase();
  if (email === user.email) throw ApiError.invalidField("email", "this is already your address");
  await confirmPassword(deps, meta, user, body.password, "password", "email_change");
  if (await deps.db.users.findOne({ email }, { projection: { _id: 1 } })) throw emailTaken();
  await enforceLimits(deps, [verificationMailLimit(deps, viewer.id)]);
  const change = await newEmailToken(
    deps,
    user._id,
    "email_change",
    deps.config.auth.emailVerificationTtlHours * HOUR_MS,
    email,
  );
  const expiresAt = change.doc.expiresAt;
  const pending = await deps.db.users.updateOne(
    { _id: user._id, deletedAt: null },
    { $set: { pendingEmail: email, pendingEmailExpiresAt: expiresAt, updatedAt: deps.clock.now() } },
  );
  if (pending.matchedCount === 0) throw ApiError.notFound("Account not found.");
  await forgetSelfView(deps, viewer.id);
  const newEmailMasked = maskEmail(email);
  await Promise.all([
    deps.db.emailTokens.insertOne(change.doc),
    dropEmailTokens(deps, user._id, ["email_change"], change.doc._id),
    // The link to the new address and the notice to the current one: one write for both.
    queueEmails(deps, [
      {
        userId: user._id,
        to: email,
        template: "verify_email_change",
        data: { token: change.token, username: user.username, expiresAt: expiresAt.toISOString() },
      },
      ...(user.email
        ? [
            {
              userId: user._id,
              to: user.email,
              template: "email_change_requested" as const,
              data: { username: user.username, newEmailMasked, expiresAt: expiresAt.toISOString() },
            },
          ]
        : []),
    ]),
    audit(deps, meta, { action: "email_change_requested", userId: user._id, metadata: { to: newEmailMasked } }),
  ]);
}

/**
 * POST /v1/auth/email/verify: a verification token marks the address it was mailed to as verified; an
 * email-change token makes its address the account's (see `applyEmailChange`). Tokens are single-use.
 */
export async function verifyEmail(deps: Deps, meta: RequestMeta, token: string): Promise<void> {
  const used = await consumeEmailToken(deps, ["email_verification", "email_change"], token);
  if (used.purpose === "email_change") return applyEmailChange(deps, meta, used);
  // A token names the address it was sent to (older ones do not): it cannot verify an address changed since.
  const verified = await deps.db.users.updateOne(
    { _id: used.userId, ...(used.email ? { email: used.email } : {}) },
    { $set: { emailVerified: true, updatedAt: deps.clock.now() } },
  );
  if (verified.matchedCount === 0) throw invalidToken();
  await Promise.all([
    forgetSelfView(deps, used.userId.toHexString()),
    audit(deps, meta, { action: "email_verified", userId: used.userId }),
  ]);
}

/**
 * Applies a confirmed email change with one conditional update: only while the change is still the pending
 * one, and only if the address is still free. The unique index decides the race with a signup (or another
 * change) that took the address meanwhile: 409 `email_taken`, nothing changed, and the token is handed back
 * (it stays usable until it expires, should the address become free).
 */
async function applyEmailChange(deps: Deps, meta: RequestMeta, used: EmailTokenDoc): Promise<void> {
  const email = used.email;
  const user = await deps.db.users.findOne({ _id: used.userId, deletedAt: null });
  if (!email || !user || user.pendingEmail !== email) throw invalidToken();
  const now = deps.clock.now();
  const { refused } = await deps.db.users.bulkWriteUnique([
    {
      updateOne: {
        filter: { _id: user._id, deletedAt: null, email: user.email, pendingEmail: email },
        update: {
          $set: { email, emailVerified: true, pendingEmail: null, pendingEmailExpiresAt: null, updatedAt: now },
        },
      },
    },
  ]);
  if (refused.length > 0) {
    await deps.db.emailTokens.updateOne({ _id: used._id, usedAt: { $ne: null } }, { $set: { usedAt: null } });
    throw ApiError.conflict("email_taken", "That address now belongs to another account; your email was not changed.");
  }
  // The write reports only refusals: read back whether it applied (a newer request may have replaced the change).
  if (!(await deps.db.users.findOne({ _id: user._id, email }, { projection: { _id: 1 } }))) throw invalidToken();
  await forgetSelfView(deps, user._id.toHexString());
  const masked = { from: user.email ? maskEmail(user.email) : null, to: maskEmail(email) };
  await Promise.all([
    // Links mailed to the old address (verification, password reset) and other change links are spent.
    dropEmailTokens(deps, user._id, ["email_verification", "password_reset", "email_change"]),
    user.email
      ? queueEmails(deps, [
          {
            userId: user._id,
            to: user.email,
            template: "email_changed",
            data: { username: user.username, newEmailMasked: masked.to, changedAt: now.toISOString() },
          },
        ])
      : null,
    audit(deps, meta, { action: "email_changed", userId: user._id, metadata: masked }),
  ]);
}

/**
 * POST /v1/auth/email/resend: a fresh verification link for the caller's current address, replacing the
 * earlier ones, within the account's verification-mail budget (429 beyond it). A verified account (or one
 * without an address) gets the same 202 and no mail.
 */
export async function resendVerification(deps: Deps, viewer: Viewer): Promise<void> {
  const user = await loadSelf(deps, viewer);
  if (user.emailVerified || !user.email) return;
  await enforceLimits(deps, [verificationMailLimit(deps, viewer.id)]);
  const verification = await newEmailToken(
    deps,
    user._id,
    "email_verification",
    deps.config.auth.emailVerificationTtlHours * HOUR_MS,
    user.email,
  );
  await Promise.all([
    deps.db.emailTokens.insertOne(verification.doc),
    dropEmailTokens(deps, user._id, ["email_verification"], verification.doc._id),
    queueEmails(deps, [
      {
        userId: user._id,
        to: user.email,
        template: "verify_email",
        data: { token: verification.token, username: user.username },
      },
    ]),
  ]);
}

/**
 * DELETE /v1/me/oauth/{provider}, as one conditional update: the provider goes only while the account keeps
 * another way in (a password, or another provider), so two concurrent unlinks cannot remove the last two.
 * A provider that is not linked (or that we do not know) is a 404.
 */
export async function unlinkOAuth(deps: Deps, meta: RequestMeta, viewer: Viewer, provider: string): Promise<void> {
  const userId = new ObjectId(viewer.id);
  const unlinked = await deps.db.users.updateOne(
    {
      _id: userId,
      deletedAt: null,
      "oauthProviders.provider": provider,
      $or: [{ passwordHash: { $type: "string", $ne: "" } }, { "oauthProviders.1": { $exists: true } }],
    },
    { $pull: { oauthProviders: { provider } }, $set: { updatedAt: deps.clock.now() } },
  );
  if (unlinked.matchedCount > 0) await forgetSelfView(deps, viewer.id);
  if (unlinked.matchedCount === 0) {
    const linked = await deps.db.users.findOne(
      { _id: userId, deletedAt: null, "oauthProviders.provider": provider },
      { projection: { _id: 1 } },
    );
    if (!linked) throw ApiError.notFound(`No ${provider} account is linked.`);
    throw ApiError.conflict(
      "last_sign_in_method",
      `${provider} is the only way to sign in to this account. Set a password (POST /v1/auth/password/forgot) ` +
        "or link another provider first.",
    );
  }
  await audit(deps, meta, { action: "oauth_unlinked", userId, metadata: { provider } });
}
