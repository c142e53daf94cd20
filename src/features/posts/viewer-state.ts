import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { getValues, runOp } from "../../platform/redis-ops";

/** Which of these posts the viewer voted on: one batched lookup per page. */
export async function votedByViewer(deps: Deps, viewerId: string, postIds: ObjectId[]): Promise<Set<string>> {
  if (postIds.length === 0) return new Set();
  const votes = await deps.db.votes.find(
    { userId: new ObjectId(viewerId), postId: { $in: postIds } },
    { projection: { postId: 1 }, limit: postIds.length },
  );
  return new Set(votes.map((v) => v.postId.toHexString()));
}

/** Real-time vote counts from Redis where a counter exists (one MGET). */
export async function liveVoteCounts(deps: Deps, postIds: ObjectId[]): Promise<Map<string, number>> {
  if (postIds.length === 0) return new Map();
  const ids = postIds.map((p) => p.toHexString());
  const values = await runOp(deps.redis, getValues<number | string>(ids.map((id) => deps.keys.postVotes(id))));
  const counts = new Map<string, number>();
  ids.forEach((id, i) => {
    const v = values[i];
    if (v !== null && v !== undefined) counts.set(id, Number(v));
  });
  return counts;
}
