import type { Deps } from "../../deps";
import type { Viewer } from "../../http/context";
import { ApiError } from "../../http/errors";
import { secondsUntilNextUtcDay, utcDay } from "../../platform/clock";
import { newObjectId, ObjectId } from "../../platform/ids";
import { DuplicateKeyError } from "../../platform/mongo/client";
import { ipHash, type RequestMeta } from "../audit/service";
import { notify } from "../notifications/service";
import { findVisiblePost } from "../posts/visibility";
import { voteFraudScore } from "./fraud";

const DAY_SECONDS = 86_400;
const DEVICE_WINDOW_SECONDS = 30 * DAY_SECONDS;

/** `votes` (seed 000) plus `shadow` (the voter was shadow-banned: recorded, but counted nowhere). */
export interface VoteDoc {
  _id: ObjectId;
  postId: ObjectId;
  userId: ObjectId;
  postAuthorId: ObjectId;
  deviceId: string | null;
  ipHash: string;
  sessionId: string;
  gemAwarded: boolean;
  gemBatchId: string | null;
  createdAt: Date;
  fraudScore: number;
  flagged: boolean;
  shadow: boolean;
}

// Creates the real-time counter from MongoDB's count when it is missing, then adds; one round trip.
const INCR_FROM_BASE = `
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return n`;

/**
 * One vote per (post, user), enforced by the unique index even under concurrent requests. The daily quota,
 * the fraud sets and the real-time counter are Redis; the vote itself and the user counters are MongoDB.
 *
 * Round trips, in order: the post, the voter and one Redis pipeline (fraud signals and the quota, taken up
 * front) at once; the insert; then the counter, the user totals and the notification at once. Anything that
 * stops the vote before it is recorded (invisible post, own post, over quota, already voted) gives the
 * quota unit back, so only recorded votes use quota.
 */
