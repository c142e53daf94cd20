import { dropCache } from "../../core/cache";
import { ApiError } from "../../core/errors";
import type { PageQuery } from "../../core/schemas";
import { forgetSelfView } from "../../core/standing";
import type { Viewer } from "../../core/viewer";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { DuplicateKeyError, expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import { paginate } from "../../platform/mongo/paginate";
import { deleteKeys } from "../../platform/redis-ops";
import { recordActivity } from "../analytics/activity";
import { notifyLater } from "../notifications/service";
import { defineOwed, incrementsOn, owe } from "../owed/effects";
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
 * What a follow (or unfollow) owes after the answer: both people's counters, committed once with the owed
 * record, then their cached profiles and self views dropped (what the counters show).
 */
const followCounts = defineOwed<{ followerId: ObjectId; followingId: ObjectId; by: 1 | -1 }>(
  "follow.counts",
  async (deps, edge) => ({
    commit: incrementsOn(deps, "users", [
      { id: edge.followerId, inc: { followingCount: edge.by } },
      { id: edge.followingId, inc: { followersCount: edge.by } },
    ]),
    after: async () => {
      const people = await deps.db.users.find(
        { _id: { $in: [edge.followerId, edge.followingId] } },
        { projection: { usernameLower: 1 } },
      );
      await Promise.all([
        invalidateProfilesOf(
          deps,
          people,
          followPairKeys(deps, edge.followerId.toHexString(), edge.followingId.toHexString()),
        ),
        forgetSelfView(deps, edge.followerId.toHexString(), edge.followingId.toHexString()),
      ]);
    },
  }),
  (edge) => [edge.followerId, edge.followingId],
);

/**
 * Idempotent follow, waiting on one Data API call: an ordered batch checks the target exists, inserts the
 * edge (the unique (followerId, followingId) index decides who wins a race: a duplicate ends the batch, so
 * only the request whose insert succeeded owes the counters), records what it owes (both counters, the
 * notification), and then looks for a block between the two. That look comes after the insert, and a block
 * removes follows after writing itself, so one of the two always sees the other: a follow racing a block
 * takes itself back (edge and owed record, in one transaction) and answers 404.
 */
export async function follow(deps: Deps, viewer: Viewer, targetId: string): Promise<void> {
  if (viewer.id === targetId) throw ApiError.invalidField("id", "you cannot follow yourself");
  const me = new ObjectId(viewer.id);
  const target = new ObjectId(targetId);
  // Blocked either way: the other person does not exist for them (relations came with the rate limit).
  if ((await relationsFor(deps, viewer)).blockedWith(targetId)) throw ApiError.notFound("No such user.");
  const edge = { _id: newObjectId(), followerId: me, followingId: target, createdAt: deps.clock.now() };
  const owed = owe(deps, [
    followCounts({ followerId: me, followingId: target, by: 1 }),
    notifyLater({ type: "follow", recipientId: target, actorId: me }),
  ]);
  let blocked: unknown;
  try {
    [, , , blocked] = await deps.db.batch([
      expectMatch(deps.db.users.inBatch.findOne({ _id: target, deletedAt: null }, { projection: { _id: 1 } })),
      deps.db.follows.inBatch.insertOne(edge),
      owed.step,
      deps.db.blocks.inBatch.findOne(
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
  } catch (error) {
    if (error instanceof PreconditionFailedError && error.failedIndex === 0) throw ApiError.notFound("No such user.");
    // Already following: nothing changed, nothing owed.
    if (error instanceof DuplicateKeyError && error.failedIndex === 1) return;
    throw error;
  }
  if (blocked) {
    await deps.db.batch(
      [
        deps.db.owedEffects.inBatch.deleteOne({ _id: owed.record._id }),
        deps.db.follows.inBatch.deleteOne({ _id: edge._id }),
      ],
      { transaction: true },
    );
    throw ApiError.notFound("No such user.");
  }
  owed.committed();
  await Promise.all([
    recordActivity(deps, { event: "followed", actorId: viewer.id, ownerId: targetId }),
    dropOwnFollowViews(deps, viewer.id, targetId),
  ]);
}

/** Unfollow: the edge and what its removal owes (both counters back) in one transaction; not following is a no-op. */
export async function unfollow(deps: Deps, viewer: Viewer, targetId: string): Promise<void> {
  if (viewer.id === targetId) throw ApiError.invalidField("id", "you cannot follow yourself");
  const me = new ObjectId(viewer.id);
  const target = new ObjectId(targetId);
  const owed = owe(deps, [followCounts({ followerId: me, followingId: target, by: -1 })]);
  try {
    await deps.db.batch(
      [expectMatch(deps.db.follows.inBatch.deleteOne({ followerId: me, followingId: target })), owed.step],
      { transaction: true },
    );
  } catch (error) {
    if (error instanceof PreconditionFailedError && error.failedIndex === 0) return;
    throw error;
  }
  owed.committed();
  await Promise.all([
    recordActivity(deps, { event: "unfollowed", actorId: viewer.id, ownerId: targetId }),
    dropOwnFollowViews(deps, viewer.id, targetId),
  ]);
}

/**
 * What the follower sees change at once (not after the counters): the follow state between the two and their own
 * first `following` page. Best effort: a copy kept through an outage lasts until its TTL.
 */
async function dropOwnFollowViews(deps: Deps, followerId: string, followingId: string): Promise<void> {
  await dropCache(
    deps,
    deleteKeys([...followPairKeys(deps, followerId, followingId), deps.keys.feedFollowing(followerId, 0)]),
    "follow views",
  );
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
