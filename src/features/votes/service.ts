import { bestEffort } from "../../core/best-effort";
import { ApiError } from "../../core/errors";
import type { RequestMeta, Viewer } from "../../core/viewer";
import type { Tier } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import {
  addToCountedSet,
  countInWindow,
  incrementIfPresent,
  type RedisOp,
  runOp,
  runOps,
  seedCounter,
} from "../../platform/redis-ops";
import { DAY_MS, DAY_SECONDS, secondsUntilNextUtcDay, utcDay } from "../../platform/time";
import { recordActivity } from "../analytics/activity";
import { ipHash } from "../audit/service";
import { voteFraudScore } from "../fraud/rules";
import { notify } from "../notifications/service";
import { liveVoteCounts, mirrorVote } from "../posts/viewer-state";
import { findVisiblePost } from "../posts/visibility";
import { markEngaged } from "../ranking/engagement";
import { newVoteDoc } from "./documents";
import type { VoteResult } from "./schema";

/** The daily vote quota of a user on a tier: the counter that enforces it (UTC day) and its limit. */
export function voteQuota(deps: Deps, userId: string, tier: Tier, now: Date): { key: string; limit: number } {
  return { key: deps.keys.rateVote(userId, utcDay(now)), limit: deps.config.votes.dailyQuota[tier] };
}

/**
 * One vote per (post, user), enforced by the unique index even under concurrent requests. The daily quota,
 * the fraud sets and the real-time counter are Redis; the vote itself and the user counters are MongoDB.
 *
 * Round trips, in order: the post, the voter and one Redis pipeline (fraud signals and the quota, taken up
 * front) at once; the insert; then the counter, the user totals, the post's mark for the `counters` job and the
 * notification at once. Anything that stops the vote before it is recorded (invisible post, own post, over
 * quota, already voted) gives the quota unit back, so only recorded votes use quota.
 *
 * Without Redis the quota and the fraud signals cannot be taken, so nothing is written and the answer is a 503.
 * Once the vote is recorded it answers 200 whatever happens to Redis: the live counter is best effort, and the
 * count answered then comes from the votes themselves.
 */
export async function castVote(
  deps: Deps,
  viewer: Viewer,
  meta: RequestMeta & { deviceId: string | null },
  postId: string,
): Promise<VoteResult> {
  const now = deps.clock.now();
  const day = utcDay(now);
  const hashedIp = await ipHash(deps, meta.ip);
  const { key: quotaKey, limit: quota } = voteQuota(deps, viewer.id, viewer.tier, now);
  const signals: Record<string, RedisOp<number>> = {
    quotaUsed: countInWindow(quotaKey, DAY_SECONDS),
    accountsOnIp: addToCountedSet(deps.keys.fraudIp(hashedIp, day), viewer.id, DAY_SECONDS),
  };
  if (meta.deviceId) {
    signals.accountsOnDevice = addToCountedSet(
      deps.keys.fraudDevice(meta.deviceId),
      viewer.id,
      deps.config.votes.deviceWindowDays * DAY_SECONDS,
    );
  }
  const [found, counted, voter] = await Promise.allSettled([
    findVisiblePost(deps, viewer, postId),
    runOps(deps.redis, signals),
    deps.db.users.findOne(
      { _id: new ObjectId(viewer.id) },
      { projection: { trustScore: 1, shadowBanned: 1, createdAt: 1 } },
    ),
  ]);
  if (counted.status === "rejected") throw counted.reason;
  const { quotaUsed = 0, accountsOnIp = 1, accountsOnDevice = 1 } = counted.value;
  // A unit given back late is a unit the voter loses for the day, never a vote that counts twice.
  const giveBack = () =>
    bestEffort(deps, "vote quota refund", () => runOp(deps.redis, countInWindow(quotaKey, DAY_SECONDS, -1)));
  const refuse = async (error: unknown): Promise<never> => {
    await giveBack();
    throw error;
  };
  if (found.status === "rejected") return refuse(found.reason);
  if (voter.status === "rejected") return refuse(voter.reason);
  const post = found.value;
  if (post.userId.toHexString() === viewer.id) return refuse(ApiError.forbidden("You cannot vote on your own post."));
  if (quotaUsed > quota) {
    return refuse(ApiError.quotaExceeded(`Daily vote quota of ${quota} reached.`, secondsUntilNextUtcDay(now)));
  }

  const fraudScore = voteFraudScore(
    {
      accountsOnIp,
      accountsOnDevice,
      trustScore: voter.value?.trustScore ?? 50,
      hasDevice: Boolean(meta.deviceId),
      accountAgeDays: voter.value ? (now.getTime() - voter.value.createdAt.getTime()) / DAY_MS : 0,
    },
    { ...deps.config.votes, youngAccountDays: deps.config.votes.review.youngAccountDays },
  );
  const vote = newVoteDoc({
    postId: post._id,
    userId: new ObjectId(viewer.id),
    postAuthorId: post.userId,
    deviceId: meta.deviceId,
    ipHash: hashedIp,
    sessionId: viewer.sessionId,
    createdAt: now,
    fraudScore,
    flagged: fraudScore >= deps.config.votes.fraudFlagThreshold,
    shadow: Boolean(voter.value?.shadowBanned),
  });
  let inserted: boolean;
  try {
    inserted = await deps.db.votes.insertUnique(vote);
  } catch (error) {
    return refuse(error);
  }
  if (!inserted) {
    // Already voted: no further effect, and no quota used. The winning request may not have bumped the
    // counter yet, but this vote exists, so the count is at least 1.
    const [counts] = await Promise.all([liveVoteCounts(deps, [post._id]), giveBack()]);
    return { voted: true, voteCount: Math.max(counts.get(postId) ?? post.voteCount, 1) };
  }
  if (vote.shadow) {
    await mirrorVote(deps, viewer.id, postId, true);
    return { voted: true, voteCount: post.voteCount };
  }
  await recordActivity(deps, {
    event: "vote_cast",
    actorId: viewer.id,
    ownerId: post.userId.toHexString(),
    postId: post._id.toHexString(),
  });
  // Counter, voted set, user totals, the recount mark and the author's notification are independent: one wait.
  const [, voteCount] = await Promise.all([
    mirrorVote(deps, viewer.id, postId, true),
    moveVoteCounter(deps, post._id, 1),
    markEngaged(deps, [postId]),
    deps.db.users.bulkWrite(
      [
        { updateOne: { filter: { _id: vote.userId }, update: { $inc: { totalVotesGiven: 1 } } } },
        { updateOne: { filter: { _id: post.userId }, update: { $inc: { totalVotesReceived: 1 } } } },
      ],
      { ordered: false },
    ),
    vote.flagged
      ? Promise.resolve()
      : notify(deps, {
          type: "vote",
          recipientId: post.userId,
          actorId: vote.userId,
          postId: post._id,
          imageUrl: post.thumbnailUrl,
        }),
  ]);
  return { voted: true, voteCount };
}

