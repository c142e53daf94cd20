import type { OAuthProvider } from "../../config";
import { ApiError } from "../../core/errors";
import { idempotencyMismatch } from "../../core/idempotency";
import { forgetSelfView, forgetStanding, rememberStanding } from "../../core/standing";
import type { RequestMeta, Viewer } from "../../core/viewer";
import type { EmailOutboxDoc, SessionDoc, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { randomToken, sha256Hex } from "../../platform/crypto";
import { newObjectId, ObjectId } from "../../platform/ids";
import { burnPasswordCheck, hashPassword, verifyPassword } from "../../platform/passwords";
import { runOps, slidingWindow } from "../../platform/redis-ops";
import { addDays, HOUR_MS, MINUTE_MS } from "../../platform/time";
import { signAccessToken, tokenSettingsOf, verifyIdToken } from "../../platform/tokens";
import { recordActivity, signedUp } from "../analytics/activity";
import { attributionOf } from "../analytics/attribution";
import type { AttributionInput } from "../analytics/schema";
import { audit, auditEntry, ipHash } from "../audit/service";
import { consentRecords, consentStates } from "../consents/service";
import { outboxMessage, queueEmails, sendAfterResponse } from "../mail/outbox";
import { warmNewAccountRelations, warmRelations } from "../relations/service";
import { devicesAfterRegistering, recordSignInDevice, releasePushTokenStep } from "../users/devices";
import { DEFAULT_NOTIFICATION_PREFERENCES, isBanned, toMe } from "../users/schema";
import { invalidateProfile, invalidateProfilesOf } from "../users/service";
import { consumeEmailToken, dropEmailTokens, newEmailToken } from "./email";
import { enforceLimits, passwordFailureLimits, passwordPolicy, recordFailure } from "./limits";
import type { AuthResult, LoginBody, SessionList, SignupBody, TokenPair } from "./schema";

const REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/** The install a sign-in comes from (all optional; recorded on the account when `deviceId` is given). */
export interface DeviceInfo {
  deviceId?: string;
  platform?: string;
  pushToken?: string;
  appVersion?: string;
}

/** Unambiguous 8-character code (no 0/O, 1/I). */
export function newReferralCode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return [...bytes].map((b) => REFERRAL_ALPHABET[b % REFERRAL_ALPHABET.length]).join("");
}

export function newUserDoc(
  deps: Deps,
  fields: Pick<UserDoc, "username" | "email" | "passwordHash" | "displayName"> & Partial<UserDoc>,
): UserDoc {
  const now = deps.clock.now();
  return {
    _id: newObjectId(),
    usernameLower: fields.username.toLowerCase(),
    emailVerified: false,
    avatarUrl: null,
    bio: "",
    profileTheme: null,
    unlockedModels: [],
    unlockedThemes: [],
    adFreeUntil: null,
    oauthProviders: [],
    role: "user",
    tier: "free",
    tierExpiresAt: null,
    gemBalance: 0,
    totalGemsEarned: 0,
    totalGemsSpent: 0,
    totalPosts: 0,
    totalVotesReceived: 0,
    totalVotesGiven: 0,
    followersCount: 0,
    followingCount: 0,
    currentStreak: 0,
    longestStreak: 0,
    lastActiveDate: null,
    referralCode: newReferralCode(),
    referredBy: null,
    referralCount: 0,
    referralBonusExpiresAt: null,
    trustScore: 50,
    shadowBanned: false,
    bannedAt: null,
    banReason: null,
    reportCount: 0,
    devices: [],
    featureFlags: {},
    notificationPreferences: { ...DEFAULT_NOTIFICATION_PREFERENCES },
    createdAt: now,
    updatedAt: now,
    lastLoginAt: null,
    deletedAt: null,
    ...fields,
  };
}

/**
 * Inserts a new user; uniqueness of username (case-insensitive), email and referral code lives in unique
 * indexes, so concurrent signups for one name produce exactly one account. A referral-code collision is
 * retried with a fresh code; a username or email collision is a 409.
 */
