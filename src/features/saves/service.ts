import type { PageQuery } from "../../core/schemas";
import type { Viewer } from "../../core/viewer";
import type { PostDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { paginate } from "../../platform/mongo/paginate";
import { type PostPage, toPost } from "../posts/schema";
import { liveVoteCounts, votedByViewer } from "../posts/viewer-state";
import { canSee, findVisiblePost, forgetPosts } from "../posts/visibility";
import { markEngaged } from "../ranking/engagement";
import { relationsFor } from "../relations/service";

/**
 * Saves (seed 001's SAVE engagement): a signed-in user keeps posts to come back to. One save per (user, post),
 * decided by the unique index, so concurrent saves make one; `saveCount` moves only after the insert or delete
 * that changed something. The post is marked for the counters job (durably) beside the insert or delete and
 * again with the count, so the job's recount from `saves` repairs a crash in between. Who saved what is
 * private: only the owner lists their saves.
 */

/** Saves a post the caller may see (404 otherwise, blocks included); saving it again changes nothing. */
export async function savePost(deps: Deps, viewer: Viewer, postId: string): Promise<void> {
  const post = await findVisiblePost(deps, viewer, postId);
  // Marked with the insert, so a crash before the increment is repaired by the counters job's recount.
  const [saved] = await Promise.all([
    deps.db.saves.insertUnique({
      _id: newObjectId(),
      userId: new ObjectId(viewer.id),
      postId: post._id,
      postAuthorId: post.userId,
      createdAt: deps.clock.now(),
    }),
    markEngaged(deps, [postId]),
  ]);
  if (saved) await moveSaveCount(deps, post._id, 1);
}

/**
 * Takes a save back (always 204: whether the caller saved a post is theirs alone to know, and a post they can
 * no longer see can still leave their list).
 */
export async function unsavePost(deps: Deps, viewer: Viewer, postId: string): Promise<void> {
  const post = new ObjectId(postId);
  const [removed] = await Promise.all([
    deps.db.saves.deleteOne({ userId: new ObjectId(viewer.id), postId: post }),
    markEngaged(deps, [postId]),
  ]);
  if (removed > 0) await moveSaveCount(deps, post, -1);
}

/** The count moves with the save, and the same write marks the post for the counters job's recount. */
async function moveSaveCount(deps: Deps, postId: ObjectId, by: 1 | -1): Promise<void> {
  await deps.db.posts.updateOne({ _id: postId }, { $inc: { saveCount: by, countersStale: 1 } });
  await forgetPosts(deps, [postId]);
}

/**
 * The caller's saved posts, most recently saved first (keyset over the saves). Posts the caller can no longer
 * see (deleted, archived, made private, blocked either way, followers-only without a follow) are left out, so a
 * page may hold fewer than `limit`; `nextCursor` goes on. Waits (MongoDB): the page of saves, then its posts
 * (beside the viewer's votes and the live counts), and only when some are followers-only, the caller's follows
 * of their authors.
 */
export async function savedPosts(deps: Deps, viewer: Viewer, query: PageQuery): Promise<PostPage> {
  const me = new ObjectId(viewer.id);
  const [page, relations] = await Promise.all([
    paginate(deps.db.saves, {
      filter: { userId: me },
      order: { direction: "desc" },
      limit: query.limit,
      cursor: query.cursor,
    }),
    relationsFor(deps, viewer),
  ]);
  const ids = page.items.map((s) => s.postId);
  // The viewer's votes and the live counts are asked for every saved post beside the posts themselves.
  const [docs, voted, counts] = await Promise.all([
    ids.length ? deps.db.posts.find({ _id: { $in: ids }, deletedAt: null }, { limit: ids.length }) : [],
    votedByViewer(deps, viewer.id, ids),
    liveVoteCounts(deps, ids),
  ]);
  const byId = new Map(docs.map((d) => [d._id.toHexString(), d]));
  const followersOnly = [
    ...new Set(docs.filter((d) => d.visibility === "followers").map((d) => d.userId.toHexString())),
  ].filter((id) => id !== viewer.id);
  const followed = new Set<string>();
  if (followersOnly.length) {
    const edges = await deps.db.follows.find(
      { followerId: me, followingId: { $in: followersOnly.map((id) => new ObjectId(id)) } },
      { projection: { followingId: 1 }, limit: followersOnly.length },
    );
    for (const e of edges) followed.add(e.followingId.toHexString());
  }
  const visible = page.items.flatMap((save): PostDoc[] => {
    const post = byId.get(save.postId.toHexString());
    if (!post) return [];
    const author = post.userId.toHexString();
    return !relations.blockedWith(author) && canSee(post, viewer.id, followed.has(author)) ? [post] : [];
  });
  return {
    items: visible.map((p) => toPost(p, voted.has(p._id.toHexString()), counts.get(p._id.toHexString()))),
    nextCursor: page.nextCursor,
  };
}
