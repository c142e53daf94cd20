import { dropCache } from "../../core/cache";
import { ApiError } from "../../core/errors";
import type { PageQuery } from "../../core/schemas";
import { forgetSelfView } from "../../core/standing";
import type { Viewer } from "../../core/viewer";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { paginate } from "../../platform/mongo/paginate";
import { deleteKeys } from "../../platform/redis-ops";
import { recordActivity } from "../analytics/activity";
import { notify } from "../notifications/service";
import { relationsFor } from "../relations/service";
import { type PublicUserPage, toPublicUser } from "../users/schema";
import { invalidateProfilesOf } from "../users/service";

async function activeUser(deps: Deps, id: string) {
  const user = await deps.db.users.findOne(
    { _id: new ObjectId(id), deletedAt: null },
    { projection: { usernameLower: 1 } },
  );
  if (!user) throw ApiError.notFound("No such user.");
  return user;
}

/**
 * Idempotent follow. The unique (followerId, followingId) index decides who wins a race; only the request
 * whose insert succeeded moves the two counters (one bulkWrite), so counts stay exact under any storm of
 * concurrent follows and unfollows.
 */
export async function follow(deps: Deps, viewer: Viewer, targetId: string): Promise<void> {
  if (viewer.id === targetId) throw ApiError.invalidField("id", "you cannot follow yourself");
  const me = new ObjectId(viewer.id);
  const target = new ObjectId(targetId);
  // One read for both: the target must exist, and a deleted account's still-valid token must not follow.
  const people = await deps.db.users.find(
    { _id: { $in: [me, target] }, deletedAt: null },
    { projection: { usernameLower: 1 } },
  );
  if (!people.some((p) => p._id.equals(target))) throw ApiError.notFound("No such user.");
  if (!people.some((p) => p._id.equals(me))) throw ApiError.notFound("Account not found.");
  // Blocked either way: the other person does not exist for them.
  if ((await relationsFor(deps, viewer)).blockedWith(targetId)) throw ApiError.notFound("No such user.");
  const followed = await deps.db.follows.insertUnique({
    _id: newObjectId(),
    followerId: me,
    followingId: target,
    createdAt: deps.clock.now(),
  });
  if (!followed) return;
  // A block that landed since the check above: the block ended this follow, or this call ends it now. (The
  // block removes follows after writing itself, so one of the two always sees the other.)
  const [, blocked] = await Promise.all([
    moveCounts(deps, me, target, 1),
    deps.db.blocks.findOne(
      {
        kind: "block",
        $or: [
          { userId: me, targetId: target },
          { userId: target, targetId: me },
        ],
      },
      { projection: { _id: 1 } },
    ),
  ]);
  if (blocked) {
    if (await deps.db.follows.deleteOne({ followerId: me, followingId: target })) {
      await moveCounts(deps, me, target, -1);
    }
    throw ApiError.notFound("No such user.");
  }
  await recordActivity(deps, { event: "followed", actorId: viewer.id, ownerId: target.toHexString() });
  await invalidateProfilesOf(deps, people, [deps.keys.feedFollowing(viewer.id, 0)]);
  await notify(deps, { type: "follow", recipientId: target, actorId: me });
}

export async function unfollow(deps: Deps, viewer: Viewer, targetId: string): Promise<void> {
  if (viewer.id === targetId) throw ApiError.invalidField("id", "you cannot follow yourself");
  const me = new ObjectId(viewer.id);
  const target = new ObjectId(targetId);
  const removed = await deps.db.follows.deleteOne({ followerId: me, followingId: target });
  if (removed === 0) return;
  await recordActivity(deps, { event: "unfollowed", actorId: viewer.id, ownerId: target.toHexString() });
  await moveCounts(deps, me, target, -1);
  const users = await deps.db.users.find({ _id: { $in: [me, target] } }, { projection: { usernameLower: 1 } });
  await invalidateProfilesOf(deps, users, [deps.keys.feedFollowing(viewer.id, 0)]);
}

/**
 * Removes the follows between two people in both directions (a block), each counter moving only for the edge
 * this call actually deleted, so counts stay exact however the requests race.
 */
export async function severFollows(deps: Deps, a: ObjectId, b: ObjectId): Promise<void> {
  const [aToB, bToA] = await Promise.all([
    deps.db.follows.deleteOne({ followerId: a, followingId: b }),
    deps.db.follows.deleteOne({ followerId: b, followingId: a }),
  ]);
  if (aToB === 0 && bToA === 0) return;
  // A follow the block ended is a follower lost, as an unfollow is.
  await recordActivity(
    deps,
    ...(aToB ? [{ event: "unfollowed" as const, actorId: a.toHexString(), ownerId: b.toHexString() }] : []),
    ...(bToA ? [{ event: "unfollowed" as const, actorId: b.toHexString(), ownerId: a.toHexString() }] : []),
  );
  await Promise.all([aToB ? moveCounts(deps, a, b, -1) : null, bToA ? moveCounts(deps, b, a, -1) : null]);
  const users = await deps.db.users.find({ _id: { $in: [a, b] } }, { projection: { usernameLower: 1 } });
  await invalidateProfilesOf(
    deps,
    users,
    [a, b].map((id) => deps.keys.feedFollowing(id.toHexString(), 0)),
  );
}

async function moveCounts(deps: Deps, follower: ObjectId, following: ObjectId, by: 1 | -1) {
  await Promise.all([
    deps.db.users.bulkWrite(
      [
        { updateOne: { filter: { _id: follower }, update: { $inc: { followingCount: by } } } },
        { updateOne: { filter: { _id: following }, update: { $inc: { followersCount: by } } } },
      ],
      { ordered: false },
    ),
    forgetSelfView(deps, follower.toHexString(), following.toHexString()),
    dropCache(deps, deleteKeys(followPairKeys(deps, follower.toHexString(), following.toHexString())), "follow pair"),
  ]);
}

/** Both people's cached view of the follow state between them. */
function followPairKeys(deps: Deps, a: string, b: string): string[] {
  return [deps.keys.followPair(a, b), deps.keys.followPair(b, a)];
}

/** Followers or followees of a user, newest first, cursor-paginated; deleted accounts are left out. */
export async function listFollows(
  deps: Deps,
  userId: string,
  direction: "followers" | "following",
  query: PageQuery,
): Promise<PublicUserPage> {
  const user = await activeUser(deps, userId);
  const [mine, theirs] =
    direction === "followers" ? (["followingId", "followerId"] as const) : (["followerId", "followingId"] as const);
  const page = await paginate(deps.db.follows, {
    filter: { [mine]: user._id },
    order: { direction: "desc" },
    limit: query.limit,
    cursor: query.cursor,
  });
  const people = await deps.db.users.find(
    { _id: { $in: page.items.map((e) => e[theirs]) }, deletedAt: null },
    { limit: page.items.length },
  );
  const byId = new Map(people.map((p) => [p._id.toHexString(), p]));
  const items = page.items.flatMap((e) => {
    const person = byId.get(e[theirs].toHexString());
    return person ? [toPublicUser(person)] : [];
  });
  return { items, nextCursor: page.nextCursor };
}
