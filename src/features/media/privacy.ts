import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { everyPage } from "../../platform/mongo/paginate";
import { toMedia } from "./schema";

/**
 * Export and erasure of a person's uploads (wired into features/privacy by its owner).
 *
 * Export: every upload record, as the API shows it (`url` is the person's own object; no keys or secrets).
 *
 * Erasure (idempotent and restartable): every object under the person's prefix in the bucket goes, listed
 * from the bucket itself (so an object whose record never became ready — an attempt that lost a race or a
 * crash after the put — goes too), then the records. (The avatar's copies on posts and comments are scrubbed
 * by the erasure job itself.)
 */

const PAGE = 500;

export async function* exportSections(
  deps: Deps,
  userId: string,
): AsyncGenerator<{ section: string; items: unknown[] }> {
  for await (const records of everyPage(deps.db.media, {
    filter: { userId: new ObjectId(userId) },
    order: { direction: "asc" },
    limit: PAGE,
  })) {
    yield { section: "media", items: records.map(toMedia) };
  }
}

export async function eraseUser(deps: Deps, userId: string): Promise<void> {
  const prefix = `${new ObjectId(userId).toHexString()}/`;
  // Always the first page: what was deleted is gone, so listing again is the resumption point.
  for (;;) {
    const { keys } = await deps.objects.list(prefix);
    if (keys.length === 0) break;
    await deps.objects.delete(keys);
  }
  await deps.db.media.deleteMany({ userId: new ObjectId(userId) });
}
