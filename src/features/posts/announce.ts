import type { PostDoc } from "../../db";
import type { Deps } from "../../deps";
import { afterResponse } from "../../platform/background";
import type { ObjectId } from "../../platform/ids";
import { announceNewPost } from "../notifications/service";

/**
 * "New post" announcements to followers, owed by a post's first publication (`fanout` on the post: since
 * when, and the last follow told) and sent in rounds: right after a request publishes a post (after the
 * response) and by every `publish-scheduled` run, which also finishes what a request left. A post is announced
 * once its followers can see it (published, approved, not private, author not shadow-banned), so a held post
 * is announced when a moderator approves it. Telling a follower twice changes nothing, so rounds may overlap.
 */

/** Posts per round (each with followers costs a follows read, the announcement and a cursor write, in parallel). */
const POSTS_PER_ROUND = 25;

/** Announcements due now: posts still owed one that their followers can see. */
const ANNOUNCEABLE = {
  "fanout.since": { $type: "date" },
  status: "published",
  moderationStatus: "approved",
  deletedAt: null,
  authorShadowBanned: false,
  visibility: { $in: ["public", "followers"] },
} as const;

/**
 * One round: the next batch of followers (POST_FANOUT_BATCH_FOLLOWERS) of up to POSTS_PER_ROUND owed posts,
 * oldest first, or of `only` these. Posts whose authors have no followers are settled together first (one read,
 * one write). Null when nothing was owed; else how many followers were told.
 */
export async function announceOwed(deps: Deps, only?: ObjectId[]): Promise<{ told: number } | null> {
  const owed = await deps.db.posts.find(only ? { ...ANNOUNCEABLE, _id: { $in: only } } : ANNOUNCEABLE, {
    sort: { "fanout.since": 1, _id: 1 },
    limit: POSTS_PER_ROUND,
    projection: { userId: 1, thumbnailUrl: 1, fanout: 1 },
  });
  if (owed.length === 0) return null;
  const authorIds = [...new Map(owed.map((p) => [p.userId.toHexString(), p.userId])).values()];
  const authors = await deps.db.users.find(
    { _id: { $in: authorIds }, followersCount: { $gt: 0 } },
    { projection: { _id: 1 }, limit: authorIds.length },
  );
  const followed = new Set(authors.map((a) => a._id.toHexString()));
  const unheard = owed.filter((p) => !followed.has(p.userId.toHexString()));
  if (unheard.length) {
    await deps.db.posts.updateMany({ _id: { $in: unheard.map((p) => p._id) } }, { $set: { fanout: null } });
  }
  const told = await Promise.all(
    owed.filter((p) => followed.has(p.userId.toHexString())).map((post) => announceNextBatch(deps, post)),
  );
  return { told: told.reduce((a, b) => a + b, 0) };
}

async function announceNextBatch(deps: Deps, post: Pick<PostDoc, "_id" | "userId" | "thumbnailUrl" | "fanout">) {
  const size = deps.config.scheduling.fanoutBatchFollowers;
  const fanout = post.fanout as NonNullable<PostDoc["fanout"]>;
  const follows = await deps.db.follows.find(
    { followingId: post.userId, ...(fanout.after ? { _id: { $gt: fanout.after } } : {}) },
    { sort: { _id: 1 }, limit: size, projection: { followerId: 1 } },
  );
  const told = follows.length
    ? await announceNewPost(deps, {
        authorId: post.userId,
        postId: post._id,
        imageUrl: post.thumbnailUrl || null,
        followerIds: follows.map((f) => f.followerId),
      })
    : 0;
  const last = follows.at(-1);
  // Conditional on the cursor read, so a slower overlapping round never moves it back.
  await deps.db.posts.updateOne(
    { _id: post._id, "fanout.since": fanout.since, "fanout.after": fanout.after },
    { $set: { fanout: follows.length < size || !last ? null : { since: fanout.since, after: last._id } } },
  );
  return told;
}

/**
 * After a request's answer: the first round for posts it just published. A failure is logged; the post still
 * owes its announcement, which the next `publish-scheduled` run sends.
 */
export function announceAfterResponse(deps: Deps, postIds: ObjectId[]): void {
  afterResponse(async () => {
    try {
      await announceOwed(deps, postIds);
    } catch (error) {
      deps.log.warn("new post announcement left to the publish-scheduled job", { error: String(error) });
    }
  });
}
