import { ApiError } from "../../core/errors";
import { forgetStanding } from "../../core/standing";
import type { RequestMeta, Viewer } from "../../core/viewer";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { fromStoredJson } from "../../platform/mongo/client-json";
import { deleteKeys, runOp } from "../../platform/redis-ops";
import { addDays } from "../../platform/time";
import { audit } from "../audit/service";
import { revokeAllSessions } from "../auth/service";
import { removeFromLeaderboards } from "../leaderboards/service";
import { loadSelf } from "../users/service";
import type { DeletionAccepted } from "./schema";

/** Soft delete: the account disappears at once, sessions die, and the erasure job removes personal data later. */
export async function deleteMe(deps: Deps, meta: RequestMeta, viewer: Viewer): Promise<DeletionAccepted> {
  const now = deps.clock.now();
  const user = await deps.db.users.findOneAndUpdate(
    { _id: new ObjectId(viewer.id), deletedAt: null },
    { $set: { deletedAt: now, updatedAt: now } },
  );
  if (!user) throw ApiError.notFound("Account not found.");
  await Promise.all([
    forgetStanding(deps, viewer.id),
    revokeAllSessions(deps, user._id, "account_deleted"),
    runOp(deps.redis, deleteKeys([deps.keys.userProfile(user.usernameLower)])),
    removeFromLeaderboards(deps, viewer.id),
    audit(deps, meta, { action: "account_deleted", userId: user._id }),
  ]);
  return { erasureAfter: addDays(now, deps.config.auth.accountDeletionGraceDays).toISOString() };
}

const SECRET_FIELDS = new Set(["passwordHash", "refreshTokenHash", "previousTokenHashes", "tokenHash"]);

/** Everything stored about the caller (GDPR access/portability), minus secrets. */
export async function exportMe(deps: Deps, meta: RequestMeta, viewer: Viewer): Promise<Record<string, unknown>> {
  const userId = new ObjectId(viewer.id);
  const perSection = deps.config.privacy.exportItemsPerSection;
  const [user, sessions, following, followers, referrals, auditLogs, events] = await Promise.all([
    loadSelf(deps, viewer),
    deps.db.sessions.find({ userId }, { limit: perSection }),
    deps.db.follows.find({ followerId: userId }, { limit: perSection }),
    deps.db.follows.find({ followingId: userId }, { limit: perSection }),
    deps.db.referrals.find({ $or: [{ referrerId: userId }, { referredUserId: userId }] }, { limit: perSection }),
    deps.db.auditLogs.find({ userId }, { limit: perSection, sort: { timestamp: -1 } }),
    // One at a time: an event the buffer cannot decode is left out, not a failed export.
    deps.db.analyticsEvents.findEach({ userId: viewer.id }, { limit: perSection }),
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
    bufferedAnalyticsEvents: events.flatMap((found) => {
      if (!found.decoded) return [];
      const { propertiesJson, ...event } = found.document;
      return [
        { ...event, properties: propertiesJson === undefined ? event.properties : fromStoredJson(propertiesJson) },
      ];
    }),
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
