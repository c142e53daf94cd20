import { ApiError } from "../../core/errors";
import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { RequestMeta, Viewer } from "../../core/viewer";
import type { AuditLogDoc, FollowDoc, PostDoc, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { BulkOperation } from "../../platform/mongo/client";
import { addMembers, deleteKeys, runOps } from "../../platform/redis-ops";
import { addDays } from "../../platform/time";
import { auditEntry } from "../audit/service";
import { SHOWN_TO_OTHERS } from "../comments/service";
import { leaderboardRemoval } from "../leaderboards/service";
import type { DeletionAccepted } from "./schema";

/**
 * Deleting an account (DELETE /v1/me) takes everything it wrote away from everyone at once, in two MongoDB
 * round trips:
 *
 * 1. one batch: the account is marked deleted with its settlement owed (`deletionSettledAt: null`); its posts
 *    and comments are soft-deleted (comments `deletedBy: "account"`, so a thread keeps a placeholder where
 *    others replied); its sessions are revoked; the deletion is audited once; and the batch reads what the rest
 *    needs: the followers whose cached `following` page shows the account, its posts (whose cached copies go)
 *    and the threads its counted comments were in, with how many each;
 * 2. one batch: every such post's `commentCount` and parent comment's `repliesCount` drops by that many —
 *    guarded by the account's id on the thread (`uncountedAccounts`), so repeating it changes nothing — and,
 *    last, the account records that it is settled.
 *
 * Between the two, one Redis round trip forgets the account standing (existing tokens stop), drops the cached
 * first pages of the public feeds and of its followers' `following` feeds, its profile, and the cached copies
 * of its posts and of the threads being recounted, takes it off the leaderboards and queues the threads for
 * rescoring — before the second batch, so a deletion is recorded as settled only once Redis has done its part.
 *
 * Every step is idempotent. Once the first batch has run the deletion stands (202); if anything after it fails,
 * or the account has more threads than one pass recounts (ACCOUNT_DELETION_RECOUNT_THREADS), the
 * `account-deletion` job repeats the whole thing for accounts still unsettled after
 * ACCOUNT_DELETION_SWEEP_DELAY_SECONDS and goes on until the recount is done.
 */

/** Followers whose cached `following` page is dropped at once; the pages of any beyond expire within a minute. */
const FOLLOWER_FEEDS_DROPPED = 5_000;
/** Cached post documents of the account dropped at once; any beyond expire within POST_CACHE_TTL_SECONDS. */
const POST_COPIES_DROPPED = 10_000;
/** Accounts a post or parent comment remembers having uncounted (far more than a recount's retries need). */
const UNCOUNTED_ACCOUNTS_KEPT = 1_000;

type Recount = NonNullable<UserDoc["deletionRecountAfter"]>;
type Thread = { _id: ObjectId; n: number };

export async function deleteAccount(deps: Deps, meta: RequestMeta, viewer: Viewer): Promise<DeletionAccepted> {
  const now = deps.clock.now();
  const userId = new ObjectId(viewer.id);
  const audited = await auditEntry(deps, meta, { action: "account_deleted", userId });
  const [user, ...read] = await deps.db.batch([
    deps.db.users.inBatch.findOneAndUpdate(
      { _id: userId, deletedAt: null },
      { $set: { deletedAt: now, updatedAt: now, deletionSettledAt: null } },
      { projection: { usernameLower: 1 }, returnDocument: "after" },
    ),
    ...deletionSteps(deps, userId, now, audited, null),
  ]);
  if (!user) throw ApiError.notFound("Account not found.");
  const [, , , , followers, hidden, posts, parents] = read;
  try {
    const stale = { followers, posts: hidden };
    await recountPass(deps, { _id: userId, usernameLower: user.usernameLower }, stale, { posts, parents }, null);
  } catch (error) {
    // The deletion stands (the first batch hid everything); the `account-deletion` job finishes the rest.
    deps.log.error("account deletion left unsettled", { userId: viewer.id, error: String(error) });
  }
  return { erasureAfter: addDays(now, deps.config.auth.accountDeletionGraceDays).toISOString() };
}

/**
 * The idempotent part of a deletion, as batch steps: hide the content, end the sessions, audit once, then read
 * the followers and the first threads to recount (after `after`, where an earlier pass stopped).
 */
function deletionSteps(deps: Deps, userId: ObjectId, at: Date, audited: AuditLogDoc, after: Recount | null) {
  const { _id: _upsertAssignsId, ...entry } = audited;
  return [
    deps.db.posts.inBatch.updateMany(
      { userId, deletedAt: null },
      { $set: { deletedAt: at, isPinned: false, pinnedAt: null } },
    ),
    deps.db.comments.inBatch.updateMany({ userId, deletedAt: null }, { $set: { deletedAt: at, deletedBy: "account" } }),
    deps.db.sessions.inBatch.updateMany(
      { userId, revokedAt: null },
      { $set: { revokedAt: at, revokedReason: "account_deleted" } },
    ),
    deps.db.auditLogs.inBatch.updateOne(
      { userId, action: "account_deleted" },
      { $setOnInsert: entry },
      { upsert: true },
    ),
    deps.db.follows.inBatch.find(
      { followingId: userId },
      { projection: { followerId: 1 }, limit: FOLLOWER_FEEDS_DROPPED },
    ),
    deps.db.posts.inBatch.find({ userId, deletedAt: at }, { projection: { _id: 1 }, limit: POST_COPIES_DROPPED }),
    ...threadSteps(deps, userId, after),
  ] as const;
}

/**
 * The next threads (posts, and parent comments) holding the account's hidden comments that were counted, in
 * id order after where the last pass stopped, each with how many of them it holds: one more than a pass
 * takes, so the pass knows whether it is the last.
 */
function threadSteps(deps: Deps, userId: ObjectId, after: Recount | null) {
  const take = deps.config.privacy.deletionRecountThreads + 1;
  const threads = (field: "postId" | "parentId", from: ObjectId | null) =>
    deps.db.comments.inBatch.aggregate<Thread>([
      {
        $match: {
          userId,
          deletedBy: "account",
          ...SHOWN_TO_OTHERS,
          [field]: from ? { $gt: from } : { $ne: null },
        },
      },
      { $group: { _id: `$${field}`, n: { $sum: 1 } } },
      { $sort: { _id: 1 } },
      { $limit: take },
    ]);
  return [threads("postId", after?.posts ?? null), threads("parentId", after?.parents ?? null)] as const;
}

/**
 * Takes one page of threads' counts down by the account's comments in them (each guarded by the account's id,
 * so a repeat is a no-op) and records how far it got — or that the deletion is settled — in the same batch,
 * after the counts. With `stale` (the first pass), first drops what hiding the content made stale in Redis.
 * Returns where the next pass starts, or null when this was the last.
 */
async function recountPass(
  deps: Deps,
  account: Pick<UserDoc, "_id" | "usernameLower">,
  stale: { followers: Pick<FollowDoc, "followerId">[]; posts: Pick<PostDoc, "_id">[] } | null,
  found: { posts: Thread[]; parents: Thread[] },
  previous: Recount | null,
): Promise<Recount | null> {
  const perPass = deps.config.privacy.deletionRecountThreads;
  const posts = found.posts.slice(0, perPass);
  const parents = found.parents.slice(0, perPass);
  const more = found.posts.length > perPass || found.parents.length > perPass;
  const next: Recount | null = more
    ? { posts: posts.at(-1)?._id ?? previous?.posts ?? null, parents: parents.at(-1)?._id ?? previous?.parents ?? null }
    : null;
  const id = account._id;
  const uncount = <T extends object>(threads: Thread[], field: "commentCount" | "repliesCount"): BulkOperation<T>[] =>
    threads.map((t) => ({
      updateOne: {
        filter: { _id: t._id, uncountedAccounts: { $ne: id } },
        update: {
          $inc: { [field]: -t.n },
          $push: { uncountedAccounts: { $each: [id], $slice: -UNCOUNTED_ACCOUNTS_KEPT } },
        },
      },
    }));
  const now = deps.clock.now();
  const progress = next
    ? { $set: { deletionRecountAfter: next } }
    : { $set: { deletionSettledAt: now }, $unset: { deletionRecountAfter: "" } };
  const { keys } = deps;
  // Redis first: the batch below may record the deletion settled only once the caches are dropped.
  await runOps(deps.redis, {
    ...(stale
      ? {
          hidden: deleteKeys([
            keys.session(id.toHexString()),
            keys.selfView(id.toHexString()),
            keys.userProfile(account.usernameLower),
            ...keys.publicFeedFirstPages(),
            ...stale.followers.map((f) => keys.feedFollowing(f.followerId.toHexString(), 0)),
            ...stale.posts.map((p) => keys.postDoc(p._id.toHexString())),
          ]),
          boards: leaderboardRemoval(deps, id.toHexString()),
        }
      : {}),
    // The threads' cached copies and first comment pages show the account's comments and the counts about to
    // move (dropped as a comment's own write drops them).
    recounted: deleteKeys(
      posts.flatMap((p) => [keys.postDoc(p._id.toHexString()), keys.commentsFirstPage(p._id.toHexString())]),
    ),
    rescore: addMembers(
      keys.countersDirtyPosts(),
      posts.map((p) => p._id.toHexString()),
    ),
  });
  await deps.db.batch([
    ...(posts.length ? [deps.db.posts.inBatch.bulkWrite(uncount(posts, "commentCount"), { ordered: false })] : []),
    ...(parents.length
      ? [deps.db.comments.inBatch.bulkWrite(uncount(parents, "repliesCount"), { ordered: false })]
      : []),
    deps.db.users.inBatch.updateOne({ _id: id }, progress),
  ]);
  return next;
}

/**
 * Finishes deletions whose request did not: accounts deleted more than ACCOUNT_DELETION_SWEEP_DELAY_SECONDS ago
 * and not settled (a request that died half-way, a store that failed after the deletion stood, an account with
 * more threads than one pass takes, or one deleted before deletions settled at all). Repeats the idempotent
 * steps and recounts pass after pass, recording progress after each, so a crash anywhere is resumed.
 */
export async function settleDeletedAccounts(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const { deletionSweepDelaySeconds, deletionSweepBatchAccounts } = deps.config.privacy;
  const before = new Date(deps.clock.now().getTime() - deletionSweepDelaySeconds * 1000);
  while (ctx.timeLeft() > 2_000) {
    const due = await deps.db.users.find(
      { deletedAt: { $lte: before }, deletionSettledAt: null },
      {
        sort: { deletedAt: 1 },
        limit: deletionSweepBatchAccounts,
        projection: { usernameLower: 1, deletedAt: 1, deletionRecountAfter: 1 },
      },
    );
    if (due.length === 0) return { more: false };
    for (const user of due) {
      if (!(await settleAccount(ctx, user))) return { more: true };
      ctx.count("accounts");
    }
  }
  return { more: true };
}

/** One account's deletion, finished; false when the time budget ran out first (progress is recorded). */
export async function settleAccount(
  ctx: JobContext,
  user: Pick<UserDoc, "_id" | "usernameLower" | "deletedAt" | "deletionRecountAfter">,
): Promise<boolean> {
  const { deps } = ctx;
  const audited = await auditEntry(deps, null, { action: "account_deleted", userId: user._id });
  let after = user.deletionRecountAfter ?? null;
  const [, , , , followers, hidden, posts, parents] = await deps.db.batch(
    deletionSteps(deps, user._id, user.deletedAt ?? deps.clock.now(), audited, after),
  );
  await ctx.checkpoint("hidden");
  let found = { posts, parents };
  let first = true;
  for (;;) {
    after = await recountPass(deps, user, first ? { followers, posts: hidden } : null, found, after);
    first = false;
    await ctx.checkpoint("recounted");
    ctx.count("passes");
    if (!after) return true;
    if (ctx.timeLeft() < 2_000) return false;
    const [nextPosts, nextParents] = await deps.db.batch(threadSteps(deps, user._id, after));
    found = { posts: nextPosts, parents: nextParents };
  }
}

export const accountDeletionJob: Job = {
  name: "account-deletion",
  description:
    "Finishes account deletions a request left unsettled: hides the content, recounts its threads, drops caches.",
  run: settleDeletedAccounts,
};
