import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { everyPage } from "../../platform/mongo/paginate";
import { deleteKeys, runOp } from "../../platform/redis-ops";

/**
 * Generations in a person's data export and erasure (wired into features/privacy). The jobs themselves are the
 * privacy feature's `generations` section, and its erasure blanks their prompts; this feature adds only the
 * copies of completed jobs' post-facing fields (prompt included) cached for posting them (post-facts.ts).
 */

/** Jobs per erasure step. */
const PAGE = 500;

const idOf = (userId: ObjectId | string) => (typeof userId === "string" ? new ObjectId(userId) : userId);

/** Nothing to add: the cached fields are copies of the jobs the privacy feature exports. */
export async function* exportSections(
  _deps: Deps,
  _userId: ObjectId | string,
): AsyncGenerator<{ section: string; items: unknown[] }> {}

/**
 * Drops the cached post-facing fields of every job of the account. Idempotent and restartable: the jobs stay
 * (their prompts blanked), so a rerun finds the same ids and dropping a key twice changes nothing; a Redis
 * outage throws, so the erasure step is retried.
 */
export async function eraseUser(deps: Deps, userId: ObjectId | string): Promise<void> {
  for await (const page of everyPage(deps.db.generationJobs, {
    filter: { userId: idOf(userId), status: "completed" },
    order: { direction: "asc" },
    projection: { _id: 1 },
    limit: PAGE,
  })) {
    await runOp(deps.redis, deleteKeys(page.map((job) => deps.keys.generationPostFacts(job._id.toHexString()))));
  }
}