async function insertUser(deps: Deps, user: UserDoc): Promise<UserDoc> {
  for (let attempt = 0; ; attempt++) {
    const outcome = await deps.db.users.tryInsert(user);
    if (outcome.inserted) {
      // A lookup of this name just before may have cached "no such user"; the account exists now.
      await invalidateProfilesOf(deps, [user]);
      return user;
    }
    if (outcome.duplicateOn === "referralCode" && attempt < 3) {
      user.referralCode = newReferralCode();
      continue;
    }
    if (outcome.duplicateOn === "email") {
      throw ApiError.conflict("email_taken", "An account with that email already exists.");
    }
    throw ApiError.conflict("username_taken", "That username is taken.");
  }
}

/**
 * Creates an account and its first session. The account, its verification email (token and outbox), the audit
 * entry, the consent records, the referral and the session are one ordered batch: one round trip, and an answer
 * lost after it committed leaves the whole signup made or none of it. With an Idempotency-Key (`requestKey`) the
 * account keeps it under a unique index: a retry whose first attempt committed signs in to that account (a new
 * session: the first answer's tokens were never stored anywhere) when the body matches and the password
 * verifies; the same key with anything else is a 422.
 */
export async function signup(
  deps: Deps,
  meta: RequestMeta,
  body: SignupBody,
  requestKey?: string,
): Promise<AuthResult> {
  const l = deps.config.auth.limits;
  await enforceLimits(deps, [
    { key: deps.keys.rateAuth("signup", meta.ip), limit: l.signupPerIp, windowSeconds: l.signupWindowSeconds },
  ]);
  const { termsVersion, privacyVersion } = deps.config.legal;
  if (body.termsVersion !== termsVersion) {
    throw ApiError.invalidField("termsVersion", `accept the current terms version (${termsVersion})`);
  }
  if (body.privacyVersion !== privacyVersion) {
    throw ApiError.invalidField("privacyVersion", `accept the current privacy policy version (${privacyVersion})`);
  }
  const referrer = body.referralCode
    ? await deps.db.users.findOne({ referralCode: body.referralCode, deletedAt: null }, { projection: { _id: 1 } })
    : null;
  if (body.referralCode && !referrer) {
    throw ApiError.invalidField("referralCode", "no such referral code");
  }
  const signupRequest = requestKey
    ? { key: `signup:${requestKey}`, fingerprint: await signupFingerprint(body) }
    : undefined;
  const user = newUserDoc(deps, {
    username: body.username,
    email: body.email.toLowerCase(),
    passwordHash: await hashPassword(body.password, passwordPolicy(deps)),
    displayName: body.displayName ?? body.username,
    referredBy: referrer?._id ?? null,
    attribution: attributionOf(body.attribution),
    devices: body.deviceId
      ? [
          {
            deviceId: body.deviceId,
            platform: body.platform ?? "unknown",
            lastSeenAt: deps.clock.now(),
            pushToken: null,
          },
        ]
      : [],
    ...(signupRequest ? { signupRequest } : {}),
  });
  // The consent ledger's first records (written with the account); the account carries their summary.
  const consents = await consentRecords(
    deps,
    meta,
    user._id,
    [
      { kind: "terms", granted: true, version: termsVersion },
      { kind: "privacy", granted: true, version: privacyVersion },
      { kind: "data_processing", granted: body.dataProcessingConsent ?? false, version: null },
      { kind: "marketing", granted: body.marketingConsent ?? false, version: null },
    ],
    "signup",
  );
  user.consents = consentStates(consents);
  user.notificationPreferences = { ...user.notificationPreferences, marketing: body.marketingConsent ?? false };
  const hashedIp = await ipHash(deps, meta.ip);
  const now = deps.clock.now();
  const verification = await newEmailToken(
    deps,
    user._id,
    "email_verification",
    deps.config.auth.emailVerificationTtlHours * HOUR_MS,
    user.email ?? undefined,
  );
  const mail = outboxMessage(deps, {
    userId: user._id,
    to: user.email ?? "",
    template: "verify_email",
    data: { token: verification.token, username: user.username },
  });
  const session = await newSession(deps, meta, user, body);
  const rest = [
    deps.db.emailTokens.inBatch.insertOne(verification.doc),
    deps.db.emailOutbox.inBatch.insertOne(mail),
    deps.db.auditLogs.inBatch.insertOne(await auditEntry(deps, meta, { action: "signup", userId: user._id })),
    ...(consents.length ? [deps.db.consents.inBatch.insertMany(consents)] : []),
    ...(referrer
      ? [
          deps.db.referrals.inBatch.insertOne({
            _id: newObjectId(),
            referrerId: referrer._id,
            referralCode: body.referralCode ?? "",
            referredUserId: user._id,
            installSource: body.installSource ?? "direct_link",
            platform: body.platform ?? null,
            bonusGemsAwarded: 0,
            bonusMultiplierActive: false,
            bonusExpiresAt: null,
            ipHash: hashedIp,
            deviceId: body.deviceId ?? null,
            fraudScore: referralFraudScore(referrer._id.equals(user._id), body.deviceId),
            validated: false,
            status: "pending",
            rewardTransactionId: null,
            createdAt: now,
          }),
        ]
      : []),
    deps.db.sessions.inBatch.insertOne(session.doc),
  ];
  for (let attempt = 0; ; attempt++) {
    const written = await deps.db.batchUnique([deps.db.users.inBatch.insertOne(user), ...rest]);
    if (written.applied) break;
    // Only the account can collide (everything else is new); nothing after it was written.
    if (written.refusedStep !== 0)
      throw new Error(`signup step ${written.refusedStep} refused by ${written.duplicateOn}`);
    const first = signupRequest ? await deps.db.users.findOne({ "signupRequest.key": signupRequest.key }) : null;
    if (first && signupRequest) return replaySignup(deps, meta, first, body, signupRequest.fingerprint);
    if (written.duplicateOn === "referralCode" && attempt < 3) {
      user.referralCode = newReferralCode();
      continue;
    }
    if (written.duplicateOn === "email") {
      throw ApiError.conflict("email_taken", "An account with that email already exists.");
    }
    throw ApiError.conflict("username_taken", "That username is taken.");
  }
  sendAfterResponse(deps, [mail]);
  await recordActivity(deps, signedUp(user));
  // A lookup of this name just before may have cached "no such user"; the account exists now.
  await invalidateProfilesOf(deps, [user]);
  return {
    user: toMe(user, now, deps.config.legal),
    ...(await tokenPair(deps, user, session.doc._id, session.refreshToken, { newAccount: true })),
  };
}

