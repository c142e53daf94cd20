import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { PostDoc, RankedEngagement } from "../../db";
import type { Deps } from "../../deps";
import { isObjectIdHex, ObjectId } from "../../platform/ids";
import {
  deleteKeys,
  moveRandomMembers,
  type RedisOp,
  removeMembers,
  replaceValue,
  runOp,
  runOps,
  someMembers,
  takeAndClear,
} from "../../platform/redis-ops";
import { scoresOf } from "./scores";

type Recounted = Pick<PostDoc, "_id" | "userId" | "createdAt" | "viewCount" | "countersStale">;
const PROJECTION = { userId: 1, createdAt: 1, viewCount: 1, countersStale: 1 } as const;

/**
 * Recounts and rescores the posts whose engagement moved, at any age. Two work lists, so neither store alone
 * decides what gets recounted: posts MongoDB marks durably (`countersStale`, moved by votes, shares, saves and
 * counted comments, see engagement.ts) and posts with pending views queued in Redis (`counters:dirty:posts`). Counts
 * come from the source collections themselves, so the job is exact and idempotent however often it runs:
 * - `voteCount` counts votes from accounts that are not shadow-banned, `shareCount` likewise for shares;
 * - the ranking counts only qualified engagement: votes not flagged as fraud, shares, and distinct commenters
 *   other than the author whose comments others can see (the author can't vote on or share their own post),
 *   so neither the author nor flagged accounts can lift a post or earn it the trending bonus.
 * A post's mark drops by what was seen before counting (marks that arrive meanwhile keep it listed), and its
 * live counter `post:votes:{id}`, where one exists, is set to the exact count, so a counter that drifted
 * (seeded while votes raced, or rebuilt after Redis lost it) heals on the next run. Redis-queued posts move to
 * an in-progress set while their batch is written and leave it only afterwards; a run first finishes whatever a
 * crashed run left in progress.
 */
export async function syncPostCounters(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const dirtyKey = deps.keys.countersDirtyPosts();
  const inProgressKey = deps.keys.countersSyncingPosts();
  const batch = deps.config.votes.countersBatchPosts;
  while (ctx.timeLeft() > 2_000) {
    const [queued, marked] = await Promise.all([
      // A crashed run's posts are still in progress: finish those first.
      runOp(deps.redis, someMembers(inProgressKey, batch)).then(async (leftover) =>
        leftover.length ? leftover : runOp(deps.redis, moveRandomMembers(dirtyKey, inProgressKey, batch)),
      ),
      deps.db.posts.find(
        { countersStale: { $gt: 0 } },
        { sort: { countersStale: -1 }, limit: batch, projection: PROJECTION },
      ),
    ]);
    if (queued.length === 0 && marked.length === 0) return { more: false };
    const seen = new Set(marked.map((p) => p._id.toHexString()));
    const onlyQueued = queued.filter((id) => isObjectIdHex(id) && !seen.has(id));
    const posts: Recounted[] = [
      ...marked,
      ...(onlyQueued.length
        ? await deps.db.posts.find(
            { _id: { $in: onlyQueued.map((id) => new ObjectId(id)) } },
            { projection: PROJECTION },
          )
        : []),
    ];
    const engagement = posts.length ? await countEngagement(deps, posts) : new Map<string, Counted>();
    if (posts.length) {
      // Pending views are taken and cleared atomically (a view counted meanwhile waits for the next run). A
      // crash between this and the MongoDB write loses those views: acceptable for view counts.
      const views = await runOp(deps.redis, takeAndClear(posts.map((p) => deps.keys.postViews(p._id.toHexString()))));
      const now = deps.clock.now();
      await deps.db.posts.bulkWrite(
        posts.map((p, i) => {
          const e = engagement.get(p._id.toHexString()) ?? ZERO;
          const newViews = Number(views[i] ?? 0);
          const ranked: RankedEngagement = { votes: e.qualifiedVotes, comments: e.commenters, shares: e.shares };
          const viewCount = (p.viewCount ?? 0) + newViews;
          const scores = scoresOf({ ...ranked, views: viewCount }, p.createdAt, now, deps.config.ranking);
          return {
            updateOne: {
              filter: { _id: p._id },
              // A pipeline, so the mark drops by what this run saw and never below 0, even if two runs overlap.
              update: [
                {
                  $set: {
                    voteCount: e.votes,
                    shareCount: e.shares,
                    saveCount: e.saves,
                    rankedEngagement: { $literal: ranked },
                    ...scores,
                    viewCount: { $add: [{ $ifNull: ["$viewCount", 0] }, newViews] },
                    countersStale: {
                      $max: [0, { $subtract: [{ $ifNull: ["$countersStale", 0] }, p.countersStale ?? 0] }],
                    },
                  },
                },
              ],
            },
          };
        }),
        { ordered: false },
      );
      ctx.count("posts", posts.length);
    }
    await ctx.checkpoint("written");
    const ttl = deps.config.votes.counterTtlSeconds;
    const liveCounters: Record<string, RedisOp<void>> = Object.fromEntries(
      posts.map((p) => {
        const id = p._id.toHexString();
        return [id, replaceValue(deps.keys.postVotes(id), (engagement.get(id) ?? ZERO).votes, ttl)];
      }),
    );
    await runOps(deps.redis, {
      ...liveCounters,
      // Their cached copies show the old counts.
      copies: deleteKeys(posts.map((p) => deps.keys.postDoc(p._id.toHexString()))),
      done: removeMembers(inProgressKey, queued),
    });
  }
  return { more: true };
}

