import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { Deps } from "../../deps";
import type { ObjectId } from "../../platform/ids";
import { addDays } from "../../platform/time";
import { auditEntry } from "../audit/service";
import { invalidateProfile } from "../users/service";

/**
 * Erases personal data of accounts deleted more than ACCOUNT_DELETION_GRACE_DAYS ago. The user document
 * stays (ledger entries and votes keep pointing at an id) but loses everything that identifies a person.
 * Each step is idempotent and `erasedAt` is set last, so a crashed run is finished by the next one; the
 * accounts whose follower counts must be recomputed are recorded before any edge is deleted.
 */
export async function eraseDeletedAccounts(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const cutoff = addDays(deps.clock.now(), -deps.config.auth.accountDeletionGraceDays);
  while (ctx.timeLeft() > 2_000) {
    const due = await deps.db.users.find(
      { deletedAt: { $lte: cutoff }, erasedAt: null },
      {
        sort: { deletedAt: 1 },
        limit: deps.config.privacy.erasureBatchAccounts,
        projection: { _id: 1, erasureCounterparts: 1 },
      },
    );
    if (due.length === 0) return { more: false };
    for (const user of due) {
      await eraseOne(ctx, user._id, user.erasureCounterparts);
      await ctx.checkpoint("erased-one");
      ctx.count("accounts");
    }
  }
  return { more: true };
}

async function eraseOne(ctx: JobContext, userId: ObjectId, recorded: ObjectId[] | undefined): Promise<void> {
  const { deps } = ctx;
  let counterparts = recorded;
  if (!counterparts) {
    const edges = await deps.db.follows.find(
      { $or: [{ followerId: userId }, { followingId: userId }] },
      { limit: 50_000 },
    );
    counterparts = [
      ...new Map(
        edges.map((e) => {
          const other = e.followerId.equals(userId) ? e.followingId : e.followerId;
          return [other.toHexString(), other] as const;
        }),
      ).values(),
    ];
    await deps.db.users.updateOne({ _id: userId }, { $set: { erasureCounterparts: counterparts } });
  }
  await ctx.checkpoint("counterparts-recorded");
  await Promise.all([
    deps.db.follows.deleteMany({ $or: [{ followerId: userId }, { followingId: userId }] }),
    deps.db.sessions.deleteMany({ userId }),
    deps.db.emailTokens.deleteMany({ userId }),
    deps.db.emailOutbox.deleteMany({ userId }),
    deps.db.notifications.deleteMany({ userId }),
    deps.db.notifications.updateMany({ actorIds: userId }, { $pull: { sampleActors: userId, actorIds: userId } }),
  ]);
  await ctx.checkpoint("edges-deleted");
  if (counterparts.length) await recountFollows(deps, counterparts);
  // Before `erasedAt`, and an upsert: a rerun after a crash on either side of it records exactly one entry.
  const { _id: _upsertAssignsId, ...entry } = await auditEntry(deps, null, {
    action: "account_erased",
    userId,
    actorId: null,
  });
  await deps.db.auditLogs.updateOne({ userId, action: "account_erased" }, { $setOnInsert: entry }, { upsert: true });
  await ctx.checkpoint("audited");
  const now = deps.clock.now();
  const anonymous = `deleted_${userId.toHexString()}`;
  await deps.db.users.updateOne(
    { _id: userId },
    {
      $set: {
        username: anonymous,
        usernameLower: anonymous,
        email: null,
        emailVerified: false,
        passwordHash: null,
        displayName: "Deleted account",
        avatarUrl: null,
        bio: "",
        profileTheme: null,
        oauthProviders: [],
        devices: [],
        followersCount: 0,
        followingCount: 0,
        erasedAt: now,
        updatedAt: now,
      },
      $unset: { erasureCounterparts: "" },
    },
  );
}

/**
 * Sets follower/following counts of these users from the follows collection itself (exact, idempotent), and
 * drops their cached public profiles, which still count the erased account.
 */
async function recountFollows(deps: Deps, userIds: ObjectId[]): Promise<void> {
  const [followers, following] = await Promise.all([
    deps.db.follows.aggregate<{ _id: ObjectId; n: number }>([
      { $match: { followingId: { $in: userIds } } },
      { $group: { _id: "$followingId", n: { $sum: 1 } } },
    ]),
    deps.db.follows.aggregate<{ _id: ObjectId; n: number }>([
      { $match: { followerId: { $in: userIds } } },
      { $group: { _id: "$followerId", n: { $sum: 1 } } },
    ]),
  ]);
  const count = (rows: { _id: ObjectId; n: number }[], id: ObjectId) => rows.find((r) => r._id.equals(id))?.n ?? 0;
  await deps.db.users.bulkWrite(
    userIds.map((id) => ({
      updateOne: {
        filter: { _id: id },
        update: { $set: { followersCount: count(followers, id), followingCount: count(following, id) } },
      },
    })),
    { ordered: false },
  );
  await invalidateProfile(deps, ...userIds.map((id) => id.toHexString()));
}

export const accountErasureJob: Job = {
  name: "account-erasure",
  description: "Erases personal data of accounts deleted longer ago than the grace period (GDPR).",
  run: eraseDeletedAccounts,
};