/** What identifies a signup request apart from its password (which a retry proves against the stored hash). */
async function signupFingerprint(body: SignupBody): Promise<string> {
  const { password: _password, ...rest } = body;
  return sha256Hex(JSON.stringify({ ...rest, email: rest.email.toLowerCase() }));
}

/** A retried signup whose first attempt made the account: the same request signs in to it, anything else is a 422. */
async function replaySignup(
  deps: Deps,
  meta: RequestMeta,
  first: UserDoc,
  body: SignupBody,
  fingerprint: string,
): Promise<AuthResult> {
  const sameRequest =
    first.signupRequest?.fingerprint === fingerprint &&
    first.passwordHash != null &&
    (await verifyPassword(body.password, first.passwordHash, passwordPolicy(deps))).ok;
  if (!sameRequest) throw idempotencyMismatch();
  if (first.deletedAt || isBanned(first, deps.clock.now())) {
    throw ApiError.conflict("username_taken", "That username is taken.");
  }
  const session = await newSession(deps, meta, first, body);
  await deps.db.batch([
    deps.db.sessions.inBatch.insertOne(session.doc),
    deps.db.auditLogs.inBatch.insertOne(
      await auditEntry(deps, meta, { action: "login", userId: first._id, metadata: { via: "signup_retry" } }),
    ),
  ]);
  return {
    user: toMe(first, deps.clock.now(), deps.config.legal),
    ...(await tokenPair(deps, first, session.doc._id, session.refreshToken)),
  };
}

