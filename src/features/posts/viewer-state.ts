import { bestEffort } from "../../core/best-effort";
import { fillCache, readCache } from "../../core/cache";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import {
  areMembers,
  batchOn,
  both,
  changeGuardedSet,
  fillGuardedSet,
  GUARDED_SET_LOADED,
  getValue,
  getValues,
  type RedisOp,
  readOrMiss,
  runOp,
} from "../../platform/redis-ops";

/** Marks a cached voted set that holds only the viewer's most recent VOTED_CACHE_MAX votes. */
const RECENT_ONLY = "~recent";

/**
 * Which of these posts the viewer voted on, from Redis: each user's voted posts are one cached set
 * (`voted:{userId}`), so a page costs one SMISMEMBER and no MongoDB call. A missing set is rebuilt from the
 * votes (at most VOTED_CACHE_MAX, newest first; a set holding only the newest asks MongoDB about the rest),
 * guarded like every rebuilt set (platform/redis-ops.ts `fillGuardedSet`) against a vote landing meanwhile.
 */
export async function votedByViewer(deps: Deps, viewerId: string, postIds: ObjectId[]): Promise<Set<string>> {
  if (postIds.length === 0) return new Set();
  const ids = postIds.map((p) => p.toHexString());
  const key = deps.keys.votedPosts(viewerId);
  const generationKey = deps.keys.votedPostsGeneration(viewerId);
  const read = await readCache(
    deps,
    both(areMembers(key, [...ids, GUARDED_SET_LOADED, RECENT_ONLY]), getValue<string | number>(generationKey)),
    "voted posts",
  );
  if (!read) return new Set(await votedInStore(deps, viewerId, postIds));
  const [members, generation] = read;
  const [loaded, recentOnly] = members.slice(ids.length);
  if (loaded) {
    const voted = new Set(ids.filter((_, i) => members[i]));
    const unknown = recentOnly ? postIds.filter((p) => !voted.has(p.toHexString())) : [];
    for (const id of await votedInStore(deps, viewerId, unknown)) voted.add(id);
    return voted;
  }
  const max = deps.config.votes.votedCacheMax;
  const recent = await deps.db.votes.find(
    { userId: new ObjectId(viewerId) },
    { sort: { createdAt: -1 }, limit: max, projection: { postId: 1 } },
  );
  const recentIds = recent.map((v) => v.postId.toHexString());
  const partial = recent.length >= max;
  await fillCache(
    deps,
    fillGuardedSet(
      key,
      generationKey,
      String(generation ?? "0"),
      partial ? [...recentIds, RECENT_ONLY] : recentIds,
      deps.config.votes.votedCacheTtlSeconds,
    ),
    "voted posts",
  );
  const voted = new Set(ids.filter((id) => recentIds.includes(id)));
  if (partial)
    for (const id of await votedInStore(
      deps,
      viewerId,
      postIds.filter((p) => !voted.has(p.toHexString())),
    ))
      voted.add(id);
  return voted;
}

async function votedInStore(deps: Deps, viewerId: string, postIds: ObjectId[]): Promise<string[]> {
  if (postIds.length === 0) return [];
  const votes = await deps.db.votes.find(
    { userId: new ObjectId(viewerId), postId: { $in: postIds } },
    { projection: { postId: 1 }, limit: postIds.length },
  );
  return votes.map((v) => v.postId.toHexString());
}

/**
 * Mirrors a vote just recorded (or removed) in MongoDB into the voter's cached voted set. Best effort: the vote
 * stands; if Redis fails just here (and keeps its data), `viewer.voted` can lag for this post until the set
 * expires (VOTED_CACHE_TTL_SECONDS).
 */
export async function mirrorVote(deps: Deps, viewerId: string, postId: string, voted: boolean): Promise<void> {
  await bestEffort(deps, "voted set mirror", () => runOp(deps.redis, votedSetChange(deps, viewerId, postId, voted)));
}

/** The Redis op behind `mirrorVote`, to run in one pipeline with a vote's other Redis work. */
export function votedSetChange(deps: Deps, viewerId: string, postId: string, voted: boolean): RedisOp<void> {
  return changeGuardedSet(
    deps.keys.votedPosts(viewerId),
    deps.keys.votedPostsGeneration(viewerId),
    voted ? { add: [postId], remove: [] } : { add: [], remove: [postId] },
    deps.config.votes.votedCacheTtlSeconds + 86_400,
  );
}

/**
 * Real-time vote counts from Redis where a counter exists (one MGET); none when Redis cannot answer (the
 * stored `voteCount`, at most one `counters` run behind, is shown then).
 */
export async function liveVoteCounts(deps: Deps, postIds: ObjectId[]): Promise<Map<string, number>> {
  if (postIds.length === 0) return new Map();
  const ids = postIds.map((p) => p.toHexString());
  const { values } = await readOrMiss(
    batchOn(deps.redis),
    { values: getValues<number | string>(ids.map((id) => deps.keys.postVotes(id))) },
    deps.log,
  );
  const counts = new Map<string, number>();
  ids.forEach((id, i) => {
    const v = values[i];
    if (v !== null && v !== undefined) counts.set(id, Number(v));
  });
  return counts;
}