/**
 * Moves the live counter `post:votes:{id}` after a vote was recorded or removed, and returns the count to
 * answer. A missing counter (expired, or lost with Redis) is seeded from the votes themselves, counted after
 * this change, never from the denormalized `posts.voteCount`, which lags until the next `counters` run. Without
 * Redis the count comes from the votes too. Racing seeds can be off by one; the `counters` job rewrites the
 * counter from its exact recount (the vote marked the post), so it heals on the next run.
 */
async function moveVoteCounter(deps: Deps, postId: ObjectId, by: 1 | -1): Promise<number> {
  const key = deps.keys.postVotes(postId.toHexString());
  const ttl = deps.config.votes.counterTtlSeconds;
  const moved = await bestEffort(deps, "live vote counter", () => runOp(deps.redis, incrementIfPresent(key, by, ttl)));
  if (moved !== undefined && moved !== null) return moved;
  const counted = await countVotes(deps, postId);
  if (moved === undefined) return counted;
  return (
    (await bestEffort(deps, "live vote counter seed", () => runOp(deps.redis, seedCounter(key, counted, ttl)))) ??
    counted
  );
}

/** The post's counted votes (voters not shadow-banned), from the votes collection: what `voteCount` means. */
async function countVotes(deps: Deps, postId: ObjectId): Promise<number> {
  const [row] = await deps.db.votes.aggregate<{ n: number }>([
    { $match: { postId, shadow: { $ne: true } } },
    { $count: "n" },
  ]);
  return row?.n ?? 0;
}

/** Unvoting is allowed only while the vote is unsettled; once it paid out it stays (409). */
export async function removeVote(deps: Deps, viewer: Viewer, postId: string): Promise<void> {
  const post = await findVisiblePost(deps, viewer, postId);
  const me = new ObjectId(viewer.id);
  const removed = await deps.db.votes.findOneAndDelete({ postId: post._id, userId: me, gemBatchId: null });
  if (!removed) {
    const settled = await deps.db.votes.findOne({ postId: post._id, userId: me }, { projection: { _id: 1 } });
    if (settled) throw ApiError.conflict("vote_settled", "This vote has already been settled and cannot be removed.");
    return;
  }
  if (removed.shadow) {
    await mirrorVote(deps, viewer.id, postId, false);
    return;
  }
  await recordActivity(deps, {
    event: "vote_removed",
    actorId: viewer.id,
    ownerId: post.userId.toHexString(),
    postId: post._id.toHexString(),
  });
  await Promise.all([
    mirrorVote(deps, viewer.id, postId, false),
    moveVoteCounter(deps, post._id, -1),
    markEngaged(deps, [postId]),
    deps.db.users.bulkWrite(
      [
        { updateOne: { filter: { _id: me }, update: { $inc: { totalVotesGiven: -1 } } } },
        { updateOne: { filter: { _id: post.userId }, update: { $inc: { totalVotesReceived: -1 } } } },
      ],
      { ordered: false },
    ),
  ]);
}
