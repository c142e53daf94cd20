import type { Deps } from "../../deps";
import { isObjectIdHex, ObjectId } from "../../platform/ids";

/**
 * Marks posts whose engagement moved (a vote, share or counted comment) for the `counters` job, which recounts
 * them from the source collections and rescores them, whatever their age. The mark is durable — it is
 * `posts.countersStale`, moved by the same kind of MongoDB write as the engagement itself — so losing Redis
 * loses no recount. (Views live in Redis until synced and queue their post there: `counters:dirty:posts`.)
 */
export async function markEngaged(deps: Deps, postIds: string[]): Promise<void> {
  const ids = [...new Set(postIds.filter(isObjectIdHex))].map((id) => new ObjectId(id));
  if (ids.length === 0) return;
  await deps.db.posts.updateMany({ _id: { $in: ids } }, { $inc: { countersStale: 1 } });
}
