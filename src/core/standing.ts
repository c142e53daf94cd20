import { type Role, settingsOf, type Tier, type UserDoc } from "../db";
import type { Deps } from "../deps";
import { ObjectId } from "../platform/ids";
import { deleteKeys, runOp, setValue } from "../platform/redis-ops";
import { bestEffort } from "./best-effort";
import { ApiError } from "./errors";
import type { AccountFacts, Viewer } from "./viewer";

/**
 * An account's standing: what decides, on every authenticated request, whether a token is still good and what
 * it may do. Read from `session:{userId}` in the same pipeline as the rate limit (no round trip of its own);
 * when missing, rebuilt from MongoDB (one read) and cached for ACCOUNT_STANDING_TTL_SECONDS. Every change to
 * role, tier, ban, deletion or revoked sessions forgets it, so the change applies to existing access tokens
 * at once rather than when they expire.
 */
export interface Standing {
  role: Role;
  tier: Tier;
  /** Epoch ms after which a paid tier is free again; null: no end. */
  tierExpiresAt: number | null;
  /** Banned until this epoch ms; `Number.MAX_SAFE_INTEGER` for a ban without end; null when not banned. */
  bannedUntil: number | null;
  deleted: boolean;
  /** Sessions revoked recently (logout, revocation, password reset or change): their access tokens are refused. */
  revokedSessions: string[];
  /** The user's IANA zone (settings): which calendar day it is for them, with no read of its own. */
  timezone: string;
  /** Private mode (settings): what the user writes now stays out of insights and analytics. */
  privateMode: boolean;
  /**
   * Facts writes need about their author, so they need no read of their own: the username (fixed once chosen),
   * when the account was made (epoch ms), whether it is shadow-banned (every change drops the standing) and its
   * trust score (fraud scoring; moves slowly, so it may lag by ACCOUNT_STANDING_TTL_SECONDS), and the avatar
   * comments copy (changing it drops the standing).
   */
  username: string;
  createdAt: number;
  shadowBanned: boolean;
  trustScore: number;
  avatarUrl: string | null;
}

/** Marks which cached value is a standing (anything else under the key is ignored and rebuilt). */
const VERSION = 6;
type Cached = Standing & { v: typeof VERSION };

export function standingOf(user: Pick<UserDoc, StandingField>): Standing {
  const settings = settingsOf(user);
  const banned = user.bannedAt ? (user.banExpiresAt?.getTime() ?? Number.MAX_SAFE_INTEGER) : null;
  return {
    role: user.role,
    tier: user.tier,
    tierExpiresAt: user.tierExpiresAt?.getTime() ?? null,
    bannedUntil: banned,
    deleted: Boolean(user.deletedAt),
    revokedSessions: user.revokedSessionIds ?? [],
    timezone: settings.timezone,
    privateMode: settings.privateMode,
    username: user.username,
    createdAt: user.createdAt.getTime(),
    shadowBanned: Boolean(user.shadowBanned),
    trustScore: user.trustScore ?? TRUST_START,
    avatarUrl: user.avatarUrl ?? null,
  };
}

/** What a standing is made of: the projection `loadStanding` reads. */
type StandingField =
  | "role"
  | "tier"
  | "tierExpiresAt"
  | "bannedAt"
  | "banExpiresAt"
  | "deletedAt"
  | "revokedSessionIds"
  | "settings"
  | "username"
  | "createdAt"
  | "shadowBanned"
  | "trustScore"
  | "avatarUrl";

const STANDING_PROJECTION: Record<StandingField, 1> = {
  role: 1,
  tier: 1,
  tierExpiresAt: 1,
  bannedAt: 1,
  banExpiresAt: 1,
  deletedAt: 1,
  revokedSessionIds: 1,
  settings: 1,
  username: 1,
  createdAt: 1,
  shadowBanned: 1,
  trustScore: 1,
  avatarUrl: 1,
};

/** The trust score of an account that never had one (moderation's starting point). */
const TRUST_START = 50;

/** The tier that applies now: a paid tier past its `tierExpiresAt` acts as free, with no job needed first. */
export function effectiveTier(standing: Pick<Standing, "tier" | "tierExpiresAt">, now: Date): Tier {
  if (standing.tier === "free") return "free";
  return standing.tierExpiresAt !== null && standing.tierExpiresAt <= now.getTime() ? "free" : standing.tier;
}