/** A first, cheap signal at signup; the gem-economy validation runs the real anti-abuse checks later. */
function referralFraudScore(selfReferral: boolean, deviceId: string | undefined): number {
  if (selfReferral) return 1;
  return deviceId ? 0 : 0.2;
}

export async function login(deps: Deps, meta: RequestMeta, body: LoginBody): Promise<AuthResult> {
  const l = deps.config.auth.limits;
  const loginKey = body.login.trim().toLowerCase();
  const user = await deps.db.users.findOne(loginKey.includes("@") ? { email: loginKey } : { usernameLower: loginKey });
  // Keyed by the account itself, so switching between username and email buys no extra guesses.
  const account = user ? user._id.toHexString() : await sha256Hex(loginKey);
  const failures = passwordFailureLimits(deps, account, meta.ip);
  const knownDevice = Boolean(body.deviceId && user?.devices?.some((d) => d.deviceId === body.deviceId));
  const budgets = knownDevice ? [failures.fromHere] : [failures.fromHere, failures.fromAnywhere];
  await enforceLimits(deps, [
    { key: deps.keys.rateAuth("login", meta.ip), limit: l.loginPerIp, windowSeconds: l.loginWindowSeconds },
    ...budgets.map((b) => ({ ...b, mode: "peek" as const })),
  ]);
  const usable = user && !user.deletedAt && !isBanned(user, deps.clock.now()) && user.passwordHash;
  if (!usable) {
    await Promise.all([
      burnPasswordCheck(body.password, passwordPolicy(deps)),
      recordFailure(deps, [failures.fromHere, failures.fromAnywhere]),
    ]);
    await audit(deps, meta, { action: "login_failed", userId: user?._id ?? null, metadata: { reason: "no_account" } });
    throw ApiError.unauthorized("Wrong login or password.");
  }
  const check = await verifyPassword(body.password, user.passwordHash!, passwordPolicy(deps));
  if (!check.ok) {
    await Promise.all([
      recordFailure(deps, [failures.fromHere, failures.fromAnywhere]),
      audit(deps, meta, { action: "login_failed", userId: user._id, metadata: { reason: "password" } }),
    ]);
    throw ApiError.unauthorized("Wrong login or password.");
  }
  // Parameters were raised since this hash was made: store a fresh hash while we hold the password.
  const rehash = check.needsRehash ? await hashPassword(body.password, passwordPolicy(deps)) : null;
  const now = deps.clock.now();
  const [session, entry] = await Promise.all([
    newSession(deps, meta, user, body),
    auditEntry(deps, meta, { action: "login", userId: user._id, metadata: { deviceId: body.deviceId ?? null } }),
  ]);
  const mail = newSignInMail(deps, user, body);
  // Every write of the sign-in in one Data API call, all or nothing: the session, the account's sign-in
  // fields, its audit entry, the new-device mail's outbox record, the push token taken from another account.
  await deps.db.batch(
    [
      deps.db.sessions.inBatch.insertOne(session.doc),
      deps.db.users.inBatch.updateOne({ _id: user._id }, [
        {
          $set: {
            lastLoginAt: now,
            updatedAt: now,
            ...(rehash ? { passwordHash: { $literal: rehash } } : {}),
            ...(body.deviceId
              ? {
                  devices: devicesAfterRegistering(
                    {
                      deviceId: body.deviceId,
                      platform: body.platform,
                      pushToken: body.pushToken,
                      appVersion: body.appVersion,
                    },
                    now,
                    deps.config.devicesPerUser,
                    "merge",
                  ),
                }
              : {}),
          },
        },
      ]),
      deps.db.auditLogs.inBatch.insertOne(entry),
      ...(mail ? [deps.db.emailOutbox.inBatch.insertOne(mail)] : []),
      // A push token belongs to one install: whoever signed in on this device before no longer gets its pushes.
      ...(body.deviceId && body.pushToken ? [releasePushTokenStep(deps, user._id, body.pushToken)] : []),
    ],
    { transaction: true },
  );
  if (mail) sendAfterResponse(deps, [mail]);
  const tokens = await tokenPair(deps, user, session.doc._id, session.refreshToken);
  return { user: toMe({ ...user, lastLoginAt: now }, now, deps.config.legal), ...tokens };
}

