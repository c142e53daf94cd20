import type { Deps } from "../../deps";
import type { Viewer } from "../../http/context";
import { ApiError } from "../../http/errors";
import { utcDay } from "../../platform/clock";
import { ObjectId } from "../../platform/ids";
import { audit, type RequestMeta } from "../audit/service";
import { payCheckinRewards } from "../gems/service";
import { removeFromLeaderboards } from "../leaderboards/service";
import { validateReferral } from "../referrals/service";
import { type Me, type PublicUser, toMe, toPublicUser, type UpdateMeBody, type UserDoc } from "./schema";

const DAY_MS = 86_400_000;
const STREAK_CACHE_TTL_SECONDS = 48 * 3_600;

/** The caller's own account; a deleted or missing account is a 404 (its tokens die within their lifetime). */
export async function loadSelf(deps: Deps, viewer: Viewer): Promise<UserDoc> {
  const user = await deps.db.users.findOne({ _id: new ObjectId(viewer.id), deletedAt: null });
  if (!user) throw ApiError.notFound("Account not found.");
  return user;
}

export async function getMe(deps: Deps, viewer: Viewer): Promise<Me> {
  return toMe(await loadSelf(deps, viewer));
}

/** Only the allow-listed fields of UpdateMeBody can change; the route refuses anything else with 400. */
export async function updateMe(deps: Deps, viewer: Viewer, patch: UpdateMeBody): Promise<Me> {
  const set: Record<string, unknown> = { updatedAt: deps.clock.now() };
  for (const field of ["displayName", "bio", "avatarUrl", "profileTheme"] as const) {
    if (patch[field] !== undefined) set[field] = patch[field];
  }
  for (const [key, value] of Object.entries(patch.notificationPreferences ?? {})) {
    set[`notificationPreferences.${key}`] = value;
  }
  // A theme the store sells can only be worn once unlocked (checked in the same update).
  const theme = patch.profileTheme;
  const sold = theme != null && deps.config.store.catalog.some((i) => i.kind === "cosmetic" && i.theme === theme);
  const updated = await deps.db.users.findOneAndUpdate(
    { _id: new ObjectId(viewer.id), deletedAt: null, ...(sold ? { unlockedThemes: theme } : {}) },
    { $set: set },
    { returnDocument: "after" },
  );
  if (!updated && sold && (await deps.db.users.findOne({ _id: new ObjectId(viewer.id), deletedAt: null }))) {
    throw ApiError.validation([{ path: "profileTheme", message: "unlock this theme in the store first" }]);
  }
  if (!updated) throw ApiError.notFound("Account not found.");
  await deps.redis.del(deps.keys.userProfile(updated.usernameLower));
  return toMe(updated);
}

/** Public profile, served from Redis when cached (one round trip, no MongoDB). */
export async function publicProfile(deps: Deps, username: string): Promise<PublicUser> {
  const key = deps.keys.userProfile(username.toLowerCase());
  const cached = await deps.redis.get<PublicUser | { missing: true }>(key);
  if (cached && "missing" in cached) throw ApiError.notFound("No such user.");
  if (cached) return cached;
  const user = await deps.db.users.findOne({ usernameLower: username.toLowerCase(), deletedAt: null });
  const ttl = deps.config.profileCacheTtlSeconds;
  if (!user) {
    // Cache the miss briefly too, so probing unknown names does not reach MongoDB every time.
    await deps.redis.set(key, { missing: true }, { ex: Math.min(ttl, 30) });
    throw ApiError.notFound("No such user.");
  }
  const profile = toPublicUser(user);
  await deps.redis.set(key, profile, { ex: ttl });
  return profile;
}

/** Drops cached public profiles of these users (after a profile or follower-count change). */
export async function invalidateProfile(deps: Deps, ...userIds: string[]): Promise<void> {
  const users = await deps.db.users.find(
    { _id: { $in: userIds.map((id) => new ObjectId(id)) } },
    { projection: { usernameLower: 1 } },
  );
  if (users.length) await deps.redis.del(...users.map((u) => deps.keys.userProfile(u.usernameLower)));
}

/** Drops these users' cached profiles, plus any other keys the same change makes stale, in one round trip. */
export async function invalidateProfilesOf(
  deps: Deps,
  users: Pick<UserDoc, "usernameLower">[],
  alsoStale: string[] = [],
): Promise<void> {
  const stale = [...users.map((u) => deps.keys.userProfile(u.usernameLower)), ...alsoStale];
  if (stale.length) await deps.redis.del(...stale);
}

/**
 * Daily check-in: once per UTC day. Yesterday's check-in extends the streak, an older one restarts it at 1.
 * The update is conditional on `lastActiveDate` not being today, so concurrent check-ins count once.
 */