export async function castVote(
  deps: Deps,
  viewer: Viewer,
  meta: RequestMeta & { deviceId: string | null },
  postId: string,
): Promise<{ voted: true; voteCount: number }> {
  const now = deps.clock.now();
  const day = utcDay(now);
  const hashedIp = await ipHash(deps, meta.ip);
  const quotaKey = deps.keys.rateVote(viewer.id, day);
  const quota = deps.config.votes.dailyQuota[viewer.tier];

  const signals = deps.redis.pipeline();
  signals.incr(quotaKey);
  signals.expire(quotaKey, DAY_SECONDS);
  signals.sadd(deps.keys.fraudIp(hashedIp, day), viewer.id);
  signals.expire(deps.keys.fraudIp(hashedIp, day), DAY_SECONDS);
  signals.scard(deps.keys.fraudIp(hashedIp, day));
  if (meta.deviceId) {
    signals.sadd(deps.keys.fraudDevice(meta.deviceId), viewer.id);
    signals.expire(deps.keys.fraudDevice(meta.deviceId), DEVICE_WINDOW_SECONDS);
    signals.scard(deps.keys.fraudDevice(meta.deviceId));
  }
  const [found, redisReplies, voter] = await Promise.allSettled([
    findVisiblePost(deps, viewer, postId),
    signals.exec() as Promise<number[]>,
    deps.db.users.findOne({ _id: new ObjectId(viewer.id) }, { projection: { trustScore: 1, shadowBanned: 1 } }),
  ]);
  if (redisReplies.status === "rejected") throw redisReplies.reason;
  const replies = redisReplies.value;
  const giveBack = () => deps.redis.decr(quotaKey);
  const refuse = async (error: unknown): Promise<never> => {
    await giveBack();
    throw error;
  };
  if (found.status === "rejected") return refuse(found.reason);
  if (voter.status === "rejected") return refuse(voter.reason);
  const post = found.value;
  if (post.userId.toHexString() === viewer.id) return refuse(ApiError.forbidden("You cannot vote on your own post."));
  if ((replies[0] ?? 0) > quota) {
    return refuse(
      new ApiError("quota_exceeded", `Daily vote quota of ${quota} reached.`, {
        headers: { "Retry-After": String(secondsUntilNextUtcDay(now)) },
      }),
    );
  }

  const fraudScore = voteFraudScore(
    {
      accountsOnIp: replies[4] ?? 1,
      accountsOnDevice: meta.deviceId ? (replies[7] ?? 1) : 1,
      trustScore: voter.value?.trustScore ?? 50,
      hasDevice: Boolean(meta.deviceId),
    },
    deps.config.votes,
  );
  const vote: VoteDoc = {
    _id: newObjectId(),
    postId: post._id,
    userId: new ObjectId(viewer.id),
    postAuthorId: post.userId,
    deviceId: meta.deviceId,
    ipHash: hashedIp,
    sessionId: viewer.sessionId,
    gemAwarded: false,
    gemBatchId: null,
    createdAt: now,
    fraudScore,
    flagged: fraudScore >= deps.config.votes.fraudFlagThreshold,
    shadow: Boolean(voter.value?.shadowBanned),
  };
  try {
    await deps.db.votes.insertOne(vote);
  } catch (error) {
    if (!(error instanceof DuplicateKeyError)) return refuse(error);
    // Already voted: no further effect, and no quota used. The winning request may not have bumped the
    // counter yet, but this vote exists, so the count is at least 1.
    const [counts] = await Promise.all([liveVoteCounts(deps, [post._id]), giveBack()]);
    return { voted: true, voteCount: Math.max(counts.get(postId) ?? post.voteCount, 1) };
  }
  if (vote.shadow) return { voted: true, voteCount: post.voteCount };
  // Counter, user totals and the author's notification are independent: one wait for all three.
  const [voteCount] = await Promise.all([
    bumpVoteCounter(deps, post._id, post.voteCount, 1),
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

async function bumpVoteCounter(deps: Deps, postId: ObjectId, base: number, by: 1 | -1): Promise<number> {
  const id = postId.toHexString();
  const pipeline = deps.redis.pipeline();
  pipeline.eval(INCR_FROM_BASE, [deps.keys.postVotes(id)], [base, by, deps.config.votes.counterTtlSeconds]);
  pipeline.sadd(deps.keys.countersDirtyPosts(), id);
  const [count] = (await pipeline.exec()) as [number, number];
  return count;
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
  if (removed.shadow) return;
  await Promise.all([
    bumpVoteCounter(deps, post._id, post.voteCount, -1),
    deps.db.users.bulkWrite(
      [
        { updateOne: { filter: { _id: me }, update: { $inc: { totalVotesGiven: -1 } } } },
        { updateOne: { filter: { _id: post.userId }, update: { $inc: { totalVotesReceived: -1 } } } },
      ],
      { ordered: false },
    ),
  ]);
}

/** Which of these posts the viewer voted on: one batched lookup per page. */
export async function votedByViewer(deps: Deps, viewerId: string, postIds: ObjectId[]): Promise<Set<string>> {
  if (postIds.length === 0) return new Set();
  const votes = await deps.db.votes.find(
    { userId: new ObjectId(viewerId), postId: { $in: postIds } },
    { projection: { postId: 1 }, limit: postIds.length },
  );
  return new Set(votes.map((v) => v.postId.toHexString()));
}

/** Real-time vote counts from Redis where a counter exists (one MGET). */
export async function liveVoteCounts(deps: Deps, postIds: ObjectId[]): Promise<Map<string, number>> {
  if (postIds.length === 0) return new Map();
  const ids = postIds.map((p) => p.toHexString());
  const values = await deps.redis.mget<(number | null)[]>(...ids.map((id) => deps.keys.postVotes(id)));
  const counts = new Map<string, number>();
  ids.forEach((id, i) => {
    const v = values[i];
    if (v !== null && v !== undefined) counts.set(id, Number(v));
  });
  return counts;
}
