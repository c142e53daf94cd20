import type { Job, JobContext, JobReport } from "../../core/jobs";
import { relationMember } from "../../core/relations";
import type { ErasurePlan, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { asClickHouseOutage } from "../../platform/clickhouse";
import { ObjectId } from "../../platform/ids";
import type { Filter } from "../../platform/mongo/client";
import {
  addMembers,
  changeGuardedSet,
  deleteKeys,
  type RedisOp,
  removeMembers,
  runOps,
} from "../../platform/redis-ops";
import { addDays } from "../../platform/time";
import { finishFlushBatch } from "../analytics/flush";
import { auditEntry } from "../audit/service";
import { leaderboardRemoval } from "../leaderboards/service";
import { invalidateProfile } from "../users/service";
import { settleAccount } from "./deletion";
import { FEATURE_PRIVACY } from "./features";

/**
 * Erases personal data of accounts deleted more than ACCOUNT_DELETION_GRACE_DAYS ago. What stays is the
 * anonymous trail other records need: the user document (an id, counters, the gem balance) that ledger
 * entries, votes, posts and comments keep pointing at, with nothing that identifies a person in any of them.
 *
 * Per account, each step idempotent and `erasedAt` set last, so a crashed run is finished by the next one:
 * 1. the deletion is settled first if it is not (content hidden, threads recounted; see deletion.ts);
 * 2. the plan — whom and what the records about to go point at (follow and block counterparts, devices,
 *    shared posts) — is recorded on the account before anything is deleted;
 * 3. its relations, sessions, tokens, mail, devices' records and own notifications are deleted;
 * 4. personal fields are cleared wherever they were copied: posts, comments, generation prompts, vote and
 *    referral signals, report snapshots and texts, appeals, gift entries and notices, audit entries;
 * 5. its analytics go: the buffer (claimed batches are finished first, so the flush's exactly-once holds) and
 *    ClickHouse (`events` and the tables filled from it), by user id and, for anonymous rows, by its devices;
 * 6. caches: the counterparts' relation sets and counts, the account's own keys, fraud sets, leaderboards;
 * 7. the erasure is audited, then the account itself is anonymised.
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
        projection: {
          username: 1,
          usernameLower: 1,
          devices: 1,
          deletedAt: 1,
          deletionSettledAt: 1,
          deletionRecountAfter: 1,
          erasurePlan: 1,
          erasureCounterparts: 1,
        },
      },
    );
    if (due.length === 0) return { more: false };
    for (const user of due) {
      if (!user.deletionSettledAt && !(await settleAccount(ctx, user))) return { more: true };
      await eraseOne(ctx, user);
      await ctx.checkpoint("erased-one");
      ctx.count("accounts");
    }
  }
  return { more: true };
}

type Erasable = Pick<
  UserDoc,
  "_id" | "username" | "usernameLower" | "devices" | "erasurePlan" | "erasureCounterparts" | "deletedAt"
>;

async function eraseOne(ctx: JobContext, user: Erasable): Promise<void> {
  const { deps } = ctx;
  const userId = user._id;
  const plan = user.erasurePlan ?? (await recordPlan(deps, user));
  await ctx.checkpoint("counterparts-recorded");
  await deleteRecords(deps, userId);
  await ctx.checkpoint("edges-deleted");
  await scrubCopies(deps, user);
  await ctx.checkpoint("copies-scrubbed");
  await eraseAnalytics(deps, userId, plan.deviceIds);
  await ctx.checkpoint("analytics-erased");
  // Each feature's own records (journal, consents, subscriptions, messages, stories): see features.ts.
  await Promise.all(FEATURE_PRIVACY.map((f) => f.eraseUser(deps, userId.toHexString())));
  await ctx.checkpoint("features-erased");
  await Promise.all([
    plan.followCounterparts.length ? recountFollows(deps, plan.followCounterparts) : null,
    dropCaches(deps, userId, plan),
  ]);
  // Before `erasedAt`, and an upsert: a rerun after a crash on either side of it records exactly one entry.
  const { _id: _upsertAssignsId, ...entry } = await auditEntry(deps, null, {
    action: "account_erased",
    userId,
    actorId: null,
  });
  await deps.db.auditLogs.updateOne({ userId, action: "account_erased" }, { $setOnInsert: entry }, { upsert: true });
  await ctx.checkpoint("audited");
  const now = deps.clock.now();
  const anonymous = anonymousName(userId);
  await deps.db.users.updateOne(
    { _id: userId },
    {
      $set: {
        username: anonymous,
        usernameLower: anonymous,
        email: null,
        emailVerified: false,
        pendingEmail: null,
        pendingEmailExpiresAt: null,
        passwordHash: null,
        displayName: "Deleted account",
        avatarUrl: null,
        bio: "",
        profileTheme: null,
        oauthProviders: [],
        devices: [],
        revokedSessionIds: [],
        followersCount: 0,
        followingCount: 0,
        erasedAt: now,
        updatedAt: now,
      },
      $unset: { erasurePlan: "", erasureCounterparts: "", deletionRecountAfter: "" },
    },
  );
}

const anonymousName = (userId: ObjectId) => `deleted_${userId.toHexString()}`;

/** Distinct values, kept in first-seen order. */
function distinct<T>(values: T[], key: (v: T) => string): T[] {
  return [...new Map(values.map((v) => [key(v), v])).values()];
}
const hex = (id: ObjectId) => id.toHexString();

/** The most devices, counterparts or shared posts one plan records (far beyond any real account). */
const PLAN_LIMIT = 50_000;

/**
 * Reads whom and what the account's records point at, before any of them is deleted, and keeps it on the
 * account: a rerun after a crash finds the plan even though the records it came from are gone.
 */
async function recordPlan(deps: Deps, user: Erasable): Promise<ErasurePlan> {
  const userId = user._id;
  const deviceIds = (docs: { _id: unknown }[]) =>
    docs.map((d) => d._id).filter((d): d is string => typeof d === "string");
  const distinctDevices = (match: Filter) => [
    { $match: { ...match, deviceId: { $type: "string" } } },
    { $group: { _id: "$deviceId" } },
    { $limit: PLAN_LIMIT },
  ];
  const [edges, relations, sessionDevices, voteDevices, signupDevices, eventDevices, shares] = await Promise.all([
    deps.db.follows.find(
      { $or: [{ followerId: userId }, { followingId: userId }] },
      { projection: { followerId: 1, followingId: 1 }, limit: PLAN_LIMIT },
    ),
    deps.db.blocks.find(
      { $or: [{ userId }, { targetId: userId }] },
      { projection: { userId: 1, targetId: 1 }, limit: PLAN_LIMIT },
    ),
    deps.db.sessions.aggregate<{ _id: unknown }>(distinctDevices({ userId })),
    deps.db.votes.aggregate<{ _id: unknown }>(distinctDevices({ userId })),
    deps.db.referrals.aggregate<{ _id: unknown }>(distinctDevices({ referredUserId: userId })),
    deps.db.analyticsEvents.aggregate<{ _id: unknown }>(distinctDevices({ userId: hex(userId) })),
    deps.db.shares.find({ userId }, { projection: { postId: 1 }, limit: PLAN_LIMIT }),
  ]);
  const other = (a: ObjectId, b: ObjectId) => (a.equals(userId) ? b : a);
  const plan: ErasurePlan = {
    followCounterparts: distinct(
      [...(user.erasureCounterparts ?? []), ...edges.map((e) => other(e.followerId, e.followingId))],
      hex,
    ),
    relationCounterparts: distinct(
      relations.map((r) => other(r.userId, r.targetId)),
      hex,
    ),
    deviceIds: distinct(
      [
        ...(user.devices ?? []).map((d) => d.deviceId),
        ...deviceIds(sessionDevices),
        ...deviceIds(voteDevices),
        ...deviceIds(signupDevices),
        ...deviceIds(eventDevices),
      ],
      (d) => d,
    ),
    sharedPostIds: distinct(
      shares.map((s) => s.postId),
      hex,
    ),
  };
  await deps.db.users.updateOne({ _id: userId }, { $set: { erasurePlan: plan } });
  return plan;
}

/** Records that exist only for the account: its relations both ways, shares, sessions, mail, own notifications. */
async function deleteRecords(deps: Deps, userId: ObjectId): Promise<void> {
  await Promise.all([
    deps.db.follows.deleteMany({ $or: [{ followerId: userId }, { followingId: userId }] }),
    deps.db.blocks.deleteMany({ $or: [{ userId }, { targetId: userId }] }),
    deps.db.shares.deleteMany({ userId }),
    deps.db.sessions.deleteMany({ userId }),
    deps.db.emailTokens.deleteMany({ userId }),
    deps.db.emailOutbox.deleteMany({ userId }),
    deps.db.notifications.deleteMany({ userId }),
    deps.db.notifications.updateMany({ actorIds: userId }, { $pull: { sampleActors: userId, actorIds: userId } }),
  ]);
}

/** Clears the account's personal data wherever a record elsewhere copied it. */
async function scrubCopies(deps: Deps, user: Erasable): Promise<void> {
  const userId = user._id;
  const id = hex(userId);
  const anonymous = anonymousName(userId);
  // Usernames never change, so the texts that quote one are known exactly (see gems/gifts.ts).
  const quoted = `@${user.username}`;
  await Promise.all([
    deps.db.posts.updateMany(
      { userId },
      {
        $set: {
          username: anonymous,
          userAvatarUrl: null,
          prompt: "",
          refinedPrompt: null,
          "generationParams.negativePrompt": null,
          shareCaption: null,
          tags: [],
        },
      },
    ),
    deps.db.comments.updateMany({ userId }, { $set: { username: anonymous, userAvatarUrl: null, content: "" } }),
    deps.db.generationJobs.updateMany({ userId }, { $set: { prompt: "", refinedPrompt: null, negativePrompt: null } }),
    deps.db.votes.updateMany(
      { userId, $or: [{ ipHash: { $ne: null } }, { deviceId: { $ne: null } }, { sessionId: { $ne: null } }] },
      { $set: { ipHash: null, deviceId: null, sessionId: null } },
    ),
    deps.db.referrals.updateMany({ referredUserId: userId }, { $set: { ipHash: null, deviceId: null } }),
    // Reports keep what was reported and why; the evidence no longer names or quotes the person.
    deps.db.reports.updateMany(
      { targetUserId: userId, "snapshot.authorId": id },
      { $set: { "snapshot.username": anonymous, "snapshot.text": null, "snapshot.imageUrl": null } },
    ),
    deps.db.reports.updateMany({ reporterId: userId }, { $set: { description: null } }),
    deps.db.appeals.updateMany({ userId }, { $set: { reason: "" } }),
    // Gifts: the ledger trail stays (amounts, ids), the sender's name and message go from both sides.
    deps.db.gemTransactions.updateMany(
      { source: "gift", "metadata.senderId": id },
      { $set: { "metadata.senderUsername": anonymous, "metadata.message": null } },
    ),
    deps.db.gemTransactions.updateMany(
      { source: "gift", "metadata.senderId": id, description: `Gift from ${quoted}` },
      { $set: { description: "Gift from a deleted account" } },
    ),
    deps.db.gemTransactions.updateMany(
      { source: "gift", "metadata.recipientId": id, description: `Gift to ${quoted}` },
      { $set: { description: "Gift to a deleted account" } },
    ),
    scrubGiftNotices(deps, userId, quoted),
    // Security entries stay (what happened, when, to which account); where from and on what device go.
    deps.db.auditLogs.updateMany(
      { $or: [{ userId }, { actorId: userId }] },
      { $set: { ipHash: null, userAgent: null }, $unset: { "metadata.deviceId": "" } },
    ),
    deps.db.auditLogs.updateMany(
      { userId, action: { $in: ["email_change_requested", "email_changed"] } },
      { $set: { metadata: {} } },
    ),
  ]);
}

/**
 * The "@name sent you N gems" notices (with the gift's message) in the inboxes of the people the account gave
 * gems to, found through its gift debits.
 */
async function scrubGiftNotices(deps: Deps, userId: ObjectId, quoted: string): Promise<void> {
  const recipients = await deps.db.gemTransactions.aggregate<{ _id: string }>([
    { $match: { userId, type: "spend", source: "gift", "metadata.recipientId": { $type: "string" } } },
    { $group: { _id: "$metadata.recipientId" } },
  ]);
  if (recipients.length === 0) return;
  await deps.db.notifications.updateMany(
    {
      userId: { $in: recipients.map((r) => new ObjectId(r._id)) },
      type: "gem_earned",
      "actionPayload.userId": hex(userId),
      title: { $regex: `^${quoted} ` },
    },
    [
      {
        $set: {
          title: { $replaceAll: { input: "$title", find: quoted, replacement: "A deleted account" } },
          body: null,
        },
      },
    ],
  );
}

/** Rounds of finishing claimed batches before the buffer counts as drained of the account's events. */
const BUFFER_ROUNDS = 3;

/**
 * The account's analytics: the buffered events, then its rows in ClickHouse. A buffered event a flush has
 * claimed cannot just be deleted — the batch's chunks, and so their deduplication tokens, would shift — so
 * such batches are finished (into ClickHouse, exactly once, as the flush would) and then deleted there with
 * the rest. Anonymous rows count as the account's when they came from one of its devices.
 */
async function eraseAnalytics(deps: Deps, userId: ObjectId, deviceIds: string[]): Promise<void> {
  const mine: Filter = {
    $or: [{ userId: hex(userId) }, ...(deviceIds.length ? [{ userId: null, deviceId: { $in: deviceIds } }] : [])],
  };
  for (let round = 1; ; round++) {
    const claimed = await deps.db.analyticsEvents.aggregate<{ _id: string }>([
      { $match: { ...mine, flushBatchId: { $type: "string" } } },
      { $group: { _id: "$flushBatchId" } },
    ]);
    for (const batch of claimed) await finishFlushBatch(deps, batch._id);
    await deps.db.analyticsEvents.deleteMany({ ...mine, flushBatchId: null });
    if (!(await deps.db.analyticsEvents.findOne(mine, { projection: { _id: 1 } }))) break;
    // A flush claimed some in between: finish those too.
    if (round === BUFFER_ROUNDS) throw new Error("the account's buffered analytics events keep being claimed");
  }
  const params = { userId: hex(userId), devices: deviceIds };
  const statements = [
    "DELETE FROM events WHERE user_id = {userId:String} OR (user_id = '' AND has({devices:Array(String)}, device_id))",
    "DELETE FROM retention_user_days WHERE user_id = {userId:String}",
    "DELETE FROM retention_first_days WHERE user_id = {userId:String}",
  ];
  try {
    for (const query of statements) await deps.clickhouse.command({ query, query_params: params });
  } catch (error) {
    throw asClickHouseOutage(error);
  }
}

/** Redis operations per pipeline when editing many cached sets. */
const OPS_PER_PIPELINE = 500;

/**
 * Takes the account out of the cached relation sets of everyone it was in a block or mute with (moving each
 * set's generation, so a rebuild in flight cannot bring it back), drops its own keys, removes it from the fraud
 * sets of its devices and from the leaderboards, and queues the posts it had shared for a recount.
 */
async function dropCaches(deps: Deps, userId: ObjectId, plan: ErasurePlan): Promise<void> {
  const { keys } = deps;
  const id = hex(userId);
  const ttl = deps.config.relations.cacheTtlSeconds + 86_400;
  const members = [relationMember.blocking(id), relationMember.blockedBy(id), relationMember.muting(id)];
  const ops: RedisOp<unknown>[] = [
    deleteKeys([
      keys.relations(id),
      keys.relationsGeneration(id),
      keys.session(id),
      keys.userStreak(id),
      keys.userOnline(id),
      keys.flagsUser(id),
      keys.votedPosts(id),
      keys.votedPostsGeneration(id),
    ]),
    leaderboardRemoval(deps, id),
    ...plan.relationCounterparts.map((other) =>
      changeGuardedSet(
        keys.relations(hex(other)),
        keys.relationsGeneration(hex(other)),
        { add: [], remove: members },
        ttl,
      ),
    ),
    ...plan.deviceIds.map((device) => removeMembers(keys.fraudDevice(device), [id])),
  ];
  for (let at = 0; at < plan.sharedPostIds.length; at += OPS_PER_PIPELINE) {
    ops.push(addMembers(keys.countersDirtyPosts(), plan.sharedPostIds.slice(at, at + OPS_PER_PIPELINE).map(hex)));
  }
  for (let at = 0; at < ops.length; at += OPS_PER_PIPELINE) {
    const chunk = ops.slice(at, at + OPS_PER_PIPELINE);
    await runOps(deps.redis, Object.fromEntries(chunk.map((op, i) => [String(i), op])));
  }
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
  const byId = (rows: { _id: ObjectId; n: number }[]) => new Map(rows.map((r) => [hex(r._id), r.n]));
  const [followersOf, followingOf] = [byId(followers), byId(following)];
  await deps.db.users.bulkWrite(
    userIds.map((id) => ({
      updateOne: {
        filter: { _id: id },
        update: {
          $set: { followersCount: followersOf.get(hex(id)) ?? 0, followingCount: followingOf.get(hex(id)) ?? 0 },
        },
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
