import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { everyPage } from "../../platform/mongo/paginate";
import { markEngaged } from "../ranking/engagement";

/**
 * Saves in a person's data export and erasure (wired into features/privacy). Drafts, scheduled and archived
 * posts are posts: the privacy feature's `posts` section exports them and an account's deletion removes them
 * with the rest, so saves are the only personal data this feature adds. Tag counts are about no one.
 */

/** Saves per export page and per erasure step. */
const PAGE = 500;

const idOf = (userId: ObjectId | string) => (typeof userId === "string" ? new ObjectId(userId) : userId);

/** The account's saves, oldest first, a page at a time: which post, and when (nothing about other people). */
export async function* exportSections(
  deps: Deps,
  userId: ObjectId | string,
): AsyncGenerator<{ section: string; items: unknown[] }> {
  for await (const page of everyPage(deps.db.saves, {
    filter: { userId: idOf(userId) },
    order: { direction: "asc" },
    limit: PAGE,
  })) {
    yield {
      section: "saves",
      items: page.map((s) => ({
        id: s._id.toHexString(),
        postId: s.postId.toHexString(),
        createdAt: s.createdAt.toISOString(),
      })),
    };
  }
}

/**
 * Removes the account's saves, and everyone's saves of its posts (which are gone with it). Idempotent and
 * restartable: each step deletes a page of saves, and the posts they were on are marked for the counters job
 * (durably, `countersStale`), which recounts `saveCount` from the saves left (marked before the delete too,
 * so a stop in between leaves no count behind).
 */
export async function eraseUser(deps: Deps, userId: ObjectId | string): Promise<void> {
  const me = idOf(userId);
  while (true) {
    const page = await deps.db.saves.find({ userId: me }, { sort: { _id: 1 }, limit: PAGE, projection: { postId: 1 } });
    if (page.length === 0) break;
    const posts = [...new Set(page.map((s) => s.postId.toHexString()))];
    await markEngaged(deps, posts);
    await deps.db.saves.deleteMany({ _id: { $in: page.map((s) => s._id) } });
    await markEngaged(deps, posts);
  }
  await deps.db.saves.deleteMany({ postAuthorId: me });
}
