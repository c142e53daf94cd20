import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { UserDoc } from "../../db";
import type { Deps } from "../../deps";
import type { ObjectId } from "../../platform/ids";
import { deleteKeys, runOp } from "../../platform/redis-ops";

/**
 * Posts and comments carry their author's avatar (`userAvatarUrl`, denormalised so feeds need no join). A new
 * avatar (PATCH /v1/me) marks the account (`avatarSync.requestedAt`) in the same update; this job then walks
 * the account's posts and comments whose copy differs from `users.avatarUrl`, AVATAR_SYNC_BATCH_DOCS of each
 * per batch (one MongoDB read and one write per batch, then one Redis round trip dropping the cached posts,
 * comment pages and public first pages they appear on).
 *
 * Resumable by construction: the work left is whatever still differs from the account's current avatar, so a
 * crash between any two steps is finished by the next run, and a second change midway simply becomes the
 * target. The mark is cleared only once nothing differs and the change is AVATAR_SYNC_SETTLE_SECONDS old
 * (a post written by a request that read the old avatar just before the change lands within that time),
 * conditionally on the same `requestedAt`, so a newer change keeps it.
 */
export async function syncAvatars(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  let after: { requestedAt: Date; id: ObjectId } | null = null;
  while (ctx.timeLeft() > 2_000) {
    const page: Pick<UserDoc, "_id" | "avatarUrl" | "avatarSync">[] = await deps.db.users.find(
      after
        ? {
            $or: [
              { "avatarSync.requestedAt": { $gt: after.requestedAt } },
              { "avatarSync.requestedAt": after.requestedAt, _id: { $gt: after.id } },
            ],
          }
        : { "avatarSync.requestedAt": { $type: "date" } },
      { sort: { "avatarSync.requestedAt": 1, _id: 1 }, limit: 50, projection: { avatarUrl: 1, avatarSync: 1 } },
    );
    if (page.length === 0) return { more: false };
    for (const user of page) {
      const requestedAt = user.avatarSync?.requestedAt;
      if (!requestedAt) continue;
      if (!(await syncOne(ctx, user._id, user.avatarUrl ?? null))) return { more: true };
      const settled =
        requestedAt.getTime() <= deps.clock.now().getTime() - deps.config.media.avatarSyncSettleSeconds * 1000;
      if (settled) {
        await deps.db.users.updateOne(
          { _id: user._id, "avatarSync.requestedAt": requestedAt },
          { $unset: { avatarSync: "" } },
        );
        ctx.count("accounts");
      }
      after = { requestedAt, id: user._id };
    }
  }
  return { more: true };
}

/** Brings one account's posts and comments to `url`; false when the time budget ran out first. */
async function syncOne(ctx: JobContext, userId: ObjectId, url: string | null): Promise<boolean> {
  const { deps } = ctx;
  const limit = deps.config.media.avatarSyncBatchDocs;
  const stale = { userId, userAvatarUrl: { $ne: url } };
  while (ctx.timeLeft() > 1_000) {
    const [posts, comments] = await Promise.all([
      deps.db.posts.find(stale, { projection: { _id: 1 }, limit }),
      deps.db.comments.find(stale, { projection: { _id: 1, postId: 1 }, limit }),
    ]);
    if (posts.length === 0 && comments.length === 0) return true;
    await Promise.all([
      posts.length
        ? deps.db.posts.updateMany({ _id: { $in: posts.map((p) => p._id) }, userId }, { $set: { userAvatarUrl: url } })
        : null,
      comments.length
        ? deps.db.comments.updateMany(
            { _id: { $in: comments.map((c) => c._id) }, userId },
            { $set: { userAvatarUrl: url } },
          )
        : null,
    ]);
    await ctx.checkpoint("avatar-batch-written");
    await forgetShown(
      deps,
      posts.map((p) => p._id),
      comments.map((c) => c.postId),
    );
    ctx.count("posts", posts.length);
    ctx.count("comments", comments.length);
    if (posts.length < limit && comments.length < limit) return true;
  }
  return false;
}

/** Drops the cached copies that show the old avatar: the posts, their comment pages, the public first pages. */
async function forgetShown(deps: Deps, postIds: ObjectId[], commentedPostIds: ObjectId[]): Promise<void> {
  const { keys } = deps;
  const commented = [...new Set(commentedPostIds.map((id) => id.toHexString()))];
  await runOp(
    deps.redis,
    deleteKeys([
      ...postIds.map((id) => keys.postDoc(id.toHexString())),
      ...commented.map((id) => keys.commentsFirstPage(id)),
      ...(postIds.length ? keys.publicFeedFirstPages() : []),
    ]),
  );
}

export const avatarSyncJob: Job = {
  name: "avatar-sync",
  description: "Puts each changed avatar on its owner's posts and comments, in batches (resumable).",
  run: syncAvatars,
};