/**
 * The mail telling the owner an account signed in on an install it has not used before (a `deviceId` not on its
 * devices list), unless they turned mail off (`notificationPreferences.email`); null when none is due. A
 * sign-in without a device id cannot be told apart and sends nothing.
 */
function newSignInMail(deps: Deps, user: UserDoc, device: DeviceInfo): EmailOutboxDoc | null {
  if (!device.deviceId || !user.email || user.notificationPreferences?.email === false) return null;
  if ((user.devices ?? []).some((d) => d.deviceId === device.deviceId)) return null;
  return outboxMessage(deps, {
    userId: user._id,
    to: user.email,
    template: "new_sign_in",
    data: {
      username: user.username,
      platform: device.platform ?? "unknown",
      signedInAt: deps.clock.now().toISOString(),
    },
  });
}

/**
 * Mails the owner when an account signs in on an install it has not used before (a `deviceId` not on its
 * devices list), unless they turned mail off (`notificationPreferences.email`). A sign-in without a device id
 * cannot be told apart and sends nothing. One outbox write, in parallel with the sign-in's own writes.
 */
function newSignInNotice(deps: Deps, user: UserDoc, device: DeviceInfo): Promise<void> | null {
  const mail = newSignInMail(deps, user, device);
  if (!mail) return null;
  return deps.db.emailOutbox.insertOne(mail).then(() => sendAfterResponse(deps, [mail]));
}

/** Creates a session and its first token pair. */
async function openSession(deps: Deps, meta: RequestMeta, user: UserDoc, device: DeviceInfo): Promise<TokenPair> {
  const session = await newSession(deps, meta, user, device);
  await deps.db.sessions.insertOne(session.doc);
  return tokenPair(deps, user, session.doc._id, session.refreshToken);
}

/** A new session document and the refresh token only its holder gets (the document keeps its hash). */
async function newSession(
  deps: Deps,
  meta: RequestMeta,
  user: UserDoc,
  device: DeviceInfo,
): Promise<{ doc: SessionDoc; refreshToken: string }> {
  const now = deps.clock.now();
  const refreshToken = randomToken(32);
  const session: SessionDoc = {
    _id: newObjectId(),
    userId: user._id,
    refreshTokenHash: await sha256Hex(refreshToken),
    previousTokenHashes: [],
    deviceId: device.deviceId ?? null,
    platform: device.platform ?? null,
    ipHash: await ipHash(deps, meta.ip),
    userAgent: meta.userAgent?.slice(0, 256) ?? null,
    createdAt: now,
    lastUsedAt: now,
    expiresAt: addDays(now, deps.config.auth.refreshTokenTtlDays),
    revokedAt: null,
    revokedReason: null,
  };
  return { doc: session, refreshToken };
}

/**
 * The tokens of a new session, with the account's standing and relations cached for its first requests. An
 * account just made (`newAccount`) has no relations yet: they are cached empty with no MongoDB read.
 */
async function tokenPair(
  deps: Deps,
  user: UserDoc,
  sessionId: ObjectId,
  refreshToken: string,
  options: { newAccount?: boolean } = {},
): Promise<TokenPair> {
  const userId = user._id.toHexString();
  const [accessToken] = await Promise.all([
    signAccessToken(
      { sub: user._id.toHexString(), sid: sessionId.toHexString(), role: user.role, tier: user.tier },
      tokenSettingsOf(deps.config.auth),
      deps.clock.now(),
    ),
    rememberStanding(deps, user),
    options.newAccount ? warmNewAccountRelations(deps, userId) : warmRelations(deps, userId),
  ]);
  return { accessToken, refreshToken, expiresIn: deps.config.auth.accessTokenTtlSeconds };
}

