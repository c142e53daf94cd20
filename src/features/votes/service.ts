import { bestEffort } from "../../core/best-effort";
import { ApiError } from "../../core/errors";
import { accountFactsOf } from "../../core/standing";
import type { RequestMeta, Viewer } from "../../core/viewer";
import type { Tier, VoteDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { type BatchStep, DuplicateKeyError, expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import {
  addToCountedSet,
  countInWindow,
  getValue,
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
import { notifyLater } from "../notifications/service";
import { defineOwed, incrementsOn, owe } from "../owed/effects";
import { votedSetChange } from "../posts/viewer-state";
import { findWritablePost, type WritablePost, writeOnPost } from "../posts/visibility";
import { newVoteDoc } from "./documents";
import type { VoteResult } from "./schema";

/** The daily vote quota of a user on a tier: the counter that enforces it (UTC day) and its limit. */
export function voteQuota(deps: Deps, userId: string, tier: Tier, now: Date): { key: string; limit: number } {
  return { key: deps.keys.rateVote(userId, utcDay(now)), limit: deps.config.votes.dailyQuota[tier] };
}

/**
 * What a counted vote (or its removal) owes after the answer: the voter's and the author's totals and the
 * post's mark for the `counters` job, committed once with the owed record (features/owed).
 */
const voteTotals = defineOwed<{ voterId: ObjectId; authorId: ObjectId; postId: ObjectId; by: 1 | -1 }>(
  "vote.totals",
  async (deps, vote) => ({
    commit: [
      ...incrementsOn(deps, "users", [
        { id: vote.voterId, inc: { totalVotesGiven: vote.by } },
        { id: vote.authorId, inc: { totalVotesReceived: vote.by } },
      ]),
      // The durable recount mark (see ranking/engagement.ts), moved by the same kind of write as the vote.
      deps.db.posts.inBatch.updateOne({ _id: vote.postId }, { $inc: { countersStale: 1 } }),
    ],
  }),
  (vote) => [vote.voterId, vote.authorId],
);

/**
 * One vote per (post, user), enforced by the unique index even under concurrent requests. The daily quota,
 * the fraud sets and the real-time counter are Redis; the vote itself is MongoDB, and what it owes the rest of
 * the system (totals, the recount mark, the author's notification) is recorded with it and done after the
 * answer (features/owed).
 *
 * Waits: Redis — the rate limit (with the voter's standing: trust, age, shadow ban), then the cached post ∥ the
 * fraud signals, the quota and the live counter, then the counter's move ∥ the voted set; MongoDB — one
 * transaction: the vote and its owed record (plus a count of the post's votes when its live counter is
 * missing). Anything that stops the vote before it is recorded (invisible post, own post, over quota, already
 * voted) gives the quota unit back, so only recorded votes use quota.
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
  const counterKey = deps.keys.postVotes(postId);
  const signals: Record<string, RedisOp<unknown>> = {
    quotaUsed: countInWindow(quotaKey, DAY_SECONDS),
    accountsOnIp: addToCountedSet(deps.keys.fraudIp(hashedIp, day), viewer.id, DAY_SECONDS),
    liveCount: getValue<number | string>(counterKey),
  };
  if (meta.deviceId) {
    signals.accountsOnDevice = addToCountedSet(
      deps.keys.fraudDevice(meta.deviceId),
      viewer.id,
      deps.config.votes.deviceWindowDays * DAY_SECONDS,
    );
  }
  const [found, counted, facts] = await Promise.allSettled([
    findWritablePost(deps, viewer, postId),
    runOps(deps.redis, signals),
    accountFactsOf(deps, viewer),
  ]);
  if (counted.status === "rejected") throw counted.reason;
  const { quotaUsed = 0, accountsOnIp = 1, accountsOnDevice = 1, liveCount } = counted.value as Record<string, number>;
  // A unit given back late is a unit the voter loses for the day, never a vote that counts twice.
  const giveBack = () =>
    bestEffort(deps, "vote quota refund", () => runOp(deps.redis, countInWindow(quotaKey, DAY_SECONDS, -1)));
  const refuse = async (error: unknown): Promise<never> => {
    await giveBack();
    throw error;
  };
  if (found.status === "rejected") return refuse(found.reason);
  if (facts.status === "rejected") return refuse(facts.reason);
  const target = found.value;
  const voter = facts.value;
  const authorId = target.facts.userId;
  if (authorId.toHexString() === viewer.id) return refuse(ApiError.forbidden("You cannot vote on your own post."));
  if (quotaUsed > quota) {
    return refuse(ApiError.quotaExceeded(`Daily vote quota of ${quota} reached.`, secondsUntilNextUtcDay(now)));
  }

  const fraudScore = voteFraudScore(
    {
      accountsOnIp,
      accountsOnDevice,
      trustScore: voter.trustScore,
      hasDevice: Boolean(meta.deviceId),
      accountAgeDays: (now.getTime() - voter.createdAt.getTime()) / DAY_MS,
    },
    { ...deps.config.votes, youngAccountDays: deps.config.votes.review.youngAccountDays },
  );
  const vote = newVoteDoc({
    postId: target.postId,
    userId: new ObjectId(viewer.id),
    postAuthorId: authorId,
    deviceId: meta.deviceId,
    ipHash: hashedIp,
    sessionId: viewer.sessionId,
    createdAt: now,
    fraudScore,
    flagged: fraudScore >= deps.config.votes.fraudFlagThreshold,
    shadow: voter.shadowBanned,
  });
  // Shadow-banned voters' votes are recorded and counted nowhere.
  const owed = vote.shadow
    ? null
    : owe(deps, [
        voteTotals({ voterId: vote.userId, authorId, postId: target.postId, by: 1 }),
        ...(vote.flagged
          ? []
          : [
              notifyLater({
                type: "vote",
                recipientId: authorId,
                actorId: vote.userId,
                postId: target.postId,
                imageUrl: target.facts.thumbnailUrl,
              }),
            ]),
      ]);
  const recount = owed && liveCount === null ? countVotesStep(deps, target.postId) : null;
  // The count shown when this vote moves none: the live counter as read, else the post's stored count.
  const shownCount = liveCount === null || liveCount === undefined ? (target.post?.voteCount ?? 0) : Number(liveCount);
  let counts: number | undefined;
  try {
    counts = await writeOnPost(deps, viewer, target, async (t) => {
      const [, , ...rest] = await deps.db.batch(
        [t.guard, deps.db.votes.inBatch.insertOne(vote), ...(owed ? [owed.step] : []), ...(recount ? [recount] : [])],
        { transaction: true },
      );
      return recount ? (rest[rest.length - 1] as number) : undefined;
    });
  } catch (error) {
    // Already voted: no further effect, and no quota used. The winning request may not have bumped the
    // counter yet, but that vote exists, so the count is at least 1.
    if (error instanceof DuplicateKeyError && error.failedIndex === 1) {
      await giveBack();
      return { voted: true, voteCount: Math.max(shownCount, 1) };
    }
    return refuse(error);
  }
  owed?.committed();
  if (!owed) {
    await bestEffort(deps, "voted set mirror", () => runOp(deps.redis, votedSetChange(deps, viewer.id, postId, true)));
    return { voted: true, voteCount: shownCount };
  }
  const [voteCount] = await Promise.all([
    moveLiveCount(deps, viewer.id, target.postId, 1, counts),
    recordActivity(deps, {
      event: "vote_cast",
      actorId: viewer.id,
      ownerId: authorId.toHexString(),
      postId,
    }),
  ]);
  return { voted: true, voteCount };
}

/**
 * Moves the live counter `post:votes:{id}` after a vote was recorded or removed, in one pipeline with the
 * voter's cached voted set, and returns the count to answer. A counter that was missing is seeded from the
 * votes counted in the write's own transaction (`counted`), never from the denormalized `posts.voteCount`,
 * which lags until the next `counters` run; one that vanished since it was read, or Redis down, costs a count
 * of the votes. Racing seeds can be off by one; the `counters` job rewrites the counter from its exact recount
 * (the vote marked the post), so it heals on the next run.
 */
async function moveLiveCount(
  deps: Deps,
  viewerId: string,
  post: ObjectId,
  by: 1 | -1,
  counted: number | undefined,
): Promise<number> {
  const postId = post.toHexString();
  const key = deps.keys.postVotes(postId);
  const ttl = deps.config.votes.counterTtlSeconds;
  const moved = await bestEffort(deps, "live vote counter", () =>
    runOps(deps.redis, {
      count: counted === undefined ? incrementIfPresent(key, by, ttl) : seedCounter(key, counted, ttl),
      voted: votedSetChange(deps, viewerId, postId, by === 1),
    }),
  );
  if (moved && moved.count !== null) return moved.count;
  const recounted = counted ?? (await countVotes(deps, post));
  if (!moved) return recounted;
  return (
    (await bestEffort(deps, "live vote counter seed", () => runOp(deps.redis, seedCounter(key, recounted, ttl)))) ??
    recounted
  );
}

const countedVotes = (postId: ObjectId) => [{ $match: { postId, shadow: { $ne: true } } }, { $count: "n" }];

/** The post's counted votes (voters not shadow-banned), from the votes collection: what `voteCount` means. */
async function countVotes(deps: Deps, postId: ObjectId): Promise<number> {
  const [row] = await deps.db.votes.aggregate<{ n: number }>(countedVotes(postId));
  return row?.n ?? 0;
}

/** The same count as a batch step, after the write in its transaction (so it includes it). */
function countVotesStep(deps: Deps, postId: ObjectId): BatchStep<number> {
  const step = deps.db.votes.inBatch.aggregate<{ n: number }>(countedVotes(postId));
  return { ...step, read: (answer) => step.read(answer)[0]?.n ?? 0 };
}

/**
 * Unvoting is allowed only while the vote is unsettled; once it paid out it stays (409). The vote goes with
 * its owed record in one transaction (a counted vote owes its totals back), guessing from the standing whether
 * it was a shadow-banned voter's vote (it is, unless the ban changed since); a wrong guess or no vote to remove
 * costs a second call.
 */
export async function removeVote(deps: Deps, viewer: Viewer, postId: string): Promise<void> {
  const counterKey = deps.keys.postVotes(postId);
  const [target, live, facts] = await Promise.all([
    findWritablePost(deps, viewer, postId),
    bestEffort(deps, "live vote counter read", () => runOp(deps.redis, getValue<number | string>(counterKey))),
    accountFactsOf(deps, viewer),
  ]);
  const me = new ObjectId(viewer.id);
  for (const shadow of [facts.shadowBanned, !facts.shadowBanned]) {
    const removed = await writeOnPost(deps, viewer, target, (t) => removeUnsettled(deps, t, me, shadow, live === null));
    if (removed === null) continue;
    if (removed.counted === "shadow") {
      await bestEffort(deps, "voted set mirror", () =>
        runOp(deps.redis, votedSetChange(deps, viewer.id, postId, false)),
      );
    } else {
      await Promise.all([
        moveLiveCount(deps, viewer.id, target.postId, -1, removed.counted),
        recordActivity(deps, {
          event: "vote_removed",
          actorId: viewer.id,
          ownerId: target.facts.userId.toHexString(),
          postId,
        }),
      ]);
    }
    return;
  }
  const settled = await deps.db.votes.findOne({ postId: target.postId, userId: me }, { projection: { _id: 1 } });
  if (settled) throw ApiError.conflict("vote_settled", "This vote has already been settled and cannot be removed.");
}

/**
 * Deletes the voter's unsettled vote of the given kind (shadow or counted) in one transaction with the post's
 * guard and what the removal owes; null when there was none of that kind. `counted` is the post's vote count
 * after it when the live counter needs seeding, "shadow" for a shadow vote.
 */
async function removeUnsettled(
  deps: Deps,
  target: WritablePost,
  voterId: ObjectId,
  shadow: boolean,
  seedCounter: boolean,
): Promise<{ counted: number | undefined | "shadow" } | null> {
  const filter: Partial<Record<keyof VoteDoc, unknown>> = {
    postId: target.postId,
    userId: voterId,
    gemBatchId: null,
    shadow: shadow ? true : { $ne: true },
  };
  const owed = shadow
    ? null
    : owe(deps, [voteTotals({ voterId, authorId: target.facts.userId, postId: target.postId, by: -1 })]);
  const recount = !shadow && seedCounter ? countVotesStep(deps, target.postId) : null;
  try {
    const [, , ...rest] = await deps.db.batch(
      [
        target.guard,
        expectMatch(deps.db.votes.inBatch.deleteOne(filter)),
        ...(owed ? [owed.step] : []),
        ...(recount ? [recount] : []),
      ],
      { transaction: true },
    );
    owed?.committed();
    if (shadow) return { counted: "shadow" };
    return { counted: recount ? (rest[rest.length - 1] as number) : undefined };
  } catch (error) {
    if (error instanceof PreconditionFailedError && error.failedIndex === 1) return null;
    throw error;
  }
}
