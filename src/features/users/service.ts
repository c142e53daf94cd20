import { bestEffort } from "../../core/best-effort";
import { fillCache, readCache } from "../../core/cache";
import { ApiError } from "../../core/errors";
import { forgetStanding } from "../../core/standing";
import type { RequestMeta, Viewer } from "../../core/viewer";
import type { Role, Tier, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { deleteKeys, getValue, type RedisBatch, readOrMiss, runOp, setValue } from "../../platform/redis-ops";
import { recordActivity } from "../analytics/activity";
import { audit } from "../audit/service";
import { requireReadyMedia } from "../media/service";
import { pendingRelationsRead, relationsAfter } from "../relations/service";
import { type Me, type PublicUser, toMe, toPublicUser, type UpdateMeBody } from "./schema";

/** The caller's own account; a deleted or missing account is a 404 (its tokens die within their lifetime). */
export async function loadSelf(deps: Deps, viewer: Viewer): Promise<UserDoc> {
  const user = await deps.db.users.findOne({ _id: new ObjectId(viewer.id), deletedAt: null });
  if (!user) throw ApiError.notFound("Account not found.");
  return user;
}

/**
 * The caller's own account, served from Redis when cached (`user:me:{id}`, SELF_CACHE_TTL_SECONDS): a warm
 * read waits on no MongoDB call. Every change the caller makes to what it shows drops the copy
 * (`forgetSelfView`); role and tier changes drop it with the standing.
 */
export async function getMe(deps: Deps, viewer: Viewer): Promise<Me> {
  const key = deps.keys.selfView(viewer.id);
  const { legal } = deps.config;
  const legalStamp = `${legal.termsVersion}|${legal.privacyVersion}`;
  const cached = await readCache(deps, getValue<Me & { cachedUntil?: string; legalStamp?: string }>(key), "self view");
  // A pending email change lapses on its own, and new legal versions ask for consent: the copy is good only
  // until then.
  if (
    cached &&
    cached.legalStamp === legalStamp &&
    (!cached.cachedUntil || new Date(cached.cachedUntil) > deps.clock.now())
  ) {
    const { cachedUntil: _until, legalStamp: _stamp, ...me } = cached;
    return me;
  }
  const me = toMe(await loadSelf(deps, viewer), deps.clock.now(), legal);
  const value = { ...me, legalStamp, ...(me.pendingEmailExpiresAt ? { cachedUntil: me.pendingEmailExpiresAt } : {}) };
  await fillCache(deps, setValue(key, value, deps.config.selfCacheTtlSeconds), "self view");
  return me;
}

/** Only the allow-listed fields of UpdateMeBody can change; the route refuses anything else with 400. */
export async function updateMe(deps: Deps, viewer: Viewer, patch: UpdateMeBody): Promise<Me> {
  const set: Record<string, unknown> = { updatedAt: deps.clock.now() };
  for (const field of ["displayName", "bio", "avatarUrl", "profileTheme"] as const) {
    if (patch[field] !== undefined) set[field] = patch[field];
  }
  if (patch.avatarMediaId !== undefined) {
    set.avatarUrl = (await requireReadyMedia(deps, viewer.id, patch.avatarMediaId, ["avatar"], "avatarMediaId")).url;
  }
  // A new avatar reaches the copies on the user's posts and comments through the avatar-sync job.
  if (set.avatarUrl !== undefined) set.avatarSync = { requestedAt: set.updatedAt };
  for (const [key, value] of Object.entries(patch.notificationPreferences ?? {})) {
    set[`notificationPreferences.${key}`] = value;
  }
  // A theme the store sells can only be worn once unlocked (checked in the same update).
  const theme = patch.profileTheme;
  const sold = theme != null && deps.config.shop.catalog.some((i) => i.kind === "cosmetic" && i.theme === theme);
  const updated = await deps.db.users.findOneAndUpdate(
    { _id: new ObjectId(viewer.id), deletedAt: null, ...(sold ? { unlockedThemes: theme } : {}) },
    { $set: set },
    { returnDocument: "after" },
  );
  if (!updated && sold && (await deps.db.users.findOne({ _id: new ObjectId(viewer.id), deletedAt: null }))) {
    throw ApiError.invalidField("profileTheme", "unlock this theme in the store first");
  }
  if (!updated) throw ApiError.notFound("Account not found.");
  await dropProfiles(deps, [
    deps.keys.userProfile(updated.usernameLower),
    deps.keys.selfView(viewer.id),
    // The standing carries the avatar comments copy; a copy outliving a failed drop is caught by their guard.
    ...(set.avatarUrl !== undefined ? [deps.keys.session(viewer.id)] : []),
  ]);
  return toMe(updated, deps.clock.now(), deps.config.legal);
}

/**
 * Public profile, served from Redis when cached: the cache read is the request's first Redis batch (`read`,
 * which also carries the rate limit and a signed-in viewer's blocks and mutes), so a cached profile costs one
 * round trip and no MongoDB call. Someone the viewer is blocked with, either way, does not exist for them
 * (404). A signed-in viewer also gets `viewer` — follows both ways (one MongoDB read), blocked, muted — which
 * is never cached. Without Redis the profile and relations come from MongoDB.
 */
export async function publicProfile(
  deps: Deps,
  read: RedisBatch,
  viewer: Viewer | undefined,
  username: string,
  origin: { deviceId: string | null } = { deviceId: null },
): Promise<PublicUser> {
  const key = deps.keys.userProfile(username.toLowerCase());
  const first = await readOrMiss(
    read,
    { cached: getValue<PublicUser | { missing: true }>(key), ...pendingRelationsRead(deps, viewer) },
    deps.log,
  );
  const relations = await relationsAfter(deps, viewer, first);
  const profile = first.cached ?? (await loadProfile(deps, key, username));
  if ("missing" in profile || relations.blockedWith(profile.id)) throw ApiError.notFound("No such user.");
  // A view for the owner's analytics: by someone else, signed in or a signed-out device (distinct per day).
  if (viewer?.id !== profile.id && (viewer || origin.deviceId)) {
    await recordActivity(deps, {
      event: "profile_viewed",
      actorId: viewer?.id ?? null,
      actorDeviceId: viewer ? null : origin.deviceId,
      ownerId: profile.id,
    });
  }
  if (!viewer || viewer.id === profile.id) return profile;
  const follows = await followsBetween(deps, viewer.id, profile.id);
  return {
    ...profile,
    viewer: { ...follows, blocked: relations.isBlocking(profile.id), muted: relations.isMuting(profile.id) },
  };
}

/**
 * Whether the viewer follows them and they follow the viewer: cached per ordered pair (`follow:pair:{a}:{b}`,
 * FOLLOW_PAIR_CACHE_TTL_SECONDS) and dropped by every follow or unfollow between the two; on a miss, one
 * MongoDB read for both directions.
 */
async function followsBetween(
  deps: Deps,
  viewerId: string,
  otherId: string,
): Promise<{ following: boolean; followedBy: boolean }> {
  const key = deps.keys.followPair(viewerId, otherId);
  const cached = await readCache(deps, getValue<{ following: boolean; followedBy: boolean }>(key), "follow pair");
  if (cached) return cached;
  const me = new ObjectId(viewerId);
  const them = new ObjectId(otherId);
  const edges = await deps.db.follows.find(
    {
      $or: [
        { followerId: me, followingId: them },
        { followerId: them, followingId: me },
      ],
    },
    { projection: { followerId: 1 }, limit: 2 },
  );
  const pair = {
    following: edges.some((e) => e.followerId.equals(me)),
    followedBy: edges.some((e) => e.followerId.equals(them)),
  };
  await fillCache(deps, setValue(key, pair, deps.config.followPairCacheTtlSeconds), "follow pair");
  return pair;
}

/** Reads a profile from MongoDB and caches it (a miss briefly too, so probing unknown names stays cheap). */
async function loadProfile(deps: Deps, key: string, username: string): Promise<PublicUser | { missing: true }> {
  const user = await deps.db.users.findOne({ usernameLower: username.toLowerCase(), deletedAt: null });
  const ttl = deps.config.profileCacheTtlSeconds;
  const profile = user ? toPublicUser(user) : ({ missing: true } as const);
  await bestEffort(deps, "profile cache fill", () =>
    runOp(deps.redis, setValue(key, profile, user ? ttl : Math.min(ttl, 30))),
  );
  return profile;
}

/**
 * Drops cached profiles (and other keys the same change made stale) after a write. Best effort: the write
 * stands, and a copy left behind expires within PROFILE_CACHE_TTL_SECONDS.
 */
async function dropProfiles(deps: Deps, stale: string[]): Promise<void> {
  await bestEffort(deps, "profile cache drop", () => runOp(deps.redis, deleteKeys(stale)));
}

/** Drops cached public profiles of these users (after a profile or follower-count change). */
export async function invalidateProfile(deps: Deps, ...userIds: string[]): Promise<void> {
  const users = await deps.db.users.find(
    { _id: { $in: userIds.map((id) => new ObjectId(id)) } },
    { projection: { usernameLower: 1 } },
  );
  await dropProfiles(
    deps,
    users.map((u) => deps.keys.userProfile(u.usernameLower)),
  );
}

/** Drops these users' cached profiles, plus any other keys the same change makes stale, in one round trip. */
export async function invalidateProfilesOf(
  deps: Deps,
  users: Pick<UserDoc, "usernameLower">[],
  alsoStale: string[] = [],
): Promise<void> {
  await dropProfiles(deps, [...users.map((u) => deps.keys.userProfile(u.usernameLower)), ...alsoStale]);
}

/** Admin: change a user's role (audited). Takes effect for the user's existing tokens at once. */
export async function setRole(deps: Deps, meta: RequestMeta, actor: Viewer, userId: string, role: Role): Promise<Me> {
  const before = await deps.db.users.findOneAndUpdate(
    { _id: new ObjectId(userId), deletedAt: null },
    { $set: { role, updatedAt: deps.clock.now() } },
    { returnDocument: "before" },
  );
  if (!before) throw ApiError.notFound("No such user.");
  // Takes effect for the user's existing tokens at once.
  await forgetStanding(deps, userId);
  await audit(deps, meta, {
    action: "role_changed",
    userId: before._id,
    actorId: new ObjectId(actor.id),
    metadata: { from: before.role, to: role },
  });
  return toMe({ ...before, role }, deps.clock.now(), deps.config.legal);
}

/**
 * Admin: set a user's tier and when it ends (audited). Takes effect for existing tokens at once, and a paid tier
 * past `expiresAt` acts as free everywhere without any job (core/standing.ts `effectiveTier`).
 */
export async function setTier(
  deps: Deps,
  meta: RequestMeta,
  actor: Viewer,
  userId: string,
  change: { tier: Tier; expiresAt: string | null },
): Promise<Me> {
  const expiresAt = change.tier === "free" || change.expiresAt === null ? null : new Date(change.expiresAt);
  const before = await deps.db.users.findOneAndUpdate(
    { _id: new ObjectId(userId), deletedAt: null },
    { $set: { tier: change.tier, tierExpiresAt: expiresAt, updatedAt: deps.clock.now() } },
    { returnDocument: "before" },
  );
  if (!before) throw ApiError.notFound("No such user.");
  await Promise.all([forgetStanding(deps, userId), dropProfiles(deps, [deps.keys.userProfile(before.usernameLower)])]);
  await audit(deps, meta, {
    action: "tier_changed",
    userId: before._id,
    actorId: new ObjectId(actor.id),
    metadata: {
      from: { tier: before.tier, expiresAt: before.tierExpiresAt?.toISOString() ?? null },
      to: { tier: change.tier, expiresAt: expiresAt?.toISOString() ?? null },
    },
  });
  return toMe({ ...before, tier: change.tier, tierExpiresAt: expiresAt }, deps.clock.now(), deps.config.legal);
}