/**
 * Rotates a refresh token. The swap is one conditional update on the current hash, so two concurrent
 * refreshes with the same token cannot both succeed. A token that was already rotated away is evidence of
 * theft: the whole session is revoked and both holders must sign in again.
 */
export async function refresh(deps: Deps, meta: RequestMeta, refreshToken: string): Promise<TokenPair> {
  const now = deps.clock.now();
  const hash = await sha256Hex(refreshToken);
  const next = randomToken(32);
  const session = await deps.db.sessions.findOneAndUpdate(
    { refreshTokenHash: hash, revokedAt: null, expiresAt: { $gt: now } },
    {
      $set: { refreshTokenHash: await sha256Hex(next), lastUsedAt: now },
      $push: { previousTokenHashes: { $each: [hash], $slice: -50 } },
    },
  );
  if (!session) {
    const reused = await deps.db.sessions.findOneAndUpdate(
      { previousTokenHashes: hash, revokedAt: null },
      { $set: { revokedAt: now, revokedReason: "refresh_token_reuse" } },
    );
    if (reused) {
      await audit(deps, meta, {
        action: "token_reuse_detected",
        userId: reused.userId,
        metadata: { sessionId: reused._id.toHexString() },
      });
    }
    throw ApiError.unauthorized("The refresh token is not valid. Please sign in again.");
  }
  const user = await deps.db.users.findOne({ _id: session.userId });
  if (!user || user.deletedAt || isBanned(user, now)) {
    await revokeSessions(deps, session.userId, { _id: session._id }, "account_unavailable");
    throw ApiError.unauthorized("The refresh token is not valid. Please sign in again.");
  }
  return tokenPair(deps, user, session._id, next);
}

/**
 * Revokes live sessions of one user: their refresh tokens stop at once, and so do their access tokens — the
 * sessions' ids join the user's recently revoked ones, which the account standing refuses (core/standing.ts).
 * Returns how many sessions it revoked.
 */
async function revokeSessions(
  deps: Deps,
  userId: ObjectId,
  filter: Record<string, unknown>,
  reason: string,
  options: { refreshOnly?: boolean } = {},
): Promise<number> {
  const live = await deps.db.sessions.find(
    { ...filter, userId, revokedAt: null },
    { projection: { _id: 1 }, limit: MAX_SESSIONS_REVOKED },
  );
  if (live.length === 0) return 0;
  const ids = live.map((s) => s._id);
  const [result] = await Promise.all([
    deps.db.sessions.updateMany(
      { _id: { $in: ids }, revokedAt: null },
      { $set: { revokedAt: deps.clock.now(), revokedReason: reason } },
    ),
    options.refreshOnly
      ? null
      : deps.db.users.updateOne(
          { _id: userId },
          {
            $push: { revokedSessionIds: { $each: ids.map((id) => id.toHexString()), $slice: -REVOKED_SESSIONS_KEPT } },
          },
        ),
  ]);
  if (!options.refreshOnly) await forgetStanding(deps, userId.toHexString());
  return result.modifiedCount;
}

/** Sessions revoked in one go (a user has far fewer live ones). */
const MAX_SESSIONS_REVOKED = 1_000;
/** Revoked session ids kept on the user: their access tokens live at most one token lifetime anyway. */
const REVOKED_SESSIONS_KEPT = 200;

/**
 * Revokes every live session of a user (password reset, account deletion, ban). `refreshOnly` leaves the
 * access tokens to the account state (a ban refuses them itself, except where a banned user may appeal).
 */
export function revokeAllSessions(
  deps: Deps,
  userId: ObjectId,
  reason: string,
  options: { refreshOnly?: boolean } = {},
): Promise<number> {
  return revokeSessions(deps, userId, {}, reason, options);
}