export async function checkin(
  deps: Deps,
  viewer: Viewer,
): Promise<{ currentStreak: number; longestStreak: number; gemsAwarded: number; date: string }> {
  const today = utcDay(deps.clock.now());
  const yesterday = utcDay(new Date(deps.clock.now().getTime() - DAY_MS));
  const streak = {
    $cond: [{ $eq: ["$lastActiveDate", yesterday] }, { $add: [{ $ifNull: ["$currentStreak", 0] }, 1] }, 1],
  };
  const updated = await deps.db.users.findOneAndUpdate(
    { _id: new ObjectId(viewer.id), deletedAt: null, lastActiveDate: { $ne: today } },
    [
      { $set: { currentStreak: streak } },
      {
        $set: {
          longestStreak: { $max: [{ $ifNull: ["$longestStreak", 0] }, "$currentStreak"] },
          lastActiveDate: today,
          updatedAt: deps.clock.now(),
        },
      },
    ],
    { returnDocument: "after" },
  );
  const user = updated ?? (await loadSelf(deps, viewer));
  const result = { currentStreak: user.currentStreak, longestStreak: user.longestStreak, lastActiveDate: today };
  // Rewards are keyed by user and day: a repeat pays nothing, yet still completes a payout that a crash
  // interrupted after the streak moved.
  // A check-in on a later day than signup shows a referred user is real.
  const returning = updated && user.referredBy && utcDay(user.createdAt) !== today;
  const [paid] = await Promise.all([
    payCheckinRewards(deps, user._id, today, user.currentStreak),
    deps.redis.set(deps.keys.userStreak(viewer.id), result, { ex: STREAK_CACHE_TTL_SECONDS }),
    returning ? validateReferral(deps, user._id, "return_checkin") : null,
  ]);
  return { currentStreak: user.currentStreak, longestStreak: user.longestStreak, gemsAwarded: paid, date: today };
}

/** Soft delete: the account disappears at once, sessions die, and the erasure job removes personal data later. */
export async function deleteMe(
  deps: Deps,
  meta: RequestMeta,
  viewer: Viewer,
  revokeAll: (userId: ObjectId) => Promise<number>,
): Promise<{ erasureAfter: string }> {
  const now = deps.clock.now();
  const user = await deps.db.users.findOneAndUpdate(
    { _id: new ObjectId(viewer.id), deletedAt: null },
    { $set: { deletedAt: now, updatedAt: now } },
  );
  if (!user) throw ApiError.notFound("Account not found.");
  await Promise.all([
    revokeAll(user._id),
    deps.redis.del(deps.keys.userProfile(user.usernameLower)),
    removeFromLeaderboards(deps, viewer.id),
    audit(deps, meta, { action: "account_deleted", userId: user._id }),
  ]);
  const erasureAfter = new Date(now.getTime() + deps.config.auth.accountDeletionGraceDays * DAY_MS);
  return { erasureAfter: erasureAfter.toISOString() };
}

const SECRET_FIELDS = new Set(["passwordHash", "refreshTokenHash", "previousTokenHashes", "tokenHash"]);

/** Everything stored about the caller (GDPR access/portability), minus secrets. */
export async function exportMe(deps: Deps, meta: RequestMeta, viewer: Viewer): Promise<Record<string, unknown>> {
  const userId = new ObjectId(viewer.id);
  const [user, sessions, following, followers, referrals, auditLogs, events] = await Promise.all([
    loadSelf(deps, viewer),
    deps.db.sessions.find({ userId }, { limit: 1000 }),
    deps.db.follows.find({ followerId: userId }, { limit: 10_000 }),
    deps.db.follows.find({ followingId: userId }, { limit: 10_000 }),
    deps.db.referrals.find({ $or: [{ referrerId: userId }, { referredUserId: userId }] }, { limit: 10_000 }),
    deps.db.auditLogs.find({ userId }, { limit: 10_000, sort: { timestamp: -1 } }),
    deps.db.analyticsEvents.find({ userId: viewer.id }, { limit: 10_000 }),
  ]);
  await audit(deps, meta, { action: "data_exported", userId });
  return stripSecrets({
    exportedAt: deps.clock.now().toISOString(),
    user,
    sessions,
    following,
    followers,
    referrals,
    auditLogs,
    bufferedAnalyticsEvents: events,
  }) as Record<string, unknown>;
}

function stripSecrets(value: unknown): unknown {
  if (value instanceof ObjectId) return value.toHexString();
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(stripSecrets);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => !SECRET_FIELDS.has(k))
        .map(([k, v]) => [k, stripSecrets(v)]),
    );
  }
  return value;
}

/** Admin: change a user's role (audited). Takes effect in new access tokens (within their lifetime). */
export async function setRole(
  deps: Deps,
  meta: RequestMeta,
  actor: Viewer,
  userId: string,
  role: UserDoc["role"],
): Promise<Me> {
  const before = await deps.db.users.findOneAndUpdate(
    { _id: new ObjectId(userId), deletedAt: null },
    { $set: { role, updatedAt: deps.clock.now() } },
    { returnDocument: "before" },
  );
  if (!before) throw ApiError.notFound("No such user.");
  await audit(deps, meta, {
    action: "role_changed",
    userId: before._id,
    actorId: new ObjectId(actor.id),
    metadata: { from: before.role, to: role },
  });
  return toMe({ ...before, role });
}
