import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { batchOn, getValues, readOrMiss } from "../../platform/redis-ops";

/** Which of these posts the viewer voted on: one batched lookup per page. */
export async function votedByViewer(deps: Deps, viewerId: string, postIds: ObjectId[]): Promise<Set<string>> {
  if (postIds.length === 0) return new Set();
  const votes = await deps.db.votes.find(
    { userId: new ObjectId(viewerId), postId: { $in: postIds } },
    { projection: { postId: 1 }, limit: postIds.length },
  );
  return new Set(votes.map((v) => v.postId.toHexString()));
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
