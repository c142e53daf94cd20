import type { Deps } from "../../deps";
import { addMembers, runOp } from "../../platform/redis-ops";

/**
 * Queues posts whose engagement moved (a vote, view, share or counted comment) for the `counters` job, which
 * recounts them from the source collections and rescores them, whatever their age.
 */
export async function markEngaged(deps: Deps, postIds: string[]): Promise<void> {
  await runOp(deps.redis, addMembers(deps.keys.countersDirtyPosts(), postIds));
}