interface Counted {
  votes: number;
  qualifiedVotes: number;
  shares: number;
  commenters: number;
  saves: number;
}

const ZERO: Counted = { votes: 0, qualifiedVotes: 0, shares: 0, commenters: 0, saves: 0 };

/** Votes, shares, distinct other commenters and saves of each post, from their collections (in parallel). */
async function countEngagement(deps: Deps, posts: Pick<PostDoc, "_id" | "userId">[]): Promise<Map<string, Counted>> {
  const postIds = posts.map((p) => p._id);
  const [votes, shares, commenters, saves] = await Promise.all([
    deps.db.votes.aggregate<{ _id: ObjectId; n: number; qualified: number }>([
      { $match: { postId: { $in: postIds }, shadow: { $ne: true } } },
      {
        $group: {
          _id: "$postId",
          n: { $sum: 1 },
          qualified: { $sum: { $cond: [{ $eq: ["$flagged", true] }, 0, 1] } },
        },
      },
    ]),
    deps.db.shares.aggregate<{ _id: ObjectId; n: number }>([
      { $match: { postId: { $in: postIds }, shadow: { $ne: true } } },
      { $group: { _id: "$postId", n: { $sum: 1 } } },
    ]),
    deps.db.comments.aggregate<{ _id: ObjectId; n: number }>([
      {
        $match: {
          $or: posts.map((p) => ({ postId: p._id, userId: { $ne: p.userId } })),
          deletedAt: null,
          authorShadowBanned: { $ne: true },
          moderationStatus: { $nin: ["pending", "flagged", "removed"] },
        },
      },
      { $group: { _id: { post: "$postId", user: "$userId" } } },
      { $group: { _id: "$_id.post", n: { $sum: 1 } } },
    ]),
    deps.db.saves.aggregate<{ _id: ObjectId; n: number }>([
      { $match: { postId: { $in: postIds } } },
      { $group: { _id: "$postId", n: { $sum: 1 } } },
    ]),
  ]);
  const out = new Map<string, Counted>();
  const entry = (id: ObjectId) => {
    const key = id.toHexString();
    const found = out.get(key) ?? { ...ZERO };
    out.set(key, found);
    return found;
  };
  for (const v of votes) Object.assign(entry(v._id), { votes: v.n, qualifiedVotes: v.qualified });
  for (const s of shares) entry(s._id).shares = s.n;
  for (const c of commenters) entry(c._id).commenters = c.n;
  for (const v of saves) entry(v._id).saves = v.n;
  return out;
}

export const countersJob: Job = {
  name: "counters",
  description:
    "Recounts posts whose votes, views, shares, comments or saves moved (from the source collections) and rescores them.",
  run: syncPostCounters,
};
