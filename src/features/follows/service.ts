import type { Deps } from "../../deps";
import type { Viewer } from "../../http/context";
import { ApiError } from "../../http/errors";
import { decodeCursor, encodeCursor } from "../../http/pagination";
import { newObjectId, ObjectId } from "../../platform/ids";
import { DuplicateKeyError } from "../../platform/mongo/client";
import { notify } from "../notifications/service";
import { type PublicUser, toPublicUser } from "../users/schema";
import { invalidateProfilesOf } from "../users/service";

/** `follows` (seed 000). */
export interface FollowDoc {
  _id: ObjectId;
  followerId: ObjectId;
  followingId: ObjectId;
  createdAt: Date;
}

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
  if (viewer.id === targetId) throw ApiError.validation([{ path: "id", message: "you cannot follow yourself" }]);
  const me = new ObjectId(viewer.id);
  const target = new ObjectId(targetId);
  // One read for both: the target must exist, and a deleted account's still-valid token must not follow.
  const people = await deps.db.users.find(
    { _id: { $in: [me, target] }, deletedAt: null },
    { projection: { usernameLower: 1 } },
  );
  if (!people.some((p) => p._id.equals(target))) throw ApiError.notFound("No such user.");
  if (!people.some((p) => p._id.equals(me))) throw ApiError.notFound("Account not found.");
  try {
    await deps.db.follows.insertOne({
      _id: newObjectId(),
      followerId: me,
      followingId: target,
      createdAt: deps.clock.now(),
    });
  } catch (error) {
    if (error instanceof DuplicateKeyError) return;
    throw error;
  }
  await moveCounts(deps, me, target, 1);
  await invalidateProfilesOf(deps, people, [deps.keys.feedFollowing(viewer.id, 0)]);
  await notify(deps, { type: "follow", recipientId: target, actorId: me });
}

export async function unfollow(deps: Deps, viewer: Viewer, targetId: string): Promise<void> {
  if (viewer.id === targetId) throw ApiError.validation([{ path: "id", message: "you cannot follow yourself" }]);
  const me = new ObjectId(viewer.id);
  const target = new ObjectId(targetId);
  const removed = await deps.db.follows.deleteOne({ followerId: me, followingId: target });
  if (removed === 0) return;
  await moveCounts(deps, me, target, -1);
  const users = await deps.db.users.find({ _id: { $in: [me, target] } }, { projection: { usernameLower: 1 } });
  await invalidateProfilesOf(deps, users, [deps.keys.feedFollowing(viewer.id, 0)]);
}

function moveCounts(deps: Deps, follower: ObjectId, following: ObjectId, by: 1 | -1) {
  return deps.db.users.bulkWrite(
    [
      { updateOne: { filter: { _id: follower }, update: { $inc: { followingCount: by } } } },
      { updateOne: { filter: { _id: following }, update: { $inc: { followersCount: by } } } },
    ],
    { ordered: false },
  );
}

/** Followers or followees of a user, newest first, cursor-paginated; deleted accounts are left out. */
export async function listFollows(
  deps: Deps,
  userId: string,
  direction: "followers" | "following",
  page: { limit: number; cursor?: string },
): Promise<{ items: PublicUser[]; nextCursor: string | null }> {
  const user = await activeUser(deps, userId);
  const [mine, theirs] =
    direction === "followers" ? (["followingId", "followerId"] as const) : (["followerId", "followingId"] as const);
  const after = page.cursor ? decodeCursor(page.cursor) : null;
  const filter: Record<string, unknown> = { [mine]: user._id };
  if (after) filter._id = { $lt: new ObjectId(after.id) };
  const edges = await deps.db.follows.find(filter, { sort: { _id: -1 }, limit: page.limit + 1 });
  const pageEdges = edges.slice(0, page.limit);
  const people = await deps.db.users.find({ _id: { $in: pageEdges.map((e) => e[theirs]) }, deletedAt: null });
  const byId = new Map(people.map((p) => [p._id.toHexString(), p]));
  const items = pageEdges.flatMap((e) => {
    const person = byId.get(e[theirs].toHexString());
    return person ? [toPublicUser(person)] : [];
  });
  const last = pageEdges[pageEdges.length - 1];
  return { items, nextCursor: edges.length > page.limit && last ? encodeCursor({ id: last._id.toHexString() }) : null };
}