/** Revokes every live session of a user but one (a password change keeps the session that made it). */
export function revokeOtherSessions(deps: Deps, userId: ObjectId, keep: string, reason: string): Promise<number> {
  return revokeSessions(deps, userId, { _id: { $ne: new ObjectId(keep) } }, reason);
}

export async function logout(deps: Deps, meta: RequestMeta, viewer: Viewer): Promise<void> {
  const userId = new ObjectId(viewer.id);
  await revokeSessions(deps, userId, { _id: new ObjectId(viewer.sessionId) }, "logout");
  await audit(deps, meta, { action: "logout", userId, metadata: { sessionId: viewer.sessionId } });
}

export async function listSessions(deps: Deps, viewer: Viewer): Promise<SessionList> {
  const sessions = await deps.db.sessions.find(
    { userId: new ObjectId(viewer.id), revokedAt: null, expiresAt: { $gt: deps.clock.now() } },
    { sort: { lastUsedAt: -1 }, limit: 100 },
  );
  return {
    items: sessions.map((s) => ({
      id: s._id.toHexString(),
      deviceId: s.deviceId,
      platform: s.platform,
      userAgent: s.userAgent,
      createdAt: s.createdAt.toISOString(),
      lastUsedAt: s.lastUsedAt.toISOString(),
      expiresAt: s.expiresAt.toISOString(),
      current: s._id.toHexString() === viewer.sessionId,
    })),
  };
}

/** Another user's session is "not found", exactly like a missing one. */
export async function revokeSession(deps: Deps, meta: RequestMeta, viewer: Viewer, sessionId: string): Promise<void> {
  const userId = new ObjectId(viewer.id);
  const revoked = await revokeSessions(deps, userId, { _id: new ObjectId(sessionId) }, "revoked_by_user");
  if (revoked === 0) throw ApiError.notFound("No such session.");
  await audit(deps, meta, { action: "session_revoked", userId, metadata: { sessionId } });
}

/** Always succeeds from the caller's point of view, so it cannot be used to probe which emails exist. */
export async function forgotPassword(deps: Deps, meta: RequestMeta, email: string): Promise<void> {
  const l = deps.config.auth.limits;
  const normalized = email.toLowerCase();
  const key = deps.keys.rateAuth("forgot", await sha256Hex(normalized));
  const { decision } = await runOps(deps.redis, {
    decision: slidingWindow(key, l.forgotPerEmail, l.forgotWindowSeconds),
  });
  if (!decision.allowed) return;
  const user = await deps.db.users.findOne({ email: normalized, deletedAt: null });
  if (!user || isBanned(user, deps.clock.now())) return;
  const reset = await newEmailToken(
    deps,
    user._id,
    "password_reset",
    deps.config.auth.passwordResetTtlMinutes * MINUTE_MS,
  );
  await Promise.all([
    deps.db.emailTokens.insertOne(reset.doc),
    queueEmails(deps, [
      {
        userId: user._id,
        to: normalized,
        template: "password_reset",
        data: { token: reset.token, username: user.username },
      },
    ]),
    audit(deps, meta, { action: "password_reset_requested", userId: user._id }),
  ]);
}

export async function resetPassword(deps: Deps, meta: RequestMeta, token: string, password: string): Promise<void> {
  const passwordHash = await hashPassword(password, passwordPolicy(deps));
  const used = await consumeEmailToken(deps, ["password_reset"], token);
  const now = deps.clock.now();
  await deps.db.users.updateOne({ _id: used.userId }, { $set: { passwordHash, updatedAt: now } });
  // Every session's tokens, access tokens included, stop at once (the account may have been taken over).
  const revoked = await revokeAllSessions(deps, used.userId, "password_reset");
  await Promise.all([
    // Any other reset link mailed earlier is spent too.
    dropEmailTokens(deps, used.userId, ["password_reset"]),
    audit(deps, meta, { action: "password_reset", userId: used.userId, metadata: { sessionsRevoked: revoked } }),
  ]);
}