export function isBannedNow(standing: Standing, now: Date): boolean {
  return standing.bannedUntil !== null && standing.bannedUntil > now.getTime();
}

/** Why a token of session `sessionId` no longer works, or null when it does. */
export function refusalOf(
  standing: Standing,
  sessionId: string,
  now: Date,
  options: { allowBanned?: boolean } = {},
): string | null {
  if (standing.deleted) return "This account has been deleted.";
  if (!options.allowBanned && isBannedNow(standing, now)) return "This account is banned.";
  if (standing.revokedSessions.includes(sessionId)) return "This session has ended. Please sign in again.";
  return null;
}

/** A cached standing as read with the rate limit, or null for anything that is not one. */
export function cachedStanding(value: unknown): Standing | null {
  if (typeof value !== "object" || value === null) return null;
  const cached = value as Partial<Cached>;
  if (cached.v !== VERSION || typeof cached.role !== "string" || typeof cached.tier !== "string") return null;
  if (typeof cached.username !== "string" || typeof cached.createdAt !== "number") return null;
  const { v: _version, ...standing } = cached as Cached;
  return standing;
}

/** The standing from MongoDB (one read), cached in Redis; null when the account does not exist. */
export async function loadStanding(deps: Deps, userId: string): Promise<Standing | null> {
  const user = await deps.db.users.findOne({ _id: new ObjectId(userId) }, { projection: STANDING_PROJECTION });
  if (!user) return null;
  const standing = standingOf(user);
  await cacheStanding(deps, userId, standing);
  return standing;
}

/**
 * Caches the standing of an account just read in full (sign-in, refresh), so its first authenticated request
 * needs no MongoDB read of its own.
 */
export async function rememberStanding(deps: Deps, user: Parameters<typeof standingOf>[0] & Pick<UserDoc, "_id">) {
  await cacheStanding(deps, user._id.toHexString(), standingOf(user));
}

async function cacheStanding(deps: Deps, userId: string, standing: Standing): Promise<void> {
  const cached: Cached = { ...standing, v: VERSION };
  // The answer stands without it; the next request reads MongoDB again.
  await bestEffort(deps, "account standing cache", () =>
    runOp(deps.redis, setValue(deps.keys.session(userId), cached, deps.config.auth.standingTtlSeconds)),
  );
}

/**
 * Forgets the cached standing after a change to what it holds (role, tier, ban, deletion, revoked sessions, zone,
 * private mode), so the
 * next request of any of the user's tokens rebuilds it. If Redis cannot be reached the old standing lives at
 * most ACCOUNT_STANDING_TTL_SECONDS more; the change itself (already in MongoDB) stands.
 */
export async function forgetStanding(deps: Deps, ...userIds: string[]): Promise<void> {
  await bestEffort(deps, "account standing drop (it expires on its own)", () =>
    runOp(deps.redis, deleteKeys(userIds.flatMap((id) => [deps.keys.session(id), deps.keys.selfView(id)]))),
  );
}

/**
 * Forgets the cached `GET /v1/me` answer of these users after a change they would see there (their profile,
 * balance, streak, counts, email state). Best effort: a copy that outlives a failure lasts at most
 * SELF_CACHE_TTL_SECONDS.
 */
export async function forgetSelfView(deps: Deps, ...userIds: string[]): Promise<void> {
  await bestEffort(deps, "cached self view drop (it expires on its own)", () =>
    runOp(deps.redis, deleteKeys(userIds.map((id) => deps.keys.selfView(id)))),
  );
}

/** The caller's account facts from their standing (no read), or from MongoDB when the standing lacked them. */
export async function accountFactsOf(deps: Deps, viewer: Viewer): Promise<AccountFacts> {
  if (viewer.account) return viewer.account;
  const user = await deps.db.users.findOne(
    { _id: new ObjectId(viewer.id), deletedAt: null },
    { projection: { username: 1, trustScore: 1, shadowBanned: 1, createdAt: 1, avatarUrl: 1 } },
  );
  if (!user) throw ApiError.notFound("Account not found.");
  return {
    username: user.username,
    createdAt: user.createdAt,
    shadowBanned: Boolean(user.shadowBanned),
    trustScore: user.trustScore ?? TRUST_START,
    avatarUrl: user.avatarUrl ?? null,
  };
}