async function verifiedIdentity(deps: Deps, provider: OAuthProvider, idToken: string) {
  const settings = deps.config.auth.oauth[provider];
  if (settings.audiences.length === 0) throw ApiError.notFound(`Sign-in with ${provider} is not enabled.`);
  const identity = await verifyIdToken(idToken, settings);
  if (!identity) throw ApiError.unauthorized(`The ${provider} ID token is not valid.`);
  return identity;
}

/**
 * Signs in with a Google or Apple ID token. A known identity signs in to its account; an unknown one
 * creates an account, unless its email already belongs to an account: linking then requires signing in to
 * that account first (POST /v1/me/oauth/{provider}), so nobody can take over an account by email alone.
 */
export async function oauthSignIn(
  deps: Deps,
  meta: RequestMeta,
  provider: OAuthProvider,
  idToken: string,
  device: DeviceInfo,
  attribution?: AttributionInput,
): Promise<AuthResult> {
  const identity = await verifiedIdentity(deps, provider, idToken);
  let user = await deps.db.users.findOne({
    oauthProviders: { $elemMatch: { provider, providerId: identity.subject } },
  });
  if (user && (user.deletedAt || isBanned(user, deps.clock.now())))
    throw ApiError.unauthorized("This account cannot sign in.");
  if (!user) {
    if (identity.email && (await deps.db.users.findOne({ email: identity.email }, { projection: { _id: 1 } }))) {
      throw ApiError.conflict(
        "account_exists",
        "An account with this email exists. Sign in to it and link this provider from your profile.",
      );
    }
    const base = (identity.email?.split("@")[0] ?? provider).replace(/[^A-Za-z0-9_]/g, "").slice(0, 20) || provider;
    user = await insertUser(
      deps,
      newUserDoc(deps, {
        username: `${base}_${newReferralCode().slice(0, 6).toLowerCase()}`,
        email: identity.email,
        emailVerified: identity.emailVerified,
        passwordHash: null,
        displayName: base,
        oauthProviders: [{ provider, providerId: identity.subject, connectedAt: deps.clock.now() }],
        attribution: attributionOf(attribution),
      }),
    );
    await recordActivity(deps, signedUp(user));
    await audit(deps, meta, { action: "signup", userId: user._id, metadata: { provider } });
  } else {
    await Promise.all([
      audit(deps, meta, { action: "login", userId: user._id, metadata: { provider } }),
      newSignInNotice(deps, user, device),
    ]);
  }
  const [session] = await Promise.all([
    openSession(deps, meta, user, device),
    device.deviceId ? recordSignInDevice(deps, user._id, { ...device, deviceId: device.deviceId }) : null,
  ]);
  return { user: toMe(user, deps.clock.now(), deps.config.legal), ...session };
}

export async function linkOAuth(
  deps: Deps,
  meta: RequestMeta,
  viewer: Viewer,
  provider: OAuthProvider,
  idToken: string,
): Promise<void> {
  const identity = await verifiedIdentity(deps, provider, idToken);
  const userId = new ObjectId(viewer.id);
  const owner = await deps.db.users.findOne(
    { oauthProviders: { $elemMatch: { provider, providerId: identity.subject } } },
    { projection: { _id: 1 } },
  );
  if (owner && !owner._id.equals(userId)) {
    throw ApiError.conflict("identity_linked", `This ${provider} account is linked to another Circle account.`);
  }
  if (owner) return;
  const linked = await deps.db.users.updateOne(
    { _id: userId, deletedAt: null, "oauthProviders.provider": { $ne: provider } },
    { $push: { oauthProviders: { provider, providerId: identity.subject, connectedAt: deps.clock.now() } } },
  );
  if (linked.matchedCount === 0) throw ApiError.conflict("provider_linked", `A ${provider} account is already linked.`);
  await Promise.all([invalidateProfile(deps, viewer.id), forgetSelfView(deps, viewer.id)]);
  await audit(deps, meta, { action: "oauth_linked", userId, metadata: { provider } });
}
